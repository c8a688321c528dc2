"""RtspSource against a real RTSP server on 127.0.0.1 (GStreamer's gst-rtsp-server, run by the system
python with python3-gi). Skips with the reason when those pieces are not installed. Debian packages:
python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-ugly (videotestsrc, rtph264pay, x264enc)."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.sources import RtspSource, open_source

# The server: a live test pattern, H.264 over RTP, one shared media for every client.
SERVER = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
missing = [n for n in ("videotestsrc", "videoconvert", "x264enc", "rtph264pay") if Gst.ElementFactory.find(n) is None]
if missing:
    print("missing GStreamer elements: " + " ".join(missing), flush=True)
    sys.exit(3)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 "
    "! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
    "! rtph264pay name=pay0 pt=96 )")
factory.set_shared(True)
server.get_mount_points().add_factory("/test", factory)
if server.attach(None) == 0:
    print("could not listen on port " + sys.argv[1], flush=True)
    sys.exit(4)
print("ready", flush=True)
GLib.MainLoop().run()
"""


def _system_python() -> str | None:
    """A python outside this virtual environment that can import GStreamer's introspection (gi):
    $TRANSPOSE_LIVE_SYSTEM_PYTHON, else each python3 on PATH."""
    candidates = [os.environ.get("TRANSPOSE_LIVE_SYSTEM_PYTHON")]
    candidates += [str(Path(d) / "python3") for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer")
    tried = set()
    for exe in candidates:
        if not exe or not os.access(exe, os.X_OK):
            continue
        real = Path(exe).resolve()
        if real in tried or Path(exe).parent.resolve() == Path(sys.prefix, "bin").resolve():
            continue                     # this venv's python cannot see the system's gi
        tried.add(real)
        if subprocess.run([exe, "-c", probe], capture_output=True, timeout=30).returncode == 0:
            return exe
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return ""


@pytest.fixture(scope="module")
def rtsp_url():
    python = _system_python()
    if python is None:
        pytest.skip("needs a system python3 with python3-gi and gir1.2-gst-rtsp-server-1.0 (GStreamer RTSP server)")
    port = _free_port()
    proc = subprocess.Popen([python, "-c", SERVER, str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = _first_line(proc, timeout=30)
        if line != "ready":
            pytest.skip(f"GStreamer RTSP server did not start: {line or 'no answer'} "
                        "(needs gstreamer1.0-plugins-base/-good/-ugly)")
        yield f"rtsp://127.0.0.1:{port}/test"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_rtsp_source_reads_live_frames(rtsp_url):
    with open_source(rtsp_url, timeout=15) as source:
        assert isinstance(source, RtspSource)
        assert source.is_live
        assert source.size == (320, 240)
        assert source.frame_count is None
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 12:
                break
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    ts = [f.timestamp for f in frames]
    assert ts[0] == 0.0 and all(b > a for a, b in zip(ts, ts[1:]))
    # 15 fps test pattern: 11 intervals of ~1/15 s
    assert ts[-1] == pytest.approx(11 / 15, abs=0.1)
    # the bouncing ball moves: the pictures are live, not one frame repeated
    assert np.abs(frames[0].image.astype(int) - frames[-1].image.astype(int)).mean() > 0.5


def test_rtsp_connect_failure_names_the_url():
    url = f"rtsp://127.0.0.1:{_free_port()}/nothing"    # nothing listens there
    with pytest.raises(TransposeLiveError, match=r"cannot connect to rtsp://127\.0\.0\.1:\d+/nothing"):
        RtspSource(url, timeout=3)


def test_rtsp_password_is_not_shown():
    url = f"rtsp://admin:hunter2@127.0.0.1:{_free_port()}/cam"
    with pytest.raises(TransposeLiveError) as info:
        open_source(url, timeout=3)
    assert "hunter2" not in str(info.value) and "admin:***@" in str(info.value)


def test_rtsp_bad_transport():
    with pytest.raises(TransposeLiveError, match="transport"):
        RtspSource("rtsp://127.0.0.1:1/x", transport="carrier-pigeon")

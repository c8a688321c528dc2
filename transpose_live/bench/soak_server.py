"""A real RTSP camera on 127.0.0.1: GStreamer's gst-rtsp-server in a child process, run by a system python3
that has python3-gi (a virtual environment cannot import the system's gi). The soak command's cameras and
the RTSP tests (tests/rtsp_server.py) both use it.

    with RtspServer(paths=("/cam", "/door"), user="admin", password="s3cret") as server:
        url = server.url("/cam")          # rtsp://admin:s3cret@127.0.0.1:PORT/cam
        server.kill()                     # the camera dies (SIGKILL: its sockets are reset)
        server.start()                    # ... and comes back on the same port
        server.freeze(); server.thaw()    # it hangs (SIGSTOP: sockets open, nothing sent), then resumes

Every path serves the same live picture (H.264 over RTP, one shared media per path): the test pattern (a
bouncing ball), or with `frames` a folder of JPEG pictures played in a loop (`video_frames` makes one from a
video: real people for the pose model). Other paths answer 404; with user/password every request needs HTTP
basic authentication (else 401). `available()` says whether the pieces are installed, and why not.
Debian packages: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-ugly (videotestsrc, jpegdec, rtph264pay, x264enc)."""

from __future__ import annotations

import functools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

# The child: argv = port, width, height, fps, frames folder ("" for the test pattern), path...;
# credentials (optional) come in the environment.
SERVER = r"""
import os
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
port, width, height, fps, frames, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
needed = ["videoconvert", "x264enc", "rtph264pay"] + (["multifilesrc", "jpegdec"] if frames else ["videotestsrc"])
missing = [n for n in needed if Gst.ElementFactory.find(n) is None]
if missing:
    print("missing GStreamer elements: " + " ".join(missing), flush=True)
    sys.exit(3)
user, password = os.environ.get("RTSP_TEST_USER"), os.environ.get("RTSP_TEST_PASSWORD")
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
if user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password or ""), token)
    server.set_auth(auth)
if frames:    # JPEG pictures in a loop, paced to the clock like a camera (identity sync)
    source = (f"multifilesrc location={os.path.join(frames, '%05d.jpg')} loop=true "
              f"caps=image/jpeg,framerate={fps}/1 ! jpegdec ! identity sync=true")
else:
    source = f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1"
for path in paths:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( {source} ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    if user:
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(path, factory)
if server.attach(None) == 0:
    print("could not listen on port " + port, flush=True)
    sys.exit(4)
print("ready", flush=True)
GLib.MainLoop().run()
"""

_PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
          "from gi.repository import Gst, GstRtspServer")

NOT_INSTALLED = ("needs a system python3 with python3-gi and gir1.2-gst-rtsp-server-1.0 "
                 "(GStreamer RTSP server)")


@functools.lru_cache(maxsize=None)
def system_python() -> str | None:
    """A python outside this virtual environment that can import GStreamer's introspection (gi):
    $TRANSPOSE_LIVE_SYSTEM_PYTHON, else each python3 on PATH, else /usr/bin/python3."""
    candidates = [os.environ.get("TRANSPOSE_LIVE_SYSTEM_PYTHON")]
    candidates += [str(Path(d) / "python3") for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    candidates.append("/usr/bin/python3")
    tried = set()
    for exe in candidates:
        if not exe or not os.access(exe, os.X_OK):
            continue
        real = Path(exe).resolve()
        in_venv = sys.prefix != sys.base_prefix and Path(exe).parent.resolve() == Path(sys.prefix, "bin").resolve()
        if real in tried or in_venv:
            continue                     # this venv's python cannot see the system's gi
        tried.add(real)
        try:
            if subprocess.run([exe, "-c", _PROBE], capture_output=True, timeout=30).returncode == 0:
                return exe
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


@functools.lru_cache(maxsize=None)
def available() -> tuple[bool, str]:
    """(whether a test server can run here, why not). Starts one server once to find out."""
    if system_python() is None:
        return False, NOT_INSTALLED
    try:
        with RtspServer():
            pass
    except RtspServerError as exc:
        return False, str(exc)
    return True, ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServerError(RuntimeError):
    """The server could not start (what is missing, or what it said)."""


class RtspServer:
    """gst-rtsp-server in a child process, serving `paths` on 127.0.0.1:`port` (a free one by default).
    Starts on construction; a context manager that stops it at the end. `frames`: a folder of JPEG
    pictures 00000.jpg, 00001.jpg... played in a loop at `fps` (see video_frames); else the test pattern
    at `size`."""

    def __init__(self, paths=("/cam",), user: str | None = None, password: str | None = None,
                 port: int | None = None, size: tuple[int, int] = (320, 240), fps: int = 15,
                 start_timeout: float = 30.0, frames: str | os.PathLike | None = None):
        if password is not None and not user:
            raise ValueError("a password needs a user")
        self.paths = tuple("/" + p.lstrip("/") for p in paths)
        self.user, self.password = user, password
        self.port = port or free_port()
        self.size, self.fps = size, fps
        self.frames = Path(frames) if frames is not None else None
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self.start()

    def url(self, path: str | None = None, with_credentials: bool = True) -> str:
        """rtsp://[user:password@]127.0.0.1:PORT/path (the first served path by default)."""
        path = "/" + (path if path is not None else self.paths[0]).lstrip("/")
        auth = ""
        if with_credentials and self.user:
            auth = quote(self.user, safe="") + ":" + quote(self.password or "", safe="") + "@"
        return f"rtsp://{auth}127.0.0.1:{self.port}{path}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self) -> "RtspServer":
        """Start (or restart after kill()) on the same port; returns once it listens. A port still held
        by the previous process is retried for a few seconds."""
        if self.running:
            return self
        python = system_python()
        if python is None:
            raise RtspServerError(NOT_INSTALLED)
        env = dict(os.environ)
        env.pop("RTSP_TEST_USER", None)
        env.pop("RTSP_TEST_PASSWORD", None)
        if self.user:
            env["RTSP_TEST_USER"] = self.user
            env["RTSP_TEST_PASSWORD"] = self.password or ""
        args = [python, "-c", SERVER, str(self.port), str(self.size[0]), str(self.size[1]), str(self.fps),
                str(self.frames or ""), *self.paths]
        deadline = time.monotonic() + self.start_timeout
        while True:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            line = _first_line(proc, max(1.0, deadline - time.monotonic()))
            if line == "ready":
                self._proc = proc
                return self
            _stop(proc)
            if line.startswith("could not listen") and time.monotonic() + 0.5 < deadline:
                time.sleep(0.2)           # the old socket is still going away
                continue
            raise RtspServerError(f"GStreamer RTSP server did not start: {line or 'no answer'} "
                                  "(needs gstreamer1.0-plugins-base/-good/-ugly)")

    def kill(self) -> None:
        """The camera dies at once (SIGKILL): clients see their connections reset."""
        if self._proc is not None:
            _stop(self._proc, hard=True)
            self._proc = None

    def freeze(self) -> None:
        """The camera hangs (SIGSTOP): connections stay open, nothing is sent or answered."""
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is not None:
            self.thaw()
            _stop(self._proc)
            self._proc = None

    def __enter__(self) -> "RtspServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RtspServer(port={self.port}, paths={self.paths}, running={self.running})"


def video_frames(video: str | os.PathLike, folder: str | os.PathLike, max_frames: int = 300) -> tuple[Path, float]:
    """A video's first `max_frames` pictures as JPEG files 00000.jpg... in `folder`, for RtspServer(frames=).
    Returns (folder, the video's frame rate)."""
    import cv2  # deferred: OpenCV only where pictures are written

    from transpose_live.media.sources import FileSource

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with FileSource(video) as source:
        fps = source.fps or 10.0
        for i, frame in enumerate(source):
            if i >= max_frames:
                break
            cv2.imwrite(str(out / f"{i:05d}.jpg"), frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out, fps


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    lines: queue.Queue = queue.Queue()
    stdout = proc.stdout
    if stdout is None:
        return ""
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return ""


def _stop(proc: subprocess.Popen, hard: bool = False) -> None:
    if proc.poll() is None:
        if hard:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


__all__ = ["RtspServer", "RtspServerError", "available", "free_port", "system_python", "video_frames",
           "NOT_INSTALLED", "SERVER"]

"""Recording in segments: lengths by stream time, a new segment on a size change, names, and what a
SIGKILL leaves (every finished segment playable, the unfinished one removed by cleanup_partial)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.media.segments import SegmentedVideoWriter, cleanup_partial, safe_camera_name
from transpose_live.types import FrameResult

REPO = Path(__file__).resolve().parents[1]


def frame(i: int, width: int = 64, height: int = 48) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : (i * 7) % width] = (40, 200, 90)        # a bar that moves: frames differ
    return image


def decode(path: Path) -> tuple[list[float], float, tuple[int, int]]:
    """Every frame's time, the file's duration (s) and the video's (width, height): decodes it fully."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.time) for f in container.decode(stream)]
        return times, container.duration / 1e6, (stream.width, stream.height)


def visible_mp4(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.mp4") if not p.name.startswith("."))


def parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part.mp4"))


@pytest.mark.timeout(20)
def test_segments_by_stream_time(tmp_path):
    # 0.02 min = 1.2 s = 12 frames at 0.1 s; 3.5 segments' worth = 42 frames
    writer = SegmentedVideoWriter(tmp_path, "front door", segment_minutes=0.02, fps=10)
    for i in range(42):
        writer.write_frame(frame(i), FrameResult(index=i, timestamp=i * 0.1))
    assert len(writer.segments) == 3 and writer.current is not None
    writer.close()

    folder = tmp_path / "front_door"
    assert writer.folder == folder
    assert visible_mp4(folder) == writer.segments                 # names sort in recording order
    assert len(writer.segments) == 4 and not parts(folder)
    for path in writer.segments:
        assert path.parent == folder and path.name.startswith("front_door-")
    for path in writer.segments[:3]:
        times, duration, size = decode(path)
        assert len(times) == 12 and size == (64, 48)
        assert times[0] == 0.0                                     # each segment starts at 0
        assert times[-1] == pytest.approx(1.1, abs=1e-3)
        assert duration == pytest.approx(1.2, abs=0.01)
    times, duration, _ = decode(writer.segments[3])
    assert len(times) == 6 and duration == pytest.approx(0.6, abs=0.01)


@pytest.mark.timeout(20)
def test_size_change_and_restarted_clock_start_new_segments(tmp_path):
    writer = SegmentedVideoWriter(tmp_path, "cam", segment_minutes=10)
    for i in range(3):
        writer.write(frame(i), 5.0 + i * 0.1)
    for i in range(4):                                           # the camera came back at another size
        writer.write(frame(i, 80, 60), 5.3 + i * 0.1)
    for i in range(2):                                           # ... and with its clock back at 0
        writer.write(frame(i, 80, 60), i * 0.1)
    writer.close()
    got = [decode(p) for p in writer.segments]
    assert [len(t) for t, _, _ in got] == [3, 4, 2]
    assert [s for _, _, s in got] == [(64, 48), (80, 60), (80, 60)]
    assert all(t[0] == 0.0 for t, _, _ in got)


@pytest.mark.timeout(20)
def test_fixed_size_abort_keeps_and_empty_close(tmp_path):
    writer = SegmentedVideoWriter(tmp_path, "cam", size=(32, 24))
    writer.write(frame(0), 0.0)
    writer.write(frame(1, 80, 60), 0.1)                          # scaled: same segment
    writer.abort()                                               # a failure elsewhere: keep what was recorded
    [path] = writer.segments
    times, _, size = decode(path)
    assert len(times) == 2 and size == (32, 24)
    with pytest.raises(RuntimeError):
        writer.write(frame(2), 0.2)

    empty = SegmentedVideoWriter(tmp_path / "other", "cam")
    empty.close()
    assert empty.segments == [] and not [p for p in (tmp_path / "other").rglob("*") if p.is_file()]


@pytest.mark.timeout(10)
def test_names_and_options():
    assert safe_camera_name("rtsp://admin:hunter2@10.0.0.5:554/Streaming/101") == "rtsp_10.0.0.5_554_Streaming_101"
    assert safe_camera_name("../../etc/passwd") == "etc_passwd"
    assert safe_camera_name(".hidden") == "hidden" and safe_camera_name("///") == "camera"
    for bad in (0, -1, float("nan")):
        with pytest.raises(TransposeLiveError, match="segment length"):
            SegmentedVideoWriter("/nonexistent-unused", "cam", segment_minutes=bad)


@pytest.mark.timeout(10)
def test_cleanup_partial_only_older_than_the_run(tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    old = folder / ".cam-20240101-000000.0123abcd.part.mp4"
    old.write_bytes(b"\0" * 100)
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    kept = [folder / "cam-20240101-000000.mp4", folder / ".notes.part.txt"]
    for path in kept:
        path.write_bytes(b"x")
        os.utime(path, (hour_ago, hour_ago))
    writer = SegmentedVideoWriter(tmp_path, "cam")
    writer.write(frame(0), 0.0)                                  # this run's segment in progress
    [live] = set(parts(folder)) - {old}
    assert cleanup_partial(tmp_path) == [old]
    assert live.exists() and all(p.exists() for p in kept)
    writer.close()


CHILD = """
import sys, time
import numpy as np
from transpose_live.media.segments import SegmentedVideoWriter
writer = SegmentedVideoWriter(sys.argv[1], "cam", segment_minutes=0.005, fps=10)   # 0.3 s = 3 frames
i = 0
while True:
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, : (i * 7) % 64] = 200
    writer.write(image, i * 0.1)
    i += 1
    time.sleep(0.005)
"""


@pytest.mark.timeout(30)
def test_sigkill_leaves_finished_segments_playable(tmp_path):
    folder = tmp_path / "cam"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while len(visible_mp4(folder)) < 2:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no 2 finished segments within 15 s"
            time.sleep(0.02)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(5)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    finished = visible_mp4(folder)
    assert len(finished) >= 2
    for path in finished:
        times, _, _ = decode(path)
        assert times == pytest.approx([0.0, 0.1, 0.2], abs=1e-3)
    leftovers = parts(folder)
    assert len(leftovers) <= 1                                   # at most the segment it was writing
    for path in leftovers:                                       # an MP4 without its index: no player opens it
        with pytest.raises(av.FFmpegError):
            decode(path)
    # the next run, started after the kill, removes the leftover and nothing else
    time.sleep(0.05)
    subprocess.run([sys.executable, "-c", "import sys; from transpose_live.media.segments import cleanup_partial; "
                    "cleanup_partial(sys.argv[1])", str(tmp_path)], cwd=REPO, check=True, timeout=15)
    assert not parts(folder)
    assert visible_mp4(folder) == finished

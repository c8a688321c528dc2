"""Frame sources: files (PyAV, rotation, VFR, trimming, damaged files), cameras (OpenCV, faked), image
folders, open_source's dispatch, closing from another thread while a read is in flight, and the stream
source's reconnecting, backoff and password masking over a faked network (tests/test_rtsp.py has the real
server). Videos are made in the test with PyAV; frame i shows a white block at x = 4*i so a decoded frame
tells which input frame it is."""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sources import (
    CameraSource,
    FileSource,
    Frame,
    ImageFolderSource,
    RtspSource,
    Source,
    display_transform,
    open_source,
)

from helpers import REPO, H, W, block_index, make_video, picture, shared_path


def block_corner(image: np.ndarray) -> str:
    """Where the bright block of an upright frame sits: 'TL', 'TR', 'BL' or 'BR'."""
    ys, xs = np.nonzero(image.mean(axis=2) > 160)
    h, w = image.shape[:2]
    return ("T" if ys.mean() < h / 2 else "B") + ("L" if xs.mean() < w / 2 else "R")


# ---------------------------------------------------------------------------------------------------------
# files


def test_file_source_reads_every_frame_with_its_facts(tmp_path):
    path = make_video(tmp_path / "clip.mp4", audio="aac")
    with open_source(str(path)) as source:
        assert isinstance(source, FileSource)
        assert not source.is_live
        assert source.size == (W, H)
        assert source.fps == pytest.approx(10.0)
        assert source.frame_count == 30
        assert source.duration == pytest.approx(3.0, abs=0.01)
        assert source.audio.codec == "aac" and source.audio.sample_rate == 22050 and source.audio.channels == 1
        assert source.audio.duration == pytest.approx(3.0, abs=0.1)
        assert source.path == str(path)
        frames = list(source)
    assert len(frames) == 30
    assert all(isinstance(f, Frame) and f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.index for f in frames] == list(range(30))
    assert [block_index(f.image) for f in frames] == list(range(30))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(30) / 10, atol=1e-6)


def test_variable_frame_rate_keeps_each_frames_own_timestamp(tmp_path):
    pts_ms = [0, 40, 100, 110, 300, 333, 400, 650, 700, 1000, 1010, 1200]
    path = make_video(tmp_path / "vfr.mkv", n=len(pts_ms), pts=pts_ms, time_base=Fraction(1, 1000))
    with FileSource(path) as source:
        frames = list(source)
    assert [block_index(f.image) for f in frames] == list(range(len(pts_ms)))
    np.testing.assert_allclose([f.timestamp for f in frames], np.array(pts_ms) / 1000, atol=1e-6)


# Expected corners of the top-left block once upright: the same as `ffmpeg -i f.mp4 out.png`
# (autorotate) gives for these display matrices.
@pytest.mark.parametrize("rotation, corner, size", [
    ((0, False, False), "TL", (W, H)),
    ((90, False, False), "BL", (H, W)),
    ((-90, False, False), "TR", (H, W)),
    ((180, False, False), "BR", (W, H)),
    ((0, True, False), "TR", (W, H)),
    ((0, False, True), "BL", (W, H)),
    ((90, True, False), "BR", (H, W)),
    ((90, False, True), "TL", (H, W)),
])
def test_rotation_metadata_gives_upright_frames(tmp_path, rotation, corner, size):
    path = make_video(tmp_path / "rot.mp4", n=3, rotation=rotation)
    with FileSource(path) as source:
        assert source.size == size
        frames = list(source)
    assert len(frames) == 3
    assert frames[0].image.shape == (size[1], size[0], 3)
    assert frames[0].image.flags.c_contiguous
    assert block_corner(frames[0].image) == corner


def test_display_transform_edge_cases():
    assert display_transform(None) == (False, False, False)
    q = 1 << 16
    assert display_transform(np.array([0, q, 0, -q, 0, 0, 0, 0, 1 << 30])) == (True, False, True)
    c = int(q * np.cos(np.pi / 6))
    s = int(q * np.sin(np.pi / 6))
    assert display_transform(np.array([c, -s, 0, s, c, 0, 0, 0, 1 << 30])) is None   # 30 degrees


def test_start_and_end_trim_by_timestamp(tmp_path):
    path = make_video(tmp_path / "clip.mp4")
    with FileSource(path, start=1.0, end=2.0) as source:
        assert source.duration == pytest.approx(1.0, abs=0.01)
        assert source.frame_count == 10
        frames = list(source)
    assert [block_index(f.image) for f in frames] == list(range(10, 20))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(10, 20) / 10, atol=1e-6)
    assert [f.index for f in frames] == list(range(10))


def test_start_after_the_end_is_a_clear_error(tmp_path):
    path = make_video(tmp_path / "clip.mp4", n=5)
    with pytest.raises(TransposeLiveError, match=r"no video frames at or after start=9 s"):
        FileSource(path, start=9.0)


@pytest.mark.parametrize("start, end", [(-1.0, None), (2.0, 1.0), (1.0, 1.0)])
def test_bad_trim_is_a_clear_error(tmp_path, start, end):
    path = make_video(tmp_path / "clip.mp4", n=3)
    with pytest.raises(TransposeLiveError, match="start|end"):
        FileSource(path, start=start, end=end)


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv"])
def test_truncated_file_decodes_to_its_real_end_then_warns(tmp_path, caplog, name):
    full = make_video(tmp_path / name, n=40, codec="mpeg4")
    data = full.read_bytes()
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="transpose_live.media.sources"):
        with FileSource(cut) as source:
            frames = list(source)
    assert 5 <= len(frames) < 40
    assert [block_index(f.image) for f in frames] == list(range(len(frames)))
    assert any("ends early" in r.getMessage() for r in caplog.records)


def test_complete_file_does_not_warn(tmp_path, caplog):
    path = make_video(tmp_path / "clip.mkv", n=20)
    with caplog.at_level(logging.WARNING, logger="transpose_live.media.sources"):
        assert len(list(FileSource(path))) == 20
    assert not caplog.records


def test_missing_file(tmp_path):
    with pytest.raises(TransposeLiveError, match=r"^video file not found: .*nope\.mp4$"):
        open_source(tmp_path / "nope.mp4")


def test_text_file_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(TransposeLiveError, match=r"cannot read .*notes\.mp4 as a video"):
        open_source(str(path))


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=22050, layout="mono")
        for k in range(10):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 22050, k * 1024
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(TransposeLiveError, match="has no video stream"):
        open_source(path)


def test_close_is_idempotent_and_stops_iteration(tmp_path):
    source = FileSource(make_video(tmp_path / "clip.mp4", n=5))
    first = next(source)
    assert first.index == 0
    source.close()
    source.close()
    assert list(source) == []


# ---------------------------------------------------------------------------------------------------------
# cameras (OpenCV's VideoCapture faked: tests must not need a device)


class FakeCapture:
    opened = True

    def __init__(self, index):
        self.index, self.props, self.reads, self.released = index, {}, 0, False

    def isOpened(self):
        return self.opened

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 25.0}.get(prop, 0.0)

    def read(self):
        self.reads += 1
        if self.reads > 4:
            return False, None
        w = int(self.props.get(cv2.CAP_PROP_FRAME_WIDTH, W))
        h = int(self.props.get(cv2.CAP_PROP_FRAME_HEIGHT, H))
        return True, picture(self.reads - 1, w, h)

    def release(self):
        self.released = True


def test_camera_source_with_options(monkeypatch):
    made = []
    monkeypatch.setattr(cv2, "VideoCapture", lambda i: made.append(FakeCapture(i)) or made[-1])
    with open_source("1", width=200, height=100, fps=30) as source:
        assert isinstance(source, CameraSource)
        assert source.is_live and source.frame_count is None
        assert source.size == (200, 100) and source.fps == 25.0
        frames = list(source)
    cap = made[0]
    assert cap.index == 1
    assert cap.props == {cv2.CAP_PROP_FRAME_WIDTH: 200, cv2.CAP_PROP_FRAME_HEIGHT: 100, cv2.CAP_PROP_FPS: 30}
    assert [block_index(f.image) for f in frames] == [0, 1, 2, 3]
    ts = [f.timestamp for f in frames]
    assert ts == sorted(ts) and ts[0] >= 0
    assert cap.released


def test_camera_that_does_not_open(monkeypatch):
    class Closed(FakeCapture):
        opened = False

    monkeypatch.setattr(cv2, "VideoCapture", Closed)
    with pytest.raises(TransposeLiveError, match=r"^cannot open camera 3 "):
        open_source(3)


def test_camera_opens_with_opencv_logging_silenced_then_restored(monkeypatch):
    api = cv2.utils.logging
    before = api.getLogLevel()
    seen = []

    class Quiet(FakeCapture):
        def __init__(self, index):
            super().__init__(index)
            seen.append(api.getLogLevel())

        def isOpened(self):
            seen.append(api.getLogLevel())
            return False

    monkeypatch.setattr(cv2, "VideoCapture", Quiet)
    with pytest.raises(TransposeLiveError, match=r"^cannot open camera 2 "):
        CameraSource(2)
    assert seen == [api.LOG_LEVEL_SILENT, api.LOG_LEVEL_SILENT]
    assert api.getLogLevel() == before != api.LOG_LEVEL_SILENT


def test_camera_opens_on_an_opencv_without_the_logging_api(monkeypatch):
    monkeypatch.delattr(cv2.utils, "logging")
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    with CameraSource(0) as source:
        assert len(list(source)) == 4


# ---------------------------------------------------------------------------------------------------------
# closing from any thread (the pipeline reads in its capture thread; a stop closes from another)


class BlockingSource(Source):
    """Each read waits for `go` (a camera or stream that hangs). Every step is logged with its thread and
    the number of reads running at that moment, so the tests can check order and overlap."""

    def __init__(self, frames: int = 100):
        super().__init__()
        self.go = threading.Event()
        self.in_read = threading.Event()      # set when a read has started
        self.frames = frames
        self.log: list[tuple[str, str, int]] = []
        self.running = 0
        self.most_running = 0
        self._guard = threading.Lock()

    def _note(self, what: str) -> None:
        with self._guard:
            self.log.append((what, threading.current_thread().name, self.running))

    def _next_frame(self) -> Frame:
        with self._guard:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self._note("read")
        self.in_read.set()
        self.go.wait(5)
        with self._guard:
            self.running -= 1
        if self.frames == 0:
            raise StopIteration
        self.frames -= 1
        self._note("read done")
        return Frame(image=np.zeros((2, 2, 3), np.uint8), index=0, timestamp=0.0)

    def _release(self) -> None:
        self._note("release")

    def releases(self) -> list[tuple[str, str, int]]:
        return [entry for entry in self.log if entry[0] == "release"]


def read_in_thread(source: Source, name: str = "reader") -> tuple[threading.Thread, list]:
    """next(source) in a new thread; the list gets the frame or 'stop' or the exception."""
    outcome: list = []

    def body():
        try:
            outcome.append(next(source))
        except StopIteration:
            outcome.append("stop")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcome.append(exc)

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread, outcome


def test_close_during_a_blocked_read_returns_at_once_and_the_reader_releases():
    source = BlockingSource()
    reader, outcome = read_in_thread(source)
    assert source.in_read.wait(2)
    t = time.monotonic()
    source.close()
    assert time.monotonic() - t < 0.2                 # never waits behind the hanging read
    assert not source.wait_closed(0.1)
    assert source.releases() == []                     # nothing freed under the running read
    source.go.set()
    reader.join(2)
    assert not reader.is_alive()
    assert outcome == ["stop"]                         # the read's frame is not handed out
    assert source.wait_closed(0)
    assert source.log == [("read", "reader", 1), ("read done", "reader", 0), ("release", "reader", 0)]
    assert list(source) == []
    source.close()
    assert len(source.releases()) == 1


def test_a_second_reader_waits_its_turn_and_gets_no_frame_after_close():
    source = BlockingSource()
    first, first_outcome = read_in_thread(source, "first")
    assert source.in_read.wait(2)
    second, second_outcome = read_in_thread(source, "second")
    time.sleep(0.05)                                   # the second is queued on the read lock by now
    source.close()
    source.go.set()
    first.join(2)
    second.join(2)
    assert first_outcome == second_outcome == ["stop"]
    assert source.most_running == 1                    # reads never overlapped
    assert [what for what, _, _ in source.log] == ["read", "read done", "release"]
    assert source.releases() == [("release", "first", 0)]


def test_reads_are_serialised():
    source = BlockingSource()
    threads = [read_in_thread(source, f"reader{i}") for i in range(4)]
    assert source.in_read.wait(2)
    time.sleep(0.05)
    source.go.set()
    for thread, _ in threads:
        thread.join(2)
    assert all(outcome and isinstance(outcome[0], Frame) for _, outcome in threads)
    assert source.most_running == 1
    assert [what for what, _, _ in source.log] == ["read", "read done"] * 4
    source.close()
    assert source.wait_closed(0)


def test_close_with_no_read_in_flight_releases_at_once_and_only_once():
    source = BlockingSource()
    source.go.set()
    assert isinstance(next(source), Frame)
    source.close()
    assert source.wait_closed(0)
    assert source.releases() == [("release", "MainThread", 0)]
    source.close()
    with source:
        pass
    del source.go                                      # a read after close would now fail loudly
    assert list(source) == []
    assert len(source.releases()) == 1


def test_close_from_inside_a_read_releases_after_that_read():
    class SelfClosing(BlockingSource):
        def _next_frame(self) -> Frame:
            frame = super()._next_frame()
            self.close()                               # e.g. a source that notices its device is gone
            self._note("closed")
            return frame

    source = SelfClosing()
    source.go.set()
    with pytest.raises(StopIteration):
        next(source)
    assert [what for what, _, _ in source.log] == ["read", "read done", "closed", "release"]
    assert source.wait_closed(0)


def test_the_end_of_a_source_releases_it_once():
    source = BlockingSource(frames=1)
    source.go.set()
    assert len(list(source)) == 1
    assert source.wait_closed(0)
    assert [what for what, _, _ in source.log] == ["read", "read done", "read", "release"]
    source.close()
    assert list(source) == []
    assert len(source.releases()) == 1


def test_garbage_collection_releases_an_open_source():
    released = threading.Event()

    class Tracked(BlockingSource):
        def _release(self) -> None:
            released.set()

    source = Tracked()
    del source
    assert released.is_set()


def test_file_source_closed_from_another_thread_mid_iteration(tmp_path):
    source = FileSource(make_video(tmp_path / "clip.mkv", n=300))
    release = source._release
    releases: list[str] = []
    source._release = lambda: (releases.append(threading.current_thread().name), release())
    frames: list[Frame] = []
    errors: list[BaseException] = []
    some = threading.Event()

    def body():
        try:
            for frame in source:
                frames.append(frame)
                if len(frames) == 5:
                    some.set()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    reader = threading.Thread(target=body, daemon=True)
    reader.start()
    assert some.wait(5)
    source.close()
    at_close = len(frames)
    reader.join(5)
    assert not reader.is_alive() and errors == []
    assert source.wait_closed(1)
    assert len(releases) == 1                          # by the reader (close came mid-read) or by close()
    assert 5 <= len(frames) <= at_close + 1 < 300     # at most the frame already returned when close() came
    assert [f.index for f in frames] == list(range(len(frames)))
    assert [block_index(f.image) for f in frames[:5]] == list(range(5))
    assert list(source) == []


# ---------------------------------------------------------------------------------------------------------
# image folders and dispatch


def test_image_folder_natural_order_grey_and_broken_files(tmp_path, caplog):
    for i, name in [(0, "img1.png"), (1, "img2.jpg"), (2, "img10.png")]:
        cv2.imwrite(str(tmp_path / name), picture(i))
    cv2.imwrite(str(tmp_path / "img3.png"), picture(5)[:, :, 0])          # greyscale
    (tmp_path / "img4.png").write_bytes(b"not a png")                     # broken: skipped
    (tmp_path / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING, logger="transpose_live.media.sources"):
        with open_source(tmp_path, fps=5) as source:
            assert isinstance(source, ImageFolderSource) and not source.is_live
            assert source.size == (W, H) and source.frame_count == 5
            frames = list(source)
    assert [Path(f.path).name for f in frames] == ["img1.png", "img2.jpg", "img3.png", "img10.png"]
    assert [block_index(f.image) for f in frames] == [0, 1, 5, 2]
    assert all(f.image.shape == (H, W, 3) for f in frames)
    np.testing.assert_allclose([f.timestamp for f in frames], [0, 0.2, 0.4, 0.6])
    assert any("img4.png" in r.getMessage() for r in caplog.records)


def test_single_image_file(tmp_path):
    cv2.imwrite(str(tmp_path / "one.png"), picture(3))
    frames = list(open_source(tmp_path / "one.png"))
    assert len(frames) == 1 and block_index(frames[0].image) == 3


def test_empty_folder(tmp_path):
    with pytest.raises(TransposeLiveError, match="no images"):
        open_source(tmp_path)


def test_dispatch_of_urls(monkeypatch):
    seen = []
    monkeypatch.setattr(RtspSource, "__init__", lambda self, url, **options: seen.append((url, options)))
    for url in ("rtsp://cam/live", "rtsps://cam/live", "http://host/x.m3u8", "HTTPS://host/v"):
        assert isinstance(open_source(url), RtspSource)
    assert [url for url, _ in seen] == ["rtsp://cam/live", "rtsps://cam/live", "http://host/x.m3u8", "HTTPS://host/v"]
    assert seen[0][1] == {"transport": "tcp", "timeout": 10.0, "max_retries": None}     # never gives up by default
    seen.clear()
    open_source("rtsp://cam/live", transport="udp", timeout=3, max_retries=0)
    assert seen == [("rtsp://cam/live", {"transport": "udp", "timeout": 3, "max_retries": 0})]
    with pytest.raises(TransposeLiveError, match="empty source"):
        open_source("  ")


# ---------------------------------------------------------------------------------------------------------
# streams without a server: av.open faked (each attempt opens a raw H.264 clip or raises FFmpeg's error);
# tests/test_rtsp.py does the same against a real RTSP server


PASSWORD = "hunter2-Secret"
URL = f"rtsp://admin:{PASSWORD}@cam.local:8554/live"


def raw_clip(path: Path, n: int = 6) -> Path:
    """A raw H.264 stream (no duration, no pts: like a live stream, timestamps count frames at 25 fps)."""
    with av.open(str(path), "w", format="h264") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(picture(i), format="bgr24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return path


@pytest.fixture
def camera(monkeypatch):
    """A fake network: `camera.script` lists what each connection attempt gets, a clip path (its frames,
    then the end of the stream) or an exception; the last entry repeats. `camera.times`: when each came."""
    class Camera:
        script: list = []
        times: list = []

    real = av.open

    def fake_open(url, *args, **kwargs):
        if url != URL:                  # the test writing its clip
            return real(url, *args, **kwargs)
        assert kwargs["container_options"]["fflags"] == "nobuffer"
        Camera.times.append(time.monotonic())
        step = Camera.script[min(len(Camera.times), len(Camera.script)) - 1]
        if isinstance(step, Exception):
            raise step
        return real(str(step))

    monkeypatch.setattr(av, "open", fake_open)
    return Camera


def refused():
    return av.ConnectionRefusedError(111, "Connection refused", URL)


def unauthorized():
    return av.HTTPUnauthorizedError(-825242872, "Server returned 401 Unauthorized (authorization failed)", URL)


def fast(source: RtspSource, start: float = 0.01, cap: float = 0.04, jitter: float = 0.0) -> RtspSource:
    source.backoff_start, source.backoff_cap, source.jitter = start, cap, jitter
    return source


def test_stream_reconnects_after_its_end_and_timestamps_keep_increasing(tmp_path, camera, caplog):
    clip = raw_clip(tmp_path / "cam.h264")
    camera.script = [clip, refused(), refused(), clip]
    events = []
    source = fast(RtspSource(URL, timeout=2, on_event=events.append))
    assert source.state == "live" and source.size == (W, H)
    frames = [f for _, f in zip(range(12), source)]
    source.close()
    assert [f.index for f in frames] == list(range(12))
    assert [block_index(f.image) for f in frames] == list(range(6)) * 2
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(12) / 25, atol=1e-6)
    assert [e["event"] for e in events] == ["stream_lost", "stream_back"]
    assert events[0] == {"event": "stream_lost", "reason": "end of stream", "frames": 6}
    assert events[1]["reconnects"] == 1 and events[1]["down_s"] > 0.01 + 0.02 + 0.04 - 0.005
    assert source.reconnects == 1 and source.state == "live" and len(camera.times) == 4
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


def test_backoff_doubles_up_to_its_cap_then_gives_up(camera):
    camera.script = [refused()]
    events = []
    source = fast(RtspSource(URL, timeout=2, max_retries=5, on_event=events.append), start=0.02, cap=0.1)
    assert source.state == "connecting" and source.last_error == "Connection refused"
    with pytest.raises(TransposeLiveError, match=r"cannot connect to rtsp://admin:\*\*\*@cam.local:8554/live after 5 "
                                                 r"retries: Connection refused") as info:
        next(source)
    assert PASSWORD not in str(info.value)
    waits = np.diff(camera.times)
    assert len(waits) == 5
    expected = [0.02, 0.04, 0.08, 0.1, 0.1]         # doubling, capped
    assert all(w >= e - 0.003 for w, e in zip(waits, expected)), waits
    assert all(w < e + 0.05 for w, e in zip(waits, expected)), waits
    assert source.state == "failed" and events == [{"event": "stream_failed", "reason": "Connection refused"}]
    with pytest.raises(StopIteration):
        next(source)


def test_jitter_spreads_the_waits(camera):
    camera.script = [refused()]
    source = fast(RtspSource(URL, timeout=2), start=1.0, cap=30.0, jitter=0.2)
    delays = [source._delay() for _ in range(200)]
    assert 0.8 <= min(delays) < 0.85 and 1.15 < max(delays) <= 1.2
    source.close()


def test_an_authentication_failure_waits_the_cap_every_time(camera):
    camera.script = [unauthorized()]
    source = fast(RtspSource(URL, timeout=2, max_retries=2), start=0.001, cap=0.15)
    assert source.last_error == "authentication failed (401)"
    with pytest.raises(TransposeLiveError, match=r"authentication failed \(401\)"):
        next(source)
    assert all(w >= 0.15 - 0.003 for w in np.diff(camera.times))     # never the 1 ms of a plain failure


def test_max_retries_0_fails_in_the_constructor_and_the_lost_stream_fails_at_once(tmp_path, camera):
    camera.script = [refused()]
    with pytest.raises(TransposeLiveError, match="cannot connect to .*: Connection refused$"):
        RtspSource(URL, timeout=2, max_retries=0)
    assert len(camera.times) == 1
    camera.script, camera.times[:] = [raw_clip(tmp_path / "cam.h264"), refused()], []
    events = []
    source = RtspSource(URL, timeout=2, max_retries=0, on_event=events.append)
    with pytest.raises(TransposeLiveError, match="stream lost and not back after 0 retries: end of stream"):
        list(source)
    assert [e["event"] for e in events] == ["stream_lost", "stream_failed"] and len(camera.times) == 1


def test_close_ends_a_reconnect_wait_from_another_thread(camera):
    camera.script = [refused()]
    source = fast(RtspSource(URL, timeout=2), start=30.0, cap=30.0)
    ended = threading.Event()
    threading.Thread(target=lambda: (list(source), ended.set()), daemon=True).start()
    time.sleep(0.1)
    assert not ended.is_set() and source.state == "connecting"
    t = time.monotonic()
    source.close()
    assert ended.wait(1.0) and time.monotonic() - t < 0.5
    assert source.wait_closed(1.0) and len(camera.times) == 1


@pytest.mark.parametrize("url, shown", [
    ("rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://admin:***@10.0.0.5:554/stream1"),
    ("rtsp://admin:p@ss@cam/x", "rtsp://admin:***@cam/x"),               # @ inside the password
    ("rtsp://admin:pa/ss@cam/x", "rtsp://admin:***@cam/x"),              # / inside the password
    ("rtsp://admin:%40b%2Fc@cam/x", "rtsp://admin:***@cam/x"),
    ("rtsp://admin@cam/x", "rtsp://admin@cam/x"),                        # no password
    ("rtsp://cam:554/a@b", "rtsp://cam:554/a@b"),                        # a port, and an @ in the path
    ("http://cam/video.mjpg?user=admin&pwd=hunter2&res=1", "http://cam/video.mjpg?user=admin&pwd=***&res=1"),
    ("cannot connect to rtsp://u:hunter2@cam/x: refused", "cannot connect to rtsp://u:***@cam/x: refused"),
])
def test_redact(url, shown):
    from transpose_live.media.redact import redact_url as _redact

    assert _redact(url) == shown


# ---------------------------------------------------------------------------------------------------------
# real files


def test_shipped_sample_clip():
    with open_source(REPO / "samples" / "pedestrians.mp4") as source:
        assert source.size == (768, 576) and source.fps == pytest.approx(10.0)
        assert source.frame_count == 50 and source.audio is None
        frames = list(source)
    assert len(frames) == 50
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(50) / 10, atol=1e-3)


def test_real_avi_msmpeg4():
    path = shared_path("data", "videos", "vtest.avi")
    with FileSource(path, start=30.0, end=30.5) as source:
        assert source.size == (768, 576)
        frames = list(source)
    assert len(frames) == 5
    assert frames[0].timestamp == pytest.approx(30.0)
    assert all(f.image.shape == (576, 768, 3) for f in frames)

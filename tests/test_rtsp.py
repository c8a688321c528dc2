"""RtspSource against a real RTSP server on 127.0.0.1 (tests/rtsp_server.py: GStreamer's gst-rtsp-server run
by the system python). Frames, reconnection after the server dies or hangs, retry limits, 401/404, close()
during a reconnect wait, and the password kept out of every message. Skips with the reason when GStreamer's
pieces are not installed. Every test has a hard timeout; waits are short because the tests shrink the
source's backoff where they need it."""

from __future__ import annotations

import logging
import threading
import time

import av
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sources import RtspSource, open_source

import rtsp_server
from helpers import wait_until
from rtsp_server import RtspServer, free_port

USER, PASSWORD = "admin", "hunter2-Secret"


@pytest.fixture
def server():
    rtsp_server.require()
    with RtspServer(paths=("/cam", "/door"), user=USER, password=PASSWORD) as s:
        yield s


@pytest.fixture
def events():
    return []


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger="transpose_live")
    return caplog


@pytest.fixture
def attempts(monkeypatch):
    """Times (monotonic) of every connection attempt the sources make."""
    seen, real = [], av.open

    def counting(*args, **kwargs):
        seen.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    return seen


def assert_no_password(*texts, logs=None, events=()):
    texts = list(texts) + [repr(e) for e in events]
    if logs is not None:
        texts += [r.getMessage() for r in logs.records]
    for text in texts:
        assert PASSWORD not in text, text


class Reader:
    """Iterates a source in its own thread, keeping the frames and the error that ended it."""

    def __init__(self, source, limit: int | None = None, on_frame=None):
        self.source, self.limit, self.on_frame = source, limit, on_frame
        self.frames, self.error = [], None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for frame in self.source:
                self.frames.append(frame)
                if self.on_frame is not None:
                    self.on_frame(frame)
                if self.limit is not None and len(self.frames) >= self.limit:
                    break
        except Exception as exc:        # noqa: BLE001 - handed to the test
            self.error = exc

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


# ---------------------------------------------------------------------------------------------------------
# frames


@pytest.mark.timeout(30)
def test_rtsp_source_reads_live_frames(server, logs):
    with open_source(server.url("/cam"), timeout=5) as source:
        assert isinstance(source, RtspSource)
        assert source.is_live and source.state == "live"
        assert source.reconnects == 0 and source.last_error is None
        assert source.size == (320, 240) and source.fps == pytest.approx(15)
        assert source.frame_count is None
        assert source.safe_url == f"rtsp://{USER}:***@127.0.0.1:{server.port}/cam"
        assert source.url == server.url("/cam")          # what reopens it
        assert repr(source) == f"RtspSource('{source.safe_url}', state='live')"
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 12:
                break
    assert source.wait_closed(5)
    assert [f.index for f in frames] == list(range(12))
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    ts = [f.timestamp for f in frames]
    assert ts[0] == 0.0 and all(b > a for a, b in zip(ts, ts[1:]))
    # 15 fps test pattern: 11 intervals of ~1/15 s
    assert ts[-1] == pytest.approx(11 / 15, abs=0.1)
    # the bouncing ball moves: the pictures are live, not one frame repeated
    assert np.abs(frames[0].image.astype(int) - frames[-1].image.astype(int)).mean() > 0.5
    assert_no_password(logs=logs)


@pytest.mark.timeout(30)
def test_several_paths_and_udp_transport(server):
    for path, transport in (("/door", "udp"), ("/cam", "tcp")):
        with RtspSource(server.url(path), transport=transport, timeout=5, max_retries=0) as source:
            frames = [f for _, f in zip(range(5), source)]
        assert len(frames) == 5 and source.state == "live"


# ---------------------------------------------------------------------------------------------------------
# reconnection


@pytest.mark.timeout(40)
def test_the_server_dies_and_comes_back_and_so_do_the_frames(server, events, logs):
    source = RtspSource(server.url("/cam"), timeout=3, on_event=events.append)
    source.backoff_cap = 1.0            # retry at least every ~1.2 s while the server is away
    states, watching = [], threading.Event()

    def watch():
        while not watching.is_set():
            if not states or states[-1] != source.state:
                states.append(source.state)
            time.sleep(0.01)

    killed = {}

    def on_frame(frame):
        if frame.index == 10:
            server.kill()
            killed["at"] = time.monotonic()
            threading.Timer(3.0, server.start).start()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    reader = Reader(source, limit=30, on_frame=on_frame)
    assert reader.join(30), "no frames after the server came back"
    watching.set()
    source.close()
    assert reader.error is None
    frames = reader.frames
    assert len(frames) == 30
    assert [f.index for f in frames] == list(range(30))
    ts = [f.timestamp for f in frames]
    assert all(b > a for a, b in zip(ts, ts[1:])), ts
    # the gap: timestamps continue one frame interval on, not with the wall-clock time of the outage
    gaps = np.diff(ts)
    assert gaps.max() < 0.5
    assert [e["event"] for e in events] == ["stream_lost", "stream_back"]
    lost, back = events
    assert lost["frames"] >= 11 and lost["reason"]
    assert 2.5 < back["down_s"] < 15 and back["reconnects"] == 1
    assert source.reconnects == 1 and source.state == "live"
    assert states == ["live", "reconnecting", "live"]
    assert any("stream lost" in r.getMessage() for r in logs.records if r.levelno == logging.WARNING)
    assert_no_password(repr(source), logs=logs, events=events)


@pytest.mark.timeout(40)
def test_a_hung_server_is_noticed_within_the_timeout(server, events):
    """SIGSTOP: the connection stays open and silent; the read timeout, not the OS, ends the wait."""
    source = RtspSource(server.url("/cam"), timeout=2, on_event=events.append)
    source.backoff_cap = 1.0
    frozen = {}

    def on_frame(frame):
        if frame.index == 5:
            server.freeze()
            frozen["at"] = time.monotonic()
            threading.Timer(4.0, server.thaw).start()

    reader = Reader(source, limit=15, on_frame=on_frame)
    assert wait_until(lambda: events, 10), "the hang was not noticed"
    noticed = time.monotonic() - frozen["at"]
    assert noticed < 2 + 1.5, f"a silent server held the reader {noticed:.1f} s with timeout=2"
    assert events[0]["event"] == "stream_lost" and "no answer" in events[0]["reason"]
    assert reader.join(20)
    source.close()
    assert reader.error is None and len(reader.frames) == 15
    assert [e["event"] for e in events] == ["stream_lost", "stream_back"]


@pytest.mark.timeout(30)
def test_close_during_a_reconnect_wait_returns_at_once_and_the_reader_ends(server, events):
    source = RtspSource(server.url("/cam"), timeout=3, on_event=events.append)
    source.backoff_start = 20.0         # a long wait: only close() can end it
    reader = Reader(source, on_frame=lambda f: f.index == 3 and server.kill())
    assert wait_until(lambda: source.state == "reconnecting", 10)
    time.sleep(0.2)                     # well inside the wait
    t = time.monotonic()
    source.close()
    assert time.monotonic() - t < 0.2
    assert reader.join(1.0), "the reader was still waiting to reconnect"
    assert time.monotonic() - t < 1.0
    assert reader.error is None and source.wait_closed(1.0)
    assert [e["event"] for e in events] == ["stream_lost"]


# ---------------------------------------------------------------------------------------------------------
# giving up, and what is said


@pytest.mark.timeout(20)
def test_unreachable_port_with_max_retries_0_fails_at_once_with_one_error(attempts):
    url = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/nothing"     # nothing listens there
    t = time.monotonic()
    with pytest.raises(TransposeLiveError, match=r"cannot connect to rtsp://admin:\*\*\*@127\.0\.0\.1:\d+/nothing: "
                                                 r"Connection refused") as info:
        open_source(url, timeout=3, max_retries=0)
    assert time.monotonic() - t < 3
    assert len(attempts) == 1
    assert_no_password(str(info.value))


@pytest.mark.timeout(20)
def test_unreachable_port_gives_up_after_max_retries(events, attempts, logs):
    url = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/nothing"
    source = RtspSource(url, timeout=3, max_retries=2, on_event=events.append)
    assert source.state == "connecting" and source.last_error == "Connection refused"
    assert source.size == (0, 0)        # until a first frame
    t = time.monotonic()
    with pytest.raises(TransposeLiveError, match=r"after 2 retries: Connection refused") as info:
        next(source)
    elapsed = time.monotonic() - t
    # the waits: 0.5 s then 1 s, each ±20 %
    assert 0.5 * 0.8 + 1.0 * 0.8 - 0.05 < elapsed < 0.5 * 1.2 + 1.0 * 1.2 + 1.0
    assert len(attempts) == 3           # the first attempt and two retries
    assert source.state == "failed"
    assert events == [{"event": "stream_failed", "reason": "Connection refused"}]
    assert list(source) == []           # the iteration has ended
    assert_no_password(str(info.value), repr(source), logs=logs, events=events)


@pytest.mark.timeout(20)
def test_an_unknown_path_is_a_404(server, events, logs):
    with pytest.raises(TransposeLiveError, match=r"/nope: no such stream path \(404\)"):
        RtspSource(server.url("/nope"), timeout=3, max_retries=0, on_event=events.append)
    assert events == [{"event": "stream_failed", "reason": "no such stream path (404)"}]
    source = RtspSource(server.url("/nope"), timeout=3)
    assert source.state == "connecting" and source.last_error == "no such stream path (404)"
    source.close()
    assert_no_password(logs=logs, events=events)


@pytest.mark.timeout(20)
def test_a_wrong_password_is_a_401_retried_slowly(server, events, attempts, logs):
    wrong = "not-" + PASSWORD
    url = server.url("/cam").replace(PASSWORD, wrong)
    source = RtspSource(url, timeout=3, on_event=events.append)
    assert source.state == "connecting" and source.last_error == "authentication failed (401)"
    reader = Reader(source)
    time.sleep(3.0)
    assert reader.thread.is_alive() and source.state == "connecting"
    assert len(attempts) == 1, "a 401 must not be retried in a tight loop"
    t = time.monotonic()
    source.close()
    assert reader.join(1.0) and time.monotonic() - t < 1.0
    assert reader.error is None and reader.frames == []
    # no credentials at all: the same answer
    with pytest.raises(TransposeLiveError, match=r"authentication failed \(401\)") as info:
        RtspSource(server.url("/cam", with_credentials=False), timeout=3, max_retries=0)
    for text in [str(info.value), repr(source)] + [r.getMessage() for r in logs.records] + [repr(e) for e in events]:
        assert wrong not in text and PASSWORD not in text


@pytest.mark.timeout(10)
def test_rtsp_password_is_not_shown():
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/cam"
    with pytest.raises(TransposeLiveError) as info:
        open_source(url, timeout=3, max_retries=0)
    assert "hunter2" not in str(info.value) and "admin:***@" in str(info.value)


def test_rtsp_bad_options():
    with pytest.raises(TransposeLiveError, match="transport"):
        RtspSource("rtsp://127.0.0.1:1/x", transport="carrier-pigeon")
    with pytest.raises(TransposeLiveError, match="max_retries"):
        RtspSource("rtsp://127.0.0.1:1/x", max_retries=-1)
    with pytest.raises(TransposeLiveError, match="timeout"):
        RtspSource("rtsp://127.0.0.1:1/x", timeout=0)

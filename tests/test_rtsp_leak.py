"""Issue 27: a lost RTSP connection releases everything it opened. The real loopback server
(tests/rtsp_server.py) dies, hangs and comes back several times; after the first reconnect the process's OS
threads (/proc/self/task) and open file descriptors (/proc/self/fd) stay flat, and closing the source during a
reconnect wait gives back all it held. And no frame staler than live comes after a reconnect.

Python's cyclic garbage collector is switched off while the source runs: an object that only that collector
would free stays alive for as long as a long-running process goes without a full collection (with torch and
OpenVINO loaded, many minutes), so anything left to it counts as leaked here. (The leak this found: PyAV caches
a frame's side data in an object that points back at the frame; reading the display matrix on each
connection's first frame made one such cycle per connection, and the frame owned the swscale context of its
to_ndarray(format=...) conversion with its 2 slice threads: +2 OS threads per outage.)"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from collections import Counter

import pytest

from transpose_live.media.sources import RtspSource

import rtsp_server
from helpers import wait_until
from rtsp_server import RtspServer


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled(count, value_wanted=None, seconds: float = 3.0) -> int:
    """The count once it has stopped changing (threads end a moment after their work)."""
    deadline = time.monotonic() + seconds
    last = count()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count()
        if now == last and (value_wanted is None or now <= value_wanted):
            return now
        last = now
    return last


def pyav_garbage() -> Counter:
    """PyAV objects that only the cyclic collector would free (collected here, and counted)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("av."))
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.collect()
    return found


@pytest.fixture
def no_cyclic_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.mark.timeout(120)
def test_threads_and_files_stay_flat_across_outages_and_close_gives_everything_back(no_cyclic_gc):
    rtsp_server.require()
    with RtspServer(paths=("/cam",), fps=15) as server:
        time.sleep(0.5)
        threads_before, fds_before = settled(os_threads), settled(open_fds)
        events: list[dict] = []
        source = RtspSource(server.url(), timeout=1.5, on_event=events.append)
        source.backoff_start, source.backoff_cap = 0.2, 0.5
        frames = [0]
        connections: list[list[tuple[float, float]]] = [[]]     # per connection: (read at, wall - timestamp)

        def read():
            for frame in source:
                now = time.monotonic()
                if sum(e["event"] == "stream_back" for e in events) >= len(connections):
                    connections.append([])
                connections[-1].append((now, now - frame.timestamp))
                frames[0] += 1

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert wait_until(lambda: frames[0] >= 10, 10)

        def outage(kind: str) -> None:
            backs = sum(e["event"] == "stream_back" for e in events)
            if kind == "kill":                  # connection reset; the reconnect attempts meet a closed port
                server.kill()
                time.sleep(1.0)
                server.start()
            else:                               # a hung camera: the read times out
                server.freeze()
                time.sleep(2.5)
                server.thaw()
            assert wait_until(lambda: sum(e["event"] == "stream_back" for e in events) > backs, 20), kind
            seen = frames[0]
            assert wait_until(lambda: frames[0] >= seen + 10, 10), f"no frames after the {kind} outage"

        outage("kill")
        threads_first, fds_first = settled(os_threads), settled(open_fds)
        counts = []
        for kind in ("freeze", "kill", "freeze", "kill"):
            outage(kind)
            counts.append((kind, settled(os_threads, threads_first), settled(open_fds, fds_first)))
        lost = [e["reason"] for e in events if e["event"] == "stream_lost"]
        assert len(lost) == 5 and sum("no answer" in r for r in lost) == 2, lost
        assert source.reconnects == 5
        # no stale frame after a reconnect: a frame's lag (its arrival - its timestamp, which follows the
        # camera's clock within a connection) in the first 10 s is at most 2 s over the connection's median
        for lags in connections[1:]:
            typical = statistics.median(lag for _, lag in lags)
            stale = max(lag for at, lag in lags if at - lags[0][0] <= 10) - typical
            assert stale < 2.0, f"a frame {stale:.2f} s staler than live after a reconnect"
        for _kind, threads, fds in counts:      # +2 threads per outage before the fix
            assert threads <= threads_first, (f"OS threads grew across outages: {threads_first} after the first "
                                              f"reconnect, then {counts}")
            assert fds <= fds_first, f"open files grew across outages: {fds_first}, then {counts}"

        # the camera dies again and the source is closed while it waits to reconnect
        server.kill()
        assert wait_until(lambda: source.state == "reconnecting", 10)
        source.close()
        reader.join(5)
        assert not reader.is_alive() and source.wait_closed(5)
        assert settled(os_threads, threads_before) <= threads_before
        assert settled(open_fds, fds_before) <= fds_before
    assert pyav_garbage() == Counter(), "PyAV objects were left to the cyclic garbage collector"

"""Following a camera's JSON Lines log (what `monitor` writes) while it grows: frames with the wall-clock time
they were read, stream events in order, the latest stats line. What the soak learns about each camera."""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

POLL_S = 0.1           # how often a log is read: the resolution of a frame's arrival time
AFTER_RECONNECT_S = 10.0   # frames this long after a stream_back are checked for staleness


@dataclass
class Connection:
    """The frames of one connection (from the start or a stream_back to the next stream_lost):
    lag = wall time read - the frame's stream timestamp. Within a connection the timestamps follow the
    camera's clock, so a frame held back (an old backlog delivered after a reconnect) has a larger lag than
    the connection's typical (median) one; the pipeline's own latency is in every lag and cancels out,
    apart from its jitter."""

    started: float                       # wall time (monotonic) the connection's first frame was read
    lags: list[tuple[float, float]] = field(default_factory=list)    # (read at, lag)

    def stale_s(self, window_s: float = AFTER_RECONNECT_S) -> float:
        """How much older than the connection's typical frame its stalest one in the first `window_s` was."""
        if not self.lags:
            return 0.0
        typical = statistics.median(lag for _, lag in self.lags)
        early = [lag for at, lag in self.lags if at - self.started <= window_s]
        return max(0.0, max(early) - typical) if early else 0.0


class CameraLog:
    """Tails `path` in a thread of its own; thread-safe counters for the soak to sample."""

    def __init__(self, name: str, path: Path):
        self.name = name
        self.path = path
        self.frames = 0
        self.events: list[dict] = []             # stream_lost / stream_back / stream_failed, in order
        self.stats: dict | None = None           # the latest {"event": "stats"} line
        self.connections: list[Connection] = []
        self.bad_lines = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._offset = 0
        self._partial = ""
        self._thread = threading.Thread(target=self._follow, name=f"soak-log-{name}", daemon=True)

    def start(self) -> "CameraLog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._read()                             # what was written last

    def snapshot(self) -> dict:
        with self._lock:
            return {"frames": self.frames, "events": list(self.events), "stats": dict(self.stats or {})}

    def lost_and_back(self) -> tuple[int, int, int]:
        """(stream_lost count, stream_back count, losses never followed by a stream_back)."""
        with self._lock:
            kinds = [e["event"] for e in self.events if e["event"] in ("stream_lost", "stream_back")]
        open_loss, unmatched = False, 0
        for kind in kinds:
            if kind == "stream_lost":
                unmatched += open_loss           # two losses in a row: the first never came back
                open_loss = True
            else:
                open_loss = False
        return kinds.count("stream_lost"), kinds.count("stream_back"), unmatched + open_loss

    def stale_after_reconnects(self) -> list[float]:
        """For each connection after the first: how stale its first frames were (seconds)."""
        with self._lock:
            return [round(c.stale_s(), 3) for c in self.connections[1:]]

    # -------------------------------------------------------------------------------------------------

    def _follow(self) -> None:
        while not self._stop.wait(POLL_S):
            self._read()

    def _read(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                f.seek(self._offset)
                chunk = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return
        if not chunk:
            return
        now = time.monotonic()
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()              # a line still being written
        for line in lines:
            if line.strip():
                self.add_line(line, now)

    def add_line(self, line: str, now: float) -> None:
        """One line of the log, read at `now` (time.monotonic())."""
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            with self._lock:
                self.bad_lines += 1
            return
        with self._lock:
            event = record.get("event")
            if event is None:
                self.frames += 1
                if not self.connections or self._new_connection_due():
                    self.connections.append(Connection(started=now))
                ts = record.get("timestamp")
                if isinstance(ts, (int, float)):
                    self.connections[-1].lags.append((now, now - ts))
            elif event == "stats":
                self.stats = record
            elif event.startswith("stream_"):
                self.events.append(record)

    def _new_connection_due(self) -> bool:
        """Whether a stream_back came after the current connection's frames began (this frame starts the next)."""
        backs = [e for e in self.events if e["event"] == "stream_back"]
        return len(backs) >= len(self.connections)


__all__ = ["CameraLog", "Connection", "POLL_S", "AFTER_RECONNECT_S"]

"""What the web view knows of one camera, built only from that camera's output stream: the rendered frames
(the newest one kept for tiles, MJPEG and event snapshots), the events (stream_lost / stream_back /
stream_failed move the state; the pipeline's periodic {"event": "stats"} brings latency, drops and
reconnects) and how the output ended (close: stopped; abort: failed).

Frames arrive in the pipeline's render thread: taking one costs a reference and a few counters under a
lock (never an encode), so no viewer can slow the pipeline. The rendered frame is a fresh array per frame
(render.draw_frame returns a new image), so keeping a reference is safe.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Protocol

import numpy as np

from transpose_live.media.redact import redact_url, url_secrets
from transpose_live.types import FrameResult

FPS_WINDOW_S = 10.0         # fps over the frames of the last this many seconds (a slow camera still has one)
# how each stream event moves the camera's state
STATE_AFTER = {"stream_lost": "reconnecting", "stream_back": "live", "stream_failed": "failed"}
STATES = ("connecting", "live", "reconnecting", "failed", "stopped")


class Controls(Protocol):
    """What the web view may ask of a camera's pipeline (live.pipeline.Pipeline has it)."""

    def set_attention(self, on: bool) -> None: ...


class CameraFeed:
    """One camera as the web view sees it. `on_change(feed)` is called (outside the lock, in the calling
    thread) when the state changes."""

    def __init__(self, name: str, url: str | None = None, records: bool = False,
                 on_change: Callable[["CameraFeed"], None] | None = None):
        self.name = name
        self.source = redact_url(url) if url else None       # never the password
        self.secrets = url_secrets(url) if url else ()
        self.records = bool(records)
        self.on_change = on_change
        self.controls: Controls | None = None
        self.new_frame = threading.Condition()               # notified on every frame (the JPEG encoder waits)
        self.image: np.ndarray | None = None
        self.seq = 0                                          # frames taken so far (the newest one's number)
        self.state = "connecting"
        self.persons = 0
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self.latency_p50_ms: float | None = None
        self.latency_p95_ms: float | None = None
        self.dropped = 0
        self.reconnects = 0
        self.last_event: dict | None = None
        self.events: collections.Counter[str] = collections.Counter()
        self._times: collections.deque[float] = collections.deque(maxlen=512)

    # --------------------------------------------------------------------------- from the pipeline

    def take_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        now = time.monotonic()
        with self.new_frame:
            if image is not None:
                self.image = image
                self.seq += 1
                self.size = (int(image.shape[1]), int(image.shape[0]))
            self.frames += 1
            self.persons = len(result.poses)
            self._times.append(now)
            # the first frame makes a camera live; after a loss only stream_back does (frames still queued in the
            # pipeline when the stream was lost come out after stream_lost)
            changed = self._set_state("live") if self.state == "connecting" else False
            self.new_frame.notify_all()
        if changed:
            self._changed()

    def take_event(self, record: dict) -> None:
        kind = str(record.get("event", ""))
        with self.new_frame:
            if kind == "stats":
                self.latency_p50_ms = _number(record.get("latency_p50_ms"))
                self.latency_p95_ms = _number(record.get("latency_p95_ms"))
                self.dropped = int(record.get("dropped") or 0)
                self.reconnects = max(self.reconnects, int(record.get("reconnects") or 0))
                return
            if kind == "stream_back":
                self.reconnects = max(self.reconnects, int(record.get("reconnects") or 0))
            self.events[kind] += 1
            self.last_event = {"type": kind, "time": time.time()}
            changed = self._set_state(STATE_AFTER[kind]) if kind in STATE_AFTER else False
        if changed:
            self._changed()

    def reopen(self, records: bool) -> None:
        """A new pipeline for this camera: it connects again."""
        with self.new_frame:
            self.records = bool(records)
            changed = self._set_state("connecting", force=self.state in ("failed", "stopped"))
        if changed:
            self._changed()

    def end(self, failed: bool) -> None:
        """The output was closed (stopped) or aborted after an error (failed)."""
        with self.new_frame:
            changed = self._set_state("failed" if failed or self.state == "failed" else "stopped")
            self.controls = None
            self.new_frame.notify_all()
        if changed:
            self._changed()

    # --------------------------------------------------------------------------- for the pages

    @property
    def fps(self) -> float:
        """Frames per second over the last FPS_WINDOW_S; 0 once no frame has come for two frame intervals (and
        at least a second)."""
        now = time.monotonic()
        with self.new_frame:
            times = [t for t in self._times if now - t <= FPS_WINDOW_S]
        if len(times) < 2:
            return 0.0
        interval = (times[-1] - times[0]) / (len(times) - 1)
        if now - times[-1] > max(1.0, 2 * interval):
            return 0.0
        return 1.0 / max(interval, 1e-6)

    def newest(self) -> tuple[np.ndarray | None, int]:
        with self.new_frame:
            return self.image, self.seq

    def row(self) -> dict[str, Any]:
        """The camera as /api/cameras and the websocket show it."""
        fps = self.fps
        with self.new_frame:
            return {"name": self.name, "state": self.state, "fps": round(fps, 2), "persons": self.persons,
                    "frames": self.frames, "size": list(self.size) if self.size else None,
                    "latency_p50_ms": self.latency_p50_ms, "latency_p95_ms": self.latency_p95_ms,
                    "dropped": self.dropped, "reconnects": self.reconnects, "records": self.records,
                    "source": self.source, "last_event": dict(self.last_event) if self.last_event else None,
                    "events": dict(self.events)}

    def scrub(self, text: str) -> str:
        """`text` with this camera's password (if any) masked."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    # --------------------------------------------------------------------------- inside

    def _set_state(self, state: str, force: bool = False) -> bool:
        """Move to `state`; an ended feed (failed, stopped) only moves when forced (reopened)."""
        if state == self.state or (self.state in ("failed", "stopped") and state != "failed" and not force):
            return False
        self.state = state
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


__all__ = ["CameraFeed", "Controls", "STATES", "STATE_AFTER"]

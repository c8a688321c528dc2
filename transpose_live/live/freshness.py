"""Which frames of a live source are too old to deliver (the pipeline drops them and counts them as dropped).

A live run keeps only the newest frame in each queue, so a frame is normally as old as the work on it. Two
frames are older than that, both around an outage of the stream:

- a frame left waiting for the model while the source delivered nothing newer for `max_wait_s` (the stream
  stalled or dropped right after it): once the model takes it, it shows a moment long gone;
- a frame captured before a reconnect (`stream_back`) that is still in the pipeline (in the model, or behind
  it) when the stream is back: it is older than the outage, and the new connection's frames follow it.

Frames are never dropped for the model's own slowness here: a frame is as fresh as the model allows.
"""

from __future__ import annotations

import threading
import time

MAX_WAIT_S = 2.0     # a live frame that waited this long for the model (nothing newer came) is dropped


class Freshness:
    """The live pipeline's view of its stream's reconnects; thread-safe (the source reports from its reading
    thread, the stages ask from theirs). Times are time.monotonic()."""

    def __init__(self, max_wait_s: float = MAX_WAIT_S):
        self.max_wait_s = float(max_wait_s)
        self._lock = threading.Lock()
        self._back_at: float | None = None      # when the stream last came back after a loss

    def stream_back(self, at: float | None = None) -> None:
        """The stream reconnected now (or `at`): frames captured before are from the lost connection."""
        with self._lock:
            self._back_at = time.monotonic() if at is None else at

    def waited_too_long(self, captured: float, now: float | None = None) -> bool:
        """For the model's input: the frame waited more than max_wait_s with nothing newer captured."""
        return (time.monotonic() if now is None else now) - captured > self.max_wait_s

    def before_reconnect(self, captured: float) -> bool:
        """For the output: the frame was captured before the stream's latest reconnect."""
        with self._lock:
            return self._back_at is not None and captured < self._back_at


__all__ = ["Freshness", "MAX_WAIT_S"]

"""The worker's numbers for the status bar: what the window shows of a run, as one dict per STATS_INTERVAL.

The worker counts the frames it shows and the ones dropped on their way to the screen; each pipeline counts
its own (fps, drops, latency: PipelineStats). A seek or a new setting replaces the pipeline, so the drops of
pipelines that have ended are kept here and added up."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from transpose_live.types import FrameResult
from transpose_live.ui.protocol import PosePipeline

STATS_INTERVAL = 0.5       # seconds between stats signals


def pipeline_counters(pipeline: PosePipeline | None) -> dict[str, Any]:
    """The running pipeline's counters (empty without one)."""
    return pipeline.stats_snapshot().as_dict() if pipeline is not None else {}


class DisplayStats:
    """Frames shown and their rate (over the last 30), drops (by the pipelines and on the way to the screen),
    the latency (the last pipeline's median, kept after it has ended). `shown` and `dropped_on_the_way` are
    changed from the pipeline's last thread, `follow` and `pipeline_ended` called from the worker's, `report`
    from either."""

    def __init__(self) -> None:
        self._lock = threading.Lock()        # the pipeline followed and the drops of those before it, together
        self._pipeline: PosePipeline | None = None
        self.frames = 0
        self.dropped_on_the_way = 0          # frames the GUI had no room for
        self._dropped_before = 0             # frames dropped by pipelines that have ended (rebuilds)
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self._last_report = 0.0
        self._last_result: FrameResult | None = None
        self._fps: float | None = None
        self._latency_ms: float | None = None

    def shown(self, result: FrameResult, now: float) -> None:
        self.frames += 1
        self._times.append(now)
        self._last_result = result

    def follow(self, pipeline: PosePipeline) -> None:
        """`pipeline` runs now: its counters are part of every report until it ends."""
        with self._lock:
            self._pipeline = pipeline

    def pipeline_ended(self) -> None:
        with self._lock:
            if self._pipeline is not None:
                self._dropped_before += int(pipeline_counters(self._pipeline).get("frames_dropped", 0))
            self._pipeline = None

    def report(self, *, force: bool = False, **state: Any) -> dict[str, Any] | None:
        """The stats dict (the running pipeline's counters, then fps, persons, frames, dropped, dropped_display,
        latency_ms and `state`: attention, smooth, paused), or None when the last one is under STATS_INTERVAL
        old (unless `force`)."""
        now = time.monotonic()
        if not force and now - self._last_report < STATS_INTERVAL:
            return None
        self._last_report = now
        times = list(self._times)
        if len(times) >= 2 and times[-1] > times[0]:
            self._fps = (len(times) - 1) / (times[-1] - times[0])
        with self._lock:
            pipeline, dropped_before = self._pipeline, self._dropped_before
        own = pipeline_counters(pipeline)
        if own.get("latency_p50_ms"):
            self._latency_ms = own["latency_p50_ms"]      # kept: the last pipeline's, after it has ended
        result = self._last_result
        return {**own,
                "fps": self._fps,
                "persons": len(getattr(result, "poses", ()) or ()) if result is not None else 0,
                "frames": self.frames,
                "dropped": dropped_before + int(own.get("frames_dropped", 0)) + self.dropped_on_the_way,
                "dropped_display": self.dropped_on_the_way,
                "latency_ms": self._latency_ms,
                **state}

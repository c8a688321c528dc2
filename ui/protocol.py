"""The small piece of `transpose_live.live.pipeline.Pipeline` the window's worker depends on."""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import numpy as np


class PosePipeline(Protocol):
    """What PipelineWorker calls: run() blocks in the worker's thread until the source ends or stop();
    the rest are called from other threads while it runs."""

    estimator: Any       # a PoseEstimator (reused by the next pipeline: the model loads once)
    detector: Any

    def run(self) -> Any: ...

    def stop(self, reason: str = "stopped") -> None: ...

    def set_attention(self, on: bool) -> None: ...

    def set_smooth(self, on: bool) -> None: ...

    def stats_snapshot(self) -> Any: ...      # PipelineStats: .as_dict() with fps, frames_dropped, latency


class PipelineFactory(Protocol):
    """Builds a PosePipeline over an opened source (the default: load_runner + Pipeline)."""

    def __call__(self, source: Any, config: Any, *, sinks: Sequence[Any],
                 on_frame: Callable[[np.ndarray, Any], None], on_event: Callable[[dict], None],
                 estimator: Any, detector: Any) -> PosePipeline: ...

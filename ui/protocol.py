"""The small piece of `transpose_live.live.pipeline.Pipeline` the window's worker depends on, and how one is built.

PipelineWorker (ui/worker.py) only ever calls what PosePipeline names; tests give it stand-ins built by their own
PipelineFactory. The default factory is ui/pipeline_factory.py's real_pipeline."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from transpose_live.detect.base import Detector
from transpose_live.live.pipeline import PipelineStats, PoseModel
from transpose_live.live.spec import RunSpec
from transpose_live.media.sinks import EventListener, Sink
from transpose_live.types import FrameResult
from transpose_live.ui.sources import RememberingSource

FrameCallback = Callable[[np.ndarray, FrameResult], None]     # (rendered BGR frame, its result), the last thread


class PosePipeline(Protocol):
    """What PipelineWorker calls: run() blocks in the worker's thread until the source ends or stop();
    the rest are called from other threads while it runs."""

    @property
    def estimator(self) -> PoseModel: ...     # reused by the next pipeline: the model loads once

    @property
    def detector(self) -> Detector: ...

    def run(self) -> PipelineStats: ...

    def stop(self, reason: str = "stopped") -> None: ...

    def set_attention(self, on: bool) -> None: ...

    def set_smooth(self, on: bool) -> None: ...

    def stats_snapshot(self) -> PipelineStats: ...      # .as_dict() with fps, frames_dropped, latency


class PipelineFactory(Protocol):
    """Builds a PosePipeline over an opened source (the default: load_runner + Pipeline). estimator / detector:
    those of the previous pipeline (None at first: the factory loads them); the inspector runs the estimator's
    network, so it is a transpose_live.pose.estimator.PoseEstimator. sinks: outputs with write_frame and
    close (VideoWriter, JsonlWriter...), owned by the worker: the pipeline must not close them. on_event: the
    run's events (a stream lost and back)."""

    def __call__(self, source: RememberingSource, config: RunSpec, *, sinks: Sequence[Sink],
                 on_frame: FrameCallback, on_event: EventListener, estimator: PoseModel | None,
                 detector: Detector | None) -> PosePipeline: ...

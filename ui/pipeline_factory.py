"""The window's default PipelineFactory (ui/protocol.py): the real transpose_live.live.pipeline.Pipeline."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from transpose_live.detect.base import Detector
from transpose_live.live.pipeline import Pipeline, PoseModel
from transpose_live.live.run import load_runner
from transpose_live.live.spec import RunSpec
from transpose_live.media.sinks import EventListener, Sink
from transpose_live.types import FrameResult
from transpose_live.ui.sources import RememberingSource


def real_pipeline(source: RememberingSource, config: RunSpec, *, sinks: Sequence[Sink] = (),
                  on_frame: Callable[[np.ndarray, FrameResult], None] | None = None,
                  on_event: EventListener | None = None, estimator: PoseModel | None = None,
                  detector: Detector | None = None) -> Pipeline:
    """The real Pipeline; the model and detector are loaded once (here, in the worker's thread) and reused
    by every rebuild. The worker owns the sinks: a rebuilt pipeline goes on writing the same files."""
    if estimator is None or detector is None:
        runner = load_runner(config)
        estimator, detector = estimator or runner.estimator, detector or runner.detector
    return Pipeline(source, config, sinks, estimator=estimator, detector=detector, on_frame=on_frame,
                    on_event=on_event, own_sinks=False)

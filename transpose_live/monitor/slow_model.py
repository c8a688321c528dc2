"""For tests only: a monitor whose model is overloaded on purpose ($TRANSPOSE_LIVE_SLOW_MODEL_S).

With the variable set to S seconds, every detector pass and every pose forward pass first computes in torch
for S seconds (matrix products, in C++ with the GIL released, as the real model's calls are), so a stop
always finds model work in flight and cameras queued behind it - what a starved monitor (latency p50 ~10 s)
looks like at stop. tests/test_monitor_stop.py uses it; unset, nothing changes.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np

from transpose_live.detect.base import Detections, Detector

SLOW_MODEL_ENV = "TRANSPOSE_LIVE_SLOW_MODEL_S"


def slow_model_seconds() -> float:
    """The extra seconds per model call asked for by $TRANSPOSE_LIVE_SLOW_MODEL_S (0.0 when unset)."""
    try:
        return max(0.0, float(os.environ.get(SLOW_MODEL_ENV, "0") or 0))
    except ValueError:
        return 0.0


def busy(seconds: float) -> None:
    """Compute for `seconds` in native code (torch matrix products release the GIL, like a forward pass)."""
    import torch  # deferred: torch, only for this test mode

    a = torch.ones(256, 256)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        torch.mm(a, a)


class SlowDetector(Detector):
    def __init__(self, detector: Detector, seconds: float):
        self.detector, self.seconds = detector, seconds

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        busy(self.seconds)
        return self.detector.detect(frame_bgr)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(frame) for frame in frames]


def slow_down(estimator, detector: Detector, seconds: float) -> Detector:
    """Make `estimator`'s forward pass (a pose.estimator.PoseEstimator) and the returned detector slow."""
    forward = estimator.forward

    def slow_forward(*args, **kwargs):
        busy(seconds)
        return forward(*args, **kwargs)

    estimator.forward = slow_forward
    return SlowDetector(detector, seconds)


__all__ = ["SLOW_MODEL_ENV", "slow_model_seconds", "slow_down", "busy", "SlowDetector"]

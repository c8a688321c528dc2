"""A camera's model calls during a stop: once the camera is told to stop, it starts no new detector pass and
no new pose request, and a wait for the shared detector's turn ends at once.

Why: the detector (OpenVINO, OpenCV) and the pose model (OpenVINO, torch) run in C++ with the GIL released.
A thread still inside such a call when the interpreter shuts down is ended by CPython as it takes the GIL
back, and that unwinding through C++ aborts the process ("terminate called without an active exception",
SIGABRT). So a stopping monitor lets no new model work begin and waits for the calls in flight
(runner.Monitor.stop), instead of queueing one more detector pass per camera behind the shared lock.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Sequence

import numpy as np

from transpose_live.detect.base import Detections, Detector, detector_lock
from transpose_live.errors import TransposeLiveError
from transpose_live.live.pipeline import ConfiguredModel, PoseModel
from transpose_live.types import Pose

if TYPE_CHECKING:
    from transpose_live.model.config import ModelConfig
    from transpose_live.pose.estimator import BoxesLike, ScoresLike

POLL_S = 0.05      # how often a camera waiting for the detector's turn looks whether it was told to stop


class CameraStopping(TransposeLiveError):
    """Raised in a camera's model thread instead of starting model work once the camera is stopping: it
    ends that camera's run as a stop, never as a failure."""


class StoppableDetector(Detector):
    """The shared detector, one call at a time (its own lock, as detect.locked.LockedDetector), for one camera:
    no call starts once `stopped` is set, and waiting for the lock ends then."""

    def __init__(self, detector: Detector, stopped: threading.Event):
        self.detector = detector
        self.stopped = stopped
        self._lock = detector_lock(detector)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        while not self._lock.acquire(timeout=POLL_S):
            self._check()
        try:
            self._check()
            return self.detector.detect(frame_bgr)
        finally:
            self._lock.release()

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(frame) for frame in frames]

    def _check(self) -> None:
        if self.stopped.is_set():
            raise CameraStopping("the camera is stopping")


class StoppableEstimator:
    """The shared pose model (pose.batching.SharedEstimator) for one camera: no request is made once `stopped`
    is set. A request already waiting is released by the SharedEstimator's close(), one in a forward pass
    gets its result (runner.Monitor.stop orders the two)."""

    def __init__(self, shared: PoseModel, stopped: threading.Event):
        self.shared = shared
        self.stopped = stopped

    @property
    def config(self) -> ModelConfig:      # the attention overlay is drawn on the model's token grid
        if isinstance(self.shared, ConfiguredModel):
            return self.shared.config
        raise AttributeError("config")       # a model that tells no input size: none here either

    def estimate(self, frame_bgr: np.ndarray, boxes: BoxesLike = None, box_scores: ScoresLike = None,
                 attention: bool = False) -> list[Pose]:
        if self.stopped.is_set():
            raise CameraStopping("the camera is stopping")
        return self.shared.estimate(frame_bgr, boxes, box_scores, attention)


__all__ = ["CameraStopping", "StoppableDetector", "StoppableEstimator"]

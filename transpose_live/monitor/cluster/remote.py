"""What a camera's pipeline calls instead of a local model and detector: the same faces
(`estimate(frame, boxes, box_scores, attention)`, `detect(frame)`) over the services' handles.

A call whose replica dies (killed, its node lost) or that finds no replica for a moment (one restarting)
is sent again, to another replica or the restarted one, for up to `RETRY_S` seconds; the camera's frame
waits meanwhile and its newer frames replace the older ones (counted as dropped by the pipeline), so the
camera keeps its tracks. Only a service gone for longer is an error (the camera's pipeline ends with it).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from transpose_live.detect.base import Detections, Detector
from transpose_live.errors import TransposeLiveError
from transpose_live.monitor.cluster.crops import CropBatch, cut_crops
from transpose_live.types import Pose

log = logging.getLogger(__name__)

RETRY_S = 300.0         # a call is retried this long (a replica restarted here: 13-26 s; on a new node: more)
CALL_S = 30.0           # one try waits this long for its answer
PAUSE_S = 0.2           # between tries


def _retryable() -> tuple[type[BaseException], ...]:
    from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError  # deferred: optional extra
    from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError

    return (RayActorError, ActorUnavailableError, GetTimeoutError, BackPressureError, DeploymentUnavailableError,
            ReplicaUnavailableError, TimeoutError)


class Retrying:
    """Calls through a handle method with retries over replica loss; counts calls and retries."""

    def __init__(self, what: str, retry_s: float = RETRY_S):
        self.what = what
        self.retry_s = retry_s
        self.calls = 0
        self.retries = 0
        self._lock = threading.Lock()

    def __call__(self, method, *args) -> Any:
        deadline = time.monotonic() + self.retry_s
        retryable = _retryable()
        while True:
            response = method.remote(*args)
            try:
                answer = response.result(timeout_s=CALL_S)
                with self._lock:
                    self.calls += 1
                return answer
            except retryable as exc:
                if isinstance(exc, TimeoutError):
                    response.cancel()      # not answered in time: it must not run after its retry
                if time.monotonic() >= deadline:
                    raise TransposeLiveError(f"the {self.what} service did not answer for {self.retry_s:g} s: "
                                             f"{type(exc).__name__}") from None
                with self._lock:
                    self.retries += 1
                log.info("%s call retried after %s", self.what, type(exc).__name__)
                time.sleep(PAUSE_S)


class RemoteEstimator:
    """PoseEstimator.estimate's face: crops cut here, poses found by the PoseModel service. `connect()` makes
    the service's handle, on first use (it imports Ray Serve: a worker's start-up does that beside opening its
    stream, not in its constructor)."""

    def __init__(self, connect: Callable[[], Any], image_size: tuple[int, int], max_crops: int,
                 flip: bool = False):
        self.connect = connect
        self._handle: Any = None
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.max_crops = int(max_crops)
        self.flip = bool(flip)
        self.call = Retrying("pose model")
        self.crops = 0
        self.first_call: float | None = None    # wall-clock time of the first frame's call (start-up timeline)
        self.replicas: dict[str, tuple[int, int]] = {}     # replica -> its (forwards, crops) when it last answered

    @property
    def handle(self) -> Any:
        if self._handle is None:
            self._handle = self.connect()
        return self._handle

    def warm_up(self) -> None:
        """Before the first frame: the handle finds its replicas, the cropping code is loaded."""
        self.call(self.handle.info)
        cut_crops(np.zeros((8, 8, 3), np.uint8), [[0, 0, 8, 8]], None, self.image_size)

    def estimate(self, frame_bgr: np.ndarray, boxes=None, box_scores=None, attention: bool = False) -> list[Pose]:
        if self.first_call is None:
            self.first_call = time.time()
        batch = cut_crops(frame_bgr, boxes, box_scores, self.image_size, attention, self.flip)
        poses: list[Pose] = []
        for start in range(0, len(batch), self.max_crops):
            rows = slice(start, start + self.max_crops)
            part = CropBatch(batch.crops[rows], batch.centers[rows], batch.scales[rows], batch.boxes[rows],
                             batch.box_scores[rows], batch.attention, batch.flip)
            answer = self.call(self.handle.estimate, part)
            self.crops += len(part)
            self.replicas[answer.replica] = (answer.forwards, answer.crops)
            poses.extend(answer.poses)
        return poses


class RemoteDetector(Detector):
    """Detector's face over the PersonDetector service (its handle made on first use, as RemoteEstimator's)."""

    def __init__(self, connect: Callable[[], Any]):
        self.connect = connect
        self._handle: Any = None
        self.call = Retrying("detector")

    @property
    def handle(self) -> Any:
        if self._handle is None:
            self._handle = self.connect()
        return self._handle

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        return self.call(self.handle.detect, frame_bgr)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(frame) for frame in frames]


__all__ = ["RemoteEstimator", "RemoteDetector", "Retrying", "RETRY_S"]

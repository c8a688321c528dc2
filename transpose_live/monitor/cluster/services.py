"""The model and the detector as Ray Serve deployments, called through handles (no HTTP proxy is started).

PoseModel: one TransPose model per replica on any backend the library has (torch CUDA fp16 on a GPU node,
OpenVINO / ONNX Runtime / torch on a CPU node). The crops of all cameras' calls are batched into one forward
pass by a CropGatherer (gather.py; not `@serve.batch`, which cut 1-call batches while a forward pass ran),
counting crops rather than calls: a call of 3 persons fills 3 of `max_crops`. Each answer carries the
replica's counters (forward passes, crops) so the driver can say how full the batches are without asking
every replica.

PersonDetector: one detector per replica, a call at a time (OpenCV's network is not thread-safe). With
`--detector none` there is no deployment: the whole frame is the person, found on the camera's worker.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from transpose_live.monitor.cluster.crops import CropBatch
from transpose_live.monitor.cluster.gather import CropGatherer
from transpose_live.types import Pose

MAX_CROPS = 32          # most crops in one forward pass (a replica's batch)
WAIT_MS = 5.0           # a batch waits this long after its first call for more cameras' crops
POSE_APP, DETECT_APP = "transpose-live-pose", "transpose-live-detect"


@dataclass(frozen=True)
class PoseAnswer:
    """One call's poses, and the replica's running counters when it answered."""

    poses: list[Pose]
    replica: str
    forwards: int
    crops: int


class PoseModel:
    """A Serve deployment: `estimate(CropBatch) -> PoseAnswer`, batched with the other callers' crops."""

    def __init__(self, options: dict, max_crops: int = MAX_CROPS, wait_ms: float = WAIT_MS):
        from ray import serve  # deferred: Ray is an optional extra

        from transpose_live.live.run import load_estimator
        from transpose_live.live.spec import RunSpec

        self.estimator = load_estimator(RunSpec.from_options(**options))
        self.max_crops = int(max_crops)
        self.replica = f"{serve.get_replica_context().replica_tag}@{os.uname().nodename}:{os.getpid()}"
        self.forwards = self.crops = 0
        self._counters = threading.Lock()
        self.gather = CropGatherer(self._estimate_many, self.max_crops, wait_ms / 1000.0)

    def info(self) -> dict:
        """What a caller needs to cut crops: the model's input size (h, w) and the most crops per call."""
        return {"image_size": tuple(self.estimator.config.image_size), "max_crops": self.max_crops,
                "replica": self.replica}

    async def estimate(self, batch: CropBatch) -> PoseAnswer:
        return await self.gather.submit(batch)

    def _estimate_many(self, batches: list[CropBatch]) -> list[PoseAnswer]:
        """One gathered batch (run in a thread: the calls that arrive meanwhile wait for the next one)."""
        poses = self._forward(batches)
        with self._counters:
            forwards, crops = self.forwards, self.crops
        return [PoseAnswer(p, self.replica, forwards, crops) for p in poses]

    def _forward(self, batches: list[CropBatch]) -> list[list[Pose]]:
        """The batches' crops in one forward pass per (attention, flip) key, decoded per batch."""
        from transpose_live.pose.estimator import PersonCrops  # deferred: only the model's replicas load the model

        est = self.estimator
        out: list[list[Pose]] = [[] for _ in batches]
        for key in dict.fromkeys(b.key for b in batches):
            rows = [i for i, b in enumerate(batches) if b.key == key and len(b)]
            if not rows:
                continue
            crops = np.concatenate([batches[i].crops for i in rows])              # (B, H, W, 3)
            with est.arrays.inference():     # numpy on OpenVINO / ONNX Runtime (no torch), tensors on torch backends
                hm, attn = est.forward(est.arrays.inputs(crops), key[0], flip=key[1])
            with self._counters:
                self.forwards += 1
                self.crops += len(crops)
            start, nowhere = 0, np.zeros((1, 1, 3), np.uint8)     # decoding needs the geometry, not the frame
            for i in rows:
                b = batches[i]
                part = slice(start, start + len(b))
                persons = PersonCrops(nowhere, b.boxes, b.box_scores, b.centers, b.scales)
                out[i] = est.decode(persons, hm[part], None if attn is None else attn[part])
                start = part.stop
        return out


class PersonDetector:
    """A Serve deployment: `detect(frame) -> Detections`, one call at a time per replica."""

    def __init__(self, detector: str, device: str = "auto", tiles: int = 0):
        from transpose_live.detect import create_detector
        from transpose_live.model.device import resolve_device_name

        self.detector = create_detector(detector, device=resolve_device_name(device), tiles=tiles)
        self._lock = threading.Lock()

    def detect(self, frame: np.ndarray):
        with self._lock:
            return self.detector.detect(frame)


__all__ = ["PoseModel", "PersonDetector", "PoseAnswer", "MAX_CROPS", "WAIT_MS", "POSE_APP",
           "DETECT_APP"]

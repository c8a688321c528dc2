"""One detector shared by several threads (the monitor's cameras), one call at a time: detectors are not
thread-safe (OpenCV's network is not). The lock is the detector's own (base.detector_lock), so every wrapper
of one detector, and a detection running beside the pose model, take turns on the same lock."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from transpose_live.detect.base import Detections, Detector, detector_lock


class LockedDetector(Detector):
    def __init__(self, detector: Detector):
        self.detector = detector
        self._lock = detector_lock(detector)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        with self._lock:
            return self.detector.detect(frame_bgr)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        with self._lock:
            return self.detector.detect_batch(frames)


__all__ = ["LockedDetector"]

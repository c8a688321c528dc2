"""A detector that leaves out the persons found inside mask polygons (a poster, a mirror, a street beyond the
fence): nobody is tracked there. The polygon test is geometry.inside_any (the fall rule's ignore zones use it
too)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from transpose_live.detect.base import Detections, Detector
from transpose_live.geometry import inside_any


class MaskedDetector(Detector):
    """The wrapped detector's persons, less those whose box centre lies in a mask polygon (frame pixels)."""

    def __init__(self, detector: Detector, polygons: Sequence[np.ndarray]):
        self.detector = detector
        self.polygons = list(polygons)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        found = self.detector.detect(frame_bgr)
        if not self.polygons or len(found) == 0:
            return found
        centres = found.boxes[:, :2] + found.boxes[:, 2:] / 2
        masked = inside_any(centres, self.polygons)
        return Detections(found.boxes[~masked], found.scores[~masked])

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(frame) for frame in frames]


__all__ = ["MaskedDetector"]

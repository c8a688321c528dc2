"""A detector that leaves out the persons found inside mask polygons (a poster, a mirror, a street beyond the
fence): nobody is tracked there. Also the polygon test it uses (`inside`), which the fall rule's ignore zones
share."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from transpose_live.detect.base import Detections, Detector


def inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which of the (N, 2) points lie inside the polygon (K, 2) (even-odd rule)."""
    x, y = points[:, 0:1], points[:, 1:2]                      # (N, 1)
    x1, y1 = polygon[:, 0], polygon[:, 1]                       # (K,)
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > y) != (y2 > y)                              # (N, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return (crosses & (x < at)).sum(1) % 2 == 1


def inside_any(points: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Which of the (N, 2) points lie inside at least one of the polygons."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    hit = np.zeros(len(points), bool)
    for polygon in polygons:
        hit |= inside(points, polygon)
    return hit


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


__all__ = ["MaskedDetector", "inside", "inside_any"]

"""What every person detector returns and accepts: `Detections`, the `Detector` protocol, and shared helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from ..preprocess import as_bgr  # noqa: F401  (re-exported: detectors accept the same frames)

from ..errors import TransposeLiveError


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


def _empty_scores() -> np.ndarray:
    return np.zeros((0,), np.float32)


@dataclass
class Detections:
    """Persons found in one frame: boxes (K, 4) float32 (x, y, w, h) in frame pixels, scores (K,) float32."""

    boxes: np.ndarray = field(default_factory=_empty_boxes)
    scores: np.ndarray = field(default_factory=_empty_scores)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        if len(self.boxes) != len(self.scores):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.scores)

    def sorted(self) -> "Detections":
        """Highest score first (stable, so equal scores keep their order)."""
        order = np.argsort(-self.scores, kind="stable")
        return Detections(self.boxes[order], self.scores[order])


@runtime_checkable
class Detector(Protocol):
    """Finds persons in BGR frames. Implementations are not thread-safe: use one per thread."""

    def detect(self, frame_bgr: np.ndarray) -> Detections: ...

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]: ...




def nms(boxes_xywh: np.ndarray, scores: np.ndarray, iou_threshold: float, min_score: float = 0.0) -> Detections:
    """Greedy non-maximum suppression; returns the kept detections, highest score first."""
    boxes_xywh = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    keep = scores >= min_score
    boxes_xywh, scores = boxes_xywh[keep], scores[keep]
    if len(scores) == 0:
        return Detections()
    x1, y1 = boxes_xywh[:, 0], boxes_xywh[:, 1]
    x2, y2 = x1 + boxes_xywh[:, 2], y1 + boxes_xywh[:, 3]
    area = np.clip(boxes_xywh[:, 2], 0, None) * np.clip(boxes_xywh[:, 3], 0, None)
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size:
        i = order[0]
        kept.append(int(i))
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return Detections(boxes_xywh[kept], scores[kept])


def clip_boxes(boxes_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip (K, 4) corner boxes to the frame and return them as (x, y, w, h)."""
    b = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def check_score(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise TransposeLiveError(f"{name} must be between 0 and 1, got {value}")
    return value

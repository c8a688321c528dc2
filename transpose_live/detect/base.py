"""What every person detector returns and accepts: `Detections`, the `Detector` protocol, and shared helpers."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import box_iou
from transpose_live.image import as_bgr  # noqa: F401  (re-exported: detectors accept the same frames)


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


# One lock per detector object, for every place that calls one detector from several threads (the
# monitor's cameras; a detection beside the pose step, which the window may still run on its detector
# while the pipeline it built after a seek starts on the same one).
_LOCKS: "weakref.WeakKeyDictionary[object, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_FALLBACK_LOCK = threading.Lock()


def detector_lock(detector) -> threading.Lock:
    """The lock that serialises calls on `detector` (the same lock for the same object, wherever asked)."""
    with _LOCKS_GUARD:
        try:
            return _LOCKS.setdefault(detector, threading.Lock())
        except TypeError:       # not weakly referenceable: one lock for all such detectors
            return _FALLBACK_LOCK


def nms(boxes_xywh: np.ndarray, scores: np.ndarray, iou_threshold: float, min_score: float = 0.0) -> Detections:
    """Greedy non-maximum suppression; returns the kept detections, highest score first."""
    boxes_xywh = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    keep = scores >= min_score
    boxes_xywh, scores = boxes_xywh[keep], scores[keep]
    if len(scores) == 0:
        return Detections()
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        kept.append(int(i))
        iou = box_iou(boxes_xywh[i], boxes_xywh[rest])[0]                   # (len(rest),)
        order = rest[iou <= iou_threshold]
    return Detections(boxes_xywh[kept], scores[kept])


def check_score(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise TransposeLiveError(f"{name} must be between 0 and 1, got {value}")
    return value

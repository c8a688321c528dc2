"""More persons from a detector on wide frames: the whole frame, then square windows along the long side.

A detector with a fixed input (the SSD's 300x300) squashes a 4:3 or 16:9 frame, so a person 60 px tall
becomes ~30 px of network input, where the SSD misses most. `--detect-tiles N` also runs the detector on N
square windows of the frame's short side, spread evenly from one end of the long side to the other (they
overlap where N windows are longer than the frame): a person is seen ~1.3x (4:3) to ~1.8x (16:9) larger.
A window's box that touches one of the window's inner edges (not the frame's border) is a person cut in two
and is dropped: the whole frame or the neighbouring window sees them whole. All boxes then go through one
NMS at the detector's own IoU.

Measured on coco_mini (mostly 4:3; `python tools/measure_detector.py --tiles 0|2`, docs/MODEL_CARD.md):
at the live threshold 0.3, recall 0.651 -> 0.709 and AP with these boxes 0.254 -> 0.272, for 3 detector
calls instead of 1 and more poses to estimate (160 boxes instead of 117). So it is off by default: use it
where people are far from the camera. A frame within 10 % of square has nothing to gain and gets the
whole-frame call only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transpose_live.detect.base import Detections, Detector, nms
from transpose_live.errors import TransposeLiveError

EDGE_PX = 4.0            # a window's box this close to an inner window edge is a cut person
SQUARE_ENOUGH = 1.1      # long / short side at or below this: no windows


def window_origins(width: int, height: int, tiles: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of each square window: `tiles` of them along the long side, evenly spread, the first at
    one end and the last at the other. An empty list for a frame that is nearly square."""
    short, long = min(width, height), max(width, height)
    if tiles < 1 or long <= short * SQUARE_ENOUGH:
        return []
    starts = [round(i * (long - short) / max(1, tiles - 1)) for i in range(tiles)] if tiles > 1 \
        else [round((long - short) / 2)]
    return [(s, 0, short) if width >= height else (0, s, short) for s in starts]


class TiledDetector:
    """`detector` on the whole frame plus `tiles` square windows (see the module's docstring)."""

    def __init__(self, detector: Detector, tiles: int, nms_iou: float | None = None, min_score: float | None = None):
        if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1:
            raise TransposeLiveError(f"detect tiles must be a whole number >= 1, got {tiles!r}")
        self.detector = detector
        self.tiles = tiles
        self.nms_iou = float(nms_iou if nms_iou is not None else getattr(detector, "nms_iou", 0.5))
        self.min_score = float(min_score if min_score is not None else getattr(detector, "min_score", 0.0))

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        height, width = frame_bgr.shape[:2]
        found = [self.detector.detect(frame_bgr)]
        for x, y, side in window_origins(width, height, self.tiles):
            det = self.detector.detect(frame_bgr[y:y + side, x:x + side])
            if len(det):
                found.append(_whole_persons(det, x, y, side, width, height))
        boxes = np.concatenate([d.boxes for d in found])
        scores = np.concatenate([d.scores for d in found])
        return nms(boxes, scores, self.nms_iou, self.min_score)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(f) for f in frames]


def _whole_persons(det: Detections, x: int, y: int, side: int, width: int, height: int) -> Detections:
    """A window's boxes in frame pixels, without those touching an inner edge of the window."""
    boxes = det.boxes.copy()
    boxes[:, 0] += x
    boxes[:, 1] += y
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    cut = np.zeros(len(boxes), bool)
    if x > 0:
        cut |= x1 - x < EDGE_PX
    if x + side < width:
        cut |= x + side - x2 < EDGE_PX
    if y > 0:
        cut |= y1 - y < EDGE_PX
    if y + side < height:
        cut |= y + side - y2 < EDGE_PX
    return Detections(boxes[~cut], det.scores[~cut])


__all__ = ["TiledDetector", "window_origins"]

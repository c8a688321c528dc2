"""`--detector none`: the whole frame is one person with score 1 (single-person crops, webcams at arm's length)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from transpose_live.detect.base import Detections
from transpose_live.errors import TransposeLiveError


class WholeFrameDetector:
    def detect(self, frame_bgr: np.ndarray) -> Detections:
        shape = np.shape(frame_bgr)
        if len(shape) not in (2, 3) or shape[0] < 1 or shape[1] < 1:
            raise TransposeLiveError(f"frames must be (H, W, 3) BGR or (H, W) grayscale, got shape {shape}")
        h, w = shape[:2]
        return Detections(np.array([[0.0, 0.0, w, h]], np.float32), np.ones(1, np.float32))

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(f) for f in frames]

"""Result dataclasses shared by the estimator, pipeline, writers and front ends."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def box_tuple(box) -> tuple[float, float, float, float]:
    """A box's four numbers (x, y, w, h; a sequence or a (4,) array) as Python floats."""
    x, y, w, h = (float(v) for v in box)
    return x, y, w, h


@dataclass
class Pose:
    """One person. keypoints (17, 2) float32 image pixels (NaN where missing), scores (17,) float32."""

    keypoints: np.ndarray
    scores: np.ndarray
    box: tuple[float, float, float, float] | None = None   # x, y, w, h in image pixels
    box_score: float = 1.0
    track_id: int | None = None
    # (17, h, w) float32 dependency areas on the token grid (attention row per joint), only when asked
    attention: np.ndarray | None = None

    @property
    def score(self) -> float:
        """Person score as in the COCO evaluation: box score × mean keypoint score."""
        s = self.scores[np.isfinite(self.scores)]
        return float(self.box_score * (s.mean() if s.size else 0.0))


@dataclass
class FrameResult:
    """All poses found in one frame."""

    index: int
    timestamp: float            # seconds from the start of the source
    poses: list[Pose] = field(default_factory=list)
    size: tuple[int, int] | None = None   # (width, height) of the frame
    # the annotated frame (BGR), when the caller asked for it (open_run(render=True)); never compared
    image: np.ndarray | None = field(default=None, repr=False, compare=False)

"""Box and keypoint geometry, each written once: box IoU, the box helpers and object keypoint similarity.

Boxes are (x, y, w, h) in image pixels unless a name says corners (x1, y1, x2, y2). The detectors' NMS,
the tracker, the pipeline and the COCO evaluation all measure overlap here, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from transpose_live.skeleton import OKS_SIGMAS
from transpose_live.types import Pose

# ---------------------------------------------------------------- boxes

def box_containment(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """(N, M): the share of each inner box (x, y, w, h) that lies inside each outer box. A followed box
    (the joints' extent) is much tighter than the detector's box of the same person, so their IoU is low
    (~0.35) where this is ~1."""
    a, b = np.asarray(inner, np.float64)[:, None], np.asarray(outer, np.float64)[None]
    w = np.clip(np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    return w * h / np.maximum(a[..., 2] * a[..., 3], 1e-9)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) xywh boxes → (N, M) float64; a box with a negative side has no area."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    a_lo, b_lo = a[:, None, :2], b[None, :, :2]                           # (N, 1, 2), (1, M, 2)
    a_hi, b_hi = a_lo + a[:, None, 2:], b_lo + b[None, :, 2:]
    side = np.clip(np.minimum(a_hi, b_hi) - np.maximum(a_lo, b_lo), 0, None)   # (N, M, 2)
    inter = side[..., 0] * side[..., 1]                                   # (N, M)
    union = _area(a)[:, None] + _area(b)[None] - inter
    return inter / np.maximum(union, 1e-9)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2], 0, None) * np.clip(boxes[:, 3], 0, None)   # (N,)


def clip_boxes(boxes_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip (K, 4) corner boxes to the frame and return them as (K, 4) float32 xywh (what detectors return)."""
    b = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def pose_box(pose: Pose) -> np.ndarray | None:
    """The pose's box, else the extent of its finite keypoints (a pose followed without a detector has
    none); None when it has neither."""
    if pose.box is not None:
        box = np.asarray(pose.box, np.float64)
        if box.shape == (4,) and np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0:
            return box
    kp = np.asarray(pose.keypoints, np.float64).reshape(-1, 2)
    kp = kp[np.all(np.isfinite(kp), axis=1)]
    if len(kp) < 2:
        return None
    (x1, y1), (x2, y2) = kp.min(0), kp.max(0)
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1])


def box_area_for_nms(box: Sequence[float], aspect_ratio: float = 0.75, padding: float = 1.25) -> float:
    """The official `np.prod(scale * 200)`: the box grown to the crop's aspect ratio, times 1.25 each side.
    OKS-NMS scales distances by this area, so it must be the crop's, not the detector box's."""
    w, h = float(box[2]), float(box[3])
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return w * h * padding * padding


# ---------------------------------------------------------------- keypoints

def oks(kp_a: np.ndarray, kp_b: np.ndarray, scale: np.ndarray, mask: np.ndarray,
        sigmas: np.ndarray | None = None) -> np.ndarray:
    """Object keypoint similarity of one pose against N others: exp(-d² / (2·scale·(2σ)²)) averaged over
    the joints in `mask`; 0 where no joint counts.

    kp_a (K, 2), kp_b (N, K, 2), scale (N,) (an area in pixels²), mask (N, K) bool → (N,) float64.
    The tracker and the COCO protocol differ only in the scale and the mask they pass; joints outside the
    mask may be NaN.
    """
    sig = OKS_SIGMAS if sigmas is None else np.asarray(sigmas, np.float64)
    var = (sig * 2) ** 2                                                  # (K,)
    mask = np.asarray(mask, bool)
    delta = np.where(mask[..., None], np.asarray(kp_b, np.float64) - np.asarray(kp_a, np.float64)[None], 0.0)
    d2 = delta[..., 0] ** 2 + delta[..., 1] ** 2                          # (N, K)
    e = d2 / var[None, :] / np.asarray(scale, np.float64)[:, None] / 2
    total = np.where(mask, np.exp(-e), 0.0).sum(axis=1)                  # (N,)
    count = mask.sum(axis=1)
    return np.divide(total, count, out=np.zeros(len(total)), where=count > 0)


POSE_JOINT_SCORE = 0.2   # joints at or above this take part in OKS between two found poses


def confident_joints(pose: Pose, min_score: float = POSE_JOINT_SCORE) -> np.ndarray:
    """(K,) bool: the joints of a found pose that are finite and score at least `min_score`."""
    kp = np.asarray(pose.keypoints, np.float64).reshape(-1, 2)
    sc = np.nan_to_num(np.asarray(pose.scores, np.float64).reshape(-1), nan=0.0)
    return (sc >= min_score) & np.isfinite(kp).all(1)


def pose_pair_oks(a: Pose, b: Pose, min_joints: int = 3) -> float:
    """OKS between two found poses (no ground truth): over the joints confident in both, scaled by the mean
    area of their boxes (`pose_box`); 0 when fewer than `min_joints` joints are confident in both. Two poses
    of one person score near 1, two persons side by side near 0."""
    both = confident_joints(a) & confident_joints(b)                     # (K,)
    ba, bb = pose_box(a), pose_box(b)
    if both.sum() < min_joints or ba is None or bb is None:
        return 0.0
    area = (ba[2] * ba[3] + bb[2] * bb[3]) / 2
    ka, kb = np.asarray(a.keypoints, np.float64), np.asarray(b.keypoints, np.float64)
    return float(oks(ka, kb[None], np.array([area]), both[None])[0])


def pose_arrays(poses: Sequence[Pose]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Found poses as arrays: keypoints (N, K, 2) (0 where not confident), confident joints (N, K) bool and
    box areas (N,) of `pose_box` (0 without one: such a pose matches nobody)."""
    n = len(poses)
    if n == 0:
        return np.zeros((0, len(OKS_SIGMAS), 2)), np.zeros((0, len(OKS_SIGMAS)), bool), np.zeros(0)
    ok = np.stack([confident_joints(p) for p in poses])                             # (N, K)
    kp = np.stack([np.asarray(p.keypoints, np.float64).reshape(-1, 2) for p in poses])
    kp = np.where(ok[..., None], kp, 0.0)                                           # (N, K, 2)
    boxes = [pose_box(p) for p in poses]
    area = np.array([0.0 if b is None else b[2] * b[3] for b in boxes])              # (N,)
    ok &= (area > 0)[:, None]
    return kp, ok, area


def pose_oks_matrix(poses: Sequence[Pose], min_joints: int = 3) -> np.ndarray:
    """(N, N) `pose_pair_oks` of every pair at once (the diagonal is 1 where a pose has enough joints)."""
    kp, ok, area = pose_arrays(poses)
    var = (2 * OKS_SIGMAS) ** 2                                                       # (K,)
    both = ok[:, None] & ok[None]                                                     # (N, N, K)
    d2 = ((kp[:, None] - kp[None]) ** 2).sum(-1)                                      # (N, N, K)
    scale = (area[:, None] + area[None]) / 2                                          # (N, N)
    e = np.exp(-d2 / var / np.maximum(scale, 1e-9)[..., None] / 2)
    count = both.sum(-1)
    total = np.where(both, e, 0.0).sum(-1)
    return np.where(count >= min_joints, total / np.maximum(count, 1), 0.0)


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


__all__ = ["inside", "inside_any",
           "box_containment", "box_iou", "clip_boxes", "pose_box", "box_area_for_nms", "oks", "confident_joints",
           "pose_pair_oks",
           "pose_arrays", "pose_oks_matrix", "POSE_JOINT_SCORE"]

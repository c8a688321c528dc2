"""The COCO evaluation protocol's object keypoint similarity (OKS) and greedy OKS-NMS.

Both follow `oks_iou` / `oks_nms` of the authors' released code (inherited from HRNet), so that
evaluation numbers are comparable with the paper's; the OKS formula itself is `geometry.oks`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from transpose_live.geometry import oks


def _as_kpts(kpts: Any) -> np.ndarray:
    """(17, 3) or flat (51,) → (17, 3) float64 of x, y, score/visibility."""
    arr = np.asarray(kpts, dtype=np.float64)
    return arr.reshape(-1, 3)


def compute_oks(
    kpts_a: Any,
    kpts_b_list: Any,
    area: float,
    areas_b: Any = None,
    sigmas: np.ndarray | None = None,
    in_vis_thre: float | None = None,
) -> np.ndarray:
    """OKS of one pose `kpts_a` (17, 3) against each pose in `kpts_b_list` (N, 17, 3) → (N,).

    `area` is the area of a, `areas_b` those of the b's (default: `area` for all); the scale used is
    their mean, as in the official oks_iou. With `in_vis_thre`, only joints whose b-score exceeds it
    count (the official code's `list(vg > t) and list(vd > t)` evaluates to the b mask alone).
    """
    a = _as_kpts(kpts_a)
    bs = np.asarray(kpts_b_list, dtype=np.float64)
    if bs.size == 0:
        return np.zeros(0, dtype=np.float64)
    bs = bs.reshape(-1, a.shape[0], 3)                                     # (N, 17, 3)
    areas = np.full(len(bs), float(area)) if areas_b is None else np.asarray(areas_b, np.float64).reshape(-1)
    scale = (float(area) + areas) / 2 + np.spacing(1)                     # (N,)
    mask = np.ones(bs.shape[:2], bool) if in_vis_thre is None else bs[:, :, 2] > in_vis_thre   # (N, 17)
    return oks(a[:, :2], bs[:, :, :2], scale, mask, sigmas)


def _nms_one_image(results: Sequence[dict], idx: list[int], thresh: float,
                   sigmas: np.ndarray | None, in_vis_thre: float | None) -> list[int]:
    scores = np.array([results[i]["score"] for i in idx], dtype=np.float64)
    kpts = np.stack([_as_kpts(results[i]["keypoints"]) for i in idx])        # (M, 17, 3)
    areas = np.array([results[i]["area"] for i in idx], dtype=np.float64)
    order = scores.argsort(kind="stable")[::-1]
    keep: list[int] = []
    while order.size > 0:
        i = order[0]
        keep.append(idx[i])
        ovr = compute_oks(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, in_vis_thre)
        order = order[np.where(ovr <= thresh)[0] + 1]   # keep only those overlapping at most thresh
    return keep


def oks_nms(
    results: Sequence[dict],
    thresh: float = 0.9,
    sigmas: np.ndarray | None = None,
    in_vis_thre: float | None = None,
) -> list[int]:
    """Greedy OKS-NMS: indices (into `results`) of the poses to keep, best score first per image.

    Each result needs "keypoints" ((17, 3) or flat 51), "score" and "area"; results with different
    "image_id"s never suppress each other (the official code runs the NMS image by image).
    """
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        groups[r.get("image_id")].append(i)
    keep: list[int] = []
    for idx in groups.values():
        keep.extend(_nms_one_image(results, idx, thresh, sigmas, in_vis_thre))
    return keep

"""Heatmaps -> keypoints: argmax, DARK refinement (blur, log, one Taylor step), back to image pixels.

Mirrors the official `get_final_preds` (which always applies DARK) with the per-joint loops replaced by
array operations over (B, J); only the Gaussian blur loops, one OpenCV call per map. Arithmetic is kept
in the official dtypes (float32 heatmaps, float64 blur) so results match it to float rounding.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.pose.preprocess import get_affine_transform
from transpose_live.skeleton import FLIP_INDEX

BLUR_KERNEL = 11   # TEST.BLUR_KERNEL of every TransPose config


def _is_tensor(x) -> bool:
    """A torch tensor? (torch is not imported for it: a tensor exists only where torch already is)"""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _as_heatmaps(heatmaps) -> np.ndarray:
    """float32 (B, J, H, W) numpy view or copy of numpy or torch heatmaps (decoding never writes to it)."""
    if _is_tensor(heatmaps):
        import torch  # deferred: already loaded (the tensor is torch's); numpy heatmaps need no torch

        heatmaps = heatmaps.detach().to("cpu", torch.float32).numpy()
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim != 4:
        raise TransposeLiveError(f"heatmaps must be (B, J, H, W), got shape {tuple(hm.shape)}")
    return hm


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax per map: coords (B, J, 2) float32 (x, y), (0, 0) where the max <= 0; maxvals (B, J, 1)."""
    b, j, _, w = heatmaps.shape
    flat = np.asarray(heatmaps).reshape(b, j, -1)
    idx = np.argmax(flat, axis=2)                      # (B, J)
    maxvals = np.amax(flat, axis=2).reshape(b, j, 1)
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)   # (B, J, 2)
    coords *= (maxvals > 0.0).astype(np.float32)
    return coords, maxvals


def gaussian_blur(heatmaps: np.ndarray, kernel: int = BLUR_KERNEL) -> np.ndarray:
    """Official DARK blur, in place on float32 (B, J, H, W): zero-pad by (k-1)/2, blur in float64,
    crop back, rescale so each map keeps its raw maximum."""
    border = (kernel - 1) // 2
    b, j, h, w = heatmaps.shape
    origin_max = heatmaps.reshape(b, j, -1).max(axis=2)            # (B, J)
    padded = np.zeros((h + 2 * border, w + 2 * border), dtype=np.float64)
    for i in range(b):
        for k in range(j):
            padded[border:-border, border:-border] = heatmaps[i, k]
            heatmaps[i, k] = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
    with np.errstate(divide="ignore", invalid="ignore"):   # an all-zero map gives 0/0 like the official code
        ratio = origin_max / heatmaps.reshape(b, j, -1).max(axis=2)   # float32 (B, J)
        heatmaps *= ratio[:, :, None, None]
    return heatmaps


def log_derivatives(at):
    """The official DARK finite differences of the log-heatmap around the argmax: (dx, dy, dxx, dxy, dyy).

    `at(dy, dx)` reads the log map at that offset from each argmax (numpy here, torch on the GPU path);
    only + - * are used, so one formula serves both.
    """
    c = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
    return dx, dy, dxx, dxy, dyy


def dark_refine(heatmaps: np.ndarray, coords: np.ndarray, kernel: int = BLUR_KERNEL) -> np.ndarray:
    """One Newton step on the log of the blurred heatmaps at the integer argmax.

    heatmaps (B, J, H, W) float32, left unchanged; coords (B, J, 2) integer argmax -> refined (B, J, 2)
    float32. Steps only where 1 < x < W-2, 1 < y < H-2 and the Hessian determinant is non-zero.
    Only the maps that take a step are blurred, and the log is taken only at the 13 points the
    derivatives read: both are elementwise, so the result equals the official whole-map version.
    """
    out = np.array(coords, dtype=np.float32, copy=True)
    _, _, h, w = heatmaps.shape
    px = out[..., 0].astype(np.int64)   # int() truncation, as official
    py = out[..., 1].astype(np.int64)
    ok = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    if not ok.any():
        return out
    bi, ji = np.nonzero(ok)
    x, y = px[ok], py[ok]
    m = gaussian_blur(heatmaps[bi, ji][:, None].astype(np.float32, copy=False), kernel)[:, 0]   # (n, H, W) copy
    n = np.arange(len(bi))

    def at(dy: int, dx: int) -> np.ndarray:
        return np.log(np.maximum(m[n, y + dy, x + dx], np.float32(1e-10)))

    dx, dy, dxx, dxy, dyy = log_derivatives(at)
    det = dxx * dyy - dxy ** 2
    step = det != 0
    if not step.any():
        return out
    hess = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)[step]   # (n, 2, 2)
    grad = np.stack([dx, dy], -1)[step][..., None]                                    # (n, 2, 1)
    offset = -(np.linalg.inv(hess) @ grad)[..., 0]                                    # (n, 2)
    out[bi[step], ji[step]] += offset.astype(np.float32)
    return out


def transform_preds(
    coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, heatmap_size_wh: tuple[int, int]
) -> np.ndarray:
    """Heatmap (B, J, 2) -> image (B, J, 2) float32 with the inverse of each crop's affine."""
    coords = np.asarray(coords, dtype=np.float32)
    centers = np.asarray(centers, dtype=np.float32).reshape(-1, 2)
    scales = np.asarray(scales, dtype=np.float32).reshape(-1, 2)
    if not (len(coords) == len(centers) == len(scales)):
        raise TransposeLiveError(
            f"{len(coords)} heatmap sets but {len(centers)} centers and {len(scales)} scales"
        )
    trans = np.stack([
        get_affine_transform(c, s, 0, heatmap_size_wh, inv=True) for c, s in zip(centers, scales)
    ]) if len(coords) else np.zeros((0, 2, 3))                                        # (B, 2, 3)
    xy1 = np.concatenate([coords.astype(np.float64), np.ones(coords.shape[:2] + (1,))], -1)   # (B, J, 3)
    return np.einsum("bij,bkj->bki", trans, xy1).astype(np.float32)


def get_final_preds(
    heatmaps,
    centers: np.ndarray,
    scales: np.ndarray,
    transform_back: bool = True,
    blur_kernel: int = BLUR_KERNEL,
) -> tuple[np.ndarray, np.ndarray]:
    """Official get_final_preds: argmax + DARK, then (optionally) back to image pixels.

    heatmaps (B, J, H, W) numpy or torch (left unchanged); centers, scales (B, 2) as from
    `box_to_center_scale`. Returns preds (B, J, 2) float32 and raw maxvals (B, J, 1) float32.
    """
    hm = _as_heatmaps(heatmaps)
    coords, maxvals = get_max_preds(hm)
    coords = dark_refine(hm, coords, blur_kernel)
    if not transform_back:
        return coords, maxvals
    h, w = hm.shape[2:]
    return transform_preds(coords, centers, scales, (w, h)), maxvals


def flip_back(heatmaps):
    """Heatmaps of a mirrored input -> heatmaps of the original: flip the width axis, swap left/right joints.

    (B, J, H, W) numpy or torch in, same type out (a new array). No shift, as in TransPose.
    """
    if heatmaps.ndim != 4 or heatmaps.shape[1] != len(FLIP_INDEX):
        raise TransposeLiveError(
            f"flip_back needs (B, {len(FLIP_INDEX)}, H, W) heatmaps, got shape {tuple(heatmaps.shape)}"
        )
    if _is_tensor(heatmaps):
        import torch  # deferred: already loaded, as above

        index = torch.tensor(FLIP_INDEX, device=heatmaps.device)
        return heatmaps.index_select(1, index).flip(3)
    return np.ascontiguousarray(np.asarray(heatmaps)[:, list(FLIP_INDEX), :, ::-1])

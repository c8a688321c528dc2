"""Heatmaps -> image keypoints on the device, batched: argmax + DARK + the inverse crop affine.

The torch twin of `decode.get_final_preds` (+ `transform_preds`): the same steps and the same dtypes
where they matter, but one set of batched ops for all persons and joints instead of one OpenCV blur per
map, and no heatmap copy to the host (only the (K, J, 2) keypoints and (K, J) peaks come back).

    argmax per map (x = idx % W, y = idx // W; (0, 0) where the peak <= 0)
    -> Gaussian blur k=11 (sigma 2, OpenCV's kernel) on the zero-padded map in float64, stored in
       float32, rescaled so each map keeps its raw peak
    -> log(max(map, 1e-10)) and one Newton step at the integer argmax (central differences), only where
       1 < x < W-2, 1 < y < H-2 and the Hessian is invertible
    -> image px = c + (heatmap px - (side-1)/2) * (scale_x * 200 - 1) / (W - 1), the official inverse
       `get_affine_transform(c, s, 0, (W, H), inv=True)` (a pure zoom at rot=0)
"""

from __future__ import annotations

import numpy as np
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.pose.decode import log_derivatives
from transpose_live.pose.preprocess import PIXEL_STD

BLUR_KERNEL = 11   # TEST.BLUR_KERNEL of every TransPose config


def gaussian_kernel_1d(kernel: int = BLUR_KERNEL) -> np.ndarray:
    """OpenCV's `getGaussianKernel(kernel, 0)` (float64): sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8.
    (OpenCV uses fixed tables only for k <= 7; larger kernels are computed like this.)"""
    if kernel < 9 or kernel % 2 == 0:
        raise TransposeLiveError(f"blur kernel must be odd and >= 9 here, got {kernel}")
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    x = np.arange(kernel, dtype=np.float64) - (kernel - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n, n) matrix M with (M @ v)[i] = sum_k g[k] v[i + k - r], zero outside 0..n-1: a 1D blur with zero padding."""
    r = (len(g) - 1) // 2
    offset = torch.arange(n, device=g.device)[None, :] - torch.arange(n, device=g.device)[:, None] + r   # j - i + r
    inside = (offset >= 0) & (offset < len(g))
    return torch.where(inside, g[offset.clamp(0, len(g) - 1)], torch.zeros((), dtype=g.dtype, device=g.device))


def gaussian_blur(heatmaps: torch.Tensor, kernel: int = BLUR_KERNEL,
                  compute_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Official DARK blur of (B, J, H, W) heatmaps (a new float32 tensor): zero padding, separable
    Gaussian in `compute_dtype`, stored in float32, rescaled so each map keeps its raw maximum.

    The separable blur is two matrix products with banded (H, H) and (W, W) matrices rather than a
    convolution: no cuDNN algorithm search for each new number of persons, and float64 works everywhere.
    """
    b, j, h, w = heatmaps.shape
    hm = heatmaps.float()
    g = torch.from_numpy(gaussian_kernel_1d(kernel)).to(heatmaps.device, compute_dtype)
    rows, cols = _band(h, g), _band(w, g)                                   # (H, H), (W, W)
    blurred = (rows @ hm.to(compute_dtype) @ cols.T).float()               # (B, J, H, W)
    origin_max = hm.amax(dim=(2, 3), keepdim=True)                         # (B, J, 1, 1)
    ratio = origin_max / blurred.amax(dim=(2, 3), keepdim=True)           # 0/0 -> nan, as official
    return blurred * ratio


def argmax_coords(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer argmax: coords (B, J, 2) float32 (x, y), (0, 0) where the peak <= 0; peaks (B, J, 1) float32."""
    b, j, _, w = heatmaps.shape
    flat = heatmaps.float().reshape(b, j, -1)
    idx = flat.argmax(dim=2)                                                # (B, J) first maximum, as numpy
    maxvals = flat.gather(2, idx[..., None])[..., 0]
    coords = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], -1).float()
    coords = coords * (maxvals > 0).float()[..., None]
    return coords, maxvals[..., None]


def dark_refine(heatmaps: torch.Tensor, coords: torch.Tensor, kernel: int = BLUR_KERNEL) -> torch.Tensor:
    """One Newton step on log(blurred heatmaps) at the integer argmax: (B, J, 2) -> refined (B, J, 2) float32.

    The derivatives are taken in float32 like the official code; the 2x2 solve in float64.
    """
    _, _, h, w = heatmaps.shape
    out = coords.float().clone()
    if h < 5 or w < 5:        # no argmax has room for the step (as in decode.dark_refine); the reads below need it
        return out
    px, py = coords[..., 0].long(), coords[..., 1].long()                   # (B, J)
    ok = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    logm = torch.log(torch.clamp(gaussian_blur(heatmaps, kernel), min=1e-10))   # (B, J, H, W) float32
    flat = logm.flatten(2)                                                  # (B, J, H*W)
    xs, ys = px.clamp(2, w - 3), py.clamp(2, h - 3)                         # in range for every map

    def at(dy: int, dx: int) -> torch.Tensor:
        return flat.gather(2, ((ys + dy) * w + xs + dx)[..., None])[..., 0]   # (B, J)

    dx, dy, dxx, dxy, dyy = log_derivatives(at)
    det32 = dxx * dyy - dxy ** 2
    step = ok & (det32 != 0) & torch.isfinite(det32)
    dxx, dxy, dyy, dx, dy = (t.double() for t in (dxx, dxy, dyy, dx, dy))
    det = torch.where(step, dxx * dyy - dxy ** 2, torch.ones_like(dxx))
    off_x = -(dyy * dx - dxy * dy) / det                                    # -(H^-1 g), H^-1 = adj(H) / det
    off_y = -(-dxy * dx + dxx * dy) / det
    offset = torch.stack([off_x, off_y], -1).float()                        # (B, J, 2)
    return torch.where(step[..., None], out + offset, out)


def to_image(coords: torch.Tensor, centers, scales, heatmap_size_wh) -> torch.Tensor:
    """Heatmap (B, J, 2) -> image (B, J, 2) float32 with each crop's inverse affine (rot=0: a zoom)."""
    w, h = int(heatmap_size_wh[0]), int(heatmap_size_wh[1])
    centers = torch.as_tensor(np.asarray(centers, np.float32).reshape(-1, 2), device=coords.device).double()
    scales = torch.as_tensor(np.asarray(scales, np.float32).reshape(-1, 2), device=coords.device)
    if not (len(coords) == len(centers) == len(scales)):
        raise TransposeLiveError(
            f"{len(coords)} heatmap sets but {len(centers)} centers and {len(scales)} scales")
    zoom = ((scales[:, 0] * PIXEL_STD).double() - 1.0) / (w - 1)            # (B,) image px per heatmap px
    half = torch.tensor([(w - 1) * 0.5, (h - 1) * 0.5], dtype=torch.float64, device=coords.device)
    return (centers[:, None, :] + (coords.double() - half) * zoom[:, None, None]).float()


def get_final_preds(heatmaps: torch.Tensor, centers, scales, transform_back: bool = True,
                    blur_kernel: int = BLUR_KERNEL) -> tuple[torch.Tensor, torch.Tensor]:
    """`decode.get_final_preds` on the device: heatmaps (B, J, H, W) any float dtype -> preds (B, J, 2)
    float32 (image px, or heatmap px with transform_back=False) and raw peaks (B, J, 1) float32, both on
    the heatmaps' device. centers, scales (B, 2) numpy as from `box_to_center_scale`."""
    if not isinstance(heatmaps, torch.Tensor) or heatmaps.ndim != 4:
        shape = tuple(heatmaps.shape) if hasattr(heatmaps, "shape") else type(heatmaps).__name__
        raise TransposeLiveError(f"heatmaps must be a (B, J, H, W) tensor, got {shape}")
    hm = heatmaps.float()
    if hm.shape[0] == 0:
        return hm.new_zeros((0, hm.shape[1], 2)), hm.new_zeros((0, hm.shape[1], 1))
    coords, maxvals = argmax_coords(hm)
    coords = dark_refine(hm, coords, blur_kernel)
    if transform_back:
        coords = to_image(coords, centers, scales, (hm.shape[3], hm.shape[2]))
    return coords, maxvals


__all__ = ["argmax_coords", "dark_refine", "gaussian_blur", "gaussian_kernel_1d", "get_final_preds", "to_image"]

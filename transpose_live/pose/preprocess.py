"""Person box -> (center, scale) -> affine crop -> normalised input tensor, as the official TransPose code does.

The arithmetic (float32 centres/scales, `scale * 200`, the three-point affine) follows the authors'
`_box2cs` and `get_affine_transform` line by line, so crops match the official pipeline bit for bit.
The TransPose code is pixel-aligned: the box centre x + (w-1)/2 maps to the crop centre (W-1)/2 and
a span of (box width - 1) px maps to (W - 1) crop px (not the w -> W of the older HRNet code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.image import as_bgr

if TYPE_CHECKING:
    import torch

PIXEL_STD = 200.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)   # RGB order
IMAGENET_STD = (0.229, 0.224, 0.225)


def box_to_center_scale(
    box_xywh: Sequence[float],
    aspect_ratio: float = 0.75,
    pixel_std: float = PIXEL_STD,
    padding: float = 1.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Official `_box2cs`: center (2,) float32 in pixels, scale (2,) float32 in units of `pixel_std`."""
    if len(box_xywh) < 4:
        raise TransposeLiveError(f"a box needs 4 numbers (x, y, w, h), got {len(box_xywh)}")
    x, y, w, h = (float(v) for v in box_xywh[:4])
    if not all(np.isfinite((x, y, w, h))):
        raise TransposeLiveError(f"box ({x}, {y}, {w}, {h}) has a non-finite value")
    center = np.zeros(2, dtype=np.float32)
    center[0] = x + (w - 1) * 0.5
    center[1] = y + (h - 1) * 0.5
    # widen the short side so the box has the crop's aspect ratio (w / h)
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / pixel_std, h * 1.0 / pixel_std], dtype=np.float32)
    scale = scale * np.float32(padding)   # official: `if center[0] != -1: scale = scale * 1.25`
    return center, scale


def _get_dir(src_point: Sequence[float], rot_rad: float) -> list[float]:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return [src_point[0] * cs - src_point[1] * sn, src_point[0] * sn + src_point[1] * cs]


def _get_3rd_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    direct = a - b
    return b + np.array([-direct[1], direct[0]], dtype=np.float32)


def get_affine_transform(
    center: np.ndarray,
    scale: np.ndarray,
    rot: float,
    output_size_wh: Sequence[int],
    shift: Sequence[float] = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """Official `get_affine_transform`: (2, 3) float64 mapping image -> crop (or crop -> image with inv).

    Only the box width sets the zoom: (scale[0]*200 - 1) image px -> (W - 1) output px; the height
    follows from the aspect ratio that `box_to_center_scale` already imposed.
    """
    center = np.asarray(center, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    if scale.ndim == 0:
        scale = np.array([scale, scale], dtype=np.float32)
    shift_xy = np.asarray(shift, dtype=np.float32)

    scale_tmp = scale * 200.0   # the official code hard-codes 200 here (pixel_std)
    src_w = scale_tmp[0]
    dst_w = output_size_wh[0]
    dst_h = output_size_wh[1]

    rot_rad = np.pi * rot / 180
    src_dir = _get_dir([0, (src_w - 1) * -0.5], rot_rad)
    dst_dir = np.array([0, (dst_w - 1) * -0.5], np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center + scale_tmp * shift_xy
    src[1, :] = center + src_dir + scale_tmp * shift_xy
    dst[0, :] = [(dst_w - 1) * 0.5, (dst_h - 1) * 0.5]
    dst[1, :] = np.array([(dst_w - 1) * 0.5, (dst_h - 1) * 0.5]) + dst_dir
    src[2:, :] = _get_3rd_point(src[0, :], src[1, :])
    dst[2:, :] = _get_3rd_point(dst[0, :], dst[1, :])

    # src and dst are float32 already (the official code wraps them in np.float32 once more)
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def crop_batch(
    frame_bgr: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    output_size_wh: Sequence[int] = (192, 256),
) -> np.ndarray:
    """Affine crops of one frame: centers, scales (B, 2) -> (B, H, W, 3) uint8 RGB.

    The official pipeline converts the whole frame BGR->RGB and then warps. warpAffine treats
    channels independently, so warping the BGR frame and reversing the channels of the small
    crop gives identical bytes at a fraction of the cost for large frames.
    """
    frame = as_bgr(frame_bgr)
    centers = np.asarray(centers, dtype=np.float32).reshape(-1, 2)
    scales = np.asarray(scales, dtype=np.float32).reshape(-1, 2)
    if len(centers) != len(scales):
        raise TransposeLiveError(f"{len(centers)} centers but {len(scales)} scales")
    out_w, out_h = int(output_size_wh[0]), int(output_size_wh[1])
    crops = np.empty((len(centers), out_h, out_w, 3), dtype=np.uint8)   # (B, H, W, 3)
    for i, (c, s) in enumerate(zip(centers, scales)):
        trans = get_affine_transform(c, s, 0, (out_w, out_h))
        crop = cv2.warpAffine(frame, trans, (out_w, out_h), flags=cv2.INTER_LINEAR)
        cv2.cvtColor(crop, cv2.COLOR_BGR2RGB, dst=crops[i])   # far faster than a [..., ::-1] copy
    return crops


def _check_crops(crops_rgb: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops_rgb)
    if crops.ndim == 3:
        crops = crops[None]
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise TransposeLiveError(
            f"crops must be (B, H, W, 3) uint8 RGB, got {tuple(crops.shape)} {crops.dtype}"
        )
    return crops


def to_input_array(crops_rgb: np.ndarray) -> np.ndarray:
    """to_input_tensor in numpy, for the graph runtimes: (B, H, W, 3) uint8 RGB -> (B, 3, H, W) float32, the
    same float32 steps (/255, - mean, / std) giving the same values bit for bit."""
    x = _check_crops(crops_rgb).transpose(0, 3, 1, 2).astype(np.float32)   # (B, 3, H, W)
    x /= np.float32(255)
    x -= np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    x /= np.asarray(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(x)


def to_input_tensor(crops_rgb: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float32, /255 then ImageNet mean/std (torchvision's ToTensor+Normalize).

    With `device` the uint8 crops are moved first, so only a quarter of the bytes cross the bus.
    """
    import torch  # deferred: cutting crops (a camera worker of monitor --cluster) needs no torch

    crops = _check_crops(crops_rgb)
    x = torch.from_numpy(np.ascontiguousarray(crops))
    if device is not None:
        x = x.to(device)
    x = x.permute(0, 3, 1, 2).float().div(255)   # (B, 3, H, W)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).contiguous()

"""Person crops cut on the device: one frame upload, one batched `grid_sample` for all persons.

The CPU path (`preprocess.crop_batch` + `to_input_tensor`) warps each person with cv2.warpAffine and
normalises on the host; here the uint8 frame crosses the bus once (through pinned memory, without
blocking the host) and every crop of the frame comes out of a single bilinear sampling op, already
normalised, RGB, in the model's dtype.

Geometry: the official `get_affine_transform` with rot=0 is a pure zoom about the box centre,
    image x = cx + (crop x - (W-1)/2) * f,   image y = cy + (crop y - (H-1)/2) * f,
    f = (scale_x * 200 - 1) / (W - 1)
(the box width alone sets the zoom), which is the inverse map cv2.warpAffine applies per output pixel.
Outside the frame reads 0, like warpAffine's BORDER_CONSTANT, blended bilinearly at the edge. The
sampled values are rounded to whole grey levels (as warpAffine's uint8 output is) so the model sees
the crops it was trained on; `round_to_uint8=False` keeps the unrounded values.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from transpose_live.errors import TransposeLiveError
from transpose_live.image import as_bgr
from transpose_live.pose.preprocess import IMAGENET_MEAN, IMAGENET_STD, PIXEL_STD


def crop_grids(centers, scales, out_size_wh, frame_size_wh, device=None) -> torch.Tensor:
    """Sampling grids of the person crops: (K, H, W, 2) float32 in grid_sample's [-1, 1] coordinates
    (align_corners=True: -1 and 1 are the centres of the frame's first and last pixels).

    centers, scales (K, 2) as from `box_to_center_scale` (pixels, units of 200 px); out_size_wh the
    crop (W, H); frame_size_wh the frame's (W, H). The geometry is done in float64 on the host (K x 4
    numbers) and only the grids are built on the device.
    """
    centers = np.asarray(centers, dtype=np.float32).reshape(-1, 2)
    scales = np.asarray(scales, dtype=np.float32).reshape(-1, 2)
    if len(centers) != len(scales):
        raise TransposeLiveError(f"{len(centers)} centers but {len(scales)} scales")
    out_w, out_h = int(out_size_wh[0]), int(out_size_wh[1])
    frame_w, frame_h = int(frame_size_wh[0]), int(frame_size_wh[1])
    if min(out_w, out_h, frame_w, frame_h) < 2:
        raise TransposeLiveError(f"crop {out_w}x{out_h} and frame {frame_w}x{frame_h} need sides of 2 px or more")
    src_w = (scales[:, 0] * np.float32(PIXEL_STD)).astype(np.float64)      # float32 product, as official
    zoom = (src_w - 1.0) / (out_w - 1)                                      # (K,) image px per crop px
    # image px = c + (crop px - (side-1)/2) * zoom, then to [-1, 1]: g = 2 * px / (frame side - 1) - 1
    ax = zoom * 2.0 / (frame_w - 1)                                         # (K,) grid units per crop px
    bx = (centers[:, 0] - (out_w - 1) * 0.5 * zoom) * 2.0 / (frame_w - 1) - 1.0
    ay = zoom * 2.0 / (frame_h - 1)
    by = (centers[:, 1] - (out_h - 1) * 0.5 * zoom) * 2.0 / (frame_h - 1) - 1.0
    coef = torch.from_numpy(np.stack([ax, bx, ay, by], 1)).to(device=device, dtype=torch.float64)   # (K, 4)
    xs = torch.arange(out_w, device=device, dtype=torch.float64)
    ys = torch.arange(out_h, device=device, dtype=torch.float64)
    gx = coef[:, 0, None] * xs + coef[:, 1, None]                           # (K, W)
    gy = coef[:, 2, None] * ys + coef[:, 3, None]                           # (K, H)
    k = len(centers)
    grid = torch.stack([gx[:, None, :].expand(k, out_h, out_w), gy[:, :, None].expand(k, out_h, out_w)], -1)
    return grid.float()                                                     # (K, H, W, 2)


def _normaliser(device, channels_bgr_to_rgb: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (gain, bias) so that normalised = grey * gain + bias, in the crop's RGB order."""
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=device)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=device)
    return (1.0 / (255.0 * std)).view(1, 3, 1, 1), (-mean / std).view(1, 3, 1, 1)


def crop_frame(
    frame: torch.Tensor,
    centers,
    scales,
    out_size_wh=(192, 256),
    dtype: torch.dtype = torch.float32,
    round_to_uint8: bool = True,
) -> torch.Tensor:
    """All person crops of one frame, normalised: (K, 3, H, W) in `dtype` on the frame's device.

    frame: (H, W, 3) uint8 BGR tensor already on the device (see `FrameUploader`); centers, scales
    (K, 2) as for `preprocess.crop_batch`. Equal to `to_input_tensor(crop_batch(...))` up to
    interpolation rounding (a grey level at a few pixels).
    """
    if not isinstance(frame, torch.Tensor) or frame.dtype != torch.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{tuple(frame.shape)} {frame.dtype}" if isinstance(frame, torch.Tensor) else type(frame).__name__
        raise TransposeLiveError(f"crop_frame needs an (H, W, 3) uint8 BGR tensor, got {got}")
    out_w, out_h = int(out_size_wh[0]), int(out_size_wh[1])
    frame_h, frame_w = frame.shape[:2]
    grid = crop_grids(centers, scales, (out_w, out_h), (frame_w, frame_h), frame.device)   # (K, H, W, 2)
    k = grid.shape[0]
    if k == 0:
        return torch.zeros((0, 3, out_h, out_w), dtype=dtype, device=frame.device)
    # sample in float32 (fp16 weights would cost ~0.1 grey level); the frame is sampled once for all K
    # crops by stacking their grids along the height: (1, 3, Hf, Wf) x (1, K*H, W, 2) -> (1, 3, K*H, W)
    image = frame.permute(2, 0, 1)[None].float()                            # (1, 3, Hf, Wf) BGR
    out = F.grid_sample(image, grid.reshape(1, k * out_h, out_w, 2), mode="bilinear",
                        padding_mode="zeros", align_corners=True)           # (1, 3, K*H, W)
    out = out.view(3, k, out_h, out_w).permute(1, 0, 2, 3).flip(1)         # (K, 3, H, W) RGB
    if round_to_uint8:
        out = out.round()   # cv2 rounds its bilinear result to the nearest grey level
    gain, bias = _normaliser(frame.device)
    return (out * gain + bias).to(dtype).contiguous()


class FrameUploader:
    """Copies BGR frames to the device through pinned host buffers with non-blocking copies.

    `upload(frame)` returns the (H, W, 3) uint8 tensor on the device; the host goes on while the copy
    runs (on the current CUDA stream, so kernels queued after it on that stream see the frame). Two
    pinned buffers alternate, and a buffer is refilled only after its previous copy has finished (a CUDA
    event), so a frame being copied is never overwritten. On a CPU device the frame is wrapped, not copied.
    """

    def __init__(self, device: torch.device | str, buffers: int = 2):
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"
        self._buffers: list[torch.Tensor | None] = [None] * max(1, int(buffers))
        self._events: list = [None] * len(self._buffers)
        self._next = 0

    def upload(self, frame_bgr: np.ndarray) -> torch.Tensor:
        frame = np.ascontiguousarray(as_bgr(frame_bgr))
        if not self._cuda:
            return torch.from_numpy(frame).to(self.device)
        i = self._next
        self._next = (i + 1) % len(self._buffers)
        buf = self._buffers[i]
        if buf is None or tuple(buf.shape) != frame.shape:
            buf = self._buffers[i] = torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True)
        elif self._events[i] is not None:
            self._events[i].synchronize()   # the last copy out of this buffer must be done
        buf.numpy()[...] = frame
        on_device = buf.to(self.device, non_blocking=True)
        event = self._events[i] = self._events[i] or torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        return on_device


def crop_inputs(frame_bgr: np.ndarray, centers, scales, out_size_wh, device, dtype=torch.float32,
                uploader: FrameUploader | None = None) -> torch.Tensor:
    """Host frame -> the model's input (K, 3, H, W) on `device`: upload once, crop on the device.

    The drop-in counterpart of `to_input_tensor(crop_batch(frame, centers, scales, size), device)`.
    """
    uploader = uploader or FrameUploader(device)
    return crop_frame(uploader.upload(frame_bgr), centers, scales, out_size_wh, dtype)


__all__ = ["FrameUploader", "crop_frame", "crop_grids", "crop_inputs"]

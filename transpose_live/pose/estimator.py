"""PoseEstimator: one frame + person boxes -> Poses (and dependency areas when asked).

Owns the model, its device and dtype: fp16 on CUDA, fp32 elsewhere. The test-time path is the
official one: box -> center/scale -> affine crop -> model -> (flip test) -> argmax + DARK -> image.
The forward pass runs on a backend (transpose_live.model.backends): torch, or on the CPU an ONNX export of
the same module on ONNX Runtime / OpenVINO; `.model` stays the torch module either way.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from transpose_live.errors import TransposeLiveError
from transpose_live.image import as_bgr
from transpose_live.model.backends import check_backend_name, check_precision_name, create_backend
from transpose_live.model.config import ModelConfig
from transpose_live.model.device import resolve_device
from transpose_live.model.loading import load_model
from transpose_live.pose.attention import dependency_areas
from transpose_live.pose.cuda.estimate import DeviceEstimator
from transpose_live.pose.decode import flip_back, get_final_preds, transform_preds
from transpose_live.pose.padding import BATCH_SIZES, chunks, pad_rows
from transpose_live.pose.preprocess import box_to_center_scale, crop_batch, to_input_tensor
from transpose_live.types import Pose, box_tuple

BoxesLike = np.ndarray | Sequence[Sequence[float]] | None   # (K, 4) x, y, w, h; None = the whole frame
ScoresLike = np.ndarray | Sequence[float] | None           # (K,) detector scores; None = all 1


@dataclass(frozen=True)
class PersonCrops:
    """A frame and its person boxes, validated, with each box's crop centre and scale (rows line up)."""

    frame: np.ndarray        # (H, W, 3) uint8 BGR
    boxes: np.ndarray        # (K, 4) float64 x, y, w, h
    box_scores: np.ndarray   # (K,) float64
    centers: np.ndarray      # (K, 2) float32 pixels
    scales: np.ndarray       # (K, 2) float32 units of 200 px

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, rows: slice) -> PersonCrops:
        return PersonCrops(self.frame, self.boxes[rows], self.box_scores[rows], self.centers[rows],
                           self.scales[rows])


def _validate_boxes(boxes, box_scores, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, 4) float64 xywh and (K,) float64 scores; None -> the whole frame as one person, while an empty
    list stays empty (nobody found means no poses, never a made-up person)."""
    if boxes is None:
        return np.array([[0.0, 0.0, float(width), float(height)]]), np.ones(1)
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((0, 4)), np.zeros(0)
    if b.ndim == 1 and b.shape[0] == 4:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise TransposeLiveError(f"boxes must be (K, 4) x, y, w, h; got shape {tuple(b.shape)}")
    if not np.isfinite(b).all():
        raise TransposeLiveError("boxes contain a non-finite value")
    bad = np.flatnonzero((b[:, 2] <= 0) | (b[:, 3] <= 0))
    if bad.size:
        raise TransposeLiveError(f"box {int(bad[0])} has width or height <= 0: {b[bad[0]].tolist()}")
    if box_scores is None:
        return b, np.ones(len(b))
    s = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise TransposeLiveError(f"{len(s)} box scores for {len(b)} boxes")
    return b, s


class PoseEstimator:
    """Top-down TransPose on person boxes.

    model: a preset / weights name (built by `transpose_live.model.load_model(model, weights, image_size)`)
    or an nn.Module with `.config` (ModelConfig) and `forward(x, return_attention=False)`. A module
    passed in is moved to the device and put in eval mode but keeps its dtype (a training loop may
    still own it); a model built here runs in fp16 on CUDA.

    backend: auto | torch | onnxruntime | openvino (see transpose_live.model.backends). "auto" is torch for a
    module passed in (a training loop may still change its weights, which an export would freeze) and
    the fastest available backend for a model built here. precision: auto (fp16 on CUDA; on the CPU
    mixed where OpenVINO runs it, else fp32), fp32, mixed or bf16 (OpenVINO on the CPU; see backends).
    """

    def __init__(
        self,
        model: str | nn.Module = "default",
        weights: str | None = None,
        device: str | torch.device = "auto",
        image_size: tuple[int, int] | None = None,
        flip: bool = False,
        batch_size: int = 16,
        backend: str = "auto",
        precision: str = "auto",
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise TransposeLiveError(f"batch_size must be a positive integer, got {batch_size!r}")
        self._device = resolve_device(device)
        if isinstance(model, nn.Module):
            if weights is not None:
                raise TransposeLiveError("weights= applies to a model name, not to a model object")
            config = getattr(model, "config", None)
            if not isinstance(config, ModelConfig):
                raise TransposeLiveError("a model object needs a .config (transpose_live.model.config.ModelConfig)")
            if image_size is not None and tuple(image_size) != tuple(config.image_size):
                raise TransposeLiveError(
                    f"image_size {tuple(image_size)} differs from the model's {tuple(config.image_size)}"
                )
            net = model.to(self._device)
            backend = "torch" if check_backend_name(backend) == "auto" else backend
        elif isinstance(model, str):
            net = load_model(model, weights, image_size).to(self._device)
            if self._device.type == "cuda" and check_precision_name(precision) == "auto":
                net = net.half()
        else:
            raise TransposeLiveError(f"model must be a name or an nn.Module, got {type(model).__name__}")
        self.model = net.eval()
        first = next(iter(net.parameters()), None)
        self._dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
        self.flip = bool(flip)
        self.batch_size = batch_size
        # a model built here is fixed: torch may fold its batch norms (a module passed in may still be training)
        self.backend = create_backend(backend, net, self._device, precision=precision,
                                      fold=isinstance(model, str))   # .name: the resolved one
        # the graph runtimes keep working memory per batch size they have run: every pass is padded to one of
        # a few sizes (pose/padding.py). Eager torch is not (a CUDA run's plain frames have their own buckets,
        # and a module passed in, e.g. by training's evaluation, would only pay the padding); None: no padding
        self.batch_sizes: tuple[int, ...] | None = BATCH_SIZES if self.backend.name != "torch" else None
        # On CUDA a model built here takes the device path for plain frames (crops cut by grid_sample, CUDA-graph
        # batch buckets, DARK decoded on the GPU: transpose_live.pose.cuda.estimate); a module passed in stays eager, as
        # a training loop may still change it. Attention maps and the flip test keep the path below.
        self._device_path_allowed = self._device.type == "cuda" and isinstance(model, str)
        self._device_path: DeviceEstimator | None = None

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def config(self) -> ModelConfig:
        # a plain attribute, checked in __init__ (nn.Module.__getattr__'s Tensor | Module is for submodules)
        return cast(ModelConfig, self.model.config)

    # ------------------------------------------------------------------------------------ model calls

    def forward(
        self, x: torch.Tensor, attention: bool = False, flip: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 3, H, W) float32 on device -> heatmaps (B, J, h, w) float32, last attention (B, N, N) or
        None, both on the device. flip=None: the estimator's own `flip` setting. Rows are independent:
        a batch of several frames' crops gives each crop what it would get alone."""
        flip = self.flip if flip is None else flip
        x = x.to(self._dtype)
        B = x.shape[0]
        if flip:   # the mirrored crops ride in the same batch: one forward instead of two
            x = torch.cat([x, x.flip(3)])
        hm, last = self._run_backend(x, attention)
        attn = last[:B].float() if last is not None else None   # maps of the unflipped crops
        hm = hm.float()
        if flip:
            # official flip test: mirror the flipped heatmaps back (pairs swapped), average, no shift
            hm = (hm[:B] + flip_back(hm[B:])) * 0.5
        return hm, attn

    def _run_backend(self, x: torch.Tensor, attention: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The backend on (n, 3, H, W) -> heatmaps (n, ...) and the last layer's maps (or None). With batch_sizes
        set: passes of at most its largest size, each padded with zero rows to one of its sizes (cut off again)."""
        if self.batch_sizes is None or not len(x):   # all crops in one pass (the backends' batch axis is dynamic)
            hm, maps = self.backend(x, attention)
            return hm, (maps[-1] if attention else None)
        hms, lasts = [], []
        for rows, size in chunks(x.shape[0], self.batch_sizes):
            hm, maps = self.backend(pad_rows(x[rows], size), attention)
            hms.append(hm[:rows.stop - rows.start])
            if attention:
                lasts.append(maps[-1][:rows.stop - rows.start])
        return ((hms[0], lasts[0] if attention else None) if len(hms) == 1
                else (torch.cat(hms), torch.cat(lasts) if attention else None))

    def _check_input(self, x: torch.Tensor) -> None:
        h, w = self.config.image_size
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (3, h, w):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise TransposeLiveError(f"inputs must be a (B, 3, {h}, {w}) tensor, got {shape}")

    @torch.inference_mode()
    def estimate_crops(self, inputs: torch.Tensor, attention: bool = False):
        """Normalised crops (B, 3, H, W) -> heatmaps (B, J, h, w) float32 numpy (flip test included).

        With attention=True returns (heatmaps, last-layer attention (B, N, N) float32 numpy).
        """
        self._check_input(inputs)
        hm, attn = self.forward(inputs.to(self._device), attention)
        heatmaps = hm.cpu().numpy()
        if attn is None:   # not asked for
            return heatmaps
        return heatmaps, attn.cpu().numpy()

    # ------------------------------------------------------------------------------------- the frame

    def prepare(self, frame_bgr: np.ndarray, boxes: BoxesLike = None,
                box_scores: ScoresLike = None) -> PersonCrops:
        """Validated frame and boxes with their crop geometry (no pixels cropped yet); see `estimate`."""
        frame = as_bgr(frame_bgr)
        boxes_xywh, scores = _validate_boxes(boxes, box_scores, frame.shape[1], frame.shape[0])
        in_h, in_w = self.config.image_size
        cs = [box_to_center_scale(b, aspect_ratio=in_w / in_h) for b in boxes_xywh]
        centers = np.stack([c for c, _ in cs]) if cs else np.zeros((0, 2), np.float32)   # (K, 2) float32
        scales = np.stack([s for _, s in cs]) if cs else np.zeros((0, 2), np.float32)    # (K, 2) float32
        return PersonCrops(frame, boxes_xywh, scores, centers, scales)

    def crop_inputs(self, persons: PersonCrops) -> torch.Tensor:
        """The persons' affine crops as the model's input: (K, 3, H, W) float32 on the device."""
        in_h, in_w = self.config.image_size
        crops = crop_batch(persons.frame, persons.centers, persons.scales, (in_w, in_h))   # (K, H, W, 3) RGB
        return to_input_tensor(crops, device=self._device)

    def decode(self, persons: PersonCrops, hm: torch.Tensor, attn: torch.Tensor | None) -> list[Pose]:
        """`forward`'s heatmaps (K, J, h, w) (and last attention (K, N, N)) of these persons -> Poses."""
        coords_hm, maxvals = get_final_preds(hm.detach().cpu().numpy(), persons.centers, persons.scales,
                                             transform_back=False)     # (K, J, 2), (K, J, 1)
        hm_h, hm_w = hm.shape[2:]
        preds = transform_preds(coords_hm, persons.centers, persons.scales, (hm_w, hm_h))
        areas = (dependency_areas(attn, coords_hm, self.config.token_grid, (hm_h, hm_w))
                 if attn is not None else None)                                 # (K, J, h, w)
        return [
            Pose(
                keypoints=preds[i].astype(np.float32),
                scores=np.clip(maxvals[i, :, 0], 0.0, 1.0).astype(np.float32),
                box=box_tuple(box),
                box_score=float(score),
                attention=None if areas is None else areas[i],
            )
            for i, (box, score) in enumerate(zip(persons.boxes, persons.box_scores))
        ]

    @torch.inference_mode()
    def estimate(
        self,
        frame_bgr: np.ndarray,
        boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
        box_scores: np.ndarray | Sequence[float] | None = None,
        attention: bool = False,
    ) -> list[Pose]:
        """Poses for the persons in `boxes` (K, 4) x, y, w, h pixels; None = the whole frame, empty = none.
        Joint scores (heatmap peaks) are clipped to [0, 1]: they are confidences.

        The steps, `prepare` -> `crop_inputs` -> `forward` -> `decode`, are public so that a
        `transpose_live.pose.batching.SharedEstimator` can run the forward pass of several callers at once.
        """
        if self._device_path_allowed and not attention and not self.flip:
            if self._device_path is None:
                # a proxy, not self: no reference cycle keeping the model and its graphs' GPU memory alive
                # after the estimator is dropped (the window loads a new one per source); the small batch
                # buckets captured now (the first frames do not wait; a large bucket's memory is only
                # taken when that many persons appear)
                self._device_path = DeviceEstimator(weakref.proxy(self), warm_up=(1, 2, 4, 8))
            return self._device_path.estimate(frame_bgr, boxes, box_scores)
        persons = self.prepare(frame_bgr, boxes, box_scores)
        poses: list[Pose] = []
        for start in range(0, len(persons), self.batch_size):
            part = persons[start:start + self.batch_size]
            hm, attn = self.forward(self.crop_inputs(part), attention)
            poses.extend(self.decode(part, hm, attn))
        return poses

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
from typing import TYPE_CHECKING

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.image import as_bgr
from transpose_live.model.backends import check_backend_name, check_precision_name, create_backend, device_type
from transpose_live.model.backends.source import ModelSource
from transpose_live.model.config import ModelConfig
from transpose_live.model.device import resolve_device, resolve_device_name
from transpose_live.model.loading import model_source
from transpose_live.pose.arrays import Arrays, NumpyArrays, TorchArrays
from transpose_live.pose.decode import flip_back, get_final_preds, transform_preds
from transpose_live.pose.padding import BATCH_SIZES, chunks, pad_rows
from transpose_live.pose.preprocess import box_to_center_scale, crop_batch
from transpose_live.types import Pose, box_tuple

if TYPE_CHECKING:
    import torch
    from torch import nn

    from transpose_live.pose.cuda.estimate import DeviceEstimator

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


def _float32():
    import torch  # deferred: asked for by torch callers only (the dtype of a graph runtime's inputs)

    return torch.float32


def _checked_module(model, weights, image_size):
    """A model object passed in, checked: an nn.Module with a .config matching image_size, in eval mode."""
    import torch  # deferred: a module passed in means torch is loaded

    if not isinstance(model, torch.nn.Module):
        raise TransposeLiveError(f"model must be a name or an nn.Module, got {type(model).__name__}")
    if weights is not None:
        raise TransposeLiveError("weights= applies to a model name, not to a model object")
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TransposeLiveError("a model object needs a .config (transpose_live.model.config.ModelConfig)")
    if image_size is not None and tuple(image_size) != tuple(config.image_size):
        raise TransposeLiveError(
            f"image_size {tuple(image_size)} differs from the model's {tuple(config.image_size)}"
        )
    return model.eval()


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

    A named model on a graph runtime whose export is cached never builds its torch module (nor imports torch):
    the backend finds the export by the weights file's hash, and numpy carries the crops and heatmaps
    (pose/arrays.py). `.model` builds the module when asked (the attention inspector).
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
        self._device_name = resolve_device_name(device)
        if isinstance(model, str):
            source = model_source(model, weights, image_size)
            if device_type(self._device_name) != "cpu":   # torch on an accelerator: the module, moved there now
                net = source.module().to(resolve_device(self._device_name))
                if device_type(self._device_name) == "cuda" and check_precision_name(precision) == "auto":
                    net.half()
        else:
            source = ModelSource.of_module(_checked_module(model, weights, image_size).to(self._device_name))
            backend = "torch" if check_backend_name(backend) == "auto" else backend
        self._source = source
        self.flip = bool(flip)
        self.batch_size = batch_size
        # a model built here is fixed: torch may fold its batch norms (a module passed in may still be training)
        self.backend = create_backend(backend, source, self._device_name, precision=precision,
                                      fold=isinstance(model, str))   # .name: the resolved one
        if self.backend.array_type == "torch":
            first = next(iter(self.model.parameters()), None)
            dtype = first.dtype if first is not None and first.is_floating_point() else None
            self.arrays: Arrays = TorchArrays(self.device, dtype or _float32())
        else:
            self.arrays = NumpyArrays()
        # the graph runtimes keep working memory per batch size they have run: every pass is padded to one of
        # a few sizes (pose/padding.py). Eager torch is not (a CUDA run's plain frames have their own buckets,
        # and a module passed in, e.g. by training's evaluation, would only pay the padding); None: no padding
        self.batch_sizes: tuple[int, ...] | None = BATCH_SIZES if self.backend.name != "torch" else None
        # On CUDA a model built here takes the device path for plain frames (crops cut by grid_sample, CUDA-graph
        # batch buckets, DARK decoded on the GPU: transpose_live.pose.cuda.estimate); a module passed in stays eager, as
        # a training loop may still change it. Attention maps and the flip test keep the path below.
        self._device_path_allowed = device_type(self._device_name) == "cuda" and isinstance(model, str)
        self._device_path: DeviceEstimator | None = None

    @property
    def model(self) -> nn.Module:
        """The torch module (eval mode); on a graph runtime built on first access (it imports torch)."""
        return self._source.module()

    @property
    def device(self) -> torch.device:
        return resolve_device(self._device_name)

    @property
    def dtype(self) -> torch.dtype:
        return self.arrays.dtype if isinstance(self.arrays, TorchArrays) else _float32()

    @property
    def config(self) -> ModelConfig:
        return self._source.config

    # ------------------------------------------------------------------------------------ model calls

    def forward(self, x, attention: bool = False, flip: bool | None = None):
        """(B, 3, H, W) float32 inputs -> heatmaps (B, J, h, w) float32, last attention (B, N, N) or None,
        in the backend's array type (`self.arrays`: numpy on the graph runtimes, torch on the device).
        flip=None: the estimator's own `flip` setting. Rows are independent: a batch of several frames'
        crops gives each crop what it would get alone."""
        ops = self.arrays
        flip = self.flip if flip is None else flip
        x = ops.accept(x)
        B = x.shape[0]
        if flip:   # the mirrored crops ride in the same batch: one forward instead of two
            x = ops.cat([x, ops.flip_width(x)])
        hm, last = self._run_backend(x, attention)
        attn = ops.as_float32(last[:B]) if last is not None else None   # maps of the unflipped crops
        hm = ops.as_float32(hm)
        if flip:
            # official flip test: mirror the flipped heatmaps back (pairs swapped), average, no shift
            hm = (hm[:B] + flip_back(hm[B:])) * 0.5
        return hm, attn

    def warm_up(self) -> int:
        """Run one pass of zeros at each padded batch size, largest first, so the graph runtime's working memory
        is at its high-water mark before a long run starts instead of creeping up as new sizes first occur
        (a 4-camera soak with people in view grew ~39 MB over 25 minutes that way: docs/soak.md). No-op on
        eager torch (no fixed sizes). Returns the passes run."""
        if self.batch_sizes is None:
            return 0
        h, w = self.config.image_size
        with self.arrays.inference():
            for size in sorted(self.batch_sizes, reverse=True):
                self.backend(self.arrays.accept(np.zeros((size, 3, h, w), np.float32)), False)
        return len(self.batch_sizes)

    def _run_backend(self, x, attention: bool):
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
                else (self.arrays.cat(hms), self.arrays.cat(lasts) if attention else None))

    def _check_input(self, x) -> None:
        h, w = self.config.image_size
        shape = getattr(x, "shape", None)
        if shape is None or len(shape) != 4 or tuple(shape[1:]) != (3, h, w):
            got = tuple(shape) if shape is not None else type(x).__name__
            raise TransposeLiveError(f"inputs must be a (B, 3, {h}, {w}) tensor or array, got {got}")

    def estimate_crops(self, inputs, attention: bool = False):
        """Normalised crops (B, 3, H, W) (a torch tensor or numpy array) -> heatmaps (B, J, h, w) float32
        numpy (flip test included).

        With attention=True returns (heatmaps, last-layer attention (B, N, N) float32 numpy).
        """
        self._check_input(inputs)
        with self.arrays.inference():
            hm, attn = self.forward(inputs, attention)
            heatmaps = self.arrays.to_numpy(hm)
            if attn is None:   # not asked for
                return heatmaps
            return heatmaps, self.arrays.to_numpy(attn)

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

    def crop_inputs(self, persons: PersonCrops):
        """The persons' affine crops as the model's input: (K, 3, H, W) float32, in the backend's array type
        (a tensor on the device for torch, numpy for the graph runtimes)."""
        in_h, in_w = self.config.image_size
        crops = crop_batch(persons.frame, persons.centers, persons.scales, (in_w, in_h))   # (K, H, W, 3) RGB
        return self.arrays.inputs(crops)

    def decode(self, persons: PersonCrops, hm, attn) -> list[Pose]:
        """`forward`'s heatmaps (K, J, h, w) (and last attention (K, N, N)) of these persons -> Poses."""
        coords_hm, maxvals = get_final_preds(self.arrays.to_numpy(hm), persons.centers, persons.scales,
                                             transform_back=False)     # (K, J, 2), (K, J, 1)
        hm_h, hm_w = hm.shape[2:]
        preds = transform_preds(coords_hm, persons.centers, persons.scales, (hm_w, hm_h))
        areas = None
        if attn is not None:
            from transpose_live.pose.attention import dependency_areas  # deferred: torch, for attention maps only

            areas = dependency_areas(attn, coords_hm, self.config.token_grid, (hm_h, hm_w))   # (K, J, h, w)
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
        with self.arrays.inference():
            return self._estimate(frame_bgr, boxes, box_scores, attention)

    def _estimate(self, frame_bgr, boxes, box_scores, attention: bool) -> list[Pose]:
        if self._device_path_allowed and not attention and not self.flip:
            if self._device_path is None:
                from transpose_live.pose.cuda.estimate import DeviceEstimator  # deferred: torch, CUDA only

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

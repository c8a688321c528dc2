"""The attention inspector's numbers: one person's keypoints and every layer's attention, from ONE forward.

The pipeline's attention overlay keeps only the last layer's rows. The window's inspector wants more for
the person it looks at: any layer (the paper's Fig. 6 strip shows a joint's area sharpening layer by
layer), and the affected area (the column of the map: which image regions a location influences). So it
runs the person's crop once through the torch model with return_attention=True and keeps all L maps.

Only the estimator's stable surface is used: `prepare`, `crop_inputs`, `model`, `dtype`, `config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.pose.attention import layer_areas
from transpose_live.pose.decode import get_final_preds, transform_preds
from transpose_live.skeleton import KEYPOINT_NAMES
from transpose_live.types import box_tuple


def joint_index(joint: int | str) -> int:
    """A joint name ("left_wrist") or index -> its index, with a clear error otherwise."""
    if isinstance(joint, str):
        if joint not in KEYPOINT_NAMES:
            raise TransposeLiveError(f"unknown joint {joint!r}; choose one of: {', '.join(KEYPOINT_NAMES)}")
        return KEYPOINT_NAMES.index(joint)
    j = int(joint)
    if not 0 <= j < len(KEYPOINT_NAMES):
        raise TransposeLiveError(f"joint index must be 0..{len(KEYPOINT_NAMES) - 1}, got {joint}")
    return j


@dataclass
class Inspection:
    """One person seen by the model: keypoints and all of the encoder's attention maps.

    keypoints (J, 2) image pixels, scores (J,), keypoints_hm (J, 2) heatmap pixels, maps (L, N, N) float32
    `[layer, query, key]` over the token grid (h, w) = token_grid; box (x, y, w, h) of the crop.
    """

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    scores: np.ndarray
    keypoints_hm: np.ndarray
    maps: np.ndarray
    token_grid: tuple[int, int]
    heatmap_size: tuple[int, int]
    input_size: tuple[int, int]
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def layers(self) -> int:
        return int(self.maps.shape[0])

    def areas(self, affected: bool = False) -> np.ndarray:
        """(L, J, h, w) every layer's area of every joint (rows, or columns when affected)."""
        key = bool(affected)
        if key not in self._cache:
            self._cache[key] = layer_areas(self.maps, self.keypoints_hm, self.token_grid, self.heatmap_size,
                                           affected=key)
        return self._cache[key]

    def _layer(self, layer: int | None) -> int:
        """1-based layer (None: the last) -> 0-based index."""
        if layer is None:
            return self.layers - 1
        if not 1 <= int(layer) <= self.layers:
            raise TransposeLiveError(f"layer must be 1..{self.layers}, got {layer}")
        return int(layer) - 1

    def area(self, joint: int | str, layer: int | None = None, affected: bool = False) -> np.ndarray:
        """(h, w) one joint's area at one layer (1-based; None: the last)."""
        return self.areas(affected)[self._layer(layer), joint_index(joint)]

    def all_joints(self, layer: int | None = None, affected: bool = False) -> np.ndarray:
        """(J, h, w) every joint's area at one layer: what Pose.attention holds for the last layer."""
        return self.areas(affected)[self._layer(layer)]

    def strip(self, joint: int | str, affected: bool = False) -> np.ndarray:
        """(L, h, w) one joint's area at every layer, first to last (the paper's Fig. 6)."""
        return self.areas(affected)[:, joint_index(joint)]


@torch.inference_mode()
def inspect_person(estimator, frame_bgr: np.ndarray, box: Sequence[float]) -> Inspection:
    """One forward pass of the person in `box` (x, y, w, h pixels) with every layer's attention."""
    persons = estimator.prepare(frame_bgr, [list(box)])
    # the eager module's input (the estimator's crops are numpy on a graph runtime)
    x = torch.as_tensor(estimator.crop_inputs(persons)).to(estimator.device, estimator.dtype)   # (1, 3, H, W)
    out = estimator.model(x, return_attention=True)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TransposeLiveError("this model gives no attention maps (needs forward(x, return_attention=True))")
    hm, maps = out
    hm = hm.float().cpu().numpy()                                           # (1, J, h', w')
    coords_hm, maxvals = get_final_preds(hm, persons.centers, persons.scales, transform_back=False)
    hm_h, hm_w = hm.shape[2:]
    keypoints = transform_preds(coords_hm, persons.centers, persons.scales, (hm_w, hm_h))   # (1, J, 2)
    stacked = torch.stack([m[0] for m in maps]).float().cpu().numpy()       # (L, N, N)
    config = estimator.config
    grid_h, grid_w = config.token_grid
    in_h, in_w = config.image_size
    return Inspection(box=box_tuple(persons.boxes[0]),
                      keypoints=keypoints[0].astype(np.float32),
                      scores=np.clip(maxvals[0, :, 0], 0.0, 1.0).astype(np.float32),
                      keypoints_hm=coords_hm[0].astype(np.float64), maps=stacked,
                      token_grid=(int(grid_h), int(grid_w)),
                      heatmap_size=(int(hm_h), int(hm_w)), input_size=(int(in_h), int(in_w)))

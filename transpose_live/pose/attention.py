"""The paper's dependency and affected areas of predicted keypoints, read from the last attention layer.

An attention map is (B, N, N) `[b, query, key]` over the h x w token grid (N = h * w, row-major).
Dependency area of a keypoint = the row of its token (what it attends to, which the prediction
depends on); affected area = the column (which tokens attend to it).
"""

from __future__ import annotations

import numpy as np
import torch

from transpose_live.errors import TransposeLiveError


def keypoint_tokens(
    keypoints_hm: np.ndarray, token_grid: tuple[int, int], heatmap_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Token index (B, J) int64 under each heatmap-space (x, y) keypoint, and a (B, J) validity mask.

    Pixel centres are matched: heatmap coordinate u maps to token round((u + 0.5) * h/H - 0.5)
    = floor((u + 0.5) * h/H), the token whose cell holds that heatmap pixel's centre, clipped to the
    grid (R models, stride 8 over stride 4: heatmap pixels 2t and 2t+1 -> token t; H models: t -> t).
    Non-finite keypoints are invalid (their areas come back as zeros).
    """
    h, w = (int(v) for v in token_grid)
    hm_h, hm_w = (int(v) for v in heatmap_size)
    kp = np.asarray(keypoints_hm, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 2:
        raise TransposeLiveError(f"keypoints must be (B, J, 2), got shape {tuple(kp.shape)}")
    valid: np.ndarray = np.all(np.isfinite(kp), axis=-1)              # (B, J)
    kp = np.where(valid[..., None], kp, 0.0)
    tx = np.clip(np.floor((kp[..., 0] + 0.5) * (w / hm_w)), 0, w - 1).astype(np.int64)
    ty = np.clip(np.floor((kp[..., 1] + 0.5) * (h / hm_h)), 0, h - 1).astype(np.int64)
    return ty * w + tx, valid


def _areas(attn, keypoints_hm, token_grid, heatmap_size, column: bool) -> np.ndarray:
    h, w = (int(v) for v in token_grid)
    a = attn if isinstance(attn, torch.Tensor) else torch.from_numpy(np.asarray(attn))
    if a.ndim != 3 or a.shape[1] != h * w or a.shape[2] != h * w:
        raise TransposeLiveError(
            f"attention must be (B, {h * w}, {h * w}) for a {h}x{w} token grid, got {tuple(a.shape)}"
        )
    token, valid = keypoint_tokens(keypoints_hm, token_grid, heatmap_size)   # (B, J)
    if token.shape[0] != a.shape[0]:
        raise TransposeLiveError(f"{token.shape[0]} keypoint sets for {a.shape[0]} attention maps")
    # gather on the attention's device so only (B, J, N) values travel, not (B, N, N)
    t = torch.from_numpy(token).to(a.device)
    b = torch.arange(a.shape[0], device=a.device)[:, None]           # (B, 1)
    picked = a[b, :, t] if column else a[b, t]                        # (B, J, N)
    out = picked.detach().to("cpu", torch.float32).numpy().reshape(*token.shape, h, w)
    out[~valid] = 0.0
    return out


def dependency_areas(attn_last, keypoints_hm, token_grid, heatmap_size) -> np.ndarray:
    """(B, N, N) last-layer attention + (B, J, 2) heatmap keypoints -> (B, J, h, w) float32 rows."""
    return _areas(attn_last, keypoints_hm, token_grid, heatmap_size, column=False)


def affected_areas(attn_last, keypoints_hm, token_grid, heatmap_size) -> np.ndarray:
    """(B, N, N) last-layer attention + (B, J, 2) heatmap keypoints -> (B, J, h, w) float32 columns."""
    return _areas(attn_last, keypoints_hm, token_grid, heatmap_size, column=True)


def layer_areas(maps, keypoints_hm, token_grid, heatmap_size, affected: bool = False) -> np.ndarray:
    """Every layer's areas of one person: (L, N, N) maps (or a list of L (N, N) / (1, N, N)) + (J, 2)
    heatmap keypoints -> (L, J, h, w) float32. affected=False: rows (dependency areas, what each joint
    looks at); True: columns (affected areas, which tokens look at the joint). The paper's Fig. 6 strip."""
    if isinstance(maps, (list, tuple)):
        maps = torch.stack([m if isinstance(m, torch.Tensor) else torch.from_numpy(np.asarray(m))
                            for m in maps]).reshape(len(maps), *torch.as_tensor(maps[0]).shape[-2:])
    a = maps if isinstance(maps, torch.Tensor) else torch.from_numpy(np.asarray(maps))
    kp = np.asarray(keypoints_hm, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[-1] != 2:
        raise TransposeLiveError(f"keypoints must be (J, 2) for one person, got shape {tuple(kp.shape)}")
    kp = np.broadcast_to(kp, (a.shape[0], *kp.shape))                   # (L, J, 2): same joints every layer
    return _areas(a, kp, token_grid, heatmap_size, column=affected)

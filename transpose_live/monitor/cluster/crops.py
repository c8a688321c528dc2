"""What a camera sends the pose model: its persons' crops, cut on the camera's worker.

A crop is (H, W, 3) uint8 RGB, 147 KB at 256x192: a quarter of the float32 tensor and far less than the
frame (921 KB at 640x480, 6.2 MB at 1080p), so cutting it where the frame is decoded keeps the network
and the model's node light. Centres and scales travel with it so the service decodes the keypoints
straight into frame pixels; boxes and box scores make the Pose objects it returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transpose_live.errors import TransposeLiveError


@dataclass(frozen=True)
class CropBatch:
    """One frame's persons for the model (rows line up)."""

    crops: np.ndarray        # (K, H, W, 3) uint8 RGB
    centers: np.ndarray      # (K, 2) float32 pixels
    scales: np.ndarray       # (K, 2) float32 units of 200 px
    boxes: np.ndarray        # (K, 4) float64 x, y, w, h
    box_scores: np.ndarray   # (K,) float64
    attention: bool = False
    flip: bool = False

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def key(self) -> tuple[bool, bool]:
        """Only batches with the same key share a forward pass (maps and the flip test change it)."""
        return self.attention, self.flip


def checked_boxes(boxes, box_scores, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, 4) float64 boxes and (K,) scores as PoseEstimator.estimate takes them: None is the whole frame,
    an empty list nobody; a box with a non-finite value or no area is an error."""
    if boxes is None:
        return np.array([[0.0, 0.0, float(width), float(height)]]), np.ones(1)
    b = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    if not np.isfinite(b).all() or ((b[:, 2] <= 0) | (b[:, 3] <= 0)).any():
        raise TransposeLiveError("person boxes must be finite with width and height > 0")
    s = np.ones(len(b)) if box_scores is None else np.asarray(box_scores, np.float64).reshape(-1)
    if len(s) != len(b):
        raise TransposeLiveError(f"{len(s)} box scores for {len(b)} boxes")
    return b, s


def cut_crops(frame: np.ndarray, boxes, box_scores, image_size: tuple[int, int], attention: bool = False,
              flip: bool = False) -> CropBatch:
    """The frame's persons as a CropBatch for a model of input `image_size` (h, w)."""
    from transpose_live.pose.preprocess import box_to_center_scale, crop_batch

    b, s = checked_boxes(boxes, box_scores, frame.shape[1], frame.shape[0])
    in_h, in_w = image_size
    geometry = [box_to_center_scale(box, aspect_ratio=in_w / in_h) for box in b]
    centers = np.array([c for c, _ in geometry], np.float32).reshape(-1, 2)       # (K, 2)
    scales = np.array([sc for _, sc in geometry], np.float32).reshape(-1, 2)      # (K, 2)
    crops = crop_batch(frame, centers, scales, (in_w, in_h)) if len(b) else np.zeros((0, in_h, in_w, 3), np.uint8)
    return CropBatch(crops, centers, scales, b, s, bool(attention), bool(flip))


__all__ = ["CropBatch", "cut_crops", "checked_boxes"]

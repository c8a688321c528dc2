"""Frames as every stage takes them: (H, W, 3) uint8 BGR, OpenCV's order."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import cv2
import numpy as np

from transpose_live.errors import TransposeLiveError


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR from a BGR, BGRA or grayscale (H, W) / (H, W, 1) uint8 frame."""
    if not isinstance(frame, np.ndarray):
        raise TransposeLiveError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise TransposeLiveError(f"a frame must be uint8, got {frame.dtype}")
    if frame.ndim >= 2 and (frame.shape[0] == 0 or frame.shape[1] == 0):
        raise TransposeLiveError(f"empty frame of shape {tuple(frame.shape)}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise TransposeLiveError(
        f"a frame must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {tuple(frame.shape)}"
    )



@contextmanager
def opencv_log_silenced() -> Iterator[None]:
    """OpenCV's own log level silent for the block, then restored: a missing camera or a truncated picture
    shows our one message, not OpenCV's warnings (builds without cv2.utils.logging are left as they are)."""
    api = getattr(getattr(cv2, "utils", None), "logging", None)
    if api is None:
        yield
        return
    level = api.getLogLevel()
    api.setLogLevel(api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        api.setLogLevel(level)


__all__ = ["as_bgr", "opencv_log_silenced"]

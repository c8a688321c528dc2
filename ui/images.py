"""Frames (numpy BGR) as QImages the GUI thread can paint."""

from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage

from transpose_live.errors import TransposeLiveError


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """(H, W, 3) uint8 BGR (or (H, W) grey) -> a QImage that owns its pixels."""
    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8:
        raise TransposeLiveError(f"frames must be uint8, got {array.dtype}")
    if array.ndim == 2:
        h, w = array.shape
        fmt, stride = QImage.Format.Format_Grayscale8, w
    elif array.ndim == 3 and array.shape[2] == 3:
        h, w = array.shape[:2]
        fmt, stride = QImage.Format.Format_BGR888, 3 * w
    else:
        raise TransposeLiveError(f"frames must be (H, W, 3) BGR or (H, W) grey, got shape {array.shape}")
    # QImage only borrows the buffer: copy() makes it independent of the numpy array
    return QImage(array.data, w, h, stride, fmt).copy()

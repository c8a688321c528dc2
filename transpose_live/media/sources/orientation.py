"""Orientation: FFmpeg's display matrix (a phone's rotated video) turned into numpy flips and transposes."""

from __future__ import annotations

from typing import Any

import numpy as np


def display_transform(matrix: np.ndarray | None) -> tuple[bool, bool, bool] | None:
    """(transpose, flip_rows, flip_cols) that turn the coded picture upright, from a 3x3 display matrix
    (9 int32, FFmpeg layout). The display position is x' = a·x + c·y, y' = b·x + d·y (a, b, c, d =
    m[0], m[1], m[3], m[4]); this matches `ffmpeg`'s own autorotate for all eight orientations.
    None when the matrix is not a multiple of 90 degrees (then the frame is left as coded)."""
    if matrix is None:
        return False, False, False
    a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
    if abs(b) < 1e-6 * max(abs(a), 1) and abs(c) < 1e-6 * max(abs(d), 1) and a and d:
        return False, d < 0, a < 0
    if abs(a) < 1e-6 * max(abs(b), 1) and abs(d) < 1e-6 * max(abs(c), 1) and b and c:
        return True, b < 0, c < 0
    return None


def apply_transform(image: np.ndarray, transform: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, flip_rows, flip_cols = transform
    if transpose:
        image = image.transpose(1, 0, 2)
    if flip_rows:
        image = image[::-1]
    if flip_cols:
        image = image[:, ::-1]
    return np.ascontiguousarray(image) if (transpose or flip_rows or flip_cols) else image


def display_matrix(av_frame) -> np.ndarray | None:
    """The frame's display matrix (9 int32), None when it has none.

    Read through a side-data container of our own, not `av_frame.side_data`: PyAV caches that one on the
    frame and it points back at the frame, a reference cycle only Python's cyclic collector frees, which
    kept each connection's first frame (its picture, its swscale context and that context's threads) alive
    for as long as no full collection ran (issue 27: +2 OS threads per RTSP reconnect)."""
    from av.sidedata.sidedata import SideDataContainer  # deferred like every PyAV import (FFmpeg loads)

    of_frame: Any = SideDataContainer        # PyAV's stub leaves out the constructor: SideDataContainer(frame)
    for side in of_frame(av_frame):
        if getattr(side.type, "name", "") == "DISPLAYMATRIX":
            return np.frombuffer(bytes(side), dtype=np.int32)
    return None

"""A local camera through OpenCV (timestamps are wall-clock seconds since open)."""

from __future__ import annotations

import logging
import time

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.image import opencv_log_silenced
from transpose_live.media.sources.base import Frame, Source

log = logging.getLogger(__name__)


class CameraSource(Source):
    """A local camera through OpenCV. Timestamps are wall-clock seconds since open."""

    is_live = True

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None):
        import cv2  # deferred: OpenCV loads on first use

        if index < 0:
            raise TransposeLiveError(f"camera index must be >= 0, got {index}")
        self.index = index
        with opencv_log_silenced():        # a missing camera: our one message, not OpenCV's backend chatter
            self._cap = cv2.VideoCapture(index)
            super().__init__()
            if not self._cap.isOpened():
                self.close()
                raise TransposeLiveError(f"cannot open camera {index} (not connected, or in use by another program)")
            if width:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                self._cap.set(cv2.CAP_PROP_FPS, fps)
            ok, image = self._cap.read()
        if not ok or image is None:
            self.close()
            raise TransposeLiveError(f"camera {index} opened but gives no frames")
        self._pending: np.ndarray | None = image
        self._size = (image.shape[1], image.shape[0])
        self._fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or None
        self._t0 = time.monotonic()
        self._index = 0

    def _next_frame(self) -> Frame:
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                log.warning("camera %d stopped giving frames after %d", self.index, self._index)
                raise StopIteration
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        frame = Frame(image=image, index=self._index, timestamp=time.monotonic() - self._t0)
        self._index += 1
        return frame

    def _release(self) -> None:
        self._cap.release()



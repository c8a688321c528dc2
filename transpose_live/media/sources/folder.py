"""Image folders (or lists of image files) as a source, in natural name order; decode_image, the one way
pictures are decoded (OpenCV's own warnings silenced: a broken file gets our one message, not theirs)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.image import opencv_log_silenced
from transpose_live.media.sources.base import Frame, Source

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset((".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"))


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def decode_image(data: np.ndarray) -> np.ndarray | None:
    """(H, W, 3) uint8 BGR from an encoded picture's bytes (uint8 array), or None when OpenCV cannot decode
    it. OpenCV's own log ("[ WARN:0@...] global grfmt_png.cpp ...", a truncated PNG) is silenced for the
    call: the caller says what went wrong, in one line."""
    import cv2  # deferred: OpenCV takes ~0.2 s to import

    if not data.size:
        return None
    with opencv_log_silenced():
        return cv2.imdecode(data, cv2.IMREAD_COLOR)


class ImageFolderSource(Source):
    """The image files of a folder (or a list of files), in natural name order (img2 before img10).
    Timestamps are index / fps (fps 1 unless given). Unreadable images are skipped with a warning.
    `label` names it in messages: the folder, the one file, or "N image(s)" (no `path`: that is a video file's,
    the one a writer copies audio from)."""

    is_live = False

    def __init__(self, folder: str | os.PathLike | list, fps: float | None = None):
        if isinstance(folder, (list, tuple)):
            paths = [Path(p) for p in folder]
            label: str | Path = paths[0] if len(paths) == 1 else f"{len(paths)} image(s)"
        else:
            root = Path(folder)
            if not root.is_dir():
                raise TransposeLiveError(f"image folder not found: {root}")
            paths = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
            label = root
        if not paths:
            raise TransposeLiveError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {label}")
        if fps is not None and fps <= 0:
            raise TransposeLiveError(f"fps must be > 0, got {fps}")
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise TransposeLiveError(f"image file not found: {missing[0]}")
        super().__init__()               # nothing to release: each image is read whole in _next_frame
        self.label = label
        self.paths = sorted(paths, key=_natural_key)
        self._fps = fps
        self._pos = 0
        self._index = 0
        first = self._read(self.paths[0])
        if first is None:
            raise TransposeLiveError(f"cannot read image {self.paths[0]}")
        self._size = (first.shape[1], first.shape[0])

    @staticmethod
    def _read(path: Path) -> np.ndarray | None:
        return decode_image(np.fromfile(str(path), dtype=np.uint8))    # works with non-ASCII paths too

    @property
    def frame_count(self) -> int | None:
        return len(self.paths)

    @property
    def duration(self) -> float | None:
        return len(self.paths) / (self._fps or 1.0)

    def _next_frame(self) -> Frame:
        while self._pos < len(self.paths):
            path = self.paths[self._pos]
            self._pos += 1
            image = self._read(path)
            if image is None:
                log.warning("skipping unreadable image %s", path)
                continue
            frame = Frame(image=image, index=self._index, timestamp=self._index / (self._fps or 1.0),
                          path=str(path))
            self._index += 1
            return frame
        raise StopIteration

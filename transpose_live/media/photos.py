"""Reading and writing single pictures, with one clear error for each way it can go wrong."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sinks.target import OutputTarget
from transpose_live.media.sources.folder import decode_image


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 BGR; grayscale and 16-bit files are converted. A broken file is one error (OpenCV's
    own warning about it is silenced)."""
    path = Path(path)
    if not path.exists():
        raise TransposeLiveError(f"photo not found: {path}")
    if not path.is_file():
        raise TransposeLiveError(f"not a file: {path}")
    try:
        data = np.fromfile(path, dtype=np.uint8)      # imdecode: non-ASCII paths work too
    except OSError as exc:
        raise TransposeLiveError(f"cannot read {path}: {exc.strerror}") from None
    image = decode_image(data)
    if image is None:
        raise TransposeLiveError(f"cannot read {path} as an image (not a picture format OpenCV knows)")
    return image


def check_photo_output(path: str | os.PathLike) -> None:
    """Fail before any work: a format OpenCV can write, a writable folder."""
    import cv2  # deferred: OpenCV takes ~0.2 s to import

    if os.fspath(path) == "-" or not cv2.haveImageWriter(str(path)):
        raise TransposeLiveError(f"cannot write {path}: unknown image format "
                                 f"{Path(path).suffix or '(none)'!r} (use .jpg or .png)")
    OutputTarget(path, "image").discard()


def write_photo(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode by the file's suffix (JPEG at quality 90) and put it in place atomically."""
    import cv2  # deferred: OpenCV takes ~0.2 s to import

    suffix = Path(path).suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if suffix in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, image, params)
    if not ok:
        raise TransposeLiveError(f"could not encode {path}")
    OutputTarget(path, "image").write_bytes(buf.tobytes())


__all__ = ["read_photo", "write_photo", "check_photo_output"]

"""The cache folder (checkpoints, exported graphs, converted detectors) and file hashes.

Shared by the weights hub, the ONNX export and the detectors' converted graphs; it imports nothing of the
project but errors, so every layer may use it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

HOME_ENV = "TRANSPOSE_LIVE_HOME"


def cache_dir() -> Path:
    """$TRANSPOSE_LIVE_HOME, else $XDG_CACHE_HOME/transpose-live, else ~/.cache/transpose-live."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "transpose-live"
    return Path.home() / ".cache" / "transpose-live"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["HOME_ENV", "cache_dir", "file_sha256"]

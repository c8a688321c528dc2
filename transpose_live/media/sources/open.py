"""open_source: what the user named (camera index, stream URL, folder, image, video file) → the right Source."""

from __future__ import annotations

import os
from pathlib import Path

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sources.base import Source
from transpose_live.media.sources.camera import CameraSource
from transpose_live.media.sources.file import FileSource
from transpose_live.media.sources.folder import IMAGE_EXTENSIONS, ImageFolderSource
from transpose_live.media.sources.rtsp import RtspSource

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "srt://")


def open_source(spec: str | int | os.PathLike, *, start: float | None = None, end: float | None = None,
                width: int | None = None, height: int | None = None, fps: float | None = None,
                timeout: float = 10.0, transport: str = "tcp", max_retries: int | None = None) -> Source:
    """Open what the user named: an int or digit string is a camera, rtsp://, rtsps://, http(s)://
    (and rtmp/udp/srt) URLs are streams, a folder is an image folder, an image file a one-image folder,
    anything else a video file. width/height/fps apply to cameras (fps also to image folders);
    timeout/transport/max_retries to streams (see RtspSource: None retries forever, 0 fails at once)."""
    if isinstance(spec, bool):
        raise TransposeLiveError(f"not a source: {spec!r}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec), width=width, height=height, fps=fps)
    text = os.fspath(spec)
    if not text.strip():
        raise TransposeLiveError("empty source: give a video file, image folder, camera index or stream URL")
    if text.lower().startswith(STREAM_SCHEMES):
        return RtspSource(text, transport=transport, timeout=timeout, max_retries=max_retries)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, fps=fps)
    if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
        return ImageFolderSource([path], fps=fps)
    return FileSource(path, start=start, end=end)

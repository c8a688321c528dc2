"""open_source: what the user named (camera index, stream URL, folder, image, video file) → the right Source.
check_stream_url: a URL no source can read (unknown scheme, no host) refused at once, before any connection."""

from __future__ import annotations

import os
import re
from pathlib import Path

from transpose_live.errors import TransposeLiveError
from transpose_live.media.redact import redact_url
from transpose_live.media.sources.base import Source
from transpose_live.media.sources.camera import CameraSource
from transpose_live.media.sources.file import FileSource
from transpose_live.media.sources.folder import IMAGE_EXTENSIONS, ImageFolderSource
from transpose_live.media.sources.rtsp import RtspSource

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "srt://")
LISTENING_SCHEMES = ("udp", "srt")      # udp://@:1234, srt://:9000?mode=listener: a port alone, no host
_URL = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]+)://")      # 2+ letters: C://videos/a.mp4 is a Windows path


def is_url(text: str) -> bool:
    """Whether `text` is written as a URL (scheme://...), whatever the scheme."""
    return _URL.match(text) is not None


def check_stream_url(url: str) -> str:
    """`url` as given when a stream source can read it: a scheme of STREAM_SCHEMES and a host (udp and srt
    may listen on a port alone). Otherwise one TransposeLiveError that says why, never showing a password:
    such a URL would otherwise be retried forever."""
    match = _URL.match(url)
    shown = redact_url(url)
    schemes = ", ".join(s[:-3] for s in STREAM_SCHEMES)
    if match is None:
        raise TransposeLiveError(f"not a stream URL: {shown!r} (streams are {schemes}: rtsp://host/path; "
                                 "files go to `video`)")
    scheme = match.group(1).lower()
    if scheme + "://" not in STREAM_SCHEMES:
        raise TransposeLiveError(f"no source reads {scheme}:// URLs: {shown!r} (streams are {schemes}; "
                                 "a file or folder is given by its path)")
    host, port = _host_port(url[match.end():])
    if not host and not (scheme in LISTENING_SCHEMES and port):
        raise TransposeLiveError(f"the URL names no host: {shown!r} (e.g. {scheme}://camera.local:554/stream)")
    return url


def _host_port(rest: str) -> tuple[str, str]:
    """(host, port) of what follows scheme://, split as FFmpeg does: the authority ends at the first / ? or #,
    the user info at its last @; an IPv6 host is in brackets."""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if authority.startswith("["):
        host, _, after = authority[1:].partition("]")
        return host, after[1:] if after.startswith(":") else ""
    host, _, port = authority.partition(":")
    return host, port


def open_source(spec: str | int | os.PathLike, *, start: float | None = None, end: float | None = None,
                width: int | None = None, height: int | None = None, fps: float | None = None,
                timeout: float = 10.0, transport: str = "tcp", max_retries: int | None = None) -> Source:
    """Open what the user named: an int or digit string is a camera, rtsp://, rtsps://, http(s):// (and
    rtmp/udp/srt) URLs are streams (other schemes and URLs without a host are refused: check_stream_url),
    a folder is an image folder, an image file a one-image folder, anything else a video file.
    width/height/fps apply to cameras (fps also to image folders); timeout/transport/max_retries to
    streams (see RtspSource: None retries forever, 0 fails at once)."""
    if isinstance(spec, bool):
        raise TransposeLiveError(f"not a source: {spec!r}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec), width=width, height=height, fps=fps)
    text = os.fspath(spec)
    if not text.strip():
        raise TransposeLiveError("empty source: give a video file, image folder, camera index or stream URL")
    if is_url(text):
        return RtspSource(check_stream_url(text), transport=transport, timeout=timeout, max_retries=max_retries)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, fps=fps)
    if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
        return ImageFolderSource([path], fps=fps)
    return FileSource(path, start=start, end=end)

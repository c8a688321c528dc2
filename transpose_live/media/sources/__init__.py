"""Frame sources (files, RTSP with reconnection, cameras, image folders); a step of the split into modules."""

from transpose_live.media.sources.rtsp import (
    IMAGE_EXTENSIONS,
    STREAM_SCHEMES,
    AudioInfo,
    CameraSource,
    FileSource,
    Frame,
    ImageFolderSource,
    RtspSource,
    Source,
    apply_transform,
    display_transform,
    open_source,
)

__all__ = ["IMAGE_EXTENSIONS", "STREAM_SCHEMES", "AudioInfo", "CameraSource", "FileSource", "Frame",
           "ImageFolderSource", "RtspSource", "Source", "apply_transform", "display_transform", "open_source"]

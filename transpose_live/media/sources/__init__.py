"""Frame sources behind one iterator interface: video files and network streams (PyAV), cameras (OpenCV),
image folders. Every source yields `Frame`s: BGR uint8 images, upright, with their own timestamps.
Network streams reconnect by themselves (RtspSource); no message ever shows a URL's password.

    base.py         Frame, AudioInfo, Source (the iterator base: one read at a time, close from any thread)
    orientation.py  FFmpeg's display matrix → flips/transposes
    pyav.py         decoding shared by files and streams (PyAVSource)
    file.py         FileSource: video files
    rtsp.py         RtspSource: network streams with reconnection
    camera.py       CameraSource: local cameras (OpenCV)
    folder.py       ImageFolderSource: image folders
    open.py         open_source: a camera index, URL, folder or file → the right source; check_stream_url

Imports only the vocabulary (errors) and media.redact."""

from transpose_live.media.sources.base import AudioInfo, Frame, Source
from transpose_live.media.sources.camera import CameraSource
from transpose_live.media.sources.file import FileSource
from transpose_live.media.sources.folder import IMAGE_EXTENSIONS, ImageFolderSource
from transpose_live.media.sources.open import STREAM_SCHEMES, check_stream_url, is_url, open_source
from transpose_live.media.sources.orientation import apply_transform, display_transform
from transpose_live.media.sources.rtsp import RtspSource

__all__ = ["IMAGE_EXTENSIONS", "STREAM_SCHEMES", "AudioInfo", "CameraSource", "FileSource", "Frame",
           "ImageFolderSource", "RtspSource", "Source", "apply_transform", "check_stream_url",
           "display_transform", "is_url", "open_source"]

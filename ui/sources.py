"""How the window opens, names and reads its sources.

The window is given a file path, a camera index, a stream URL or an opened Source (transpose_live.media.sources).
An opened Source is played once; every later start (Stop then Start, a seek, a new model) reopens it from what
`source_spec` tells. A stream in the window retries only a few times, then its error is shown. The worker reads
every source through a RememberingSource: the pipeline draws on its frames, the inspector needs them clean.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Any, Union

import numpy as np

from transpose_live.media import sources as media_sources
from transpose_live.media.redact import source_label as redacted_label
from transpose_live.media.sources import STREAM_SCHEMES, Frame, Source

SourceLike = Union[str, int, os.PathLike, Source]     # what the window and its worker are given to play
SourceSpec = Union[str, int, os.PathLike]             # what reopens a source

WINDOW_STREAM_RETRIES = 3  # a stream in the window: a few reconnections (~4 s), then the error is shown
# raw frames remembered for the inspector beyond what the pipeline holds in flight (3 queues of
# spec.queue_size, one frame in each of 4 stages) and a few on their way to the screen; 1080p: ~6 MB each
RAW_FRAMES_SPARE = 8


def open_for_window(spec: SourceSpec, **kwargs: Any) -> Source:
    """open_source, with a stream's reconnections bounded (the window shows the error instead)."""
    if isinstance(spec, str) and spec.lower().startswith(STREAM_SCHEMES):
        kwargs.setdefault("max_retries", WINDOW_STREAM_RETRIES)
    # looked up at each call, not bound at import: a program (or a test's fake camera) may replace it
    return media_sources.open_source(spec, **kwargs)


def source_spec(source: Any) -> SourceSpec | None:
    """What reopens an opened Source: its file, URL or camera index (None when it cannot be told)."""
    for attr in ("path", "url", "index"):
        value = getattr(source, attr, None)
        if value is not None:
            return value
    return None


def source_key(source: SourceLike | None) -> str | None:
    """One name for a source however it is given (an opened Source and its path are the same key): where
    the window remembers a file's resume position."""
    spec = source if isinstance(source, (str, int)) or source is None else source_spec(source)
    return str(spec) if spec is not None else None


def source_label(spec: SourceLike | None) -> str:
    """How the window names a source: "camera 0", a file name, a URL without its password."""
    return "source" if spec is None else redacted_label(spec)


class RememberingSource:
    """A source seen through a window onto its last raw frames (by frame index): the pipeline draws on its
    frames, the inspector needs them clean. Everything else (is_live, fps, on_event, close...) is the
    source's own."""

    def __init__(self, source: Source, keep: int = 3 * 4 + RAW_FRAMES_SPARE):
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_frames", collections.OrderedDict())
        object.__setattr__(self, "_keep", keep)
        object.__setattr__(self, "_lock", threading.Lock())

    def __iter__(self) -> RememberingSource:
        return self

    def __next__(self) -> Frame:
        frame = next(self._source)
        with self._lock:
            self._frames[frame.index] = frame.image
            while len(self._frames) > self._keep:
                self._frames.popitem(last=False)
        return frame

    def raw(self, index: int) -> np.ndarray | None:
        with self._lock:
            return self._frames.get(index)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def __setattr__(self, name: str, value: Any) -> None:      # Pipeline sets source.on_event
        setattr(self._source, name, value)

    def __enter__(self) -> RememberingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self._source.close()

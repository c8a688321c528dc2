"""What every source is: `Frame` (one upright BGR picture with its timestamp), `AudioInfo`, and `Source`, the
iterator base that owns reading and closing across threads (one read at a time; close() from any thread
never frees FFmpeg/OpenCV resources under a running read)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np


@dataclass
class Frame:
    """One decoded picture. image (H, W, 3) uint8 BGR; timestamp in seconds from the start of the source."""

    image: np.ndarray
    index: int
    timestamp: float
    path: str | None = None        # the image file, for folder sources


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    duration: float | None         # seconds, when the container says


class Source(ABC):
    """Iterator of Frames with the facts a pipeline or writer needs. Use as a context manager.

    The pipeline reads a source in its capture thread while whoever stops the run closes it from another,
    and a camera or network read can block for seconds. So this class owns reading and closing: a lock lets
    one thread read at a time, and close() never frees FFmpeg/OpenCV resources under a running read: it
    marks the source closing and leaves the release to the reading thread, right after its read returns.
    Subclasses implement `_next_frame` and `_release`, and call `Source.__init__` as soon as they hold
    something `_release` must free (before that, a failing constructor frees what it holds itself).
    A source that ends (`_next_frame` raises StopIteration) releases its resources at once."""

    is_live: bool = False
    path: str | None = None        # file path for file sources (a writer copies audio from it)
    time_base: Fraction | None = None   # the stream's own time base, when it has one
    audio: AudioInfo | None = None

    _fps: float | None = None
    _size: tuple[int, int] = (0, 0)    # set by each source once its first frame is known

    def __init__(self) -> None:
        self._read_lock = threading.Lock()     # held for a whole read: reads never overlap
        self._state = threading.Lock()         # guards the two fields below; held only briefly
        self._closing = False                  # set once by close() or the end; no read starts after it
        self._reader: int | None = None        # the thread inside _next_frame, if any
        self._released = threading.Event()

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames as yielded (after rotation)."""
        return self._size

    @property
    def frame_count(self) -> int | None:
        """Estimated number of frames still to come from the start (None for live sources)."""
        return None

    @property
    def duration(self) -> float | None:
        return None

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._closing:      # unlocked fast path: don't queue behind a read that may hang
            raise StopIteration
        with self._read_lock:
            with self._state:
                if self._closing:
                    raise StopIteration
                self._reader = threading.get_ident()
            ended = False
            try:
                frame = self._next_frame()
            except StopIteration:
                ended = True
                raise
            finally:
                closed = self._end_read(ended)
            if closed:
                raise StopIteration     # close() came during the read: its frame is not handed out
            return frame

    def _end_read(self, ended: bool) -> bool:
        """After a read: release here if close() came meanwhile (it left that to this thread) or the
        source has ended. True when the source is closed now."""
        with self._state:
            self._reader = None
            self._closing = self._closing or ended
            closing = self._closing
        if closing:
            # no read can start any more (they check _closing under _state), and this one is over
            self._free()
        return closing

    def close(self) -> None:
        """Stop the source from any thread; returns at once. Frees the resources now when no read is in
        flight, else the reading thread frees them as soon as its read returns (see wait_closed).
        Idempotent; no frame is produced after it returns."""
        state = getattr(self, "_state", None)
        if state is None:           # the constructor failed before holding anything
            return
        with state:
            if self._closing:       # already closed, closing, or ended: the release is someone's job
                return
            self._closing = True
            reading = self._reader is not None
        self._interrupt()
        if not reading:             # also when called from inside _next_frame: that read releases
            self._free()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Whether the resources are released, waiting up to `timeout` seconds for a read to return."""
        return self._released.wait(timeout)

    def _free(self) -> None:
        # reached exactly once: by close() with no read in flight, or by the read during which it came
        try:
            self._release()
        finally:
            self._released.set()

    @abstractmethod
    def _next_frame(self) -> Frame:
        """The next frame; StopIteration at the end. Called with the read lock held."""

    def _release(self) -> None:
        """Free the file/camera/network resources; called once, never during a read. Nothing by default."""
        return None

    def _interrupt(self) -> None:
        """Called by close() (from the closing thread, once) to wake a read waiting on something of the
        subclass's own, e.g. a reconnect delay. Must only signal: the read still releases. Nothing by default."""
        return None

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

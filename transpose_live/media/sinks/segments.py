"""Recording an annotated stream in segments: `<folder>/<camera>/<camera>-YYYYmmdd-HHMMSS.mp4`, one H.264
file per `segment_minutes` of stream time, each written by a `VideoWriter` (hidden temporary file, renamed
into place when finished), so every file under a visible name is complete and playable.

A process killed outright (SIGKILL, power loss) leaves every finished segment as it was and the segment in
progress as its hidden temporary file, `.<camera>-<time>.<hex>.part.mp4`: an MP4 whose index was never
written, which no player opens. `cleanup_partial(folder)` at the next start-up removes those.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sinks.base import Abortable, Sink
from transpose_live.media.sinks.target import check_output
from transpose_live.media.sinks.video import VideoWriter
from transpose_live.types import FrameResult

log = logging.getLogger(__name__)

# files changed before this module was loaded belong to an earlier run (cleanup_partial's default cut-off)
_RUN_STARTED = time.time()
# a frame this close to the segment's end counts as at the end (timestamps like i * 0.1 are not exact)
_EPS = 1e-3
# VideoWriter's temporary name (target.OutputTarget): .<stem>.<8 hex>.part.mp4
_PART = re.compile(r"^\..+\.[0-9a-f]{8}\.part\.mp4$")


def safe_camera_name(camera: str) -> str:
    """A camera name as a file name: a URL loses its user and password, characters other than letters,
    digits, '.', '_' and '-' become '_', no leading dot or dash (hidden files, options), at most 64."""
    text = re.sub(r"://[^/@]*@", "://", str(camera))     # rtsp://user:secret@host/x → rtsp://host/x
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).lstrip("._-")[:64].rstrip("._-")
    return text or "camera"


class SegmentedVideoWriter(Sink, Abortable):
    """A sink (`write_frame(image, result)`, `close()`, `abort()`) that records `camera` into `folder` as
    consecutive MP4 segments.

    A segment starts at a frame and ends once `segment_minutes` (fractions welcome) of stream time — the
    frames' own timestamps, not the wall clock, so a slow pipeline still makes segments of that length —
    have passed; the next frame starts the next one, whose timestamps start at 0 again. A frame of another
    size (a camera back at another resolution) or a clock that jumps back before the segment's start (a
    restarted stream) starts a new segment too. The name carries the UTC wall-clock time at which the
    segment started (`_01`, `_02`, ... when several start within one second, so names sort in order).

    fps: the nominal rate written into each file (timestamps decide the timing). size: (width, height) to
    scale every frame to (one resolution for all segments); None keeps each frame's own size.
    `segments` lists the finished files, oldest first.
    """

    needs_image = True

    def __init__(self, folder: str | os.PathLike, camera: str, segment_minutes: float = 10.0,
                 fps: float | None = None, size: tuple[int, int] | None = None):
        if not (isinstance(segment_minutes, (int, float)) and math.isfinite(segment_minutes)
                and segment_minutes > 0):
            raise TransposeLiveError(f"segment length must be > 0 minutes, got {segment_minutes!r}")
        if fps is not None and not (fps > 0 and math.isfinite(fps)):
            raise TransposeLiveError(f"fps must be > 0, got {fps}")
        if size is not None:
            size = (int(size[0]), int(size[1]))
            if min(size) <= 0:
                raise TransposeLiveError(f"recording size must be positive, got {size[0]}x{size[1]}")
        self.camera = safe_camera_name(camera)
        self.folder = Path(folder).expanduser() / self.camera
        self.segment_seconds = 60.0 * float(segment_minutes)
        self.fps = fps
        self.size = size
        self.segments: list[Path] = []
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransposeLiveError(f"cannot record into {self.folder}: {exc.strerror}") from None
        check_output(self.folder / f"{self.camera}.mp4", "recording")   # writable: fail now, not at frame 1
        self._writer: VideoWriter | None = None
        self._t0 = 0.0                     # stream time of the current segment's first frame
        self._frames = 0                   # all frames written (timestamps default to frames / fps)
        self._closed = False
        self._lock = threading.Lock()      # frames come from the render thread, close() may come from another

    def write(self, image: np.ndarray | None, timestamp: float | None = None) -> None:
        """Add one BGR frame; timestamp in seconds of stream time (None: frames so far / fps)."""
        if image is None:
            raise ValueError("SegmentedVideoWriter needs the rendered frame, got None")
        if self.size is not None and image.shape[1::-1] != self.size:
            import cv2  # deferred: OpenCV is only needed when frames are scaled

            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        t = float(timestamp) if timestamp is not None else self._frames / (self.fps or 30.0)
        with self._lock:
            if self._closed:
                raise RuntimeError("SegmentedVideoWriter is closed")
            writer = self._writer
            if writer is not None and ((writer.height, writer.width) != image.shape[:2] or t < self._t0
                                       or t - self._t0 >= self.segment_seconds - _EPS):
                self._finish()
            writer = self._writer or self._start(image.shape[1], image.shape[0], t)
            writer.write(image, t)
            self._frames += 1

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        """The sink interface: the rendered frame at its stream timestamp."""
        self.write(image, result.timestamp)

    @property
    def current(self) -> Path | None:
        """The name the segment in progress will have when finished (None between segments)."""
        return self._writer.path if self._writer is not None else None

    def _start(self, width: int, height: int, t: float) -> VideoWriter:
        self._writer = VideoWriter(self._segment_path(), width, height, fps=self.fps)
        self._t0 = t
        return self._writer

    def _segment_path(self) -> Path:
        stem = f"{self.camera}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
        path = self.folder / f"{stem}.mp4"
        n = 0
        while path.exists():
            n += 1
            path = self.folder / f"{stem}_{n:02d}.mp4"
        return path

    def _finish(self) -> None:
        """Close the segment in progress (it appears under its name); no frames, no file."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.close()
        if writer.frames_written:
            self.segments.append(writer.path)
            log.info("recorded %s (%d frames)", writer.path, writer.frames_written)

    def close(self) -> None:
        """Finish the segment in progress; later frames are refused."""
        with self._lock:
            self._closed = True
            self._finish()

    def abort(self) -> None:
        """After a failure elsewhere: the recording up to it is worth keeping, so this finishes the segment
        too; a segment that cannot be finished is dropped (logged, not raised)."""
        try:
            self.close()
        except Exception as exc:
            log.warning("could not finish the last segment of %s: %s", self.camera, exc)

    def __enter__(self) -> "SegmentedVideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cleanup_partial(folder: str | os.PathLike, older_than: float | None = None) -> list[Path]:
    """Remove the hidden `.part.mp4` files that a killed recording left in `folder` and its camera folders;
    only those last changed before `older_than` (a time.time() value; default: when this process loaded
    this module, i.e. files of an earlier run — a segment being written now is never touched). Returns the
    removed paths."""
    root = Path(folder).expanduser()
    cutoff = _RUN_STARTED if older_than is None else float(older_than)
    removed = []
    for path in [*root.glob(".*.part.mp4"), *root.glob("*/.*.part.mp4")]:
        if not _PART.match(path.name):
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc.strerror)
    if removed:
        log.info("removed %d unfinished segment(s) of an earlier run in %s", len(removed), root)
    return removed


__all__ = ["SegmentedVideoWriter", "cleanup_partial", "safe_camera_name"]

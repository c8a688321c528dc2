"""Video files (PyAV): any container/codec FFmpeg reads, upright, own timestamps, trimmed by start/end."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sources.pyav import PyAVSource, ffmpeg_reason

log = logging.getLogger(__name__)


class FileSource(PyAVSource):
    """A video file in any container/codec FFmpeg reads. Frames come upright (display matrix honoured)
    with their own presentation timestamps (variable frame rate kept). `start`/`end` in seconds."""

    is_live = False
    skip_corrupt = True

    def __init__(self, path: str | os.PathLike, start: float | None = None, end: float | None = None):
        import av  # deferred: PyAV loads on first use

        p = Path(path)
        if not p.exists():
            raise TransposeLiveError(f"video file not found: {p}")
        if p.is_dir():
            raise TransposeLiveError(f"{p} is a folder, not a video file")
        if start is not None and start < 0:
            raise TransposeLiveError(f"start must be >= 0 seconds, got {start}")
        if end is not None and end <= (start or 0.0):
            raise TransposeLiveError(f"end ({end} s) must be after start ({start or 0.0} s)")
        self.path = str(p)
        self.start = float(start) if start else 0.0
        self.end = float(end) if end is not None else None
        try:
            container = av.open(self.path, metadata_errors="ignore")
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise TransposeLiveError(f"cannot read {p} as a video: {ffmpeg_reason(exc)}") from None
        if self.start and container.streams.video:
            self._seek(container, self.start)
        self._setup(container, str(p))

    @staticmethod
    def _seek(container, seconds: float) -> None:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        try:  # to the key frame before `start`; frames before it are then dropped by _keep
            container.seek(origin + int(seconds / stream.time_base), stream=stream, backward=True)
        except Exception as exc:  # unseekable file: decode from the beginning instead
            log.debug("seek failed (%s); decoding from the start", exc)

    def _keep(self, ts: float) -> bool:
        half = 0.5 / (self.fps or 1000.0)              # tolerate rounding of the seek target
        return ts >= self.start - half and (self.end is None or ts < self.end)

    def _past_end(self, ts: float) -> bool:
        return self.end is not None and ts >= self.end

    @property
    def duration(self) -> float | None:
        if self._total is None:
            return None
        end = min(self._total, self.end) if self.end is not None else self._total
        return max(0.0, end - self.start)

    @property
    def frame_count(self) -> int | None:
        if self._header_frames and not self.start and self.end is None:
            return self._header_frames
        if self.duration is not None and self.fps:
            return int(round(self.duration * self.fps))
        return self._header_frames or None

    def _finished(self) -> None:
        """The file said it holds more than could be read: a truncated or damaged tail."""
        if self._total is None or self._last_ts is None or self.end is not None:
            return
        if self._header_frames and not self.start:     # the header's frame count is the better witness
            early = self._index < self._header_frames - 1
        else:
            early = self._last_ts + 2.5 / (self.fps or 25.0) < self._total
        if early:
            log.warning("%s: file ends early (truncated or damaged?): decoded %d frames up to %.2f s of %.2f s",
                        self._label, self._index, self._last_ts, self._total)

"""A few seconds of recorded video around an event, cut from the camera's finished segments.

Segments are `<record-dir>/<camera>/<camera>-YYYYmmdd-HHMMSS[_NN].mp4` (media.segments): the name is the UTC
wall-clock time of the segment's first frame, the frames' timestamps count from it, so a frame's wall time
is the name's time plus its timestamp (to about a second: names have whole seconds). Only files under a
visible name are read: those are finished (the segment being written is a hidden .part file). The clip is
decoded and encoded again (H.264, media.sinks.VideoWriter), so it starts and ends where asked, not at the
segments' key frames.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from transpose_live.media.sinks.segments import safe_camera_name

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^(?P<camera>.+)-(?P<time>\d{8}-\d{6})(?:_\d+)?\.mp4$")
# the segment being written: VideoWriter's hidden temporary name, .<segment name>.<8 hex>.part.mp4
_PART = re.compile(r"^\.(?P<camera>.+)-(?P<time>\d{8}-\d{6})(?:_\d+)?\.[0-9a-f]{8}\.part\.mp4$")


class ClipUnavailable(Exception):
    """No clip for this event: `status` 404 (never recorded) or 409 (still being recorded), with the reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Segment:
    path: Path
    start: float            # wall clock (epoch seconds) of its first frame
    end: float


class ClipCutter:
    """Clips from the segments under `record_dir`: `before` seconds before an event to `after` seconds after."""

    def __init__(self, record_dir: Path, before: float, after: float):
        self.record_dir = Path(record_dir)
        self.before, self.after = float(before), float(after)
        self._durations: dict[tuple[Path, int, float], float] = {}     # (path, size, mtime) -> seconds
        self._lock = threading.Lock()                                   # one cut at a time

    def segments(self, camera: str) -> list[Segment]:
        """The camera's finished segments, oldest first."""
        folder = self.record_dir / safe_camera_name(camera)
        found = []
        for path in sorted(folder.glob("*.mp4")) if folder.is_dir() else ():
            match = _SEGMENT.match(path.name)
            if match is None or path.name.startswith("."):
                continue
            start = _name_time(match["time"])
            duration = self._duration(path)
            if duration is not None:
                found.append(Segment(path, start, start + duration))
        return sorted(found, key=lambda s: s.start)

    def recording(self, camera: str, t0: float, t1: float) -> bool:
        """A segment being written holds footage of [t0, t1]: it started before t1 and was written after t0."""
        folder = self.record_dir / safe_camera_name(camera)
        for part in folder.glob(".*.part.mp4") if folder.is_dir() else ():
            match = _PART.match(part.name)
            try:
                if match is not None and _name_time(match["time"]) <= t1 and part.stat().st_mtime >= t0:
                    return True
            except OSError:
                continue
        return False

    def cut(self, camera: str, epoch: float, out: Path) -> Path:
        """Write the clip around `epoch` to `out` (kept as a cache: an existing one is returned as it is)."""
        with self._lock:
            if out.is_file():
                return out
            t0, t1 = epoch - self.before, epoch + self.after
            segments = [s for s in self.segments(camera) if s.start <= t1 and s.end >= t0]
            if (not segments or segments[-1].end < t1) and self.recording(camera, t0, t1):
                raise ClipUnavailable(409, "the footage of this event is still being recorded: its clip can be "
                                           "cut once the segment is finished")
            if not segments:
                raise ClipUnavailable(404, "no footage was recorded for this event")
            written = _reencode(segments, t0, t1, out)
            if not written:
                raise ClipUnavailable(404, "no footage was recorded for this event")
            log.info("cut a %d-frame clip of %s at %s", written, camera, out.name)
            return out

    def _duration(self, path: Path) -> float | None:
        import av  # deferred: PyAV loads FFmpeg

        try:
            stat = path.stat()
        except OSError:
            return None
        key = (path, stat.st_size, stat.st_mtime)
        if key not in self._durations:
            try:
                with av.open(str(path)) as container:
                    stream = container.streams.video[0]
                    if stream.duration is not None and stream.time_base is not None:
                        seconds = float(stream.duration * stream.time_base)
                    elif container.duration is not None:
                        seconds = container.duration / 1_000_000
                    else:
                        seconds = 0.0
            except (av.FFmpegError, IndexError) as exc:
                log.debug("cannot read %s: %s", path, exc)
                return None
            self._durations[key] = seconds
        return self._durations[key]


def _name_time(text: str) -> float:
    """YYYYmmdd-HHMMSS (UTC) as epoch seconds."""
    return datetime.strptime(text, "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc).timestamp()


def _reencode(segments: list[Segment], t0: float, t1: float, out: Path) -> int:
    """Decode the frames of `segments` whose wall time lies in [t0, t1] and write them to `out`; frames written."""
    import av  # deferred: PyAV loads FFmpeg
    import cv2

    from transpose_live.media.sinks.video import VideoWriter

    writer = None
    try:
        for segment in segments:
            with av.open(str(segment.path)) as container:
                stream = container.streams.video[0]
                fps = float(stream.average_rate) if stream.average_rate else None
                for frame in container.decode(stream):
                    wall = segment.start + float(frame.time or 0.0)
                    if wall < t0:
                        continue
                    if wall > t1:
                        break
                    image: np.ndarray = frame.to_ndarray(format="bgr24")
                    if writer is None:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        writer = VideoWriter(out, image.shape[1], image.shape[0], fps=fps)
                    elif image.shape[:2] != (writer.height, writer.width):
                        image = cv2.resize(image, (writer.width, writer.height), interpolation=cv2.INTER_AREA)
                    writer.write(image, wall - t0)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        return 0
    writer.close()
    return writer.frames_written


__all__ = ["ClipCutter", "ClipUnavailable", "Segment"]

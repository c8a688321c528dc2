"""Keeping what the user found in the window: the session's poses (exported as JSON Lines, the format of
`video --json`) and a recording of the annotated view. Both are fed from the worker's thread (one call
per shown frame) and read or finished from the GUI thread, so each holds a lock."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import cv2
import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sinks import JsonlWriter, VideoWriter
from transpose_live.types import FrameResult


class PoseLog:
    """Every frame's poses of the session, one per frame index (a frame re-run after a seek or a step back
    replaces its first run), exported in timestamp order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[int, FrameResult] = {}

    def add(self, result: FrameResult) -> None:
        # the attention maps are not part of the JSON record: not kept (they are large)
        light = dataclasses.replace(result, image=None,
                                    poses=[dataclasses.replace(p, attention=None) for p in result.poses])
        with self._lock:
            self._frames[int(result.index)] = light

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def export(self, path: str | Path) -> int:
        """Write the frames as JSON Lines (transpose_live.media.sinks.JsonlWriter); returns the number of lines."""
        with self._lock:
            frames = sorted(self._frames.values(), key=lambda r: (r.timestamp, r.index))
        writer = JsonlWriter(path)
        try:
            for result in frames:
                writer.write(result)
        except BaseException:
            writer.abort()
            raise
        writer.close()
        return len(frames)


def fit_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` as a width x height frame: unchanged when it fits exactly, edge-padded by the odd pixel, else
    scaled to fit with black borders."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if (width - w, height - h) in ((0, 1), (1, 0), (1, 1)):
        return np.pad(image, ((0, height - h), (0, width - w), (0, 0)), mode="edge")
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((height, width, 3), np.uint8)
    x, y = (width - nw) // 2, (height - nh) // 2
    canvas[y:y + nh, x:x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return canvas


class Recorder:
    """Records the frames shown (annotated, inspector overlay included) into a video file at `fps`. The
    writer opens at the first frame (its size); a source of another size opened while recording is fitted
    into it (scaled, black borders), so the recording goes on. Timestamps are the recording's own clock, so
    seeks and steps while recording make no jumps in the file."""

    def __init__(self, path: str | Path, fps: float = 25.0):
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._lock = threading.Lock()
        self._writer: VideoWriter | None = None
        self._size: tuple[int, int] | None = None     # (w, h) of the file, from its first frame
        self._closed = False
        self.frames = 0
        self.error: str | None = None

    @property
    def active(self) -> bool:
        return not self._closed

    def write(self, image: np.ndarray) -> None:
        with self._lock:
            if self._closed or self.error is not None:
                return
            try:
                if self._writer is None:
                    h, w = image.shape[:2]
                    self._size = (w + w % 2, h + h % 2)             # H.264 4:2:0 wants even sizes
                    self._writer = VideoWriter(self.path, *self._size, fps=self.fps)
                image = fit_into(image, *self._size)
                self._writer.write_frame(image, FrameResult(index=self.frames, timestamp=self.frames / self.fps))
                self.frames += 1
            except (TransposeLiveError, OSError, ValueError) as exc:
                self.error = str(exc)

    def close(self) -> bool:
        """Finish the file; True when something was written. Safe to call twice."""
        with self._lock:
            if self._closed:
                return self.frames > 0
            self._closed = True
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        return self.frames > 0

"""JSON Lines: one JSON object per processed frame (records.frame_record) and one per event, each on its own
line; a stream or a live run's file is flushed line by line (a reading program or `tail -f` sees each frame as
it is processed)."""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn, TextIO

import numpy as np

from transpose_live.errors import OutputClosed
from transpose_live.media.records import frame_record
from transpose_live.media.sinks.base import Abortable, Event, EventSink, Sink
from transpose_live.media.sinks.target import OutputTarget
from transpose_live.types import FrameResult


class JsonlWriter(Sink, EventSink, Abortable):
    """One JSON object per frame and line: {"frame", "timestamp", "persons": [{"id", "box", "score",
    "keypoints"}]} (see records.frame_record).

    path "-" is stdout. Streams (stdout, FIFOs, devices) and `live` runs are written directly and flushed
    line by line, so a reading program or `tail -f` sees each frame as it is processed; a reader that goes
    away (`| head -3`) ends the run as OutputClosed. Other files appear under their name when finished.
    """

    needs_image = False

    def __init__(self, path: str | os.PathLike, live: bool = False):
        self.path = Path(path)
        self._out = OutputTarget(path, "results", direct=live)
        self._flush = self._out.direct
        self._file = self._out.open_text()
        self._closed = False
        self._lock = threading.Lock()     # frames come from the last stage, stream events from the reader
        self.lines = 0

    def write(self, result: FrameResult) -> None:
        self._write_line(frame_record(result))

    def write_event(self, record: Event) -> None:
        """An event line ({"event": "stream_lost", ...}) with its wall-clock "time" (ISO 8601, UTC)."""
        self._write_line({**record, "time": record.get("time") or wall_clock()})

    def _write_line(self, record: dict) -> None:
        line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
        with self._lock:
            if self._closed:
                return
            try:
                self._file.write(line)
                if self._flush:
                    self._file.flush()
            except BrokenPipeError:
                self._reader_gone()
            self.lines += 1

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        self.write(result)

    def _reader_gone(self) -> NoReturn:
        self._closed = True
        if self._out.stdout:
            # the interpreter flushes stdout once more at exit: point it at /dev/null so that says nothing
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        else:
            _close_quietly(self._file)
        raise OutputClosed(f"{self.path}: closed by its reader after {self.lines} lines")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._out.stdout:
                    self._file.flush()
                else:
                    self._file.close()
            except BrokenPipeError:
                return
        self._out.commit()

    def abort(self) -> None:
        """After a failure: a file drops its partial copy (streams and live files keep what is out)."""
        if not self._closed:
            self._closed = True
            if not self._out.stdout:
                _close_quietly(self._file)
        self._out.discard()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wall_clock() -> str:
    """Now, as an ISO 8601 UTC time with milliseconds (event lines carry it)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _close_quietly(file: TextIO) -> None:
    try:
        file.close()
    except OSError:
        pass


__all__ = ["JsonlWriter", "wall_clock"]

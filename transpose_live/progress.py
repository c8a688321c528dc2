"""The one progress display of the project (videos, evaluation, downloads, training), always on stderr so
that stdout stays free for results (`--json -`).

On a terminal it is a `rich` progress bar; elsewhere (a log file, CI) a plain line now and then, so logs
stay readable. Thread-safe: the pipeline's last stage advances it while the main thread waits.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

PLAIN_INTERVAL_S = 10.0     # off a terminal: one line this often


class Progress:
    """label: what is counted ("video", "eval", "downloading tp_r_a4"); total: None when unknown;
    unit: "frames", "images", "bytes" or "s" (time budgets). Use as a context manager."""

    def __init__(self, label: str, total: float | None = None, unit: str = "frames", stream: TextIO | None = None,
                 enabled: bool = True, interval: float = PLAIN_INTERVAL_S):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.done = 0.0
        self.status = ""
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last_line = self._start
        self._closed = False
        self._rich = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            self._rich, self._task = _rich_progress(label, total, unit, self.stream)
            self._rich.start()

    # ------------------------------------------------------------------------------------------ feeding

    def update(self, advance: float = 1, status: str | None = None) -> None:
        """Count `advance` more; `status` replaces the free text shown after the numbers."""
        self.set(None, status, advance)

    def set(self, completed: float | None, status: str | None = None, advance: float = 0) -> None:
        with self._lock:
            if self._closed:
                return
            self.done = (self.done if completed is None else float(completed)) + advance
            if status is not None:
                self.status = status
            if self._rich is not None:
                self._rich.update(self._task, completed=self.done, status=self.status)
            elif self.enabled and time.monotonic() - self._last_line >= self.interval:
                self._write_line()

    def note(self, text: str) -> None:
        """A message line that does not break the bar (warnings, events)."""
        with self._lock:
            if self._rich is not None:
                self._rich.console.print(text, markup=False, highlight=False)
            else:
                self.stream.write(text + "\n")
                self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._rich is not None:
                self._rich.stop()
            elif self.enabled and self.done:
                self._write_line()

    # ------------------------------------------------------------------------------------------ text

    def line(self) -> str:
        """The plain line: `video: 120/795 frames (15%)  4.2 frames/s  ETA 2:40  status`."""
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = self.done / elapsed
        if self.unit == "bytes":
            mb = 1024 * 1024
            count = f"{self.done / mb:.1f}/{self.total / mb:.1f} MB" if self.total else f"{self.done / mb:.1f} MB"
            speed = f"{rate / mb:.1f} MB/s"
        else:
            count = f"{self.done:.0f}/{self.total:.0f} {self.unit}" if self.total else f"{self.done:.0f} {self.unit}"
            speed = "" if self.unit == "s" else f"{rate:.1f} {self.unit}/s"
        parts = [f"{self.label}: {count}"]
        if self.total:
            parts[0] += f" ({100 * min(self.done / self.total, 1.0):.0f}%)"
            if rate > 0 and self.done < self.total:
                parts.append(f"ETA {clock(max(self.total - self.done, 0) / rate)}")
        if speed:
            parts.insert(1, speed)
        if self.status:
            parts.append(self.status)
        return "  ".join(parts)

    def _write_line(self) -> None:
        self._last_line = time.monotonic()
        self.stream.write(self.line() + "\n")
        self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _rich_progress(label: str, total: float | None, unit: str, stream: TextIO):
    # deferred: rich loads only when a bar is drawn on a terminal
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as RichProgress

    if unit == "bytes":
        counts = [DownloadColumn(), TransferSpeedColumn()]
    elif unit == "s":
        counts = []
    else:
        counts = [MofNCompleteColumn(), TextColumn(unit)]
    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), *counts,
               TimeRemainingColumn(), TextColumn("{task.fields[status]}", markup=False)]
    progress = RichProgress(*columns, console=Console(file=stream), transient=False, refresh_per_second=4)
    task = progress.add_task(label, total=total, status="")
    return progress, task


class WarningsToProgress(logging.Handler):
    """The library's warnings (a truncated file, a camera hiccup) as `warning: ...` lines beside the bar."""

    def __init__(self, progress: Progress):
        super().__init__(logging.WARNING)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.note(f"warning: {record.getMessage()}")

    def __enter__(self) -> "WarningsToProgress":
        logging.getLogger("transpose_live").addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger("transpose_live").removeHandler(self)


__all__ = ["Progress", "WarningsToProgress", "clock"]

"""A camera worker's start-up: when its process began and when each step of getting to the first frame ended
(`StartTimeline`, reported to the driver so a restart's phases can be told apart: docs/scaling.md), and the
lower CPU priority its heavy imports run at (`lower_this_thread`).

Why per thread: on 2 cores a restarting worker's imports took CPU from the cameras already running. Linux
gives every thread its own nice value and a new thread inherits its maker's; an unprivileged process can
raise it but never lower it again. So only a thread of its own, which does nothing but import, is lowered:
the pipeline's threads, the stream's decoder and the handles' event loop are made by threads at the normal
priority and keep it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

STARTUP_NICE = 5     # nice steps the import thread is lowered by: a third of a normal thread's CPU share


def process_started() -> float:
    """This process's start as wall-clock seconds (time.time()), from /proc (to 10 ms); now where there is none."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])                       # starttime: clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, IndexError, ValueError):
        return time.time()


class StartTimeline:
    """Wall-clock times of a worker's start-up steps; `offsets()` gives them in seconds after its process began
    (the driver knows when it killed the process before, and sees the same clock on one machine)."""

    def __init__(self):
        self.process = process_started()
        self.marks: dict[str, float] = {}

    def mark(self, step: str) -> None:
        self.marks.setdefault(step, time.time())

    def offsets(self) -> dict[str, float]:
        return {"process": round(self.process, 3),
                **{step: round(t - self.process, 3) for step, t in self.marks.items()}}


def lower_this_thread(by: int = STARTUP_NICE) -> bool:
    """Raise the calling thread's nice value by `by` (Linux only: elsewhere it would be the whole process's).
    True when it was lowered."""
    if sys.platform != "linux" or by <= 0:
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + by)
    except OSError:
        return False
    return True


__all__ = ["StartTimeline", "process_started", "lower_this_thread", "STARTUP_NICE"]

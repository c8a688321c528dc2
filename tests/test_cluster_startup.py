"""A camera worker's start-up (no Ray needed): its process's start time read from /proc, the timeline of its
steps and the phases measure.py makes of it, and the lower priority of its import thread alone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from transpose_live.monitor.cluster.measure import restart_phases
from transpose_live.monitor.cluster.startup import StartTimeline, lower_this_thread


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_the_process_start_is_read_from_proc():
    """A child started between two clock readings says it started between them (to /proc's 10 ms ticks)."""
    before = time.time()
    child = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3); "
                            "from transpose_live.monitor.cluster.startup import process_started; "
                            "print(repr(process_started()), repr(time.time()))"],
                           capture_output=True, text=True, check=True)
    started, its_now = map(float, child.stdout.split())
    assert before - 0.02 <= started <= before + 0.3 <= its_now      # not the time it asked: 0.3 s later


def test_the_timeline_keeps_each_steps_first_time_after_the_process_start():
    made = time.time()
    timeline = StartTimeline()
    timeline.mark("constructor")
    time.sleep(0.05)
    timeline.mark("first_frame")
    first = timeline.marks["first_frame"]
    timeline.mark("first_frame")                         # a step ends once
    offsets = timeline.offsets()
    assert timeline.marks["first_frame"] == first
    assert offsets["process"] <= made
    assert 0 < offsets["constructor"] < offsets["first_frame"]
    assert timeline.marks["first_frame"] - timeline.marks["constructor"] >= 0.05


def test_restart_phases_follow_the_steps_in_the_order_they_ended():
    killed = 1000.0
    timeline = {"process": 1000.5, "imported": 1.0, "stream_open": 2.5, "imports": 2.0, "first_frame": 3.0}
    phases = restart_phases(timeline, killed, seen=1003.75)
    assert list(phases) == ["ray_new_process", "process->imported", "imported->imports", "imports->stream_open",
                            "stream_open->first_frame", "driver_saw_it"]
    assert phases["ray_new_process"] == 0.5 and phases["imports->stream_open"] == 0.5
    assert phases["driver_saw_it"] == 0.25
    assert sum(phases.values()) == pytest.approx(3.75)   # the phases add up to the kill-to-seen time


@pytest.mark.skipif(sys.platform != "linux", reason="nice values are per thread on Linux only")
def test_only_the_lowered_thread_runs_at_the_lower_priority():
    def nice_of(tid: int) -> int:
        return os.getpriority(os.PRIO_PROCESS, tid)

    here = threading.get_native_id()
    before = nice_of(here)
    seen: dict[str, int] = {}
    lowered = threading.Event()
    done = threading.Event()

    def importer():
        seen["lowered"] = lower_this_thread(3)
        seen["importer"] = nice_of(threading.get_native_id())
        child = threading.Thread(target=lambda: seen.__setitem__("its_child", nice_of(threading.get_native_id())))
        child.start()
        child.join()
        lowered.set()
        done.wait(10)

    thread = threading.Thread(target=importer)
    thread.start()
    assert lowered.wait(10)
    other = threading.Thread(target=lambda: seen.__setitem__("made_here", nice_of(threading.get_native_id())))
    other.start()
    other.join()
    done.set()
    thread.join()
    assert seen["lowered"] is True
    assert seen["importer"] == min(19, before + 3) and seen["its_child"] == seen["importer"]
    assert nice_of(here) == before and seen["made_here"] == before      # the rest of the process keeps its own

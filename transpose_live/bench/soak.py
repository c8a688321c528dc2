"""The soak: N loopback RTSP cameras (bench.soak_server) watched by `transpose-live monitor` for a while, with
outages on a schedule (a camera killed and restarted, or frozen with SIGSTOP and resumed), the monitor
process's RSS, OS threads and open files sampled over time, and per camera fps, latency p95, reconnects and
stream events from its logs. Judged at the end against SoakLimits: after warm-up (the first outage and its
reconnect) threads and files flat and RSS growth bounded, every outage seen as a stream_lost followed by a
stream_back, no frame much staler than live delivered after a reconnect.

The monitor runs as a child process the way a user runs it (`python -m transpose_live monitor URL...
--log-dir DIR`): what is measured is that process alone, and bench needs no import of the monitor package
(they are siblings in the layers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from transpose_live.bench.soak_judge import judge
from transpose_live.bench.soak_logs import CameraLog
from transpose_live.bench.soak_memory import rss_by_mapping, rss_mb
from transpose_live.bench.soak_plan import Sample, SoakPlan, SoakResult
from transpose_live.bench.soak_server import RtspServer, available, video_frames
from transpose_live.errors import TransposeLiveError

STOP_WAIT_S = 30.0       # SIGTERM to the monitor: it finishes its logs within this


# ---------------------------------------------------------------------------------------------------------
# the monitor process, seen from outside


def process_stats(pid: int) -> tuple[float, int, int]:
    """(RSS in MB, OS threads, open file descriptors) of a running process (Linux /proc)."""
    return rss_mb(pid), len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def monitor_command(urls: list[str], log_dir: Path, timeout_s: float, extra: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "transpose_live", "monitor", *urls, "--log-dir", str(log_dir),
            "--timeout", f"{timeout_s:g}", *extra]


def _stop_monitor(proc: subprocess.Popen) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


# ---------------------------------------------------------------------------------------------------------
# the run


class _Run:
    """One soak: the servers, the monitor and the logs it writes, the clock of the schedule."""

    def __init__(self, plan: SoakPlan, servers: list[RtspServer], proc: subprocess.Popen, logs: list[CameraLog],
                 on_sample: Callable[[Sample], None] | None):
        self.plan, self.servers, self.proc, self.logs = plan, servers, proc, logs
        self.on_sample = on_sample
        self.samples: list[Sample] = []
        self.outages: list[dict] = []
        self.warm = 0.0
        self.memory: dict[str, float] = {}
        self._counts: list[tuple[float, list[int]]] = []     # (time, frames per camera) of every sample

    def wait_warm(self, stderr_path: Path) -> float:
        """Until every camera has written a frame; the seconds that took (model load, first connections)."""
        t0 = time.monotonic()
        while not all(log.snapshot()["frames"] for log in self.logs):
            if self.proc.poll() is not None:
                raise TransposeLiveError(f"the monitor ended before its cameras sent frames (exit "
                                         f"{self.proc.returncode}): {_tail(stderr_path)}")
            if time.monotonic() - t0 > self.plan.warmup_timeout_s:
                raise TransposeLiveError(f"no frames from every camera after {self.plan.warmup_timeout_s:g} s: "
                                         f"{_tail(stderr_path)}")
            time.sleep(0.2)
        self.warm = time.monotonic()
        return self.warm - t0

    def sample(self, label: str = "") -> Sample:
        now = time.monotonic()
        try:
            rss, threads, fds = process_stats(self.proc.pid)
        except OSError:                          # gone between two looks (/proc/PID vanished)
            raise TransposeLiveError(f"the monitor ended during the soak (exit {self.proc.wait()})") from None
        snaps = [log.snapshot() for log in self.logs]
        frames = [s["frames"] for s in snaps]
        # fps over the last sample period: a checkpoint right after a periodic sample would divide by ~0 s
        window = [c for c in self._counts if now - c[0] >= 0.8 * self.plan.sample_every_s]
        then, before = window[-1] if window else (self._counts[0] if self._counts else (now, frames))
        dt = now - then
        cameras = []
        for log, snap, n, m in zip(self.logs, snaps, frames, before):
            stats = snap["stats"]
            cameras.append({"name": log.name, "frames": n, "fps": round((n - m) / dt, 2) if dt > 0 else None,
                            "latency_p95_ms": stats.get("latency_p95_ms"),
                            "reconnects": sum(e["event"] == "stream_back" for e in snap["events"])})
        self._counts.append((now, frames))
        sample = Sample(round(now - self.warm, 1), label, round(rss, 1), threads, fds, cameras)
        self.samples.append(sample)
        if self.on_sample is not None:
            self.on_sample(sample)
        return sample

    def run_schedule(self) -> None:
        """Periodic samples, outages and their checkpoints until the duration is over."""
        plan = self.plan
        actions: list[tuple[float, int, str, int]] = []       # (t, order at the same t, what, outage number)
        for k, (t, _kind, _cam, down) in enumerate(plan.outages(), 1):
            actions += [(t, 0, "checkpoint", k), (t, 1, "hit", k), (t + down, 2, "heal", k)]
        actions.sort()
        self.sample("warm")
        next_sample = plan.sample_every_s
        while True:
            elapsed = time.monotonic() - self.warm
            if elapsed >= plan.duration_s:
                break
            if self.proc.poll() is not None:
                raise TransposeLiveError(f"the monitor ended during the soak (exit {self.proc.returncode})")
            if actions and actions[0][0] <= elapsed:
                _, _, what, k = actions.pop(0)
                self._act(what, k)
            elif next_sample <= elapsed:
                self.sample()
                next_sample += plan.sample_every_s
            else:
                upcoming = min([plan.duration_s, next_sample] + ([actions[0][0]] if actions else []))
                time.sleep(max(0.0, min(0.5, upcoming - elapsed)))
        self.sample("end")
        self.memory = rss_by_mapping(self.proc.pid)

    def _act(self, what: str, k: int) -> None:
        """A step of outage k: the checkpoint sample before it, the hit (kill / freeze), the heal."""
        _, kind, cam, down = self.plan.outages()[k - 1]
        server = self.servers[cam]
        if what == "checkpoint":
            self.sample(f"before outage {k}")
        elif what == "hit":
            if kind == "kill":
                server.kill()
            else:
                server.freeze()
            self.outages.append({"outage": k, "t": round(time.monotonic() - self.warm, 1), "kind": kind,
                                 "camera": self.logs[cam].name, "down_s": down})
        elif kind == "kill":
            server.start()
        else:
            server.thaw()


def run_soak(plan: SoakPlan, on_sample: Callable[[Sample], None] | None = None) -> SoakResult:
    """Run the soak described by `plan` (minutes: it lasts the warm-up plus plan.duration_s) and judge it.
    on_sample(sample) is called with every sample as it is taken. TransposeLiveError when it cannot run
    (no GStreamer RTSP server, a monitor that does not start)."""
    plan.check()
    ok, why = available()
    if not ok:
        raise TransposeLiveError(f"the soak needs GStreamer's RTSP server: {why}")
    with contextlib.ExitStack() as stack:
        result = _soak(stack, plan, on_sample)
    return result


def _soak(stack: contextlib.ExitStack, plan: SoakPlan, on_sample: Callable[[Sample], None] | None) -> SoakResult:
    """run_soak's body: everything it starts is stopped by `stack` (the monitor first, then the servers)."""
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="transpose-live-soak-")))
    log_dir = Path(plan.log_dir) if plan.log_dir is not None else work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    frames, fps = None, plan.fps
    if plan.video is not None:
        frames, video_fps = video_frames(plan.video, work / "frames")
        fps = max(1, int(round(video_fps)))
    servers = [stack.enter_context(RtspServer(paths=(f"/cam{i}",), size=plan.size, fps=fps, frames=frames))
               for i in range(1, plan.cameras + 1)]
    stderr_path = log_dir / "monitor.stderr.log"
    stderr = stack.enter_context(open(stderr_path, "w"))
    command = monitor_command([s.url() for s in servers], log_dir, plan.timeout_s, plan.monitor_args)
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    stack.callback(_stop_monitor, proc)          # on every way out: before the servers stop
    logs = [CameraLog(f"cam{i}", log_dir / f"cam{i}.jsonl").start() for i in range(1, plan.cameras + 1)]
    for log in logs:
        stack.callback(log.stop)
    run = _Run(plan, servers, proc, logs, on_sample)
    warmup = run.wait_warm(stderr_path)
    run.run_schedule()
    exit_code = _stop_monitor(proc)              # it finishes its logs ...
    for log in logs:
        log.stop()                               # ... and they are read to the end
    result = judge(plan, run.samples, run.outages, logs, exit_code, warmup)
    result.memory = run.memory
    return result


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no output)"
    return " | ".join(text[-lines:]) or "(no output)"


__all__ = ["run_soak", "process_stats", "monitor_command"]

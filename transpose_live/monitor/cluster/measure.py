"""In-process `monitor` against `monitor --cluster local` on the same cameras and cores, then recovery times:

    python -m transpose_live.monitor.cluster.measure URL [URL...] [--cameras 8] [--seconds 30] [--detector none]
        [--kills 1] [--only in-process|cluster]

With one URL and --cameras N, N cameras read that URL. For each mode: total fps over the window (after a
warm-up), mean crops per model forward pass over the window, latency p50/p95 (capture to output, the mean of
the cameras'), RSS of this process and all its children (Ray's processes in cluster mode), cold start (from
nothing to every camera's first frame), the load average. Then in cluster mode: a camera worker SIGKILLed
(seconds to its first frame again at the driver, the phases of its restart, the other cameras' fps in the
10 s after against the 10 s before; --kills N: N cameras one after another, with the means) and the pose model
replica killed (seconds until every camera has a new frame). Prints one JSON object, with the cluster's total
fps over the in-process one (fps_ratio) when both ran.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from transpose_live.live.spec import RunSpec
from transpose_live.monitor.cameras import CameraConfig
from transpose_live.monitor.runner import Outputs

WARM_S = 10.0
FIRST_FRAME_S = 120.0   # every camera's first frame within this (a cluster's cold start took 24-46 s here)
WINDOW_S = 10.0         # the fps ratio of the other cameras: this long before and after a kill


def process_tree() -> set[int]:
    """This process and all its descendants (Linux: read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grown = {os.getpid()}, True
    while grown:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        grown = bool(found)
        tree |= found
    return tree


def process_kind(pid: int) -> str:
    """A short name for a process: Ray's title (`ray::CameraWorker`), else its program's name."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    first = argv[0].decode(errors="replace")
    if first.startswith("ray::"):
        return first.split()[0].split(".")[0]
    words = [Path(a.decode(errors="replace")).name for a in argv if a]
    if words and words[0].startswith("python"):       # the script or module it runs, past the options
        if "-c" in words:
            return "python -c"
        named = [w for w in words[1:] if not w.startswith("-")]
        return named[0] if named else words[0]
    return words[0] if words else "?"


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) so far of every process in the tree, with its kind."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in process_tree():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (process_kind(pid), (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_by_kind(before: dict, after: dict, wall: float) -> dict[str, float]:
    """Cores used over a window by each kind of process (processes that started in it count from 0)."""
    used: dict[str, float] = {}
    for pid, (kind, seconds) in after.items():
        name = kind if pid in before else f"{kind} (new)"
        used[name] = used.get(name, 0.0) + seconds - before.get(pid, (kind, 0.0))[1]
    return {k: round(v / wall, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v / wall >= 0.005}


def tree_rss_mb() -> float:
    """RSS of this process and all its descendants, in MB (Linux: read from /proc)."""
    total_kb = 0
    for pid in process_tree():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kb / 1024


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def first_frames(waiting, timeout: float = FIRST_FRAME_S) -> None:
    """Wait until waiting() (the cameras without a frame yet) is empty; else one error naming them (a stream
    that does not answer would otherwise be measured as 0 fps)."""
    if not wait_for(lambda: not waiting(), timeout):
        sys.exit(f"error: no frame from {', '.join(waiting())} within {timeout:g} s; is the stream up?")


def total_frames(monitor) -> int:
    return sum(r["frames"] for r in monitor.status())


def window(monitor, seconds: float, batches) -> dict:
    """fps, latency and crops per forward pass over `seconds` of running."""
    frames0, (forwards0, crops0), cpu0 = total_frames(monitor), batches(), cpu_seconds()
    t0 = time.monotonic()
    time.sleep(seconds)
    frames1, (forwards1, crops1), cpu1 = total_frames(monitor), batches(), cpu_seconds()
    wall = time.monotonic() - t0
    rows = [r for r in monitor.status() if r["latency_p50_ms"] is not None]
    return {"total_fps": round((frames1 - frames0) / wall, 2),
            "mean_crops_per_call": round((crops1 - crops0) / max(1, forwards1 - forwards0), 2),
            "latency_p50_ms": round(statistics.mean(r["latency_p50_ms"] for r in rows), 1) if rows else None,
            "latency_p95_ms": round(statistics.mean(r["latency_p95_ms"] for r in rows), 1) if rows else None,
            "rss_mb": round(tree_rss_mb()), "load_avg": round(os.getloadavg()[0], 1),
            "cores_by_process": cpu_by_kind(cpu0, cpu1, wall)}


def in_process(cameras: list[CameraConfig], spec: RunSpec, seconds: float, options: dict) -> dict:
    from transpose_live.monitor.runner import Monitor

    t0 = time.monotonic()
    monitor = Monitor(cameras, spec, Outputs(Path(tempfile.mkdtemp(prefix="measure-logs-"))), options)
    monitor.start()
    try:
        first_frames(lambda: [r["camera"] for r in monitor.status() if r["frames"] == 0])
        cold = time.monotonic() - t0
        time.sleep(WARM_S)

        def batches() -> tuple[int, int]:
            stats = monitor.estimator.stats
            return stats.forwards, stats.crops

        result = window(monitor, seconds, batches)
        return {"cold_start_s": round(cold, 1), **result}
    finally:
        monitor.stop()


def cluster(cameras: list[CameraConfig], spec: RunSpec, seconds: float, options: dict, kills: int = 1,
            camera_nice: int | None = None, model_nice: int | None = None) -> dict:
    import ray  # deferred: Ray is an optional extra

    from transpose_live.monitor.cluster.address import parse_cluster
    from transpose_live.monitor.cluster.driver import ClusterMonitor

    t0 = time.monotonic()
    monitor = ClusterMonitor(cameras, spec, Outputs(Path(tempfile.mkdtemp(prefix="measure-logs-"))), options,
                             address=parse_cluster("local"), replicas=1, pose_cpus=float(os.cpu_count() or 1),
                             camera_nice=camera_nice, model_nice=model_nice)
    try:
        monitor.start()
        first_frames(lambda: [v.config.name for v in monitor.views if v.frames_now == 0])
        cold = time.monotonic() - t0
        time.sleep(WARM_S)

        def batches() -> tuple[int, int]:
            stats = monitor.model_stats()
            return stats.forwards, stats.crops

        result = {"cold_start_s": round(cold, 1), **window(monitor, seconds, batches)}
        rounds = [kill_worker(monitor, i % len(monitor.views)) for i in range(max(1, kills))]
        result.update(rounds[0])
        if len(rounds) > 1:       # one camera after another: the rounds, and their means
            result["worker_kills"] = rounds
            for key in ("worker_kill_first_frame_s", "others_fps_ratio"):
                values = [r[key] for r in rounds if r[key] is not None]
                result[f"{key}_mean"] = round(statistics.mean(values), 3) if values else None
        result.update(kill_replica(monitor, ray))
        return result
    finally:
        monitor.stop()


def restart_phases(timeline: dict, killed: float, seen: float) -> dict:
    """A restart's phases in seconds: the kill to the new process (Ray), then the new worker's start-up steps
    in the order they ended (StartTimeline; the stream's opening runs beside the imports and the model's
    first answer, so a step's time is from the step that ended before it), then its first frame to the
    driver's poll."""
    phases = {"ray_new_process": round(timeline["process"] - killed, 2)}
    last, at = "process", 0.0
    for step, t in sorted(((k, v) for k, v in timeline.items() if k != "process"), key=lambda kv: kv[1]):
        phases[f"{last}->{step}"] = round(t - at, 2)
        last, at = step, t
    phases["driver_saw_it"] = round(seen - (timeline["process"] + at), 2)
    return phases


def kill_worker(monitor, index: int = 0) -> dict:
    """SIGKILL a camera's worker: seconds to its first frame again and the phases of its restart; the other
    cameras' fps in the 10 s after against the 10 s before."""
    victim, others = monitor.views[index], monitor.views[:index] + monitor.views[index + 1:]

    def others_frames() -> int:
        return sum(v.frames for v in others)

    before0, cpu0 = others_frames(), cpu_seconds()
    time.sleep(WINDOW_S)
    before, cpu1 = (others_frames() - before0) / WINDOW_S, cpu_seconds()
    start = victim.start
    os.kill(victim.pid, signal.SIGKILL)
    t, killed = time.monotonic(), time.time()
    after0 = others_frames()
    back = wait_for(lambda: victim.start > start and victim.frames_now > 0, 120, 0.05)
    back_s = time.monotonic() - t
    timeline = victim.row.get("timeline") if back else None
    phases = restart_phases(timeline, killed, killed + back_s) if timeline else None
    time.sleep(max(0.0, WINDOW_S - back_s))
    after = (others_frames() - after0) / max(WINDOW_S, back_s)
    cpu2 = cpu_seconds()
    return {"worker_kill_first_frame_s": round(back_s, 1) if back else None, "worker_restart_phases_s": phases,
            "others_fps_before": round(before, 2), "others_fps_after": round(after, 2),
            "others_fps_ratio": round(after / before, 3) if before else None,
            "cores_before": cpu_by_kind(cpu0, cpu1, WINDOW_S),
            "cores_after": cpu_by_kind(cpu1, cpu2, time.monotonic() - t),
            "load_avg_at_kill": round(os.getloadavg()[0], 1)}


def kill_replica(monitor, ray) -> dict:
    """Kill the pose model replica: seconds until every camera has a frame again (the retries' wait)."""
    name = next(a for a in ray.util.list_named_actors(all_namespaces=True) if "PoseModel" in a["name"])
    counts = [v.frames for v in monitor.views]
    dropped = sum(v.dropped for v in monitor.views)
    ray.kill(ray.get_actor(name["name"], namespace=name["namespace"]))
    t = time.monotonic()
    time.sleep(1.0)                   # frames already past the model still arrive meanwhile
    marks = [v.frames for v in monitor.views]
    back = wait_for(lambda: all(v.frames > m for v, m in zip(monitor.views, marks)), 120, 0.05)
    return {"replica_kill_all_cameras_back_s": round(time.monotonic() - t, 1) if back else None,
            "frames_during_replica_loss": sum(m - c for m, c in zip(marks, counts)),
            "dropped_while_waiting": sum(v.dropped for v in monitor.views) - dropped,
            "failed_cameras": [r["camera"] for r in monitor.status() if r["state"] in ("failed", "stopped")]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--cameras", type=int, default=None, help="cameras (the URLs repeated); default: one each")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", default="default")
    parser.add_argument("--detector", default="none")
    parser.add_argument("--only", choices=("in-process", "cluster"), default=None)
    parser.add_argument("--kills", type=int, default=1, help="camera workers killed one after another")
    parser.add_argument("--camera-nice", type=int, default=None,
                        help="camera workers' processes start at this nice value "
                             "(default: the driver's CAMERA_NICE, 19, with --cluster local)")
    parser.add_argument("--model-nice", type=int, default=None,
                        help="the pose model replica's nice value (default: the driver's MODEL_NICE)")
    args = parser.parse_args(argv)
    from transpose_live.monitor.cluster.connect import loopback_environment

    loopback_environment()
    count = args.cameras or len(args.urls)
    cameras = [CameraConfig(f"cam{i + 1}", args.urls[i % len(args.urls)]) for i in range(count)]
    spec = RunSpec.from_options(model=args.model, detector=args.detector, device="cpu")
    options = {"timeout": 10.0}
    out: dict = {"cameras": count, "seconds": args.seconds, "model": args.model, "detector": args.detector,
                 "cpus": os.cpu_count(), "camera_nice": args.camera_nice, "model_nice": args.model_nice}
    if args.only in (None, "in-process"):
        out["in_process"] = in_process(cameras, spec, args.seconds, options)
    if args.only in (None, "cluster"):
        out["cluster_local"] = cluster(cameras, spec, args.seconds, options, args.kills,
                                       args.camera_nice, args.model_nice)
    if "in_process" in out and "cluster_local" in out and out["in_process"]["total_fps"]:
        out["fps_ratio"] = round(out["cluster_local"]["total_fps"] / out["in_process"]["total_fps"], 3)
    sys.stdout.write(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

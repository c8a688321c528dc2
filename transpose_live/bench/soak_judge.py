"""A soak judged: growth of the monitor's threads, files and RSS after warm-up, outages that were not reported
as stream_lost ... stream_back, stale frames after a reconnect, against SoakLimits.

Growth is read at checkpoints, the samples taken just before each outage and at the end, when every camera
has been live for a while: a camera in an outage holds fewer threads (its decoder is gone), so periodic
samples go up and down with the schedule. The baseline is the checkpoint before the second outage (the first
outage and its reconnect belong to the warm-up: allocations made once, on the first reconnect), or the first
checkpoint at or after `warmup_s` when that is later: the pose model's working memory is a high-water mark
that grows with the largest batch of crops seen so far (bench/soak_memory measures it), which a slow machine
or a quiet scene reaches late."""

from __future__ import annotations

from transpose_live.bench.soak_logs import CameraLog
from transpose_live.bench.soak_plan import Sample, SoakPlan, SoakResult


def baseline_and_later(samples: list[Sample], warmup_s: float = 0.0) -> tuple[Sample | None, list[Sample]]:
    """The checkpoint growth is measured from, and the checkpoints after it."""
    checkpoints = [s for s in samples if s.label.startswith("before outage") or s.label == "end"]
    if len(checkpoints) < 2:
        return None, []
    before = [s for s in checkpoints if s.label.startswith("before outage")]
    base = before[1] if len(before) >= 2 else checkpoints[0]
    late = [s for s in before if s.t >= warmup_s]
    if late and late[0].t > base.t:
        base = late[0]
    return base, checkpoints[checkpoints.index(base) + 1:]


def growth(samples: list[Sample], warmup_s: float = 0.0) -> dict:
    """Threads, files and RSS (MB) at the baseline checkpoint and their largest rise at the later ones."""
    base, later = baseline_and_later(samples, warmup_s)
    if base is None or not later:
        return {}
    return {"baseline": base.label, "baseline_t": base.t,
            "threads": [base.threads, max(s.threads for s in later) - base.threads],
            "fds": [base.fds, max(s.fds for s in later) - base.fds],
            "rss_mb": [base.rss_mb, round(max(s.rss_mb for s in later) - base.rss_mb, 1)]}


def camera_summary(log: CameraLog, outages: list[dict], duration_s: float, warm_frames: int) -> dict:
    """One camera over the soak: frames, fps after warm-up, events and whether each outage was reported."""
    lost, back, unmatched = log.lost_and_back()
    caused = sum(o["camera"] == log.name for o in outages)
    snap = log.snapshot()
    stale = log.stale_after_reconnects()
    return {"name": log.name, "frames": snap["frames"],
            "fps": round((snap["frames"] - warm_frames) / duration_s, 2) if duration_s else None,
            "latency_p95_ms": snap["stats"].get("latency_p95_ms"), "outages": caused, "stream_lost": lost,
            "stream_back": back, "events_lost": unmatched + max(0, caused - lost),
            "stale_s_max": max(stale) if stale else 0.0, "stale_s": stale,
            "failed": [e.get("reason") for e in snap["events"] if e["event"] == "stream_failed"]}


def judge(plan: SoakPlan, samples: list[Sample], outages: list[dict], logs: list[CameraLog],
          monitor_exit: int | None, warmup_s: float) -> SoakResult:
    limits = plan.limits
    warm = next((s for s in samples if s.label == "warm"), None)
    warm_frames = {c["name"]: c["frames"] for c in warm.cameras} if warm else {}
    cameras = [camera_summary(log, outages, plan.duration_s, warm_frames.get(log.name, 0)) for log in logs]
    grown = growth(samples, plan.warmup_s)
    failures = []
    if grown:
        for key, limit, unit in (("threads", limits.thread_growth, " OS threads"), ("fds", limits.fd_growth,
                                 " open files"), ("rss_mb", limits.rss_growth_mb, " MB RSS")):
            start, rise = grown[key]
            if rise > limit:
                failures.append(f"{rise:g}{unit} more than at '{grown['baseline']}' ({start:g}), limit {limit:g}")
    elif len(plan.outages()) < 2:
        failures.append("fewer than 2 outages: nothing to measure growth against (a longer duration, or "
                        "outages more often)")
    lost = sum(c["events_lost"] for c in cameras)
    if lost > limits.events_lost:
        failures.append(f"{lost} outage(s) not reported as stream_lost followed by stream_back "
                        f"({', '.join(c['name'] for c in cameras if c['events_lost'])})")
    # staleness is read through the pipeline (a frame's lag includes its processing time): where the
    # latency alone passes the limit, its jitter is what the measure sees, and it is not judged
    judged = [c for c in cameras if (c["latency_p95_ms"] or 0) / 1000 < limits.stale_s]
    for c in cameras:
        c["stale_judged"] = c in judged
    stale = max((c["stale_s_max"] for c in judged), default=0.0)
    if stale > limits.stale_s:
        failures.append(f"a frame {stale:.1f} s older than live after a reconnect (limit {limits.stale_s:g} s)")
    for c in cameras:
        if c["failed"]:
            failures.append(f"{c['name']} gave up: {c['failed'][-1]}")
    if monitor_exit not in (0, None):
        failures.append(f"the monitor exited with {monitor_exit}")
    return SoakResult(plan, samples, outages, cameras, grown, monitor_exit, failures, warmup_s)


__all__ = ["judge", "growth", "baseline_and_later", "camera_summary"]

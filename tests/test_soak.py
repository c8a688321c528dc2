"""The soak (issue 27): `transpose-live soak` runs loopback cameras through `monitor` with outages and fails
when the monitor's threads, files or memory grow after warm-up. The short real soak here (2 cameras, 4
outages: 2 kills, 2 freezes, ~2 minutes) is CI's guard against a reconnect that leaks: before the fix of
issue 27 the same run ended 'FAIL: 4 OS threads more than at before outage 2' (32 -> 34 -> 36 -> 38).
The rest checks the schedule, the log reading and the judging offline, on made-up numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from transpose_live.bench.soak_judge import growth, judge
from transpose_live.bench.soak_logs import CameraLog
from transpose_live.bench.soak_plan import Sample, SoakLimits, SoakPlan
from transpose_live.errors import TransposeLiveError

import rtsp_server


def test_the_schedule_takes_cameras_and_kinds_in_turn_and_leaves_time_to_recover():
    plan = SoakPlan(cameras=2, duration_s=90, outage_every_s=18, down_s=4, timeout_s=3)
    assert plan.outages() == [(18, "kill", 0, 4), (36, "freeze", 1, 5.0), (54, "kill", 0, 4), (72, "freeze", 1, 5.0)]
    # no outage whose recovery period would run past the end
    assert [t for t, *_ in SoakPlan(duration_s=89, outage_every_s=18).outages()] == [18, 36, 54]
    assert SoakPlan(duration_s=60, outage_every_s=20, kinds=("kill",)).outages() == [(20, "kill", 0, 5.0),
                                                                                    (40, "kill", 1, 5.0)]


@pytest.mark.parametrize("change, message", [
    ({"down_s": 30}, "shorter than the time between"),
    ({"kinds": ("kill", "flood")}, "outage kinds are kill, freeze"),
    ({"cameras": 0}, "cameras must be >= 1"),
    ({"video": Path("no-such-video.mp4")}, "video not found"),
])
def test_a_plan_that_cannot_run_is_one_clear_error(change, message):
    with pytest.raises(TransposeLiveError, match=message):
        SoakPlan(**change).check()


def test_a_camera_log_counts_frames_events_and_staleness_after_a_reconnect(tmp_path):
    log = CameraLog("cam1", tmp_path / "cam1.jsonl")
    lines = [(f'{{"frame":{i},"timestamp":{i / 10},"persons":[]}}', 100.0 + i / 10 + 0.3) for i in range(20)]
    lines += [('{"event":"stream_lost","reason":"end of stream","frames":20}', 103.0),
              ('{"event":"stream_back","down_s":5.0,"reconnects":1}', 108.0)]
    # the new connection: its first 3 frames come in one burst (held back up to 0.3 s), then live again
    lines += [(f'{{"frame":{20 + i},"timestamp":{2.0 + i / 10},"persons":[]}}', 108.0 + max(0, i - 3) / 10 + 0.3)
              for i in range(20)]
    lines += [('{"event":"stats","fps":9.5,"latency_p95_ms":120.0}', 110.0), ("not json", 110.0)]
    for line, at in lines:
        log.add_line(line, at)
    snap = log.snapshot()
    assert snap["frames"] == 40 and snap["stats"]["latency_p95_ms"] == 120.0 and log.bad_lines == 1
    assert log.lost_and_back() == (1, 1, 0)
    stale = log.stale_after_reconnects()
    assert len(stale) == 1 and stale[0] == pytest.approx(0.3, abs=1e-6)     # 3 frames of 0.1 s held back
    log.add_line('{"event":"stream_lost","reason":"x","frames":40}', 111.0)
    assert log.lost_and_back() == (2, 1, 1)                 # a loss never followed by a stream_back


def samples(threads: list[int], fds: int = 8, rss: float = 1000.0) -> list[Sample]:
    labels = ["warm"] + [f"before outage {k}" for k in range(1, len(threads) - 1)] + ["end"]
    return [Sample(t=20.0 * i, label=label, rss_mb=rss + i, threads=n, fds=fds, cameras=[])
            for i, (label, n) in enumerate(zip(labels, threads))]


def test_growth_is_measured_from_the_checkpoint_before_the_second_outage():
    g = growth(samples([28, 30, 30, 32, 34, 36]))
    assert g["baseline"] == "before outage 2" and g["threads"] == [30, 6] and g["rss_mb"] == [1002.0, 3.0]
    plan = SoakPlan(cameras=1, duration_s=100, outage_every_s=20, limits=SoakLimits(thread_growth=2))
    leaking = judge(plan, samples([28, 30, 30, 32, 34, 36]), [], [], 0, 10.0)
    assert not leaking.ok and leaking.failures == ["6 OS threads more than at 'before outage 2' (30), limit 2"]
    flat = judge(plan, samples([28, 30, 30, 30, 31, 30]), [], [], 0, 10.0)
    assert flat.ok, flat.failures
    crashed = judge(plan, samples([28, 30, 30, 30, 31, 30]), [], [], 3, 10.0)
    assert crashed.failures == ["the monitor exited with 3"]


def test_a_longer_warm_up_moves_the_baseline_to_the_next_checkpoint():
    # checkpoints at t = 20 (before outage 1), 40, 60, 80 (before outage 4), 100 (end)
    g = growth(samples([28, 30, 30, 32, 34, 36]), warmup_s=55)
    assert g["baseline"] == "before outage 3" and g["baseline_t"] == 60 and g["threads"] == [32, 4]
    assert growth(samples([28, 30, 30, 32, 34, 36]), warmup_s=10)["baseline"] == "before outage 2"


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_short_soak_with_4_outages_stays_flat(tmp_path):
    rtsp_server.require()
    out = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, "-m", "transpose_live", "soak", "--cameras", "2", "--minutes", "1.5",
                          "--outage-every", "18", "--down", "4", "--timeout", "3", "--json", str(out),
                          # staleness is read through the pipeline: on a loaded runner its latency jitter alone
                          # passed 2 s (the source's own, tests/test_rtsp_leak.py, stays under 0.1 s here)
                          "--max-stale", "5",
                          "--log-dir", str(tmp_path / "logs")], capture_output=True, text=True, timeout=380)
    report = json.loads(out.read_text()) if out.exists() else None
    assert run.returncode == 0, run.stderr[-3000:]
    assert report is not None and report["ok"] and report["failures"] == []
    assert [(o["kind"], o["camera"]) for o in report["outages"]] == [("kill", "cam1"), ("freeze", "cam2"),
                                                                     ("kill", "cam1"), ("freeze", "cam2")]
    for camera in report["cameras"]:
        assert camera["outages"] == camera["stream_lost"] == camera["stream_back"] == 2, camera
        assert camera["events_lost"] == 0 and camera["frames"] > 0
    g = report["growth"]
    assert g["baseline"] == "before outage 2"
    assert g["threads"][1] <= 2 and g["fds"][1] <= 2 and g["rss_mb"][1] <= 30, g
    assert "soak passed" in run.stderr


def stale_camera(tmp_path: Path, latency_p95_ms: float) -> CameraLog:
    """A camera whose first frames after its reconnect came 3 s late, then live."""
    log = CameraLog("cam1", tmp_path / "cam1.jsonl")
    for i in range(10):
        log.add_line(f'{{"frame":{i},"timestamp":{i / 10}}}', 100.0 + i / 10)
    log.add_line('{"event":"stream_lost","reason":"end of stream","frames":10}', 101.0)
    log.add_line('{"event":"stream_back","down_s":4.0,"reconnects":1}', 105.0)
    for i in range(20):
        late = 3.0 if i < 2 else 0.0
        log.add_line(f'{{"frame":{10 + i},"timestamp":{1.0 + i / 10}}}', 105.0 + i / 10 + late)
    log.add_line(f'{{"event":"stats","fps":10,"latency_p95_ms":{latency_p95_ms}}}', 108.0)
    return log


def test_stale_frames_after_a_reconnect_fail_unless_latency_alone_passes_the_limit(tmp_path):
    plan = SoakPlan(cameras=1, duration_s=100, outage_every_s=20)
    outage = [{"outage": 1, "t": 20.0, "kind": "kill", "camera": "cam1", "down_s": 4.0}]
    quick = judge(plan, samples([28, 30, 30, 30, 30, 30]), outage, [stale_camera(tmp_path, 300.0)], 0, 10.0)
    assert quick.cameras[0]["stale_s_max"] == pytest.approx(3.0) and quick.cameras[0]["stale_judged"]
    assert quick.failures == ["a frame 3.0 s older than live after a reconnect (limit 2 s)"]
    slow = judge(plan, samples([28, 30, 30, 30, 30, 30]), outage, [stale_camera(tmp_path, 30000.0)], 0, 10.0)
    assert slow.ok and not slow.cameras[0]["stale_judged"]

"""`transpose-live rtsp` and `transpose-live monitor` against real RTSP servers on 127.0.0.1 (GStreamer's
gst-rtsp-server): reconnection by itself, events, clean ends on --duration and SIGTERM, no password shown,
one camera's outage not touching another's. Real processes, the tiny model, the whole frame as the person."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, wait_until
from rtsp_server import RtspServer, free_port, require

PASSWORD = "pa55-word"


@pytest.fixture
def tiny_args(tiny_weights):
    return ["--model", "tp_m_a4", "--weights", str(tiny_weights), "--device", "cpu", "--detector", "none",
            "--min-person-score", "0"]


def start(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.Popen([sys.executable, "-m", "transpose_live", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def lines_of(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def frame_lines(path) -> list[dict]:
    """The per-frame records (event lines carry "event")."""
    return [r for r in lines_of(path) if "event" not in r]


def terminate(proc: subprocess.Popen) -> tuple[str, str, float]:
    """SIGTERM, as a service manager stops it: (stdout, stderr, seconds it took to end)."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    return out, err, time.monotonic() - t0


def wait_for(predicate, timeout: float) -> bool:
    return wait_until(predicate, timeout, step=0.2)


@pytest.mark.timeout(120)
def test_rtsp_reconnects_by_itself_logs_the_outage_and_never_shows_the_password(tmp_path, tiny_args):
    require()
    log = tmp_path / "c.jsonl"
    with RtspServer(paths=("/cam",), user="admin", password=PASSWORD) as server:
        proc = start("rtsp", server.url("/cam"), "--json", str(log), "--duration", "25", "--timeout", "3",
                     *tiny_args)
        try:
            assert wait_for(lambda: len(frame_lines(log)) >= 5, 40), proc.stderr
            server.kill()
            time.sleep(4)
            frames_during_outage = len(frame_lines(log))
            server.start()
            assert wait_for(lambda: len(frame_lines(log)) > frames_during_outage + 5, 40)
            out, err = proc.communicate(timeout=40)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    records = lines_of(log)
    events = [r["event"] for r in records if "event" in r]
    assert "person_appeared" in events and events.index("stream_lost") < events.index("stream_back")
    assert all("time" in r for r in records if "event" in r)                 # wall clock on every event
    times = [r["timestamp"] for r in frame_lines(log)]
    assert times == sorted(times) and len(set(times)) == len(times)          # timestamps keep increasing
    everything = out + err + log.read_text()
    assert PASSWORD not in everything and "admin:***@" in err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where, reason", [("port", "cannot connect"), ("path", "404")])
def test_a_dead_camera_with_no_retries_is_one_clear_line(tmp_path, tiny_args, where, reason):
    require()
    if where == "port":
        url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/cam"
        proc = start("rtsp", url, "--json", str(tmp_path / "c.jsonl"), "--max-retries", "0", "--timeout", "3",
                     *tiny_args)
        out, err = proc.communicate(timeout=40)
    else:
        with RtspServer(paths=("/cam",)) as server:
            proc = start("rtsp", server.url("/nothing-here"), "--json", str(tmp_path / "c.jsonl"),
                         "--max-retries", "0", "--timeout", "3", *tiny_args)
            out, err = proc.communicate(timeout=40)
    assert proc.returncode != 0
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and reason in err, err
    assert PASSWORD not in out + err


@pytest.mark.timeout(90)
def test_sigterm_stops_within_3_s_with_the_outputs_finished(tmp_path, tiny_args):
    require()
    log, video = tmp_path / "c.jsonl", tmp_path / "c.mp4"
    with RtspServer(paths=("/cam",)) as server:
        proc = start("rtsp", server.url("/cam"), "--json", str(log), "--out", str(video), *tiny_args)
        try:
            assert wait_for(lambda: len(frame_lines(log)) >= 5, 40)
            out, err, stopped_in = terminate(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0 and stopped_in < 3.0, (stopped_in, err)
    assert "(interrupted)" in err and "Traceback" not in err
    import av

    with av.open(str(video)) as container:               # the recording was finished: it plays
        assert sum(1 for _ in container.decode(video=0)) >= 5


@pytest.mark.timeout(150)
def test_monitor_one_camera_down_does_not_disturb_the_other(tmp_path, tiny_args):
    require()
    logs = tmp_path / "logs"
    with RtspServer(paths=("/a",)) as first, RtspServer(paths=("/b",)) as second:
        proc = start("monitor", first.url("/a"), second.url("/b"), "--log-dir", str(logs), "--timeout", "3",
                     *tiny_args)
        try:
            frames = lambda name: len(frame_lines(logs / f"{name}.jsonl"))   # noqa: E731
            assert wait_for(lambda: frames("cam1") >= 5 and frames("cam2") >= 5, 60), proc.stderr
            first.kill()
            time.sleep(1.0)
            before = frames("cam2")
            time.sleep(3.0)
            assert frames("cam2") > before + 5                  # the other camera goes on meanwhile
            first.start()
            down_at = frames("cam1")
            assert wait_for(lambda: frames("cam1") > down_at + 5, 40)     # and the first comes back
            out, err, stopped_in = terminate(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0 and stopped_in < 3.0, (stopped_in, err)
    events = [r["event"] for r in lines_of(logs / "cam1.jsonl") if "event" in r]
    assert "stream_lost" in events and "stream_back" in events
    assert not [r for r in lines_of(logs / "cam2.jsonl") if r.get("event") == "stream_lost"]
    assert "cam1: " in err and "cam2: " in err and "reconnects" in err


@pytest.mark.timeout(90)
def test_mqtt_subscriber_gets_the_same_events_as_the_json_log(tmp_path, tiny_args, broker, subscriber):
    """`rtsp --mqtt`: a real mosquitto broker; the events on transpose-live/<camera>/events are the JSON
    log's event lines, and a per-frame summary arrives for the frames."""
    require()
    log = tmp_path / "c.jsonl"
    with RtspServer(paths=("/cam",)) as server:
        proc = start("rtsp", server.url("/cam"), "--json", str(log), "--duration", "6", "--camera-name", "door",
                     "--mqtt", f"127.0.0.1:{broker.port}", *tiny_args)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    logged = [r for r in lines_of(log) if "event" in r]
    assert [r["event"] for r in logged][:1] == ["person_appeared"] and logged[-1]["event"] == "person_left"
    assert wait_for(lambda: len(subscriber.on("door/events")) >= len(logged), 10)
    published = subscriber.on("door/events")
    key = lambda r: (r["event"], r.get("id"), r.get("timestamp"))    # noqa: E731
    assert sorted(map(key, published)) == sorted(map(key, logged))
    summaries = subscriber.on("door/poses")
    assert summaries and {s["frame"] for s in summaries} <= {r["frame"] for r in frame_lines(log)}

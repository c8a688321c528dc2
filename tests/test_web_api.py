"""The web view's HTTP side on a real uvicorn (127.0.0.1, a random port), fed through a camera's sink the way a
pipeline feeds it: the API, 404s for unknown names and `..`, passwords masked, MJPEG shared and skipping, a
viewer that leaves, the attention overlay, the websocket, Basic auth everywhere, /metrics, the CLI options."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import typer
from typer.testing import CliRunner
from web_support import PASSWORD, USER, Attention, basic, feed_frames, get, get_json, make_view, picture, wait_for

from transpose_live.cli.web_options import WebOptions, with_web_options
from transpose_live.errors import TransposeLiveError
from transpose_live.monitor.web.config import WebConfig, parse_address
from transpose_live.types import FrameResult

SECRET = "s3cret-cam-pw"
CAM_URL = f"rtsp://viewer:{SECRET}@127.0.0.1:8554/door"


@pytest.fixture
def view(tmp_path):
    v = make_view(tmp_path)
    yield v
    v.stop()


def test_cameras_latest_frame_and_events_through_the_sink(view):
    sink = view.sink("door", url=CAM_URL)
    rows = get_json(view, "/api/cameras")
    assert [r["name"] for r in rows] == ["door"] and rows[0]["state"] == "connecting"
    assert get(view, "/api/cameras/door/latest.jpg")[0] == 404          # no frame yet
    feed_frames(sink, 20, persons=2, period=0.01)
    sink.write_event({"event": "stats", "fps": 14.8, "latency_p50_ms": 41.0, "latency_p95_ms": 77.5,
                      "dropped": 3, "reconnects": 1})
    sink.write_event({"event": "person_appeared", "id": 2, "timestamp": 1.2, "frame": 18})
    row = get_json(view, "/api/cameras/door")
    assert row["state"] == "live" and row["persons"] == 2 and row["frames"] == 20 and row["size"] == [160, 120]
    assert row["fps"] > 0 and row["latency_p50_ms"] == 41.0 and row["latency_p95_ms"] == 77.5
    assert row["dropped"] == 3 and row["reconnects"] == 1
    assert row["source"] == "rtsp://viewer:***@127.0.0.1:8554/door"
    status, headers, body = get(view, "/api/cameras/door/latest.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    events = wait_for(lambda: get_json(view, "/api/events"), 5)
    assert events[0]["type"] == "person_appeared" and events[0]["track_id"] == 2 and events[0]["camera"] == "door"
    status, headers, body = get(view, events[0]["snapshot"])
    assert status == 200 and headers["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    assert events[0]["clip"] is None                    # the camera does not record
    assert get(view, f"/api/events/{events[0]['id']}/clip.mp4")[0] == 404
    stats = get_json(view, "/api/stats")
    assert stats["cameras"] == 1 and stats["live"] == 1 and stats["events_kept"] == 1


def test_event_filters_since_limit_and_paging(view):
    door, yard = view.sink("door"), view.sink("yard")
    feed_frames(door, 2)
    kinds = ["person_appeared", "person_down", "person_up", "person_left"]
    for i, kind in enumerate(kinds):
        door.write_event({"event": kind, "id": 1, "timestamp": float(i)})
    yard.write_event({"event": "stream_lost", "reason": "timed out", "frames": 0})
    wait_for(lambda: len(get_json(view, "/api/events")) == 5, 5)
    everything = get_json(view, "/api/events")
    assert [e["type"] for e in everything] == ["stream_lost", *reversed(kinds)]       # newest first
    assert [e["type"] for e in get_json(view, "/api/events?camera=door&type=person_down")] == ["person_down"]
    assert get_json(view, "/api/events?camera=yard")[0]["record"]["reason"] == "timed out"
    assert get_json(view, "/api/events?camera=nobody") == []
    assert len(get_json(view, "/api/events?limit=2")) == 2
    older = get_json(view, f"/api/events?before={everything[1]['id']}")
    assert [e["id"] for e in older] == [e["id"] for e in everything[2:]]
    assert get_json(view, f"/api/events?since={time.time() + 60}") == []
    assert len(get_json(view, "/api/events?since=2000-01-01T00:00:00Z")) == 5
    assert get(view, "/api/events?since=yesterday")[0] == 422
    assert get(view, "/api/events?limit=0")[0] == 422


NOT_FOUND = [
    "/api/cameras/nobody", "/api/cameras/nobody/latest.jpg", "/api/cameras/nobody/mjpeg", "/camera/nobody",
    "/api/events/999", "/api/events/999/snapshot.jpg", "/api/events/999/clip.mp4", "/api/events/abc",
    "/api/cameras/../events", "/api/cameras/%2e%2e/latest.jpg", "/api/cameras/..%2fdoor/latest.jpg",
    "/api/events/../cameras", "/api/events/%2E%2E/snapshot.jpg", "/api/events/1/../../../etc/passwd",
    "/static/../view.py", "/static/%2e%2e/view.py", "/static/..%2fview.py", "/static/../../../../etc/passwd",
    "/camera/..", "/camera/%2e%2e", "/nothing-here", "/api/events/-1/snapshot.jpg", "/docs",
]


def test_unknown_names_and_dotdot_are_404(view):
    sink = view.sink("door")
    feed_frames(sink, 1)
    sink.write_event({"event": "person_appeared", "id": 1, "timestamp": 0.0})
    wait_for(lambda: get_json(view, "/api/events"), 5)
    assert get(view, "/api/events/1/snapshot.jpg")[0] == 200 and get(view, "/static/app.js")[0] == 200
    for path in NOT_FOUND:
        status, _, body = get(view, path)
        assert status == 404, (path, status, body[:200])
        assert b"import" not in body and b"root:" not in body


def test_camera_passwords_stay_masked_everywhere(view):
    sink = view.sink("door", url=CAM_URL)
    feed_frames(sink, 3)
    sink.write_event({"event": "stream_lost", "reason": f"cannot read {CAM_URL}: connection refused", "frames": 3})
    wait_for(lambda: get_json(view, "/api/events"), 5)
    event_id = get_json(view, "/api/events")[0]["id"]
    texts = [get(view, p)[2] for p in ("/", "/events", "/camera/door", "/api/cameras", "/api/cameras/door",
                                       "/api/events", f"/api/events/{event_id}", "/api/stats", "/metrics")]
    assert all(SECRET.encode() not in t for t in texts)
    assert b"viewer:***@" in get(view, "/api/events")[2]         # the reason kept, its password masked
    with _websocket(view) as ws:
        first = json.loads(ws.recv(timeout=5))
    assert SECRET not in json.dumps(first) and first["type"] == "cameras"


# ------------------------------------------------------------------------------------------------- MJPEG

def _open_mjpeg(view, path: str, headers: dict | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", view.port), timeout=10)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
    return sock


def _read_parts(sock: socket.socket, count: int, timeout: float = 10.0) -> list[bytes]:
    """The first `count` JPEG parts of a multipart stream."""
    buffer, parts = b"", []
    deadline = time.monotonic() + timeout
    while len(parts) < count:
        assert time.monotonic() < deadline, f"only {len(parts)} parts in {timeout} s"
        buffer += sock.recv(65536)
        while True:
            head = buffer.find(b"Content-Length: ")
            end = buffer.find(b"\r\n\r\n", head)
            if head < 0 or end < 0:
                break
            size = int(buffer[head + 16:buffer.find(b"\r\n", head)])
            if len(buffer) < end + 4 + size:
                break
            parts.append(buffer[end + 4:end + 4 + size])
            buffer = buffer[end + 4 + size:]
    return parts


def test_mjpeg_encodes_each_frame_once_for_every_viewer(view):
    sink = view.sink("door")
    stream = view.state.streams["door"]
    viewers = [_open_mjpeg(view, "/api/cameras/door/mjpeg") for _ in range(4)]
    wait_for(lambda: stream.viewers == 4, 5)
    received = []
    readers = [threading.Thread(target=lambda s=s: received.append(_read_parts(s, 5))) for s in viewers]
    for r in readers:
        r.start()
    feed_frames(sink, 40, period=0.02)
    for r in readers:
        r.join(10)
    assert len(received) == 4 and all(len(parts) == 5 for parts in received)
    assert all(p[:2] == b"\xff\xd8" for parts in received for p in parts)
    # four viewers, 40 frames: at most one JPEG per frame, shared (the first parts are the same bytes)
    assert 0 < stream.encoded <= 40
    assert len({parts[-1] for parts in received}) <= 2
    for s in viewers:
        s.close()
    wait_for(lambda: stream.viewers == 0, 5)


def test_a_viewer_that_stops_reading_skips_frames_and_never_slows_the_pipeline(view):
    sink = view.sink("door")
    stream = view.state.streams["door"]
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (720, 1280, 3), np.uint8) for _ in range(4)]   # ~1 MB JPEGs: buffers fill
    stalled = _open_mjpeg(view, "/api/cameras/door/mjpeg")
    reader = _open_mjpeg(view, "/api/cameras/door/mjpeg")
    wait_for(lambda: stream.viewers == 2, 5)
    got: list[bytes] = []
    thread = threading.Thread(target=lambda: got.extend(_read_parts(reader, 10, timeout=30)))
    thread.start()
    slowest = 0.0
    for i in range(60):
        t = time.perf_counter()
        sink.write_frame(noise[i % 4], FrameResult(i, i / 15, [], (1280, 720)))
        slowest = max(slowest, time.perf_counter() - t)
        time.sleep(0.03)
    thread.join(30)
    assert len(got) == 10                     # the reading viewer was served while the other one stalled
    assert slowest < 0.05, f"a frame took {slowest * 1000:.0f} ms to hand to the web view"
    stalled.settimeout(10)
    late = _read_parts(stalled, 1)            # it reads again: it gets a frame, having skipped the rest
    assert late[0][:2] == b"\xff\xd8"
    assert stream.encoded <= 60
    for s in (stalled, reader):
        s.close()
    wait_for(lambda: stream.viewers == 0, 5)


def test_a_viewer_that_disconnects_mid_stream_leaves_nothing_behind(view):
    sink = view.sink("door")
    controls = Attention()
    sink.bind(controls)
    stream = view.state.streams["door"]
    feed_frames(sink, 1)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed_until, args=(sink, stop))
    feeder.start()
    try:
        for _ in range(3):                     # warm up: the encoder thread and the server's workers exist
            s = _open_mjpeg(view, "/api/cameras/door/mjpeg?attention=1")
            _read_parts(s, 1)
            s.close()
            wait_for(lambda: stream.viewers == 0, 5)
        threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            s = _open_mjpeg(view, "/api/cameras/door/mjpeg?attention=1")
            _read_parts(s, 1)
            assert controls.on
            s.close()                          # mid-stream: frames keep coming
            wait_for(lambda: stream.viewers == 0 and not controls.on, 5)
        assert stream.overlay_viewers == 0
        assert threading.active_count() <= threads
        assert len(os.listdir("/proc/self/fd")) <= fds + 2
    finally:
        stop.set()
        feeder.join(5)


def _thread_cpu(thread: threading.Thread) -> float:
    fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_with_nobody_watching_the_encoder_sleeps(view):
    """After its viewers have gone, a camera's encoder thread waits for frames without spinning or encoding."""
    sink = view.sink("door")
    stream = view.state.streams["door"]
    stop = threading.Event()
    feeder = threading.Thread(target=_feed_until, args=(sink, stop))
    feeder.start()
    try:
        viewer = _open_mjpeg(view, "/api/cameras/door/mjpeg")
        _read_parts(viewer, 2)
        viewer.close()
        wait_for(lambda: stream.viewers == 0, 5)
        encoder = next(t for t in threading.enumerate() if t.name == "web-jpeg-door")
        cpu, encoded = _thread_cpu(encoder), stream.encoded
        time.sleep(2.0)                                   # ~100 frames go by
        assert _thread_cpu(encoder) - cpu < 0.2, "the encoder thread spins with nobody watching"
        assert stream.encoded == encoded
    finally:
        stop.set()
        feeder.join(5)


def _feed_until(sink, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        sink.write_frame(picture(i), FrameResult(i, i / 15, [], (160, 120)))
        i += 1
        time.sleep(0.02)


def test_the_attention_overlay_is_on_only_while_someone_asks_for_it(view):
    sink = view.sink("door")
    controls = Attention()
    sink.bind(controls)
    stream = view.state.streams["door"]
    plain = _open_mjpeg(view, "/api/cameras/door/mjpeg")
    wait_for(lambda: stream.viewers == 1, 5)
    assert controls.calls == []                            # a plain viewer costs no attention maps
    first, second = (_open_mjpeg(view, "/api/cameras/door/mjpeg?attention=1") for _ in range(2))
    wait_for(lambda: stream.overlay_viewers == 2, 5)
    assert controls.calls == [True]                        # turned on once, for both
    first.close()
    wait_for(lambda: stream.overlay_viewers == 1, 5)
    assert controls.on
    second.close()
    wait_for(lambda: not controls.on, 5)
    assert controls.calls == [True, False]
    plain.close()


# --------------------------------------------------------------------------------------------- websocket

def _websocket(view, headers: dict | None = None):
    from websockets.sync.client import connect

    return connect(f"ws://127.0.0.1:{view.port}/ws", additional_headers=headers, open_timeout=5)


def test_the_websocket_pushes_events_and_camera_states(view):
    sink = view.sink("door")
    feed_frames(sink, 3)
    with _websocket(view) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["type"] == "cameras" and hello["cameras"][0]["state"] == "live"
        sink.write_event({"event": "stream_lost", "reason": "timed out", "frames": 3})
        sink.write_event({"event": "person_down", "id": 4, "timestamp": 9.5, "since": 7.5})
        seen: dict[str, dict] = {}
        deadline = time.monotonic() + 5
        while not ({"camera", "event"} <= set(seen)) or seen["event"]["event"]["type"] != "person_down":
            assert time.monotonic() < deadline, seen
            message = json.loads(ws.recv(timeout=5))
            if message["type"] != "cameras":
                seen[message["type"]] = message
        assert seen["camera"]["camera"]["state"] == "reconnecting"
        event = seen["event"]["event"]
        assert event["track_id"] == 4 and event["id"] is not None and event["snapshot"]
        assert time.time() - event["epoch"] < 2.0
        ticks = [json.loads(ws.recv(timeout=3)) for _ in range(1)]
        assert ticks[0]["type"] == "cameras"               # once a second, all cameras' figures
    wait_for(lambda: view.state.push.clients == 0, 5)


# ------------------------------------------------------------------------------------------------- auth

PROTECTED = ["/", "/events", "/camera/door", "/static/app.js", "/static/style.css", "/api/cameras",
             "/api/cameras/door", "/api/cameras/door/latest.jpg", "/api/events", "/api/events/1",
             "/api/events/1/snapshot.jpg", "/api/stats", "/metrics", "/openapi.json"]


def test_with_a_password_everything_needs_it(tmp_path):
    view = make_view(tmp_path, user=USER, password=PASSWORD)
    try:
        sink = view.sink("door", url=CAM_URL)
        feed_frames(sink, 2)
        sink.write_event({"event": "person_appeared", "id": 1, "timestamp": 0.1})
        wait_for(lambda: get_json(view, "/api/events", basic()), 5)
        for path in [*PROTECTED, "/api/cameras/door/mjpeg"]:
            for headers in ({}, basic(password="wrong"), basic(user="root"), {"Authorization": "Basic !!"},
                            {"Authorization": "Bearer x"}):
                status, answer, body = get(view, path, headers)
                assert status == 401, (path, headers, status)
                assert answer["www-authenticate"].startswith("Basic realm=")
                assert SECRET.encode() not in body
        for path in PROTECTED:
            assert get(view, path, basic())[0] == 200, path
        mjpeg = _open_mjpeg(view, "/api/cameras/door/mjpeg", basic())
        feed_frames(sink, 3, start=2, period=0.05)
        assert _read_parts(mjpeg, 1)[0][:2] == b"\xff\xd8"
        mjpeg.close()
        from websockets.exceptions import InvalidStatus

        for headers in (None, basic(password="wrong")):
            with pytest.raises(InvalidStatus) as refused:
                _websocket(view, headers)
            assert refused.value.response.status_code == 401
        with _websocket(view, basic()) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "cameras"
    finally:
        view.stop()


def test_off_loopback_a_password_is_required():
    for host in ("0.0.0.0", "192.168.1.20", "::", "camera-box.local"):
        with pytest.raises(TransposeLiveError, match="without a password"):
            WebConfig(host=host, port=8080).validate()
        assert WebConfig(host=host, port=8080, password="x").validate().password == "x"
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert WebConfig(host=host, port=8080).validate().password is None
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:81") == ("0.0.0.0", 81)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    for bad in ("", "host:", "99999", "::1:80", "[::1]", "a:b"):
        with pytest.raises(TransposeLiveError):
            parse_address(bad)


def test_a_port_in_use_is_one_clear_error(view, tmp_path):
    from transpose_live.monitor.web.view import WebView

    other = WebView(WebConfig(port=view.port, event_dir=tmp_path / "other"))
    with pytest.raises(TransposeLiveError, match="port is in use"):
        other.start()
    other.stop()


# ------------------------------------------------------------------------------------------------ metrics

def test_metrics_in_prometheus_text_format(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    view = make_view(tmp_path)
    # the shared model's counters as pose.batching.BatchStats has them
    view.model_stats = lambda: SimpleNamespace(forwards=10, requests=25, crops=40, mean_batch=4.0)
    try:
        door, yard = view.sink("door"), view.sink("yard")
        feed_frames(door, 10, persons=3, period=0.01)
        door.write_event({"event": "stats", "fps": 10, "latency_p50_ms": 40.0, "latency_p95_ms": 90.0,
                          "dropped": 7, "reconnects": 2})
        for kind in ("person_appeared", "person_appeared", "person_down"):
            door.write_event({"event": kind, "id": 1, "timestamp": 0.0})
        yard.write_event({"event": "stream_lost", "reason": "x", "frames": 0})
        status, headers, body = get(view, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    finally:
        view.stop()
    assert samples[("transpose_live_camera_persons", (("camera", "door"),))] == 3
    assert samples[("transpose_live_camera_fps", (("camera", "door"),))] > 0
    assert samples[("transpose_live_camera_up", (("camera", "door"),))] == 1
    assert samples[("transpose_live_camera_up", (("camera", "yard"),))] == 0
    assert samples[("transpose_live_camera_latency_seconds", (("camera", "door"), ("quantile", "0.95")))] == 0.09
    assert samples[("transpose_live_camera_dropped_frames_total", (("camera", "door"),))] == 7
    assert samples[("transpose_live_camera_reconnects_total", (("camera", "door"),))] == 2
    assert samples[("transpose_live_camera_frames_total", (("camera", "door"),))] == 10
    assert samples[("transpose_live_events_total", (("camera", "door"), ("type", "person_appeared")))] == 2
    assert samples[("transpose_live_events_total", (("camera", "yard"), ("type", "stream_lost")))] == 1
    assert samples[("transpose_live_model_batch_size", ())] == 4.0
    assert samples[("transpose_live_model_forwards_total", ())] == 10


# ---------------------------------------------------------------------------------------------- CLI options

def test_the_cli_options_validate_before_anything_starts(monkeypatch, tmp_path):
    seen = []
    app = typer.Typer()

    @app.command()
    @with_web_options
    def command(*, web_options: WebOptions) -> None:     # annotated, as the commands are
        seen.append(web_options)
        view = web_options.build()
        seen.append(view)
        if view is not None:
            view.stop()

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRANSPOSE_LIVE_WEB_PASSWORD", raising=False)
    assert runner.invoke(app, []).exit_code == 0 and seen[-1] is None        # no --web: no view
    result = runner.invoke(app, ["--web", "0.0.0.0:8080"])
    assert result.exit_code != 0 and "without a password" in str(result.exception)
    monkeypatch.setenv("TRANSPOSE_LIVE_WEB_PASSWORD", "from-env")
    result = runner.invoke(app, ["--web", "0.0.0.0:0", "--web-user", "me", "--event-dir", str(tmp_path / "ev"),
                                 "--keep-days", "2", "--keep-mb", "50"])
    assert result.exit_code == 0, result.output
    options = seen[-2]
    assert options == WebOptions("0.0.0.0:0", "me", "from-env", tmp_path / "ev", 2.0, 50.0)
    assert seen[-1].config.password == "from-env" and seen[-1].config.host == "0.0.0.0"
    assert runner.invoke(app, ["--web", "80:80:80"]).exit_code != 0


def test_the_view_warns_nothing_on_a_clean_stop(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    view = make_view(tmp_path)
    sink = view.sink("door")
    feed_frames(sink, 5)
    sink.close()
    assert get_json(view, "/api/cameras/door")["state"] == "stopped"
    view.stop()
    assert not [r for r in caplog.records if r.name.startswith("transpose_live")]


def test_a_camera_that_fails_outside_its_outputs_says_so_once(view):
    from transpose_live.monitor.cameras import CameraConfig

    camera = CameraConfig("door", CAM_URL)
    view.camera_failed(camera, f"cannot connect to {CAM_URL}: 401 Unauthorized")
    row = get_json(view, "/api/cameras/door")
    assert row["state"] == "failed" and row["source"] == "rtsp://viewer:***@127.0.0.1:8554/door"
    sink = view.sink("yard", url=CAM_URL)
    sink.write_event({"event": "stream_failed", "reason": "retries spent"})    # the stream's own, then the runner's
    view.camera_failed(CameraConfig("yard", CAM_URL), "stream lost and not back")
    events = wait_for(lambda: len(get_json(view, "/api/events")) == 2 and get_json(view, "/api/events"), 5)
    assert [(e["camera"], e["type"]) for e in events] == [("yard", "stream_failed"), ("door", "stream_failed")]
    assert "***" in events[1]["record"]["reason"] and SECRET not in json.dumps(events)
    assert get_json(view, "/api/cameras/yard")["state"] == "failed"

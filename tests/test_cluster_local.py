"""monitor --cluster on a real local Ray (one instance for the module, 2 CPUs, no dashboard, on 127.0.0.1):
two cameras from the real RTSP test server, the tiny model served by Ray Serve, the whole frame as the
person. Frames, events and ids reach the driver's logs; a camera worker killed with SIGKILL comes back
(worker_restarted, stream_back, ids in a new range) while the other camera goes on; a pose model replica
killed costs no camera its tracks (its frames wait, the newer ones replace them and are counted)."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import signal
import time
from pathlib import Path

import pytest

from transpose_live.monitor.cluster.connect import LOOPBACK
from transpose_live.monitor.cluster.driver import CAMERA_NICE, MODEL_NICE

import rtsp_server
from helpers import RAY_MISSING, ray_on_loopback, wait_until

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason=RAY_MISSING)
LOOPBACK_PROBLEM = ray_on_loopback()     # before Ray is first imported in this process

CAMERAS = ("door", "yard")


def log_lines(folder: Path, camera: str) -> list[dict]:
    path = folder / f"{camera}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def thread_nices(pid: int) -> dict[str, int]:
    """Every thread's nice value (Linux: per thread, field 19 of its stat)."""
    return {task.name: int(Path(task, "stat").read_text().rsplit(")", 1)[1].split()[16])
            for task in Path(f"/proc/{pid}/task").iterdir()}


def events(folder: Path, camera: str, name: str | None = None) -> list[dict]:
    return [r for r in log_lines(folder, camera) if "event" in r and (name is None or r["event"] == name)]


def ids_seen(lines: list[dict]) -> set[int]:
    return {p["id"] for r in lines for p in r.get("persons", []) if p["id"] is not None}


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)          # ::ffff:127.0.0.1 is 127.0.0.1
    return (mapped or ip).is_loopback


def row(monitor, camera: str) -> dict:
    return next(r for r in monitor.status() if r["camera"] == camera)


def frames(monitor, camera: str) -> int:
    return row(monitor, camera)["frames"]


class Pictures:
    """An output that shows pictures, as the web view's does: needs_image, and bind(controls) for its toggle."""

    needs_image = True

    def __init__(self):
        self.shapes: list[tuple] = []
        self.frames = 0
        self.controls = None

    def bind(self, controls) -> None:
        self.controls = controls

    def write_frame(self, image, result) -> None:
        self.frames += 1
        if image is not None:
            self.shapes.append(image.shape)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def ray_session():
    if LOOPBACK_PROBLEM:
        pytest.skip(LOOPBACK_PROBLEM)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address=LOOPBACK)
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def server():
    rtsp_server.require()
    with rtsp_server.RtspServer(paths=tuple(f"/{c}" for c in CAMERAS), size=(160, 120), fps=10) as running:
        yield running


@pytest.fixture(scope="module")
def monitor(ray_session, server, loud_weights, tmp_path_factory):
    from transpose_live.live.spec import RunSpec
    from transpose_live.monitor.cameras import CameraConfig
    from transpose_live.monitor.cluster.driver import ClusterMonitor
    from transpose_live.monitor.runner import Outputs

    logs = tmp_path_factory.mktemp("logs")
    spec = RunSpec.from_options(model="tp_m_a4", weights=str(loud_weights), device="cpu", detector="none")
    cameras = [CameraConfig(c, server.url(f"/{c}")) for c in CAMERAS]
    pictures: dict[str, Pictures] = {}
    more = [lambda camera: [lambda source: pictures.setdefault(camera.name, Pictures())]]
    running = ClusterMonitor(cameras, spec, Outputs(logs, more=more), {"timeout": 5.0}, replicas=1, pose_cpus=0.5,
                             camera_nice=CAMERA_NICE, model_nice=MODEL_NICE)
    running.logs, running.pictures = logs, pictures
    running.start()
    # the first status is taken once frames flow (read from the views, not status()): its fps must count them
    assert wait_until(lambda: all(v.frames >= 5 for v in running.views), 120, 0.2), running.status()
    running.first_status = running.status()
    yield running
    running.stop()


def test_ray_stays_on_loopback(ray_session):
    """The node's address, and every socket Ray's processes listen on or talk to, are in 127.0.0.0/8."""
    import psutil

    assert {n["NodeManagerAddress"] for n in ray_session.nodes()} == {LOOPBACK}
    assert ray_session.get_runtime_context().gcs_address.startswith(f"{LOOPBACK}:")
    processes = psutil.Process().children(recursive=True)
    assert any("raylet" in " ".join(p.cmdline()) for p in processes)
    addresses = []
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        addresses += [c.laddr.ip for c in connections] + [c.raddr.ip for c in connections if c.raddr]
    assert addresses and all(loopback(a) for a in addresses), sorted(set(addresses))


def test_frames_events_and_status_reach_the_driver(monitor):
    for camera in CAMERAS:
        lines = log_lines(monitor.logs, camera)
        assert sum("persons" in r for r in lines) >= 5
        assert ids_seen(lines) and max(ids_seen(lines)) < 1_000_000
        assert events(monitor.logs, camera, "person_appeared")
        r = row(monitor, camera)
        assert r["state"] == "live" and r["error"] is None and r["latency_p50_ms"] > 0 and r["node"] == LOOPBACK
    assert all(r["fps"] > 0 for r in monitor.first_status), monitor.first_status     # counted from the start
    stats = monitor.model_stats()
    assert stats.replicas == 1 and stats.crops >= 10 and stats.forwards >= 1 and stats.mean_batch >= 1.0
    jpeg = monitor.newest_jpeg("door")
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) > 500
    pid = monitor.views[0].pid
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::CameraWorker")


def test_pictures_and_the_attention_toggle_reach_a_web_view(monitor):
    door = monitor.pictures["door"]
    assert door.frames > 0 and door.shapes and set(door.shapes) == {(120, 160, 3)}
    assert door.controls is not None
    door.controls.set_attention(True)
    assert wait_until(lambda: monitor.views[0].row.get("attention") is True, 20, 0.1)
    seen = len(door.shapes)
    assert wait_until(lambda: len(door.shapes) > seen + 3, 20, 0.1)     # pictures go on, drawn with the maps
    door.controls.set_attention(False)
    assert wait_until(lambda: monitor.views[0].row.get("attention") is False, 20, 0.1)


def test_a_killed_camera_worker_comes_back_in_a_new_id_range(monitor):
    door = monitor.views[0]
    pid, before_other = door.pid, frames(monitor, "yard")
    os.kill(pid, signal.SIGKILL)
    killed, killed_at = time.monotonic(), time.time()
    assert wait_until(lambda: row(monitor, "door")["restarts"] == 1 and door.frames_now >= 5, 60, 0.1), \
        monitor.status()
    back_s = time.monotonic() - killed
    assert door.pid != pid and frames(monitor, "yard") > before_other + 5
    names = [e["event"] for e in events(monitor.logs, "door")]
    assert names.index("worker_restarted") < len(names) - names[::-1].index("stream_back") - 1
    restarted = events(monitor.logs, "door", "worker_restarted")[-1]
    assert restarted["restarts"] == 1 and restarted["first_id"] == 1_000_001
    lines = log_lines(monitor.logs, "door")
    last_restart = max(i for i, r in enumerate(lines) if r.get("event") == "worker_restarted")
    assert ids_seen(lines[last_restart:]) and min(ids_seen(lines[last_restart:])) > 1_000_000
    assert back_s < 30, back_s
    steps = door.row["timeline"]          # the new worker's start-up, in seconds after its process began
    assert killed_at - 1 < steps["process"] < killed_at + back_s
    assert 0 < steps["constructor"] < steps["imports"] < steps["model_ready"] < steps["first_call"] \
        < steps["first_frame"] < back_s
    assert steps["stream_open"] < steps["first_call"]
    # the process ran at CAMERA_NICE from its start: every thread of it is there now (Ray's C++ threads, the
    # pipeline's, the decoder's, the handles' event loop); the import thread ran lower and is gone
    threads = thread_nices(door.pid)
    assert set(threads.values()) == {CAMERA_NICE}, threads


def test_the_model_replica_runs_at_the_model_nice_not_rays(monitor):
    """Ray lowers its workers to nice 15; the pose replica's threads (its Python threads and what they start:
    the runtime's inference threads, named after them "ray::...") keep MODEL_NICE, above the camera workers.
    Ray's own C++ I/O threads, started before it sets the value, stay at the node's."""
    import psutil

    replicas = [p for p in psutil.Process().children(recursive=True)
                if p.cmdline()[:1] and p.cmdline()[0].startswith("ray::ServeReplica:transpose-live-pose")]
    assert len(replicas) == 1, [p.cmdline()[:1] for p in psutil.Process().children(recursive=True)]
    pid = replicas[0].pid
    nices = thread_nices(pid)
    ours = {tid: nice for tid, nice in nices.items()
            if Path(f"/proc/{pid}/task/{tid}/comm").read_text().startswith("ray::")}
    expected = max(MODEL_NICE, os.nice(0))       # no process may raise its priority above its parent's
    assert len(ours) >= 2 and set(ours.values()) == {expected}, ours
    assert expected < CAMERA_NICE


def test_a_killed_model_replica_costs_no_camera_its_tracks(monitor, ray_session):
    replicas = [a for a in ray_session.util.list_named_actors(all_namespaces=True) if "PoseModel" in a["name"]]
    assert len(replicas) == 1
    ids_before = {c: ids_seen(log_lines(monitor.logs, c)[-3:]) for c in CAMERAS}
    counts = {c: (frames(monitor, c), row(monitor, c)["dropped"]) for c in CAMERAS}
    ray_session.kill(ray_session.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"]))
    assert wait_until(lambda: all(frames(monitor, c) >= counts[c][0] + 10 for c in CAMERAS), 90, 0.2), \
        monitor.status()
    for camera in CAMERAS:
        r = row(monitor, camera)
        assert r["state"] == "live" and r["error"] is None
        assert r["dropped"] > counts[camera][1]              # frames waited for the model: the old ones dropped
        assert ids_seen(log_lines(monitor.logs, camera)[-3:]) == ids_before[camera]   # the same person, same id
    assert monitor.model_stats().replicas == 2               # the restarted replica reports on its own


def test_stop_closes_every_camera(monitor):
    assert monitor.stop() is True
    assert not monitor.running()
    for camera in CAMERAS:
        assert events(monitor.logs, camera, "person_left")


def test_calls_arriving_during_a_forward_pass_share_the_next_one(ray_session, loud_weights):
    """A PoseModel replica whose first forward pass is held until all 6 calls have arrived (sent 50 ms apart,
    10x the batch wait): the 5 that waited share one forward pass, counted by the replica itself (with
    `@serve.batch` each call that came 5 ms after the previous batch was cut got a forward pass of its own)."""
    import threading

    import numpy as np
    from ray import serve

    from transpose_live.monitor.cluster.crops import cut_crops
    from transpose_live.monitor.cluster.services import PoseModel

    callers = 6

    class HeldPoseModel(PoseModel):      # defined here: Ray pickles it by value for the replica
        def __init__(self, options: dict, callers: int):
            super().__init__(options)
            self.callers, self.arrived, self.all_in = callers, 0, threading.Event()

        async def estimate(self, batch):
            self.arrived += 1
            if self.arrived >= self.callers:
                self.all_in.set()
            return await super().estimate(batch)

        def _forward(self, batches):
            assert self.all_in.wait(60), "not every call arrived"
            return super()._forward(batches)

    serve.start(proxy_location="Disabled")
    options = {"model": "tp_m_a4", "weights": str(loud_weights), "device": "cpu"}
    app = serve.deployment(name="HeldPoseModel", max_ongoing_requests=64,
                           ray_actor_options={"num_cpus": 0.5})(HeldPoseModel).bind(options, callers)
    handle = serve.run(app, name="held-pose", route_prefix=None)
    try:
        size = handle.info.remote().result()["image_size"]
        batch = cut_crops(np.zeros((120, 160, 3), np.uint8), None, None, size)
        responses = []
        for _ in range(callers):
            responses.append(handle.estimate.remote(batch))
            time.sleep(0.05)
        answers = [r.result(timeout_s=60) for r in responses]
    finally:
        serve.delete("held-pose")
    assert all(len(a.poses) == 1 for a in answers)
    last = max(answers, key=lambda a: a.forwards)
    assert last.crops == callers and last.forwards == 2, (last.forwards, last.crops)   # 1 crop, then 5 in one

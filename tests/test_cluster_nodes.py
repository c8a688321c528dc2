"""monitor --cluster across two Ray nodes (`ray.cluster_utils.Cluster`, 1 CPU each, both on 127.0.0.1): the
node a camera runs on is lost; its worker is restarted on the other node and its frames resume there."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

import rtsp_server
from helpers import RAY_MISSING, ray_on_loopback, wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                 reason=RAY_MISSING)]
LOOPBACK_PROBLEM = ray_on_loopback()     # before Ray is first imported in this process

CAMERAS = ("door", "yard")


def test_a_lost_node_moves_its_cameras(loud_weights, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    from transpose_live.live.spec import RunSpec
    from transpose_live.monitor.cameras import CameraConfig
    from transpose_live.monitor.cluster.driver import ClusterMonitor
    from transpose_live.monitor.runner import Outputs

    rtsp_server.require()
    if LOOPBACK_PROBLEM:
        pytest.skip(LOOPBACK_PROBLEM)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    monitor = None
    try:
        node = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        head = next(n["NodeID"] for n in ray.nodes() if n["NodeID"] != node.node_id)
        spec = RunSpec.from_options(model="tp_m_a4", weights=str(loud_weights), device="cpu", detector="none")
        with rtsp_server.RtspServer(paths=tuple(f"/{c}" for c in CAMERAS), size=(160, 120), fps=10) as server:
            cameras = [CameraConfig(c, server.url(f"/{c}")) for c in CAMERAS]
            monitor = ClusterMonitor(cameras, spec, Outputs(tmp_path), {"timeout": 5.0}, replicas=1,
                                     pose_cpus=0.5)
            monitor.start()
            assert wait_until(lambda: all(v.frames_now >= 5 for v in monitor.views), 90, 0.2), monitor.status()
            moved = [v for v in monitor.views if v.node_id == node.node_id]
            assert moved, "SPREAD put no camera on the second node"
            lost = time.monotonic()
            cluster.remove_node(node)
            assert wait_until(lambda: all(v.start >= 1 and v.node_id == head and v.frames_now >= 5 for v in moved),
                              120, 0.2), monitor.status()
            resumed_s = time.monotonic() - lost
            for view in moved:
                lines = [json.loads(x) for x in Path(tmp_path, f"{view.config.name}.jsonl").read_text().splitlines()]
                names = [r["event"] for r in lines if "event" in r]
                assert "worker_restarted" in names and "stream_back" in names[names.index("worker_restarted"):]
            assert all(r["state"] == "live" for r in monitor.status())
            assert monitor.stop() is True
            monitor = None
            print(f"cameras resumed on the other node {resumed_s:.1f} s after it was lost")
    finally:
        if monitor is not None:
            monitor.stop()
        ray.shutdown()
        cluster.shutdown()

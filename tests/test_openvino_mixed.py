"""OpenVINO's "mixed" precision (the stem and the head at fp32, the encoder at bf16;
model/backends/openvino_split.py): the cuts are exact at fp32 for every stem kind, mixed stays within fp16 noise of
the fp32 model on real
walkers, auto picks it only where the CPU has bf16, and the attention maps keep the fp32 graph."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.model import create_model
from transpose_live.model.backends import available_backends, create_backend

pytestmark = pytest.mark.skipif("openvino" not in available_backends("cpu"),
                                reason="needs the optional openvino package (and onnx)")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path_factory.getbasetemp() / "home"))


def _bf16() -> bool:
    from transpose_live.model.backends.openvino_backend import has_bf16

    return has_bf16()


def _small(preset: str):
    torch.manual_seed(0)
    model = create_model(preset, image_size=(64, 48)).eval()
    with torch.no_grad():
        model.final_layer.weight.mul_(200.0)      # real peaks instead of a flat random head
    return model


@pytest.mark.parametrize("preset", ["tp_m_a4", "tp_r_a3", "tp_h_s"])   # MobileNet, ResNet, HRNet stems
def test_the_three_parts_at_fp32_give_the_whole_graph(preset):
    """The cuts change nothing by themselves: stem -> encoder -> head, all compiled at f32, equal the one
    f32 graph, at any batch."""
    from transpose_live.model.backends.export import cached_onnx
    from transpose_live.model.backends.openvino_core import shared_core
    from transpose_live.model.backends.openvino_split import ChainedRequest, split_graph

    model = _small(preset)
    path = cached_onnx(model, False)
    core = shared_core()
    f32 = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    parts = split_graph(core, path)
    assert len(parts) == 3
    for before, after in zip(parts, parts[1:]):
        assert before.outputs[0].get_partial_shape() == after.inputs[0].get_partial_shape()
    # the encoder's input and output: d_model channels (after the 1x1 reduce; before the head)
    assert parts[0].outputs[0].get_partial_shape()[1].get_length() == model.config.d_model
    assert parts[1].outputs[0].get_partial_shape()[1].get_length() == model.config.d_model
    chained = ChainedRequest([core.compile_model(p, "CPU", f32).create_infer_request() for p in parts])
    whole = core.compile_model(str(path), "CPU", f32).create_infer_request()
    for batch in (1, 3):
        x = torch.randn(batch, 3, 64, 48, generator=torch.Generator().manual_seed(batch)).numpy()
        got = chained.run(x)
        want = whole.infer({0: x})[0]
        assert len(got) == 1 and got[0].shape == want.shape
        assert np.abs(got[0] - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_auto_is_mixed_only_on_a_cpu_with_bf16_and_mixed_is_refused_without(monkeypatch):
    from transpose_live.model.backends import openvino_backend

    model = _small("tp_m_a4")
    runner = create_backend("auto", model, "cpu")
    assert (runner.name, runner.precision) == ("openvino", "mixed" if _bf16() else "fp32")
    monkeypatch.setattr(openvino_backend, "has_bf16", lambda: False)
    assert create_backend("auto", model, "cpu").precision == "fp32"
    with pytest.raises(TransposeLiveError, match="precision mixed needs a CPU with bf16"):
        create_backend("openvino", model, "cpu", precision="mixed")
    with pytest.raises(TransposeLiveError, match="precision mixed runs on the openvino backend"):
        create_backend("onnxruntime", model, "cpu", precision="mixed")


def test_auto_falls_back_to_fp32_when_the_graph_cannot_be_cut(monkeypatch, caplog):
    from transpose_live.model.backends import openvino_backend

    def uncuttable(core, path):
        raise TransposeLiveError("cannot cut the pose graph after its reduce layer (0 candidate tensors)")

    monkeypatch.setattr(openvino_backend, "has_bf16", lambda: True)
    monkeypatch.setattr(openvino_backend, "split_graph", uncuttable)
    model = _small("tp_m_a4")
    with caplog.at_level(logging.WARNING, logger="transpose_live"):
        runner = create_backend("auto", model, "cpu")
    assert (runner.name, runner.precision) == ("openvino", "fp32") and "runs at fp32" in caplog.text
    x = torch.randn(2, 3, 64, 48)
    with torch.inference_mode():
        got = torch.from_numpy(runner(x.numpy())[0])
        assert (got - model(x)).abs().max() <= 1e-4 * max(1.0, model(x).abs().max().item())


@pytest.mark.skipif(not _bf16(), reason="needs a CPU with bf16 instructions")
def test_mixed_stays_within_fp16_noise_of_the_fp32_model_on_real_walkers():
    """The shipped model on four walkers of the sample clip: the heatmaps move about as much as the same
    model's in fp16 (torch, every layer) do (measured: 1.5x fp16's here, 0.5x over coco_mini's 86 persons;
    bf16 keeps 3 fewer mantissa bits than fp16, on the encoder only), the decoded keypoints by under 0.5 px,
    the joint scores by < 0.01; the attention maps come from the fp32 graph (within 1e-3)."""
    from transpose_live.media.sources import FileSource
    from transpose_live.pose.estimator import PoseEstimator

    from helpers import REPO

    with FileSource(REPO / "samples" / "pedestrians.mp4") as source:
        frame = next(iter(source)).image
    boxes = [[184.1, 144.3, 24.1, 62.8], [563.1, 206.4, 26.4, 82.1], [682.4, 211.2, 44.1, 84.4],
             [482.7, 340.2, 27.7, 78.5]]
    ref = PoseEstimator("default", device="cpu", backend="torch")
    est = PoseEstimator("default", device="cpu")                    # auto -> openvino, mixed here
    assert (est.backend.name, est.backend.precision) == ("openvino", "mixed")

    x = ref.crop_inputs(ref.prepare(frame, boxes))
    with torch.inference_mode():
        want = ref.model(x)
        half = ref.model.half()(x.half()).float()
        ref.model.float()
    fp16_noise = (half - want).abs().max().item()
    got = torch.from_numpy(est.backend(np.asarray(x))[0])
    assert (got - want).abs().max().item() <= max(3 * fp16_noise, 1e-3)

    for attention in (False, True):
        w = ref.estimate(frame, boxes, attention=attention)
        g = est.estimate(frame, boxes, attention=attention)
        assert max(p.scores.max() for p in w) > 0.3                # real peaks
        for gp, wp in zip(g, w, strict=True):
            assert np.linalg.norm(gp.keypoints - wp.keypoints, axis=1).max() < 0.5
            assert np.abs(gp.scores - wp.scores).max() < 0.01
            if attention:
                assert np.abs(gp.attention - wp.attention).max() <= 1e-3

"""The ONNX Runtime / OpenVINO backends against the plain fp32 torch model: heatmaps within 1e-4,
decoded keypoints within 0.5 px, attention maps within 1e-3; the export cache; the export command."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.model import create_model
from transpose_live.model.backends import available_backends, create_backend, resolve_backend
from transpose_live.model.backends.export import cached_onnx, onnx_cache_dir

from helpers import main_runner, preset_of, shared_path

ONNX_BACKENDS = [b for b in available_backends("cpu") if b != "torch"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Exports go to a cache of this test session, never the user's."""
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path_factory.getbasetemp() / "home"))


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = create_model("tp_m_a4", image_size=(64, 48)).eval()
    # random init leaves the heatmaps near 0 (head std 1e-3); a bias gives them real peaks to decode
    with torch.no_grad():
        model.final_layer.weight.mul_(200.0)
    return model


def _inputs(batch: int, size=(64, 48)) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(batch))


@pytest.mark.parametrize("backend", ONNX_BACKENDS)
def test_heatmaps_and_every_attention_map_match_torch_at_any_batch(backend, tiny_model):
    runner = create_backend(backend, tiny_model, "cpu", precision="fp32")   # mixed: test_openvino_mixed.py
    for batch in (1, 5, 2):          # one graph, a free batch axis
        x = _inputs(batch)
        with torch.inference_mode():
            ref = tiny_model(x)
            ref_att, ref_maps = tiny_model(x, return_attention=True)
        hm, maps = runner(x.numpy(), attention=False)
        assert runner.array_type == "numpy" and isinstance(hm, np.ndarray)   # numpy in and out: no torch needed
        hm = torch.from_numpy(hm)
        assert maps is None and hm.shape == ref.shape
        assert (hm - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max().item())
        hm_att, maps = runner(x.numpy(), attention=True)
        hm_att, maps = torch.from_numpy(hm_att), [torch.from_numpy(m) for m in maps]
        assert (hm_att - ref_att).abs().max() <= 1e-4 * max(1.0, ref_att.abs().max().item())
        assert len(maps) == len(ref_maps) == tiny_model.config.n_layers
        for got, want in zip(maps, ref_maps):
            assert got.shape == want.shape and (got - want).abs().max() <= 1e-3


@pytest.fixture(scope="module")
def pedestrians():
    """The README's sample clip's first frame and four of its walkers (the SSD's boxes, written down)."""
    from transpose_live.media.sources import FileSource

    from helpers import REPO

    with FileSource(REPO / "samples" / "pedestrians.mp4") as source:
        frame = next(iter(source)).image
    return frame, [[184.1, 144.3, 24.1, 62.8], [563.1, 206.4, 26.4, 82.1], [682.4, 211.2, 44.1, 84.4],
                   [482.7, 340.2, 27.7, 78.5]]


@pytest.mark.parametrize("backend", ONNX_BACKENDS)
def test_estimator_keypoints_within_half_a_pixel(backend, pedestrians):
    """The shipped model on real walkers (a random model's flat heatmaps would make argmax ties)."""
    from transpose_live.pose.estimator import PoseEstimator

    frame, boxes = pedestrians
    ref_est = PoseEstimator("default", device="cpu", backend="torch", flip=True)
    est = PoseEstimator("default", device="cpu", backend=backend, flip=True, precision="fp32")
    assert est.backend.name == backend and isinstance(est.model, torch.nn.Module)   # .model stays torch
    for attention in (False, True):
        want = ref_est.estimate(frame, boxes, attention=attention)
        got = est.estimate(frame, boxes, attention=attention)
        assert len(got) == len(want) == 4
        assert max(p.scores.max() for p in want) > 0.3          # real peaks, not a flat map
        for g, w in zip(got, want):
            assert np.abs(g.keypoints - w.keypoints).max() <= 0.5
            assert np.abs(g.scores - w.scores).max() <= 1e-3
            if attention:
                assert np.abs(g.attention - w.attention).max() <= 1e-3
            else:
                assert g.attention is None


def test_auto_is_the_first_available_and_cpu_backends_refuse_cuda():
    assert resolve_backend("auto", "cpu") == available_backends("cpu")[0]
    assert available_backends("cuda") == ["torch"] and resolve_backend("auto", "cuda") == "torch"
    with pytest.raises(TransposeLiveError, match="runs on the CPU"):
        resolve_backend("onnxruntime", "cuda")
    with pytest.raises(TransposeLiveError, match="unknown backend"):
        resolve_backend("tensorrt", "cpu")


def test_a_module_passed_in_stays_on_torch_under_auto(tiny_model):
    from transpose_live.pose.estimator import PoseEstimator

    assert PoseEstimator(tiny_model, device="cpu").backend.name == "torch"


@pytest.mark.skipif(not ONNX_BACKENDS, reason="no ONNX backend installed")
def test_auto_runs_on_torch_when_the_export_cannot_be_cached_and_a_named_backend_says_why(tiny_model, tmp_path,
                                                                                         monkeypatch, caplog):
    blocker = tmp_path / "home"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(blocker))
    with caplog.at_level("WARNING", logger="transpose_live"):
        runner = create_backend("auto", tiny_model, "cpu")
    assert runner.name == "torch" and "runs on torch" in caplog.text
    with pytest.raises(TransposeLiveError, match="ONNX export to .* failed"):
        create_backend(ONNX_BACKENDS[0], tiny_model, "cpu")


def test_an_interrupted_export_leaves_no_temporary_file(tiny_model, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt                  # Ctrl-C during the first export

    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(torch.onnx, "export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cached_onnx(tiny_model)
    assert list(onnx_cache_dir().iterdir()) == []


@pytest.mark.skipif(not ONNX_BACKENDS, reason="no ONNX backend installed")
def test_the_cache_key_names_the_model_code(tiny_model, monkeypatch):
    from transpose_live.model.backends import export

    path = cached_onnx(tiny_model)
    monkeypatch.setattr(export, "model_code_hash", lambda: "f" * 64)
    assert cached_onnx(tiny_model) != path           # changed model code: another graph, exported anew


@pytest.mark.skipif("onnxruntime" not in ONNX_BACKENDS, reason="onnxruntime not installed")
def test_the_export_is_cached_per_weights_and_a_corrupt_file_is_rebuilt(tiny_model):
    path = cached_onnx(tiny_model)
    assert path.parent == onnx_cache_dir() and "64x48" in path.name and "fast" in path.name
    stamp = path.stat().st_mtime_ns
    assert cached_onnx(tiny_model) == path and path.stat().st_mtime_ns == stamp     # reused, not re-exported
    assert cached_onnx(tiny_model, attention=True) != path
    assert not list(path.parent.glob("*.tmp"))                                        # no leftovers

    other = create_model("tp_m_a4", image_size=(64, 48)).eval()
    with torch.no_grad():
        other.final_layer.bias.add_(1.0)
    assert cached_onnx(other) != path                                                  # keyed by the weights

    path.write_bytes(b"not an onnx graph")
    runner = create_backend("onnxruntime", tiny_model, "cpu")       # loads, fails, exports again, loads
    with torch.inference_mode():
        ref = tiny_model(_inputs(2))
    got = torch.from_numpy(runner(_inputs(2).numpy())[0])
    assert (got - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max().item())
    assert path.stat().st_size > 1000


@pytest.mark.skipif("onnxruntime" not in ONNX_BACKENDS, reason="onnxruntime not installed")
def test_export_command_writes_a_graph_equal_to_torch(tmp_path, tiny_weights, monkeypatch, capsys):
    import onnxruntime as ort

    from transpose_live.model import load_model

    run = main_runner(monkeypatch, capsys, "export")
    out = tmp_path / "tiny.onnx"
    code, stdout, err = run(["--onnx", out, "--model", "tp_m_a4", "--weights", tiny_weights, "--dynamic-batch",
                             "--attention"])
    assert code == 0, err
    assert stdout.strip() == str(out) and "heatmaps max |diff|" in err
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["heatmaps"] + [f"attention_{i}" for i in range(4)]
    model = load_model("tp_m_a4", tiny_weights)
    x = _inputs(3)
    heatmaps, *maps = session.run(None, {"input": x.numpy()})
    with torch.inference_mode():
        ref, ref_maps = model(x, return_attention=True)
    assert np.abs(heatmaps - ref.numpy()).max() <= 1e-4
    assert all(np.abs(m - r.numpy()).max() <= 1e-3 for m, r in zip(maps, ref_maps))

    fixed = tmp_path / "fixed.onnx"
    code, _, err = run(["--onnx", fixed, "--model", "tp_m_a4", "--weights", tiny_weights, "--batch", "2"])
    assert code == 0, err
    shape = ort.InferenceSession(str(fixed), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    assert shape == [2, 3, 64, 48]


def test_export_command_refuses_stdout_in_one_line(monkeypatch, capsys):
    code, _, err = main_runner(monkeypatch, capsys, "export")(["--onnx", "-"])
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "needs a file name" in err


def test_eager_baseline_is_nn_multihead_attention_with_the_same_outputs(tiny_model):
    from transpose_live.bench.models import eager_baseline
    from transpose_live.model.encoder import EncoderLayer

    eager = eager_baseline(tiny_model, torch.device("cpu"))
    layers = [m for m in eager.modules() if isinstance(m, EncoderLayer)]
    assert layers and not any(layer.fused for layer in layers)
    assert all(m.fused for m in tiny_model.modules() if isinstance(m, EncoderLayer))   # the original untouched
    calls = []
    handle = layers[0].self_attn.register_forward_hook(lambda *a: calls.append(1))
    x = _inputs(2)
    with torch.inference_mode():
        out = eager(x)
        ref = tiny_model(x)
    handle.remove()
    assert calls == [1]                                   # the no-maps path went through nn.MultiheadAttention
    assert (out - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())


# ------------------------------------------------------------------------- the authors' outputs

@pytest.mark.shared
@pytest.mark.parametrize("backend", ONNX_BACKENDS)
def test_backends_reproduce_the_authors_outputs(backend):
    """tp_r_a3 (reference checkpoint) through the exported graphs: heatmaps within 1e-4 of the authors',
    the stored attention rows within 1e-3. (tp_h_s's full maps are 75 MB per layer; its fast graph only.)"""
    for name, with_maps in (("tp_r_a3_seed0.pt", True), ("tp_h_s_seed0.pt", False)):
        ref = torch.load(shared_path("reference", name), weights_only=True)
        state = {k: v.float() if v.is_floating_point() else v for k, v in ref["state_dict"].items()}
        model = create_model(preset_of(ref), weights=state).eval()
        runner = create_backend(backend, model, "cpu", precision="fp32")
        heatmaps, maps = runner(ref["input"].numpy(), attention=with_maps)
        assert (torch.from_numpy(heatmaps) - ref["heatmaps"]).abs().max() <= 1e-4
        if with_maps:
            rows = ref["attention_query_index"]
            for full, stored in zip((torch.from_numpy(m) for m in maps), ref["attentions"], strict=True):
                assert (full[:, rows, :] - stored).abs().max() <= 1e-3


def _has_bf16() -> bool:
    if "openvino" not in ONNX_BACKENDS:
        return False
    from transpose_live.model.backends.openvino_core import shared_core

    return "BF16" in shared_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_bf16_is_openvinos_only_and_refused_elsewhere_in_one_clear_error():
    from transpose_live.live.spec import RunSpec

    with pytest.raises(TransposeLiveError, match="bf16 runs on the openvino backend"):
        RunSpec(backend="onnxruntime", precision="bf16").validate()
    with pytest.raises(TransposeLiveError, match="unknown precision"):
        RunSpec(precision="int4").validate()
    assert RunSpec(precision="BF16").validate().precision == "bf16"


@pytest.mark.skipif(not _has_bf16(), reason="needs openvino and a CPU with bf16 instructions")
def test_openvino_bf16_stays_near_the_fp32_model_on_real_walkers(pedestrians):
    from transpose_live.pose.estimator import PoseEstimator

    frame, boxes = pedestrians
    want = PoseEstimator("default", device="cpu", backend="torch").estimate(frame, boxes)
    est = PoseEstimator("default", device="cpu", precision="bf16")          # auto -> openvino
    assert (est.backend.name, est.backend.precision) == ("openvino", "bf16")
    got = est.estimate(frame, boxes)
    scores = np.concatenate([w.scores for w in want])
    moved = np.concatenate([np.linalg.norm(g.keypoints - w.keypoints, axis=1) for g, w in zip(got, want)])
    # bf16 moves the heatmaps by up to ~0.02: confident joints stay within a few pixels of fp32's
    assert np.median(moved) <= 1.0 and moved[scores > 0.5].max() <= 4.0
    assert np.abs(np.concatenate([g.scores for g in got]) - scores).max() <= 0.05


@pytest.mark.skipif("openvino" not in ONNX_BACKENDS, reason="needs the optional openvino package")
def test_openvino_backends_dropped_out_of_order_leave_signals_working(tmp_path):
    """OpenVINO's CPU plugin swaps the thread's signal stack per engine and puts back the previous one when it
    goes; two backends dropped first-made-first left a freed stack behind, and the next Python signal handler
    (Ctrl-C in the window) killed the process with SIGSEGV. Each backend now shares one engine."""
    import subprocess
    import sys

    script = """
import gc, os, signal, time, torch
from transpose_live.model.backends.openvino_backend import OpenVinoBackend
from transpose_live.model import create_model
model = create_model("tp_m_a4", image_size=(64, 48)).eval()
first = OpenVinoBackend(model, threads=1)
second = OpenVinoBackend(model, threads=1)
del first; gc.collect()
del second; gc.collect()
caught = []
signal.signal(signal.SIGINT, lambda *_: caught.append(1))
os.kill(os.getpid(), signal.SIGINT)
time.sleep(0.2)
print("caught", len(caught))
"""
    env = {**os.environ, "TRANSPOSE_LIVE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", script], capture_output=True, text=True,
                          env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "caught 1" in done.stdout

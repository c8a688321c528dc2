"""TransPose models: the paper's parameter counts, both attention paths, any input size, the authors' outputs."""

from __future__ import annotations

import pytest
import torch

from transpose_live.errors import CheckpointError
from transpose_live.model import create_model
from transpose_live.model.encoder import sine_position_embedding
from transpose_live.model.weights import load_strict, read_checkpoint

from helpers import SHARED, preset_of, shared_path

PAPER_PARAMS = {"tp_r_a3": 5_195_345, "tp_r_a4": 5_985_105, "tp_h_s": 8_019_281,
                "tp_h_a4": 17_306_129, "tp_h_a6": 17_455_697}


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_parameter_counts_match_the_authors(name):
    model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == PAPER_PARAMS[name]


@pytest.mark.parametrize("name", ["tp_r_a3s", "tp_r_a3", "tp_h_s", "tp_m_a4"])
@pytest.mark.parametrize("size", [(128, 96), (192, 144)])
def test_fast_and_attention_paths_agree_at_any_size(name, size):
    torch.manual_seed(0)
    model = create_model(name, image_size=size).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        fast = model(x)
        slow, maps = model(x, return_attention=True)
    h, w = size
    assert fast.shape == (2, 17, h // 4, w // 4)
    assert torch.allclose(fast, slow, atol=1e-5)
    n = (h // model.config.stride) * (w // model.config.stride)
    assert len(maps) == model.config.n_layers
    assert all(m.shape == (2, n, n) for m in maps)
    assert torch.allclose(maps[-1].sum(-1), torch.ones(2, n), atol=1e-4)   # rows are softmax distributions


def test_other_sizes_recompute_the_sine_embedding():
    model = create_model("tp_r_a3").eval()
    assert model.pos_embedding.shape == (768, 1, 256)
    pe = model._position_embedding(48, 36, torch.zeros(1))
    assert torch.allclose(pe[0], sine_position_embedding(48, 36, 256)[:, 0])
    # the stored one is used as is at the training size (released weights carry a rounded copy)
    with torch.no_grad():
        model.pos_embedding.add_(1.0)
    assert torch.equal(model._position_embedding(32, 24, torch.zeros(1))[0], model.pos_embedding[:, 0])


def test_sine_embedding_layout_is_y_then_x():
    pe = sine_position_embedding(4, 3, 8)[:, 0]          # (12, 8)
    grid = pe.view(4, 3, 8)
    assert torch.allclose(grid[:, 0, :4], grid[:, 2, :4])   # first half depends on y only
    assert torch.allclose(grid[0, :, 4:], grid[3, :, 4:])   # second half on x only


def test_strict_loading_names_renamed_and_misshaped_keys(tmp_path):
    sd = create_model("tp_r_a3").state_dict()
    renamed = dict(sd)
    renamed["reduce.weightX"] = renamed.pop("reduce.weight")
    with pytest.raises(CheckpointError, match=r"missing keys: reduce\.weight.*unexpected keys: reduce\.weightX"):
        load_strict(create_model("tp_r_a3"), renamed)
    bad = dict(sd)
    bad["final_layer.weight"] = torch.zeros(16, 256, 1, 1)
    with pytest.raises(CheckpointError, match=r"shape mismatch: final_layer\.weight \(16, 256, 1, 1\)"):
        load_strict(create_model("tp_r_a3"), bad)


def test_checkpoint_wrappers_are_unwrapped(tmp_path):
    sd = create_model("tp_m_a4").state_dict()
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, path)
    model = create_model("tp_m_a4", weights=path)
    assert torch.equal(model.state_dict()["reduce.weight"], sd["reduce.weight"])


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_unreadable_checkpoints_raise_one_clear_error(tmp_path, content):
    path = tmp_path / "bad.pth"
    if content is None:   # truncated real checkpoint
        torch.save(create_model("tp_m_a4").state_dict(), path)
        path.write_bytes(path.read_bytes()[:5000])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pth"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pth")


def _reference_files():
    ref = SHARED / "reference"
    return sorted(ref.glob("tp_*.pt")) if ref.is_dir() else []


@pytest.mark.shared
@pytest.mark.parametrize("path", _reference_files() or [None], ids=lambda p: p.name if p else "absent")
def test_reproduces_the_authors_outputs(path):
    if path is None:
        shared_path("reference", "tp_r_a3_seed0.pt")
    torch.set_num_threads(2)
    ref = torch.load(path, weights_only=True)
    name = preset_of(ref)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ref["state_dict"].items()}
    model = create_model(name, weights=state).eval()
    assert sum(p.numel() for p in model.parameters()) == ref["param_count"]
    with torch.no_grad():
        fast = model(ref["input"])
        slow, maps = model(ref["input"], return_attention=True)
    assert (fast - ref["heatmaps"]).abs().max() <= 1e-5
    assert (slow - ref["heatmaps"]).abs().max() <= 1e-5
    rows = ref["attention_query_index"]
    for full, stored, colsum in zip(maps, ref["attentions"], ref["attention_colsum"], strict=True):
        assert (full[:, rows, :] - stored).abs().max() <= 1e-7
        assert torch.allclose(full.sum(dim=1), colsum, atol=1e-5, rtol=1e-4)

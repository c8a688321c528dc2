"""ModelSource: a named model's config and identity without building it, and the cached export found by it."""

from __future__ import annotations

import importlib.util

import pytest

from transpose_live.model import load_model
from transpose_live.model.backends.export import cached_onnx
from transpose_live.model.loading import model_source


def test_a_named_model_is_known_without_building_it(tiny_weights):
    source = model_source("tp_m_a4", tiny_weights, (64, 48))
    assert not source.built                                        # config and identity need no module
    assert source.config == load_model("tp_m_a4", tiny_weights, (64, 48)).config
    assert source.identity() == model_source("tp_m_a4", tiny_weights, (64, 48)).identity()
    assert source.identity() != model_source("tp_m_a4", tiny_weights, (128, 96)).identity()   # keyed by size
    assert not source.built
    assert source.module() is source.module() and source.built     # built once, kept


def test_without_a_size_the_checkpoint_is_read_at_once(tiny_weights):
    source = model_source("tp_m_a4", tiny_weights)                  # the trained size is in the checkpoint
    assert source.built and source.config.image_size == (64, 48)


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="needs the onnx package")
def test_a_cached_export_is_found_without_building_the_module(tiny_weights, monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path))
    path = cached_onnx(model_source("tp_m_a4", tiny_weights, (64, 48)))    # exports: builds the module
    again = model_source("tp_m_a4", tiny_weights, (64, 48))
    monkeypatch.setattr(again, "_build", lambda: pytest.fail("the module was built for a cached export"))
    assert cached_onnx(again) == path and not again.built
    other = tmp_path / "other.pth"
    other.write_bytes(tiny_weights.read_bytes() + b"\0")                    # another file: another identity
    assert model_source("tp_m_a4", other, (64, 48)).identity() != again.identity()

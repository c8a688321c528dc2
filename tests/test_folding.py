"""Batch norm folded into the convolutions: every BN of every backbone folded, the same heatmaps, the model
given left as it was, and where the estimator uses it (the torch backend of a model it built, the device path)."""

from __future__ import annotations

import copy

import pytest
import torch

from transpose_live.model import create_model
from transpose_live.model.folding import count_batchnorms, fold_batchnorm


def _model_with_real_statistics(name, size):
    """Random weights whose batch norms are not the identity (fresh BNs fold to almost nothing)."""
    torch.manual_seed(0)
    model = create_model(name, image_size=size).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
        if isinstance(m, torch.nn.ConvTranspose2d):   # the head's init (std 0.001) leaves almost no signal
            torch.nn.init.normal_(m.weight, std=0.05)
    torch.nn.init.normal_(model.final_layer.weight, std=0.05)
    return model


@pytest.mark.parametrize("name,size", [("tp_r_a4", (64, 48)), ("tp_h_s", (64, 48)), ("tp_m_a4", (64, 48))])
def test_every_batch_norm_is_folded_and_the_heatmaps_stay(name, size):
    model = _model_with_real_statistics(name, size)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded, n = fold_batchnorm(model)
    assert n == count_batchnorms(model) > 0 and count_batchnorms(folded) == 0
    x = torch.randn(3, 3, *size)
    with torch.no_grad():
        want, got = model(x), folded(x)
        # the backbone's features, where the BNs are: random weights give them a strong signal (the heatmaps
        # of a random transformer hardly depend on the input)
        stem, folded_stem = model._stem.forward_stem(model, x), folded._stem.forward_stem(folded, x)
        # the batch norms dropped instead of folded: what a wrong fold would look like
        dropped = copy.deepcopy(model)
        for m in list(dropped.modules()):
            for k, child in list(m._modules.items()):
                if isinstance(child, torch.nn.BatchNorm2d):
                    m._modules[k] = torch.nn.Identity()
        other = dropped._stem.forward_stem(dropped, x)
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    assert (folded_stem - stem).abs().max() <= 1e-5 * stem.abs().max()
    assert (other - stem).abs().max() > 0.01 * stem.abs().max()     # the BNs matter: the check can fail
    # the original keeps its layout and numbers (its state dict is the authors')
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_estimator_folds_only_models_it_built(tiny_weights):
    from transpose_live.pose.estimator import PoseEstimator

    built = PoseEstimator(model="tp_m_a4", weights=str(tiny_weights), device="cpu", backend="torch")
    assert count_batchnorms(built.backend._fast) == 0 and count_batchnorms(built.model) > 0
    passed = PoseEstimator(model=built.model, device="cpu", backend="torch")   # e.g. a model in training
    assert passed.backend._fast is passed.model
    x = torch.randn(2, 3, *built.config.image_size)
    with torch.no_grad():
        a, b = built.backend(x)[0], passed.backend(x)[0]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)

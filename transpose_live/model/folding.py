"""Batch norm folded into the convolution before it, for inference on the device path.

On the GPU the batch norms of an eval-mode model are separate kernels: 20 % of tp_r_a4's fp16 time on an
H200 (docs/gpu.md, the profile). A BN after a convolution is an affine map per output channel, so it can
live in the convolution's weights and bias instead: w' = w * g / sqrt(var + eps), b' = (b - mean) * g /
sqrt(var + eps) + beta. The same function up to rounding (the fold is computed in fp64 and cast back).

Pairs found: a convolution (or transposed convolution) followed by a BatchNorm2d in an nn.Sequential, and
the attribute pairs `conv{k}` / `bn{k}` of one module that the models apply as `bn{k}(conv{k}(x))` (ResNet
and HRNet blocks, the stems). The folded BN becomes nn.Identity. The model given is not changed: its
state dict stays the authors' layout; a folded copy is returned.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


@torch.no_grad()
def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("a batch norm without running statistics is not folded")
    dtype = conv.weight.dtype
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)          # (C_out,)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    # output channels: dim 0 of a Conv2d weight (out, in/g, k, k); dim 1 of a ConvTranspose2d's (in, out/g, k, k)
    shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
    if isinstance(conv, nn.ConvTranspose2d) and conv.groups != 1:
        raise ValueError("grouped transposed convolutions are not folded")
    conv.weight.copy_((conv.weight.double() * scale.reshape(shape)).to(dtype))
    new_bias = ((bias - bn.running_mean.double()) * scale + bn.bias.double()).to(dtype)
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias, requires_grad=False)
    else:
        conv.bias.copy_(new_bias)


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """(a copy of `model` in eval mode with every foldable BN folded, the number folded)."""
    model = copy.deepcopy(model).eval()
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            children = list(module._modules.items())
            for (_, conv), (bn_name, bn) in zip(children, children[1:]):
                if isinstance(conv, _CONVS) and isinstance(bn, nn.BatchNorm2d) and \
                        bn.num_features == conv.out_channels and bn.track_running_stats:
                    _fold_into(conv, bn)
                    module._modules[bn_name] = nn.Identity()
                    folded += 1
        for name, norm in list(module._modules.items()):
            match = re.fullmatch(r"bn(\d+)", name)
            partner = module._modules.get(f"conv{match.group(1)}") if match else None
            if isinstance(norm, nn.BatchNorm2d) and isinstance(partner, _CONVS) and \
                    norm.num_features == partner.out_channels and norm.track_running_stats:
                _fold_into(partner, norm)
                module._modules[name] = nn.Identity()
                folded += 1
    return model, folded


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


__all__ = ["fold_batchnorm", "count_batchnorms"]

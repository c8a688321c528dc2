"""ResNet-S: ResNet-50's conv1/bn1/layer1/layer2 (stride 8, 512 channels), as in TransPose-R."""

from __future__ import annotations

from typing import Protocol, cast

import torch
from torch import nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def make_layer(block, inplanes: int, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion),
        )
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class _Parts(Protocol):
    """What `ResNetS.attach` adds to a module."""

    conv1: nn.Conv2d
    bn1: nn.BatchNorm2d
    relu: nn.ReLU
    maxpool: nn.MaxPool2d
    layer1: nn.Sequential
    layer2: nn.Sequential


class ResNetS(nn.Module):
    """Registered directly on the TransPose module (keys conv1, bn1, layer1, layer2), so this is a mixin-like
    builder: `attach(module)` adds the parts, `forward_stem(module, x)` runs them."""

    out_channels = 512
    stride = 8

    @staticmethod
    def attach(m: nn.Module) -> None:
        m.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        m.bn1 = nn.BatchNorm2d(64)
        m.relu = nn.ReLU(inplace=True)
        m.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        m.layer1 = make_layer(Bottleneck, 64, 64, 3)
        m.layer2 = make_layer(Bottleneck, 256, 128, 4, stride=2)

    @staticmethod
    def forward_stem(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        p = cast(_Parts, m)   # the parts attach() added; nn.Module.__getattr__ reads them as Tensor | Module
        x = p.maxpool(p.relu(p.bn1(p.conv1(x))))   # (B, 64, H/4, W/4)
        return p.layer2(p.layer1(x))                # (B, 512, H/8, W/8)

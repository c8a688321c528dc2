"""HRNet-S: HRNet's stem + layer1 + stage2 + stage3 (stride 4), as in TransPose-H (W32 or W48).

Module names follow the official code (conv1, bn1, conv2, bn2, layer1, transition1, stage2, transition2,
stage3) so released checkpoints load strictly.
"""

from __future__ import annotations

from typing import Protocol, cast

import torch
from torch import nn

from transpose_live.model.resnet_s import Bottleneck, make_layer


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then every branch fused into every output resolution."""

    def __init__(self, channels: list[int], num_blocks: int, multi_scale_output: bool = True):
        super().__init__()
        self.num_branches = len(channels)
        self.multi_scale_output = multi_scale_output
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c, c) for _ in range(num_blocks)]) for c in channels
        )
        self.fuse_layers = self._make_fuse_layers(channels) if self.num_branches > 1 else None
        self.relu = nn.ReLU(inplace=True)

    def _make_fuse_layers(self, ch: list[int]) -> nn.ModuleList:
        n_out = self.num_branches if self.multi_scale_output else 1
        fuse = []
        for i in range(n_out):
            row: list[nn.Module | None] = []
            for j in range(self.num_branches):
                if j > i:   # lower resolution: 1x1 conv then nearest upsampling
                    row.append(nn.Sequential(
                        nn.Conv2d(ch[j], ch[i], 1, bias=False), nn.BatchNorm2d(ch[i]),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))
                elif j == i:
                    row.append(None)
                else:       # higher resolution: a chain of stride-2 3x3 convs
                    convs = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        out_c = ch[i] if last else ch[j]
                        parts = [nn.Conv2d(ch[j], out_c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out_c)]
                        if not last:
                            parts.append(nn.ReLU(inplace=True))
                        convs.append(nn.Sequential(*parts))
                    row.append(nn.Sequential(*convs))
            fuse.append(nn.ModuleList(_with_gaps(row)))
        return nn.ModuleList(fuse)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, fuse_row in enumerate(self.fuse_layers):
            row = cast(nn.ModuleList, fuse_row)   # each row is a ModuleList (_make_fuse_layers)
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


def _with_gaps(modules: list[nn.Module | None]) -> list[nn.Module]:
    """`modules` as nn.ModuleList's argument: the official layout keeps None where a branch passes through
    (no checkpoint keys there), which ModuleList stores as an empty slot although torch's stubs say Module only."""
    return cast("list[nn.Module]", modules)


def make_transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(None if c == pre[i] else nn.Sequential(
                nn.Conv2d(pre[i], c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
        else:
            convs = []
            for j in range(i + 1 - len(pre)):
                out_c = c if j == i - len(pre) else pre[-1]
                convs.append(nn.Sequential(
                    nn.Conv2d(pre[-1], out_c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out_c),
                    nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*convs))
    return nn.ModuleList(_with_gaps(layers))


def make_stage(channels: list[int], num_modules: int, num_blocks: int, multi_scale_output: bool) -> nn.Sequential:
    mods = [
        HighResolutionModule(channels, num_blocks, multi_scale_output or i < num_modules - 1)
        for i in range(num_modules)
    ]
    return nn.Sequential(*mods)


class _Parts(Protocol):
    """What `HRNetS.attach` adds to a module."""

    conv1: nn.Conv2d
    bn1: nn.BatchNorm2d
    conv2: nn.Conv2d
    bn2: nn.BatchNorm2d
    relu: nn.ReLU
    layer1: nn.Sequential
    transition1: nn.ModuleList
    stage2: nn.Sequential
    transition2: nn.ModuleList
    stage3: nn.Sequential


class HRNetS:
    """Adds the HRNet-S parts to a module under the official names; `forward_stem` runs them."""

    stride = 4

    @staticmethod
    def attach(m: nn.Module, width: int, stage2_modules: int = 1, stage3_modules: int = 4) -> int:
        m.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        m.bn1 = nn.BatchNorm2d(64)
        m.conv2 = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
        m.bn2 = nn.BatchNorm2d(64)
        m.relu = nn.ReLU(inplace=True)
        m.layer1 = make_layer(Bottleneck, 64, 64, 4)
        c2 = [width, 2 * width]
        c3 = [width, 2 * width, 4 * width]
        m.transition1 = make_transition([256], c2)
        m.stage2 = make_stage(c2, stage2_modules, 4, True)
        m.transition2 = make_transition(c2, c3)
        m.stage3 = make_stage(c3, stage3_modules, 4, False)
        return width   # channels of the stride-4 output

    @staticmethod
    def forward_stem(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        p = cast(_Parts, m)   # the parts attach() added; nn.Module.__getattr__ reads them as Tensor | Module
        x = p.relu(p.bn1(p.conv1(x)))
        x = p.relu(p.bn2(p.conv2(x)))
        x = p.layer1(x)                                          # (B, 256, H/4, W/4)
        xs = [t(x) if t is not None else x for t in p.transition1]
        ys = p.stage2(xs)
        xs = [t(ys[-1]) if t is not None else ys[i] for i, t in enumerate(p.transition2)]
        return p.stage3(xs)[0]                                   # (B, W, H/4, W/4)

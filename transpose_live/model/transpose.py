"""TransPose: CNN stem → 1x1 reduce → attention encoder (sine PE on q/k) → heatmap head."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from transpose_live.model.config import ModelConfig, get_config
from transpose_live.model.encoder import TransformerEncoder, sine_position_embedding
from transpose_live.model.hrnet_s import HRNetS
from transpose_live.model.mobilenet_s import MobileNetS
from transpose_live.model.resnet_s import ResNetS
from transpose_live.model.weights import load_strict, read_checkpoint

_STEMS: dict[str, type[ResNetS] | type[HRNetS] | type[MobileNetS]] = {
    "resnet_s": ResNetS, "hrnet_s": HRNetS, "mobilenet_s": MobileNetS,
}


class TransPose(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        stem = _STEMS[config.backbone]
        if issubclass(stem, HRNetS):   # config.backbone == "hrnet_s"
            stem_channels = stem.attach(self, config.hrnet_width)
        else:
            stem.attach(self)
            stem_channels = stem.out_channels
        self._stem = stem
        d = config.d_model
        self.reduce = nn.Conv2d(stem_channels, d, 1, bias=False)
        gh, gw = self._stored_grid = config.token_grid
        # stored like the released checkpoints: a fixed (N, 1, d) parameter for the training size
        self.pos_embedding = nn.Parameter(sine_position_embedding(gh, gw, d), requires_grad=False)
        self.global_encoder = TransformerEncoder(d, config.n_heads, config.dim_feedforward, config.n_layers,
                                                 config.dropout)
        if config.head == "deconv":
            c = config.deconv_channels
            self.deconv_layers = nn.Sequential(
                nn.ConvTranspose2d(d, c, 4, stride=2, padding=1, output_padding=0, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            )
            self.final_layer = nn.Conv2d(c, config.num_joints, 1)
        elif config.head == "bilinear":
            self.final_layer = nn.Conv2d(d, config.num_joints, 1)
        elif config.head == "conv1x1":
            self.final_layer = nn.Conv2d(d, config.num_joints, 1)
        else:
            raise ValueError(f"unknown head {config.head!r}")
        self._init_weights()
        self._pe_cache: dict[tuple, torch.Tensor] = {}

    def _init_weights(self) -> None:
        # the authors' init for the head; the stem and encoder keep PyTorch's defaults
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        if self.final_layer.bias is not None:   # always there (bias=True)
            nn.init.zeros_(self.final_layer.bias)

    def _position_embedding(self, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """(1, N, d): the stored embedding for the training grid, recomputed for any other grid."""
        if (h, w) == self._stored_grid:
            return self.pos_embedding.permute(1, 0, 2).to(like.dtype)
        key = (h, w, like.device, like.dtype)
        if key not in self._pe_cache:
            pe = sine_position_embedding(h, w, self.config.d_model)
            self._pe_cache[key] = pe.permute(1, 0, 2).to(device=like.device, dtype=like.dtype)
        return self._pe_cache[key]

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        feats = self.reduce(self._stem.forward_stem(self, x))      # (B, d, h, w)
        B, d, h, w = feats.shape
        tokens = feats.flatten(2).transpose(1, 2)                   # (B, N, d)
        tokens, maps = self.global_encoder(tokens, self._position_embedding(h, w, tokens), return_attention)
        feats = tokens.transpose(1, 2).reshape(B, d, h, w)          # (B, d, h, w)
        if self.config.head == "deconv":
            feats = self.deconv_layers(feats)                       # (B, c, 2h, 2w)
        elif self.config.head == "bilinear":
            feats = F.interpolate(feats, scale_factor=2, mode="bilinear", align_corners=False)
        heatmaps = self.final_layer(feats)                          # (B, J, H/4, W/4)
        return (heatmaps, maps) if return_attention else heatmaps


def create_model(
    name_or_config: str | ModelConfig,
    weights: str | Path | dict | None = None,
    image_size: tuple[int, int] | None = None,
) -> TransPose:
    """Build a preset (e.g. "tp_r_a4"); `weights` (a checkpoint path or state_dict) is loaded strictly.

    `image_size` (h, w) sets the input size (default: the size the weights were trained at). The stored position
    embedding keeps the grid the weights were trained on (read off the checkpoint's `pos_embedding`); other grids
    get a recomputed sine embedding.
    """
    config = get_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    wanted = config.with_image_size(*image_size) if image_size is not None else config
    state = None
    if weights is not None:
        state = weights if isinstance(weights, dict) else read_checkpoint(weights)
    built = wanted if state is None else config.with_image_size(*_trained_size(state, config, wanted))
    model = TransPose(built)
    if state is not None:
        load_strict(model, state, source=str(weights) if not isinstance(weights, dict) else "checkpoint")
    model.config = wanted if image_size is not None else built   # default: the size it was trained at
    return model


def _trained_size(state: dict, config: ModelConfig, wanted: ModelConfig) -> tuple[int, int]:
    """The input size whose token grid matches the checkpoint's stored embedding (N tokens)."""
    pe = state.get("pos_embedding")
    if pe is None or pe.dim() != 3:
        return config.image_size          # let strict loading name the problem
    n = pe.shape[0]
    for c in (config, wanted):
        gh, gw = c.token_grid
        if gh * gw == n:
            return c.image_size
    # other sizes: the presets' 4:3 (h:w) crop aspect
    gh = round((n * 4 / 3) ** 0.5)
    gw = n // gh if gh else 0
    if gh * gw == n and gh > 0:
        return gh * config.stride, gw * config.stride
    return config.image_size

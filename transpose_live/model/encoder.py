"""The TransPose encoder: post-norm layers, ReLU FFN, sine position embedding on queries and keys only."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def sine_position_embedding(h: int, w: int, d_model: int, temperature: float = 10000.0) -> torch.Tensor:
    """The authors' 2D sine embedding: (h*w, 1, d), d/2 channels for y then d/2 for x."""
    area = torch.ones(1, h, w)
    y_embed = area.cumsum(1, dtype=torch.float32)
    x_embed = area.cumsum(2, dtype=torch.float32)
    half = d_model // 2
    eps, scale = 1e-6, 2 * math.pi
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = torch.arange(half, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    pos_x = x_embed[:, :, :, None] / dim_t
    pos_y = y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos = torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)   # (1, d, h, w)
    return pos.flatten(2).permute(2, 0, 1)                       # (h*w, 1, d)


class EncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer; `self_attn` is nn.MultiheadAttention as in the released weights."""

    def __init__(self, d_model: int, n_heads: int, dim_feedforward: int, dropout: float = 0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    # False: the no-maps path calls nn.MultiheadAttention itself (the authors' formulation), as `bench`'s
    # eager baseline does; True (default): the same maths with q/k in one matmul and fused SDPA
    fused: bool = True

    def forward(self, src: torch.Tensor, pos: torch.Tensor, need_weights: bool = False):
        # src (B, N, d); pos (1, N, d) is added to queries and keys, never to values
        qk = src + pos
        if need_weights:
            attn, weights = self.self_attn(qk, qk, src, need_weights=True, average_attn_weights=True)
        elif self.fused:
            attn, weights = self._fused_attention(qk, src), None
        else:
            attn, weights = self.self_attn(qk, qk, src, need_weights=False)[0], None
        src = self.norm1(src + self.dropout1(attn))
        src2 = self.linear2(self.dropout(F.relu(self.linear1(src))))
        return self.norm2(src + self.dropout2(src2)), weights   # (B, N, d), (B, N, N) or None

    def _fused_attention(self, qk: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Same maths as self_attn(need_weights=False), with q/k projected in one matmul."""
        a = self.self_attn
        B, N, d = v.shape
        h = a.num_heads
        w, b = a.in_proj_weight, a.in_proj_bias
        q, k = F.linear(qk, w[: 2 * d], b[: 2 * d]).chunk(2, dim=-1)   # (B, N, d) each
        v = F.linear(v, w[2 * d:], b[2 * d:])
        q, k, v = (t.view(B, N, h, d // h).transpose(1, 2) for t in (q, k, v))   # (B, h, N, d/h)
        p = a.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        out = out.transpose(1, 2).reshape(B, N, d)
        return a.out_proj(out)


class TransformerEncoder(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dim_feedforward: int, n_layers: int, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, dim_feedforward, dropout) for _ in range(n_layers)
        )

    def forward(self, x: torch.Tensor, pos: torch.Tensor, return_attention: bool = False):
        maps = []
        for layer in self.layers:
            x, w = layer(x, pos, need_weights=return_attention)
            if return_attention:
                maps.append(w)
        return x, maps

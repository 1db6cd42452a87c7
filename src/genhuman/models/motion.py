"""AnimateDiff "Vanilla" temporal modules, with the original (v2) parameter names.

Each module attends over the frames at every spatial location. Key layout:
``temporal_transformer.{norm, proj_in, transformer_blocks.0.{attention_blocks.{0,1},
norms.{0,1}, ff, ff_norm}, proj_out}``; every attention block keeps its sinusoidal table
as the persistent buffer ``pos_encoder.pe`` ``(1, max_len, C)`` so official files load strictly.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from torch import nn

from genhuman.models.attention import attend


class SinusoidalPositionalEncoding(nn.Module):
    def __init__(self, dim: int, max_len: int):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(1, max_len, dim)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)  # persistent: the official checkpoints carry it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(f"{x.shape[1]} frames exceed the motion module's maximum of {self.pe.shape[1]}")
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class TemporalAttention(Attention):
    """Self-attention over frames; the position encoding is added to its (normed) input."""

    def __init__(self, dim: int, heads: int, max_len: int):
        super().__init__(dim, heads=heads, dim_head=dim // heads, bias=False)
        self.pos_encoder = SinusoidalPositionalEncoding(dim, max_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [(b hw), f, c]
        x = self.pos_encoder(x)
        return attend(self, self.to_q(x), self.to_k(x), self.to_v(x))


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, max_len: int):
        super().__init__()
        self.attention_blocks = nn.ModuleList([TemporalAttention(dim, heads, max_len) for _ in range(2)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms):
            x = attention(norm(x)) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, heads: int, groups: int, max_len: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(channels, heads, max_len)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """``x``: ``[(b f), c, h, w]`` with frames of one sample contiguous."""
        bf, c, h, w = x.shape
        b = bf // frames
        hidden = self.norm(x).permute(0, 2, 3, 1).reshape(bf, h * w, c)  # GroupNorm per frame
        hidden = self.proj_in(hidden)
        hidden = hidden.view(b, frames, h * w, c).transpose(1, 2).reshape(b * h * w, frames, c)
        for block in self.transformer_blocks:
            hidden = block(hidden)
        hidden = hidden.view(b, h * w, frames, c).transpose(1, 2).reshape(bf, h * w, c)
        hidden = self.proj_out(hidden).view(bf, h, w, c).permute(0, 3, 1, 2)
        return hidden + x


class MotionModule(nn.Module):
    """``VanillaTemporalModule``: a residual temporal transformer."""

    def __init__(self, channels: int, heads: int, groups: int, max_len: int):
        super().__init__()
        self.temporal_transformer = TemporalTransformer(channels, heads, groups, max_len)

    def forward(self, x: torch.Tensor, frames: int, motion_frames: torch.Tensor | None = None) -> torch.Tensor:
        """``x [(b f), c, h, w]``; ``motion_frames [b, m, c, h, w]`` (Hallo) are attended to as the
        first ``m`` frames (positions 0..m-1) and dropped from the output, which keeps ``f`` frames."""
        if motion_frames is None or motion_frames.shape[1] == 0:
            return self.temporal_transformer(x, frames)
        bf, c, h, w = x.shape
        b, m = motion_frames.shape[:2]
        joined = torch.cat([motion_frames.to(x.dtype), x.view(b, frames, c, h, w)], dim=1)
        out = self.temporal_transformer(joined.reshape(b * (m + frames), c, h, w), m + frames)
        return out.view(b, m + frames, c, h, w)[:, m:].reshape(bf, c, h, w)

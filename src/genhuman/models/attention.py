"""Spatial transformer blocks shared by the ReferenceNet and the denoiser.

One block class serves both networks; a :class:`ForwardContext` threaded through the
UNet says what it does on this call: write its normalized input into the reference bank
(ReferenceNet), or attend to cached reference keys/values (denoiser), plus the audio
tokens for the cross-attention. Attention runs through ``F.scaled_dot_product_attention``
on the projections of diffusers' :class:`Attention` modules (kept for their weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from torch import nn

if TYPE_CHECKING:
    from genhuman.models.audio_attention import AudioModuleInputs

ReferenceBank = dict[str, torch.Tensor]
"""Block name -> ``norm1`` output of that ReferenceNet block, ``[b, tokens, channels]``."""


@dataclass
class ReferenceKV:
    """Reference keys/values per denoiser block, projected once per video.

    ``blocks[name] = (k, v)``, each ``[b_ref, tokens, channels]`` with ``b_ref`` 1 (shared
    by every sample) or the denoiser batch size.
    """

    blocks: dict[str, tuple[torch.Tensor, torch.Tensor]]
    # Hallo: row n of the folded batch [(b f)] reads reference sample n mod b_ref (instead of its
    # own sample's), as the official read hook's 3-D ``.repeat(1, f, 1, 1)`` tiles the samples.
    cycle_over_frames: bool = False

    def to(self, *args, **kwargs) -> "ReferenceKV":
        return ReferenceKV({n: (k.to(*args, **kwargs), v.to(*args, **kwargs)) for n, (k, v) in self.blocks.items()},
                           self.cycle_over_frames)


@dataclass
class ForwardContext:
    """Per-call state every transformer block reads."""

    batch: int
    frames: int
    bank: ReferenceBank | None = None  # ReferenceNet: blocks write here
    reference: ReferenceKV | None = None  # denoiser: blocks read here
    # Contiguous runs (start, stop, attends_to_reference) over the batch; one SDPA call each.
    runs: list[tuple[int, int, bool]] = field(default_factory=list)
    audio: torch.Tensor | None = None  # attn2's tokens [(b f), tokens, dim]: EchoMimic's audio, Hallo's image tokens
    audio_modules: AudioModuleInputs | None = None  # Hallo: what its audio modules read
    # Hallo: block name -> that ReferenceNet block's motion-frame features [b, m, tokens, channels],
    # prepended to the frames of the motion module of the same layer.
    motion_frames: dict[str, torch.Tensor] | None = None


def reference_runs(use_reference: torch.Tensor | Sequence[bool] | None, batch: int) -> list[tuple[int, int, bool]]:
    """Split the batch into contiguous runs of equal ``use_reference`` (CFG: [uncond | cond]).

    A tensor costs one host sync per forward; a list/tuple of bools costs none."""
    if use_reference is None:
        return [(0, batch, True)]
    if isinstance(use_reference, torch.Tensor):
        use_reference = use_reference.reshape(-1).tolist()
    flags = [bool(x) for x in use_reference]
    if len(flags) != batch:
        raise ValueError(f"use_reference has {len(flags)} entries for a batch of {batch}")
    runs: list[tuple[int, int, bool]] = []
    start = 0
    for i in range(1, batch + 1):
        if i == batch or flags[i] != flags[start]:
            runs.append((start, i, flags[start]))
            start = i
    return runs


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    n, length, channels = x.shape
    return x.view(n, length, heads, channels // heads).transpose(1, 2)


def attend(attn: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Multi-head SDPA on projected ``[n, tokens, c]`` tensors, then ``to_out``."""
    heads = attn.heads
    out = F.scaled_dot_product_attention(_split_heads(q, heads), _split_heads(k, heads), _split_heads(v, heads))
    out = out.transpose(1, 2).reshape(q.shape[0], q.shape[1], -1)
    return attn.to_out[1](attn.to_out[0](out))


class TransformerBlock(nn.Module):
    """norm1/attn1 (self + reference), optional norm2/attn2 (audio x scale), norm3/ff (GEGLU)."""

    def __init__(self, dim: int, heads: int, cross_attention_dim: int | None = None, audio_scale: float = 1.0):
        super().__init__()
        self.block_name = ""  # set by the owning UNet; pairs ReferenceNet and denoiser blocks
        self.audio_scale = audio_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads=heads, dim_head=dim // heads, bias=False)
        if cross_attention_dim is not None:
            self.norm2 = nn.LayerNorm(dim)
            self.attn2 = Attention(dim, cross_attention_dim=cross_attention_dim, heads=heads,
                                   dim_head=dim // heads, bias=False)
        else:
            self.norm2 = None
            self.attn2 = None
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, activation_fn="geglu")

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        n = self.norm1(x)
        if ctx.bank is not None:
            ctx.bank[self.block_name] = n
        x = self._self_attention(n, ctx) + x
        if self.attn2 is not None:
            x = self._audio_attention(self.norm2(x), ctx.audio) * self.audio_scale + x
        return self.ff(self.norm3(x)) + x

    def _self_attention(self, n: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        attn = self.attn1
        q, k, v = attn.to_q(n), attn.to_k(n), attn.to_v(n)
        cached = ctx.reference.blocks.get(self.block_name) if ctx.reference is not None else None
        if cached is None or not any(uses for _, _, uses in ctx.runs):
            return attend(attn, q, k, v)
        b, f = ctx.batch, ctx.frames
        shape = (b, f) + tuple(q.shape[1:])
        q5, k5, v5 = q.view(shape), k.view(shape), v.view(shape)
        parts = []
        for start, stop, uses in ctx.runs:
            qs, ks, vs = q5[start:stop], k5[start:stop], v5[start:stop]
            if uses:  # keys/values = [own tokens ; reference tokens], reference broadcast over frames
                cycle = ctx.reference.cycle_over_frames  # type: ignore[union-attr]  # cached implies a reference
                ks = _with_reference(ks, cached[0], start, stop, cycle)
                vs = _with_reference(vs, cached[1], start, stop, cycle)
            m = stop - start
            parts.append(attend(attn, qs.reshape(m * f, *q.shape[1:]), ks.reshape(m * f, -1, q.shape[-1]),
                                vs.reshape(m * f, -1, q.shape[-1])))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _audio_attention(self, n: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        attn = self.attn2
        if audio is None:
            # Zero tokens: to_k/to_v have no bias, so K = V = 0 and the output is to_out's bias.
            bias = attn.to_out[0].bias
            return torch.zeros_like(n) if bias is None else bias.expand_as(n)
        return attend(attn, attn.to_q(n), attn.to_k(audio), attn.to_v(audio))


def _with_reference(own: torch.Tensor, ref: torch.Tensor, start: int, stop: int, cycle: bool = False) -> torch.Tensor:
    """Concatenate ``[m, f, L, c]`` frame tokens with reference ``[b_ref, Lr, c]`` (expanded, not repeated);
    ``cycle``: frame row n = i*f + j of the whole batch takes reference sample n mod b_ref."""
    m, f = own.shape[:2]
    if cycle and ref.shape[0] != 1:
        rows = torch.arange(start * f, stop * f, device=ref.device) % ref.shape[0]
        return torch.cat([own, ref[rows].view(m, f, *ref.shape[1:]).to(own.dtype)], dim=2)
    if ref.shape[0] != 1:
        ref = ref[start:stop]
    ref = ref[:, None].expand(m, f, ref.shape[1], ref.shape[2])
    return torch.cat([own, ref.to(own.dtype)], dim=2)


class SpatialTransformer(nn.Module):
    """GroupNorm -> 1x1 proj_in -> transformer block -> 1x1 proj_out, plus the residual (per frame)."""

    def __init__(self, channels: int, heads: int, groups: int, cross_attention_dim: int | None = None,
                 audio_scale: float = 1.0):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(
            [TransformerBlock(channels, heads, cross_attention_dim, audio_scale)])
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        n, c, h, w = x.shape
        hidden = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(n, h * w, c)
        for block in self.transformer_blocks:
            hidden = block(hidden, ctx)
        hidden = hidden.reshape(n, h, w, c).permute(0, 3, 1, 2)
        return self.proj_out(hidden) + x

"""Hallo's audio modules: hierarchical audio-visual cross-attention (spec hallo.md 1.2-1.3).

One audio module sits after the spatial transformer of every layer of the down, mid and up
blocks that have one. It is a residual transformer over the frame's tokens (official
``Transformer3DModel(use_audio_module=True)``) whose block,
``AudioTemporalBasicTransformerBlock``, is

1. ``h = attn1(norm1(h)) + h`` (plain self-attention, no reference);
2. three cross-attentions of ``n = norm2(h)`` to the same audio tokens, each masked by its region
   at this level's resolution and passed through its 1x1 zero-initialised conv on the token grid:
   ``full = zero_conv_full(attn2_0(n, a) * full_mask)``, ``face`` (``attn2_1``), ``lip`` (``attn2_2``);
3. ``h = s0 * full + s1 * face + s2 * lip + h`` with ``motion_scale = (s0, s1, s2)``
   (the official pose/face/lip weights);
4. ``h = ff(norm3(h)) + h``.

The module's inner width is not always its block's width (``in_channels // heads`` heads of the
layer's input width, spec 1.2 "Quirk"), so it is a constructor argument: proj_in maps the
block's channels to it and proj_out back. The official code reshapes the tokens to a
``sqrt(HW) x sqrt(HW)`` grid for the zero-convs, so it only runs on square latents; here the
1x1 convs run on the real ``h x w`` grid (the same numbers when square).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from torch import nn

from genhuman.models.attention import ForwardContext, attend

REGIONS = ("full", "face", "lip")


@dataclass
class HalloMasks:
    """Region masks per level, finest first (level i: the latent grid downsampled ``2**i`` times).

    Each entry is broadcastable to ``[b, f, h_i * w_i]`` (e.g. ``[1, h_i * w_i]`` for one mask of
    the whole clip). "full" is the background/pose region (1 - blurred face box), "face" the
    face without the lips, "lip" the lips (spec hallo.md 1.3, 1.5).
    """

    full: Sequence[torch.Tensor]
    face: Sequence[torch.Tensor]
    lip: Sequence[torch.Tensor]

    def per_token(self, batch: int, frames: int, dtype: torch.dtype) -> tuple[list[torch.Tensor], ...]:
        """Every mask as ``[(b f), tokens, 1]`` in ``dtype``, ready to multiply an attention output."""
        if not len(self.full) == len(self.face) == len(self.lip):
            raise ValueError("the full, face and lip masks need the same number of levels")
        return tuple([m.to(dtype).expand(batch, frames, m.shape[-1]).reshape(batch * frames, -1, 1) for m in masks]
                     for masks in (self.full, self.face, self.lip))


@dataclass
class AudioModuleInputs:
    """What every audio module reads on one denoiser call."""

    tokens: torch.Tensor | None  # [(b f), n, dim]; None: zero tokens (the official uncond audio)
    masks: tuple[list[torch.Tensor], ...] | None  # (full, face, lip), per level [(b f), tokens, 1]; None: ones
    motion_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)


def _zero_conv(dim: int) -> nn.Conv2d:
    conv = nn.Conv2d(dim, dim, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _cross_attention(dim: int, heads: int, audio_dim: int) -> Attention:
    return Attention(dim, cross_attention_dim=audio_dim, heads=heads, dim_head=dim // heads, bias=False)


def cross_attend(attn: Attention, n: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
    """``attn(n, tokens)``; zero tokens give ``to_out``'s bias (to_k/to_v have no bias, so V = 0)."""
    if tokens is None:
        bias = attn.to_out[0].bias
        return torch.zeros_like(n) if bias is None else bias.expand_as(n)
    return attend(attn, attn.to_q(n), attn.to_k(tokens), attn.to_v(tokens))


class AudioTransformerBlock(nn.Module):
    """The official ``AudioTemporalBasicTransformerBlock`` (same parameter names and order)."""

    def __init__(self, dim: int, heads: int, audio_dim: int):
        super().__init__()
        self.zero_conv_full = _zero_conv(dim)
        self.zero_conv_face = _zero_conv(dim)
        self.zero_conv_lip = _zero_conv(dim)
        self.attn1 = Attention(dim, heads=heads, dim_head=dim // heads, bias=False)
        self.norm1 = nn.LayerNorm(dim)
        self.attn2_0 = _cross_attention(dim, heads, audio_dim)
        self.attn2_1 = _cross_attention(dim, heads, audio_dim)
        self.attn2_2 = _cross_attention(dim, heads, audio_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.norm3 = nn.LayerNorm(dim)

    def branches(self) -> tuple[tuple[Attention, nn.Conv2d], ...]:
        """(cross-attention, zero-conv) of the full, face and lip regions, in that order."""
        return ((self.attn2_0, self.zero_conv_full), (self.attn2_1, self.zero_conv_face),
                (self.attn2_2, self.zero_conv_lip))

    def forward(self, x: torch.Tensor, grid: tuple[int, int], inputs: AudioModuleInputs, level: int) -> torch.Tensor:
        """``x [(b f), h*w, dim]`` tokens of the ``grid = (h, w)`` of mask level ``level``."""
        n = self.norm1(x)
        x = attend(self.attn1, self.attn1.to_q(n), self.attn1.to_k(n), self.attn1.to_v(n)) + x
        n = self.norm2(x)
        regions = []
        for r, (attn, conv) in enumerate(self.branches()):
            out = cross_attend(attn, n, inputs.tokens)
            if inputs.masks is not None:
                out = out * _level_mask(inputs.masks[r], level, out.shape[1], REGIONS[r])
            regions.append(_on_grid(conv, out, grid))
        s = inputs.motion_scale
        x = s[0] * regions[0] + s[1] * regions[1] + s[2] * regions[2] + x
        return self.ff(self.norm3(x)) + x


def _level_mask(masks: list[torch.Tensor], level: int, tokens: int, region: str) -> torch.Tensor:
    if level >= len(masks):
        raise ValueError(f"the {region} masks have {len(masks)} levels; level {level} is needed")
    mask = masks[level]
    if mask.shape[1] != tokens:
        raise ValueError(f"the {region} mask of level {level} has {mask.shape[1]} values; "
                         f"that level's latent grid has {tokens}")
    return mask


def _on_grid(conv: nn.Conv2d, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """A 1x1 conv on ``[n, h*w, c]`` tokens laid out on their ``h x w`` grid."""
    n, length, c = tokens.shape
    x = tokens.reshape(n, grid[0], grid[1], c).permute(0, 3, 1, 2)
    return conv(x).permute(0, 2, 3, 1).reshape(n, length, c)


class AudioModule(nn.Module):
    """GroupNorm -> 1x1 proj_in (channels -> inner) -> audio block -> 1x1 proj_out, plus the residual."""

    def __init__(self, channels: int, inner: int, heads: int, groups: int, audio_dim: int):
        super().__init__()
        self.channels, self.inner = channels, inner
        self.level = 0  # which mask resolution this module reads; set by the owning UNet
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([AudioTransformerBlock(inner, heads, audio_dim)])
        self.proj_out = nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        """``x [(b f), channels, h, w]``; reads ``ctx.audio_modules``."""
        inputs = ctx.audio_modules
        if inputs is None:
            raise ValueError("an audio module needs ctx.audio_modules (tokens, masks, motion scale)")
        n, _, h, w = x.shape
        hidden = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(n, h * w, self.inner)
        for block in self.transformer_blocks:
            hidden = block(hidden, (h, w), inputs, self.level)
        hidden = hidden.reshape(n, h, w, self.inner).permute(0, 3, 1, 2)
        return self.proj_out(hidden) + x

"""Down/mid/up blocks of the SD-1.5 UNet, with optional transformers and motion modules.

Everything runs on frames folded into the batch, ``[(b f), c, h, w]``: that is exactly the
official InflatedConv3d / InflatedGroupNorm semantics (per-frame conv and GroupNorm), so
diffusers' ResnetBlock2D / Downsample2D / Upsample2D are used as they are. Only the motion
modules unfold the frames. Per layer the order is resnet -> transformer -> audio module (Hallo)
-> motion module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers.models.downsampling import Downsample2D
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.upsampling import Upsample2D
from torch import nn

from genhuman.models.attention import ForwardContext, SpatialTransformer
from genhuman.models.motion import MotionModule


@dataclass(frozen=True)
class BlockSpec:
    """What every block of one UNet shares."""

    temb_channels: int
    heads: int
    groups: int
    eps: float
    cross_attention_dim: int | None = None  # None: no attn2 (ReferenceNet)
    audio_scale: float = 1.0
    motion: bool = False
    motion_heads: int = 8
    motion_max_len: int = 32
    # Hallo: builds the audio module of one layer from (block channels, inner width); None: no audio modules.
    audio_module: Callable[[int, int], nn.Module] | None = None
    # False (Hallo): blocks without transformers keep their motion modules' weights but never run them,
    # as the official inference (training mode + gradient checkpointing) does.
    plain_block_motion: bool = True

    def resnet(self, cin: int, cout: int) -> ResnetBlock2D:
        return ResnetBlock2D(in_channels=cin, out_channels=cout, temb_channels=self.temb_channels,
                             groups=self.groups, eps=self.eps)

    def transformer(self, channels: int) -> SpatialTransformer:
        return SpatialTransformer(channels, self.heads, self.groups, self.cross_attention_dim, self.audio_scale)

    def motion_module(self, channels: int) -> MotionModule:
        return MotionModule(channels, self.motion_heads, self.groups, self.motion_max_len)


def _audio_modules(spec: BlockSpec, channels: int, inner: list[int]) -> nn.ModuleList | None:
    return nn.ModuleList([spec.audio_module(channels, i) for i in inner]) if spec.audio_module is not None else None


def _motion_frames(attention: SpatialTransformer, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor | None:
    """The reference motion-frame tokens of this layer's transformer block as ``[b, m, c, h, w]``."""
    if ctx.motion_frames is None:
        return None
    tokens = ctx.motion_frames[attention.transformer_blocks[0].block_name]  # [b, m, h*w, c]
    b, m, _, c = tokens.shape
    return tokens.view(b, m, x.shape[2], x.shape[3], c).permute(0, 1, 4, 2, 3)


class _Layers(nn.Module):
    """resnets + optional attentions, audio_modules (Hallo) and motion_modules, applied layer by layer."""

    def _build(self, spec: BlockSpec, channels: int, layers: int, attention: bool,
               audio_inner: list[int] | None = None) -> None:
        self.attentions = nn.ModuleList([spec.transformer(channels) for _ in range(layers)]) if attention else None
        self.audio_modules = _audio_modules(spec, channels, audio_inner or []) if attention else None
        self.motion_modules = (nn.ModuleList([spec.motion_module(channels) for _ in range(layers)])
                               if spec.motion else None)
        self.run_motion = attention or spec.plain_block_motion

    def _layer(self, i: int, x: torch.Tensor, temb: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        x = self.resnets[i](x, temb)
        motion_frames = None
        if self.attentions is not None:
            x = self.attentions[i](x, ctx)
            motion_frames = _motion_frames(self.attentions[i], x, ctx)
        if self.audio_modules is not None:
            x = self.audio_modules[i](x, ctx)
        if self.motion_modules is not None and self.run_motion:
            x = self.motion_modules[i](x, ctx.frames, motion_frames)
        return x


class DownBlock(_Layers):
    def __init__(self, spec: BlockSpec, cin: int, cout: int, layers: int, attention: bool, downsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([spec.resnet(cin if i == 0 else cout, cout) for i in range(layers)])
        # Hallo's quirk: each audio module's inner width is its layer's input width (spec hallo.md 1.2).
        self._build(spec, cout, layers, attention, [cin if i == 0 else cout for i in range(layers)])
        self.downsamplers = (nn.ModuleList([Downsample2D(cout, use_conv=True, out_channels=cout, name="op")])
                             if downsample else None)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, ctx: ForwardContext):
        skips = []
        for i in range(len(self.resnets)):
            x = self._layer(i, x, temb, ctx)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class MidBlock(_Layers):
    """resnets[0] -> attentions[0] -> audio_modules[0] (Hallo) -> motion_modules[0] -> resnets[1]."""

    def __init__(self, spec: BlockSpec, channels: int, motion: bool):
        super().__init__()
        self.resnets = nn.ModuleList([spec.resnet(channels, channels) for _ in range(2)])
        self.attentions = nn.ModuleList([spec.transformer(channels)])
        self.audio_modules = _audio_modules(spec, channels, [channels])
        self.motion_modules = nn.ModuleList([spec.motion_module(channels)]) if motion else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        attentions = self.attentions
        assert attentions is not None  # always built here (optional in _Layers only)
        x = attentions[0](self.resnets[0](x, temb), ctx)
        if self.audio_modules is not None:
            x = self.audio_modules[0](x, ctx)
        if self.motion_modules is not None:
            x = self.motion_modules[0](x, ctx.frames, _motion_frames(attentions[0], x, ctx))
        return self.resnets[1](x, temb)


class UpBlock(_Layers):
    def __init__(self, spec: BlockSpec, cin: int, prev: int, cout: int, layers: int, attention: bool,
                 upsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([
            spec.resnet((prev if i == 0 else cout) + (cin if i == layers - 1 else cout), cout)
            for i in range(layers)])
        # Hallo's quirk: the audio modules' inner width is the block's skip width (spec hallo.md 1.2).
        self._build(spec, cout, layers, attention, [cin] * layers)
        self.upsamplers = nn.ModuleList([Upsample2D(cout, use_conv=True, out_channels=cout)]) if upsample else None

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], temb: torch.Tensor, ctx: ForwardContext,
                upsample_size: tuple[int, int] | None) -> torch.Tensor:
        for i in range(len(self.resnets)):
            x = self._layer(i, torch.cat([x, skips.pop()], dim=1), temb, ctx)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, output_size=upsample_size)
        return x

"""The ReferenceNet (2D) and the denoising UNet (3D), on one shared SD-1.5 backbone."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from genhuman.models.attention import (ForwardContext, ReferenceBank, ReferenceKV, TransformerBlock,
                                       reference_runs)
from genhuman.models.blocks import BlockSpec, DownBlock, MidBlock, UpBlock
from genhuman.models.config import UNet3DConfig, UNetConfig
from genhuman.models.pretrained import PretrainedMixin


class _Backbone(nn.Module):
    """conv_in, time embedding, down/mid/up blocks; the heads differ per network."""

    def _build(self, config: UNetConfig, spec: BlockSpec, motion_mid: bool) -> None:
        channels = config.block_out_channels
        n = len(channels)
        layers = config.layers_per_block
        self.conv_in = nn.Conv2d(config.in_channels, channels[0], 3, padding=1)
        self.time_proj = Timesteps(channels[0], config.flip_sin_to_cos, config.freq_shift)
        self.time_embedding = TimestepEmbedding(channels[0], config.time_embed_dim)
        self.down_blocks = nn.ModuleList([
            DownBlock(spec, channels[max(i - 1, 0)], channels[i], layers, config.attention_blocks[i], i < n - 1)
            for i in range(n)])
        self.mid_block = MidBlock(spec, channels[-1], motion_mid)
        rev, rev_attention = channels[::-1], config.attention_blocks[::-1]
        self.up_blocks = nn.ModuleList([
            UpBlock(spec, rev[min(i + 1, n - 1)], rev[max(i - 1, 0)], rev[i], layers + 1, rev_attention[i], i < n - 1)
            for i in range(n)])
        for name, module in self.named_modules():
            if isinstance(module, TransformerBlock):
                module.block_name = name

    def _time_embedding(self, timestep: torch.Tensor | float | int, batch: int, device: torch.device) -> torch.Tensor:
        t = torch.as_tensor(timestep, device=device)
        t = t.reshape(1).expand(batch) if t.ndim == 0 else t.reshape(batch)
        emb = self.time_proj(t)
        return self.time_embedding(emb.to(self.time_embedding.linear_1.weight.dtype))

    def _trunk(self, x: torch.Tensor, temb: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, temb, ctx)
            skips.extend(block_skips)
        x = self.mid_block(x, temb, ctx)
        for block in self.up_blocks:
            consumed = len(block.resnets)
            upsample_size = tuple(skips[-consumed - 1].shape[2:]) if block.upsamplers is not None else None
            x = block(x, skips, temb, ctx, upsample_size)
        return x


class ReferenceUNet2D(_Backbone, PretrainedMixin):
    """SD-1.5 UNet2D without the output head; without cross-attention unless
    ``cross_attention_dim`` is given (Hallo's reference UNet attends to the image tokens).

    ``forward`` runs it (at timestep 0 in the pipelines) on the reference latent and returns
    the bank: every transformer block's ``norm1`` output, keyed by block name.
    """

    config_class = UNetConfig

    def __init__(self, config: UNetConfig, cross_attention_dim: int | None = None):
        super().__init__()
        self.config = config
        spec = BlockSpec(config.time_embed_dim, config.attention_heads, config.norm_num_groups, config.norm_eps,
                         cross_attention_dim=cross_attention_dim)
        self._build(config, spec, motion_mid=False)

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor | float | int = 0,
                context: torch.Tensor | None = None) -> ReferenceBank:
        """``context [b, tokens, dim]``: attn2's tokens, one set per latent (cross-attention only)."""
        b = latents.shape[0]
        temb = self._time_embedding(timestep, b, latents.device)
        bank: ReferenceBank = {}
        x = self.conv_in(latents.to(self.conv_in.weight.dtype))
        audio = None if context is None else context.to(x.dtype)
        self._trunk(x, temb, ForwardContext(batch=b, frames=1, bank=bank, audio=audio))
        return bank


def project_reference(unet: nn.Module, bank: ReferenceBank) -> ReferenceKV:
    """The bank through each denoiser block's own ``attn1.to_k/to_v`` (blocks paired by name)."""
    blocks: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    missing = []
    for module in unet.modules():
        if isinstance(module, TransformerBlock):
            tokens = bank.get(module.block_name)
            if tokens is None:
                missing.append(module.block_name)
                continue
            tokens = tokens.to(module.attn1.to_k.weight.dtype)
            blocks[module.block_name] = (module.attn1.to_k(tokens), module.attn1.to_v(tokens))
    if missing:
        raise ValueError(f"the reference bank lacks blocks {missing}")
    return ReferenceKV(blocks)


class EchoUNet3D(_Backbone, PretrainedMixin):
    """The denoising UNet: per-frame SD-1.5 layers, reference + audio attention, motion modules."""

    config_class = UNet3DConfig

    def __init__(self, config: UNet3DConfig):
        super().__init__()
        self.config = config
        spec = BlockSpec(config.time_embed_dim, config.attention_heads, config.norm_num_groups, config.norm_eps,
                         cross_attention_dim=config.cross_attention_dim, audio_scale=config.audio_scale,
                         motion=True, motion_heads=config.motion_heads, motion_max_len=config.motion_max_len)
        self._build(config, spec, motion_mid=config.motion_mid_block)
        self.conv_norm_out = nn.GroupNorm(config.norm_num_groups, config.block_out_channels[0], eps=config.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(config.block_out_channels[0], config.out_channels, 3, padding=1)

    @torch.no_grad()
    def prepare_reference(self, bank: ReferenceBank) -> ReferenceKV:
        """Project the ReferenceNet bank through each block's own ``attn1.to_k/to_v``, once per video."""
        return project_reference(self, bank)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int,
                audio_tokens: torch.Tensor | None = None, cond: torch.Tensor | None = None,
                reference: ReferenceKV | None = None,
                use_reference: torch.Tensor | Sequence[bool] | None = None) -> torch.Tensor:
        """``sample [b,4,f,h,w]``, ``audio_tokens [b,f,n,dim]`` (None = zero audio),
        ``cond [b,C0,f|1,h,w]`` (condition-encoder features, added after conv_in),
        ``use_reference [b]`` bool (False: that sample attends to its own tokens only, as the
        official CFG unconditional half). Returns ``[b,out,f,h,w]``."""
        b, c, f, h, w = sample.shape
        x = sample.transpose(1, 2).reshape(b * f, c, h, w).to(self.conv_in.weight.dtype)
        temb = self._time_embedding(timestep, b, sample.device).repeat_interleave(f, dim=0)
        x = self.conv_in(x)
        if cond is not None:
            cond = cond.transpose(1, 2).to(x.dtype)  # [b, f|1, C0, h, w]
            x = (x.view(b, f, *x.shape[1:]) + cond).reshape(x.shape)
        audio = None
        if audio_tokens is not None:
            audio = audio_tokens.reshape(b * f, audio_tokens.shape[2], audio_tokens.shape[3]).to(x.dtype)
        ctx = ForwardContext(batch=b, frames=f, reference=reference,
                             runs=reference_runs(use_reference, b) if reference is not None else [], audio=audio)
        x = self._trunk(x, temb, ctx)
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return x.view(b, f, *x.shape[1:]).transpose(1, 2)

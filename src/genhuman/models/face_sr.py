"""Hallo2's temporal face restoration network (the "4K" super-resolution stage, spec hallo.md 2.4).

A CodeFormer-style VQ face restorer whose code-prediction transformer also attends across the
frames of a window: a 512² aligned face goes through a VQGAN encoder to a 16x16 grid, a
transformer (spatial self-attention + FFN, then temporal self-attention over the window's frames
at each grid cell + FFN) predicts one of 1024 codebook entries per cell, the looked-up codes are
AdaIN-matched to the encoder's features and decoded by the VQGAN generator, whose 32..256 levels
are modulated by the encoder's skip features (SFT, weighted by the fidelity ``w``).

Our own implementation on torch; parameter names equal the official ``net_g.pth['params_ema']``
(623 keys) so it loads strictly. The SR component is a CodeFormer derivative and falls under the
S-Lab License 1.0 (see the spec's license notes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genhuman.models.config import _DictConfig
from genhuman.models.pretrained import PretrainedMixin


@dataclass(frozen=True)
class FaceSRConfig(_DictConfig):
    image_size: int = 512
    base_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    codebook_size: int = 1024
    code_dim: int = 256
    dim_embd: int = 512
    n_head: int = 8
    n_layers: int = 9
    # The generator levels (by spatial size) that take the encoder's skip features.
    connect_list: tuple[int, ...] = (32, 64, 128, 256)
    norm_groups: int = 32

    @classmethod
    def hallo2(cls) -> FaceSRConfig:
        return cls()

    @classmethod
    def tiny(cls) -> FaceSRConfig:
        """32² faces -> a 4x4 code grid; the same block structure with 4 levels, Hallo2's heads
        and norm groups (so the geometry a file's shapes show is all a loader needs)."""
        return cls(image_size=32, base_channels=32, channel_mult=(1, 1, 2, 2), attn_resolutions=(4,),
                   codebook_size=16, code_dim=8, dim_embd=32, n_layers=2, connect_list=(8, 16))

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.channel_mult) - 1)

    def channels_at(self, size: int) -> int:
        level = (self.image_size // size).bit_length() - 1
        return self.base_channels * self.channel_mult[level]


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm-swish-conv twice, with a 1x1 shortcut when the width changes."""

    def __init__(self, in_ch: int, out_ch: int, groups: int) -> None:
        super().__init__()
        self.norm1 = _group_norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = _group_norm(out_ch, groups)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.conv_out = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.conv_out is None else self.conv_out(x))


class AttnBlock(nn.Module):
    """Single-head self-attention over the pixels of a feature map (1x1 conv projections)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = _group_norm(channels, groups)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)
        q, k, v = (proj(normed).flatten(2).transpose(1, 2).unsqueeze(1) for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v).squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # the asymmetric pad of the VQGAN


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder(nn.Module):
    """``blocks``: conv, per level ResBlocks (+attention at the attention sizes) and a downsample,
    then ResBlock-Attn-ResBlock, norm, conv to the code width. ``skip_after[size]`` is the block
    after which the level's features feed the generator (its last ResBlock)."""

    def __init__(self, cfg: FaceSRConfig) -> None:
        super().__init__()
        g, nf, size = cfg.norm_groups, cfg.base_channels, cfg.image_size
        blocks: list[nn.Module] = [nn.Conv2d(3, nf, 3, padding=1)]
        self.skip_after: dict[int, int] = {}
        ch = nf
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.res_blocks):
                blocks.append(ResBlock(ch, nf * mult, g))
                ch = nf * mult
                self.skip_after[size] = len(blocks) - 1
                if size in cfg.attn_resolutions:
                    blocks.append(AttnBlock(ch, g))
            if level != len(cfg.channel_mult) - 1:
                blocks.append(Downsample(ch))
                size //= 2
        blocks += [ResBlock(ch, ch, g), AttnBlock(ch, g), ResBlock(ch, ch, g), _group_norm(ch, g),
                   nn.Conv2d(ch, cfg.code_dim, 3, padding=1)]
        self.blocks = nn.ModuleList(blocks)


class Generator(nn.Module):
    """The mirror of :class:`Encoder`. ``fuse_after[size]``: the block after which the SFT fusion
    applies: the level's first ResBlock, or its last one at an attention size (before attention)."""

    def __init__(self, cfg: FaceSRConfig) -> None:
        super().__init__()
        g, nf, size = cfg.norm_groups, cfg.base_channels, cfg.latent_size
        ch = nf * cfg.channel_mult[-1]
        blocks: list[nn.Module] = [nn.Conv2d(cfg.code_dim, ch, 3, padding=1),
                                   ResBlock(ch, ch, g), AttnBlock(ch, g), ResBlock(ch, ch, g)]
        self.fuse_after: dict[int, int] = {}
        for level in reversed(range(len(cfg.channel_mult))):
            for i in range(cfg.res_blocks):
                blocks.append(ResBlock(ch, nf * cfg.channel_mult[level], g))
                ch = nf * cfg.channel_mult[level]
                if i == 0 or size in cfg.attn_resolutions:
                    self.fuse_after[size] = len(blocks) - 1
                if size in cfg.attn_resolutions:
                    blocks.append(AttnBlock(ch, g))
            if level != 0:
                blocks.append(Upsample(ch))
                size *= 2
        blocks += [_group_norm(ch, g), nn.Conv2d(ch, 3, 3, padding=1)]
        self.blocks = nn.ModuleList(blocks)


class Codebook(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(size, dim)


class TemporalTransformerLayer(nn.Module):
    """Pre-norm spatial self-attention + FFN over a frame's tokens, then pre-norm temporal
    self-attention over the window's frames at each token + FFN. Tokens are sequence-first:
    ``(tokens, batch*frames, dim)``. The temporal attention has no frame position."""

    def __init__(self, dim: int, heads: int, dim_mlp: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads)
        self.linear1, self.linear2 = nn.Linear(dim, dim_mlp), nn.Linear(dim_mlp, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.temp_norm = nn.LayerNorm(dim)
        self.temp_attn = nn.MultiheadAttention(dim, heads)
        self.temp_ffn_norm = nn.LayerNorm(dim)
        self.temp_linear1, self.temp_linear2 = nn.Linear(dim, dim_mlp), nn.Linear(dim_mlp, dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, frames: int) -> torch.Tensor:
        """``x``: (tokens, batch*frames, dim); ``pos``: (tokens, dim)."""
        tokens, batch_frames, dim = x.shape
        batch = batch_frames // frames
        h = self.norm1(x)
        q = h + pos[:, None]
        x = x + self.self_attn(q, q, h, need_weights=False)[0]
        x = x + self.linear2(F.gelu(self.linear1(self.norm2(x))))
        # (d, (b f), c) -> (f, (b d), c): each token's frames form one sequence
        t = x.reshape(tokens, batch, frames, dim).permute(2, 1, 0, 3).reshape(frames, batch * tokens, dim)
        h = self.temp_norm(t)
        q = h + pos.repeat(batch, 1)[None]
        t = t + self.temp_attn(q, q, h, need_weights=False)[0]
        x = t.reshape(frames, batch, tokens, dim).permute(2, 1, 0, 3).reshape(tokens, batch_frames, dim)
        return x + self.temp_linear2(F.gelu(self.temp_linear1(self.temp_ffn_norm(x))))


class FuseSFT(nn.Module):
    """Scale and shift the generator's features from the encoder's: ``dec + w*(dec*scale + shift)``."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.encode_enc = ResBlock(2 * channels, channels, groups)

        def branch() -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(channels, channels, 3, padding=1))

        self.scale, self.shift = branch(), branch()

    def forward(self, enc: torch.Tensor, dec: torch.Tensor, w: float) -> torch.Tensor:
        feat = self.encode_enc(torch.cat([enc, dec], dim=1))
        return dec + w * (dec * self.scale(feat) + self.shift(feat))


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Give ``content`` the per-channel mean and (unbiased) std of ``style`` (4D maps)."""
    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.flatten(2)
        return flat.mean(2)[..., None, None], (flat.var(2) + eps).sqrt()[..., None, None]

    c_mean, c_std = stats(content)
    s_mean, s_std = stats(style)
    return (content - c_mean) / c_std * s_std + s_mean


class TemporalFaceSR(nn.Module, PretrainedMixin):
    """Restores windows of aligned faces: ``(batch, frames, 3, S, S)`` in [-1, 1] -> the same shape."""

    config_class = FaceSRConfig

    def __init__(self, config: FaceSRConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or FaceSRConfig.hallo2()
        self.encoder = Encoder(cfg)
        self.quantize = Codebook(cfg.codebook_size, cfg.code_dim)
        self.generator = Generator(cfg)
        self.position_emb = nn.Parameter(torch.zeros(cfg.latent_size ** 2, cfg.dim_embd))
        self.feat_emb = nn.Linear(cfg.code_dim, cfg.dim_embd)
        self.ft_layers = nn.Sequential(*[TemporalTransformerLayer(cfg.dim_embd, cfg.n_head, 2 * cfg.dim_embd)
                                         for _ in range(cfg.n_layers)])
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(cfg.dim_embd),
                                            nn.Linear(cfg.dim_embd, cfg.codebook_size, bias=False))
        self.fuse_convs_dict = nn.ModuleDict({str(size): FuseSFT(cfg.channels_at(size), cfg.norm_groups)
                                              for size in cfg.connect_list})

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """(N, 3, S, S) -> the low-quality code-width features and the skip features by size."""
        wanted = {self.encoder.skip_after[size]: size for size in self.config.connect_list}
        skips = {}
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in wanted:
                skips[wanted[i]] = x
        return x, skips

    def code_logits(self, lq_feat: torch.Tensor, frames: int) -> torch.Tensor:
        """(batch*frames, C, h, w) -> (batch*frames, h*w, codebook) logits."""
        query = self.feat_emb(lq_feat.flatten(2).permute(2, 0, 1))
        for layer in self.ft_layers:
            query = layer(query, self.position_emb, frames)
        return self.idx_pred_layer(query).permute(1, 0, 2)

    def decode(self, codes: torch.Tensor, skips: dict[int, torch.Tensor], w: float) -> torch.Tensor:
        fuse = {index: size for size, index in self.generator.fuse_after.items() if size in skips}
        x = codes
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            if i in fuse and w > 0:
                x = self.fuse_convs_dict[str(fuse[i])](skips[fuse[i]], x, w)
        return x

    def forward(self, faces: torch.Tensor, w: float = 0.5, use_adain: bool = True) -> torch.Tensor:
        """``faces``: (batch, frames, 3, S, S) in [-1, 1]; ``w``: fidelity (0: codebook only, 1: most
        faithful to the input)."""
        b, f = faces.shape[:2]
        lq_feat, skips = self.encode(faces.flatten(0, 1))
        top = self.code_logits(lq_feat, f).argmax(dim=2)
        n, c, h, wd = lq_feat.shape
        quant = self.quantize.embedding(top).reshape(n, h, wd, -1).permute(0, 3, 1, 2)
        if use_adain:
            quant = adain(quant, lq_feat)
        return self.decode(quant, skips, w).unflatten(0, (b, f))


__all__ = ["FaceSRConfig", "TemporalFaceSR", "adain"]

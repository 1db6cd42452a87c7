"""EchoMimicV3 (preview) and EchoMimicV3-Flash: diffusers' Wan2.1 DiT plus a small audio branch.

The backbone is diffusers' :class:`WanTransformer3DModel` (Wan2.1-Fun 1.3B InP: 36 input channels,
CLIP image tokens). What EchoMimicV3 adds lives beside it in :class:`AudioBranch`:

- preview: ``audio2token`` (Linear 768->dim, no bias, + LayerNorm) and, per block, ``k_audio``/``v_audio``
  (no bias) with an RMSNorm on K; each latent frame's (RMS-normed) text query attends a 17-token audio
  window of its own; the result is masked to the face-box tokens and scaled before the output projection.
- Flash: a windowed projector (``audio_injection``: 32 tokens per latent frame), biases on K/V, no mask.
  Flash also holds ``q_audio`` weights, but the official attention overwrites its output with the plain
  query before use (``q_auido = q.view(...)``), so they take no part in the computation; kept for loading.

Numerics follow the official code where diffusers differs: the timestep sinusoid is computed in float64
(official ``sinusoidal_embedding_1d``) and the time embedding in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import WanTransformer3DModel
from torch import nn


@dataclass(frozen=True)
class EchoMimicV3Config:
    """Sizes of the EchoMimicV3 transformer; the defaults are the released 1.3B models."""

    flash: bool = False
    dim: int = 1536
    num_heads: int = 12
    ffn_dim: int = 8960
    num_layers: int = 30
    in_channels: int = 36
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    image_dim: int = 1280
    eps: float = 1e-6
    text_len: int = 512
    audio_dim: int = 768
    # Flash projector (AudioProjModel: seq_len 5, seq_len_vf 8, 12 wav2vec layers, 512 wide, 32 tokens)
    audio_layers: int = 12
    audio_window: int = 5
    audio_window_vf: int = 8
    audio_intermediate: int = 512
    audio_context_tokens: int = 32

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


class PreviewAudioProjector(nn.Module):
    """``audio2token``: wav2vec2 ``last_hidden_state`` (50 Hz) -> per-latent-frame 17-token windows."""

    def __init__(self, config: EchoMimicV3Config):
        super().__init__()
        self.proj = nn.Linear(config.audio_dim, config.dim, bias=False)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio`` [B, 2*frames, 768] -> [B, latent_frames, 17, dim]."""
        tokens = self.norm(self.proj(audio))
        return preview_audio_windows(tokens)


def preview_window_ranges(length: int) -> list[tuple[int, int]]:
    """The official ``split_audio_sequence`` followed by the ±4 expansion: inclusive [start, end] per latent
    frame, over ``length`` audio tokens (2 per video frame)."""
    frames = length // 2
    per_frame = length / frames
    half = int(per_frame * 4 / 2)
    centres = [0] + [int((per_frame * ((i - 1) * 4 + 1) - 4 + per_frame * (i * 4 + 1) + 4) / 2) - 1
                     for i in range(1, (frames - 1) // 4 + 1)]
    ranges = [[c - half, c + half] for c in centres]
    ranges[0] = [-(half * 2 - ranges[1][0]), ranges[1][0]]
    return [(a - 4, b + 4) for a, b in ranges]


def preview_audio_windows(tokens: torch.Tensor) -> torch.Tensor:
    """Cut the windows; positions outside the sequence become zero tokens appended at the END of the window
    (front padding too), as the official ``split_tensor_with_padding`` does (the zeros are attended)."""
    last = tokens.shape[1] - 1
    windows = []
    for start, end in preview_window_ranges(tokens.shape[1]):
        valid = tokens[:, max(start, 0): min(end, last) + 1]
        missing = max(-start, 0) + max(end - last, 0)
        windows.append(F.pad(valid, (0, 0, 0, missing)))
    return torch.stack(windows, dim=1)


class FlashAudioProjector(nn.Module):
    """``audio_injection``: per latent frame 32 tokens from windows of the 12 wav2vec hidden layers."""

    def __init__(self, config: EchoMimicV3Config):
        super().__init__()
        self.config = config
        width = config.audio_layers * config.audio_dim
        self.proj1 = nn.Linear(config.audio_window * width, config.audio_intermediate)
        self.proj1_vf = nn.Linear(config.audio_window_vf * width, config.audio_intermediate)
        self.proj2 = nn.Linear(config.audio_intermediate, config.audio_intermediate)
        self.proj3 = nn.Linear(config.audio_intermediate, config.audio_context_tokens * config.dim)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio`` [B, frames (4k+1), 5, 12, 768] -> [B, latent_frames, 32, dim]."""
        first, later = flash_audio_windows(audio, self.config.audio_window)
        b = audio.shape[0]
        h_first = torch.relu(self.proj1(first.flatten(2)))
        h_later = torch.relu(self.proj1_vf(later.flatten(2)))
        h = torch.cat([h_first, h_later], dim=1)
        h = torch.relu(self.proj2(h))
        tokens = self.proj3(h).reshape(b, h.shape[1], self.config.audio_context_tokens, self.config.dim)
        return self.norm(tokens)


def flash_audio_windows(audio: torch.Tensor, window: int, vae_scale: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``get_ai2v_audio``: frame 0 keeps its window; each later latent frame (4 video frames) takes
    windows [0..mid] of its first frame, the centre of its middle frames and [mid..] of its last."""
    b, frames = audio.shape[:2]
    first = audio[:, :1]
    later = audio[:, 1:].reshape(b, (frames - 1) // vae_scale, vae_scale, *audio.shape[2:])
    mid = window // 2
    head = later[:, :, :1, : mid + 1].flatten(2, 3)
    middle = later[:, :, 1:-1, mid: mid + 1].flatten(2, 3)
    tail = later[:, :, -1:, mid:].flatten(2, 3)
    return first, torch.cat([head, middle, tail], dim=2)


class AudioCrossAttention(nn.Module):
    """The audio K/V of one block (``blocks.i.cross_attn.*_audio`` in the official files)."""

    def __init__(self, config: EchoMimicV3Config):
        super().__init__()
        bias = config.flash
        if config.flash:
            self.q_audio = nn.Linear(config.dim, config.dim)  # loaded, unused by the official forward
        self.k_audio = nn.Linear(config.dim, config.dim, bias=bias)
        self.v_audio = nn.Linear(config.dim, config.dim, bias=bias)
        self.norm_k_audio = nn.RMSNorm(config.dim, eps=config.eps)


class AudioBranch(nn.Module):
    def __init__(self, config: EchoMimicV3Config):
        super().__init__()
        self.projector: nn.Module = FlashAudioProjector(config) if config.flash else PreviewAudioProjector(config)
        self.blocks = nn.ModuleList(AudioCrossAttention(config) for _ in range(config.num_layers))


@dataclass
class _AudioContext:
    """What the cross-attention processors read during one forward (set by the transformer)."""

    tokens: torch.Tensor | None = None        # [B*latent_frames, window, dim]
    latent_frames: int = 0
    mask: torch.Tensor | None = None          # [B*latent_frames, tokens_per_frame, 1, 1] (preview face box)
    scale: float = 1.0


class AudioCrossAttnProcessor:
    """Wan i2v cross-attention (text + 257 image tokens) plus the EchoMimicV3 audio attention."""

    def __init__(self, audio: AudioCrossAttention, context: _AudioContext):
        # plain attributes of a plain object: the audio module stays registered only under AudioBranch
        self.audio = audio
        self.context = context

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None = None, rotary_emb: Any = None) -> torch.Tensor:
        image_len = encoder_hidden_states.shape[1] - 512
        ctx_img, ctx_txt = encoder_hidden_states[:, :image_len], encoder_hidden_states[:, image_len:]
        b, heads = hidden_states.shape[0], attn.heads
        q = attn.norm_q(attn.to_q(hidden_states))
        k = attn.norm_k(attn.to_k(ctx_txt)).unflatten(2, (heads, -1))
        v = attn.to_v(ctx_txt).unflatten(2, (heads, -1))
        k_img = attn.norm_added_k(attn.add_k_proj(ctx_img)).unflatten(2, (heads, -1))
        v_img = attn.add_v_proj(ctx_img).unflatten(2, (heads, -1))
        q = q.unflatten(2, (heads, -1))

        c = self.context
        assert c.tokens is not None
        a = self.audio
        k_a = a.norm_k_audio(a.k_audio(c.tokens)).unflatten(2, (heads, -1))
        v_a = a.v_audio(c.tokens).unflatten(2, (heads, -1))
        q_a = q.reshape(b * c.latent_frames, -1, heads, q.shape[-1])
        audio_x = _sdpa(q_a, k_a, v_a)
        if c.mask is not None:
            audio_x = audio_x * c.mask
        audio_x = audio_x.reshape(b, -1, heads * q.shape[-1])

        img_x = _sdpa(q, k_img, v_img).flatten(2)
        x = _sdpa(q, k, v).flatten(2)
        x = x + img_x + audio_x * c.scale
        return attn.to_out[0](x)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[B, L, heads, d] in and out."""
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def timestep_sinusoid(dim: int, timestep: torch.Tensor) -> torch.Tensor:
    """Official ``sinusoidal_embedding_1d`` (float64, cos first)."""
    half = dim // 2
    position = timestep.to(torch.float64)
    angles = torch.outer(position, torch.pow(10000, -torch.arange(half, dtype=torch.float64).div(half)))
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class EchoMimicV3Transformer(nn.Module):
    """``wan`` (diffusers' WanTransformer3DModel) + ``audio`` (the EchoMimicV3 branch)."""

    def __init__(self, config: EchoMimicV3Config):
        super().__init__()
        self.config = config
        self.wan = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=config.num_heads, attention_head_dim=config.head_dim,
            in_channels=config.in_channels, out_channels=config.out_channels, text_dim=config.text_dim,
            freq_dim=config.freq_dim, ffn_dim=config.ffn_dim, num_layers=config.num_layers, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=config.eps, image_dim=config.image_dim,
            added_kv_proj_dim=config.dim)
        self.audio = AudioBranch(config)
        self._context = _AudioContext()
        for block, audio_block in zip(self.wan.blocks, self.audio.blocks):
            block.attn2.set_processor(AudioCrossAttnProcessor(audio_block, self._context))

    def time_embedding(self, timestep: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(temb [B, dim], timestep_proj [B, 6, dim]) computed in float32 as the official code does."""
        ce = self.wan.condition_embedder
        weight_dtype = ce.time_embedder.linear_1.weight.dtype
        temb = ce.time_embedder(timestep_sinusoid(self.config.freq_dim, timestep).to(weight_dtype))
        proj = ce.time_proj(ce.act_fn(temb)).unflatten(1, (6, -1))
        return temb.to(dtype), proj.to(dtype)

    def encode_context(self, text_embeds: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        """Text [B, 512, text_dim] (zero-padded) and CLIP [B, 257, 1280] -> the cross-attention context."""
        ce = self.wan.condition_embedder
        return torch.cat([ce.image_embedder(image_embeds), ce.text_embedder(text_embeds)], dim=1)

    def audio_tokens(self, audio: torch.Tensor) -> torch.Tensor:
        """Preview: [B, 2*frames, 768]; Flash: [B, frames, 5, 12, 768] -> [B, latent_frames, window, dim]."""
        return self.audio.projector(audio)

    def forward(self, latents: torch.Tensor, condition: torch.Tensor, timestep: torch.Tensor,
                context: torch.Tensor, audio_tokens: torch.Tensor, face_mask: torch.Tensor | None = None,
                audio_scale: float = 1.0, cache: Any = None) -> torch.Tensor:
        """``latents`` [B,16,F,h,w], ``condition`` [B,20,F,h,w] (mask latents + masked video latents),
        ``context`` from :meth:`encode_context`, ``audio_tokens`` from :meth:`audio_tokens`, ``face_mask``
        [B, h/2*w/2] (1 on face-box tokens; preview only). ``cache``: a TeaCache decision object with
        ``decide(timestep_proj) -> bool`` and ``residual``/``store`` (see pipelines.echomimic_v3)."""
        wan = self.wan
        x = torch.cat([latents, condition], dim=1)
        b, _, frames, height, width = x.shape
        p_t, p_h, p_w = wan.config.patch_size
        rotary = wan.rope(x)
        h = wan.patch_embedding(x).flatten(2).transpose(1, 2).contiguous()
        temb, proj = self.time_embedding(timestep.expand(b) if timestep.ndim == 0 else timestep, h.dtype)

        c = self._context
        c.tokens = audio_tokens.flatten(0, 1).to(h.dtype)
        c.latent_frames = frames
        c.scale = audio_scale
        c.mask = None
        if face_mask is not None:
            c.mask = face_mask.to(h.dtype).repeat_interleave(frames, dim=0).reshape(b * frames, -1, 1, 1)

        compute = True if cache is None else cache.decide(proj)
        if compute:
            start = h
            for block in wan.blocks:
                h = block(h, context, proj, rotary)
            if cache is not None:
                cache.store(h - start)
        else:
            h = h + cache.residual()
        if cache is not None:
            cache.done()
        c.tokens = None
        c.mask = None

        shift, scale = (wan.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
        h = (wan.norm_out(h.float()) * (1 + scale) + shift).type_as(h)
        h = wan.proj_out(h)
        h = h.reshape(b, frames // p_t, height // p_h, width // p_w, p_t, p_h, p_w, -1)
        return h.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)


def tokens_per_frame(height: int, width: int) -> int:
    """Latent tokens per latent frame at a pixel size (VAE /8, patch /2)."""
    return math.ceil(height / 16) * math.ceil(width / 16)

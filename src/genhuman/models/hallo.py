"""The Hallo / Hallo2 network on the shared SD-1.5 stack (spec hallo.md 1.2-1.6).

:class:`HalloNet` has exactly the five attributes of the official ``Net``, so the official
``net.pth`` loads strictly (``genhuman.checkpoints.hallo``):

- ``reference_unet``: :class:`HalloReferenceUNet`, the shared ReferenceUNet2D with
  cross-attention to the image tokens (no output head, as in the official checkpoint);
- ``denoising_unet``: :class:`HalloUNet3D`, the shared backbone with an audio module
  (``genhuman.models.audio_attention``) after each spatial transformer, AnimateDiff motion
  modules, and image tokens (not audio) in every ``attn2``;
- ``face_locator``: the shared ConditionEncoder at Hallo's geometry (3 channels in, 320 out);
- ``imageproj`` / ``audioproj``: :class:`ImageProjModel` / :class:`AudioProjModel`.

The official inference runs the denoiser in training mode with gradient checkpointing (it
never calls ``.eval()``), and only that branch of its blocks is what the released weights
are used with. Its semantics are the canonical ones here, in eval mode without checkpointing:

- every motion module of a block with transformers (and the mid block's) sees the two
  motion-frame features of the reference bank before the clip's frames (18 in, 16 out);
- ``motion_scale`` weights the three audio regions everywhere;
- the motion modules of the blocks without transformers (``down_blocks.3``, ``up_blocks.0``)
  are loaded but never run: that branch skips them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from genhuman.models.attention import ForwardContext, ReferenceBank, ReferenceKV, reference_runs
from genhuman.models.audio_attention import AudioModule, AudioModuleInputs, HalloMasks
from genhuman.models.blocks import BlockSpec
from genhuman.models.condition import ConditionEncoder
from genhuman.models.config import ConditionEncoderConfig, UNetConfig, _DictConfig
from genhuman.models.pretrained import PretrainedMixin
from genhuman.models.unet import ReferenceUNet2D, _Backbone, project_reference

__all__ = ["AudioProjConfig", "AudioProjModel", "FaceLocator", "HalloConfig", "HalloMasks", "HalloNet",
           "HalloReference", "HalloReferenceConfig", "HalloReferenceUNet", "HalloUNet3D", "HalloUNet3DConfig",
           "ImageProjConfig", "ImageProjModel"]

FaceLocator = ConditionEncoder
"""Hallo's FaceLocator is EchoMimic's network: 3-channel face-box image in, stride 8, 320 channels out."""

_TINY_UNET: dict[str, Any] = dict(block_out_channels=(32, 64, 64, 64), attention_blocks=(True, True, True, False),
                                  layers_per_block=1, attention_heads=8, norm_num_groups=32)
TINY_WIDTH = 32  # the tiny config's cross-attention / audio width (the official parity harness's)


@dataclass
class HalloReferenceConfig(UNetConfig):
    """The reference UNet: SD-1.5 geometry plus cross-attention to the image tokens."""

    cross_attention_dim: int = 768


@dataclass
class HalloUNet3DConfig(UNetConfig):
    """The denoising UNet: SD-1.5 geometry, audio modules, AnimateDiff v2 motion modules."""

    out_channels: int = 4
    cross_attention_dim: int = 768  # the image-projection tokens (attn2 of every spatial block)
    audio_attention_dim: int = 768  # the audio-projection tokens (the audio modules)
    motion_heads: int = 8
    motion_max_len: int = 32
    motion_mid_block: bool = True
    # Audio module name -> inner width, where a checkpoint's differs from the official rule
    # (the layer's input width; spec 1.2 "Quirk"). The loader fills it from proj_in's shapes.
    audio_widths: dict[str, int] = field(default_factory=dict)


@dataclass
class ImageProjConfig(_DictConfig):
    cross_attention_dim: int = 768
    clip_embeddings_dim: int = 512  # the raw ArcFace embedding
    clip_extra_context_tokens: int = 4


@dataclass
class AudioProjConfig(_DictConfig):
    seq_len: int = 5  # frames per window (i-2 .. i+2)
    blocks: int = 12  # wav2vec2 layers
    channels: int = 768
    intermediate_dim: int = 512
    output_dim: int = 768
    context_tokens: int = 32

    @property
    def input_dim(self) -> int:
        return self.seq_len * self.blocks * self.channels


@dataclass
class HalloConfig:
    """One config per attribute of :class:`HalloNet`."""

    reference_unet: HalloReferenceConfig = field(default_factory=HalloReferenceConfig)
    denoising_unet: HalloUNet3DConfig = field(default_factory=HalloUNet3DConfig)
    face_locator: ConditionEncoderConfig = field(default_factory=lambda: ConditionEncoderConfig(
        conditioning_channels=3, embedding_channels=320, block_out_channels=(16, 32, 64, 128)))
    imageproj: ImageProjConfig = field(default_factory=ImageProjConfig)
    audioproj: AudioProjConfig = field(default_factory=AudioProjConfig)

    @classmethod
    def sd15(cls) -> "HalloConfig":
        """The released Hallo / Hallo2 ``net.pth`` geometry."""
        return cls()

    @classmethod
    def tiny(cls) -> "HalloConfig":
        """The official parity harness's tiny geometry (shared/tools/parity/official_hallo_ref.py):
        4 levels of (32, 64, 64, 64) channels, 1 layer per block, 8 heads, width 32."""
        c = TINY_WIDTH
        return cls(
            reference_unet=HalloReferenceConfig(**_TINY_UNET, cross_attention_dim=c),
            denoising_unet=HalloUNet3DConfig(**_TINY_UNET, cross_attention_dim=c, audio_attention_dim=c),
            face_locator=ConditionEncoderConfig(conditioning_channels=3, embedding_channels=32,
                                                block_out_channels=(16, 32, 64, 128)),
            imageproj=ImageProjConfig(cross_attention_dim=c),
            audioproj=AudioProjConfig(intermediate_dim=64, output_dim=c))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).to_dict() for name in _PART_CONFIGS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HalloConfig":
        unknown = sorted(set(data) - set(_PART_CONFIGS) - {"_class_name"})
        if unknown:
            raise ValueError(f"HalloConfig: unknown config keys {unknown}")
        return cls(**{name: kind.from_dict(data[name]) for name, kind in _PART_CONFIGS.items() if name in data})


_PART_CONFIGS: dict[str, Any] = {"reference_unet": HalloReferenceConfig, "denoising_unet": HalloUNet3DConfig,
                                 "face_locator": ConditionEncoderConfig, "imageproj": ImageProjConfig,
                                 "audioproj": AudioProjConfig}


class ImageProjModel(nn.Module, PretrainedMixin):
    """Face embedding ``[b, 512]`` -> ``[b, 4, 768]`` image tokens: Linear, reshape, LayerNorm."""

    config_class = ImageProjConfig

    def __init__(self, config: ImageProjConfig):
        super().__init__()
        self.config = config
        self.proj = nn.Linear(config.clip_embeddings_dim, config.clip_extra_context_tokens * config.cross_attention_dim)
        self.norm = nn.LayerNorm(config.cross_attention_dim)

    def forward(self, image_embeds: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(image_embeds.to(self.proj.weight.dtype))
        return self.norm(tokens.reshape(-1, self.config.clip_extra_context_tokens, self.config.cross_attention_dim))


class AudioProjModel(nn.Module, PretrainedMixin):
    """wav2vec windows ``[b, f, 5, 12, 768]`` -> ``[b, f, 32, 768]`` audio tokens (3 Linear, 2 ReLU, LayerNorm)."""

    config_class = AudioProjConfig

    def __init__(self, config: AudioProjConfig):
        super().__init__()
        self.config = config
        self.proj1 = nn.Linear(config.input_dim, config.intermediate_dim)
        self.proj2 = nn.Linear(config.intermediate_dim, config.intermediate_dim)
        self.proj3 = nn.Linear(config.intermediate_dim, config.context_tokens * config.output_dim)
        self.norm = nn.LayerNorm(config.output_dim)

    def forward(self, audio_embeds: torch.Tensor) -> torch.Tensor:
        b, f = audio_embeds.shape[:2]
        x = audio_embeds.reshape(b * f, -1).to(self.proj1.weight.dtype)
        if x.shape[1] != self.config.input_dim:
            raise ValueError(f"audio windows of {x.shape[1]} values per frame; the audio projection takes "
                             f"{self.config.seq_len}x{self.config.blocks}x{self.config.channels}")
        x = torch.relu(self.proj2(torch.relu(self.proj1(x))))
        tokens = self.proj3(x).reshape(b * f, self.config.context_tokens, self.config.output_dim)
        return self.norm(tokens).view(b, f, self.config.context_tokens, self.config.output_dim)


class HalloReferenceUNet(ReferenceUNet2D):
    """The shared ReferenceUNet2D with ``attn2`` over the image tokens: ``forward(latents, 0, context)``."""

    config_class = HalloReferenceConfig

    def __init__(self, config: HalloReferenceConfig):
        super().__init__(config, cross_attention_dim=config.cross_attention_dim)


@dataclass
class HalloReference:
    """The reference bank as the denoiser reads it, made once per clip.

    ``kv``: the reference image's features (bank frame 0) through each block's ``attn1.to_k/to_v``;
    ``motion_frames[name]``: the motion frames' features (bank frames 1..m) ``[b, m, tokens, c]``.
    Both have the denoiser's batch (one entry per CFG half) or batch 1.
    """

    kv: ReferenceKV
    motion_frames: dict[str, torch.Tensor]

    def to(self, *args: Any, **kwargs: Any) -> "HalloReference":
        return HalloReference(self.kv.to(*args, **kwargs),
                              {n: t.to(*args, **kwargs) for n, t in self.motion_frames.items()})


class HalloUNet3D(_Backbone, PretrainedMixin):
    """The denoising UNet: per-frame SD-1.5 layers with reference + image-token attention, audio
    modules, and motion modules fed the reference motion frames."""

    config_class = HalloUNet3DConfig

    def __init__(self, config: HalloUNet3DConfig):
        super().__init__()
        self.config = config
        audio_module = partial(AudioModule, heads=config.attention_heads, groups=config.norm_num_groups,
                               audio_dim=config.audio_attention_dim)
        spec = BlockSpec(config.time_embed_dim, config.attention_heads, config.norm_num_groups, config.norm_eps,
                         cross_attention_dim=config.cross_attention_dim, motion=True,
                         motion_heads=config.motion_heads, motion_max_len=config.motion_max_len,
                         audio_module=audio_module, plain_block_motion=False)
        self._build(config, spec, motion_mid=config.motion_mid_block)
        self._resize_audio_modules(config.audio_widths, audio_module)
        self._set_audio_levels()
        self.conv_norm_out = nn.GroupNorm(config.norm_num_groups, config.block_out_channels[0], eps=config.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(config.block_out_channels[0], config.out_channels, 3, padding=1)

    def _resize_audio_modules(self, widths: dict[str, int], make: Any) -> None:
        for name, module in list(self.named_modules()):
            if isinstance(module, AudioModule) and widths.get(name, module.inner) != module.inner:
                parent, _, index = name.rpartition(".")
                self.get_submodule(parent)[int(index)] = make(module.channels, widths[name])
        unknown = sorted(set(widths) - {n for n, m in self.named_modules() if isinstance(m, AudioModule)})
        if unknown:
            raise ValueError(f"audio_widths names no audio module: {unknown}")

    def _set_audio_levels(self) -> None:
        """Mask level = depth: down block i -> i, mid -> n-1, up block i -> n-1-i."""
        n = len(self.down_blocks)
        placed = [(block, i) for i, block in enumerate(self.down_blocks)] + [(self.mid_block, n - 1)]
        placed += [(block, n - 1 - i) for i, block in enumerate(self.up_blocks)]
        for block, level in placed:
            for module in block.audio_modules or []:
                module.level = level

    @torch.no_grad()
    def prepare_reference(self, bank: ReferenceBank, frames_per_sample: int) -> HalloReference:
        """Split a ReferenceNet bank of ``[(b s), tokens, c]`` (per sample: the reference image, then
        the ``s - 1`` motion frames) into frame-0 K/V and the motion-frame features."""
        views = {}
        for name, tokens in bank.items():
            if tokens.shape[0] % frames_per_sample:
                raise ValueError(f"bank entry {name!r} has {tokens.shape[0]} rows, "
                                 f"not a multiple of {frames_per_sample} frames per sample")
            views[name] = tokens.view(-1, frames_per_sample, *tokens.shape[1:])
        kv = project_reference(self, {name: v[:, 0] for name, v in views.items()})
        kv.cycle_over_frames = True  # the official tiling of the reference over frames (see ReferenceKV)
        return HalloReference(kv, {name: v[:, 1:] for name, v in views.items()})

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int,
                encoder_hidden_states: torch.Tensor, audio_tokens: torch.Tensor | None = None,
                face_features: torch.Tensor | None = None, masks: HalloMasks | None = None,
                motion_scale: Sequence[float] = (1.0, 1.0, 1.0), reference: HalloReference | None = None,
                use_reference: torch.Tensor | Sequence[bool] | None = None) -> torch.Tensor:
        """``sample [b,4,f,h,w]``; ``encoder_hidden_states [b|1, n, dim]`` image tokens (imageproj);
        ``audio_tokens [b,f,32,dim]`` (audioproj; None = zero tokens); ``face_features [b,C0,f|1,h,w]``
        (face locator, added after conv_in); ``masks`` (None = no masking); ``motion_scale`` =
        (pose, face, lip) weights; ``reference`` (None: no reference attention and no motion
        frames); ``use_reference [b]`` (False: that sample attends to its own tokens only, the
        official CFG uncond half; its motion modules still see the motion frames, as officially).
        Returns ``[b,out,f,h,w]``."""
        b, c, f, h, w = sample.shape
        x = sample.transpose(1, 2).reshape(b * f, c, h, w).to(self.conv_in.weight.dtype)
        temb = self._time_embedding(timestep, b, sample.device).repeat_interleave(f, dim=0)
        x = self.conv_in(x)
        if face_features is not None:
            x = (x.view(b, f, *x.shape[1:]) + face_features.transpose(1, 2).to(x.dtype)).reshape(x.shape)
        audio = None if audio_tokens is None else audio_tokens.reshape(b * f, *audio_tokens.shape[2:]).to(x.dtype)
        if len(motion_scale) != 3:
            raise ValueError(f"motion_scale needs 3 weights (pose, face, lip), not {len(motion_scale)}")
        scale = (float(motion_scale[0]), float(motion_scale[1]), float(motion_scale[2]))
        inputs = AudioModuleInputs(audio, None if masks is None else masks.per_token(b, f, x.dtype), scale)
        ctx = ForwardContext(batch=b, frames=f, audio=_per_frame(encoder_hidden_states, b, f).to(x.dtype),
                             reference=None if reference is None else reference.kv,
                             runs=[] if reference is None else reference_runs(use_reference, b),
                             audio_modules=inputs, motion_frames=None if reference is None else reference.motion_frames)
        x = self._trunk(x, temb, ctx)
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return x.view(b, f, *x.shape[1:]).transpose(1, 2)


def _per_frame(tokens: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
    """``[b|1, n, dim]`` -> ``[(b f), n, dim]`` (an expanded view, not a copy, until reshaped)."""
    return tokens[:, None].expand(batch, frames, *tokens.shape[1:]).reshape(batch * frames, *tokens.shape[1:])


class HalloNet(nn.Module, PretrainedMixin):
    """The official ``Net``: the five attributes whose names prefix every key of ``net.pth``."""

    PARTS = tuple(_PART_CONFIGS)  # reference_unet, denoising_unet, face_locator, imageproj, audioproj
    config_class = HalloConfig

    def __init__(self, config: HalloConfig):
        super().__init__()
        self.config = config
        self.reference_unet = HalloReferenceUNet(config.reference_unet)
        self.denoising_unet = HalloUNet3D(config.denoising_unet)
        self.face_locator = FaceLocator(config.face_locator)
        self.imageproj = ImageProjModel(config.imageproj)
        self.audioproj = AudioProjModel(config.audioproj)

    @torch.no_grad()
    def prepare_reference(self, reference_latents: torch.Tensor, encoder_hidden_states: torch.Tensor,
                          bank_dtype: torch.dtype | None = None) -> HalloReference:
        """The official reference pass of one clip (spec 1.6 step 3), at timestep 0.

        ``reference_latents [s, 4, h, w]``: the reference image, then the motion frames;
        ``encoder_hidden_states [b, n, dim]``: the image tokens per denoiser sample (CFG: [uncond, cond]).
        The ReferenceNet runs on the latents once per sample, ``[r, m1, m2] * b``, and, as the
        official write hook repeats the tokens, latent ``i`` attends to tokens ``i mod b``
        (``[u, c, u, c, u, c]`` for CFG). ``bank_dtype=torch.float16`` rounds the bank as the
        official ``ReferenceAttentionControl.update`` does, even in an fp32 run.
        """
        s, b = reference_latents.shape[0], encoder_hidden_states.shape[0]
        bank = self.reference_unet(reference_latents.repeat(b, 1, 1, 1), 0, encoder_hidden_states.repeat(s, 1, 1))
        if bank_dtype is not None:
            bank = {name: tokens.to(bank_dtype) for name, tokens in bank.items()}
        return self.denoising_unet.prepare_reference(bank, s)

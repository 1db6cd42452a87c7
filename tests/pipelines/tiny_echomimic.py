"""Tiny random EchoMimic networks for the pipeline tests (CPU, milliseconds per call)."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL

from genhuman.audio_features.whisper import build_whisper_encoder, whisper_config_from_dims
from genhuman.models import (ConditionEncoder, ConditionEncoderConfig, EchoUNet3D, ReferenceUNet2D,
                             UNet3DConfig, UNetConfig)

AUDIO_DIM = 32
CHANNELS = (16, 32)  # half of UNetConfig.tiny(): keeps a 12-frame window under ~0.2 s on CPU
WHISPER_DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": AUDIO_DIM, "n_audio_head": 2,
                "n_audio_layer": 1}


def tiny_vae() -> AutoencoderKL:
    # 4 levels -> the SD x8 downsampling, at a few thousand parameters
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16),
                         layers_per_block=1, latent_channels=4, norm_num_groups=4)


def tiny_components(seed: int = 0, conditioning_channels: int = 1) -> dict:
    torch.manual_seed(seed)
    components = dict(
        vae=tiny_vae(),
        reference_unet=ReferenceUNet2D(UNetConfig.tiny(block_out_channels=CHANNELS)),
        denoising_unet=EchoUNet3D(UNet3DConfig.tiny(block_out_channels=CHANNELS, cross_attention_dim=AUDIO_DIM)),
        condition_encoder=ConditionEncoder(ConditionEncoderConfig.tiny(
            conditioning_channels=conditioning_channels, embedding_channels=CHANNELS[0])),
        audio_encoder=build_whisper_encoder(whisper_config_from_dims(WHISPER_DIMS)),
    )
    # Official zero-inits (FaceLocator conv_out, motion proj_out) would hide the conditions;
    # give every parameter a small random value so each input changes the output.
    with torch.no_grad():
        for module in components.values():
            for p in module.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    return components

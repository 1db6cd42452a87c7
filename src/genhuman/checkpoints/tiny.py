"""Public testing helper: a tiny RANDOM EchoMimic checkpoint in the OFFICIAL layout.

Shipped in the package on purpose (not a test-only file): the test suite, the benchmarks
and anyone checking an install of the diffusion engines without the real weights use it,
e.g. ``save_tiny_official_checkpoint(tmp, "audio")`` then
``genhuman animate ... --engine echomimic --weights tmp``. It needs the ``[diffusion]``
extra (torch). The API (``save_tiny_official_checkpoint``, ``tiny_whisper_state``,
``tiny_vae``, ``WHISPER_DIMS``) is kept stable like the rest of ``genhuman.checkpoints``.

Same file names and formats as the real weights (``.pth`` state dicts, a diffusers VAE
folder, OpenAI-format whisper ``.pt``, sd-image-variations' unet/config.json carrying the
tiny geometry), at a size that runs in seconds on a CPU. The outputs are noise, of course.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from genhuman.checkpoints.layout import UNET_CONFIG, VAE_DIR, get_variant

WHISPER_DIMS = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=4,
                    n_vocab=16, n_text_ctx=8, n_text_state=64, n_text_head=2, n_text_layer=0)


def _sinusoids(length: int, channels: int) -> torch.Tensor:
    """OpenAI whisper's fixed encoder position table."""
    increment = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2))
    scaled = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


def tiny_whisper_state(dims: dict[str, int] = WHISPER_DIMS, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random OpenAI-format whisper state dict (encoder, plus the decoder's embeddings)."""
    g = torch.Generator().manual_seed(seed)
    n, mels = dims["n_audio_state"], dims["n_mels"]

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * (1.0 / math.sqrt(shape[-1]))

    state = {"encoder.conv1.weight": rnd(n, mels, 3), "encoder.conv1.bias": torch.zeros(n),
             "encoder.conv2.weight": rnd(n, n, 3), "encoder.conv2.bias": torch.zeros(n),
             "encoder.positional_embedding": _sinusoids(dims["n_audio_ctx"], n)}
    for i in range(dims["n_audio_layer"]):
        p = f"encoder.blocks.{i}."
        for proj in ("query", "key", "value", "out"):
            state[p + f"attn.{proj}.weight"] = rnd(n, n)
            if proj != "key":  # whisper's key projection has no bias
                state[p + f"attn.{proj}.bias"] = torch.zeros(n)
        state.update({p + "mlp.0.weight": rnd(4 * n, n), p + "mlp.0.bias": torch.zeros(4 * n),
                      p + "mlp.2.weight": rnd(n, 4 * n), p + "mlp.2.bias": torch.zeros(n)})
        for ln in ("attn_ln", "mlp_ln"):
            state.update({p + f"{ln}.weight": torch.ones(n), p + f"{ln}.bias": torch.zeros(n)})
    state.update({"encoder.ln_post.weight": torch.ones(n), "encoder.ln_post.bias": torch.zeros(n),
                  "decoder.token_embedding.weight": rnd(dims["n_vocab"], dims["n_text_state"]),
                  "decoder.positional_embedding": rnd(dims["n_text_ctx"], dims["n_text_state"]),
                  "decoder.ln.weight": torch.ones(dims["n_text_state"]),
                  "decoder.ln.bias": torch.zeros(dims["n_text_state"])})
    return state


def tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=64)


def _shared_storage(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Views into one flat buffer, as V2's pose_encoder.pth stores its tensors."""
    flat = torch.cat([t.reshape(-1) for t in state.values()] + [torch.zeros(1000)])
    out, offset = {}, 0
    for name, tensor in state.items():
        out[name] = flat[offset: offset + tensor.numel()].view(tensor.shape)
        offset += tensor.numel()
    return out


def save_tiny_official_checkpoint(directory: str | Path, variant: str = "audio", seed: int = 0) -> Path:
    """Write a tiny random checkpoint of ``variant`` in the official layout; returns ``directory``."""
    from genhuman.models import (ConditionEncoder, ConditionEncoderConfig, EchoUNet3D, ReferenceUNet2D,
                                 UNet3DConfig, UNetConfig)  # diffusers: only for the networks

    chosen = get_variant(variant)
    directory = Path(directory)
    torch.manual_seed(seed)
    unet_config = UNetConfig.tiny()
    reference = ReferenceUNet2D(unet_config)
    denoiser = EchoUNet3D(UNet3DConfig.tiny(cross_attention_dim=WHISPER_DIMS["n_audio_state"]))
    condition = ConditionEncoder(ConditionEncoderConfig.tiny(conditioning_channels=chosen.condition_channels))
    directory.mkdir(parents=True, exist_ok=True)
    state = denoiser.state_dict()
    torch.save(reference.state_dict(), directory / chosen.reference_unet)
    torch.save({k: v for k, v in state.items() if ".motion_modules." not in k}, directory / chosen.denoising_unet)
    torch.save({k: v for k, v in state.items() if ".motion_modules." in k}, directory / chosen.motion_module)
    condition_state = condition.state_dict()
    if chosen.family == "echomimic_v2":
        condition_state = _shared_storage(condition_state)
    torch.save(condition_state, directory / chosen.condition_encoder)
    config_path = directory / UNET_CONFIG
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(unet_config.to_diffusers_config(), indent=2) + "\n")
    tiny_vae().save_pretrained(directory / VAE_DIR)
    whisper_name = "audio_processor/tiny.pt" if chosen.family == "echomimic_v2" else "audio_processor/whisper_tiny.pt"
    (directory / whisper_name).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": WHISPER_DIMS, "model_state_dict": tiny_whisper_state(seed=seed)}, directory / whisper_name)
    return directory

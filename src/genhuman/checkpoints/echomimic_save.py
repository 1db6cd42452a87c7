"""Write EchoMimic V1 networks as a weights folder: GenHuman's converted layout (safetensors,
what ``genhuman convert`` makes) or the official file layout (``.pth`` state dicts, the VAE
folder, an OpenAI-format whisper ``.pt``), the inverse of :func:`load_echomimic` for each.

Used by the trainers; either folder runs in ``genhuman animate --engine echomimic --weights DIR``.
For the accelerated (distilled) weights the official layout holds the ``*_acc.pth`` files next
to the teacher's (the acc variant reuses ``reference_unet.pth`` and ``face_locator.pth``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch

from genhuman.checkpoints.layout import MANIFEST, UNET_CONFIG, VAE_DIR, Variant, get_variant
from genhuman.checkpoints.staging import staged_folder
from genhuman.models.pretrained import WEIGHTS_NAME, save_state_dict

MOTION_KEY = ".motion_modules."


def _plain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()}


def whisper_to_openai(encoder) -> dict[str, Any]:
    """A transformers WhisperEncoder -> OpenAI's ``{"dims", "model_state_dict"}`` (encoder only),
    the inverse of :func:`genhuman.audio_features.whisper.convert_openai_whisper`."""
    from genhuman.audio_features.whisper import _BLOCK_RENAMES, _TOP_RENAMES

    block_back = {new: old for old, new in _BLOCK_RENAMES.items()}
    top_back = {new: old for old, new in _TOP_RENAMES.items()}
    state = {}
    for key, value in encoder.state_dict().items():
        if key.startswith("layers."):
            _, index, tail = key.split(".", 2)
            old = next(o + tail[len(n):] for n, o in block_back.items() if tail.startswith(n + "."))
            state[f"encoder.blocks.{index}.{old}"] = value
        else:
            name = next(top_back[n] + key[len(n):] for n in sorted(top_back, key=len, reverse=True)
                        if key == n or key.startswith(n + "."))
            state[f"encoder.{name}"] = value
    config = encoder.config
    dims = dict(n_mels=config.num_mel_bins, n_audio_ctx=config.max_source_positions, n_audio_state=config.d_model,
                n_audio_head=config.encoder_attention_heads, n_audio_layer=config.encoder_layers,
                n_vocab=0, n_text_ctx=0, n_text_state=config.d_model, n_text_head=config.encoder_attention_heads,
                n_text_layer=0)
    return {"dims": dims, "model_state_dict": _plain(state)}


def save_official(directory: Path, networks: dict[str, torch.nn.Module], vae, audio_encoder,
                  variant: str = "audio", teacher: Optional[dict[str, torch.nn.Module]] = None) -> Path:
    """``networks``: reference_unet, denoising_unet, condition_encoder. For an accelerated
    ``variant`` (acc) the denoiser goes to ``*_acc.pth`` and ``teacher`` (the non-acc
    denoiser) fills ``denoising_unet.pth``/``motion_module.pth``, so both variants load."""
    chosen = get_variant(variant)
    directory = Path(directory)
    with staged_folder(directory) as work:
        _write_pth(work, chosen, networks)
        if chosen.accelerated and teacher is not None:
            _write_pth(work, get_variant(variant.replace("acc", "").strip("_") or "audio"), teacher,
                       denoiser_only=True)
        config_path = work / UNET_CONFIG
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(networks["reference_unet"].config.to_diffusers_config(), indent=2) + "\n")
        vae.save_pretrained(work / VAE_DIR)
        (work / "audio_processor").mkdir()
        torch.save(whisper_to_openai(audio_encoder), work / "audio_processor" / "whisper_tiny.pt")
    return directory


def _write_pth(work: Path, chosen: Variant, networks: dict[str, torch.nn.Module], denoiser_only: bool = False) -> None:
    state = _plain(networks["denoising_unet"].state_dict())
    torch.save({k: v for k, v in state.items() if MOTION_KEY not in k}, work / chosen.denoising_unet)
    torch.save({k: v for k, v in state.items() if MOTION_KEY in k}, work / chosen.motion_module)
    if not denoiser_only:
        torch.save(_plain(networks["reference_unet"].state_dict()), work / chosen.reference_unet)
        torch.save(_plain(networks["condition_encoder"].state_dict()), work / chosen.condition_encoder)


def save_converted(directory: Path, networks: dict[str, torch.nn.Module], vae, audio_encoder,
                   variant: str = "audio", extra: Optional[dict[str, Any]] = None) -> Path:
    """The converted layout (see :mod:`genhuman.checkpoints.echomimic`): one safetensors folder
    per network, the VAE, whisper, and the ``genhuman.json`` manifest."""
    chosen = get_variant(variant)
    directory = Path(directory)
    with staged_folder(directory) as work:
        for name in ("reference_unet", "denoising_unet", "condition_encoder"):
            networks[name].save_pretrained(work / name)
        vae.save_pretrained(work / "vae")
        audio_encoder.config.save_pretrained(work / "whisper")
        save_state_dict(audio_encoder.state_dict(), work / "whisper" / WEIGHTS_NAME)
        manifest = {"format": "genhuman-echomimic", "format_version": 1, "family": chosen.family,
                    "variant": chosen.name, "condition_channels": chosen.condition_channels,
                    "accelerated": chosen.accelerated, "dtype": "float32", **(extra or {})}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return directory

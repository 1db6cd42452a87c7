"""Load EchoMimic weights (official layout or our converted folder) and convert between them.

Official layout: the ``.pth`` state dicts of spec §2.9, ``sd-vae-ft-mse/`` (diffusers),
``audio_processor/{whisper_tiny,tiny}.pt`` (OpenAI format) and, optionally,
``sd-image-variations-diffusers/unet/config.json`` (its geometry; SD-1.5 is assumed without it).

Converted layout (``genhuman convert``)::

    genhuman.json                  manifest: family, variant, condition channels, dtype
    reference_unet/                config.json + model.safetensors
    denoising_unet/                2D part and motion modules merged
    condition_encoder/
    vae/                           diffusers AutoencoderKL (safetensors)
    whisper/                       transformers WhisperEncoder config.json + model.safetensors
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genhuman.checkpoints.vae import load_vae
from genhuman.checkpoints.weights import parse_config, read_json, read_safetensors, read_state_dict
from genhuman.checkpoints.layout import (MANIFEST, UNET_CONFIG, VAE_DIR, Variant, check_official, get_variant,
                                         official_root, whisper_file)
from genhuman.checkpoints.staging import check_destination, staged_folder
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models import (ConditionEncoder, ConditionEncoderConfig, EchoUNet3D, ReferenceUNet2D, UNet3DConfig,
                             UNetConfig)
from genhuman.models.pretrained import CONFIG_NAME, WEIGHTS_NAME, save_state_dict
from genhuman.progress import ProgressFn, report

log = logging.getLogger(__name__)

COMPONENTS = ("reference_unet", "denoising_unet", "condition_encoder")


@dataclass
class EchoMimicComponents:
    vae: Any  # diffusers AutoencoderKL
    reference_unet: ReferenceUNet2D
    denoising_unet: EchoUNet3D
    condition_encoder: ConditionEncoder
    audio_encoder: Any  # transformers WhisperEncoder
    variant: Variant
    layout: str  # "official" or "converted"
    source: Path


def is_converted(directory: Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def read_pth(path: Path) -> dict[str, torch.Tensor]:
    """An official state dict, unpickled safely (memory-mapped when it is the zip format);
    a malicious or damaged file is one InputError line."""
    return read_state_dict(path)


def condition_config(state: dict[str, torch.Tensor], what: str = "the condition encoder") -> ConditionEncoderConfig:
    """FaceLocator/PoseEncoder geometry read off the weight shapes (1 or 3 input channels)."""
    keys = ("conv_in.weight", "blocks.1.weight", "blocks.3.weight", "blocks.5.weight")
    if any(state.get(k) is None or state[k].ndim != 4 for k in keys + ("conv_out.weight",)):
        raise InputError(f"{what} is not a FaceLocator/PoseEncoder state dict")
    return ConditionEncoderConfig(
        conditioning_channels=state["conv_in.weight"].shape[1],
        embedding_channels=state["conv_out.weight"].shape[0],
        block_out_channels=tuple(state[k].shape[0] for k in keys))


def _unet_configs(root: Path, denoiser_state: dict[str, torch.Tensor],
                  what: str = "the denoising UNet") -> tuple[UNetConfig, UNet3DConfig]:
    audio_key = next((k for k in denoiser_state if k.endswith("attn2.to_k.weight")), None)
    if audio_key is None or denoiser_state[audio_key].ndim != 2:
        raise InputError(f"{what} is not an EchoMimic denoising UNet state dict")
    audio_dim = denoiser_state[audio_key].shape[1]
    if (root / UNET_CONFIG).is_file():
        return parse_config(root / UNET_CONFIG, lambda data: (
            UNetConfig.from_diffusers_config(data),
            UNet3DConfig.from_diffusers_config(data, cross_attention_dim=audio_dim)))
    return UNetConfig.sd15(), UNet3DConfig.sd15(cross_attention_dim=audio_dim)


def _official_networks(root: Path, variant: Variant, dtype: torch.dtype | None):
    reference_state = read_pth(root / variant.reference_unet)
    denoiser_state = {**read_pth(root / variant.denoising_unet), **read_pth(root / variant.motion_module)}
    condition_state = read_pth(root / variant.condition_encoder)
    ref_config, den_config = _unet_configs(root, denoiser_state, variant.denoising_unet)
    return (
        ReferenceUNet2D.from_state_dict(ref_config, reference_state, dtype, variant.reference_unet),
        EchoUNet3D.from_state_dict(den_config, denoiser_state,
                                   dtype, f"{variant.denoising_unet} + {variant.motion_module}"),
        ConditionEncoder.from_state_dict(condition_config(condition_state, variant.condition_encoder), condition_state,
                                         dtype,
                                         variant.condition_encoder),
    )


def _read_manifest(directory: Path) -> dict[str, Any]:
    return read_json(directory / MANIFEST)


def _check_converted(directory: Path, wanted: str | None) -> Variant:
    manifest = _read_manifest(directory)
    variant = get_variant(str(manifest.get("variant")))
    if wanted is not None and wanted != variant.name:
        raise MissingWeightsError(
            f"{str(directory)!r} holds the converted '{variant.name}' weights, not '{wanted}'; convert that "
            f"variant with `genhuman convert {variant.family} SRC DST --variant {wanted}`")
    missing = [f"{name}/{file}" for name in COMPONENTS + ("whisper",) for file in (CONFIG_NAME, WEIGHTS_NAME)
               if not (directory / name / file).is_file()]
    if not (directory / "vae" / CONFIG_NAME).is_file():
        missing.append("vae/")
    if missing:
        raise MissingWeightsError(f"converted EchoMimic folder {str(directory)!r} is incomplete: missing "
                                  f"{', '.join(missing)}; convert again with `genhuman convert`")
    return variant


def _whisper_from_openai(path: Path):
    from genhuman.audio_features.whisper import build_whisper_encoder, convert_openai_whisper

    return build_whisper_encoder(*convert_openai_whisper(path), path.name)


def _whisper_from_folder(directory: Path):
    from transformers import WhisperConfig

    from genhuman.audio_features.whisper import build_whisper_encoder

    config = parse_config(directory / CONFIG_NAME, WhisperConfig.from_dict)
    return build_whisper_encoder(config, read_safetensors(directory / WEIGHTS_NAME), f"whisper/{WEIGHTS_NAME}")


def load_echomimic(directory: str | Path, variant: str | None = None,
                   dtype: torch.dtype = torch.float32) -> EchoMimicComponents:
    """Every network an EchoMimic pipeline needs, on the CPU in ``dtype`` (the whisper encoder stays fp32).

    ``directory`` is a converted folder (its variant is fixed; ``variant`` may be None) or the
    official layout (``variant`` defaults to "audio"; "v2"/"v2_acc" for EchoMimicV2).
    """
    directory = Path(directory)
    if is_converted(directory):
        chosen = _check_converted(directory, variant)
        return EchoMimicComponents(
            vae=load_vae(directory / "vae", dtype),
            reference_unet=ReferenceUNet2D.from_pretrained(directory / "reference_unet", dtype),
            denoising_unet=EchoUNet3D.from_pretrained(directory / "denoising_unet", dtype),
            condition_encoder=ConditionEncoder.from_pretrained(directory / "condition_encoder", dtype),
            audio_encoder=_whisper_from_folder(directory / "whisper"),
            variant=chosen, layout="converted", source=directory)
    chosen = get_variant(variant or "audio")
    root = official_root(directory)
    check_official(root, chosen)
    reference_unet, denoising_unet, condition_encoder = _official_networks(root, chosen, dtype)
    return EchoMimicComponents(
        vae=load_vae(root / VAE_DIR, dtype),
        reference_unet=reference_unet, denoising_unet=denoising_unet, condition_encoder=condition_encoder,
        audio_encoder=_whisper_from_openai(_checked_whisper_file(root)),
        variant=chosen, layout="official", source=root)


def _checked_whisper_file(root: Path) -> Path:
    """The official whisper file; check_official has already refused a folder without one."""
    path = whisper_file(root)
    if path is None:
        raise MissingWeightsError(f"no whisper file in {str(root)!r}")
    return path


def convert_echomimic(source: str | Path, destination: str | Path, variant: str = "audio",
                      dtype: torch.dtype | None = None, progress: ProgressFn | None = None) -> Path:
    """Official layout -> converted folder (safetensors + config.json per component).

    Writes into a hidden sibling folder and renames it at the end, so a failure leaves nothing.
    ``dtype`` (e.g. ``torch.float16``) casts the UNets and the condition encoder; the VAE and
    whisper stay fp32.
    """
    source, destination = Path(source), Path(destination)
    chosen = get_variant(variant)
    if is_converted(source):
        raise InputError(f"{str(source)!r} is already a converted folder")
    check_destination(destination)
    root = official_root(source)
    check_official(root, chosen)
    with staged_folder(destination) as work:
        networks = _official_networks(root, chosen, None)
        for i, (name, model) in enumerate(zip(COMPONENTS, networks)):
            report(progress, 0.1 + 0.2 * i, f"converting {name}")
            model.save_pretrained(work / name, dtype=dtype)
            del model
        del networks
        report(progress, 0.7, "converting the VAE")
        load_vae(root / VAE_DIR).save_pretrained(work / "vae")
        report(progress, 0.85, "converting whisper")
        from genhuman.audio_features.whisper import convert_openai_whisper

        whisper_config, whisper_state = convert_openai_whisper(_checked_whisper_file(root))
        whisper_config.save_pretrained(work / "whisper")
        save_state_dict(whisper_state, work / "whisper" / WEIGHTS_NAME)
        manifest = {"format": "genhuman-echomimic", "format_version": 1, "family": chosen.family,
                    "variant": chosen.name, "condition_channels": chosen.condition_channels,
                    "accelerated": chosen.accelerated, "dtype": str(dtype or "as-is").replace("torch.", "")}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    report(progress, 1.0, "converted")
    log.info("converted %s (%s) to %s", root, chosen.name, destination)
    return destination

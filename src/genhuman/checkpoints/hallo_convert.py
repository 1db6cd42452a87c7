"""Load Hallo / Hallo2 weights (official layout or our converted folder) and convert between them.

Official layout (spec hallo.md §1.1, :mod:`genhuman.checkpoints.layout`): ``{hallo,hallo2}/net.pth``,
``sd-vae-ft-mse/``, ``wav2vec/wav2vec2-base-960h/``, ``face_analysis/models/{scrfd_10g_bnkps,
glintr100}.onnx``, optionally ``stable-diffusion-v1-5/unet/config.json`` (heads, groups, eps),
``audio_separator/Kim_Vocal_2.onnx`` and Hallo2's ``hallo2/net_g.pth``.

Converted layout (``genhuman convert hallo|hallo2``)::

    genhuman.json                  manifest: format genhuman-hallo, family, dtype
    net/                           HalloNet: config.json (typed HalloConfig) + model.safetensors
    vae/                           diffusers AutoencoderKL (safetensors)
    wav2vec/                       transformers Wav2Vec2Config config.json + model.safetensors
    face_analysis/models/*.onnx    copied (ONNX runs no code), same relative paths
    audio_separator/               copied when the source has it

The audio projection's input is checked against the wav2vec2 in the folder (5 frames x its
layers x its width), so a net.pth and a wav2vec2 that do not belong together are one line.
Hallo2's upscaler (``net_g.pth``) is not converted here.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genhuman.checkpoints.hallo import hallo_config, read_hallo_state
from genhuman.checkpoints.layout import (FACE_DETECTOR, FACE_RECOGNIZER, HALLO_FORMAT, HALLO_UNET_CONFIG, MANIFEST,
                                         VAE_DIR, VOCAL_SEPARATOR, WAV2VEC_DIR, HalloFamily, check_hallo,
                                         get_hallo_family, hallo_missing, hallo_root, optional_file)
from genhuman.checkpoints.vae import load_vae
from genhuman.checkpoints.weights import parse_config, read_json
from genhuman.checkpoints.staging import check_destination, staged_folder
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.hallo import AudioProjConfig, HalloConfig, HalloNet, HalloReferenceConfig, HalloUNet3DConfig
from genhuman.models.pretrained import WEIGHTS_NAME, save_state_dict
from genhuman.progress import ProgressFn, report

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class HalloComponents:
    net: HalloNet
    vae: Any  # diffusers AutoencoderKL
    wav2vec: Any  # transformers Wav2Vec2Model (fp32)
    face_detector: Path  # SCRFD ONNX
    face_recognizer: Path  # glintr100 ArcFace ONNX
    vocal_separator: Path | None  # Kim_Vocal_2.onnx; None: the audio is used as it is
    upscaler: Path | None  # Hallo2's net_g.pth, when the official folder has it
    family: HalloFamily
    layout: str  # "official" or "converted"
    source: Path


def is_converted_hallo(directory: str | Path) -> bool:
    """A folder written by :func:`convert_hallo` (its manifest says so)."""
    path = Path(directory) / MANIFEST
    return path.is_file() and read_json(path).get("format") == HALLO_FORMAT


def _is_converted(directory: Path) -> bool:
    """Any converted folder (Hallo's or another family's): it has a manifest."""
    return (directory / MANIFEST).is_file()


def _audio_windows(wav2vec_config: Any) -> AudioProjConfig:
    """The windows wav2vec2 gives the audio projection: 5 frames x its layers x its width."""
    return AudioProjConfig(blocks=wav2vec_config.num_hidden_layers, channels=wav2vec_config.hidden_size)


def _check_audio_windows(takes: int, windows: AudioProjConfig, what: str, wav2vec: str) -> None:
    if takes != windows.input_dim:
        raise InputError(f"{what}'s audio projection takes {takes} values per frame, but {wav2vec} gives "
                         f"{windows.input_dim} ({windows.seq_len} frames x {windows.blocks} layers x "
                         f"{windows.channels}); they do not belong together")


def _base_config(root: Path, windows: AudioProjConfig) -> HalloConfig:
    """What net.pth's shapes do not show: heads, groups and eps from the SD-1.5 UNet config when
    the folder has it (SD-1.5's otherwise), and the audio windows' layers and width."""
    base = HalloConfig.sd15()
    if (root / HALLO_UNET_CONFIG).is_file():
        base.reference_unet, base.denoising_unet = parse_config(root / HALLO_UNET_CONFIG, lambda data: (
            HalloReferenceConfig.from_diffusers_config(data), HalloUNet3DConfig.from_diffusers_config(data)))
    base.audioproj = windows
    return base


def _official_net(root: Path, family: HalloFamily, wav2vec_config: Any, dtype: torch.dtype | None) -> HalloNet:
    state = read_hallo_state(root / family.net)
    windows = _audio_windows(wav2vec_config)
    proj1 = state.get("audioproj.proj1.weight")
    if proj1 is not None and proj1.ndim == 2:  # otherwise hallo_config names what is wrong
        _check_audio_windows(proj1.shape[1], windows, family.net, f"{WAV2VEC_DIR}/")
    return HalloNet.from_state_dict(hallo_config(state, _base_config(root, windows), family.net), state, dtype,
                                    family.net)


def _load_wav2vec(folder: Path):
    from genhuman.audio_features.wav2vec import load_wav2vec

    return load_wav2vec(folder)


def _check_converted(directory: Path, wanted: str | None) -> HalloFamily:
    manifest = read_json(directory / MANIFEST)
    if manifest.get("format") != HALLO_FORMAT:
        raise MissingWeightsError(f"{str(directory)!r} holds converted {manifest.get('family', 'other')} weights, "
                                  f"not Hallo's")
    family = get_hallo_family(str(manifest.get("family")))
    if wanted is not None and wanted != family.name:
        raise MissingWeightsError(f"{str(directory)!r} holds the converted {family.name} weights, not {wanted}; "
                                  f"convert those with `genhuman convert {wanted} SRC DST`")
    missing = hallo_missing(directory, family, converted=True)
    if missing:
        raise MissingWeightsError(f"converted Hallo folder {str(directory)!r} is incomplete: missing "
                                  f"{', '.join(missing)}; convert again with `genhuman convert {family.name}`")
    return family


def check_hallo_weights(directory: str | Path, family: str | None = None) -> HalloFamily:
    """The cheap check (no network is read): raise one MissingWeightsError naming everything the
    folder lacks; return the family it will load."""
    directory = Path(directory)
    if _is_converted(directory):
        return _check_converted(directory, family)
    chosen = get_hallo_family(family or "hallo")
    check_hallo(hallo_root(directory), chosen)
    return chosen


def load_hallo(directory: str | Path, family: str | None = None,
               dtype: torch.dtype = torch.float32) -> HalloComponents:
    """Every network a Hallo pipeline needs, on the CPU in ``dtype`` (wav2vec2 stays fp32), and
    the paths of the ONNX files it runs with onnxruntime.

    ``directory``: a converted folder (its family is fixed; ``family`` may be None) or the
    official layout (``family`` "hallo", the default, or "hallo2").
    """
    directory = Path(directory)
    chosen = check_hallo_weights(directory, family)
    if _is_converted(directory):
        root, layout = directory, "converted"
        wav2vec = _load_wav2vec(directory / "wav2vec")
        net = HalloNet.from_pretrained(directory / "net", dtype)
        _check_audio_windows(net.config.audioproj.input_dim, _audio_windows(wav2vec.config), "net/", "wav2vec/")
        vae = load_vae(directory / "vae", dtype)
        upscaler = None
    else:
        root, layout = hallo_root(directory), "official"
        wav2vec = _load_wav2vec(root / WAV2VEC_DIR)
        net = _official_net(root, chosen, wav2vec.config, dtype)
        vae = load_vae(root / VAE_DIR, dtype)
        upscaler = optional_file(root, chosen.upscaler)
    return HalloComponents(net=net, vae=vae, wav2vec=wav2vec, face_detector=root / FACE_DETECTOR,
                           face_recognizer=root / FACE_RECOGNIZER,
                           vocal_separator=optional_file(root, VOCAL_SEPARATOR), upscaler=upscaler,
                           family=chosen, layout=layout, source=root)


def _save_wav2vec(model: Any, folder: Path) -> None:
    """The bare model's config and tensors (the CTC head dropped; weight norm as this torch names it)."""
    model.config.save_pretrained(folder)
    save_state_dict(model.state_dict(), folder / WEIGHTS_NAME)


def _copy_onnx(root: Path, work: Path) -> None:
    for name in (FACE_DETECTOR, FACE_RECOGNIZER):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, work / name)
    if optional_file(root, VOCAL_SEPARATOR) is not None:  # with the audio-separator package's json files
        shutil.copytree(root / Path(VOCAL_SEPARATOR).parent, work / Path(VOCAL_SEPARATOR).parent)


def convert_hallo(source: str | Path, destination: str | Path, family: str = "hallo",
                  dtype: torch.dtype | None = None, progress: ProgressFn | None = None) -> Path:
    """Official layout -> converted folder. Written into a hidden sibling folder, renamed at the
    end, so a failure leaves nothing. ``dtype`` (e.g. ``torch.float16``) casts the net; the VAE
    and wav2vec2 stay fp32."""
    source, destination = Path(source), Path(destination)
    chosen = get_hallo_family(family)
    if _is_converted(source):
        raise InputError(f"{str(source)!r} is already a converted folder")
    check_destination(destination)
    root = hallo_root(source)
    check_hallo(root, chosen)
    with staged_folder(destination) as work:
        report(progress, 0.05, "reading wav2vec2")
        wav2vec = _load_wav2vec(root / WAV2VEC_DIR)
        report(progress, 0.1, f"converting {chosen.net}")
        _official_net(root, chosen, wav2vec.config, None).save_pretrained(work / "net", dtype=dtype)
        report(progress, 0.7, "converting the VAE")
        load_vae(root / VAE_DIR).save_pretrained(work / "vae")
        report(progress, 0.85, "converting wav2vec2")
        _save_wav2vec(wav2vec, work / "wav2vec")
        _copy_onnx(root, work)
        manifest = {"format": HALLO_FORMAT, "format_version": FORMAT_VERSION, "family": chosen.name,
                    "dtype": str(dtype or "as-is").replace("torch.", "")}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    report(progress, 1.0, "converted")
    log.info("converted %s (%s) to %s", root, chosen.name, destination)
    return destination


__all__ = ["HalloComponents", "check_hallo_weights", "convert_hallo", "is_converted_hallo", "load_hallo"]

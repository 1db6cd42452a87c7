"""Which files each EchoMimic variant (spec echomimic.md §2.2, §2.9) and each Hallo family (spec
hallo.md §1.1, §2.1) needs, in the official layout. No torch here: ``genhuman download`` uses it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genhuman.errors import MissingWeightsError

VAE_DIR = "sd-vae-ft-mse"
UNET_CONFIG = "sd-image-variations-diffusers/unet/config.json"  # optional: only its geometry is used
WHISPER_FILES = ("audio_processor/whisper_tiny.pt", "audio_processor/tiny.pt")  # V1 name, V2 name
MANIFEST = "genhuman.json"  # marks a converted folder


@dataclass(frozen=True)
class Variant:
    name: str
    family: str  # "echomimic" (V1) or "echomimic_v2"
    denoising_unet: str
    motion_module: str
    reference_unet: str
    condition_encoder: str
    condition_channels: int  # 1: face mask (V1 audio), 3: landmark/pose rendering
    accelerated: bool  # distilled weights: 6 steps, no CFG

    @property
    def repo_id(self) -> str:
        return REPOS[self.family]

    @property
    def files(self) -> tuple[str, ...]:
        return (self.denoising_unet, self.reference_unet, self.motion_module, self.condition_encoder)


REPOS = {"echomimic": "BadToBest/EchoMimic", "echomimic_v2": "BadToBest/EchoMimicV2"}

VARIANTS: dict[str, Variant] = {v.name: v for v in [
    Variant("audio", "echomimic", "denoising_unet.pth", "motion_module.pth", "reference_unet.pth",
            "face_locator.pth", 1, False),
    Variant("acc", "echomimic", "denoising_unet_acc.pth", "motion_module_acc.pth", "reference_unet.pth",
            "face_locator.pth", 1, True),
    Variant("pose", "echomimic", "denoising_unet_pose.pth", "motion_module_pose.pth", "reference_unet_pose.pth",
            "face_locator_pose.pth", 3, False),
    Variant("pose_acc", "echomimic", "denoising_unet_pose_acc.pth", "motion_module_pose_acc.pth",
            "reference_unet_pose.pth", "face_locator_pose.pth", 3, True),
    Variant("v2", "echomimic_v2", "denoising_unet.pth", "motion_module.pth", "reference_unet.pth",
            "pose_encoder.pth", 3, False),
    Variant("v2_acc", "echomimic_v2", "denoising_unet_acc.pth", "motion_module_acc.pth", "reference_unet.pth",
            "pose_encoder.pth", 3, True),
]}


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise MissingWeightsError(f"unknown EchoMimic variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def official_root(directory: Path) -> Path:
    """The folder holding the .pth files: DIR itself or DIR/pretrained_weights (a repo clone)."""
    nested = directory / "pretrained_weights"
    if not any(directory.glob("*.pth")) and nested.is_dir():
        return nested
    return directory


def whisper_file(root: Path) -> Path | None:
    return next((root / name for name in WHISPER_FILES if (root / name).is_file()), None)


def check_official(root: Path, variant: Variant) -> None:
    """Raise one MissingWeightsError naming every file the variant needs that is absent."""
    if not root.is_dir():
        raise MissingWeightsError(
            f"weights folder {str(root)!r} does not exist; get the weights with "
            f"`genhuman download {variant.family} --dir {root}` (Hugging Face repo {variant.repo_id})")
    missing = [name for name in variant.files if not (root / name).is_file()]
    if not (root / VAE_DIR / "config.json").is_file():
        missing.append(f"{VAE_DIR}/")
    if whisper_file(root) is None:
        missing.append(" or ".join(WHISPER_FILES))
    if missing:
        raise MissingWeightsError(
            f"EchoMimic weights ({variant.name}) incomplete in {str(root)!r}: missing {', '.join(missing)}; "
            f"get them with `genhuman download {variant.family} --dir {root}` "
            f"(Hugging Face repo {variant.repo_id})")


# ---------------------------------------------------------------- Hallo / Hallo2 (spec hallo.md §1.1, §2.1)
#
# The official folder is the Hugging Face repo cloned as ``pretrained_models/`` (or that
# folder's parent, a clone of the code). GenHuman reads only what it runs: the net, the VAE,
# wav2vec2 and, of insightface's antelopev2 pack, the detector and the ArcFace network (the
# masks come from GenHuman's own MediaPipe landmarks, so face_landmarker_v2_with_blendshapes.task
# and the other .onnx files are not needed). The SD-1.5 UNet config is optional (only its
# heads, groups and eps; the geometry is read off net.pth), and so is the vocal separator.

HALLO_CLONE_DIR = "pretrained_models"
HALLO_UNET_CONFIG = "stable-diffusion-v1-5/unet/config.json"  # optional
WAV2VEC_DIR = "wav2vec/wav2vec2-base-960h"
WAV2VEC_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
VAE_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
FACE_DETECTOR = "face_analysis/models/scrfd_10g_bnkps.onnx"  # SCRFD-10G with keypoints
FACE_RECOGNIZER = "face_analysis/models/glintr100.onnx"  # ArcFace R100: the raw 512-d embedding
VOCAL_SEPARATOR = "audio_separator/Kim_Vocal_2.onnx"  # optional: without it the audio is not separated
HALLO_FORMAT = "genhuman-hallo"  # the converted folder's manifest format


@dataclass(frozen=True)
class HalloFamily:
    name: str  # "hallo" or "hallo2"
    repo_id: str
    net: str  # the one file of the five networks (the same 2656 keys in both families)
    upscaler: str | None  # Hallo2's temporal face super-resolution (``genhuman upscale``), not needed to animate
    extras: tuple[str, ...]  # other patterns ``genhuman download`` fetches

    @property
    def download_patterns(self) -> list[str]:
        wanted = [self.net, HALLO_UNET_CONFIG, f"{VAE_DIR}/*", f"{WAV2VEC_DIR}/*", "audio_separator/*",
                  FACE_DETECTOR, FACE_RECOGNIZER, *self.extras]
        return wanted + ([self.upscaler] if self.upscaler else [])


HALLO_FAMILIES: dict[str, HalloFamily] = {f.name: f for f in [
    HalloFamily("hallo", "fudan-generative-ai/hallo", "hallo/net.pth", None, ()),
    HalloFamily("hallo2", "fudan-generative-ai/hallo2", "hallo2/net.pth", "hallo2/net_g.pth",
                ("realesrgan/RealESRGAN_x2plus.pth",)),  # the optional background upscaler
]}


def get_hallo_family(name: str) -> HalloFamily:
    if name not in HALLO_FAMILIES:
        raise MissingWeightsError(f"unknown Hallo family {name!r}; choose one of: {', '.join(HALLO_FAMILIES)}")
    return HALLO_FAMILIES[name]


def hallo_root(directory: Path) -> Path:
    """The folder holding ``hallo/``, ``wav2vec/``...: DIR itself or DIR/pretrained_models (a code clone)."""
    nested = directory / HALLO_CLONE_DIR
    if nested.is_dir() and not any((directory / f.net).is_file() for f in HALLO_FAMILIES.values()):
        return nested
    return directory


def _folder_missing(root: Path, folder: str, weights: tuple[str, ...]) -> str | None:
    """``folder/`` and what it lacks, or None when it has config.json and one of ``weights``."""
    lacks = [] if (root / folder / "config.json").is_file() else ["config.json"]
    if not any((root / folder / name).is_file() for name in weights):
        lacks.append(" or ".join(weights))
    return f"{folder}/ ({' and '.join(lacks)})" if lacks else None


def _face_analysis_missing(root: Path) -> str | None:
    absent = [Path(name).name for name in (FACE_DETECTOR, FACE_RECOGNIZER) if not (root / name).is_file()]
    if not absent:
        return None
    return (f"{Path(FACE_DETECTOR).parent}/{' and '.join(absent)} (insightface's antelopev2 pack: Hallo's face "
            f"embedding is glintr100's ArcFace of the SCRFD-detected face, run with onnxruntime; GenHuman's own "
            f"MediaPipe landmarks give the masks, so the other face_analysis files are not needed)")


def hallo_missing(root: Path, family: HalloFamily, converted: bool = False) -> list[str]:
    """What a Hallo folder lacks to animate: the official layout, or (``converted``) ours."""
    if converted:
        missing = [m for m in (_folder_missing(root, "net", ("model.safetensors",)),
                               _folder_missing(root, "vae", VAE_WEIGHTS),
                               _folder_missing(root, "wav2vec", ("model.safetensors",))) if m]
    else:
        missing = [] if (root / family.net).is_file() else [family.net]
        missing += [m for m in (_folder_missing(root, VAE_DIR, VAE_WEIGHTS),
                                _folder_missing(root, WAV2VEC_DIR, WAV2VEC_WEIGHTS)) if m]
    face = _face_analysis_missing(root)
    return missing + ([face] if face else [])


def check_hallo(root: Path, family: HalloFamily) -> None:
    """Raise one MissingWeightsError naming everything the official folder lacks for ``family``."""
    get = f"get them with `genhuman download {family.name} --dir {root}` (Hugging Face repo {family.repo_id})"
    if not root.is_dir():
        raise MissingWeightsError(f"weights folder {str(root)!r} does not exist; {get}")
    missing = hallo_missing(root, family)
    if missing:
        raise MissingWeightsError(f"Hallo weights ({family.name}) incomplete in {str(root)!r}: missing "
                                  f"{', '.join(missing)}; {get}")


def optional_file(root: Path, name: str | None) -> Path | None:
    """``root/name`` when it exists (the vocal separator, Hallo2's upscaler), else None."""
    return root / name if name is not None and (root / name).is_file() else None

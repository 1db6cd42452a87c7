"""Which files each EchoMimic variant needs, in the official layout (spec echomimic.md §2.2, §2.9)."""

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

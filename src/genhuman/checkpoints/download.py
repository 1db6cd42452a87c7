"""``genhuman download echomimic|echomimic_v2|hallo|hallo2|echomimic_v3``: official weights from the Hugging Face hub.

V1's repo holds everything. V2's repo lacks the VAE and whisper (spec §2.9): the VAE comes
from ``stabilityai/sd-vae-ft-mse`` and whisper ``tiny.pt`` from OpenAI's public URL (checked
against its SHA-256). sd-image-variations is not needed: its UNet geometry is built in.
Hallo's and Hallo2's repos hold everything; only what GenHuman runs is fetched (not the
SD-1.5 UNet weights, nor the AnimateDiff module, which net.pth already holds, nor the
landmarker and insightface models it does not use).
Connectivity is checked first, so offline it fails in seconds with one clear line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from genhuman.checkpoints.layout import HALLO_FAMILIES, VAE_DIR, VARIANTS, get_hallo_family, hallo_missing, whisper_file
from genhuman.errors import GenHumanError, InputError

log = logging.getLogger(__name__)

FAMILIES = ("echomimic", "echomimic_v2")
VAE_REPO = "stabilityai/sd-vae-ft-mse"
WHISPER_SHA256 = "65147644a518d12f04e32d6f3b26facc3f8dd46e5390956a9424a650c0ce22b9"
WHISPER_URL = f"https://openaipublic.azureedge.net/main/whisper/models/{WHISPER_SHA256}/tiny.pt"
CONNECT_TIMEOUT_S = 5.0


class DownloadError(GenHumanError):
    """The hub (or a mirror) could not be reached or returned something wrong."""


def check_connectivity(url: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    if os.environ.get("HF_HUB_OFFLINE") == "1" and "huggingface" in url:
        raise DownloadError("HF_HUB_OFFLINE=1 is set; unset it to download weights")
    host = urlparse(url).hostname or url
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as exc:
        raise DownloadError(f"cannot reach {host} ({exc.__class__.__name__}: {exc}); check the network or "
                            f"download the weights elsewhere and pass their folder with --weights") from None


def _connect_hub() -> None:
    """Fail in seconds when the hub cannot be reached, and bound every later request."""
    check_connectivity(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")


def _snapshot(repo: str, directory: Path, patterns: list[str] | None) -> None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        snapshot_download(repo, local_dir=directory, allow_patterns=patterns)
    except (HfHubHTTPError, OSError) as exc:
        raise DownloadError(f"download from the Hugging Face hub failed: {exc}".splitlines()[0]) from None


def _patterns(family: str, variant: str | None) -> list[str] | None:
    if variant is None:
        return None
    chosen = VARIANTS.get(variant)
    if chosen is None or chosen.family != family:
        names = [v.name for v in VARIANTS.values() if v.family == family]
        raise InputError(f"variant {variant!r} is not one of {family}'s: {', '.join(names)}")
    return list(chosen.files) + [f"{VAE_DIR}/*", "audio_processor/*"]


def _fetch_whisper(target: Path) -> None:
    check_connectivity(WHISPER_URL)
    partial = target.with_suffix(".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(WHISPER_URL, timeout=30) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != WHISPER_SHA256:
            raise DownloadError("whisper tiny.pt failed its SHA-256 check")
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)


def download_echomimic(family: str, directory: str | Path, variant: str | None = None) -> Path:
    """Fetch ``family``'s official weights (one ``variant``'s files, or all) into ``directory``."""
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r}; choose one of: {', '.join(FAMILIES)}")
    directory = Path(directory)
    patterns = _patterns(family, variant)
    _connect_hub()
    repo = "BadToBest/EchoMimic" if family == "echomimic" else "BadToBest/EchoMimicV2"
    _snapshot(repo, directory, patterns)
    if not (directory / VAE_DIR / "config.json").is_file():
        _snapshot(VAE_REPO, directory / VAE_DIR, ["config.json", "diffusion_pytorch_model.safetensors"])
    if whisper_file(directory) is None:
        _fetch_whisper(directory / "audio_processor" / ("tiny.pt" if family == "echomimic_v2" else "whisper_tiny.pt"))
    shutil.rmtree(directory / ".cache", ignore_errors=True)  # huggingface_hub's local_dir bookkeeping
    log.info("downloaded %s to %s", repo, directory)
    return directory


def download_hallo(family: str, directory: str | Path, variant: str | None = None) -> Path:
    """Fetch ``family``'s ("hallo" or "hallo2") official weights into ``directory``: the files
    GenHuman runs, in the official ``pretrained_models/`` layout."""
    if family not in HALLO_FAMILIES:
        raise InputError(f"unknown model family {family!r}; choose one of: {', '.join(HALLO_FAMILIES)}")
    if variant is not None:
        raise InputError(f"{family} has no variants (--variant {variant})")
    chosen = get_hallo_family(family)
    directory = Path(directory)
    _connect_hub()
    _snapshot(chosen.repo_id, directory, chosen.download_patterns)
    shutil.rmtree(directory / ".cache", ignore_errors=True)
    missing = hallo_missing(directory, chosen)
    if missing:  # the repo changed under us: say what it lacked
        raise DownloadError(f"{chosen.repo_id} did not provide {', '.join(missing)}")
    log.info("downloaded %s to %s", chosen.repo_id, directory)
    return directory


# EchoMimicV3 (spec echomimic_v3.md §1): the README's folder layout, one folder per variant.
ECHOMIMIC_V3_BASE_REPO = "alibaba-pai/Wan2.1-Fun-V1.1-1.3B-InP"
ECHOMIMIC_V3_REPO = "BadToBest/EchoMimicV3"
ECHOMIMIC_V3_AUDIO = {"preview": ("facebook/wav2vec2-base-960h", "wav2vec2-base-960h"),
                      "flash": ("TencentGameMate/chinese-wav2vec2-base", "chinese-wav2vec2-base")}


def download_echomimic_v3(directory: str | Path, variant: str | None = None) -> Path:
    """Fetch the Wan2.1-Fun base, the EchoMimicV3 preview (or ``flash``) transformer and its wav2vec2 into
    ``directory`` (``--weights`` of ``--engine echomimic_v3`` / ``echomimic_v3_flash``)."""
    chosen = variant or "preview"
    if chosen not in ECHOMIMIC_V3_AUDIO:
        raise InputError(f"variant {chosen!r} is not one of echomimic_v3's: preview, flash")
    directory = Path(directory)
    _connect_hub()
    _snapshot(ECHOMIMIC_V3_BASE_REPO, directory / "Wan2.1-Fun-V1.1-1.3B-InP", None)
    source = "transformer/*" if chosen == "preview" else "echomimicv3-flash-pro/transformer/*"
    _snapshot(ECHOMIMIC_V3_REPO, directory / ".v3", [source])
    fetched = directory / ".v3" / source.rsplit("/", 1)[0]
    (directory / "transformer").mkdir(parents=True, exist_ok=True)
    for item in fetched.iterdir():
        shutil.move(str(item), directory / "transformer" / item.name)
    shutil.rmtree(directory / ".v3", ignore_errors=True)
    repo, folder = ECHOMIMIC_V3_AUDIO[chosen]
    _snapshot(repo, directory / folder, None)
    for leftover in directory.rglob(".cache"):
        shutil.rmtree(leftover, ignore_errors=True)
    log.info("downloaded EchoMimicV3 %s to %s", chosen, directory)
    return directory

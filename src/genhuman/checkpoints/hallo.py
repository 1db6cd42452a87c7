"""Load the official Hallo / Hallo2 ``net.pth`` strictly into one :class:`HalloNet`.

The file is the official ``Net``'s whole state dict (2656 keys at full size; Hallo2's has the
same keys and shapes): every key starts with one of ``reference_unet``, ``denoising_unet``,
``face_locator``, ``imageproj``, ``audioproj``. It is read by ``checkpoints.weights``
(``torch.load(weights_only=True)``, memory-mapped); the geometry comes from its shapes (block
widths, layers, cross-attention and audio widths, each audio module's inner width, the
projections), the rest (heads, groups, eps) from the SD-1.5 defaults or a config given by the
caller. A file of another family, a damaged file or one whose keys do not match is one
InputError line.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from genhuman.checkpoints.echomimic import condition_config
from genhuman.checkpoints.weights import check_model_size, read_state_dict
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.hallo import AudioProjConfig, HalloConfig, HalloNet, ImageProjConfig

NET_FILES = {"hallo": "hallo/net.pth", "hallo2": "hallo2/net.pth"}
REPOS = {"hallo": "fudan-generative-ai/hallo", "hallo2": "fudan-generative-ai/hallo2"}
_AUDIO_PROJ_IN = re.compile(r"(.+\.audio_modules\.\d+)\.proj_in\.weight")


def hallo_net_file(weights: str | Path, family: str = "hallo") -> Path:
    """``WEIGHTS/hallo/net.pth`` (or ``hallo2/``), also under ``WEIGHTS/pretrained_models/`` (a repo clone)."""
    if family not in NET_FILES:
        raise InputError(f"unknown Hallo family {family!r}; choose one of: {', '.join(NET_FILES)}")
    weights = Path(weights)
    for root in (weights, weights / "pretrained_models"):
        if (root / NET_FILES[family]).is_file():
            return root / NET_FILES[family]
    raise MissingWeightsError(f"{NET_FILES[family]} is missing in {str(weights)!r}; get it with "
                              f"`genhuman download {family} --dir {weights}` (Hugging Face repo {REPOS[family]})")


def _named(path: Path) -> str:
    """``hallo/net.pth`` or ``hallo2/net.pth``: both files are called net.pth."""
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def read_hallo_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``net.pth`` state dict; refused in one line unless it has the five official parts."""
    path = Path(path)
    state = read_state_dict(path)
    parts = {key.split(".", 1)[0] for key in state}
    if not set(HalloNet.PARTS) <= parts:
        sample = ", ".join(sorted(state)[:2]) or "none"
        raise InputError(f"{_named(path)} is not a Hallo net.pth: its keys do not start with "
                         f"{', '.join(HalloNet.PARTS)} (keys such as {sample})")
    return state


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) + 1:]: value for key, value in state.items() if key.startswith(prefix + ".")}


def _unet_geometry(unet: dict[str, torch.Tensor]) -> dict[str, object]:
    channels: list[int] = []
    attention: list[bool] = []
    while (weight := unet.get(f"down_blocks.{len(channels)}.resnets.0.conv1.weight")) is not None:
        attention.append(f"down_blocks.{len(channels)}.attentions.0.norm.weight" in unet)
        channels.append(weight.shape[0])
    layers = len({key.split(".")[3] for key in unet if key.startswith("down_blocks.0.resnets.")})
    geometry = dict(in_channels=unet["conv_in.weight"].shape[1], block_out_channels=tuple(channels),
                    attention_blocks=tuple(attention), layers_per_block=layers)
    check_model_size({"layers_per_block": layers, "block_out_channels": channels}, "net.pth")
    return geometry


def _width(part: dict[str, torch.Tensor], suffix: str) -> int:
    return next(v.shape[1] for k, v in part.items() if k.endswith(suffix))


def hallo_config(state: dict[str, torch.Tensor], base: HalloConfig | None = None,
                 what: str = "net.pth") -> HalloConfig:
    """The geometry of a ``net.pth`` read off its shapes, over ``base`` (SD-1.5 by default) for
    what shapes do not show (heads, norm groups, eps)."""
    base = base or HalloConfig.sd15()
    ref, den = _part(state, "reference_unet"), _part(state, "denoising_unet")
    image, audio = _part(state, "imageproj"), _part(state, "audioproj")
    try:
        widths = {m.group(1): v.shape[0] for k, v in den.items() if (m := _AUDIO_PROJ_IN.fullmatch(k))}
        motion_len = next(v.shape[1] for k, v in den.items() if k.endswith("pos_encoder.pe"))
        image_dim = image["norm.weight"].shape[0]
        audio_dim = audio["norm.weight"].shape[0]
        config = HalloConfig(
            reference_unet=type(base.reference_unet).from_dict({
                **base.reference_unet.to_dict(), **_unet_geometry(ref),
                "cross_attention_dim": _width(ref, "attn2.to_k.weight")}),
            denoising_unet=type(base.denoising_unet).from_dict({
                **base.denoising_unet.to_dict(), **_unet_geometry(den),
                "out_channels": den["conv_out.weight"].shape[0],
                "cross_attention_dim": _width(den, "attn2.to_k.weight"),
                "audio_attention_dim": _width(den, "attn2_0.to_k.weight"),
                "motion_max_len": motion_len, "audio_widths": widths}),
            face_locator=condition_config(_part(state, "face_locator"), f"{what}'s face_locator"),
            imageproj=ImageProjConfig(cross_attention_dim=image_dim, clip_embeddings_dim=image["proj.weight"].shape[1],
                                      clip_extra_context_tokens=image["proj.weight"].shape[0] // image_dim),
            audioproj=AudioProjConfig(
                seq_len=base.audioproj.seq_len, blocks=base.audioproj.blocks, channels=base.audioproj.channels,
                intermediate_dim=audio["proj1.weight"].shape[0], output_dim=audio_dim,
                context_tokens=audio["proj3.weight"].shape[0] // audio_dim))
    except InputError:
        raise
    except (KeyError, StopIteration, IndexError, ValueError, TypeError):
        raise InputError(f"{what} is not a Hallo net.pth: its network shapes are incomplete") from None
    if audio["proj1.weight"].shape[1] != config.audioproj.input_dim:
        raise InputError(f"{what}: audioproj takes {audio['proj1.weight'].shape[1]} values per frame, not the "
                         f"{config.audioproj.input_dim} of 5 frames x 12 wav2vec2 layers x 768")
    return config


def load_hallo_net(path: str | Path, config: HalloConfig | None = None,
                   dtype: torch.dtype | None = None) -> HalloNet:
    """``net.pth`` -> :class:`HalloNet` (strict: every key and shape must match), on the CPU, eval mode.

    ``config``: the geometry to build (default: read off the file's shapes, heads/groups of SD-1.5).
    """
    path = Path(path)
    state = read_hallo_state(path)
    what = _named(path)
    return HalloNet.from_state_dict(config or hallo_config(state, what=what), state, dtype, what)


def save_tiny_hallo_net(path: str | Path, seed: int = 0, scale: float = 0.05,
                        config: HalloConfig | None = None) -> Path:
    """A tiny RANDOM ``net.pth`` in the official layout (``config``, by default ``HalloConfig.tiny()``;
    every parameter ``randn * scale``, so the zero-convs are not zero); returns ``path``. For tests
    and benchmarks."""
    path = Path(path)
    net = HalloNet(config or HalloConfig.tiny())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


__all__ = ["NET_FILES", "hallo_config", "hallo_net_file", "load_hallo_net", "read_hallo_state", "save_tiny_hallo_net"]

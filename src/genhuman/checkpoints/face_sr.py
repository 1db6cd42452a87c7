"""Load Hallo2's ``net_g.pth`` (the temporal face restorer of the "4K" stage) strictly.

The file is a basicsr training checkpoint: ``{'params_ema': state_dict, ...}`` (623 keys at full
size). It is read by ``checkpoints.weights`` (``torch.load(weights_only=True)``, memory-mapped).
Unlike the official script (``strict=False``, missing keys only printed), every key and shape
must match; anything else is one InputError line.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch

from genhuman.checkpoints.weights import check_model_size, read_torch_pickle
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.face_sr import FaceSRConfig, TemporalFaceSR

NET_G_FILE = "hallo2/net_g.pth"
EMA_KEY = "params_ema"


def face_sr_file(weights: str | Path) -> Path:
    """``WEIGHTS/hallo2/net_g.pth``, also under ``WEIGHTS/pretrained_models/`` (a repo clone)."""
    weights = Path(weights)
    for root in (weights, weights / "pretrained_models"):
        if (root / NET_G_FILE).is_file():
            return root / NET_G_FILE
    raise MissingWeightsError(f"{NET_G_FILE} is missing in {str(weights)!r}; get it with "
                              f"`genhuman download hallo2 --dir {weights}` "
                              "(Hugging Face repo fudan-generative-ai/hallo2)")


def read_face_sr_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``params_ema`` state dict of a ``net_g.pth``; refused in one line otherwise."""
    path = Path(path)
    data = read_torch_pickle(path)
    state = data.get(EMA_KEY) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        found = ", ".join(sorted(str(k) for k in data)[:3]) if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{path.name} is not a Hallo2 net_g.pth: it has no '{EMA_KEY}' state dict "
                         f"(found {found or 'nothing'})")
    return state


def _encoder_levels(state: dict[str, torch.Tensor]) -> tuple[list[list[str]], int]:
    """The encoder's blocks as one list of kinds ("res", "attn") per level, and its base width."""
    levels: list[list[str]] = [[]]
    i = 1
    while f"encoder.blocks.{i}.weight" not in state:  # the final norm ends the walk
        if f"encoder.blocks.{i}.conv1.weight" in state:
            levels[-1].append("res")
        elif f"encoder.blocks.{i}.q.weight" in state:
            levels[-1].append("attn")
        elif f"encoder.blocks.{i}.conv.weight" in state:
            levels.append([])  # a downsample
        else:
            raise KeyError(i)
        i += 1
    levels[-1] = levels[-1][:-3]  # the non-local ResBlock-Attn-ResBlock after the last level
    return levels, state["encoder.blocks.0.weight"].shape[0]


def face_sr_config(state: dict[str, torch.Tensor], base: FaceSRConfig | None = None,
                   what: str = "net_g.pth") -> FaceSRConfig:
    """The geometry of a ``net_g.pth`` read off its shapes, over ``base`` (Hallo2's) for the heads
    and norm groups."""
    base = base or FaceSRConfig.hallo2()
    try:
        levels, nf = _encoder_levels(state)
        latent = math.isqrt(state["position_emb"].shape[0])
        image_size = latent * 2 ** (len(levels) - 1)
        res_per_level = levels[0].count("res")
        mults = [state[f"encoder.blocks.{i}.conv1.weight"].shape[0] // nf for i in _last_res_per_level(levels)]
        codebook, code_dim = state["quantize.embedding.weight"].shape
        config = replace(
            base, image_size=image_size, base_channels=nf, channel_mult=tuple(mults), res_blocks=res_per_level,
            attn_resolutions=tuple(image_size >> i for i, kinds in enumerate(levels) if "attn" in kinds),
            codebook_size=codebook, code_dim=code_dim, dim_embd=state["position_emb"].shape[1],
            n_layers=len({k.split(".")[1] for k in state if k.startswith("ft_layers.")}),
            connect_list=tuple(sorted(int(k.split(".")[1]) for k in state
                                      if k.startswith("fuse_convs_dict.") and k.endswith("scale.0.weight"))))
    except (KeyError, IndexError, ValueError, ZeroDivisionError):
        raise InputError(f"{what} is not a Hallo2 net_g.pth: its network shapes are incomplete") from None
    check_model_size({"layers": config.n_layers, "res_blocks": config.res_blocks,
                      "channel_mult_blocks": list(config.channel_mult)}, what)
    return config


def _last_res_per_level(levels: list[list[str]]) -> list[int]:
    """The encoder block index of each level's last ResBlock (its width is the level's)."""
    indices, i = [], 1
    for kinds in levels:
        last = max(j for j, kind in enumerate(kinds) if kind == "res")
        indices.append(i + last)
        i += len(kinds) + 1  # and the downsample
    return indices


def load_face_sr(path: str | Path, config: FaceSRConfig | None = None,
                 dtype: torch.dtype | None = None) -> TemporalFaceSR:
    """``net_g.pth`` -> :class:`TemporalFaceSR` (strict), on the CPU, eval mode. ``config``: the
    geometry (default: read off the file's shapes, with Hallo2's heads and norm groups)."""
    path = Path(path)
    what = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    state = read_face_sr_state(path)
    return TemporalFaceSR.from_state_dict(config or face_sr_config(state, what=what), state, dtype, what)


def save_tiny_face_sr(path: str | Path, seed: int = 0, config: FaceSRConfig | None = None) -> Path:
    """A RANDOM ``net_g.pth`` in the official layout (``config``, default tiny); for tests."""
    path = Path(path)
    net = TemporalFaceSR(config or FaceSRConfig.tiny())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            gain = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(torch.randn(p.shape, generator=g) * (0.2 if p.ndim > 1 else 0.05) + gain)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({EMA_KEY: net.state_dict()}, path)
    return path


__all__ = ["NET_G_FILE", "face_sr_config", "face_sr_file", "load_face_sr", "read_face_sr_state", "save_tiny_face_sr"]

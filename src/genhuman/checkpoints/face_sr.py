"""Load Hallo2's ``net_g.pth`` (the temporal face restorer of the "4K" stage) strictly.

The file is a basicsr training checkpoint: ``{'params_ema': state_dict, ...}`` (623 keys at full
size). It is read by ``checkpoints.weights`` (``torch.load(weights_only=True)``, memory-mapped).
Unlike the official script (``strict=False``, missing keys only printed), every key and shape
must match; anything else is one InputError line.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genhuman.checkpoints.weights import read_torch_pickle
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


def load_face_sr(path: str | Path, config: FaceSRConfig | None = None,
                 dtype: torch.dtype | None = None) -> TemporalFaceSR:
    """``net_g.pth`` -> :class:`TemporalFaceSR` (strict), on the CPU, eval mode. ``config``: the
    geometry (default: Hallo2's)."""
    path = Path(path)
    return TemporalFaceSR.from_state_dict(config or FaceSRConfig.hallo2(), read_face_sr_state(path),
                                          dtype, f"{path.parent.name}/{path.name}")


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


__all__ = ["NET_G_FILE", "face_sr_file", "load_face_sr", "read_face_sr_state", "save_tiny_face_sr"]

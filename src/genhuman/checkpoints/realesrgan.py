"""Load Real-ESRGAN's ``RealESRGAN_x2plus.pth`` (Hallo2's optional background upscaler) strictly.

A basicsr checkpoint: ``{'params_ema': state_dict}`` (or ``'params'``), read by ``checkpoints.weights``
(``torch.load(weights_only=True)``). The geometry (scale, width, blocks) is read off the shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from genhuman.checkpoints.weights import check_model_size, read_torch_pickle
from genhuman.errors import InputError
from genhuman.models.rrdbnet import RRDBConfig, RRDBNet

REALESRGAN_FILE = "realesrgan/RealESRGAN_x2plus.pth"
_SCALE_OF_INPUT = {48: 1, 12: 2, 3: 4}  # conv_first's input channels: pixel-unshuffled RGB


def realesrgan_file(weights: str | Path) -> Optional[Path]:
    """``WEIGHTS/realesrgan/RealESRGAN_x2plus.pth`` (also under ``pretrained_models/``), or None."""
    weights = Path(weights)
    for root in (weights, weights / "pretrained_models"):
        if (root / REALESRGAN_FILE).is_file():
            return root / REALESRGAN_FILE
    return None


def rrdb_config(state: dict[str, torch.Tensor], what: str) -> RRDBConfig:
    try:
        first = state["conv_first.weight"]
        blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
        config = RRDBConfig(scale=_SCALE_OF_INPUT[first.shape[1]], num_feat=first.shape[0], num_block=blocks,
                            num_grow_ch=state["body.0.rdb1.conv1.weight"].shape[0],
                            num_out_ch=state["conv_last.weight"].shape[0])
    except (KeyError, ValueError, IndexError):
        raise InputError(f"{what} is not a Real-ESRGAN RRDBNet checkpoint: its shapes are incomplete") from None
    check_model_size({"layers": config.num_block}, what)
    return config


def load_realesrgan(path: str | Path) -> RRDBNet:
    """The file -> :class:`RRDBNet` (strict, CPU, eval); one InputError line for anything else."""
    path = Path(path)
    what = f"{path.parent.name}/{path.name}"
    data = read_torch_pickle(path)
    state = None
    if isinstance(data, dict):
        state = data.get("params_ema", data.get("params"))
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise InputError(f"{what} is not a Real-ESRGAN checkpoint: it has no 'params_ema' state dict")
    with torch.device("meta"):
        net = RRDBNet(rrdb_config(state, what))
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise InputError(f"{what} does not fit Real-ESRGAN's RRDBNet: {first[1].strip() if len(first) > 1 else exc}") \
            from None
    return net.float().eval()


def save_tiny_realesrgan(path: str | Path, seed: int = 0, config: RRDBConfig | None = None) -> Path:
    """A RANDOM x2 RRDBNet file in the released layout (``{'params_ema': ...}``); for tests."""
    path = Path(path)
    net = RRDBNet(config or RRDBConfig(num_feat=8, num_block=1, num_grow_ch=4))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": net.state_dict()}, path)
    return path

"""The diffusers VAE folder (``config.json`` + ``diffusion_pytorch_model.{safetensors,bin}``),
read through :mod:`genhuman.checkpoints.weights` so a bad file is one line, not diffusers'
several (and not a fall-back to another file).

The model is built on the meta device and adopts the loaded tensors, so a config that asks
for a huge network costs nothing before its weights are checked against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genhuman.checkpoints.weights import parse_config, read_state_dict
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.pretrained import load_strict

WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")  # diffusers' order


def _build(config: dict[str, Any]):
    from diffusers import AutoencoderKL

    if config.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        raise InputError("the VAE config.json is not an AutoencoderKL config")
    with torch.device("meta"):
        return AutoencoderKL.from_config(config)


def load_vae(folder: str | Path, dtype: torch.dtype | None = None):
    """A diffusers ``AutoencoderKL`` from its folder, in eval mode, on the CPU."""
    folder = Path(folder)
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    if not (folder / "config.json").is_file() or weights is None:
        raise MissingWeightsError(f"the VAE folder {folder.name}/ needs config.json and "
                                  f"{' or '.join(WEIGHT_FILES)}")
    model = parse_config(folder / "config.json", _build)
    state = read_state_dict(weights)
    model._fix_state_dict_keys_on_load(state)  # the official sd-vae-ft-mse uses the old attention names
    if dtype is not None:  # cast the tensors, not the model: diffusers' Module.to warns on stderr
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    load_strict(model, state, f"{folder.name}/{weights.name}")
    return model.eval()

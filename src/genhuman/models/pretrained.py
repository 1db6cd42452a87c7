"""``save_pretrained``/``from_pretrained``: a folder with config.json + model.safetensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file

from genhuman.checkpoints.weights import parse_config, read_safetensors
from genhuman.errors import InputError, MissingWeightsError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedMixin")


def save_state_dict(state: dict[str, torch.Tensor], path: Path, dtype: torch.dtype | None = None) -> None:
    """safetensors save; every tensor is cloned so views into one shared storage (V2) are fine."""
    tensors = {}
    for name, tensor in state.items():
        t = tensor.detach()
        if dtype is not None and t.is_floating_point() and not name.endswith("pos_encoder.pe"):
            t = t.to(dtype)
        tensors[name] = t.to("cpu").clone().contiguous()
    save_file(tensors, str(path))


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True, assign=True)``; a mismatch is an InputError (a wrong or damaged
    weights file) whose one line names the bad keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if keys:
            problems.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
    if problems:
        raise InputError(f"{what} does not match the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True, assign=True)


class PretrainedMixin:
    config_class: Any  # a config dataclass with from_dict/to_dict
    config: Any

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": type(self).__name__, **self.config.to_dict()}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        save_state_dict(self.state_dict(), directory / WEIGHTS_NAME, dtype)  # type: ignore[attr-defined]

    @classmethod
    def from_pretrained(cls: type[M], directory: str | Path, dtype: torch.dtype | None = None,
                        device: str | torch.device = "cpu") -> M:
        directory = Path(directory)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                raise MissingWeightsError(f"{directory.name}/{name} is missing")
        config = parse_config(directory / CONFIG_NAME, cls.config_class.from_dict)
        return cls.from_state_dict(config, read_safetensors(directory / WEIGHTS_NAME, device=str(device)),
                                   dtype=dtype, what=f"{directory.name}/{WEIGHTS_NAME}")

    @classmethod
    def from_state_dict(cls: type[M], config: Any, state: dict[str, torch.Tensor], dtype: torch.dtype | None = None,
                        what: str = "state dict") -> M:
        """Build on the meta device and adopt the given tensors (no second copy in memory)."""
        try:
            with torch.device("meta"):
                model = cls(config)  # type: ignore[call-arg]
        except (TypeError, ValueError, ZeroDivisionError, RuntimeError, AttributeError, IndexError):
            raise InputError(f"{what}: its config does not describe a {cls.__name__}") from None  # hand-edited?
        load_strict(model, state, what)
        if dtype is not None:
            model.to(dtype)  # type: ignore[attr-defined]
        return model.eval()  # type: ignore[attr-defined]

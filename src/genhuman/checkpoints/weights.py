"""Every weights file is read here, and a bad one becomes one line of InputError.

Formats: PyTorch pickles (``.pth``/``.pt``/``.bin``: the zip format, and the legacy
formats) through ``torch.load(weights_only=True)``, which runs no code; ``.safetensors``;
the JSON configs of Hugging Face folders. A malicious, damaged or truncated file raises
whatever its reader raises (torch's ``UnpicklingError`` even advises ``weights_only=False``,
which would run the file's code); here that is one sentence naming the file's base name
(with its folder's own name for the names every component uses, e.g. ``vae/config.json``;
never the path: a server's paths stay private), and the CLI exits 2.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from genhuman.errors import InputError

_ZIP_MAGIC = b"PK\x03\x04"
# Names every component folder uses: the message adds the folder's own name (not its path).
_SHARED_NAMES = {"config.json", "model.safetensors", "diffusion_pytorch_model.safetensors",
                 "diffusion_pytorch_model.bin"}


def shown(path: Path) -> str:
    """How a message names a weights file: its base name, e.g. ``whisper_tiny.pt``, or
    ``vae/config.json`` where the base name alone would not say which one."""
    return f"{path.parent.name}/{path.name}" if path.name in _SHARED_NAMES and path.parent.name else path.name


def _reason(exc: BaseException) -> str:
    """A short, fixed description of why a weights file could not be read (none of the reader's text)."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and ("GLOBAL" in text or "global" in text):
        return "it holds objects other than tensors, which could run code (refused)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, MemoryError):
        return "it claims more memory than there is"
    return "damaged, truncated or not a weights file"


def _refused(path: Path, exc: BaseException) -> InputError:
    return InputError(f"cannot read weights {shown(path)}: {_reason(exc)}")


def read_torch_pickle(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` on the CPU; memory-mapped when the file is the zip format."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            zipped = fh.read(4) == _ZIP_MAGIC
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
    except Exception as exc:  # UnpicklingError, RuntimeError, BadZipFile, EOFError, OSError, ...
        raise _refused(path, exc) from None


def read_safetensors(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(path)
    try:
        return load_file(str(path), device=device)
    except Exception as exc:  # safetensors' SafetensorError (a header too large, bad JSON, bad offsets), OSError
        raise _refused(path, exc) from None


def read_state_dict(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a ``.safetensors`` file or a PyTorch pickle."""
    path = Path(path)
    if path.suffix == ".safetensors":
        state: Any = read_safetensors(path, device)
    else:
        state = read_torch_pickle(path)
        if device != "cpu" and isinstance(state, dict):
            state = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise InputError(f"cannot read weights {shown(path)}: it is not a state dict of tensors")
    return state


def read_json(path: str | Path) -> dict[str, Any]:
    """A config file; damaged, not JSON or not an object is one InputError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {shown(path)}: {_reason(exc)}") from None
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, too deep
        raise InputError(f"{shown(path)} is not valid JSON") from None
    if not isinstance(data, dict):
        raise InputError(f"{shown(path)} is not a JSON object")
    return data


MAX_LAYERS = 64  # per block or per encoder; the real models have 1 to 32
MAX_LIST = 64  # block lists have 2 to 6 entries


def check_model_size(data: dict[str, Any], what: str) -> None:
    """Refuse a config that asks for an absurd number of layers or blocks before it is built:
    building such a network even on the meta device takes minutes and gigabytes (3,000
    layers per block: 84 s, 1.4 GB) before its weights could be found not to match."""
    for key, value in data.items():
        too_many = ((isinstance(value, int) and "layers" in key and not 0 <= value <= MAX_LAYERS)
                    or (isinstance(value, list) and len(value) > MAX_LIST
                        and any(word in key for word in ("block", "channels", "layers"))))
        if too_many:
            raise InputError(f"{what} asks for an implausible model size ({key})")


def parse_config(path: str | Path, parse: Any) -> Any:
    """``parse(read_json(path))``; a config with missing keys or wrong types, or one asking for
    an absurd number of layers, is an InputError."""
    data = read_json(path)
    check_model_size(data, shown(Path(path)))
    try:
        return parse(data)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError):
        raise InputError(f"{shown(Path(path))} is not a config these weights can be built from") from None

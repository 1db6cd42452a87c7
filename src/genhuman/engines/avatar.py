"""Prepared avatars: what an engine computes from the portrait alone, computed once.

An :class:`Avatar` is engine-neutral storage: named arrays (face box, landmarks, crop
transform, masks, reference latents and projected keys/values, deformation bases...) plus
JSON metadata. Each engine knows which names it writes and reads. ``save``/``load`` use
safetensors and a versioned JSON; an avatar made by another engine, other weights or an
older format is refused with one clear sentence.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from genhuman.errors import InputError

AVATAR_FORMAT = 1
TENSORS_FILE, META_FILE = "avatar.safetensors", "avatar.json"


@dataclass
class Avatar:
    engine: str  # the engine that made it
    weights_id: str  # fingerprint of the weights it was made with ("" when the engine has none)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # live objects, rebuilt after load; "export", when set, returns more arrays to save
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def check(self, engine: str, weights_id: str) -> None:
        if self.engine != engine:
            raise InputError(f"this avatar was prepared by the {self.engine} engine, not {engine}; prepare it again")
        if self.weights_id != weights_id:
            raise InputError(f"this avatar was prepared with other {engine} weights; prepare it again")

    def save(self, directory: Union[str, Path]) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = dict(self.arrays)
        export = self.cache.get("export")  # arrays an engine keeps on its device until a save needs them
        if export is not None:
            arrays.update(export())
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(directory / TENSORS_FILE))
        (directory / META_FILE).write_text(json.dumps(
            {"format": AVATAR_FORMAT, "engine": self.engine, "weights_id": self.weights_id, "meta": self.meta},
            indent=1))
        return directory

    @classmethod
    def load(cls, directory: Union[str, Path]) -> "Avatar":
        from safetensors.numpy import load_file

        directory = Path(directory)
        try:
            header = json.loads((directory / META_FILE).read_text())
            arrays = load_file(str(directory / TENSORS_FILE))
        except FileNotFoundError:
            raise InputError(f"{str(directory)!r} is not a saved avatar (no {META_FILE} / {TENSORS_FILE})") from None
        except Exception as exc:  # safetensors raises its own SafetensorError on a damaged file
            raise InputError(f"avatar in {str(directory)!r} is corrupt ({type(exc).__name__})") from None
        found = header.get("format") if isinstance(header, dict) else None
        if found != AVATAR_FORMAT:
            raise InputError(f"avatar in {str(directory)!r} has format {found}; this GenHuman reads "
                             f"format {AVATAR_FORMAT}: prepare it again")
        try:
            return cls(engine=str(header["engine"]), weights_id=str(header["weights_id"]), arrays=dict(arrays),
                       meta=dict(header.get("meta") or {}))
        except (KeyError, TypeError, ValueError):  # a hand-edited or foreign avatar.json
            raise InputError(f"avatar in {str(directory)!r} is corrupt (its {META_FILE} lacks fields)") from None


def image_digest(image: np.ndarray) -> str:
    """Content hash of a decoded portrait (the server's avatar cache key)."""
    h = hashlib.sha256()
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def weights_fingerprint(*modules: Any) -> str:
    """A short id of the weights: names, shapes and a few values of every tensor."""
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            flat = tensor.detach().reshape(-1)
            h.update(name.encode())
            h.update(str(tuple(tensor.shape)).encode())
            h.update(flat[:8].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]

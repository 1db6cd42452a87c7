"""EchoMimic checkpoints: official layout, converted folders, tiny random checkpoints, downloads.

Exports are imported lazily so that ``genhuman download`` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EchoMimicComponents": "echomimic", "convert_echomimic": "echomimic", "is_converted": "echomimic",
    "load_echomimic": "echomimic", "VARIANTS": "layout", "Variant": "layout", "get_variant": "layout",
    "save_tiny_official_checkpoint": "tiny", "download_echomimic": "download",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"genhuman.checkpoints.{_EXPORTS[name]}"), name)

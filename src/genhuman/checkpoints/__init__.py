"""EchoMimic and Hallo checkpoints: official layout, converted folders, tiny random checkpoints, downloads.

Exports are imported lazily so that ``genhuman download`` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EchoMimicComponents": "echomimic", "convert_echomimic": "echomimic", "is_converted": "echomimic",
    "load_echomimic": "echomimic", "VARIANTS": "layout", "Variant": "layout", "get_variant": "layout",
    "save_tiny_official_checkpoint": "tiny", "download_echomimic": "download",
    "HalloComponents": "hallo_convert", "check_hallo_weights": "hallo_convert", "convert_hallo": "hallo_convert",
    "is_converted_hallo": "hallo_convert", "load_hallo": "hallo_convert", "save_tiny_hallo_folder": "tiny",
    "download_hallo": "download", "HALLO_FAMILIES": "layout", "HalloFamily": "layout",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"genhuman.checkpoints.{_EXPORTS[name]}"), name)

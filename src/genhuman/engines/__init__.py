"""Engines: what the CLI, the Python API and the server run.

Each engine implements :class:`genhuman.engines.base.Engine`. Engines are looked up by
name and imported lazily so that ``genhuman --help`` does not import torch.
"""

from __future__ import annotations

import importlib

from genhuman.engines.base import AnimateRequest, AnimateResult, Avatar, Engine, EngineOptions, Frame
from genhuman.errors import InputError

# name -> "module:Class"
ENGINES: dict[str, str] = {
    "lite": "genhuman.engines.lite:LiteEngine",
    "echomimic": "genhuman.engines.echomimic:EchoMimicEngine",
    "echomimic_v2": "genhuman.engines.echomimic_v2:EchoMimicV2Engine",
    "hallo": "genhuman.engines.hallo:HalloEngine",
    "hallo2": "genhuman.engines.hallo:Hallo2Engine",
    "echomimic_v3": "genhuman.engines.echomimic_v3:EchoMimicV3Engine",
    "echomimic_v3_flash": "genhuman.engines.echomimic_v3:EchoMimicV3FlashEngine",
}


def engine_names() -> list[str]:
    return list(ENGINES)


def get_engine_class(name: str) -> type[Engine]:
    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    module_name, class_name = ENGINES[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:  # engine not built yet in this checkout
        if exc.name and exc.name.startswith("genhuman"):
            raise InputError(f"engine {name!r} is not available in this build") from exc
        raise
    return getattr(module, class_name)


def load_engine(name: str, options: EngineOptions | None = None) -> Engine:
    """Build an engine (loads its models once; reuse it for many requests)."""
    return get_engine_class(name)(options or EngineOptions())


__all__ = ["ENGINES", "AnimateRequest", "Avatar", "Engine", "EngineOptions", "AnimateResult", "Frame", "engine_names",
           "get_engine_class", "load_engine"]

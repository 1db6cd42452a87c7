"""The hard caps on what a user can make GenHuman decode, in one place.

Each cap is a function argument where it applies (``load_image(max_pixels=...)``,
``load_audio(max_seconds=...)``); left at None it comes from the environment variable below,
read at call time, else the built-in default:

- ``GENHUMAN_MAX_IMAGE_PIXELS``: decoded pixels of one image (default 50,000,000).
- ``GENHUMAN_MAX_AUDIO_SECONDS``: seconds of decoded audio (default 7200, two hours).
"""

from __future__ import annotations

import math
import os
from typing import Optional

from genhuman.errors import InputError

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_AUDIO_SECONDS = 2 * 3600.0
IMAGE_PIXELS_ENV = "GENHUMAN_MAX_IMAGE_PIXELS"
AUDIO_SECONDS_ENV = "GENHUMAN_MAX_AUDIO_SECONDS"


def _from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive number, got {raw[:40]!r}")
    return value


def max_image_pixels(value: Optional[int] = None) -> int:
    """``value``, else ``GENHUMAN_MAX_IMAGE_PIXELS``, else 50,000,000."""
    if value is None:
        return int(_from_env(IMAGE_PIXELS_ENV, DEFAULT_MAX_PIXELS))
    if value <= 0:
        raise InputError(f"the image pixel limit must be positive, got {value}")
    return int(value)


def max_audio_seconds(value: Optional[float] = None) -> float:
    """``value``, else ``GENHUMAN_MAX_AUDIO_SECONDS``, else 7200."""
    if value is None:
        return _from_env(AUDIO_SECONDS_ENV, DEFAULT_MAX_AUDIO_SECONDS)
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"the audio length limit must be a positive number of seconds, got {value}")
    return float(value)

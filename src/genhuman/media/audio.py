"""Audio loading with PyAV: any container/codec FFmpeg knows (wav, flac, mp3, m4a, ogg,
opus, or the audio track of a video) becomes 16 kHz mono float32 in [-1, 1]."""

from __future__ import annotations

import wave as wave_module
from pathlib import Path
from typing import Optional, Union

import numpy as np

from genhuman.errors import InputError
from genhuman.media import audio_decode
from genhuman.media.audio_clip import SAMPLE_RATE, AudioClip
from genhuman.media.limits import DEFAULT_MAX_AUDIO_SECONDS, max_audio_seconds

AudioInput = Union[str, Path, np.ndarray]

MIN_SECONDS = 0.1
DEFAULT_MAX_SECONDS = DEFAULT_MAX_AUDIO_SECONDS  # GENHUMAN_MAX_AUDIO_SECONDS overrides it


def load_audio(source: AudioInput, sample_rate: int = SAMPLE_RATE,
               max_seconds: Optional[float] = None) -> np.ndarray:
    """Decode, mix to mono and resample. Arrays are taken as already at ``sample_rate``, mono.

    ``max_seconds``: None takes GENHUMAN_MAX_AUDIO_SECONDS, else two hours. The whole clip
    comes back in memory; :func:`open_audio` keeps long audio out of it."""
    if isinstance(source, np.ndarray):
        wave = _validate_array(source)
        _check_length(len(wave), sample_rate, max_audio_seconds(max_seconds), "audio array")
        return wave
    with open_audio(source, sample_rate, max_seconds) as clip:
        return clip.to_array()


def open_audio(source: AudioInput, sample_rate: int = SAMPLE_RATE,
               max_seconds: Optional[float] = None) -> AudioClip:
    """:func:`load_audio` into an :class:`AudioClip`: decoded and resampled frame by frame and
    held once, in a temporary file, so memory does not grow with the length of the audio.
    The same samples as ``load_audio``; close the clip (or use ``with``) when done."""
    limit = max_audio_seconds(max_seconds)
    if isinstance(source, np.ndarray):
        wave = _validate_array(source)
        _check_length(len(wave), sample_rate, limit, "audio array")
        return AudioClip.from_array(wave, sample_rate)
    path = Path(source)
    clip = _decode_file(path, sample_rate, limit)
    try:
        _check_length(len(clip), sample_rate, limit, repr(str(path)))
    except BaseException:
        clip.close()
        raise
    return clip


def probe_audio(source: Union[str, Path], max_seconds: Optional[float] = None) -> Optional[float]:
    """The declared duration in seconds from the container's header (None when it declares
    none), checked against the limit: a file FFmpeg can open, with an audio track. Nothing
    is decoded, so a server can refuse an over-long upload for the cost of its header."""
    path = Path(source)
    name = repr(str(path))
    if not path.is_file():
        raise InputError(f"audio file not found: {name}")
    limit = max_audio_seconds(max_seconds)
    with audio_decode.open_container(path, name) as container:
        if not container.streams.audio:
            raise InputError(f"{name} has no audio track")
        stream = container.streams.audio[0]
        seconds = None
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / 1_000_000
    if seconds is not None and seconds > limit + 1.0:
        raise InputError(f"{name} is too long ({seconds:.0f} s); the limit is {limit:.0f} s")
    return seconds


def _check_length(samples: int, sample_rate: int, max_seconds: float, name: str) -> None:
    seconds = samples / sample_rate
    if seconds < MIN_SECONDS:
        raise InputError(f"{name} is empty or too short ({seconds:.2f} s); need at least {MIN_SECONDS} s")
    if seconds > max_seconds:
        raise InputError(f"{name} is too long ({seconds:.0f} s); the limit is {max_seconds:.0f} s")


def _validate_array(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array.mean(axis=1 if array.shape[1] <= 8 else 0)  # (n, channels) or (channels, n)
    if array.ndim != 1:
        raise InputError(f"audio array must be 1-D (mono) or 2-D (channels), got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    wave = np.asarray(array, dtype=np.float32)
    if not np.isfinite(wave).all():
        raise InputError("audio array contains NaN or infinite values")
    return np.clip(wave, -1.0, 1.0)


def _decode_file(path: Path, sample_rate: int, max_seconds: float) -> AudioClip:
    name = repr(str(path))
    if not path.exists():
        raise InputError(f"audio file not found: {name}")
    if path.is_dir():
        raise InputError(f"audio path is a directory, not a file: {name}")
    clip = AudioClip(sample_rate)
    try:
        with audio_decode.open_container(path, name) as container:
            in_process = audio_decode.safe_in_process(container)
            if in_process:
                for piece in audio_decode.decode(container, sample_rate, max_seconds, name):
                    clip.append(piece)
        if not in_process:  # a layout PyAV may crash on: decoded in a child process
            audio_decode.decode_in_child(path, sample_rate, max_seconds, name, clip.append)
    except BaseException:
        clip.close()
        raise
    return clip


def is_silent(wave: Union[np.ndarray, AudioClip], threshold_db: float = -60.0) -> bool:
    """True when the RMS level (dB re full scale) of the whole wave is below ``threshold_db``."""
    if len(wave) == 0:
        return True
    if isinstance(wave, AudioClip):
        rms = wave.rms
    else:
        rms = float(np.sqrt(np.mean(np.square(wave.astype(np.float64)))))
    return bool(20.0 * np.log10(max(rms, 1e-12)) < threshold_db)


def save_wav(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio as 16-bit PCM WAV, creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave_module.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())

"""Audio loading with PyAV: any container/codec FFmpeg knows (wav, flac, mp3, m4a, ogg,
opus, or the audio track of a video) becomes 16 kHz mono float32 in [-1, 1]."""

from __future__ import annotations

import wave as wave_module
from pathlib import Path
from typing import Union

import av
import numpy as np

from genhuman.errors import InputError

AudioInput = Union[str, Path, np.ndarray]

SAMPLE_RATE = 16000
MIN_SECONDS = 0.1
DEFAULT_MAX_SECONDS = 2 * 3600.0


def load_audio(source: AudioInput, sample_rate: int = SAMPLE_RATE,
               max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Decode, mix to mono and resample. Arrays are taken as already at ``sample_rate``, mono."""
    if isinstance(source, np.ndarray):
        wave = _validate_array(source)
        name = "audio array"
    else:
        path = Path(source)
        wave = _decode_file(path, sample_rate, max_seconds)
        name = repr(str(path))
    seconds = len(wave) / sample_rate
    if seconds < MIN_SECONDS:
        raise InputError(f"{name} is empty or too short ({seconds:.2f} s); need at least {MIN_SECONDS} s")
    if seconds > max_seconds:
        raise InputError(f"{name} is too long ({seconds:.0f} s); the limit is {max_seconds:.0f} s")
    return wave


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


def _decode_file(path: Path, sample_rate: int, max_seconds: float) -> np.ndarray:
    if not path.exists():
        raise InputError(f"audio file not found: {str(path)!r}")
    if path.is_dir():
        raise InputError(f"audio path is a directory, not a file: {str(path)!r}")
    try:
        container = av.open(str(path))
    except PermissionError:
        raise InputError(f"cannot read audio {str(path)!r}: permission denied") from None
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise InputError(f"{str(path)!r} is not a readable audio or video file") from None
    with container:
        if not container.streams.audio:
            raise InputError(f"{str(path)!r} has no audio track")
        stream = container.streams.audio[0]
        # Packed float, channels kept: mixed to mono by the mean below (FFmpeg's own downmix
        # scales stereo by 1/sqrt(2) per channel, which can clip). Packed, because PyAV 18
        # reports one plane too many for 8-channel planar audio and to_ndarray() then reads
        # past the end (a segfault); a packed frame has one plane, read with an exact count.
        resampler = av.AudioResampler(format="flt", rate=sample_rate)
        limit = int((max_seconds + 1.0) * sample_rate)  # stop decoding early when over the limit
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(_mono(out))
                    total += chunks[-1].size
                if total > limit:
                    raise InputError(f"{str(path)!r} is too long; the limit is {max_seconds:.0f} s")
            for out in resampler.resample(None):
                chunks.append(_mono(out))
        except av.FFmpegError as exc:
            if not chunks:
                raise InputError(f"audio {str(path)!r} is corrupt and could not be decoded ({exc})") from None
            # A damaged tail: keep what decoded, as players do.
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return np.clip(np.nan_to_num(wave), -1.0, 1.0)


def _mono(frame) -> np.ndarray:
    """A packed float32 frame -> the mean of its channels."""
    channels = max(1, len(frame.layout.channels))
    samples = np.frombuffer(frame.planes[0], dtype=np.float32, count=frame.samples * channels)
    return samples.reshape(-1, channels).mean(axis=1)


def is_silent(wave: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True when the RMS level (dB re full scale) of the whole wave is below ``threshold_db``."""
    if wave.size == 0:
        return True
    rms = float(np.sqrt(np.mean(np.square(wave.astype(np.float64)))))
    return 20.0 * np.log10(max(rms, 1e-12)) < threshold_db


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

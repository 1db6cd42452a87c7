"""Language-independent mouth cues from the signal itself.

Frames are 25 ms windows every 10 ms (the analysis rate used throughout the package).
Loudness drives the opening; rough first/second formant estimates (spectral centroids of
the F1 and F2 bands) give openness and rounding vs spreading; high-band energy marks
fricatives (teeth close together, visible).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from genhuman.media import SAMPLE_RATE
from genhuman.speech.visemes import CHANNELS, REST_LIP_PRESS

HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
N_FFT = 512
ANALYSIS_RATE = SAMPLE_RATE / HOP
_BLOCK_FRAMES = 3000  # 30 s per FFT block keeps memory flat on long audio

_FREQS = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
_F1_BAND = (_FREQS >= 250) & (_FREQS < 1000)
_F2_BAND = (_FREQS >= 900) & (_FREQS < 2600)
_HIGH_BAND = _FREQS >= 4000
_WINDOW = np.hanning(WINDOW).astype(np.float32)


@dataclass
class AcousticFeatures:
    """Per analysis frame (100 Hz): centre of frame i is at i * 10 ms."""

    rms: np.ndarray  # linear RMS of the 25 ms window
    f1: np.ndarray  # Hz, centroid of the F1 band
    f2: np.ndarray  # Hz, centroid of the F2 band
    high_ratio: np.ndarray  # share of energy above 4 kHz
    zcr: np.ndarray  # zero crossings per sample

    def __len__(self) -> int:
        return len(self.rms)


def analysis_frames(n_samples: int) -> int:
    return -(-n_samples // HOP)


def _frames(wave: np.ndarray, first: int, count: int) -> np.ndarray:
    """``count`` windows centred on frames first.. (zero padded at the edges)."""
    start = first * HOP - WINDOW // 2
    stop = (first + count - 1) * HOP + WINDOW - WINDOW // 2
    segment = np.zeros(stop - start, dtype=np.float32)
    lo, hi = max(start, 0), min(stop, len(wave))
    if hi > lo:
        segment[lo - start : hi - start] = wave[lo:hi]
    return np.lib.stride_tricks.sliding_window_view(segment, WINDOW)[::HOP][:count]


def _centroid(power: np.ndarray, band: np.ndarray) -> np.ndarray:
    p = power[:, band]
    return (p * _FREQS[band]).sum(axis=1) / (p.sum(axis=1) + 1e-12)


def analyse(wave: np.ndarray) -> AcousticFeatures:
    n = analysis_frames(len(wave))
    parts = []
    for first in range(0, n, _BLOCK_FRAMES):
        frames = _frames(wave, first, min(_BLOCK_FRAMES, n - first))
        rms = np.sqrt(np.mean(np.square(frames), axis=1))
        signs = np.signbit(frames)
        zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
        power = np.abs(np.fft.rfft(frames * _WINDOW, n=N_FFT, axis=1)) ** 2
        total = power.sum(axis=1) + 1e-12
        parts.append((rms, _centroid(power, _F1_BAND), _centroid(power, _F2_BAND),
                      power[:, _HIGH_BAND].sum(axis=1) / total, zcr))
    if not parts:
        empty = np.zeros(0, dtype=np.float32)
        return AcousticFeatures(empty, empty, empty, empty, empty)
    columns = [np.concatenate(c).astype(np.float32) for c in zip(*parts)]
    return AcousticFeatures(*columns)


def speech_level(rms: np.ndarray, voiced: np.ndarray) -> float:
    """Reference loudness of the clip's speech: the 75th percentile RMS of voiced frames (~ its vowels)."""
    source = rms[voiced] if voiced.any() else rms
    return float(max(np.percentile(source, 75), 1e-4)) if len(source) else 1e-4


def loudness_gain(rms: np.ndarray, level: Union[float, np.ndarray]) -> np.ndarray:
    """Opening multiplier from loudness: ~1 at the speech level, compressed by a power
    law (quiet syllables still open visibly), capped so shouts do not overshoot. ``level``:
    one speech level, or one per frame (the streaming tracker's running estimate)."""
    relative = rms / level
    return np.power(relative, 0.7).clip(0.0, 1.2).astype(np.float32)


def acoustic_shapes(features: AcousticFeatures, voiced: np.ndarray,
                    level: Union[float, np.ndarray]) -> np.ndarray:
    """(n_analysis_frames, len(CHANNELS)) mouth channels estimated from the signal alone."""
    gain = loudness_gain(features.rms, level)
    openness = np.clip((features.f1 - 300.0) / 450.0, 0.0, 1.0)
    fricative = np.clip((features.high_ratio - 0.15) / 0.35, 0.0, 1.0) * np.clip(
        (features.zcr - 0.1) / 0.2, 0.0, 1.0
    )
    rounded = np.clip((1700.0 - features.f2) / 700.0, 0.0, 1.0) * (1.0 - fricative)
    spread = np.clip((features.f2 - 1500.0) / 600.0, 0.0, 1.0)
    speaking = voiced.astype(np.float32)

    out = np.zeros((len(features), len(CHANNELS)), dtype=np.float32)
    out[:, 0] = gain * (0.35 + 0.65 * openness) * (1.0 - 0.6 * fricative) * speaking
    out[:, 1] = (0.4 * spread - 0.9 * rounded) * speaking
    out[:, 2] = rounded * speaking
    # Dips far below the speech level inside speech are closures (stops, nasals).
    closure = np.clip((0.12 - features.rms / level) / 0.12, 0.0, 1.0) * speaking
    out[:, 3] = np.maximum(REST_LIP_PRESS * (1.0 - speaking), 0.8 * closure)
    out[:, 4] = np.clip(0.3 + 0.7 * fricative, 0.0, 1.0) * speaking * np.minimum(gain * 2.0, 1.0)
    out[:, 5] = 0.0
    return out

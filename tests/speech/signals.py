"""Synthetic test signals at 16 kHz."""

from __future__ import annotations

import numpy as np

SR = 16000


def vowel(f1: float, f2: float, seconds: float, f0: float = 120.0) -> np.ndarray:
    """Harmonic tone shaped by two formant resonances: a crude vowel."""
    t = np.arange(int(seconds * SR)) / SR
    out = np.zeros_like(t)
    for k in range(1, int(5000 / f0)):
        f = k * f0
        gain = sum(1.0 / (1.0 + ((f - fc) / (0.12 * fc)) ** 2) for fc in (f1, f2)) / k**0.5
        out += gain * np.sin(2 * np.pi * f * t)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def syllables(seconds: float = 4.0, on: float = 0.5, off: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Vowel bursts with a smooth amplitude envelope separated by digital silence;
    returns (wave, sound) where sound marks the samples inside bursts."""
    wave = vowel(700, 1200, seconds)
    t = np.arange(len(wave)) / SR
    phase = t % (on + off)
    sound = phase < on
    envelope = np.where(sound, np.sin(np.pi * np.clip(phase / on, 0, 1)), 0.0)
    return (wave * envelope).astype(np.float32), sound

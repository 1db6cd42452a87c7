"""Shared speech fixtures: the example clip at 16 kHz and its mouth tracks, built once."""

from __future__ import annotations

import numpy as np
import pytest

from genhuman.media import load_audio
from genhuman.speech import mouth_track

FPS = 25


@pytest.fixture(scope="session")
def wave_16k(speech_path) -> np.ndarray:
    return load_audio(speech_path)


@pytest.fixture(scope="session")
def aligned_track(wave_16k, speech_text):
    return mouth_track(wave_16k, fps=FPS, text=speech_text)


@pytest.fixture(scope="session")
def recognized_track(wave_16k):
    return mouth_track(wave_16k, fps=FPS)


def frame_rms(wave: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Loudness per video frame computed directly from the samples (independent of the package)."""
    hop = 16000 / fps
    return np.array([
        np.sqrt(np.mean(np.square(wave[int(k * hop) : int((k + 1) * hop)], dtype=np.float64)))
        if int(k * hop) < len(wave) else 0.0
        for k in range(n_frames)
    ])

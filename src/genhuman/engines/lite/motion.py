"""Motion that is not lip sync: blinks and a subtle head motion driven by prosody.

Both are planned for the whole clip up front (a few floats per frame, so an hour of
audio is still small) from a seeded generator: same seed, same motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLINK_INTERVAL = (2.0, 6.0)  # seconds between blinks
BLINK_DURATION = (0.15, 0.25)  # seconds, closed-to-open included
HEAD_ROTATION = 1.2  # degrees, typical swing
HEAD_SHIFT = 0.018  # face heights, typical drift
NOD = 0.012  # face heights the head dips on loud syllables


@dataclass
class HeadMotion:
    """Per frame: roll in degrees and shift in face heights (x right, y down)."""

    roll: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray


def blink_weights(frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """0 (open) .. 1 (closed) per frame: a fast close and a slower reopening."""
    weights = np.zeros(frames, np.float32)
    times = np.arange(frames) / fps
    t = rng.uniform(0.5, BLINK_INTERVAL[0])  # the first blink comes early
    while t < frames / fps:
        duration = rng.uniform(*BLINK_DURATION)
        phase = (times - t) / duration
        closing = np.clip(phase / 0.4, 0.0, 1.0)
        opening = np.clip((1.0 - phase) / 0.6, 0.0, 1.0)
        shape = np.where(phase < 0.4, closing, opening) * ((phase >= 0) & (phase <= 1))
        weights = np.maximum(weights, np.sin(shape * np.pi / 2.0) ** 2)
        t += duration + rng.uniform(*BLINK_INTERVAL)
    return weights


def _smooth(x: np.ndarray, frames_sigma: float) -> np.ndarray:
    radius = max(1, int(3 * frames_sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / frames_sigma) ** 2)
    kernel /= kernel.sum()
    return np.convolve(np.pad(x, radius, mode="edge"), kernel, mode="valid")


def _wander(frames: int, fps: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random walk with unit typical size that drifts back to zero."""
    noise = rng.standard_normal(frames + int(4 * seconds * fps))
    walk = _smooth(noise, seconds * fps)[-frames:]
    spread = walk.std() if frames > 1 and walk.std() > 1e-9 else 1.0
    return walk / max(spread, np.abs(walk).max() / 2.5)


def head_motion(loudness: np.ndarray, fps: float, rng: np.random.Generator) -> HeadMotion:
    """``loudness`` per frame, about 1 for loud speech (the mouth track's)."""
    frames = len(loudness)
    energy = _smooth(np.asarray(loudness, np.float64), 0.12 * fps)
    emphasis = np.clip(energy - _smooth(energy, 0.8 * fps), 0.0, None)  # louder than recently
    roll = HEAD_ROTATION * (0.7 * _wander(frames, fps, 1.2, rng) + 0.6 * emphasis)
    shift_x = HEAD_SHIFT * _wander(frames, fps, 1.5, rng)
    shift_y = HEAD_SHIFT * 0.6 * _wander(frames, fps, 1.5, rng) + NOD * emphasis
    return HeadMotion(roll.astype(np.float32), shift_x.astype(np.float32), shift_y.astype(np.float32))

"""Motion that is not lip sync: blinks and a subtle head motion driven by prosody.

:class:`MotionStream` (what the engine uses) makes them frame after frame while the audio
arrives, from seeded generators: same seed, same motion. ``blink_weights`` / ``head_motion``
plan a whole clip at once (the older planner, kept for benchmarks and tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

BLINK_INTERVAL = (2.0, 6.0)  # seconds between blinks
BLINK_DURATION = (0.24, 0.28)  # seconds the lid moves, open to open
# The shape over a blink's duration: a fast close, a short hold fully closed, a slower
# reopening. The face mesh reads the eye as closed (eye-aspect ratio under 0.8 x open) from
# a lid weight of about 0.15-0.2, i.e. for about 0.75 of the duration: 180-220 ms, 4-6 frames
# at 25 fps, while the lid moves for at most 280 ms.
BLINK_CLOSE = 0.32  # share of the duration
BLINK_HOLD = 0.12
# Blinks per minute the defaults give on average: one blink and one gap per cycle.
NATURAL_BLINK_RATE = 60.0 / (sum(BLINK_DURATION) / 2 + sum(BLINK_INTERVAL) / 2)  # about 14.1
HEAD_ROTATION = 1.2  # degrees, typical swing
HEAD_SHIFT = 0.018  # face heights, typical drift
NOD = 0.012  # face heights the head dips on loud syllables


@dataclass
class HeadMotion:
    """Per frame: roll in degrees and shift in face heights (x right, y down)."""

    roll: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray


def blink_shape(phase: np.ndarray | float) -> np.ndarray:
    """Lid weight 0 (open) .. 1 (closed) at ``phase`` (0 .. 1 over the blink; 0 outside):
    eased close over BLINK_CLOSE, held closed for BLINK_HOLD, eased reopening over the rest."""
    phase = np.asarray(phase, np.float64)
    reopen = 1.0 - BLINK_CLOSE - BLINK_HOLD
    closing = np.clip(phase / BLINK_CLOSE, 0.0, 1.0)
    opening = np.clip((1.0 - phase) / reopen, 0.0, 1.0)
    shape = np.minimum(closing, opening) * ((phase >= 0.0) & (phase <= 1.0))
    return np.sin(shape * (np.pi / 2.0)) ** 2


def blink_weights(frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """0 (open) .. 1 (closed) per frame (:func:`blink_shape` for each blink)."""
    weights = np.zeros(frames, np.float32)
    times = np.arange(frames) / fps
    t = rng.uniform(0.5, BLINK_INTERVAL[0])  # the first blink comes early
    while t < frames / fps:
        duration = rng.uniform(*BLINK_DURATION)
        weights = np.maximum(weights, blink_shape((times - t) / duration))
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


def interval_scale(blink_rate: float) -> float:
    """The factor on BLINK_INTERVAL that makes ``blink_rate`` blinks a minute on average
    (inf for 0: no blinks). 60 a minute leaves gaps of 0.4-1.2 s."""
    if blink_rate <= 0.0:
        return math.inf
    mean_duration = sum(BLINK_DURATION) / 2
    return (60.0 / blink_rate - mean_duration) / (sum(BLINK_INTERVAL) / 2)


# --- streaming: the same kinds of motion, frame after frame ---------------------------------

NOISE_BLOCK = 256  # normal draws are taken in blocks of this size (the same numbers however frames are asked for)
WANDER_LIMIT = 2.5  # typical sizes; larger swings are softly limited


@dataclass
class FrameMotion:
    blink: float
    roll: float
    shift_x: float
    shift_y: float


class _Wander:
    """A smooth random walk with unit standard deviation, one value per frame: white noise
    through a Gaussian of ``seconds``, the noise drawn ahead (it does not depend on the audio)."""

    def __init__(self, fps: float, seconds: float, rng: np.random.Generator):
        sigma = seconds * fps
        radius = max(1, int(3 * sigma))
        kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        self.kernel = kernel / np.sqrt(np.square(kernel).sum())  # unit variance for unit noise
        self.rng = rng
        self.noise = np.zeros(0)  # noise[i] is the first tap's sample for frame noise_start + i
        self.noise_start = 0
        self.values = np.zeros(0)  # walk values for frames [first, first + len)
        self.first = 0

    def __call__(self, k: int) -> float:
        """The walk at frame ``k`` (frames are asked for in increasing order)."""
        taps = len(self.kernel)
        while k >= self.first + len(self.values):
            start = self.first + len(self.values)  # the next NOISE_BLOCK frames
            while self.noise_start + len(self.noise) < start + NOISE_BLOCK + taps - 1:
                self.noise = np.concatenate([self.noise, self.rng.standard_normal(NOISE_BLOCK)])
            self.noise = self.noise[start - self.noise_start:]
            self.noise_start = start
            block = np.convolve(self.noise[:NOISE_BLOCK + taps - 1], self.kernel, mode="valid")
            self.values, self.first = WANDER_LIMIT * np.tanh(block / WANDER_LIMIT), start
        return float(self.values[k - self.first])


class MotionStream:
    """Blinks and head motion for frame 0, 1, 2, ... as the mouth track's loudness arrives.

    Same seed, same motion. Nothing looks ahead in the audio: the nod and roll on loud
    syllables follow a causal smoothing of the loudness (time constant 0.12 s) compared with
    a slower running average (0.8 s), "louder than recently".
    """

    def __init__(self, fps: float, seed: int, *, head_scale: float = 1.0, blink_rate: Optional[float] = None):
        """``head_scale`` multiplies roll, shift and nod (0 = still head); ``blink_rate``:
        blinks per minute on average (0 = none; None = the natural rate, :data:`NATURAL_BLINK_RATE`)."""
        self.fps = float(fps)
        self.head_scale = float(head_scale)
        # The gap after a blink is its duration plus a uniform draw over BLINK_INTERVAL times
        # this factor; the draws themselves are the same whatever the rate (same seed, same rhythm).
        self._interval_scale = 1.0 if blink_rate is None else interval_scale(blink_rate)
        blink_rng, roll_rng, x_rng, y_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
        self._blink_rng = blink_rng
        self._blinks: list[tuple[float, float]] = []  # (start s, duration s)
        self._next_blink = float(blink_rng.uniform(0.5, BLINK_INTERVAL[0]))  # the first blink comes early
        self._roll, self._x, self._y = (_Wander(fps, s, rng) for s, rng in
                                        ((1.2, roll_rng), (1.5, x_rng), (1.5, y_rng)))
        self._fast = 1.0 - math.exp(-1.0 / (0.12 * fps))
        self._slow = 1.0 - math.exp(-1.0 / (0.8 * fps))
        # causal smoothings of the loudness (fast, then slow); None until the first frame
        self._energy: Optional[float] = None
        self._recent: Optional[float] = None
        self._k = 0

    def _blink(self, t: float) -> float:
        if self._interval_scale == math.inf:
            return 0.0
        while self._next_blink <= t:
            duration = float(self._blink_rng.uniform(*BLINK_DURATION))
            self._blinks.append((self._next_blink, duration))
            gap = float(self._blink_rng.uniform(*BLINK_INTERVAL))
            if self._interval_scale != 1.0:  # the default takes exactly the old arithmetic
                gap *= self._interval_scale
            self._next_blink += duration + gap
        weight = 0.0
        for start, duration in self._blinks:
            weight = max(weight, float(blink_shape((t - start) / duration)))
        self._blinks = [b for b in self._blinks if b[0] + b[1] >= t]
        return weight

    def next(self, loudness: float) -> FrameMotion:
        """Motion of the next frame, given that frame's loudness (about 1 for loud speech)."""
        k = self._k
        self._k += 1
        energy, recent = self._energy, self._recent
        if energy is None or recent is None:
            energy = recent = float(loudness)
        energy += self._fast * (float(loudness) - energy)
        recent += self._slow * (energy - recent)
        self._energy, self._recent = energy, recent
        emphasis = max(energy - recent, 0.0)
        roll = HEAD_ROTATION * (0.7 * self._roll(k) + 0.6 * emphasis)
        shift_x = HEAD_SHIFT * self._x(k)
        shift_y = HEAD_SHIFT * 0.6 * self._y(k) + NOD * emphasis
        if self.head_scale != 1.0:  # the default takes exactly the old arithmetic
            roll, shift_x, shift_y = (self.head_scale * v for v in (roll, shift_x, shift_y))
        return FrameMotion(float(np.float32(self._blink(k / self.fps))), float(np.float32(roll)),
                           float(np.float32(shift_x)), float(np.float32(shift_y)))

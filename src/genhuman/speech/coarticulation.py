"""Phones -> continuous mouth channels with coarticulation (a dominance blend).

Each phone pulls the mouth towards its viseme target with a dominance that is full inside
the phone and decays outside it as exp(-(distance / tau)^2) (Cohen & Massaro's model with
exponent 2): faster after the phone (carry-over, 50 ms) than before it (anticipation,
80 ms), so lips start moving 60-100 ms before the sound. The mouth at time t is the
dominance-weighted mean of the targets, so short phones do not reach their full target.
Bilabials have a high dominance and are also forced closed afterwards
(:func:`enforce_closures`) so that smoothing can never open an M/B/P.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genhuman.speech.phonemes import Phone
from genhuman.speech.visemes import (
    BILABIALS, CHANNELS, FIRST_PART_SHARE, phone_dominance, phone_visemes, viseme_target,
)

ANTICIPATION_S = 0.08
CARRYOVER_S = 0.05
SMOOTHING_S = 0.025  # time constant of the final critically damped smoothing
_REACH_S = 0.4  # dominance beyond this distance is negligible


def _segments(phones: Sequence[Phone]):
    """(start, end, viseme, dominance); diphthongs become two segments."""
    for p in phones:
        visemes = phone_visemes(p.phone)
        dominance = phone_dominance(p.phone)
        if len(visemes) == 1:
            yield p.start, p.end, visemes[0], dominance
        else:
            mid = p.start + FIRST_PART_SHARE * (p.end - p.start)
            yield p.start, mid, visemes[0], dominance
            yield mid, p.end, visemes[1], dominance


def blend_targets(phones: Sequence[Phone], n: int, rate: float, first: int = 0) -> np.ndarray:
    """(n - first, len(CHANNELS)) channels sampled at ``rate`` Hz: samples ``first`` .. n - 1
    (sample i at time i / rate). Any span gives the rows the whole clip would (the streaming
    tracker computes long clips a block at a time); ``phones`` may leave out phones that
    cannot reach the span."""
    weighted = np.zeros((n - first, len(CHANNELS)), dtype=np.float64)
    total = np.full(n - first, 1e-6, dtype=np.float64)  # tiny rest weight where no phone reaches
    for start, end, viseme, dominance in _segments(phones):
        lo = max(int(np.floor((start - _REACH_S) * rate)), first)
        hi = min(int(np.ceil((end + _REACH_S) * rate)) + 1, n)
        if hi <= lo:
            continue
        t = np.arange(lo, hi) / rate
        before = np.clip(start - t, 0.0, None)
        after = np.clip(t - end, 0.0, None)
        weight = dominance * np.exp(-np.square(before / ANTICIPATION_S) - np.square(after / CARRYOVER_S))
        weighted[lo - first:hi - first] += weight[:, None] * viseme_target(viseme)[None, :]
        total[lo - first:hi - first] += weight
    return (weighted / total[:, None]).astype(np.float32)


def smooth(values: np.ndarray, rate: float, tau: float = SMOOTHING_S) -> np.ndarray:
    """Zero-phase critically damped smoothing along axis 0.

    A critically damped spring run forward and backward has the symmetric impulse
    response (1 + |t|/tau) exp(-|t|/tau); convolving with it avoids a per-sample loop.
    """
    if len(values) < 2 or tau <= 0:
        return values
    half = max(int(np.ceil(5 * tau * rate)), 1)
    t = np.arange(-half, half + 1) / (tau * rate)
    kernel = (1 + np.abs(t)) * np.exp(-np.abs(t))
    kernel /= kernel.sum()
    squeeze = values.ndim == 1
    data = values[:, None] if squeeze else values
    padded = np.pad(data, ((half, half), (0, 0)), mode="edge")
    out = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(data.shape[1])], axis=1)
    return (out[:, 0] if squeeze else out).astype(values.dtype)


def closure_frames(phones: Sequence[Phone], fps: float, n_frames: int) -> np.ndarray:
    """Video frames that must show closed lips: every frame whose centre lies inside an
    M/B/P, or, for a bilabial shorter than a frame, the frame containing its midpoint."""
    closed = np.zeros(n_frames, dtype=bool)
    for p in phones:
        if p.phone not in BILABIALS:
            continue
        first = int(np.ceil(p.start * fps - 0.5 - 1e-9))
        last = int(np.floor(p.end * fps - 0.5 - 1e-9))
        if last < first:
            first = last = int(np.floor(0.5 * (p.start + p.end) * fps))
        closed[max(first, 0) : min(last + 1, n_frames)] = True
    return closed


def enforce_closures(channels: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """Closed lips on the given frames, whatever smoothing or loudness did."""
    out = channels.copy()
    idx = {name: i for i, name in enumerate(CHANNELS)}
    out[closed, idx["opening"]] = 0.0
    out[closed, idx["teeth"]] = 0.0
    out[closed, idx["tongue"]] = 0.0
    out[closed, idx["lip_press"]] = np.maximum(out[closed, idx["lip_press"]], 0.9)
    return out

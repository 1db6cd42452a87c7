"""Blinks and head motion: seeded, bounded, and shaped like the real thing."""

from __future__ import annotations

import numpy as np

from genhuman.engines.lite import motion
from genhuman.eval.realism import weight_runs

FPS = 25


def test_blinks_are_seeded_and_natural():
    frames = 60 * FPS
    a = motion.blink_weights(frames, FPS, np.random.default_rng(7))
    b = motion.blink_weights(frames, FPS, np.random.default_rng(7))
    c = motion.blink_weights(frames, FPS, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == (frames,) and a.min() == 0.0 and a.max() <= 1.0
    runs = weight_runs(a, 0.0)  # frames with any lid weight
    assert 60 / 6.5 <= len(runs) <= 60 / 2.0 + 1  # one every 2 to 6 s
    for start, end in runs:
        assert (end - start) / FPS <= motion.BLINK_DURATION[1] + 1 / FPS
        assert a[start:end].max() > 0.5  # each blink gets well closed
    gaps = np.diff([start for start, _ in runs]) / FPS
    assert gaps.min() >= motion.BLINK_INTERVAL[0] and gaps.max() <= motion.BLINK_INTERVAL[1] + 0.3


def test_head_motion_is_seeded_small_and_follows_loudness():
    frames = 30 * FPS
    t = np.arange(frames) / FPS
    loudness = (np.sin(2 * np.pi * 0.5 * t) > 0.6).astype(np.float32)  # a loud syllable every 2 s
    a = motion.head_motion(loudness, FPS, np.random.default_rng(3))
    b = motion.head_motion(loudness, FPS, np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip((a.roll, a.shift_x, a.shift_y), (b.roll, b.shift_x, b.shift_y)))
    assert a.roll.shape == a.shift_x.shape == a.shift_y.shape == (frames,)
    assert np.abs(a.roll).max() < 4.0  # degrees
    assert np.abs(a.shift_x).max() < 0.06 and np.abs(a.shift_y).max() < 0.06  # face heights
    assert np.abs(np.diff(a.roll)).max() < 0.3  # smooth: no jumps between frames
    still = motion.head_motion(np.zeros(frames, np.float32), FPS, np.random.default_rng(3))
    nod = a.shift_y - still.shift_y  # same seed: the difference is the loudness part
    assert np.corrcoef(nod, loudness)[0, 1] > 0.3

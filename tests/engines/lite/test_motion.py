"""Blinks and head motion: seeded, bounded, and shaped like the real thing."""

from __future__ import annotations

import numpy as np
import pytest

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
        assert (end - start) / FPS <= min(motion.BLINK_DURATION[1] + 1e-9, 0.3)
        assert a[start:end].max() > 0.9  # each blink closes the eye
    gaps = np.diff([start for start, _ in runs]) / FPS
    assert gaps.min() >= motion.BLINK_INTERVAL[0] and gaps.max() <= motion.BLINK_INTERVAL[1] + 0.3


def test_a_blink_closes_fast_holds_and_reopens_slower():
    phase = np.linspace(-0.2, 1.2, 1401)
    shape = motion.blink_shape(phase)
    assert np.all(shape[(phase <= 0) | (phase >= 1)] == 0.0) and np.all((shape >= 0) & (shape <= 1))
    closed = phase[shape == 1.0]
    assert closed.min() == pytest.approx(motion.BLINK_CLOSE, abs=1e-3) and 0.30 <= motion.BLINK_CLOSE <= 0.35
    assert closed.max() - closed.min() == pytest.approx(motion.BLINK_HOLD, abs=2e-3)  # a short hold
    rising, falling = np.diff(shape[phase < closed.min()]), np.diff(shape[phase > closed.max()])
    assert rising.min() >= 0.0 and falling.max() <= 0.0
    assert 1.0 - closed.max() > 1.5 * closed.min()  # the reopening is the slower half
    assert float(motion.blink_shape(motion.BLINK_CLOSE + motion.BLINK_HOLD / 2)) == 1.0  # a scalar phase too


@pytest.mark.parametrize("source", ["planned", "streamed"])
def test_the_face_mesh_sees_each_blink_closed_for_150_to_250_ms(source):
    # The mesh reads the eye-aspect ratio under 0.8 x open from a lid weight of about 0.15-0.2
    # (tests/engines/lite/test_eyelids.py measures it on the warped portrait); 0.3 for margin.
    frames = 120 * FPS
    if source == "planned":
        weights = motion.blink_weights(frames, FPS, np.random.default_rng(3))
    else:
        stream = motion.MotionStream(FPS, 3)
        weights = np.array([stream.next(0.0).blink for _ in range(frames)])
    lid = weight_runs(weights, 0.0)
    assert len(lid) > 20
    assert max(end - start for start, end in lid) / FPS <= 0.3
    for closed_from in (0.15, 0.2, 0.3):
        seen = [(end - start) / FPS for start, end in weight_runs(weights, closed_from)]
        assert len(seen) == len(lid)
        assert 0.15 <= min(seen) and max(seen) <= 0.25, closed_from


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

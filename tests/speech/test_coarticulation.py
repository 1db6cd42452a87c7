import numpy as np

from genhuman.speech.coarticulation import (
    blend_targets, closure_frames, enforce_closures, smooth,
)
from genhuman.speech.phonemes import Phone
from genhuman.speech.visemes import CHANNELS

RATE = 100.0
OPEN = CHANNELS.index("opening")
PRESS = CHANNELS.index("lip_press")


def test_smooth_preserves_constants_and_is_symmetric():
    assert np.allclose(smooth(np.full((50, 2), 0.7, np.float32), RATE), 0.7)
    impulse = np.zeros(101, np.float32)
    impulse[50] = 1
    out = smooth(impulse, RATE)
    assert np.isclose(out.sum(), 1, atol=1e-4) and np.allclose(out[:50], out[51:][::-1], atol=1e-6)
    assert out.argmax() == 50  # zero phase: no lag


def test_lips_move_before_the_vowel_anticipation():
    phones = [Phone("SIL", 0.0, 0.5), Phone("AA", 0.5, 0.8), Phone("SIL", 0.8, 1.2)]
    curve = blend_targets(phones, 120, RATE)[:, OPEN]
    assert curve[:35].max() < 0.05  # at rest well before
    assert curve[45] > 0.1  # 50 ms before the vowel the jaw is already opening
    assert curve[45] < curve[50] < curve[60]


def test_short_phones_do_not_reach_their_target():
    long = [Phone("S", 0.0, 0.3), Phone("AA", 0.3, 0.6), Phone("S", 0.6, 0.9)]
    short = [Phone("S", 0.0, 0.3), Phone("AA", 0.3, 0.33), Phone("S", 0.33, 0.6)]
    peak_long = blend_targets(long, 90, RATE)[:, OPEN].max()
    peak_short = blend_targets(short, 60, RATE)[:, OPEN].max()
    assert peak_long > 0.9 and peak_short < 0.75 * peak_long


def test_smoothing_would_open_a_short_bilabial_but_closures_are_kept():
    phones = [Phone("AA", 0.0, 0.2), Phone("M", 0.2, 0.23), Phone("AA", 0.23, 0.5)]
    curve = smooth(blend_targets(phones, 60, RATE), RATE)
    fps = 25
    frames = curve[((np.arange(13) + 0.5) / fps * RATE).astype(int)]
    closed = closure_frames(phones, fps, 13)
    assert closed.sum() == 1 and closed[int(0.215 * fps)]  # the frame holding the M's midpoint
    assert frames[closed, OPEN][0] > 0.05  # smoothing alone leaves the lips apart...
    fixed = enforce_closures(frames, closed)
    assert fixed[closed, OPEN][0] == 0 and fixed[closed, PRESS][0] >= 0.9 - 1e-6  # ...this closes them
    assert np.array_equal(fixed[~closed], frames[~closed])


def test_long_bilabial_closes_every_frame_inside_it():
    closed = closure_frames([Phone("M", 0.1, 0.3)], 25, 10)
    assert np.flatnonzero(closed).tolist() == [2, 3, 4, 5, 6]  # centres 0.1 .. 0.26 s

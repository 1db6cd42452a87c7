from __future__ import annotations

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.pose.extend import extend_pose, max_step, pingpong_indices
from genhuman.pose.generate import beat_frames, generate_pose, loudness_envelope
from tests.pose.conftest import make_pose

FPS = 24


def test_sixty_seconds_from_five_has_no_jump_larger_than_the_source():
    source = make_pose(5 * FPS, seed=3)
    limit = max_step(source)
    naive = source.take(np.arange(60 * FPS) % len(source))
    assert max_step(naive) > 2 * limit  # plain looping jumps at every seam
    for mode in ("pingpong", "loop"):
        track = extend_pose(source, 60 * FPS, mode=mode)
        assert len(track) == 60 * FPS and track.seconds == pytest.approx(60.0)
        assert max_step(track) <= limit + 1e-9, mode
        np.testing.assert_array_equal(track.hands[:60], source.hands[:60])  # starts as the source


def test_pingpong_indices_and_cut():
    np.testing.assert_array_equal(pingpong_indices(4, 10), [0, 1, 2, 3, 2, 1, 0, 1, 2, 3])
    np.testing.assert_array_equal(pingpong_indices(1, 3), [0, 0, 0])
    source = make_pose(10)
    assert len(extend_pose(source, 4)) == 4
    with pytest.raises(InputError, match="unknown pose extension mode"):
        extend_pose(source, 40, mode="shuffle")


def _bursts(seconds: float, at: list[float]) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    wave = 0.005 * np.sin(2 * np.pi * 150 * t)
    for centre in at:
        wave += 0.5 * np.exp(-((t - centre) / 0.05) ** 2) * np.sin(2 * np.pi * 200 * t)
    return wave.astype(np.float32)


def test_beats_follow_loudness_peaks():
    wave = _bursts(4.0, [1.0, 2.5])
    env = loudness_envelope(wave, 4 * FPS, FPS)
    assert beat_frames(env, FPS) == [24, 60]


def test_generated_motion_gestures_on_beats_and_rests_in_silence():
    n = 4 * FPS
    pose = generate_pose(n, FPS, wave_16k=_bursts(4.0, [1.0, 2.5]), seed=7)
    assert len(pose) == n and pose.hands.shape == (n, 2, 21, 2)
    lift = -(pose.hands[:, :, 0, 1] - pose.hands[0, :, 0, 1]).min(axis=1)  # how high a wrist rose
    assert lift[24] > 0.03 and lift[60] > 0.03  # each beat lifts a hand
    assert lift[:12].max() < 0.02  # before the first beat only idle sway
    quiet = generate_pose(n, FPS, wave_16k=np.zeros(4 * 16000, np.float32), seed=7)
    assert np.abs(quiet.hands - quiet.hands[0]).max() < 0.02
    assert max_step(pose) < 0.05  # smooth: at most ~40 px per frame on a 768 canvas
    again = generate_pose(n, FPS, wave_16k=_bursts(4.0, [1.0, 2.5]), seed=7)
    np.testing.assert_array_equal(again.hands, pose.hands)
    other = generate_pose(n, FPS, wave_16k=_bursts(4.0, [1.0, 2.5]), seed=8)
    assert not np.array_equal(other.hands, pose.hands)
    assert ((pose.hands > 0) & (pose.hands < 1)).all()  # stays inside the frame

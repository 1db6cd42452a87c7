import importlib.util
from pathlib import Path

import numpy as np
import pytest

from genhuman.speech import vad
from .signals import SR, syllables


def test_frame_count_rule():
    assert vad.frame_count(SR * 7, 25) == 175
    assert vad.frame_count(SR * 7 + 1, 25) == 176  # a partial frame is kept
    assert vad.frame_count(SR, 30) == 30
    assert vad.frame_count(1, 25) == 1


def test_model_is_read_from_the_silero_package():
    spec = importlib.util.find_spec("silero_vad")  # found without importing it (torch)
    assert spec is not None and spec.submodule_search_locations
    assert vad.model_path() == Path(list(spec.submodule_search_locations)[0]) / "data" / vad.MODEL_FILE
    assert vad.model_path().is_file()


def test_own_onnx_runner_matches_the_silero_package_exactly(wave_16k):
    from silero_vad import SileroVADSequence

    reference = SileroVADSequence(str(vad.model_path())).audio_forward(wave_16k)
    ours = vad.speech_probability(wave_16k)
    assert ours.shape == reference.shape == (-(-len(wave_16k) // 512),)
    loud = vad._frame_rms_db(wave_16k, 512) >= vad.ABSOLUTE_FLOOR_DB
    assert np.array_equal(ours[loud], reference[loud])


def test_voice_activity_on_the_example(wave_16k):
    mask = vad.voice_activity(wave_16k, fps=25)
    assert mask.dtype == bool and mask.shape == (175,)
    assert not mask[0] and 0.5 < mask.mean() < 0.9  # leading silence; pauses between phrases
    segments = vad.speech_segments(vad.speech_probability(wave_16k))
    assert len(segments) >= 2 and all(b > a for a, b in segments)


def test_energy_detector_finds_bursts_and_rejects_steady_hum():
    wave, sound = syllables()
    prob = vad.energy_speech_probability(wave)
    centres = (np.arange(len(prob)) * 512 + 256).clip(max=len(wave) - 1)
    t = (centres / SR) % 1.0
    assert (prob[(t > 0.15) & (t < 0.35)] > 0.5).all()  # loud middle of each burst
    assert (prob[t > 0.55] == 0).all()  # the gaps
    hum = (0.2 * np.sin(2 * np.pi * 100 * np.arange(SR * 2) / SR)).astype(np.float32)
    assert not vad.energy_speech_probability(hum).any()


def test_model_missing_an_unusual_voice_adds_the_energy_detector():
    wave, _ = syllables()
    assert (vad.speech_probability(wave) > 0.5).mean() == pytest.approx(
        (vad.energy_speech_probability(wave) > 0.5).mean(), abs=0.05
    )


def test_resample_mask_and_segments():
    step = 0.01
    mask = np.zeros(100, bool)
    mask[20:60] = True  # 0.2 .. 0.6 s
    frames = vad.resample_mask(mask, step, 10, 10)
    assert np.flatnonzero(frames).tolist() == [2, 3, 4, 5]
    prob = np.zeros(100, np.float32)
    prob[10:20] = prob[25:40] = prob[80:90] = 1.0  # gap of 5 frames (160 ms) is bridged
    segs = vad.speech_segments(prob)
    assert len(segs) == 2 and segs[0][0] == pytest.approx(10 * 0.032)
    assert segs[0][1] == pytest.approx(40 * 0.032)


def test_blocked_frame_levels_match_a_direct_computation():
    x = np.random.default_rng(0).normal(scale=0.1, size=1024 * 512 * 2 + 123).astype(np.float32)
    n = -(-len(x) // 512)
    padded = np.zeros(n * 512, np.float32)
    padded[: len(x)] = x
    direct = 10 * np.log10(np.square(padded.reshape(n, 512)).mean(axis=1) + 1e-12)
    assert np.allclose(vad._frame_rms_db(x, 512), direct, atol=1e-4)

"""The transport's clock: sound and picture share one tick counter, so they cannot drift."""

from __future__ import annotations

import fractions

import numpy as np


def test_ten_minutes_of_ticks_give_audio_and_video_on_one_clock():
    from genhuman.live.webrtc import AUDIO_PACKET, OUT_RATE, VIDEO_CLOCK, Upsampler

    fps, ticks = 25, 25 * 600
    upsampler = Upsampler()
    sent = 0
    worst_ms = 0.0
    tone = np.sin(2 * np.pi * 220 * np.arange(640) / 16000).astype(np.float32) * 0.3
    for k in range(ticks):
        for frame in upsampler.frames(tone):
            assert frame.pts == sent and frame.samples == AUDIO_PACKET and frame.sample_rate == OUT_RATE
            sent += AUDIO_PACKET
        video_s = (k + 1) * VIDEO_CLOCK // fps / VIDEO_CLOCK  # where the next video frame starts
        worst_ms = max(worst_ms, abs(sent / OUT_RATE - video_s) * 1000)
    # the resampler holds back a few samples of look-ahead: a constant under 1 ms, never growing
    assert worst_ms < 21.0  # at most one 20 ms packet waits for the next tick
    assert abs(sent / OUT_RATE - ticks / fps) * 1000 < 21.0


def test_microphone_frames_become_16k_mono():
    import av

    from genhuman.live.webrtc import Downsampler

    down = Downsampler()
    t = np.arange(48000) / 48000
    stereo = (np.stack([np.sin(2 * np.pi * 440 * t)] * 2) * 12000).astype(np.int16)
    total = []
    for start in range(0, 48000, 960):
        frame = av.AudioFrame.from_ndarray(stereo[:, start:start + 960].T.reshape(1, -1).copy(), format="s16",
                                           layout="stereo")
        frame.sample_rate = 48000
        frame.pts = start
        frame.time_base = fractions.Fraction(1, 48000)
        total.append(down.samples(frame))
    out = np.concatenate(total)
    assert out.dtype == np.float32 and abs(len(out) - 16000) <= 64
    spectrum = np.abs(np.fft.rfft(out[1000:15000]))
    peak_hz = np.argmax(spectrum) * 16000 / len(out[1000:15000])
    assert abs(peak_hz - 440) < 3
    assert abs(np.sqrt(np.mean(out[1000:15000] ** 2)) - 12000 / 32768 / np.sqrt(2)) < 0.01


def test_odd_sized_frames_are_cropped_to_even_sides():
    from genhuman.live.webrtc import even_size

    assert even_size(np.zeros((513, 301, 3), np.uint8)).shape == (512, 300, 3)
    assert even_size(np.zeros((512, 300, 3), np.uint8)).shape == (512, 300, 3)

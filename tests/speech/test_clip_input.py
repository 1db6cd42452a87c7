"""plan_phones and the voice activity read an AudioClip piece by piece and decide exactly what
they decide on the same samples held in memory."""

from __future__ import annotations

import numpy as np

from genhuman.media import AudioClip
from genhuman.speech import vad
from genhuman.speech.track import plan_phones


def recorded_reads(monkeypatch) -> list[int]:
    sizes: list[int] = []
    real_read = AudioClip.read

    def read(self, start, stop):
        out = real_read(self, start, stop)
        sizes.append(len(out))
        return out

    monkeypatch.setattr(AudioClip, "read", read)
    return sizes


def test_plan_phones_on_a_clip_equals_the_array_and_never_reads_it_whole(wave_16k, monkeypatch):
    wave = np.tile(wave_16k, 5)[: 35 * 16000]  # 35 s: longer than a VAD block and a recognition chunk
    from_array = plan_phones(wave)
    sizes = recorded_reads(monkeypatch)
    with AudioClip.from_array(wave) as clip:
        np.testing.assert_array_equal(vad.speech_probability(clip), vad.speech_probability(wave))
        from_clip = plan_phones(clip)
    assert from_clip == from_array and len(from_clip.phones) > 100
    assert sizes and max(sizes) <= 1024 * vad.VAD_HOP < len(wave)  # one level block (32.8 s) at most


def test_silent_clip_is_refused(monkeypatch):
    import pytest

    from genhuman.errors import InputError

    with AudioClip.from_array(np.zeros(16000, np.float32)) as clip:
        with pytest.raises(InputError, match="^audio is silent: no speech found$"):
            plan_phones(clip)

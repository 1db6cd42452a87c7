import numpy as np
import pytest

from genhuman.errors import Cancelled, InputError
from genhuman.speech import CHANNELS, mouth_track, track
from genhuman.speech.visemes import VISEME_SHAPES

from .conftest import FPS, frame_rms
from .signals import SR, syllables, vowel

CLOSED = 0.05


def _frames_inside(start, end, fps=FPS, margin=0):
    centres = (np.arange(int(end * fps) + 2) + 0.5) / fps
    return np.flatnonzero((centres >= start + margin) & (centres < end - margin))


def test_track_shape_and_types(aligned_track, wave_16k):
    tr = aligned_track
    assert tr.n_frames == 175 == int(np.ceil(len(wave_16k) * FPS / SR))
    for name in CHANNELS + ("loudness",):
        arr = getattr(tr, name)
        assert arr.dtype == np.float32 and arr.shape == (175,) and np.isfinite(arr).all(), name
    assert tr.voiced.dtype == bool and tr.voiced.shape == (175,)
    assert len(tr.visemes) == 175 and set(tr.visemes) <= set(VISEME_SHAPES)
    assert tr.channels().shape == (175, len(CHANNELS))
    assert 0 <= tr.opening.min() and tr.opening.max() <= 1.2
    assert tr.source == "aligned" and tr.phones[0][1] == 0.0


def test_mouth_closes_on_bilabials(aligned_track, wave_16k, speech_text):
    from genhuman.speech.phonemes import align

    bilabials = [p for p in align(wave_16k, speech_text) if p.phone in ("M", "B", "P")]
    words = {p.word for p in bilabials}
    assert {"moon", "am", "about", "space"} <= words
    for p in bilabials:
        frames = _frames_inside(p.start, p.end)
        if not len(frames):
            frames = [int((p.start + p.end) / 2 * FPS)]
        assert aligned_track.opening[frames].max() < CLOSED, p
        assert aligned_track.lip_press[frames].min() > 0.8, p


def test_mouth_closes_in_pauses(aligned_track):
    pauses = [(p, s, e) for p, s, e in aligned_track.phones if p == "SIL" and e - s >= 0.2]
    assert len(pauses) >= 3
    for _, s, e in pauses:
        frames = _frames_inside(s, e, margin=0.04)
        assert aligned_track.opening[frames].max() < CLOSED, (s, e)
    silent = ~aligned_track.voiced
    assert (aligned_track.opening[silent] == 0).all() and (aligned_track.teeth[silent] == 0).all()
    assert set(np.array(aligned_track.visemes)[silent]) == {"X"}


@pytest.mark.parametrize("name", ["aligned_track", "recognized_track"])
def test_opening_follows_loudness(name, request, wave_16k):
    tr = request.getfixturevalue(name)
    rms = frame_rms(wave_16k, FPS, tr.n_frames)
    assert np.corrcoef(tr.opening, rms)[0, 1] > 0.6
    assert tr.opening[tr.voiced].mean() > 0.15  # it actually talks


def test_recognition_path_without_text(recognized_track):
    tr = recognized_track
    assert tr.source == "recognized"
    starts = [s for _, s, _ in tr.phones]
    assert len(tr.phones) > 30 and starts == sorted(starts)
    assert "A" in tr.visemes and "X" in tr.visemes


def test_wrong_transcript_falls_back_to_recognition(wave_16k):
    text = "the quick brown fox jumps over the lazy dog"  # aligns, but words sit in pauses
    assert mouth_track(wave_16k, text=text).source == "recognized"


def test_chunked_recognition_matches_the_whole_clip(wave_16k, recognized_track, monkeypatch):
    clip = np.concatenate([wave_16k, wave_16k])
    monkeypatch.setattr(track, "CHUNK_S", 8.0)  # forces one chunk per copy
    chunks = track.recognition_chunks(track.vad.speech_probability(clip), len(clip))
    assert len(chunks) >= 2 and all(b - a <= 8.0 for a, b in chunks)
    tr = mouth_track(clip)
    n = recognized_track.n_frames
    assert tr.source == "recognized" and max(s for _, s, _ in tr.phones) > 7.0
    assert np.corrcoef(tr.opening[n : 2 * n - 2], recognized_track.opening[: n - 2])[0, 1] > 0.8


def test_recognition_chunks_cut_long_speech_inside_pauses(monkeypatch):
    prob = np.ones(int(100 * SR / 512), np.float32)  # 100 s of speech...
    prob[int(40 * SR / 512) : int(41 * SR / 512)] = 0  # ...with one pause at 40 s
    chunks = track.recognition_chunks(prob, 100 * SR)
    assert all(b - a <= track.CHUNK_S + 1e-6 for a, b in chunks)
    assert all(b0 <= a1 for (_, b0), (a1, _) in zip(chunks, chunks[1:]))
    assert chunks[0][0] == 0 and chunks[-1][1] == pytest.approx(100, abs=0.05)
    assert any(abs(b - 40.15) < 0.05 for _, b in chunks)  # the pause is used as a cut


@pytest.mark.parametrize("mode", ["acoustic", "auto"])
def test_acoustic_path_opens_in_sound_and_closes_in_gaps(mode):
    wave, _ = syllables(seconds=4.0)
    tr = mouth_track(wave, fps=FPS, mode=mode)
    assert tr.source == "acoustic" and tr.phones == []
    t = ((np.arange(tr.n_frames) + 0.5) / FPS) % 1.0
    assert tr.opening[(t > 0.2) & (t < 0.3)].min() > 0.3
    assert tr.opening[(t > 0.6) & (t < 0.9)].max() < CLOSED
    rms = frame_rms(wave, FPS, tr.n_frames)
    assert np.corrcoef(tr.opening, rms)[0, 1] > 0.8


def test_acoustic_vowel_quality():
    # Frames 0.76-1.16 s: silero takes the start of this synthetic vowel for speech and then
    # drops it; the streaming VAD can only notice that as it goes (the energy detector joins
    # in after ~0.5 s), where the whole-clip VAD knew it from the start.
    def middle(f1, f2):
        gap = np.zeros(SR // 4, np.float32)
        tr = mouth_track(np.concatenate([gap, vowel(f1, f2, 1.0), gap]), mode="acoustic")
        return {name: float(getattr(tr, name)[19:29].mean()) for name in ("opening", "width", "roundness")}

    a, i, u = middle(750, 1200), middle(300, 2300), middle(320, 800)
    assert a["opening"] > i["opening"] and a["opening"] > u["opening"]
    assert u["roundness"] > i["roundness"] + 0.3
    assert i["width"] > u["width"] + 0.5


def test_empty_and_silent_audio_raise():
    with pytest.raises(InputError, match=r"^audio is empty$"):
        mouth_track(np.zeros(0, np.float32))
    with pytest.raises(InputError, match=r"^audio is silent: no speech found$"):
        mouth_track(np.zeros(SR * 2, np.float32))
    hum = (0.2 * np.sin(2 * np.pi * 100 * np.arange(SR * 2) / SR)).astype(np.float32)
    with pytest.raises(InputError, match=r"^audio is silent: no speech found$"):
        mouth_track(hum)


def test_bad_arguments_raise(wave_16k):
    with pytest.raises(InputError, match="mode must be one of auto, phonetic, acoustic"):
        mouth_track(wave_16k, mode="magic")
    with pytest.raises(InputError, match="fps must be between"):
        mouth_track(wave_16k, fps=0)
    with pytest.raises(InputError, match="mono"):
        mouth_track(np.zeros((2, 100), np.float32))


def test_int16_samples_are_scaled(wave_16k, speech_text, aligned_track):
    pcm = np.round(wave_16k * 32767).astype(np.int16)
    tr = mouth_track(pcm, text=speech_text)
    assert np.allclose(tr.opening, aligned_track.opening, atol=0.02)


def test_other_frame_rates(wave_16k, speech_text):
    tr = mouth_track(wave_16k, fps=30, text=speech_text)
    assert tr.n_frames == int(np.ceil(len(wave_16k) * 30 / SR)) and tr.fps == 30.0
    assert np.corrcoef(tr.opening, frame_rms(wave_16k, 30, tr.n_frames))[0, 1] > 0.6


def test_progress_and_cancel(wave_16k, speech_text):
    seen = []
    mouth_track(wave_16k, text=speech_text, progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(Cancelled):
        mouth_track(wave_16k, should_cancel=lambda: True)

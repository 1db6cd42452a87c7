import numpy as np

from genhuman.speech import phonemes, vad
from genhuman.speech.phonemes import align, recognize, transcript_words


def _check_timeline(phones, duration):
    starts = np.array([p.start for p in phones])
    ends = np.array([p.end for p in phones])
    assert (ends > starts).all()
    assert (starts[1:] >= ends[:-1] - 1e-9).all()  # monotonic, no overlap
    assert starts[0] < 0.1 and duration - 0.1 < ends[-1] <= duration + 0.011


def _speech_recall(phones, wave):
    """Share of VAD speech time covered by non-silence phones."""
    prob = vad.speech_probability(wave)
    t = (np.arange(len(prob)) + 0.5) * 512 / 16000
    speech = prob > 0.5
    covered = np.zeros(len(t), bool)
    for p in phones:
        if p.is_speech:
            covered |= (t >= p.start) & (t < p.end)
    return (covered & speech).sum() / speech.sum()


def test_transcript_words():
    words = transcript_words("Hello! I'm an astronaut, 42 times at the 'café'_bar.")
    assert words == ["hello", "i'm", "an", "astronaut", "42", "times", "at", "the", "café", "bar"]


def test_forced_alignment_covers_the_speech_with_the_transcript_words(wave_16k, speech_text):
    phones = align(wave_16k, speech_text)
    _check_timeline(phones, len(wave_16k) / 16000)
    words = []
    for p in phones:
        if p.word and (not words or words[-1] != p.word):
            words.append(p.word)
    assert words == transcript_words(speech_text)
    assert [p.phone for p in phones if p.word == "moon"] == ["M", "UW", "N"]
    assert _speech_recall(phones, wave_16k) > 0.9


def test_unknown_words_are_aligned_with_letter_to_sound(wave_16k, speech_text):
    phones = align(wave_16k, speech_text.replace("astronaut", "astronautrix"))
    assert phones is not None and any(p.word == "astronautrix" for p in phones)


def test_a_transcript_without_words_returns_none(wave_16k):
    assert align(wave_16k, "!!! ...") is None


def test_phone_recognition_without_text(wave_16k):
    phones = recognize(wave_16k, offset=1.0)
    shifted = [phonemes.Phone(p.phone, p.start - 1.0, p.end - 1.0) for p in phones]
    _check_timeline(shifted, len(wave_16k) / 16000)
    assert sum(p.is_speech for p in phones) > 30
    assert {"M", "S"} <= {p.phone for p in phones}


def test_long_alignment_works_piece_by_piece(wave_16k, speech_text, monkeypatch):
    monkeypatch.setattr(phonemes, "PIECE_S", 3.0)
    clip = np.concatenate([wave_16k, np.zeros(8000, np.float32), wave_16k])
    segments = []
    real_pieces = phonemes._pieces

    def spy(segs, n):
        segments.append(real_pieces(segs, n))
        return segments[-1]

    monkeypatch.setattr(phonemes, "_pieces", spy)
    phones = align(clip, speech_text + " " + speech_text)
    assert len(segments[0]) >= 3  # really split
    _check_timeline(phones, len(clip) / 16000)
    words = []
    for p in phones:
        if p.word and (not words or words[-1] != p.word):
            words.append(p.word)
    assert words == transcript_words(speech_text) * 2


class _NoPathDecoder:
    """Stands in for a pocketsphinx decoder that finds no path: seg() is None."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append(name)
            return None
        return record


def test_no_hypothesis_gives_no_phones_and_each_call_starts_fresh(monkeypatch, wave_16k):
    decoder = _NoPathDecoder()
    monkeypatch.setattr(phonemes, "_recognizer", lambda: decoder)
    monkeypatch.setattr(phonemes, "_aligner", lambda: decoder)
    monkeypatch.setattr(phonemes, "_ensure_in_dictionary", lambda d, words: words)
    assert recognize(wave_16k[:16000]) == []
    assert align(wave_16k[:16000], "hello moon") is None
    assert decoder.calls.count("reinit_feat") == 2
    decoder.calls.clear()
    recognize(wave_16k[:16000], fresh=False)  # a later piece of one recording: state carried
    assert "reinit_feat" not in decoder.calls

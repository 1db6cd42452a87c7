"""genhuman.live.voice: Piper speech with its own ARPAbet phone timings at 16 kHz."""

from __future__ import annotations

import difflib
from types import SimpleNamespace

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.live.voice import Utterance, ipa_phones, pads_forward, resample, samples_per_frame, speak
from genhuman.media import SAMPLE_RATE
from genhuman.speech import phonemes
from genhuman.speech.phonemes import Phone
from genhuman.speech.visemes import ARPABET

SENTENCE = "Maybe we could build a boat by the lake, but my brother is busy."
BILABIALS = "Bob and Pam made a map."


@pytest.fixture(scope="module")
def sentence() -> Utterance:
    return speak(SENTENCE)


@pytest.fixture(scope="module")
def bilabials() -> Utterance:
    return speak(BILABIALS)


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave)))) if len(wave) else 0.0


def span(utt: Utterance, start: float, end: float) -> np.ndarray:
    return utt.samples[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]


# -- the IPA -> ARPAbet mapping (no synthesis) -------------------------------------------

def test_ipa_symbols_become_arpabet_phones_with_exact_times():
    # "hello, ma" as piper aligns it: stress before the vowel, a diphthong in two symbols,
    # a length mark after its vowel, a word space, a pause and the start/end pads.
    symbols = [("^", 100), ("h", 50), ("ə", 60), ("l", 40), ("ˈ", 30), ("o", 70), ("ʊ", 20),
               (",", 200), (" ", 10), ("m", 40), ("ˈ", 10), ("ɑ", 50), ("ː", 30), (".", 80), ("$", 20)]
    got = ipa_phones(symbols, rate=1000)
    assert got == [Phone("HH", 0.1, 0.15), Phone("AH", 0.15, 0.21), Phone("L", 0.21, 0.25),
                   Phone("OW", 0.25, 0.37),  # the stress mark's 30 samples, o and ʊ
                   Phone("M", 0.58, 0.62), Phone("AA", 0.62, 0.71)]  # stress + ɑ + length
    assert sum(n for _, n in symbols) == 810  # every sample is in a phone or a silence


def test_flaps_rhotics_affricates_and_marks():
    symbols = [("^", 10), ("b", 10), ("ʌ", 10), ("ɾ", 10), ("ɚ", 10), (" ", 10), ("tʃ"[0], 10), ("tʃ"[1], 10),
               ("ɪ", 10), ("n", 10), ("\u0329", 10), ("ʔ", 10), ("ɡ", 10), ("ɝ", 10), ("$", 10)]
    got = ipa_phones(symbols, rate=100, offset=100)  # the sentence starts 1 s into the utterance
    assert [p.phone for p in got] == ["B", "AH", "T", "ER", "CH", "IH", "N", "T", "G", "ER"]
    assert got[0].start == pytest.approx(1.1) and got[4] == Phone("CH", 1.6, 1.8)
    assert got[6] == Phone("N", 1.9, 2.1)  # the syllabic mark lengthens its n
    assert all(p.phone in ARPABET for p in got)


def test_unknown_letters_lengthen_the_phone_before_and_times_stop_at_the_audio():
    got = ipa_phones([("^", 10), ("s", 10), ("ʘ", 10), (" ", 10), ("ˈ", 10), ("i", 50)], rate=100,
                     audio_samples=70)
    assert got == [Phone("S", 0.1, 0.3), Phone("IY", 0.4, 0.7)]


def test_pads_count_with_the_symbol_after_them():
    # ids: ^ _ h _ i _ $ with pad id 0; piper counts each pad with the symbol before it
    chunk = SimpleNamespace(
        phoneme_id_samples=np.array([256, 512, 768, 256, 1024, 512, 256]),
        phoneme_alignments=[SimpleNamespace(phoneme="^", phoneme_ids=[1, 0]),
                            SimpleNamespace(phoneme="h", phoneme_ids=[20, 0]),
                            SimpleNamespace(phoneme="i", phoneme_ids=[21, 0]),
                            SimpleNamespace(phoneme="$", phoneme_ids=[2])])
    assert pads_forward(chunk, frozenset({0})) == [("^", 256), ("h", 512 + 768), ("i", 256 + 1024), ("$", 512 + 256)]


def test_resampling_keeps_instants_and_length():
    impulse = np.zeros(22050, np.float32)
    impulse[11025] = 1.0  # 0.5 s
    out = resample(impulse, 22050, 16000)
    assert out.dtype == np.float32 and len(out) == 16000 and int(np.argmax(out)) == 8000
    tone = np.sin(2 * np.pi * 300 * np.arange(22050) / 22050).astype(np.float32)
    expected = np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)
    assert np.abs(resample(tone, 22050, 16000) - expected)[50:-50].max() < 1e-3


def test_frames_must_be_whole_samples():
    assert samples_per_frame(25) == 640 and samples_per_frame(50.0) == 320
    with pytest.raises(InputError, match=r"divides 16000 samples evenly .* not 30$"):
        samples_per_frame(30)
    with pytest.raises(InputError, match="fps must be between 1 and 240"):
        speak("Hello.", fps=0)


# -- speaking -----------------------------------------------------------------------------

def test_an_utterance_is_whole_frames_of_16k_audio_with_ordered_arpabet_phones(sentence):
    samples, phones = sentence.samples, sentence.phones
    assert sentence.text == SENTENCE and samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) % 640 == 0 and 2.5 < sentence.duration_s < 5.0
    assert np.all(samples[-1:] == 0.0) and 0.05 < np.abs(samples).max() <= 1.0
    assert [p.phone for p in phones[:17]] == "M EY B IY W IY K UH D B IH L D AH B OW T".split()
    assert all(p.phone in ARPABET for p in phones)  # no stress digits, no SIL
    assert all(0.0 < p.start < p.end for p in phones)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(phones, phones[1:]))  # in order, no overlap


def test_phones_cover_the_speech(sentence):
    loud = np.flatnonzero(np.abs(sentence.samples) > 0.1 * np.abs(sentence.samples).max()) / SAMPLE_RATE
    first, last = sentence.phones[0], sentence.phones[-1]
    assert abs(first.start - loud[0]) < 0.08 and abs(last.end - loud[-1]) < 0.12
    assert last.end <= sentence.duration_s
    # what the phones leave out (word gaps, the pause at the comma, the pads) is quieter
    inside = np.zeros(len(sentence.samples), bool)
    for p in sentence.phones:
        inside[int(p.start * SAMPLE_RATE):int(p.end * SAMPLE_RATE)] = True
    assert rms(sentence.samples[~inside]) < 0.5 * rms(sentence.samples[inside])


def test_lip_closures_are_quiet_where_the_phones_put_them(bilabials):
    names = [p.phone for p in bilabials.phones]
    assert names == "B AA B AE N D P AE M M EY D AH M AE P".split()
    for i, p in enumerate(bilabials.phones):
        if p.phone not in ("B", "P", "M"):
            continue
        vowels = [q for q in bilabials.phones[max(i - 1, 0):i + 2] if q.phone in ("AA", "AE", "EY", "AH")]
        middle = span(bilabials, p.start + 0.25 * (p.end - p.start), p.end - 0.25 * (p.end - p.start))
        louder = max(rms(span(bilabials, q.start, q.end)) for q in vowels)
        # a stop's closure is near silence; an m hums through the nose, still under the vowel
        assert rms(middle) < (0.25 if p.phone in ("B", "P") else 0.8) * louder, (p, rms(middle), louder)


def test_timings_agree_with_pocketsphinx_forced_alignment(sentence):
    reference = [p for p in phonemes.align(sentence.samples, SENTENCE) if p.phone != "SIL"]
    ours, theirs = [p.phone for p in sentence.phones], [p.phone for p in reference]
    matcher = difflib.SequenceMatcher(a=ours, b=theirs, autojunk=False)
    pairs = [(sentence.phones[m.a + k], reference[m.b + k]) for m in matcher.get_matching_blocks() for k in range(m.size)]
    assert len(pairs) >= 0.9 * len(ours)
    starts = np.array([a.start - b.start for a, b in pairs])
    ends = np.array([a.end - b.end for a, b in pairs])
    assert np.median(np.abs(starts)) < 0.06 and np.median(np.abs(ends)) < 0.06
    assert abs(np.median(starts)) < 0.04  # no steady lag either way


def test_text_the_voice_cannot_speak_is_refused():
    with pytest.raises(InputError, match=r"^text is empty$"):
        speak("  ")
    with pytest.raises(InputError, match=r"^text has nothing to speak$"):
        speak("...")
    with pytest.raises(InputError, match=r"^text is not in English"):
        speak("你好")


def test_sentences_follow_each_other_on_one_clock():
    utt = speak("Go now. We stay.")  # piper speaks each sentence apart: two waves, two sets of counts
    names = [p.phone for p in utt.phones]
    assert names == "G OW N AW W IY S T EY".split()
    assert all(a.end <= b.start + 1e-9 for a, b in zip(utt.phones, utt.phones[1:]))
    now, we = utt.phones[3], utt.phones[4]
    assert we.start - now.end > 0.1  # the full stop's pause, then the second sentence's start pad
    assert rms(span(utt, now.end + 0.03, we.start - 0.03)) < 0.1 * rms(span(utt, now.start, now.end))
    assert utt.phones[-1].end <= utt.duration_s


def test_leading_silence_is_trimmed_in_whole_frames_and_the_phones_move_with_it():
    import numpy as np

    from genhuman.live.voice import Utterance, trim_leading_silence
    from genhuman.speech.phonemes import Phone

    samples = np.zeros(640 * 20, np.float32)
    samples[4000:] = 0.5
    utterance = Utterance("hi", samples, (Phone("HH", 0.25, 0.3), Phone("AY", 0.3, 0.5)))
    trimmed = trim_leading_silence(utterance, keep_s=0.04)
    # 0.25 - 0.04 = 0.21 s -> 5 whole frames of 640 samples (0.2 s)
    assert len(trimmed.samples) == len(samples) - 5 * 640
    assert np.array_equal(trimmed.samples, samples[3200:])
    assert [(p.phone, round(p.start, 6), round(p.end, 6)) for p in trimmed.phones] == [("HH", 0.05, 0.1),
                                                                                      ("AY", 0.1, 0.3)]
    early = Utterance("a", samples, (Phone("AH", 0.05, 0.2),))
    assert trim_leading_silence(early) is early  # less than a frame to trim

"""TurnDetector on synthetic audio: Piper speech between stretches of faint room noise."""

from __future__ import annotations

import time

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.live.turns import TurnDetector, TurnEvent
from genhuman.media import load_audio
from genhuman.speech.tts import synthesize_to_file

SR = 16000
QUESTION = "What is the capital of France?"
# Pauses of up to ~0.45 s between its clauses: shorter than the default silence_s (0.5).
PAUSED = "Well, I think so. But tell me, what is the weather like today?"


def speech(tmp_path_factory, text: str) -> np.ndarray:
    path = synthesize_to_file(text, tmp_path_factory.mktemp("tts") / "speech.wav")
    return load_audio(path)  # Piper's 22050 Hz resampled to 16 kHz


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> np.ndarray:
    return speech(tmp_path_factory, QUESTION)


@pytest.fixture(scope="module")
def paused(tmp_path_factory) -> np.ndarray:
    return speech(tmp_path_factory, PAUSED)


def room_noise(seconds: float, dbfs: float = -70.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * SR)) * 10 ** (dbfs / 20)).astype(np.float32)


def in_room(wave: np.ndarray, before_s: float = 1.0, after_s: float = 1.5) -> np.ndarray:
    """``wave`` with faint noise before and after it, and under it."""
    out = room_noise(before_s + len(wave) / SR + after_s)
    first = int(before_s * SR)
    out[first:first + len(wave)] += wave
    return out


def sound_span(wave: np.ndarray) -> tuple[float, float]:
    """(onset, last sound) in seconds: first and last 10 ms window above -40 dBFS."""
    n = len(wave) // 160
    level = 10 * np.log10(np.square(wave[:n * 160].reshape(n, 160)).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(level > -40.0)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def events_of(wave: np.ndarray, chunk: int = 512, **options) -> tuple[list[TurnEvent], TurnDetector]:
    detector = TurnDetector(**options)
    events: list[TurnEvent] = []
    for first in range(0, len(wave), chunk):
        events += detector.push(wave[first:first + chunk])
    return events, detector


@pytest.mark.parametrize("silence_s", [0.3, 0.5, 0.8])
def test_start_follows_the_onset_and_end_follows_the_last_sound_by_silence_s(question, silence_s):
    wave = in_room(question)
    onset, last = sound_span(wave)
    events, _ = events_of(wave, silence_s=silence_s)
    assert [e.kind for e in events] == ["start", "end"]
    start, end = events
    assert 0.0 < start.time_s - onset <= 0.15  # soon enough to stop the avatar on barge-in
    assert silence_s <= end.time_s - last <= silence_s + 0.1


def test_pauses_shorter_than_silence_s_stay_in_one_turn(paused):
    wave = in_room(paused)
    events, _ = events_of(wave)
    assert [e.kind for e in events] == ["start", "end"]
    onset, last = sound_span(wave)
    # "start" after 4 speech frames of 32 ms, the onset anywhere in the first: at most 160 ms
    assert events[0].time_s - onset <= 0.17 and 0.5 <= events[1].time_s - last <= 0.6
    # the same audio with a shorter silence_s is cut at its pauses
    split, _ = events_of(wave, silence_s=0.2)
    assert len(split) >= 4 and [e.kind for e in split] == ["start", "end"] * (len(split) // 2)


def test_the_events_do_not_depend_on_the_chunk_size(paused):
    wave = in_room(paused)
    reference, detector = events_of(wave, chunk=len(wave))
    utterance = detector.utterance()
    for chunk in (160, 512, 1999):
        started = time.thread_time()  # CPU time: other work on the machine does not count
        events, detector = events_of(wave, chunk=chunk)
        cost_per_s = (time.thread_time() - started) / (len(wave) / SR)
        assert events == reference, chunk
        np.testing.assert_array_equal(detector.utterance(), utterance)
        assert cost_per_s < 0.2  # ~0.01 s per second of audio measured on one core


def test_utterance_holds_the_preroll_and_the_whole_speech(question):
    wave = in_room(question)
    onset, last = sound_span(wave)
    detector = TurnDetector(preroll_s=0.3)
    assert len(detector.utterance()) == 0
    pushed, events = 0, []
    while not events:  # up to the start: the current turn so far
        events = detector.push(wave[pushed:pushed + 512])
        pushed += 512
    during = detector.utterance()
    first = pushed - len(during)  # where it begins in the signal
    np.testing.assert_array_equal(during, wave[first:pushed])
    assert onset - 0.3 - 0.1 <= first / SR <= onset - 0.3 + 0.04
    for begin in range(pushed, len(wave), 512):
        events += detector.push(wave[begin:begin + 512])
    end = events[-1]
    assert [e.kind for e in events] == ["start", "end"]
    after = detector.utterance()  # the last turn, up to its end
    stop = int(round(end.time_s * SR))
    np.testing.assert_array_equal(after, wave[first:stop])
    assert stop / SR > last  # all of the speech is in it
    detector.push(room_noise(1.0))
    np.testing.assert_array_equal(detector.utterance(), after)  # kept until the next turn


@pytest.mark.parametrize("burst", ["click", "noise", "syllable"])
def test_bursts_shorter_than_min_speech_s_are_no_turn(question, burst):
    rng = np.random.default_rng(1)
    if burst == "click":
        sound = np.full(5, 0.9, np.float32)
    elif burst == "noise":
        sound = (rng.standard_normal(int(0.1 * SR)) * 0.3).astype(np.float32)
    else:  # 60 ms of a vowel of the question: speech to silero, but too short for a turn
        sound = question[int(0.2 * SR):int(0.26 * SR)]
    events, _ = events_of(in_room(sound, after_s=1.0))
    assert events == []


def test_a_syllable_is_a_turn_once_min_speech_s_allows_it(question):
    """The counterpart of the test above: the gate, not silero, rejected the syllable."""
    syllable = in_room(question[int(0.2 * SR):int(0.26 * SR)], after_s=1.0)
    events, _ = events_of(syllable, min_speech_s=0.03)
    assert [e.kind for e in events] == ["start", "end"]


def test_steady_noise_at_minus_50_dbfs_is_no_turn_but_speech_over_it_is(question):
    noise = room_noise(4.0, dbfs=-50.0, seed=2)
    assert events_of(noise)[0] == []
    noise[SR:SR + len(question)] += question
    assert [e.kind for e in events_of(noise)[0]] == ["start", "end"]


def test_a_turn_longer_than_max_turn_s_is_ended(question):
    wave = in_room(np.concatenate([question, question]))
    events, _ = events_of(wave, max_turn_s=1.0)
    assert [e.kind for e in events[:2]] == ["start", "end"]
    first_speech_frame = events[0].time_s - 4 * 0.032  # "start" confirms 4 frames of speech
    assert 1.0 <= events[1].time_s - first_speech_frame <= 1.0 + 0.032


def test_reset_drops_the_turn_and_keeps_the_clock(question):
    wave = in_room(question)
    detector = TurnDetector()
    events = detector.push(wave[:int(1.6 * SR)])
    assert [e.kind for e in events] == ["start"] and detector.in_turn
    detector.reset()
    assert not detector.in_turn and len(detector.utterance()) == 0
    assert detector.push(room_noise(1.0)) == []  # no "end" for the dropped turn
    assert detector.time_s == pytest.approx(2.6)
    events = detector.push(wave)  # a whole new turn, on the same clock
    assert [e.kind for e in events] == ["start", "end"] and events[0].time_s > 2.6 + 1.0


@pytest.mark.parametrize("options, message", [
    ({"silence_s": 0.0}, "silence_s must be between"),
    ({"threshold": 1.5}, "threshold must be between 0 and 1"),
    ({"preroll_s": -1}, "preroll_s must be between"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(InputError, match=message):
        TurnDetector(**options)


def test_integer_pcm_and_odd_chunks_are_accepted():
    detector = TurnDetector()
    assert detector.push(np.zeros(7, np.int16)) == [] and detector.push(np.zeros(0, np.float32)) == []
    assert detector.time_s == pytest.approx(7 / SR)

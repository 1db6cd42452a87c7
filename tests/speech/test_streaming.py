"""The streaming mouth tracker: chunking never changes a value, bounded lookahead, phones
given in advance, transcripts that do not fit the audio."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.speech import frame_count, mouth_track
from genhuman.speech.streaming import MouthTracker, PhonePlan, lookahead_frames, track_frames
from genhuman.speech.track import plan_phones

from .conftest import FPS
from .signals import SR, syllables

SECONDS = 3.0


def _pieces(wave: np.ndarray, sizes) -> list[np.ndarray]:
    out, start, i = [], 0, 0
    while start < len(wave):
        size = sizes[i % len(sizes)]
        out.append(wave[start:start + size])
        start += size
        i += 1
    return out


@pytest.fixture(scope="module")
def clip(wave_16k) -> np.ndarray:
    return wave_16k[: int(SECONDS * SR) + 123]


@pytest.fixture(scope="module")
def clip_plan(clip, speech_text) -> PhonePlan:
    return plan_phones(clip, "Hello! I am an astronaut. Today, we will")


@pytest.mark.parametrize("with_phones", [True, False])
def test_chunking_never_changes_a_frame(clip, clip_plan, with_phones):
    phones = clip_plan if with_phones else None
    whole = track_frames(clip, FPS, phones)
    assert len(whole) == frame_count(len(clip), FPS)
    assert [f.index for f in whole] == list(range(len(whole)))
    for sizes in ([640], [16000], [1, 0, 511, 4000, 77], [9999]):  # 40 ms, 1 s, ragged, odd
        assert track_frames(clip, FPS, phones, chunks=_pieces(clip, sizes)) == whole, sizes


def test_pcm_integers_are_scaled_like_floats(clip):
    pcm = np.round(clip * 32767).astype(np.int16)
    a = np.array([f.opening for f in track_frames(pcm, FPS)])
    b = np.array([f.opening for f in track_frames(clip, FPS)])
    assert np.allclose(a, b, atol=0.02 * max(b.max(), 1e-6))


@pytest.mark.parametrize("fps", [25, 30, 12])
def test_a_frame_comes_before_audio_beyond_its_lookahead(clip, clip_plan, fps):
    lookahead = lookahead_frames(fps)
    assert lookahead == {25: 4, 30: 5, 12: 2}[fps]
    tracker = MouthTracker(fps, clip_plan)
    step = 80  # 5 ms pieces
    pushed_when = {}
    pushed = 0
    for start in range(0, len(clip), step):
        chunk = clip[start:start + step]
        pushed += len(chunk)
        for frame in tracker.push(chunk):
            pushed_when[frame.index] = pushed
    released_while_streaming = len(pushed_when)
    for frame in tracker.finish():
        pushed_when[frame.index] = pushed
    assert sorted(pushed_when) == list(range(frame_count(len(clip), fps)))
    # every frame whose lookahead lies inside the clip came while the audio was arriving...
    bound = {k: (k + 1 + lookahead) / fps * SR for k in pushed_when}
    inside = [k for k in pushed_when if bound[k] + step <= len(clip)]
    assert released_while_streaming >= len(inside) > 0
    # ...no later than one piece after the audio up to its end + lookahead was in
    assert all(pushed_when[k] <= bound[k] + step for k in inside)
    # and the lookahead is tight: some frame needed nearly all of it
    assert max(pushed_when[k] - (k + 1) / fps * SR for k in inside) > (lookahead - 1) / fps * SR


def test_phones_given_as_tuples_close_the_lips_on_bilabials(clip, clip_plan):
    tuples = [(p.phone, p.start, p.end) for p in clip_plan.phones]
    frames = track_frames(clip, FPS, tuples)
    bilabials = [p for p in clip_plan.phones if p.phone in ("M", "B", "P")]
    assert bilabials
    for p in bilabials:
        k = int((p.start + p.end) / 2 * FPS)
        assert frames[k].opening == 0.0 and frames[k].lip_press > 0.89, p
    assert frames == track_frames(clip, FPS, PhonePlan(tuple(clip_plan.phones), 1.0, "given"))


def test_bad_phones_and_fps_are_input_errors(clip):
    with pytest.raises(InputError, match="phones"):
        MouthTracker(FPS, [("AA", "soon", 1.0)])
    with pytest.raises(InputError, match="fps"):
        MouthTracker(0)
    with pytest.raises(InputError, match="mono"):
        MouthTracker(FPS).push(np.zeros((2, 10), np.float32))


def test_a_silent_stream_rests_and_a_pause_closes(clip):
    frames = track_frames(np.zeros(SR, np.float32), FPS)
    assert len(frames) == FPS and all(f.opening == 0 and not f.voiced and f.viseme == "X" for f in frames)
    wave, _ = syllables(seconds=3.0)
    frames = track_frames(wave, FPS)
    t = (np.array([f.index for f in frames]) + 0.5) / FPS % 1.0
    opening = np.array([f.opening for f in frames])
    assert opening[(t > 0.2) & (t < 0.3)].min() > 0.3
    assert opening[(t > 0.6) & (t < 0.9)].max() == 0.0


def test_mouth_track_is_the_tracker_on_the_whole_clip(clip, clip_plan):
    track = mouth_track(clip, FPS, text="Hello! I am an astronaut. Today, we will")
    frames = track_frames(clip, FPS, clip_plan)
    assert np.array_equal(track.opening, np.array([f.opening for f in frames], np.float32))
    assert track.source == "aligned" and track.visemes == [f.viseme for f in frames]


@pytest.mark.parametrize("text", ["你好，我是一名宇航员。今天我们谈谈太空、月亮和星星。谢谢收看。",
                                  "The recipe needs two cups of flour, a pinch of salt and warm water."])
def test_a_transcript_that_does_not_fit_falls_back_with_a_warning(wave_16k, text, caplog):
    with caplog.at_level(logging.WARNING, logger="genhuman.speech"):
        plan = plan_phones(wave_16k, text)
    assert plan.source == "recognized" and plan.trusted and len(plan.phones) > 30
    assert any("transcript does not fit" in r.getMessage() for r in caplog.records)
    track = mouth_track(wave_16k, FPS, text=text)
    assert track.source == "recognized" and track.opening.max() > 0.3


def test_phonetic_targets_by_block_equal_the_whole_clip_exactly():
    # An hour of phones is computed 30 s at a time (flat memory); every row must be the one
    # the whole-clip blend gives, across block edges and for long phones reaching into a block.
    from genhuman.speech import coarticulation
    from genhuman.speech.phonemes import Phone
    from genhuman.speech.streaming import RATE, TARGET_BLOCK_ROWS, _PhoneticTargets

    rng = np.random.default_rng(3)
    names = ["AA", "M", "IY", "S", "OW", "B", "AY", "F", "UW", "SIL"]
    phones, t = [], 0.2
    while t < 95.0:
        length = float(rng.choice([0.03, 0.08, 0.15, 2.5]))  # 2.5 s: reaches over a block edge
        phones.append(Phone(str(rng.choice(names)), t, t + length))
        t += length + float(rng.choice([0.0, 0.0, 0.3]))
    n_rows = int(np.ceil((phones[-1].end + coarticulation._REACH_S) * RATE)) + 2
    whole = coarticulation.blend_targets(phones, n_rows, RATE)
    targets = _PhoneticTargets(tuple(phones), n_rows)
    assert n_rows > 3 * TARGET_BLOCK_ROWS
    start = 0
    for size in rng.integers(1, 700, size=10_000):  # ragged requests, in order, as the tracker makes them
        rows = np.arange(start, min(start + int(size), n_rows))
        np.testing.assert_array_equal(targets[rows], whole[rows])
        start += int(size)
        if start >= n_rows:
            break
    assert start >= n_rows

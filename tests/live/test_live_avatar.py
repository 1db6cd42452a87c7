"""genhuman.live.avatar.LiveAvatar: the per-tick clock of a live session on the lite engine."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from genhuman.engines.lite import LiteEngine
from genhuman.engines.lite.engine import mouth_weights
from genhuman.engines.lite.motion import FrameMotion
from genhuman.errors import InputError
from genhuman.live.avatar import LiveAvatar, Tick, silent_mouth
from genhuman.live.voice import Utterance, speak
from genhuman.request import AnimateRequest

FRAME = 640  # samples per tick at 25 fps


@pytest.fixture(scope="module")
def avatar(portrait_path):
    return LiteEngine().prepare_avatar(portrait_path)


@pytest.fixture(scope="module")
def request_():
    return LiteEngine().validate(AnimateRequest())


@pytest.fixture(scope="module")
def hello() -> Utterance:
    return speak("Hello, how are you today?")


@pytest.fixture(scope="module")
def short() -> Utterance:
    return speak("Yes.")


def ticks(live: LiveAvatar, n: int) -> list[Tick]:
    return [live.next_tick() for _ in range(n)]


def rest_weights(weights):
    """The weights of a silent mouth with the motion of ``weights``."""
    mouth = silent_mouth()
    motion = FrameMotion(weights.blink, weights.roll, weights.shift_x, weights.shift_y)
    return mouth_weights(mouth.opening, mouth.width, mouth.roundness, mouth.lip_press, mouth.teeth, motion,
                         expression="keep")


def test_an_utterance_said_before_the_first_tick_is_the_lite_stream_frame_for_frame(avatar, request_, hello):
    live = LiveAvatar(avatar, request_)
    live.say(hello)
    assert live.speaking
    n = len(hello.samples) // FRAME
    got = ticks(live, n)
    expected = list(LiteEngine().stream(avatar, [hello.samples], request_, phones=hello.phones))
    assert len(expected) == n
    for tick, frame in zip(got, expected):
        assert tick.image.dtype == np.uint8 and tick.image.shape == (512, 512, 3)
        assert np.array_equal(tick.image, frame.image), tick.index
    assert np.array_equal(np.concatenate([t.audio for t in got]), hello.samples)
    assert [t.index for t in got] == list(range(n)) and all(t.speaking for t in got)
    assert got[0].started is hello and all(t.started is None for t in got[1:])
    assert got[-1].finished is hello and got[-1].interrupted is None and all(t.finished is None for t in got[:-1])
    assert not live.speaking
    after = live.next_tick()
    assert not after.speaking and after.finished is None and np.array_equal(after.audio, np.zeros(FRAME, np.float32))


def test_idle_ticks_keep_blinking_and_moving_with_the_mouth_at_rest(avatar, request_):
    live = LiveAvatar(avatar, request_)
    weights, images = [], []
    for _ in range(250):  # 10 s
        tick = live.next_tick()
        assert tick.audio.dtype == np.float32 and len(tick.audio) == FRAME and not tick.audio.any()
        assert not tick.speaking and tick.started is None and tick.finished is None
        weights.append(live.last_weights)
        if tick.index % 50 == 0:
            images.append(tick.image)
    assert all(w == rest_weights(w) for w in weights)  # the mouth of a silent frame, every tick
    assert max(w.blink for w in weights) > 0.9  # at least one full blink
    assert weights[0].blink == 0.0 and weights[-1].blink < 0.9  # not shut for good
    rolls = [w.roll for w in weights]
    shifts = [w.shift_x for w in weights]
    assert max(rolls) - min(rolls) > 0.2 and max(shifts) - min(shifts) > 0.002  # degrees, face heights
    assert max(np.abs(a.astype(int) - b).max() for a, b in zip(images, images[1:])) > 10


def test_motion_carries_on_across_utterances(avatar, request_, hello):
    """The session's one motion stream: blinks and head drift do not restart with a turn."""
    talking = LiveAvatar(avatar, request_)
    quiet = LiveAvatar(avatar, request_)
    for live in (talking, quiet):
        ticks(live, 40)
    talking.say(hello)
    spoken, silent = [], []
    for _ in range(40):  # frames 40-79 of seed 0: a blink at 2 s
        for live, seen in ((talking, spoken), (quiet, silent)):
            live.next_tick()
            seen.append(live.last_weights)
    assert [(w.blink, w.shift_x) for w in spoken] == [(w.blink, w.shift_x) for w in silent]
    assert max(w.blink for w in spoken) > 0.9
    assert any(a.open != b.open for a, b in zip(spoken, silent))  # only the mouth (and the nod) differ


def open_mouth(live: LiveAvatar, utterance: Utterance) -> int:
    """Ticks until the mouth is well open, some way into ``utterance``; that tick's index."""
    for _ in range(len(utterance.samples) // FRAME - 1):
        tick = live.next_tick()
        if tick.index > 5 and live.last_weights.open > 0.4:
            return tick.index
    pytest.fail("the mouth never opened")


def test_cut_silences_the_next_tick_and_closes_the_mouth_over_close_s(avatar, request_, hello):
    live = LiveAvatar(avatar, request_, close_s=0.12)
    assert live.close_frames == 3
    live.say(hello)
    live.say(hello)  # queued: dropped by the cut too
    open_mouth(live, hello)
    openings = [live.last_weights.open]
    live.cut()
    assert not live.speaking
    after = []
    for _ in range(6):
        after.append(live.next_tick())
        openings.append(live.last_weights.open)
    assert all(not t.audio.any() and not t.speaking and t.started is None for t in after)
    assert after[0].finished is after[0].interrupted is hello
    assert all(t.finished is None and t.interrupted is None for t in after[1:])
    # tick by tick the mouth closes a little more, shut on the third: not a jump
    assert all(a > b for a, b in zip(openings[:3], openings[1:4])), openings
    assert openings[1] > 0.5 * openings[0]
    assert openings[3:] == [rest_weights(live.last_weights).open] * 4


def test_two_utterances_back_to_back_play_without_a_gap(avatar, request_, hello, short):
    live = LiveAvatar(avatar, request_)
    live.say(short)
    live.say(hello)
    n = (len(short.samples) + len(hello.samples)) // FRAME
    got = ticks(live, n + 2)
    assert all(t.speaking for t in got[:n]) and not any(t.speaking for t in got[n:])
    assert np.array_equal(np.concatenate([t.audio for t in got[:n]]), np.concatenate([short.samples, hello.samples]))
    first = len(short.samples) // FRAME
    assert got[first - 1].finished is short and got[first].started is hello and got[n - 1].finished is hello


def test_an_utterance_that_ends_with_the_mouth_open_closes_it_gradually(avatar, request_, hello):
    probe = LiveAvatar(avatar, request_)
    probe.say(hello)
    stop = open_mouth(probe, hello) + 1  # frames of a truncated utterance
    end = stop * FRAME / 16000
    truncated = Utterance(hello.text, hello.samples[:stop * FRAME].copy(),
                          tuple(replace(p, end=min(p.end, end)) for p in hello.phones if p.start < end))
    live = LiveAvatar(avatar, request_)
    live.say(truncated)
    openings = []
    for _ in range(stop + 4):
        tick = live.next_tick()
        openings.append(live.last_weights.open)
        assert tick.speaking == (tick.index < stop)
    tail = openings[stop - 1:]
    assert tail[0] > 0.4 and all(a > b for a, b in zip(tail[:3], tail[1:4])), tail
    assert tail[3] == tail[4] == rest_weights(live.last_weights).open


def test_say_and_cut_from_another_thread_while_ticking(avatar, request_):
    # short utterances of constant samples (each recognisable by its value), 10-12 frames
    utterances = [Utterance(f"u{i}", np.full(FRAME * (10 + i % 3), 0.01 * (i + 1), np.float32), ()) for i in range(12)]
    live = LiveAvatar(avatar, request_)
    stop = threading.Event()
    errors: list[BaseException] = []

    def talk():
        try:
            for i, utt in enumerate(utterances):
                live.say(utt)
                if i % 4 == 3:  # cut a few ticks into what plays
                    first = live.ticks
                    while live.ticks < first + 3 and not stop.wait(0.001):
                        pass
                    live.cut()
                stop.wait(0.002)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=talk)
    thread.start()
    got = []
    while not stop.is_set() or live.speaking:
        got.append(live.next_tick())
        assert len(got) < 400
    thread.join()
    assert not errors
    playing, offset = None, 0
    for tick in got:  # every speaking tick is the next frame of the utterance that started last
        if tick.interrupted is not None:  # silent, unless the next one was said between the cut and this tick
            assert tick.interrupted is playing and (tick.started is not None or not tick.audio.any())
        if tick.started is not None:
            playing, offset = tick.started, 0
        if tick.speaking:
            assert np.array_equal(tick.audio, playing.samples[offset:offset + FRAME])
            offset += FRAME
            assert (tick.finished is playing) == (offset == len(playing.samples))
        else:
            assert not tick.audio.any()
        if tick.finished is not playing:
            assert tick.finished is tick.interrupted
    assert sum(t.started is not None for t in got) >= 3 and sum(t.interrupted is not None for t in got) >= 2


def test_bad_arguments(avatar, request_):
    with pytest.raises(InputError, match="LiveAvatar needs an Avatar"):
        LiveAvatar("portrait.png", request_)
    with pytest.raises(InputError, match="close_s must be between 0 and 2 seconds"):
        LiveAvatar(avatar, request_, close_s=-1)
    with pytest.raises(InputError, match="divides 16000 samples evenly"):
        LiveAvatar(avatar, request_.replace(fps=30))
    live = LiveAvatar(avatar, request_)
    with pytest.raises(InputError, match="say needs an Utterance"):
        live.say(np.zeros(640, np.float32))
    with pytest.raises(InputError, match="the utterance has no samples"):
        live.say(Utterance("", np.zeros(0, np.float32), ()))
    live.cut()  # nothing playing: nothing happens
    tick = live.next_tick()
    assert tick.interrupted is None and tick.finished is None and not tick.speaking

"""The lite controls: head motion, blink rate and mouth scale, from the request to the frames."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pytest

from genhuman.cli import main
from genhuman.engines import load_engine
from genhuman.engines.base import AnimateRequest
from genhuman.engines.lite import engine as lite
from genhuman.engines.lite import motion
from genhuman.errors import InputError
from genhuman.media import load_audio
from genhuman.request import warn_unused

FPS = 25


def stream_motion(frames: int, seed: int = 5, **controls) -> list[motion.FrameMotion]:
    t = np.arange(frames) / FPS
    loudness = (np.sin(2 * np.pi * 0.5 * t) > 0.6).astype(float)  # a loud syllable every 2 s: nods too
    stream = motion.MotionStream(FPS, seed, **controls)
    return [stream.next(x) for x in loudness]


def head(frames: list[motion.FrameMotion]) -> np.ndarray:
    return np.array([(f.roll, f.shift_x, f.shift_y) for f in frames])


def blink_starts(frames: list[motion.FrameMotion]) -> int:
    closed = np.array([f.blink > 0 for f in frames])
    return int(np.count_nonzero(closed[1:] & ~closed[:-1]) + closed[0])


def test_head_motion_zero_is_still_and_two_is_twice_the_default():
    frames = 20 * FPS
    default, still, double = (stream_motion(frames, head_scale=s) for s in (1.0, 0.0, 2.0))
    assert np.abs(head(default)).max() > 0.1  # the default does move (degrees of roll)
    assert np.all(head(still) == 0.0)
    assert np.array_equal(head(double), 2.0 * head(default))  # doubling is exact in float32
    # blinks are not head motion: the same in all three
    assert [f.blink for f in still] == [f.blink for f in default] == [f.blink for f in double]


def test_blink_rate_zero_gives_no_blinks_and_keeps_the_head_motion():
    frames = 60 * FPS
    default, none = stream_motion(frames), stream_motion(frames, blink_rate=0.0)
    assert blink_starts(default) >= 8  # the natural rate blinks about 14 times a minute
    assert max(f.blink for f in none) == 0.0
    assert np.array_equal(head(none), head(default))


def count_tolerance(rate: Optional[float], blinks: float) -> float:
    """Four standard deviations of a blink count (a renewal process: sd = sqrt(n) * cv of the
    gaps between blink starts), plus one for where the first blink falls."""
    scale = 1.0 if rate is None else motion.interval_scale(rate)
    spread = (motion.BLINK_INTERVAL[1] - motion.BLINK_INTERVAL[0]) * scale
    duration_spread = motion.BLINK_DURATION[1] - motion.BLINK_DURATION[0]
    gap_sd = math.sqrt((spread ** 2 + duration_spread ** 2) / 12)  # two uniform draws
    mean_gap = 60.0 / (motion.NATURAL_BLINK_RATE if rate is None else rate)
    return 4 * math.sqrt(blinks) * gap_sd / mean_gap + 1


@pytest.mark.parametrize("rate", [30.0, 5.0, 60.0])
def test_blink_rate_sets_the_blinks_per_minute(rate):
    # 300 blinks expected at every rate; at 30 a minute the gaps are 0.9-2.7 s (sd 0.52 s of a
    # 2 s mean), so the count's sd is 4.5 and the tolerance 19 (6%).
    minutes = 300 / rate
    count = blink_starts(stream_motion(int(minutes * 60 * FPS), blink_rate=rate))
    assert abs(count - 300) <= count_tolerance(rate, 300)


def test_the_natural_rate_is_the_default_rate():
    minutes = 10
    count = blink_starts(stream_motion(minutes * 60 * FPS))
    expected = motion.NATURAL_BLINK_RATE * minutes
    assert abs(count - expected) <= count_tolerance(None, expected)
    assert motion.interval_scale(motion.NATURAL_BLINK_RATE) == pytest.approx(1.0)
    assert motion.interval_scale(0.0) == math.inf


def test_mouth_scale_multiplies_the_opening_up_to_fully_open():
    still = motion.FrameMotion(0.0, 0.0, 0.0, 0.0)
    for opening in (0.05, 0.2, 0.4):
        base = lite.mouth_weights(opening, 0.0, 0.0, 0.0, 0.0, still)
        for scale in (0.5, 1.5):
            scaled = lite.mouth_weights(opening, 0.0, 0.0, 0.0, 0.0, still, scale)
            assert scaled.open == pytest.approx(scale * base.open, rel=1e-12)
    assert lite.mouth_weights(1.0, 0.0, 0.0, 0.0, 0.0, still, 1.5).open == 1.0
    assert lite.mouth_weights(0.0, 0.0, 0.0, 0.0, 0.0, still, 1.5).open == 0.0  # closed stays closed


@pytest.fixture(scope="module")
def avatar(portrait_path):
    return load_engine("lite").prepare_avatar(portrait_path, max_size=160)


def rendered_weights(monkeypatch, avatar, speech_path, **controls) -> list:
    """The renderer's weights for 2 s of speech, frame by frame (render itself skipped)."""
    engine = load_engine("lite")
    renderer = engine._renderer(avatar)
    seen: list = []

    def record(weights):
        seen.append(weights)
        return np.zeros((4, 4, 3), np.uint8)

    monkeypatch.setattr(renderer, "render", record)
    wave = load_audio(speech_path)[: 2 * 16000]
    list(engine.stream(avatar, [wave], AnimateRequest(**controls)))
    return seen


def test_the_engine_applies_the_controls(monkeypatch, avatar, speech_path):
    default = rendered_weights(monkeypatch, avatar, speech_path)
    still = rendered_weights(monkeypatch, avatar, speech_path, head_motion=0.0, blink_rate=0.0)
    wide = rendered_weights(monkeypatch, avatar, speech_path, mouth_scale=1.5)
    assert len(default) == len(still) == len(wide) == 2 * FPS
    assert any(w.roll != 0.0 for w in default)
    assert all((w.roll, w.shift_x, w.shift_y, w.blink) == (0.0, 0.0, 0.0, 0.0) for w in still)
    assert [w.open for w in still] == [w.open for w in default]  # the mouth is untouched
    opened = [(d.open, w.open) for d, w in zip(default, wide) if 0.0 < d.open < 1 / 1.5 and d.lift == 0.0]
    assert len(opened) > 5  # speech opens the mouth in many frames
    assert all(w == pytest.approx(1.5 * d, rel=1e-12) for d, w in opened)


def test_a_still_head_leaves_the_picture_above_the_eyes_as_the_photo(avatar, portrait_path, speech_path):
    from genhuman.media import load_image, resize_max

    photo = resize_max(load_image(portrait_path), 160)
    eyes_y = float(avatar.arrays["landmarks"][[33, 133, 263, 362], 1].min())
    above = slice(0, int(eyes_y - 0.1 * photo.shape[0]))  # forehead, hair, background
    wave = load_audio(speech_path)[: 2 * 16000]
    engine = load_engine("lite")

    def frames(**controls) -> list[np.ndarray]:
        return [f.image for f in engine.stream(avatar, [wave], AnimateRequest(**controls))]

    assert above.stop > 10
    assert all(np.array_equal(f[above], photo[above]) for f in frames(head_motion=0.0, blink_rate=0.0))
    moved = [np.abs(f[above].astype(int) - photo[above]).max() for f in frames()]
    assert max(moved) > 20  # with the default head motion the same rows move


def test_the_controls_are_lite_options():
    request = AnimateRequest(head_motion=0.5, blink_rate=20.0, mouth_scale=1.2, expression="neutral")
    assert warn_unused(request, "lite") == []
    assert warn_unused(request, "echomimic") == ["head_motion", "blink_rate", "mouth_scale", "expression"]
    assert AnimateRequest().expression == "keep"
    assert AnimateRequest().explicit() == {}  # the defaults are not "set"
    with pytest.raises(InputError, match=r"^head motion must be between 0.0 and 2.0, got -0.5$"):
        AnimateRequest(head_motion=-0.5)


@pytest.mark.parametrize("flag, value, message", [
    ("--head-motion", "3", "--head-motion: head motion must be between 0.0 and 2.0, got 3.0"),
    ("--blink-rate", "61", "--blink-rate: blink rate must be between 0.0 and 60.0, got 61.0"),
    ("--blink-rate", "-1", "--blink-rate: blink rate must be between 0.0 and 60.0, got -1.0"),
    ("--mouth-scale", "0.4", "--mouth-scale: mouth scale must be between 0.5 and 1.5, got 0.4"),
    ("--mouth-scale", "wide", "--mouth-scale: mouth scale must be a number, got 'wide'"),
    ("--expression", "smirk", "argument --expression: invalid choice: 'smirk' (choose from 'keep', 'neutral')"),
])
def test_cli_refuses_out_of_range_controls(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["animate", "a.png", "b.wav", "-o", "x.mp4", flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_passes_the_controls_and_keeps_the_defaults():
    import argparse

    from genhuman.cli import animate

    parser = argparse.ArgumentParser()
    animate.register(parser.add_subparsers())
    args = parser.parse_args(["animate", "a.png", "b.wav", "-o", "x.mp4", "--head-motion", "0", "--blink-rate", "30"])
    request, _ = animate.request_from_args(args)
    assert (request.head_motion, request.blink_rate, request.mouth_scale) == (0.0, 30.0, 1.0)
    request, _ = animate.request_from_args(parser.parse_args(["animate", "a.png", "b.wav", "-o", "x.mp4"]))
    assert request == AnimateRequest()
    args = parser.parse_args(["animate", "a.png", "b.wav", "-o", "x.mp4", "--expression", "neutral"])
    assert animate.request_from_args(args)[0].expression == "neutral"


def test_the_expression_reaches_the_avatar(portrait_path):
    from genhuman.engines.avatar import Avatar
    from genhuman.engines.lite.engine import LiteEngine
    from genhuman.engines.lite.render import FrameWeights

    engine = LiteEngine()
    neutral = engine.prepare_avatar(portrait_path, max_size=160, expression="neutral")
    assert neutral.meta["expression"] == "neutral"
    assert LiteEngine._renderer(neutral).expression == "neutral"
    with pytest.raises(InputError, match=r"^expression must be one of: keep, neutral, got 'smirk'$"):
        engine.prepare_avatar(portrait_path, max_size=160, expression="smirk")
    keep = engine.prepare_avatar(portrait_path, max_size=160)
    rest = lambda avatar: LiteEngine._renderer(Avatar(engine="lite", weights_id="", arrays=avatar.arrays,  # noqa: E731
                                                             meta=avatar.meta)).render(FrameWeights())
    assert np.array_equal(rest(keep), keep.arrays["renderer.base"])  # the photo, rebuilt from the arrays
    assert not np.array_equal(rest(neutral), neutral.arrays["renderer.base"])  # lips closed at rest

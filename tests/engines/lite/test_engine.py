"""The whole engine through the CLI and the API: output file, frame rule, seeds, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genhuman.cli import main
from genhuman.engines import load_engine
from genhuman.engines.base import AnimateRequest
from genhuman.errors import Cancelled, InputError
from genhuman.media import load_audio, load_image, read_video_info, save_image, save_wav

SECONDS = 1.5


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, speech_path):
    wave = load_audio(speech_path)[: int(SECONDS * 16000)]
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    save_wav(path, wave)
    return path


class FrameRecorder:
    """Stands in for VideoWriter: keeps the raw frames instead of encoding them."""

    runs: list[list[np.ndarray]] = []

    def __init__(self, path, fps, width=None, height=None, audio=None, sample_rate=16000):
        self.frames: list[np.ndarray] = []
        FrameRecorder.runs.append(self.frames)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, frame):
        self.frames.append(frame.copy())


@pytest.fixture
def recorded(monkeypatch):
    import genhuman.media

    FrameRecorder.runs = []
    monkeypatch.setattr(genhuman.media, "VideoWriter", FrameRecorder)
    return FrameRecorder.runs


def test_frames_follow_the_seed_and_the_frame_rule(recorded, portrait_path, speech_path, tmp_path):
    engine = load_engine("lite")
    image = load_image(portrait_path)  # the API takes arrays as well as paths
    wave = load_audio(speech_path)[: int(2.3 * 16000) + 7]  # 2.3 s and a bit
    for seed in (1, 1, 2):
        result = engine.animate(image, wave, tmp_path / "x.mp4", AnimateRequest(seed=seed, max_size=160, fps=20))
    expected = math.ceil(len(wave) / 16000 * 20)
    assert result.frames == expected == len(recorded[0]) == len(recorded[2])
    assert (result.width, result.height, result.fps) == (160, 160, 20.0)
    assert all(np.array_equal(a, b) for a, b in zip(recorded[0], recorded[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(recorded[0], recorded[2]))
    assert {"load", "face", "speech", "track", "render", "encode", "total"} <= set(result.timings)


def test_cli_writes_an_mp4_with_audio(short_speech, portrait_path, tmp_path, capsys):
    out = tmp_path / "talk.mp4"
    code = main(["animate", str(portrait_path), str(short_speech), "-o", str(out), "--max-size", "128",
                 "--text", "Hello! I am", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    info = read_video_info(out)
    assert (info.width, info.height) == (128, 128)
    assert info.frames == math.ceil(SECONDS * 25)
    assert info.has_audio and abs(info.audio_duration - info.duration) <= 1 / 25 + 0.03
    assert "wrote" in capsys.readouterr().out


def test_api_reports_progress_and_can_be_cancelled(short_speech, portrait_path, tmp_path):
    engine = load_engine("lite")
    seen: list[float] = []
    out = tmp_path / "p.mp4"
    engine.animate(portrait_path, short_speech, out, AnimateRequest(max_size=96),
                   progress=lambda fraction, message: seen.append(fraction))
    assert seen == sorted(seen) and seen[-1] == 1.0 and out.is_file()
    calls = []
    cancelled = tmp_path / "c.mp4"
    with pytest.raises(Cancelled):
        engine.animate(portrait_path, short_speech, cancelled, AnimateRequest(max_size=96),
                       should_cancel=lambda: calls.append(1) or len(calls) > 5)
    assert list(tmp_path.glob("c*")) == [] and list(tmp_path.glob(".c*")) == []


def test_api_refuses_an_output_that_is_an_input(tmp_path, portrait_path, short_speech):
    import shutil

    audio = tmp_path / "speech.mp4"  # an earlier output used as the speech input
    shutil.copy(short_speech, audio)  # a WAV under an .mp4 name: PyAV reads it by content
    before = audio.read_bytes()
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match="is the input audio"):
        load_engine("lite").animate(portrait_path, audio, tmp_path / "sub" / ".." / "speech.mp4", AnimateRequest())
    assert audio.read_bytes() == before


def test_api_rejects_a_non_mp4_output(portrait_path, short_speech, tmp_path):
    with pytest.raises(InputError, match="mp4"):
        load_engine("lite").animate(portrait_path, short_speech, tmp_path / "x.avi", AnimateRequest())


def _bad_inputs(tmp_path, portrait_path, short_speech):
    blank = tmp_path / "blank.png"
    save_image(blank, np.full((256, 256, 3), 200, np.uint8))
    tiny = tmp_path / "tiny.png"
    save_image(tiny, np.full((3, 3, 3), 200, np.uint8))
    silent = tmp_path / "silent.wav"
    save_wav(silent, np.zeros(16000, np.float32))
    empty = tmp_path / "empty.wav"
    save_wav(empty, np.zeros(0, np.float32))
    image, audio = str(portrait_path), str(short_speech)
    return {
        "missing image": ([str(tmp_path / "nope.png"), audio], "not found"),
        "no face": ([str(blank), audio], "no face"),
        "3x3 image": ([str(tiny), audio], "small"),
        "silent audio": ([image, str(silent)], "silent"),
        "empty audio": ([image, str(empty)], "empty"),
        "bad fps": ([image, audio, "--fps", "0"], "fps"),
        "bad output": ([image, audio], "mp4"),
    }


@pytest.mark.parametrize("case", ["missing image", "no face", "3x3 image", "silent audio", "empty audio",
                                  "bad fps", "bad output"])
def test_cli_bad_input_is_one_line_exit_2_and_no_file(case, tmp_path, portrait_path, short_speech, capsys):
    args, expected = _bad_inputs(tmp_path, portrait_path, short_speech)[case]
    out = tmp_path / ("out.avi" if case == "bad output" else "out.mp4")
    try:
        code = main(["animate", *args, "-o", str(out), "--no-progress", "--max-size", "128"])
    except SystemExit as exc:  # argparse rejects option values itself
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert expected in err.lower()
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_request_defaults_and_unused_options(caplog):
    engine = load_engine("lite")
    filled = engine.validate(AnimateRequest())
    assert (filled.fps, filled.seed) == (25, 0)
    assert engine.validate(AnimateRequest(fps=30, seed=7)).fps == 30
    with caplog.at_level("WARNING"):
        engine.validate(AnimateRequest(text="hi", steps=10, cfg=2.0, width=64))
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 1 and all(f in lines[0] for f in ("--steps", "--cfg", "--width"))
    assert "--text" not in lines[0]
    caplog.clear()
    with caplog.at_level("WARNING"):
        engine.validate(AnimateRequest(text="hi", fps=20, seed=3, max_size=128))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    with pytest.raises(InputError, match="fps"):
        AnimateRequest(fps=61)


def test_frame_weights_map_the_mouth_track():
    from types import SimpleNamespace

    from genhuman.engines.lite import engine as lite
    from genhuman.engines.lite.motion import HeadMotion

    track = SimpleNamespace(opening=np.array([0.0, 0.5, 1.0]), width=np.array([0.0, 2.0, -0.5]),
                            roundness=np.array([0.0, 0.0, 1.0]), lip_press=np.array([0.0, 1.0, 0.2]),
                            teeth=np.array([0.0, 0.4, 0.7]))
    head = HeadMotion(roll=np.array([0.0, 1.0, -1.0]), shift_x=np.zeros(3), shift_y=np.array([0.0, 0.0, 0.01]))
    blinks = np.array([0.0, 0.5, 1.0])
    rest, mid, wide = (lite.frame_weights(track, blinks, head, k) for k in range(3))
    # "keep" (the default): the photo's own mouth at rest, nothing pressed or sealed.
    assert rest.open == 0.0 and rest.press == 0.0 and rest.seal == 0.0 and rest.lift == 0.0
    assert mid.open == pytest.approx(0.5 ** lite.OPENING_GAMMA) and mid.widen == 1.0 and mid.press == 1.0
    assert mid.seal == pytest.approx(lite.KEEP_SEAL * (1.0 - mid.open))  # pressed lips close parted ones
    rest_press = lite.REST_LIP_PRESS
    assert wide.open == 1.0 and wide.press == pytest.approx((0.2 - rest_press) / (1 - rest_press))
    assert wide.round == pytest.approx(lite.ROUND_SHARE) and wide.pout == 1.0
    neutral = lite.frame_weights(track, blinks, head, 0, expression="neutral")
    assert neutral.press == pytest.approx(lite.CLOSED_PRESS)  # sealed lips pressed a little
    assert neutral.seal == 0.0  # the renderer seals "neutral" lips itself
    assert (mid.blink, mid.roll, wide.shift_y) == (0.5, 1.0, pytest.approx(0.01))


def test_labiodental_is_viseme_g_only():
    from genhuman.engines.lite.engine import labiodental
    from genhuman.speech.visemes import VISEME_SHAPES

    values = {v: labiodental(shape.teeth, shape.lip_press) for v, shape in VISEME_SHAPES.items()}
    assert values.pop("G") == 1.0 and all(value == 0.0 for value in values.values())
    a, b = VISEME_SHAPES["A"], VISEME_SHAPES["B"]  # m -> ee passes through teeth and press: not an f
    assert labiodental((a.teeth + b.teeth) / 2, (a.lip_press + b.lip_press) / 2) == 0.0

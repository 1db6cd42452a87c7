"""The engine protocol for lite: avatars (save/load, refusal), stream == animate however the
audio is chunked, frames before the audio is over, transcripts that do not fit."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from genhuman.engines import load_engine
from genhuman.engines.avatar import Avatar
from genhuman.engines.base import AnimateRequest
from genhuman.engines.output import audio_chunks
from genhuman.errors import InputError
from genhuman.media import load_audio
from genhuman.speech import frame_count
from genhuman.speech.streaming import lookahead_frames
from genhuman.speech.track import plan_phones

SR = 16000
SECONDS = 3.0
TEXT = "Hello! I am an astronaut. Today, we will"  # what the first 3 s of speech.wav say
SIZE = 160


@pytest.fixture(scope="module")
def engine():
    return load_engine("lite")


@pytest.fixture(scope="module")
def avatar(engine, portrait_path):
    return engine.prepare_avatar(portrait_path, max_size=SIZE)


@pytest.fixture(scope="module")
def clip(speech_path):
    return load_audio(speech_path)[: int(SECONDS * SR) + 77]


class Recorder:
    """Stands in for VideoWriter: keeps the frames animate writes."""

    frames: list[np.ndarray] = []

    def __init__(self, path, fps, width=None, height=None, audio=None, sample_rate=SR):
        Recorder.frames = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, frame):
        Recorder.frames.append(frame.copy())


def _animate_frames(monkeypatch, engine, image, wave, request, tmp_path):
    import genhuman.media

    monkeypatch.setattr(genhuman.media, "VideoWriter", Recorder)
    result = engine.animate(image, wave, tmp_path / "x.mp4", request)
    assert result.frames == len(Recorder.frames) == frame_count(len(wave), result.fps)
    return Recorder.frames


def _same(frames, images) -> bool:
    return len(frames) == len(images) and all(
        f.index == k and np.array_equal(f.image, im) for k, (f, im) in enumerate(zip(frames, images)))


@pytest.mark.parametrize("text", [TEXT, None], ids=["aligned", "recognized"])
def test_stream_in_40ms_chunks_equals_animate(engine, avatar, clip, text, monkeypatch, tmp_path):
    request = AnimateRequest(text=text, seed=3)
    written = _animate_frames(monkeypatch, engine, avatar, clip, request, tmp_path)
    plan = plan_phones(clip, text)
    assert plan.trusted and plan.source == ("aligned" if text else "recognized")
    streamed = list(engine.stream(avatar, audio_chunks(clip, 0.04), request, phones=plan))
    assert _same(streamed, written)
    assert all(f.fps == 25.0 and f.image.shape == (SIZE, SIZE, 3) for f in streamed)


def test_stream_without_phones_does_not_depend_on_chunking(engine, avatar, clip):
    request = AnimateRequest()
    whole = [f.image for f in engine.stream(avatar, [clip], request)]
    assert _same(list(engine.stream(avatar, audio_chunks(clip, 0.04), request)), whole)
    ragged = [clip[a:a + n] for a, n in zip(range(0, len(clip), 3001), [3001] * len(clip))]
    assert _same(list(engine.stream(avatar, iter(ragged), request)), whole)


def test_frames_come_while_the_audio_arrives(engine, avatar, clip):
    fps = 25
    lookahead = lookahead_frames(fps)
    step = 640  # 40 ms
    pushed = 0
    started = None

    def chunks():
        nonlocal pushed, started
        for a in range(0, len(clip), step):
            if started is None:
                started = time.perf_counter()
            pushed = min(a + step, len(clip))
            yield clip[a:a + step]

    seen = {}
    first_frame_s = None
    for frame in engine.stream(avatar, chunks(), AnimateRequest(fps=fps), phones=plan_phones(clip, TEXT)):
        if first_frame_s is None:
            first_frame_s = time.perf_counter() - started
        seen[frame.index] = pushed
    assert sorted(seen) == list(range(frame_count(len(clip), fps)))
    for k, samples in seen.items():  # frame k before any audio beyond (k + 1 + lookahead) / fps
        bound = round((k + 1 + lookahead) / fps * SR)
        assert samples <= bound or bound >= len(clip) - step, (k, samples, bound)
    assert seen[0] == (1 + lookahead) * step  # the first frame: 200 ms of audio
    assert first_frame_s < 5.0  # compute latency (loaded 2-core machine); see docs/lite.md


def test_avatar_round_trips_bit_for_bit(engine, avatar, clip, tmp_path):
    request = AnimateRequest(seed=1)
    before = [f.image for f in engine.stream(avatar, [clip[:SR]], request)]
    loaded = Avatar.load(avatar.save(tmp_path / "avatar"))
    assert loaded.engine == "lite" and loaded.weights_id == "" and not loaded.cache
    assert loaded.meta == avatar.meta and set(loaded.arrays) == set(avatar.arrays)
    assert _same(list(engine.stream(loaded, [clip[:SR]], request)), before)


def test_an_avatar_of_another_engine_is_refused(engine, avatar, clip, tmp_path):
    other = Avatar(engine="echomimic", weights_id="abc", arrays=dict(avatar.arrays), meta=dict(avatar.meta))
    with pytest.raises(InputError, match="echomimic engine, not lite"):
        engine.stream(other, [clip], AnimateRequest())
    with pytest.raises(InputError, match="echomimic engine, not lite"):
        engine.animate(Avatar.load(other.save(tmp_path / "other")), clip, tmp_path / "x.mp4", AnimateRequest())
    assert not list(tmp_path.glob("*.mp4"))
    broken = Avatar(engine="lite", weights_id="", arrays={"landmarks": avatar.arrays["landmarks"]})
    with pytest.raises(InputError, match="prepare it again"):
        engine.stream(broken, [clip], AnimateRequest())


@pytest.mark.parametrize("text", ["你好，我是一名宇航员。今天我们谈谈太空。",
                                  "The recipe needs two cups of flour, a pinch of salt and warm water."],
                         ids=["chinese", "unrelated-english"])
def test_a_transcript_that_does_not_fit_still_animates(engine, avatar, clip, text, monkeypatch, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        frames = _animate_frames(monkeypatch, engine, avatar, clip, AnimateRequest(text=text), tmp_path)
    assert any("transcript does not fit" in r.getMessage() for r in caplog.records)
    recognized = _animate_frames(monkeypatch, engine, avatar, clip, AnimateRequest(), tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(frames, recognized))  # as without a transcript


def test_a_damaged_saved_avatar_is_one_input_error(avatar, tmp_path):
    import json

    folder = avatar.save(tmp_path / "avatar")
    meta = json.loads((folder / "avatar.json").read_text())
    del meta["engine"]
    (folder / "avatar.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="is corrupt .its avatar.json lacks fields"):
        Avatar.load(folder)
    (folder / "avatar.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match="is corrupt"):
        Avatar.load(folder)

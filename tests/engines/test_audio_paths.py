"""Every engine's animate reads audio from a file through one AudioClip: the MP4 is the one the
same samples in memory give, and the clip (its temporary file) is gone afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from genhuman.engines import load_engine
from genhuman.media import AudioClip, VideoWriter, load_audio, save_wav
from genhuman.request import AnimateRequest


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, speech_path):
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    save_wav(path, load_audio(speech_path)[: 2 * 16000])
    return path


def test_video_writer_muxes_a_clip_byte_for_byte_like_the_array(tmp_path):
    rng = np.random.default_rng(0)
    wave = (0.3 * rng.standard_normal(int(2.3 * 16000))).astype(np.float32)
    frames = [np.full((32, 48, 3), i * 9, np.uint8) for i in range(62)]  # 2.48 s: audio padded
    for name, audio in (("array.mp4", wave), ("clip.mp4", AudioClip.from_array(wave))):
        with VideoWriter(tmp_path / name, 25, audio=audio) as writer:
            for frame in frames:
                writer.write(frame)
    assert (tmp_path / "array.mp4").read_bytes() == (tmp_path / "clip.mp4").read_bytes()


def test_lite_animate_from_a_file_uses_one_clip_and_equals_the_array(short_speech, portrait_path, tmp_path,
                                                                      monkeypatch):
    import genhuman.engines.output as output

    seen: list[AudioClip] = []
    real_write = output.write_video

    def write_video(frames, out, fps, wave, *args, **kwargs):
        seen.append(wave)
        return real_write(frames, out, fps, wave, *args, **kwargs)

    monkeypatch.setattr(output, "write_video", write_video)
    engine = load_engine("lite")
    request = AnimateRequest(max_size=96)
    from_file = engine.animate(portrait_path, short_speech, tmp_path / "file.mp4", request)
    from_array = engine.animate(portrait_path, load_audio(short_speech), tmp_path / "array.mp4", request)
    assert isinstance(seen[0], AudioClip) and isinstance(seen[1], np.ndarray)
    assert seen[0]._file.closed  # the temporary file is released when animate returns
    assert from_file.frames == from_array.frames == 50
    assert (tmp_path / "file.mp4").read_bytes() == (tmp_path / "array.mp4").read_bytes()


def test_clip_is_closed_when_animate_fails(short_speech, tmp_path, monkeypatch):
    from genhuman.errors import InputError

    opened: list[AudioClip] = []
    real_init = AudioClip.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(AudioClip, "__init__", init)
    noise = tmp_path / "noise.png"
    noise.write_bytes(b"not a picture")
    with pytest.raises(InputError, match="not an image"):
        load_engine("lite").animate(noise, short_speech, tmp_path / "x.mp4", AnimateRequest())
    assert len(opened) == 1 and opened[0]._file.closed
    assert not (tmp_path / "x.mp4").exists()

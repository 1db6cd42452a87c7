"""Tiny videos of the example portrait (no TTS, no rendering: fast) and tiny random audio models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EXAMPLES

SIZE = 64  # prepared frame side
SOURCE = 96  # source video side: prepare's crop downsizes
FRAMES = 30  # 1.2 s at 25 fps


def face_square() -> np.ndarray:
    from genhuman.data.synthetic import face_square as cut
    from genhuman.media import load_image

    import cv2

    return cv2.resize(cut(load_image(EXAMPLES / "astronaut.png")), (SOURCE, SOURCE), interpolation=cv2.INTER_AREA)


def write_video(path: Path, frames: int, fps: float, audio_seconds: float, shift: int = 0) -> Path:
    """A portrait video that drifts a pixel every few frames, with ``audio_seconds`` of the example
    speech as its audio track (muxed here with PyAV: our VideoWriter pads the audio to the video)."""
    from fractions import Fraction

    import av

    from genhuman.media import load_audio

    base = face_square()
    speech = load_audio(EXAMPLES / "speech.wav")[: int(audio_seconds * 16000)]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width = video.height = SOURCE
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "12"}
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, (i // 4 + shift) % 3, axis=1), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=48000)
        chunk = av.AudioFrame.from_ndarray(speech[None].astype(np.float32), format="flt", layout="mono")
        chunk.sample_rate, chunk.pts, chunk.time_base = 16000, 0, Fraction(1, 16000)
        for resampled in [*resampler.resample(chunk), *resampler.resample(None)]:
            for packet in audio.encode(resampled):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def echo_weights(tmp_path_factory) -> Path:
    """An EchoMimic folder holding only what preparation reads: the tiny random whisper, official format."""
    import torch

    from genhuman.checkpoints.tiny import WHISPER_DIMS, tiny_whisper_state

    folder = tmp_path_factory.mktemp("echo") / "weights"
    (folder / "audio_processor").mkdir(parents=True)
    torch.save({"dims": WHISPER_DIMS, "model_state_dict": tiny_whisper_state()},
               folder / "audio_processor" / "whisper_tiny.pt")
    return folder


@pytest.fixture(scope="session")
def echo_model(echo_weights):
    from genhuman.data.features import load_audio_model

    return load_audio_model("echomimic", echo_weights)


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> Path:
    """a: 25 fps, audio as long as the video; nested/b: 30 fps (resampled to 25), audio 2 frames
    short (kept, trimmed); short: audio 10 frames short (dropped)."""
    folder = tmp_path_factory.mktemp("videos")
    write_video(folder / "a.mp4", FRAMES, 25, FRAMES / 25)
    (folder / "nested").mkdir()
    write_video(folder / "nested" / "b.mp4", FRAMES * 6 // 5, 30, (FRAMES - 2) / 25, shift=1)
    write_video(folder / "short.mp4", FRAMES, 25, (FRAMES - 10) / 25)
    (folder / "notes.txt").write_text("not a video")
    return folder

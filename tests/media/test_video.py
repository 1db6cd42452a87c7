import tracemalloc

import numpy as np
import pytest

from genhuman.errors import Cancelled, InputError
from genhuman.media import SAMPLE_RATE, VideoWriter, iter_video_frames, load_audio, read_video_info

from .helpers import peak_frequency, sine


def gradient_frame(i: int, height: int, width: int) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    frame[:, :, 1] = (i * 10) % 256
    return frame


@pytest.mark.parametrize("fps,audio_seconds", [(25, 2.0), (30, 1.5), (25, 0.4)])
def test_round_trip_durations_match(tmp_path, fps, audio_seconds):
    frames = 40
    path = tmp_path / "out" / "v.mp4"  # parent folder is created
    with VideoWriter(path, fps, audio=sine(440, audio_seconds, SAMPLE_RATE)) as writer:
        for i in range(frames):
            writer.write(gradient_frame(i, 64, 96))
    info = read_video_info(path)
    assert (info.width, info.height, info.frames) == (96, 64, frames)
    assert info.fps == pytest.approx(fps)
    assert info.has_audio
    assert abs(info.audio_duration - info.duration) <= 1 / fps
    assert info.duration == pytest.approx(frames / fps, abs=1e-3)
    audio = load_audio(path)
    assert abs(len(audio) / SAMPLE_RATE - frames / fps) <= 1 / fps
    assert abs(peak_frequency(audio[: int(0.3 * SAMPLE_RATE)], SAMPLE_RATE) - 440) < 5
    decoded = list(iter_video_frames(path))
    assert len(decoded) == frames
    assert decoded[7].shape == (64, 96, 3) and decoded[7].dtype == np.uint8
    assert np.abs(decoded[7].astype(int) - gradient_frame(7, 64, 96)).mean() < 3
    assert list(tmp_path.joinpath("out").iterdir()) == [path]


def test_odd_size_padded_to_even_and_video_only(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 25) as writer:
        for i in range(5):
            writer.write(gradient_frame(i, 63, 81))
    info = read_video_info(path)
    assert (info.width, info.height, info.frames) == (82, 64, 5)
    assert not info.has_audio and info.audio_duration == 0.0


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, Cancelled])
def test_exception_leaves_no_file(tmp_path, error):
    path = tmp_path / "v.mp4"
    with pytest.raises(error):
        with VideoWriter(path, 25, audio=sine(440, 1.0, SAMPLE_RATE)) as writer:
            for i in range(10):
                writer.write(gradient_frame(i, 32, 32))
            raise error("stop")
    assert list(tmp_path.iterdir()) == []


def test_existing_target_untouched_on_failure(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError, match="differs"):
        with VideoWriter(path, 25) as writer:
            writer.write(gradient_frame(0, 32, 32))
            writer.write(gradient_frame(1, 32, 34))
    assert path.read_bytes() == b"previous" and list(tmp_path.iterdir()) == [path]


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="fps"):
        VideoWriter(tmp_path / "v.mp4", 0)
    with pytest.raises(InputError, match="directory"):
        VideoWriter(tmp_path, 25).open()
    with pytest.raises(InputError, match="not found"):
        read_video_info(tmp_path / "none.mp4")


def test_streaming_keeps_memory_flat(tmp_path):
    """500 frames go through without the process growing by anything like 500 frames' worth."""
    frame_bytes = 256 * 256 * 3
    audio = sine(220, 20.0, SAMPLE_RATE)
    tracemalloc.start()  # numpy registers its buffers with tracemalloc
    try:
        with VideoWriter(tmp_path / "long.mp4", 25, audio=audio) as writer:
            for i in range(500):
                writer.write(gradient_frame(i, 256, 256))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * frame_bytes  # holding every frame would be 500 frames, ~98 MB
    assert read_video_info(tmp_path / "long.mp4").frames == 500


def test_unwritable_or_long_output_is_an_input_error_before_any_frame(tmp_path):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores the mode bits: use a path under a file instead
            target = tmp_path / "file.txt"
            target.write_text("x")
            bad = target / "out.mp4"
        else:
            bad = locked / "out.mp4"
        with pytest.raises(InputError, match="cannot"):
            with VideoWriter(bad, 25):
                pass
    finally:
        locked.chmod(0o700)
    long_name = tmp_path / ("a" * 245 + ".mp4")  # legal name (249 bytes); the temp name must fit too
    with VideoWriter(long_name, 25) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
    assert long_name.is_file() and [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []

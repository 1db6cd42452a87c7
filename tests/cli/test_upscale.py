"""``genhuman upscale``: 16-frame windows overlapping by 4 with every frame kept, the face restored
by a tiny random net_g.pth and pasted into the bicubic-upscaled frame, the audio copied."""

import numpy as np
import pytest

from genhuman.checkpoints.face_sr import save_tiny_face_sr
from genhuman.cli import main
from genhuman.cli import upscale as upscale_cli
from genhuman.media import SAMPLE_RATE, VideoWriter, iter_video_frames, load_audio, read_video_info

FPS, SIDE = 25, 64
BOX = (16, 16, 48, 48)  # where the fake tracker puts the face


def test_windows_start_every_12_and_emit_every_frame_once():
    for length in (1, 4, 15, 16, 17, 20, 28, 29, 40):
        spans = list(upscale_cli.window_spans(range(length)))
        starts = [items[0] for items, _ in spans]
        assert starts == list(range(0, max(length - 4, 1), 12))[:len(starts)]
        emitted = [i for items, first in spans for i in items[first:]]
        assert emitted == list(range(length)), length
        assert all(len(items) <= 16 for items, _ in spans)
    # the official split of 20 frames: [0, 16) then [12, 20) without its first 4
    assert [(items[0], items[-1] + 1, first) for items, first in upscale_cli.window_spans(range(20))] == \
        [(0, 16, 0), (12, 20, 4)]


def test_lost_faces_take_the_nearest_box():
    a, b = (0, 0, 4, 4), (8, 8, 12, 12)
    assert upscale_cli.fill_boxes([None, a, None, None, b, None]) == [a, a, a, b, b, b]
    assert upscale_cli.fill_boxes([None, None]) == [None, None]


@pytest.fixture()
def video(tmp_path):
    path = tmp_path / "in.mp4"
    g = np.random.default_rng(0)
    audio = np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32) * 0.5
    with VideoWriter(path, FPS, audio=audio) as writer:
        for _ in range(FPS):
            writer.write(g.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8))
    return path


def test_upscale_x2_keeps_frames_and_audio_and_restores_the_face(tmp_path, video, monkeypatch):
    weights = tmp_path / "weights"
    save_tiny_face_sr(weights / "hallo2" / "net_g.pth", seed=3)
    seen = []

    def fake_tracker():
        def track(frame):
            seen.append(frame.shape)
            return BOX
        return track, lambda: None

    monkeypatch.setattr(upscale_cli, "landmark_tracker", fake_tracker)
    out = tmp_path / "out.mp4"
    assert main(["upscale", str(video), str(out), "-s", "2", "--weights", str(weights), "--device", "cpu"]) == 0
    info = read_video_info(out)
    assert (info.width, info.height, info.frames) == (2 * SIDE, 2 * SIDE, FPS)
    assert len(seen) == FPS  # every frame tracked once, streaming
    assert info.has_audio
    audio = load_audio(out)
    assert abs(len(audio) / SAMPLE_RATE - 1.0) <= 1 / FPS
    assert np.abs(audio).max() > 0.3

    # outside the face box the frame is the bicubic upscale; inside, the network's face
    import cv2
    first_in = next(iter_video_frames(video))
    first_out = next(iter_video_frames(out)).astype(np.float32)
    bicubic = cv2.resize(first_in, (2 * SIDE, 2 * SIDE), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    corner, face = (slice(0, 24), slice(0, 24)), (slice(48, 80), slice(48, 80))
    assert np.abs(first_out[corner] - bicubic[corner]).mean() < 12  # codec noise on random pixels
    assert np.abs(first_out[face] - bicubic[face]).mean() > 30


def test_wrong_options_are_one_line_errors(tmp_path, video, capsys):
    assert main(["upscale", str(video), str(tmp_path / "o.mp4"), "--weights", str(tmp_path)]) == 2
    assert "hallo2/net_g.pth is missing" in capsys.readouterr().err
    assert main(["upscale", str(video), str(tmp_path / "o.avi"), "--weights", str(tmp_path)]) == 2
    assert "output must be an .mp4 file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", str(video), str(tmp_path / "o.mp4"), "-s", "3", "--weights", str(tmp_path)])
    assert exit_info.value.code == 2


def test_realesrgan_background_when_its_weights_are_there(tmp_path, video, monkeypatch, capsys):
    from genhuman.checkpoints.realesrgan import save_tiny_realesrgan

    weights = tmp_path / "weights"
    save_tiny_face_sr(weights / "hallo2" / "net_g.pth", seed=3)
    monkeypatch.setattr(upscale_cli, "landmark_tracker", lambda: (lambda frame: None, lambda: None))  # no face
    plain, esr = tmp_path / "plain.mp4", tmp_path / "esr.mp4"
    assert main(["upscale", str(video), str(plain), "-s", "4", "--weights", str(weights), "--device", "cpu"]) == 0
    capsys.readouterr()
    asked = ["upscale", str(video), str(tmp_path / "x.mp4"), "--background", "realesrgan", "--weights", str(weights)]
    assert main(asked) == 2  # asked for, but absent: one line, exit 2
    err = capsys.readouterr().err
    assert "needs realesrgan/RealESRGAN_x2plus.pth" in err and err.count("\n") == 1
    save_tiny_realesrgan(weights / "realesrgan" / "RealESRGAN_x2plus.pth", seed=2)
    assert main(["upscale", str(video), str(esr), "-s", "4", "--weights", str(weights), "--device", "cpu"]) == 0
    a, b = next(iter_video_frames(plain)), next(iter_video_frames(esr))
    assert a.shape == b.shape == (4 * SIDE, 4 * SIDE, 3)
    assert abs(a.astype(int) - b).mean() > 5  # the random x2 network, not bicubic, made the background


def test_the_tiny_hallo2_folder_upscales_through_the_cli(tmp_path, video, monkeypatch):
    from genhuman.checkpoints import save_tiny_hallo_folder

    weights = save_tiny_hallo_folder(tmp_path / "pretrained_models", family="hallo2")
    assert (weights / "hallo2" / "net_g.pth").is_file() and (weights / "realesrgan" / "RealESRGAN_x2plus.pth").is_file()
    monkeypatch.setattr(upscale_cli, "landmark_tracker", lambda: (lambda frame: BOX, lambda: None))
    out = tmp_path / "x2.mp4"
    assert main(["upscale", str(video), str(out), "-s", "2", "--weights", str(weights), "--device", "cpu"]) == 0
    info = read_video_info(out)
    assert (info.width, info.height, info.frames, info.has_audio) == (2 * SIDE, 2 * SIDE, FPS, True)

import numpy as np
import pytest

from genhuman.checkpoints import save_tiny_official_checkpoint
from genhuman.cli import main
from genhuman.engines import get_engine_class
from genhuman.request import AnimateRequest, EngineOptions
from genhuman.engines.echomimic import EchoMimicEngine
from genhuman.errors import MissingWeightsError
from genhuman.media import load_audio, read_video_info, save_wav


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("echomimic")
    for variant in ("audio", "pose"):
        save_tiny_official_checkpoint(folder, variant)
    return folder


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, speech_path):
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    save_wav(path, load_audio(speech_path)[:8000])  # 0.5 s -> 12 frames at 24 fps
    return path


def test_registered_as_echomimic():
    assert get_engine_class("echomimic") is EchoMimicEngine


def test_cli_end_to_end_writes_mp4_with_audio(weights, portrait_path, short_speech, tmp_path, capsys):
    out = tmp_path / "x.mp4"
    code = main(["animate", str(portrait_path), str(short_speech), "--engine", "echomimic", "--weights",
                 str(weights), "-o", str(out), "--steps", "1", "--width", "128", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    info = read_video_info(out)
    assert (info.width, info.height, info.fps, info.frames) == (128, 128, 24.0, 12)  # official fps 24
    assert info.has_audio and info.audio_duration == pytest.approx(0.5, abs=0.05)
    assert "12 frames" in capsys.readouterr().out


def test_cli_pose_folder(weights, portrait_path, short_speech, tmp_path, capsys):
    pose = tmp_path / "pose"
    pose.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        np.save(pose / f"{i}.npy", rng.uniform(100, 400, size=(478, 3)))
    out = tmp_path / "pose.mp4"
    code = main(["animate", str(portrait_path), str(short_speech), "--engine", "echomimic", "--weights",
                 str(weights), "-o", str(out), "--steps", "1", "--cfg", "1", "--width", "128", "--pose", str(pose),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert read_video_info(out).frames == 12


def test_missing_weights_name_the_download_command(portrait_path, short_speech, tmp_path, capsys):
    code = main(["animate", str(portrait_path), str(short_speech), "--engine", "echomimic",
                 "-o", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "genhuman download echomimic" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "w").mkdir()
    code = main(["animate", str(portrait_path), str(short_speech), "--engine", "echomimic", "--weights",
                 str(tmp_path / "w"), "-o", str(tmp_path / "x.mp4"), "--accelerated", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "denoising_unet_acc.pth" in err and "genhuman download echomimic" in err
    assert not (tmp_path / "x.mp4").exists()


def test_pose_request_without_pose_weights(tmp_path, portrait_path, short_speech):
    folder = save_tiny_official_checkpoint(tmp_path / "audio_only", "audio")
    engine = EchoMimicEngine(EngineOptions(weights=folder))
    with pytest.raises(MissingWeightsError, match="face_locator_pose.pth"):
        engine.animate(portrait_path, short_speech, tmp_path / "x.mp4", AnimateRequest(pose=tmp_path))


def test_sizes_follow_the_loaded_model(weights, portrait_path, short_speech, tmp_path, capsys):
    # the tiny official-layout checkpoint: x8 VAE and 2 UNet levels -> multiples of 16
    out = tmp_path / "s.mp4"
    code = main(["animate", str(portrait_path), str(short_speech), "--engine", "echomimic", "--weights",
                 str(weights), "-o", str(out), "--steps", "1", "--width", "96", "--no-progress"])
    assert code == 0 and read_video_info(out).width == 96
    code = main(["animate", str(portrait_path), str(short_speech), "--engine", "echomimic", "--weights",
                 str(weights), "-o", str(tmp_path / "t.mp4"), "--steps", "1", "--width", "100", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().endswith("width and height must be multiples of 16 for these weights, got 100x100")
    assert not (tmp_path / "t.mp4").exists()

"""The echomimic_v2 engine and CLI on a tiny random checkpoint in the official V2 layout."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from genhuman.checkpoints import get_variant, save_tiny_official_checkpoint
from genhuman.cli import main
from genhuman.engines import load_engine
from genhuman.request import AnimateRequest, EngineOptions
from genhuman.errors import InputError, MissingWeightsError
from genhuman.media import VideoWriter, load_audio, load_image, read_video_info, save_wav
from genhuman.models import ConditionEncoder, ConditionEncoderConfig, EchoUNet3D, ReferenceUNet2D, UNet3DConfig, UNetConfig
from genhuman.pose.format import save_pose_dir
from tests.pose.conftest import make_pose

KEYS = Path(__file__).parents[1] / "models" / "keys"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("v2w")
    save_tiny_official_checkpoint(root, "v2")
    save_tiny_official_checkpoint(root, "v2_acc")
    return root


@pytest.fixture(scope="module")
def speech(tmp_path_factory, speech_path):
    path = tmp_path_factory.mktemp("audio") / "half.wav"
    save_wav(path, load_audio(speech_path)[:8000])  # 0.5 s -> 12 frames
    return path


def _official_keys(name: str) -> dict[str, tuple[int, ...]]:
    lines = (KEYS / name).read_text().splitlines()
    return {k: tuple(int(x) for x in re.findall(r"\d+", s)) for k, s in (line.split("\t") for line in lines)}


@pytest.mark.parametrize("variant", ["v2", "v2_acc"])
def test_v2_files_hold_the_official_key_sets(variant):
    """Each V2 file's keys (full size, meta device) are the official lists: V2's network is V1's."""
    chosen = get_variant(variant)
    with torch.device("meta"):
        denoiser = {k: tuple(v.shape) for k, v in EchoUNet3D(UNet3DConfig.sd15()).state_dict().items()}
        reference = {k: tuple(v.shape) for k, v in ReferenceUNet2D(UNetConfig.sd15()).state_dict().items()}
        pose = {k: tuple(v.shape) for k, v in ConditionEncoder(
            ConditionEncoderConfig.sd15(conditioning_channels=chosen.condition_channels)).state_dict().items()}
    files = {
        chosen.denoising_unet: {k: v for k, v in denoiser.items() if ".motion_modules." not in k},
        chosen.motion_module: {k: v for k, v in denoiser.items() if ".motion_modules." in k},
        chosen.reference_unet: reference,
        chosen.condition_encoder: pose,
    }
    expected = {chosen.denoising_unet: "denoising_unet_no_motion.txt",
                chosen.motion_module: "denoising_unet_motion_modules.txt",
                "reference_unet.pth": "reference_unet.txt",
                "pose_encoder.pth": "face_locator_pose_v1pose_v2poseencoder.txt"}
    assert set(files) == set(expected)
    for name, keys in files.items():
        assert keys == _official_keys(expected[name]), name


def test_cli_with_a_pose_folder(weights, speech, portrait_path, tmp_path, capsys):
    folder = save_pose_dir(make_pose(5, hand_step=0.02), tmp_path / "pose")
    out = tmp_path / "v2.mp4"
    code = main(["animate", str(portrait_path), str(speech), "-o", str(out), "--engine", "echomimic_v2",
                 "--weights", str(weights), "--pose", str(folder), "--width", "64", "--height", "64",
                 "--steps", "1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    info = read_video_info(out)
    assert (info.width, info.height, info.frames) == (64, 64, 12) and info.has_audio
    assert "12 frames, 64x64" in capsys.readouterr().out


def test_engine_with_a_driving_video_accelerated(weights, speech, portrait_path, tmp_path):
    video = tmp_path / "drive.mp4"
    image = load_image(portrait_path)
    with VideoWriter(video, fps=24) as writer:
        for i in range(4):
            writer.write(np.roll(image, 4 * i, axis=1))
    engine = load_engine("echomimic_v2", EngineOptions(weights=weights, accelerated=True))
    result = engine.animate(portrait_path, speech, tmp_path / "out.mp4",
                            AnimateRequest(pose=video, width=48, height=64, steps=1, extra={"align": False}))
    assert (result.frames, result.width, result.height, result.fps) == (12, 48, 64, 24)
    assert engine.load(AnimateRequest()).variant.name == "v2_acc"
    assert read_video_info(tmp_path / "out.mp4").frames == 12


def test_engine_errors(tmp_path, speech, portrait_path):
    with pytest.raises(MissingWeightsError, match="needs weights"):
        load_engine("echomimic_v2", EngineOptions())
    v1 = save_tiny_official_checkpoint(tmp_path / "v1", "audio")
    engine = load_engine("echomimic_v2", EngineOptions(weights=v1))
    with pytest.raises(MissingWeightsError, match="missing pose_encoder.pth"):
        engine.animate(portrait_path, speech, tmp_path / "x.mp4", AnimateRequest(width=64))
    with pytest.raises(InputError, match="pose input not found"):
        from genhuman.engines.echomimic_v2 import load_pose_input

        load_pose_input(tmp_path / "missing", 64, 64, 12)
    assert not (tmp_path / "x.mp4").exists()


def test_default_settings_are_the_official_infer_scripts(weights):
    # infer.py: -W/-H 768, --steps 30, --cfg 2.5, --fps 24, context 12 / overlap 3, shift t_i * 3, clamp 1.5
    from genhuman.sampling import WindowSchedule

    full_engine = load_engine("echomimic_v2", EngineOptions(weights=weights))
    full = full_engine.validate(AnimateRequest())
    assert (full.width, full.height, full.steps, full.cfg, full.fps, full.seed) == (768, 768, 30, 2.5, 24, 3407)
    variant = full_engine.load(full).variant
    assert (full_engine.window_schedule(variant), full_engine.clamp_noise(variant)) == (WindowSchedule(12, 3, 3), 1.5)
    # infer_acc.py: --steps 6, --cfg 1.0, --seed 420; an explicit seed is kept
    acc = load_engine("echomimic_v2", EngineOptions(weights=weights, accelerated=True)).validate(AnimateRequest())
    assert (acc.steps, acc.cfg, acc.fps, acc.seed) == (6, 1.0, 24, 420)
    assert full_engine.validate(AnimateRequest(seed=7)).seed == 7

"""At the full SD-1.5 geometry (built on the meta device) the parameter names and shapes equal
the official checkpoint key lists (tests/models/keys, copied from the research notes)."""

import re
from pathlib import Path

import pytest
import torch

from genhuman.models import (ConditionEncoder, ConditionEncoderConfig, EchoUNet3D, ReferenceUNet2D,
                             UNet3DConfig, UNetConfig)

KEYS = Path(__file__).parent / "keys"


def official(name: str) -> dict[str, tuple[int, ...]]:
    keys = {}
    for line in (KEYS / name).read_text().splitlines():
        key, shape = line.split("\t")
        keys[key] = tuple(int(x) for x in re.findall(r"\d+", shape))
    return keys


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def denoiser_shapes():
    with torch.device("meta"):
        return shapes(EchoUNet3D(UNet3DConfig.sd15()))


def test_reference_unet_keys_equal_official():
    with torch.device("meta"):
        got = shapes(ReferenceUNet2D(UNetConfig.sd15()))
    expected = official("reference_unet.txt")
    assert len(expected) == 570
    assert got == expected


def test_denoiser_2d_part_equals_official(denoiser_shapes):
    expected = official("denoising_unet_no_motion.txt")
    assert len(expected) == 686
    got = {k: v for k, v in denoiser_shapes.items() if ".motion_modules." not in k}
    assert got == expected


def test_motion_modules_equal_official(denoiser_shapes):
    expected = official("denoising_unet_motion_modules.txt")
    assert len(expected) == 588
    got = {k: v for k, v in denoiser_shapes.items() if ".motion_modules." in k}
    assert got == expected
    assert len(denoiser_shapes) == 686 + 588


@pytest.mark.parametrize("channels,name", [(1, "face_locator_v1_audio.txt"),
                                           (3, "face_locator_pose_v1pose_v2poseencoder.txt")])
def test_condition_encoder_keys_equal_official(channels, name):
    with torch.device("meta"):
        got = shapes(ConditionEncoder(ConditionEncoderConfig.sd15(conditioning_channels=channels)))
    expected = official(name)
    assert len(expected) == 16
    assert got == expected

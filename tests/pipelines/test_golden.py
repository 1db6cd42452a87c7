"""Golden output slices: the tiny pipelines end to end, through the engines' public path,
against frames recorded before the tensor-level refactor (``scripts/golden/record.py``).
A silent numeric change fails here; see tests/golden.py for the tolerance."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from genhuman.checkpoints.layout import get_variant
from genhuman.engines.echomimic import EchoMimicEngine
from genhuman.engines.echomimic_v2 import EchoMimicV2Engine
from genhuman.media import load_audio, load_image
from genhuman.request import AnimateRequest
from tests.golden import assert_matches_golden
from tiny_echomimic import tiny_components


def _engine(cls, variant, channels=1):
    return cls.from_components(SimpleNamespace(**tiny_components(conditioning_channels=channels)),
                               get_variant(variant))


def _frames(engine, image, wave, request):
    avatar = engine.prepare_avatar(image, request=request)
    return np.stack([f.image for f in engine.stream(avatar, [wave], request)])


@pytest.fixture(scope="module")
def inputs(portrait_path, speech_path):
    return load_image(portrait_path), load_audio(speech_path)[:12000]


@pytest.fixture(scope="module")
def v1():
    return _engine(EchoMimicEngine, "audio")


@pytest.mark.parametrize("name, cfg, paste", [("v1_audio_cfg", 2.5, False), ("v1_audio_nocfg", 1.0, False),
                                              ("v1_paste_back", 2.5, True)])
def test_echomimic_v1_golden(v1, inputs, name, cfg, paste):
    image, wave = inputs
    assert_matches_golden(name, _frames(v1, image, wave, AnimateRequest(width=128, steps=2, cfg=cfg, paste_back=paste)))


def test_echomimic_v1_landmarks_golden(inputs, tmp_path):
    image, wave = inputs
    rng = np.random.default_rng(5)
    landmarks = 30 + rng.uniform(0, 68, size=(7, 478, 2))
    for i, points in enumerate(landmarks):  # an official pose folder: landmarks in the 512 crop
        np.save(tmp_path / f"{i}.npy", points * 4.0)
    engine = _engine(EchoMimicEngine, "pose", channels=3)
    assert_matches_golden("v1_landmarks", _frames(engine, image, wave, AnimateRequest(width=128, steps=2, cfg=2.5, pose=tmp_path)))


def test_echomimic_v2_golden(inputs):
    image, wave = inputs
    engine = _engine(EchoMimicV2Engine, "v2", channels=3)
    assert_matches_golden("v2_generated_pose", _frames(engine, image, wave, AnimateRequest(width=96, height=128, steps=2, cfg=2.5)))

"""EchoMimic V2 on the shared core: the pose control, non-square sizes, the pose track."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from genhuman.checkpoints.layout import get_variant
from genhuman.engines.echomimic_v2 import EchoMimicV2Engine
from genhuman.errors import InputError
from genhuman.media import load_audio, load_image
from genhuman.pose.extend import max_step
from genhuman.request import AnimateRequest
from tests.pose.conftest import make_pose
from tiny_echomimic import tiny_components

W, H = 96, 128  # non-square on purpose: the official canvas only supports W == H


@pytest.fixture(scope="module")
def engine():
    return EchoMimicV2Engine.from_components(SimpleNamespace(**tiny_components(conditioning_channels=3)),
                                             get_variant("v2"))


@pytest.fixture(scope="module")
def inputs(portrait_path, speech_path):
    return load_image(portrait_path), load_audio(speech_path)[:16000]  # 1 s -> 24 frames


def _request(**kw):
    base = dict(width=W, height=H, steps=1, cfg=2.5, extra={"align": False})
    base.update(kw)
    return AnimateRequest(**base)


def _video(engine, image, wave, request, avatar=None):
    avatar = avatar or engine.prepare_avatar(image, request=request)
    return np.stack([f.image for f in engine.stream(avatar, [wave], request)])


def test_photo_and_audio_only_aligned_non_square(engine, inputs):
    image, wave = inputs
    video = _video(engine, image, wave[:8000], _request(extra={"align": True}))
    assert video.shape == (12, H, W, 3)


def test_pose_changes_the_video_and_short_poses_are_extended(engine, inputs, tmp_path):
    from genhuman.pose.format import save_pose_dir

    image, wave = inputs
    short = make_pose(5, seed=1, hand_step=0.02)
    request = engine.validate(_request())
    track = engine.pose_track(make_pose(5, seed=1, hand_step=0.02), None, wave, 24, request)
    assert len(track) == 24 and max_step(track) <= max_step(short) + 1e-9
    assert track.draw_params == (H, W, 0, H, 0, W)  # 768x768 params moved onto the canvas
    moved = make_pose(5, seed=1, hand_step=0.02)
    moved.hands[..., 1] -= 0.3
    a_dir, b_dir = save_pose_dir(short, tmp_path / "a"), save_pose_dir(moved, tmp_path / "b")
    avatar = engine.prepare_avatar(image, request=_request())
    a = _video(engine, image, wave[:8000], _request(pose=a_dir), avatar)
    b = _video(engine, image, wave[:8000], _request(pose=b_dir), avatar)
    assert a.shape == (12, H, W, 3) and not np.array_equal(a, b)


def test_frame_count_truncates_the_audio_duration_like_the_official(engine, inputs):
    image, wave = inputs  # 4640 samples = 0.29 s -> 6.96 frames at 24 fps: int() -> 6, not 7
    assert _video(engine, image, wave[:4640], _request(cfg=1.0)).shape[0] == 6


def test_streaming_schedule_with_a_generated_pose(engine, inputs):
    image, wave = inputs
    request = _request(schedule="streaming")
    avatar = engine.prepare_avatar(image, request=request)
    frames = list(engine.stream(avatar, [wave[i:i + 640] for i in range(0, len(wave), 640)], request))
    assert len(frames) == 24 and frames[-1].image.shape == (H, W, 3)


def test_rejects_wrong_weights_and_sizes(engine):
    v1 = EchoMimicV2Engine.from_components(SimpleNamespace(**tiny_components(conditioning_channels=1)),
                                           get_variant("audio"))
    with pytest.raises(InputError, match="not EchoMimic V2 weights"):
        v1.validate(_request())
    with pytest.raises(InputError, match="multiples of 16"):
        engine.validate(_request(width=100))

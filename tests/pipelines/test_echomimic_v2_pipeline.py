import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tiny_echomimic helpers
import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.media import iter_video_frames, load_audio, load_image, read_video_info
from genhuman.pipelines.echomimic_v2 import EchoMimicV2Pipeline, EchoMimicV2Settings
from genhuman.pose.extend import max_step
from tests.pose.conftest import make_pose
from tiny_echomimic import tiny_components

W, H = 96, 128  # non-square on purpose: the official canvas only supports W == H


@pytest.fixture(scope="module")
def pipeline():
    return EchoMimicV2Pipeline(**tiny_components(conditioning_channels=3))


@pytest.fixture(scope="module")
def inputs(portrait_path, speech_path):
    return load_image(portrait_path), load_audio(speech_path)[:16000]  # 1 s -> 24 frames


def _settings(**kw):
    base = dict(width=W, height=H, steps=2, guidance_scale=2.5, decode_batch=6, align=False)
    base.update(kw)
    return EchoMimicV2Settings(**base)


def _frames(path):
    return np.stack(list(iter_video_frames(path)))


def test_photo_and_audio_only_aligned_non_square(pipeline, inputs, tmp_path):
    image, wave = inputs
    out = tmp_path / "v2.mp4"
    seen = []
    result = pipeline(image, wave[:8000], out, _settings(align=True, steps=1), progress=lambda f, m: seen.append(f))
    info = read_video_info(out)
    assert (result.width, result.height, result.frames) == (W, H, 12)
    assert (info.width, info.height, info.frames) == (W, H, 12) and info.has_audio
    assert set(result.timings) == {"align", "audio_and_pose", "reference", "denoise", "decode"}
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_pose_changes_the_video_and_short_poses_are_extended(pipeline, inputs, tmp_path):
    image, wave = inputs
    short = make_pose(5, seed=1, hand_step=0.02)
    track = EchoMimicV2Pipeline._pose_track(short, None, wave, 24, _settings())
    assert len(track) == 24 and max_step(track) <= max_step(short) + 1e-9
    assert track.draw_params == (H, W, 0, H, 0, W)  # 768x768 params moved onto the canvas
    pipeline(image, wave[:8000], tmp_path / "a.mp4", _settings(steps=1), pose=short)
    moved = make_pose(5, seed=1, hand_step=0.02)
    moved.hands[..., 1] -= 0.3
    pipeline(image, wave[:8000], tmp_path / "b.mp4", _settings(steps=1), pose=moved)
    a, b = _frames(tmp_path / "a.mp4"), _frames(tmp_path / "b.mp4")
    assert a.shape == (12, H, W, 3) and not np.array_equal(a, b)


def test_accelerated_no_guidance(pipeline, inputs, tmp_path):
    image, wave = inputs
    result = pipeline(image, wave[:8000], tmp_path / "acc.mp4", _settings(steps=1, guidance_scale=1.0))
    assert result.frames == 12


def test_frame_count_truncates_the_audio_duration_like_the_official(pipeline, inputs, tmp_path):
    image, wave = inputs  # 4640 samples = 0.29 s -> 6.96 frames at 24 fps: int() -> 6, not 7
    result = pipeline(image, wave[:4640], tmp_path / "t.mp4", _settings(steps=1, guidance_scale=1.0))
    assert result.frames == 6 and read_video_info(tmp_path / "t.mp4").frames == 6


def test_rejects_wrong_weights_and_sizes(inputs, tmp_path):
    image, wave = inputs
    v1 = EchoMimicV2Pipeline(**tiny_components(conditioning_channels=1))
    with pytest.raises(InputError, match="not EchoMimic V2 weights"):
        v1(image, wave, tmp_path / "x.mp4", _settings())
    with pytest.raises(InputError, match="multiples of 16"):
        v1(image, wave, tmp_path / "x.mp4", _settings(width=100))
    assert not (tmp_path / "x.mp4").exists()

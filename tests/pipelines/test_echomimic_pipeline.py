import numpy as np
import pytest

from genhuman.errors import Cancelled, InputError
from genhuman.media import iter_video_frames, load_audio, load_image, read_video_info
from genhuman.pipelines import EchoMimicPipeline, EchoMimicSettings
from tiny_echomimic import tiny_components

SIZE = 128  # 16x16 latents; the end-to-end test runs at 256 (32x32 latents)


@pytest.fixture(scope="module")
def pipeline():
    return EchoMimicPipeline(**tiny_components())


@pytest.fixture(scope="module")
def inputs(portrait_path, speech_path):
    return load_image(portrait_path), load_audio(speech_path)[:12000]  # 0.75 s -> 18 frames


def _settings(**kw):
    base = dict(size=SIZE, steps=2, guidance_scale=2.5, window_batch=2, decode_batch=5)
    base.update(kw)
    return EchoMimicSettings(**base)


def _frames(path):
    return np.stack(list(iter_video_frames(path)))


@pytest.mark.slow  # 32x32 latents: ~10 s alone, more on a busy 2-core machine
def test_end_to_end_writes_mp4_with_audio(pipeline, inputs, tmp_path):
    image, wave = inputs
    seen = []
    out = tmp_path / "a.mp4"
    result = pipeline(image, wave, out, _settings(size=256), progress=lambda f, m: seen.append(f))
    info = read_video_info(out)
    assert result.frames == 18 and (result.width, result.height) == (256, 256)
    assert (info.width, info.height) == (256, 256) and info.frames == 18
    assert info.has_audio and info.duration == pytest.approx(0.75, abs=0.05)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert set(result.timings) == {"face", "audio_features", "reference", "denoise", "decode"}


def test_seeded_and_deterministic(pipeline, inputs, tmp_path):
    image, wave = inputs
    wave = wave[:4000]  # 6 frames: one window
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        pipeline(image, wave, tmp_path / f"{name}.mp4", _settings(seed=seed, steps=1))
    a, b, c = (_frames(tmp_path / f"{n}.mp4") for n in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_generates_the_official_frame_count_and_writes_the_speech_frames(pipeline, inputs, tmp_path, monkeypatch):
    # 0.25 s -> 12 or 13 whisper features (50/s); official feature2chunks at 24 fps keeps
    # frames up to the first i with int(i x 50/24) > features (i = 7), plus that one: 8.
    # The speech covers round(0.25 x 24) = 6 frames, which are the ones written.
    import genhuman.pipelines.echomimic as module

    shapes = []
    real = module.initial_noise
    monkeypatch.setattr(module, "initial_noise", lambda shape, *a: shapes.append(shape) or real(shape, *a))
    image, wave = inputs
    result = pipeline(image, wave[:4000], tmp_path / "n.mp4", _settings(steps=1, guidance_scale=1.0))
    assert shapes == [(1, 4, 8, SIZE // 8, SIZE // 8)]
    assert result.frames == 6 and read_video_info(tmp_path / "n.mp4").frames == 6
    pipeline(image, wave[:4000], tmp_path / "m.mp4", _settings(steps=1, guidance_scale=1.0, max_frames=5))
    assert shapes[-1][2] == 5 and read_video_info(tmp_path / "m.mp4").frames == 5  # like the official -L


def test_cfg_rows_and_timesteps_follow_the_official_pipeline(pipeline, inputs, tmp_path, monkeypatch):
    # official: reference net at t=0; denoiser at the DDIM trailing timesteps (2 steps of
    # 1000: 999, 499); uncond rows first with zero audio, zero face features, no reference
    seen, ref_t = [], []
    unet, ref = pipeline._unet_call, pipeline.reference_unet

    def spy(sample, t, audio_tokens, cond, reference, use_reference):
        seen.append((int(t), audio_tokens, cond, use_reference.tolist()))
        return unet(sample, t, audio_tokens=audio_tokens, cond=cond, reference=reference, use_reference=use_reference)

    monkeypatch.setattr(pipeline, "_unet_call", spy)
    monkeypatch.setattr(pipeline, "reference_unet", lambda latent, t: ref_t.append(t) or ref(latent, t))
    image, wave = inputs
    pipeline(image, wave[:4000], tmp_path / "g.mp4", _settings(steps=2, window_batch=1))
    assert ref_t == [0] and [t for t, *_ in seen] == [999, 499]
    for _, audio, cond, use_reference in seen:
        assert use_reference == [False, True]
        assert not audio[0].any() and audio[1].abs().sum() > 0
        assert not cond[0].any() and cond[1].abs().sum() > 0


def test_accelerated_settings_without_guidance(pipeline, inputs, tmp_path):
    image, wave = inputs
    result = pipeline(image, wave[:4000], tmp_path / "acc.mp4", _settings(steps=1, guidance_scale=1.0))
    assert result.frames == 6 and read_video_info(tmp_path / "acc.mp4").frames == 6


def test_paste_back_keeps_the_portrait_size(pipeline, inputs, tmp_path):
    image, wave = inputs
    out = tmp_path / "p.mp4"
    result = pipeline(image, wave[:4000], out, _settings(paste_back=True, steps=1))
    assert (result.width, result.height) == (image.shape[1], image.shape[0])
    first = _frames(out)[0].astype(int)
    # far outside the face crop the portrait is unchanged (up to H.264 noise)
    assert np.abs(first[:8, :8] - image[:8, :8].astype(int)).mean() < 8


def test_landmark_pose_mode(inputs, tmp_path):
    pipeline = EchoMimicPipeline(**tiny_components(conditioning_channels=3))
    image, wave = inputs
    with pytest.raises(InputError, match="landmark-pose model"):
        pipeline(image, wave[:4000], tmp_path / "x.mp4", _settings(steps=1))
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(40, 200, size=(4, 478, 2)).astype(np.float32)
    result = pipeline(image, wave[:4000], tmp_path / "pose.mp4", _settings(steps=1), landmarks=landmarks)
    assert result.frames == 6 and (tmp_path / "pose.mp4").is_file()


def test_cancel_leaves_no_file(pipeline, inputs, tmp_path):
    image, wave = inputs
    out = tmp_path / "c.mp4"
    calls = []

    def cancel_after_first_step():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        pipeline(image, wave[:4000], out, _settings(), should_cancel=cancel_after_first_step)
    assert list(tmp_path.iterdir()) == []


def test_bad_size_is_an_input_error(pipeline, inputs, tmp_path):
    image, wave = inputs
    with pytest.raises(InputError, match="multiple of 16"):
        pipeline(image, wave, tmp_path / "x.mp4", _settings(size=100))

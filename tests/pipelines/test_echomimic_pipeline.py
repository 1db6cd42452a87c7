"""The tensor-level core (V1 controls): conditioning in, latents or frames out; and the
engine's behaviour on tiny in-process networks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from genhuman.checkpoints.layout import get_variant
from genhuman.engines.avatar import Avatar
from genhuman.engines.echomimic import EchoMimicEngine
from genhuman.errors import Cancelled, InputError
from genhuman.media import load_audio, load_image, read_video_info
from genhuman.pipelines import EchoMimicPipeline
from genhuman.request import AnimateRequest
from genhuman.sampling import WindowSchedule
from tiny_echomimic import AUDIO_DIM, tiny_components

SIZE = 64


@pytest.fixture(scope="module")
def components():
    return tiny_components()


@pytest.fixture(scope="module")
def pipeline(components):
    return EchoMimicPipeline(components["vae"], components["reference_unet"], components["denoising_unet"],
                             components["condition_encoder"])


@pytest.fixture(scope="module")
def engine(components):
    return EchoMimicEngine.from_components(SimpleNamespace(**components), get_variant("audio"))


@pytest.fixture(scope="module")
def inputs(portrait_path, speech_path):
    return load_image(portrait_path), load_audio(speech_path)[:12000]  # 0.75 s -> 18 frames


def _conditioning(pipeline, frames=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = (torch.rand(SIZE, SIZE, 3, generator=g) * 255).to(torch.uint8).numpy()
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[16:48, 20:44] = 1.0
    tokens = torch.randn(frames, 50, AUDIO_DIM, generator=g)
    return pipeline.encode_reference(image), tokens, pipeline.mask_control(mask)


class UnetCalls:
    """Records every denoiser forward through torch's public forward-hook API."""

    def __init__(self, module):
        self.calls: list[dict] = []
        self.handle = module.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        self.calls.append({"t": int(args[1]), "batch": args[0].shape[0], "audio": kwargs["audio_tokens"],
                           "cond": kwargs["cond"], "use_reference": kwargs["use_reference"].tolist()})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_cfg_rows_and_timesteps_follow_the_official_pipeline(pipeline):
    # official: DDIM trailing timesteps (2 steps of 1000: 999, 499); with CFG each window is
    # one call with the uncond row first: zero audio, zero face features, no reference.
    reference, tokens, control = _conditioning(pipeline)
    with UnetCalls(pipeline.denoising_unet) as rec:
        pipeline(reference, tokens, control, steps=2, guidance_scale=2.5, window_batch=1, output_type="latent")
    assert [c["t"] for c in rec.calls] == [999, 499]
    for call in rec.calls:
        assert call["use_reference"] == [False, True] and call["batch"] == 2
        assert not call["audio"][0].any() and call["audio"][1].abs().sum() > 0
        assert not call["cond"][0].any() and call["cond"][1].abs().sum() > 0


@pytest.mark.parametrize("cfg", [1.0, 0.0])
def test_no_guidance_runs_no_unconditional_rows(pipeline, cfg):
    reference, tokens, control = _conditioning(pipeline, frames=18)
    with UnetCalls(pipeline.denoising_unet) as rec:
        pipeline(reference, tokens, control, steps=3, guidance_scale=cfg, window_batch=2, output_type="latent")
    windows = len(WindowSchedule(12, 3, 2).windows(18))
    assert len(rec.calls) == 3 * -(-windows // 2)
    assert all(all(c["use_reference"]) for c in rec.calls)
    assert sum(c["batch"] for c in rec.calls) == 3 * windows  # one row per window, none unconditional


def test_step_callback_and_scheduler_injection(pipeline):
    from genhuman.sampling import echomimic_scheduler

    reference, tokens, control = _conditioning(pipeline)
    seen = []
    out = pipeline(reference, tokens, control, steps=3, guidance_scale=2.5, output_type="np",
                   callback_on_step_end=lambda i, t, lat, mo: seen.append((i, int(t), lat.shape, mo.shape)))
    assert [(i, t) for i, t, *_ in seen] == [(0, 999), (1, 666), (2, 332)]
    assert all(s[2] == s[3] == (1, 4, 6, SIZE // 8, SIZE // 8) for s in seen)
    assert out.frames.shape == (6, SIZE, SIZE, 3) and out.frames.dtype == np.uint8
    other = EchoMimicPipeline(pipeline.vae, pipeline.reference_unet, pipeline.denoising_unet,
                              pipeline.condition_encoder, scheduler=echomimic_scheduler(timestep_spacing="leading"))
    seen.clear()
    other(reference, tokens, control, steps=3, output_type="latent",
          callback_on_step_end=lambda i, t, lat, mo: seen.append(int(t)))
    assert seen == [667, 334, 1]  # the injected scheduler decides the timesteps


def test_seeded_and_deterministic(pipeline):
    reference, tokens, control = _conditioning(pipeline)
    a, b, c = (pipeline(reference, tokens, control, steps=1, seed=s, output_type="latent").latents for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_stream_yields_the_first_frame_before_the_second_window(pipeline):
    reference, tokens, control = _conditioning(pipeline, frames=30)
    with UnetCalls(pipeline.denoising_unet) as rec:
        frames = pipeline.stream(reference, iter(tokens.split(1)), control, steps=2, guidance_scale=1.0,
                                 window=12, overlap=3)
        first = next(frames)
        calls_at_first_frame = len(rec.calls)
        rest = list(frames)
    assert first.shape == (SIZE, SIZE, 3) and calls_at_first_frame == 2  # window 1's two steps only
    assert 1 + len(rest) == 30
    assert len(rec.calls) == 2 * 3  # windows of 12 new frames, then 9 and 9: 30 frames


def test_stream_does_not_depend_on_how_tokens_are_chunked(pipeline):
    reference, tokens, control = _conditioning(pipeline, frames=20)
    one = np.stack(list(pipeline.stream(reference, [tokens], control, steps=2, guidance_scale=2.5)))
    pieces = np.stack(list(pipeline.stream(reference, tokens.split(7), control, steps=2, guidance_scale=2.5)))
    assert np.array_equal(one, pieces) and one.shape[0] == 20


def test_stream_anchors_the_overlap_to_the_previous_window(pipeline):
    # with 2 windows, window 2 re-uses window 1's last 3 frames' trajectory: their final latents
    # are window 1's, so the frames shown are continuous with what window 2 was conditioned on
    reference, tokens, control = _conditioning(pipeline, frames=12)
    whole = np.stack(list(pipeline.stream(reference, [tokens], control, steps=2, guidance_scale=1.0)))
    first = np.stack(list(pipeline.stream(reference, [tokens[:12]], control, steps=2, guidance_scale=1.0)))
    assert np.array_equal(whole, first)  # the first window's frames never change afterwards


def test_engine_size_multiples_come_from_the_model(engine):
    assert engine.load(AnimateRequest()).pipeline.size_multiple == 16  # tiny: x8 VAE, 2 UNet levels
    assert engine.validate(AnimateRequest(width=96)).width == 96
    with pytest.raises(InputError, match="multiples of 16 for these weights, got 100x100"):
        engine.validate(AnimateRequest(width=100))
    with pytest.raises(InputError, match="square"):
        engine.validate(AnimateRequest(width=64, height=128))


def test_engine_defaults_are_the_official_ones(engine):
    r = engine.validate(AnimateRequest())
    assert (r.fps, r.seed, r.steps, r.cfg, r.width, r.height) == (24, 420, 30, 2.5, 512, 512)
    acc = EchoMimicEngine(loaded=engine.load(AnimateRequest()))
    acc._fixed = type(acc._fixed)(get_variant("acc"), *list(vars(acc._fixed).values())[1:])
    r = acc.validate(AnimateRequest(seed=0))
    assert (r.steps, r.cfg, r.seed) == (6, 1.0, 0)
    assert engine.window_schedule(get_variant("pose")).shift == 3 and engine.clamp_noise(get_variant("pose")) is None
    with pytest.raises(InputError, match="unknown echomimic options: colour"):
        engine.validate(AnimateRequest(extra={"colour": 1}))


def test_unused_options_warn(engine, caplog):
    with caplog.at_level("WARNING"):
        engine.validate(AnimateRequest(text="hello there"))
    assert "the echomimic engine does not use --text; ignored" in caplog.text


def test_avatar_round_trip_and_refusals(engine, inputs, tmp_path):
    image, wave = inputs
    request = AnimateRequest(width=SIZE, steps=1)
    avatar = engine.prepare_avatar(image, request=request)
    first = [f.image for f in engine.stream(avatar, [wave[:4000]], request)]
    loaded = Avatar.load(avatar.save(tmp_path / "av"))
    again = [f.image for f in engine.stream(loaded, [wave[:4000]], request)]
    assert len(first) == 6 and all(np.array_equal(a, b) for a, b in zip(first, again))
    with pytest.raises(InputError, match="prepared for 64x64, not 128x128"):
        list(engine.stream(loaded, [wave[:4000]], request.replace(width=128)))
    other = Avatar("lite", "", loaded.arrays, loaded.meta)
    with pytest.raises(InputError, match="prepared by the lite engine"):
        list(engine.stream(other, [wave[:4000]], request))
    foreign = Avatar("echomimic", "0123456789abcdef", loaded.arrays, loaded.meta)
    with pytest.raises(InputError, match="other echomimic weights"):
        list(engine.stream(foreign, [wave[:4000]], request))


def test_streaming_schedule_through_the_engine(engine, inputs):
    image, wave = inputs
    request = AnimateRequest(width=SIZE, steps=1, schedule="streaming")
    avatar = engine.prepare_avatar(image, request=request)
    chunks = [wave[i:i + 640] for i in range(0, len(wave), 640)]  # 40 ms
    frames = list(engine.stream(avatar, chunks, request))
    assert [f.index for f in frames] == list(range(18)) and frames[0].image.shape == (SIZE, SIZE, 3)


def test_animate_writes_mp4_with_audio(engine, inputs, tmp_path):
    image, wave = inputs
    seen = []
    out = tmp_path / "a.mp4"
    result = engine.animate(image, wave, out, AnimateRequest(width=128, steps=1),
                            progress=lambda f, m: seen.append(f))
    info = read_video_info(out)
    assert result.frames == 18 and (result.width, result.height) == (128, 128)
    assert (info.width, info.height, info.frames) == (128, 128, 18)
    assert info.has_audio and info.duration == pytest.approx(0.75, abs=0.05)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert {"load", "avatar", "total"} <= set(result.timings)


def test_generates_the_official_frame_count_and_writes_the_speech_frames(engine, inputs):
    # 0.25 s -> 12 or 13 whisper features (50/s); official feature2chunks at 24 fps keeps
    # frames up to the first i with int(i x 50/24) > features (i = 7), plus that one: 8.
    # The speech covers round(0.25 x 24) = 6 frames, which are the ones written.
    image, wave = inputs
    request = AnimateRequest(width=SIZE, steps=1, cfg=1.0)
    avatar = engine.prepare_avatar(image, request=request)
    assert engine.frame_counts(8, wave[:4000], engine.validate(request)) == (8, 6)
    assert len(list(engine.stream(avatar, [wave[:4000]], request))) == 6
    capped = request.replace(extra={"max_frames": 5})
    assert len(list(engine.stream(avatar, [wave[:4000]], capped))) == 5  # like the official -L


def test_paste_back_keeps_the_portrait_size(engine, inputs):
    image, wave = inputs
    request = AnimateRequest(width=SIZE, steps=1, paste_back=True)
    frames = [f.image for f in engine.stream(engine.prepare_avatar(image, request=request), [wave[:4000]], request)]
    assert frames[0].shape == image.shape
    assert np.array_equal(frames[0][:8, :8], image[:8, :8])  # far outside the face crop: the portrait


def test_landmark_pose_mode_and_different_landmarks_change_the_video(inputs, tmp_path):
    image, wave = inputs
    pose_engine = EchoMimicEngine.from_components(SimpleNamespace(**tiny_components(conditioning_channels=3)),
                                                  get_variant("pose"))
    with pytest.raises(InputError, match="driven by landmarks"):
        pose_engine.validate(AnimateRequest(width=SIZE))
    videos = []
    for shift in (0.0, 60.0):
        folder = tmp_path / f"pose{shift:g}"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(4):
            np.save(folder / f"{i}.npy", rng.uniform(100, 400, size=(478, 2)) + shift)
        request = AnimateRequest(width=SIZE, steps=1, pose=folder)
        avatar = pose_engine.prepare_avatar(image, request=request)
        videos.append(np.stack([f.image for f in pose_engine.stream(avatar, [wave[:4000]], request)]))
    assert videos[0].shape == (6, SIZE, SIZE, 3) and not np.array_equal(videos[0], videos[1])


def test_cancel_leaves_no_file(engine, inputs, tmp_path):
    image, wave = inputs
    calls = []

    def cancel_soon():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        engine.animate(image, wave[:4000], tmp_path / "c.mp4", AnimateRequest(width=SIZE, steps=3),
                       should_cancel=cancel_soon)
    assert list(tmp_path.iterdir()) == []


def test_silent_and_empty_audio_are_input_errors(engine, inputs, tmp_path):
    image, _ = inputs
    with pytest.raises(InputError, match="silent"):
        engine.animate(image, np.zeros(16000, np.float32), tmp_path / "s.mp4", AnimateRequest(width=SIZE))
    with pytest.raises(InputError, match="too short"):
        engine.animate(image, np.zeros(10, np.float32), tmp_path / "s.mp4", AnimateRequest(width=SIZE))
    assert list(tmp_path.iterdir()) == []


def test_corrupt_or_foreign_avatar_files_are_one_line_errors(tmp_path):
    Avatar("lite", "", {"x": np.zeros(3, np.float32)}, {}).save(tmp_path / "a")
    (tmp_path / "a" / "avatar.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="is corrupt"):
        Avatar.load(tmp_path / "a")
    with pytest.raises(InputError, match="is not a saved avatar"):
        Avatar.load(tmp_path / "missing")
    Avatar("lite", "", {}, {}).save(tmp_path / "b")
    (tmp_path / "b" / "avatar.json").write_text('{"format": 99, "engine": "lite", "weights_id": ""}')
    with pytest.raises(InputError, match="has format 99"):
        Avatar.load(tmp_path / "b")


def test_validated_requests_warn_once_and_avatars_export_kv_only_when_saved(engine, inputs, tmp_path, caplog):
    image, wave = inputs
    with caplog.at_level("WARNING"):
        request = engine.validate(AnimateRequest(width=SIZE, steps=1, text="unused here"))
        engine.validate(request)
        avatar = engine.prepare_avatar(image, request=request)
        list(engine.stream(avatar, [wave[:4000]], request))
    assert caplog.text.count("does not use --text") == 1
    assert not any(k.startswith("kv.") for k in avatar.arrays)  # kept on the device until saved
    saved = Avatar.load(avatar.save(tmp_path / "av"))
    assert any(k.startswith("kv.") for k in saved.arrays)

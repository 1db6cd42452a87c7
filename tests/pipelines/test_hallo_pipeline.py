"""The Hallo pipeline's own behaviour on a tiny random HalloNet (CPU): clips stream one by one,
clip k+1's motion frames are clip k's last decoded frames, the official CFG uncond half, the
trim to the audio length, Hallo2's patch drop, the one generator per video."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genhuman.errors import Cancelled, InputError
from genhuman.models.attention import ReferenceKV
from genhuman.models.audio_attention import HalloMasks
from genhuman.models.hallo import HalloConfig, HalloNet, HalloReference
from genhuman.pipelines.hallo import HalloPipeline
from genhuman.pipelines.hallo_conditions import attention_levels, patch_drop_keep
from genhuman.sampling import echomimic_scheduler
from tiny_echomimic import tiny_vae

SIZE, CLIP, MOTION = 64, 16, 2
WINDOW = (5, 12, 768)  # one frame's wav2vec window


@pytest.fixture(scope="module")
def pipeline():
    torch.manual_seed(0)
    net = HalloNet(HalloConfig.tiny())
    vae = tiny_vae()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # random everywhere, so the official zero-inits do not hide any input
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for p in vae.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return HalloPipeline(vae, net)


@pytest.fixture(scope="module")
def portrait(pipeline):
    g = torch.Generator().manual_seed(2)
    pixels = torch.rand(3, SIZE, SIZE, generator=g) * 2 - 1
    face = np.zeros((SIZE, SIZE), np.uint8)
    face[12:52, 16:48] = 255
    region = torch.from_numpy(face).float().div(255)[None].repeat(3, 1, 1)
    soft = np.zeros((64, 64), np.uint8)
    soft[10:54, 14:50] = 200
    lip = np.zeros((64, 64), np.uint8)
    lip[38:48, 24:40] = 255
    masks = HalloMasks(attention_levels(255 - soft, SIZE), attention_levels(soft, SIZE), attention_levels(lip, SIZE))
    return pipeline.portrait(pixels, region, torch.randn(1, 512, generator=g), masks)


def _audio(frames: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(frames, *WINDOW, generator=torch.Generator().manual_seed(seed))


class UnetCalls:
    """Every denoiser forward, through torch's public forward-hook API."""

    def __init__(self, module):
        self.calls: list[dict] = []
        self.handle = module.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        self.calls.append({"args": args, "kwargs": kwargs, "output": output})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


class EncodeCalls:
    """The images given to the VAE encoder: [reference, motion frames] once per clip."""

    def __init__(self, monkeypatch, vae):
        self.images: list[torch.Tensor] = []
        encode = vae.encode

        def record(images, *args, **kwargs):
            self.images.append(images.clone())
            return encode(images, *args, **kwargs)

        monkeypatch.setattr(vae, "encode", record)


def test_clips_stream_one_by_one_and_the_video_is_trimmed(pipeline, portrait):
    with UnetCalls(pipeline.denoising_unet) as rec:
        clips = pipeline.stream(portrait, _audio(3 * CLIP), num_frames=CLIP + 4, steps=2)
        first = next(clips)
        calls_at_first_clip = len(rec.calls)
        second = next(clips)
        calls_at_second_clip = len(rec.calls)
        rest = list(clips)
    assert first.shape == (CLIP, SIZE, SIZE, 3) and first.dtype == np.uint8
    assert calls_at_first_clip == 2 and calls_at_second_clip == 4  # 2 steps a clip, nothing ahead
    assert second.shape == (4, SIZE, SIZE, 3)  # trimmed to the audio's 20 frames
    assert rest == [] and len(rec.calls) == 4  # the third clip (all padding) is never generated
    assert [int(c["args"][1]) for c in rec.calls] == [999, 499] * 2


def test_motion_frames_are_the_last_decoded_frames_of_the_previous_clip(pipeline, portrait, monkeypatch):
    encoded = EncodeCalls(monkeypatch, pipeline.vae)
    out = pipeline(portrait, _audio(2 * CLIP), steps=1)
    first, second = encoded.images
    reference = portrait.pixels[None]
    assert torch.equal(first, reference.repeat(1 + MOTION, 1, 1, 1))  # clip 1: the reference three times
    assert torch.equal(second[:1], reference)
    last_two = pipeline.decode_pixels(out.latents[:, :, CLIP - MOTION:CLIP]) * 2 - 1
    assert (second[1:] - last_two).abs().max() < 1e-5  # unrounded decoded pixels, mapped to [-1, 1]
    shown = torch.from_numpy(out.frames[CLIP - MOTION:CLIP]).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    assert (second[1:] - shown).abs().max() <= 2 / 255  # the frames handed out, before their uint8 rounding
    assert (second[1:] - reference).abs().max() > 0.1


def test_the_unconditional_half_sees_no_reference(pipeline, portrait):
    with UnetCalls(pipeline.denoising_unet) as rec:
        pipeline(portrait, _audio(CLIP), steps=1, motion_scale=(0.5, 1.0, 2.0))
    (call,) = rec.calls
    sample, t, image_tokens = call["args"]
    kw = call["kwargs"]
    assert sample.shape == (2, 4, CLIP, SIZE // 8, SIZE // 8) and kw["use_reference"] == [False, True]
    assert not kw["audio_tokens"][0].any() and kw["audio_tokens"][1].abs().sum() > 0  # zero after the projection
    assert not kw["face_features"][0].any() and kw["face_features"][1].abs().sum() > 0
    assert torch.equal(image_tokens[0], pipeline.imageproj(torch.zeros(1, 512))[0])  # imageproj(0), not zeros
    assert image_tokens[0].abs().sum() > 0 and kw["motion_scale"] == (0.5, 1.0, 2.0)
    # Change the reference K/V: the conditional row's prediction moves, the unconditional one's does not.
    reference = kw["reference"]
    kv = ReferenceKV({n: (k * 3 + 1, v * 3 - 1) for n, (k, v) in reference.kv.blocks.items()},
                     reference.kv.cycle_over_frames)
    altered = HalloReference(kv, reference.motion_frames)
    again = pipeline.denoising_unet(sample, t, image_tokens, **{**kw, "reference": altered})
    assert torch.equal(again[0], call["output"][0])
    assert (again[1] - call["output"][1]).abs().max() > 1e-4


def test_without_guidance_there_is_no_unconditional_row(pipeline, portrait):
    with UnetCalls(pipeline.denoising_unet) as rec:
        pipeline(portrait, _audio(CLIP), steps=1, guidance_scale=1.0)
    (call,) = rec.calls
    assert call["args"][0].shape[0] == 1 and call["kwargs"]["use_reference"] == [True]
    assert torch.equal(call["args"][2], portrait.image_tokens[1:])  # the face embedding's tokens only
    assert call["kwargs"]["reference"].kv.blocks and call["kwargs"]["face_features"].shape[0] == 1


def test_audio_in_pieces_and_a_short_last_clip(pipeline, portrait):
    audio = _audio(CLIP + 5)
    whole = pipeline(portrait, audio, steps=1).frames
    pieces = np.concatenate(list(pipeline.stream(portrait, iter(audio.split(7)), steps=1)))
    assert whole.shape == (CLIP + 5, SIZE, SIZE, 3) and np.array_equal(whole, pieces)
    padded = torch.cat([audio, audio[-1:].expand(CLIP - 5, *WINDOW)])  # the last window repeated
    assert np.array_equal(whole, pipeline(portrait, padded, num_frames=CLIP + 5, steps=1).frames)


def test_one_generator_per_video_one_draw_per_clip(pipeline, portrait):
    shape = (1, 4, CLIP, SIZE // 8, SIZE // 8)
    g = torch.Generator().manual_seed(42)
    drawn = [torch.randn(shape, generator=g) for _ in range(2)]
    default = pipeline(portrait, _audio(2 * CLIP), steps=1)  # official seed 42
    replayed = pipeline(portrait, _audio(2 * CLIP), steps=1, noise=drawn)
    assert np.array_equal(default.frames, replayed.frames)
    other = pipeline(portrait, _audio(2 * CLIP), steps=1, seed=7).frames
    assert not np.array_equal(default.frames, other)
    with pytest.raises(InputError, match="noise has 1 clips"):
        pipeline(portrait, _audio(2 * CLIP), steps=1, noise=drawn[:1])


def test_patch_drop_changes_only_the_dropped_motion_pixels(pipeline, portrait, monkeypatch):
    encoded = EncodeCalls(monkeypatch, pipeline.vae)
    plain = pipeline(portrait, _audio(2 * CLIP), steps=1, seed=5).frames
    dropped = pipeline(portrait, _audio(2 * CLIP), steps=1, seed=5, patch_drop=0.25).frames
    plain_first, _, drop_first, drop_second = encoded.images
    g = torch.Generator().manual_seed(5)
    keep = patch_drop_keep(portrait.face_region, g, 0.25)  # the clip's first draw, before its noise
    assert torch.equal(drop_first[0], plain_first[0])  # the reference image itself is never dropped
    assert torch.equal(drop_first[1:], plain_first[1:] * keep)  # both motion frames, every channel
    assert keep[portrait.face_region[0].bool()].all() and 0.15 < 1 - keep.float().mean() < 0.25
    # then the clip's noise; clip 2 draws its own mask first, then its noise
    noise1 = torch.randn((1, 4, CLIP, SIZE // 8, SIZE // 8), generator=g)
    keep2 = patch_drop_keep(portrait.face_region, g, 0.25)
    assert not torch.equal(keep2, keep) and torch.equal(drop_second[1:], drop_second[1:] * keep2)
    noise2 = torch.randn((1, 4, CLIP, SIZE // 8, SIZE // 8), generator=g)
    # the same masks and those draws of the noise give the same video: the mask is drawn first
    replay = pipeline(portrait, _audio(2 * CLIP), steps=1, seed=5, patch_drop=0.25, noise=[noise1, noise2]).frames
    assert np.array_equal(replay, dropped) and not np.array_equal(plain, dropped)


def test_progress_cancel_scheduler_and_bad_inputs(pipeline, portrait):
    seen: list[float] = []
    steps: list[int] = []
    pipeline(portrait, _audio(2 * CLIP), steps=2, progress=lambda f, m: seen.append(f),
             callback_on_step_end=lambda i, t, lat, mo: steps.append(int(t)))
    assert seen == sorted(seen) and seen[-1] == 1.0 and seen[0] == pytest.approx(0.25)
    assert steps == [999, 499] * 2
    with pytest.raises(Cancelled):
        next(pipeline.stream(portrait, _audio(CLIP), steps=1, should_cancel=lambda: True))
    other = HalloPipeline(pipeline.vae, pipeline.net, scheduler=echomimic_scheduler(timestep_spacing="leading"))
    steps.clear()
    other(portrait, _audio(CLIP), steps=2, callback_on_step_end=lambda i, t, lat, mo: steps.append(int(t)))
    assert steps == [501, 1]  # the injected scheduler decides
    with pytest.raises(InputError, match="square portrait"):
        pipeline.portrait(torch.zeros(3, 64, 128), torch.zeros(3, 64, 128), torch.zeros(512), portrait.masks)
    with pytest.raises(InputError, match="multiple of 64"):
        pipeline.portrait(torch.zeros(3, 96, 96), torch.zeros(3, 96, 96), torch.zeros(512), portrait.masks)
    with pytest.raises(ValueError, match="patch_drop"):
        next(pipeline.stream(portrait, _audio(CLIP), patch_drop=1.5))
    with pytest.raises(InputError, match="no audio frames"):
        pipeline(portrait, torch.zeros(0, *WINDOW))

"""Hallo and Hallo2 on the shared core: clip after clip, chained by motion frames (spec hallo.md 1.6, 2.2).

Tensor level like the rest of the core: a :class:`HalloPortrait` (the reference image, its face
region, image tokens, masks) and per-frame wav2vec windows in, uint8 frames out, the scheduler
injected; no file I/O, face detection or audio decoding here. Per 16-frame clip, as the official
``scripts/inference.py`` / Hallo2 ``inference_long.py`` loop:

1. the 2 motion frames are the previous clip's last decoded frames (float, [0, 1] -> [-1, 1]);
   the first clip uses the reference image twice. Hallo2's patch drop, when asked, zeroes a
   per-pixel random set of them outside the face box, drawn from the video's generator
   *before* the clip's noise;
2. ``[reference, motion frames]`` are VAE-encoded (posterior mean) and run through the
   reference UNet once, at timestep 0 (:meth:`HalloNet.prepare_reference`);
3. the clip's latents are the next draw of the video's one generator (seed 42: the official
   ``torch.manual_seed(42)`` stream), denoised by the shared loop (:func:`genhuman.sampling.denoise`,
   one window = the clip) with CFG: the uncond half has no reference attention, zero audio
   tokens (after the projection), zero face-locator features and ``imageproj(0)`` image tokens;
4. the clip is decoded, its frames handed out, and the video trimmed to the unpadded audio length.

Only one clip's latents and pixels exist at a time, so :meth:`HalloPipeline.stream` runs in
flat memory however long the audio. GenHuman decodes ``decode_batch`` frames per VAE call (the
official decodes one at a time; the same numbers to float rounding).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import torch
from diffusers import DDIMScheduler

from genhuman.errors import InputError
from genhuman.models.audio_attention import HalloMasks
from genhuman.models.hallo import HalloNet
from genhuman.pipelines.core import PipelineOutput, ReferenceVideoPipeline, _place
from genhuman.pipelines.hallo_conditions import HalloConditions, check_generation_size, drop_patches
from genhuman.progress import CancelFn, ProgressFn, Stage, check_cancel
from genhuman.sampling import StepCallback, WindowSchedule, denoise, uses_guidance
from genhuman.sampling.scheduler import HALLO_INFERENCE_STEPS, hallo_scheduler

CLIP_LENGTH = 16  # configs/inference/default.yaml n_sample_frames
MOTION_FRAMES = 2  # n_motion_frames
GUIDANCE_SCALE = 3.5  # cfg_scale
OFFICIAL_SEED = 42  # torch.manual_seed(42)

AudioWindows = Union[torch.Tensor, Iterable[torch.Tensor]]


@dataclass
class HalloPortrait:
    """What every clip reads from the portrait, computed once per avatar (:meth:`HalloPipeline.portrait`)."""

    pixels: torch.Tensor  # (3, S, S) in [-1, 1]: the reference image
    face_region: torch.Tensor  # (3, S, S) in [0, 1]: the hard face box (face locator input, patch drop's keep)
    image_tokens: torch.Tensor  # (2, n, dim): [imageproj(0), imageproj(face embedding)]
    face_features: torch.Tensor  # (1, C0, 1, S/8, S/8): the face locator's features, every frame alike
    masks: HalloMasks  # full / face / lip masks per level, (1, s*s) each

    @property
    def size(self) -> int:
        return int(self.pixels.shape[-1])


@dataclass
class HalloClip:
    """One denoised clip, trimmed: ``frames`` (n, S, S, 3) uint8, ``latents`` (1, 4, n, S/8, S/8)."""

    index: int
    start: int  # the video frame of frames[0]
    frames: np.ndarray
    latents: torch.Tensor


class HalloPipeline(ReferenceVideoPipeline):
    """Hallo / Hallo2 (the same network): a :class:`HalloNet` and the VAE, on the shared core.

    Use::

        pipe = HalloPipeline(load_vae(vae_dir, dtype), load_hallo_net(net_pth, dtype=dtype), device=..., dtype=...)
        portrait = pipe.portrait_from_conditions(hallo_conditions(image, landmarks), face_embedding)
        for clip in pipe.clips(portrait, clip_windows(segments, 16), num_frames=audio_length):
            writer.write(clip.frames)  # (n, 512, 512, 3) uint8, clip by clip

    :meth:`clips` (and :meth:`stream`, ``__call__``) take a :class:`HalloPortrait` and audio
    windows instead of the core's ``Reference`` and ``Control``: Hallo's reference is re-made
    every clip from the motion frames and its clips are chained, not windowed, so the core's
    ``encode_reference`` / ``predictor`` do not apply. Placement, geometry and the sampling
    loop are the core's."""

    def __init__(self, vae, net: HalloNet, scheduler: Optional[DDIMScheduler] = None,
                 device: Union[str, torch.device] = "cpu", dtype: torch.dtype = torch.float32,
                 compile: bool = False):
        super().__init__(vae, net.reference_unet, net.denoising_unet, net.face_locator,
                         scheduler if scheduler is not None else hallo_scheduler(),
                         device=device, dtype=dtype, compile=compile)
        self.net = net
        self.imageproj = _place(net.imageproj, self.device, dtype)
        self.audioproj = _place(net.audioproj, self.device, dtype)

    # ------------------------------------------------------------------ the portrait
    @torch.no_grad()
    def portrait(self, pixels: torch.Tensor, face_region: torch.Tensor, face_embedding: torch.Tensor,
                 masks: HalloMasks) -> HalloPortrait:
        """``pixels`` (3, S, S) in [-1, 1]; ``face_region`` (3, S, S) (or (1, 3, S, S)) in [0, 1];
        ``face_embedding`` (512,) or (1, 512), the raw ArcFace embedding (zeros when no face was
        found, as the official); ``masks`` at the 4 attention levels of S."""
        pixels = pixels.reshape(-1, *pixels.shape[-3:])[0]
        face_region = face_region.reshape(-1, *face_region.shape[-3:])[0]
        size = pixels.shape[-1]
        if pixels.shape[-2] != size or face_region.shape != pixels.shape:
            raise InputError(f"Hallo needs a square portrait and a face region of its size, got "
                             f"{tuple(pixels.shape)} and {tuple(face_region.shape)}")
        check_generation_size(size)
        embedding = face_embedding.reshape(1, -1).to(self.device, self.dtype)
        tokens = self.imageproj(torch.cat([torch.zeros_like(embedding), embedding]))  # official uncond: imageproj(0)
        region = face_region.to(self.device, self.dtype)
        features = self.condition_encoder(region[None, :, None])  # per-frame convs: one frame serves the clip
        on_device = HalloMasks(*([m.to(self.device) for m in levels] for levels in (masks.full, masks.face, masks.lip)))
        return HalloPortrait(pixels.to(self.device, torch.float32), region, tokens, features, on_device)

    def portrait_from_conditions(self, conditions: HalloConditions, face_embedding: torch.Tensor) -> HalloPortrait:
        """The same from :func:`genhuman.pipelines.hallo_conditions.hallo_conditions`' result."""
        masks = HalloMasks(conditions.full_masks, conditions.face_masks, conditions.lip_masks)
        return self.portrait(conditions.pixels, conditions.face_region, face_embedding, masks)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def clips(self, portrait: HalloPortrait, audio: AudioWindows, *, num_frames: Optional[int] = None,
              steps: int = HALLO_INFERENCE_STEPS, guidance_scale: float = GUIDANCE_SCALE,
              motion_scale: Sequence[float] = (1.0, 1.0, 1.0), seed: int = OFFICIAL_SEED,
              generator: Optional[torch.Generator] = None, patch_drop: Optional[float] = None,
              bank_dtype: Optional[torch.dtype] = None, noise: Optional[Iterable[torch.Tensor]] = None,
              clip_length: int = CLIP_LENGTH, motion_frames: int = MOTION_FRAMES, decode_batch: int = 8,
              callback_on_step_end: Optional[StepCallback] = None, progress: Optional[ProgressFn] = None,
              should_cancel: Optional[CancelFn] = None) -> Iterator[HalloClip]:
        """Generate a Hallo / Hallo2 video clip by clip: yields each :class:`HalloClip` (its frames
        (n, S, S, 3) uint8, its first frame's index, its latents) as soon as it is decoded, and
        computes nothing of the next clip before it is asked for. n = ``clip_length`` except for
        the trimmed last clip. :meth:`stream` yields the frames only; ``__call__`` collects them.

        ``portrait``: :meth:`portrait`'s result, made once per avatar.
        ``audio``: per-frame wav2vec windows (T, 5, 12, 768) (``audio_features.wav2vec.frame_windows``),
        or an iterable of such pieces of any length (``clip_windows``: one clip at a time, flat
        memory for long audio). For the official numbers give the features padded to a multiple
        of ``clip_length`` (``wav2vec_features(..., clip_length=16)``); a short last clip is
        otherwise padded by repeating its last window.
        ``num_frames``: the unpadded audio length; the video is trimmed to it (official) and
        clips past it are not generated. Default: every frame of ``audio``.
        ``steps`` (40), ``guidance_scale`` (3.5; at most 1: no uncond half), ``motion_scale`` =
        (pose, face, lip) weights.
        ``seed`` / ``generator``: one generator for the whole video (official: a CPU generator
        seeded 42); each clip's latents are its next draw. ``patch_drop``: Hallo2 long mode's
        rate (0.25, ``hallo_conditions.MOTION_DROP_RATE``), the mask drawn from the same
        generator just before the clip's latents; None = Hallo. ``bank_dtype=torch.float16``
        rounds the reference features as the official does in any dtype (None: the model's).
        ``noise``: each clip's initial latents (1, 4, clip, S/8, S/8) in order, used instead of
        the generator's draws (to replay a recorded run); the generator still makes its draws,
        so the patch-drop masks are those of the run without ``noise``.
        ``clip_length`` (16), ``motion_frames`` (2): the official geometry. ``decode_batch``:
        frames per VAE decode call.
        ``callback_on_step_end(step, t, latents, model_output)`` after every DDIM step of every
        clip (``step`` counts within the clip; ``model_output`` is the guided one). ``progress``
        covers the whole video when its length is known (a tensor ``audio`` or ``num_frames``),
        else each clip; ``should_cancel`` is polled before every clip and step.
        """
        if clip_length < 1 or motion_frames < 1:
            raise ValueError(f"clip_length and motion_frames must be positive, got {clip_length}, {motion_frames}")
        if patch_drop is not None and not 0.0 <= patch_drop <= 1.0:
            raise ValueError(f"patch_drop is a rate in [0, 1], got {patch_drop}")
        if isinstance(audio, torch.Tensor) and num_frames is None:
            num_frames = audio.shape[0]
        total_clips = None if num_frames is None else -(-num_frames // clip_length)
        generator = generator if generator is not None else torch.Generator().manual_seed(seed)
        motion = portrait.pixels[None].repeat(motion_frames, 1, 1, 1)  # the first clip: the reference image
        initial = None if noise is None else iter(noise)
        start = 0
        for index, (windows, real) in enumerate(_clip_windows(audio, clip_length)):
            wanted = real if num_frames is None else min(real, num_frames - start)
            if wanted <= 0:
                break
            check_cancel(should_cancel)
            stage = Stage(progress, index / total_clips, (index + 1) / total_clips) if total_clips else progress
            given = None if initial is None else next(initial, None)
            if initial is not None and given is None:
                raise InputError(f"noise has {index} clips; clip {index + 1} needs its initial latents too")
            latents = self._denoise_clip(portrait, windows, motion, generator, given, steps=steps,
                                         guidance_scale=guidance_scale, motion_scale=motion_scale,
                                         patch_drop=patch_drop, bank_dtype=bank_dtype, callback=callback_on_step_end,
                                         progress=stage, should_cancel=should_cancel)
            pixels = self.decode_pixels(latents, decode_batch)  # (clip, 3, S, S) in [0, 1]
            motion = pixels[-motion_frames:] * 2.0 - 1.0
            frames = (pixels[:wanted] * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # truncates
            yield HalloClip(index, start, frames, latents[:, :, :wanted])
            start += wanted

    def stream(self, portrait: HalloPortrait, audio: AudioWindows, **options: Any) -> Iterator[np.ndarray]:
        """Each clip's frames (n, S, S, 3) uint8 as soon as it is decoded; :meth:`clips`' options."""
        for clip in self.clips(portrait, audio, **options):
            yield clip.frames

    def __call__(self, portrait: HalloPortrait, audio: AudioWindows, **options: Any) -> PipelineOutput:
        """The whole video at once, :meth:`clips`' options: frames (L, S, S, 3), latents (1, 4, L, h, w)."""
        clips = list(self.clips(portrait, audio, **options))
        if not clips:
            raise InputError("no audio frames to animate")
        return PipelineOutput(torch.cat([c.latents for c in clips], dim=2), np.concatenate([c.frames for c in clips]))

    def _denoise_clip(self, portrait: HalloPortrait, windows: torch.Tensor, motion: torch.Tensor,
                      generator: torch.Generator, noise: Optional[torch.Tensor], *, steps: int, guidance_scale: float,
                      motion_scale: Sequence[float], patch_drop: Optional[float], bank_dtype: Optional[torch.dtype],
                      callback: Optional[StepCallback], progress: Optional[ProgressFn],
                      should_cancel: Optional[CancelFn]) -> torch.Tensor:
        """One clip's clean latents (1, 4, clip, h, w) from its (clip, 5, 12, 768) audio windows,
        its motion frames (m, 3, S, S) in [-1, 1] and its initial latents (None: the generator's)."""
        if patch_drop is not None:  # drawn before the clip's noise, from the same generator (official)
            motion = drop_patches(motion, portrait.face_region, generator, patch_drop)
        images = torch.cat([portrait.pixels[None], motion.to(portrait.pixels)]).to(self.device, self.dtype)
        reference_latents = self.vae.encode(images).latent_dist.mean * self.latent_scale
        guided = uses_guidance(guidance_scale)
        rows = [True, False] if guided else [False]  # uncond rows first, as the shared loop batches CFG
        image_tokens = portrait.image_tokens if guided else portrait.image_tokens[1:]
        reference = self.net.prepare_reference(reference_latents, image_tokens, bank_dtype=bank_dtype)
        audio = self.audioproj(windows.to(self.device, self.dtype)[None])  # (1, clip, 32, dim)
        if guided:
            audio = torch.cat([torch.zeros_like(audio), audio])
            face = torch.cat([torch.zeros_like(portrait.face_features), portrait.face_features])
        else:
            face = portrait.face_features
        use_reference = [not uncond for uncond in rows]
        scale = tuple(float(s) for s in motion_scale)

        def predict(sample: torch.Tensor, t: torch.Tensor, frames: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
            if uncond.tolist() != rows:
                raise RuntimeError(f"the sampler batched rows {uncond.tolist()}, the reference was made for {rows}")
            return self.unet(sample.to(self.dtype), t, image_tokens, audio_tokens=audio, face_features=face,
                             masks=portrait.masks, motion_scale=scale, reference=reference,
                             use_reference=use_reference)

        h, w = reference_latents.shape[-2:]
        shape = (1, 4, windows.shape[0], h, w)
        drawn = torch.randn(shape, generator=generator, device=generator.device)  # drawn even when given:
        if noise is None:  # the rest of the stream (Hallo2's masks) stays the official one
            noise = drawn
        elif tuple(noise.shape) != shape:
            raise InputError(f"a clip's noise must be {shape}, got {tuple(noise.shape)}")
        return denoise(noise.to(self.device), self.scheduler, predict, steps=steps, guidance_scale=guidance_scale,
                       schedule=WindowSchedule(windows.shape[0], 0, 0, circular=False), progress=progress,
                       should_cancel=should_cancel, callback=callback)

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def decode_pixels(self, latents: torch.Tensor, batch: int = 8) -> torch.Tensor:
        """(1, 4, F, h, w) -> (F, 3, H, W) float32 in [0, 1], ``batch`` frames per VAE call: the
        official ``decode_latents`` (the next clip's motion frames are taken from these, unrounded)."""
        chunks = []
        for first in range(0, latents.shape[2], batch):
            chunk = latents[0, :, first:first + batch].transpose(0, 1)
            pixels = self.vae.decode((chunk / self.latent_scale).to(self.dtype)).sample
            chunks.append((pixels.float() / 2 + 0.5).clamp(0, 1))
        return torch.cat(chunks)


def _clip_windows(audio: AudioWindows, clip_length: int) -> Iterator[tuple[torch.Tensor, int]]:
    """(windows of one clip, how many of them are real): pieces of any length regrouped into
    clips; a short last clip padded by repeating its last window."""
    pieces = (audio,) if isinstance(audio, torch.Tensor) else audio
    held: Optional[torch.Tensor] = None
    for piece in pieces:
        held = piece if held is None else torch.cat([held, piece])
        while held.shape[0] >= clip_length:
            yield held[:clip_length], clip_length
            held = held[clip_length:]
    if held is not None and held.shape[0]:
        real = held.shape[0]
        yield torch.cat([held, held[-1:].expand(clip_length - real, *held.shape[1:])]), real


__all__ = ["CLIP_LENGTH", "GUIDANCE_SCALE", "MOTION_FRAMES", "OFFICIAL_SEED", "HalloClip", "HalloPipeline",
           "HalloPortrait"]

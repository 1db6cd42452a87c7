"""EchoMimic V1: a portrait + speech (+ optional face landmarks) -> a talking-head MP4.

Follows the official pipelines (spec echomimic.md §3.1-3.3) with these changes:
- face box from MediaPipe instead of MTCNN (see ``face_crop``);
- the reference keys/values are projected once per video (``prepare_reference``);
- windows and the CFG halves are batched into few UNet calls, and window predictions are
  always averaged per frame (the official non-acc pipeline forgets to without CFG);
- landmark renderings are encoded per window, not for the whole video at once;
- the official frame count is generated, but only the frames the speech covers are written
  (the official video runs about 2 frames past the audio);
- VAE decoding in chunks, streamed to the MP4 writer; optional paste-back into the portrait.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from genhuman.audio_features.whisper import SAMPLE_RATE, frame_count, frame_tokens, whisper_features
from genhuman.errors import InputError
from genhuman.media import VideoWriter
from genhuman.pipelines.face_crop import FaceCrop
from genhuman.pipelines.landmarks import render_landmarks
from genhuman.pipelines.vae_io import decode_frames, encode_image
from genhuman.progress import CancelFn, Laps, ProgressFn, Stage, check_cancel, report
from genhuman.sampling import WindowSchedule, denoise, echomimic_scheduler, initial_noise, uses_guidance

log = logging.getLogger(__name__)


LandmarkSource = Union[np.ndarray, Callable[[np.ndarray, int], np.ndarray]]


@dataclass
class EchoMimicSettings:
    """Per-video settings; defaults are the official infer_audio2vid.py ones."""

    size: int = 512  # square generation size (the model was trained at 512)
    steps: int = 30
    guidance_scale: float = 2.5
    fps: float = 24.0
    seed: int = 420
    context: WindowSchedule = field(default_factory=lambda: WindowSchedule(12, 3, 2))
    window_batch: int = 2  # windows per UNet call (x2 rows with CFG)
    decode_batch: int = 8  # frames per VAE decode call
    crop_dilation: float = 0.5
    mask_dilation: float = 0.1
    face_index: int = 0
    paste_back: bool = False  # write the full portrait with the face crop blended back
    max_frames: Optional[int] = None
    clamp_noise: Optional[float] = 1.5  # official truncated initial noise (V1 audio, V2)


@dataclass
class PipelineResult:
    frames: int
    fps: float
    width: int
    height: int
    timings: dict[str, float]


class EchoMimicPipeline:
    """Holds the networks; ``__call__`` makes one video. Reuse it for many videos."""

    def __init__(self, vae, reference_unet, denoising_unet, condition_encoder, audio_encoder,
                 device: Union[str, torch.device] = "cpu", dtype: torch.dtype = torch.float32,
                 compile: bool = False):
        self.device, self.dtype = torch.device(device), dtype
        self.vae = _place(vae, self.device, dtype)
        self.reference_unet = _place(reference_unet, self.device, dtype)
        self.denoising_unet = _place(denoising_unet, self.device, dtype)
        self.condition_encoder = _place(condition_encoder, self.device, dtype)
        self.audio_encoder = _place(audio_encoder, self.device, torch.float32)  # tiny; keeps features exact
        self._unet_call: Callable[..., torch.Tensor] = (
            torch.compile(self.denoising_unet, dynamic=False) if compile else self.denoising_unet)

    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Pixel sides must survive the VAE and every UNet downsampling (64 for SD-1.5)."""
        return self.vae_factor * 2 ** (len(self.denoising_unet.config.block_out_channels) - 1)

    @property
    def uses_landmarks(self) -> bool:
        """3-channel condition encoder = the landmark-pose model; 1 channel = face mask."""
        return self.condition_encoder.config.conditioning_channels == 3

    def _predictor(self, audio_tokens: torch.Tensor, control, reference):
        """The model call for :func:`denoise`, with the official unconditional semantics:
        uncond rows get zero audio, zero control features and no reference tokens."""

        def predict(sample: torch.Tensor, t: torch.Tensor, frames: torch.Tensor, uncond: torch.Tensor):
            repeat = sample.shape[0] // frames.shape[0]  # 2 with CFG: [uncond rows | cond rows]
            keep = (~uncond).to(self.dtype)
            audio = audio_tokens[frames].repeat(repeat, 1, 1, 1) * keep.view(-1, 1, 1, 1)
            cond = control.features(frames).repeat(repeat, 1, 1, 1, 1) * keep.view(-1, 1, 1, 1, 1)
            return self._unet_call(sample.to(self.dtype), t, audio_tokens=audio, cond=cond,
                                   reference=reference, use_reference=~uncond)

        return predict

    @torch.no_grad()
    def __call__(self, image: np.ndarray, wave_16k: np.ndarray, output: Union[str, Path],
                 settings: Optional[EchoMimicSettings] = None, landmarks: Optional[LandmarkSource] = None,
                 progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
                 ) -> PipelineResult:
        """``image`` HxWx3 uint8 RGB portrait; ``wave_16k`` mono float32 speech at 16 kHz;
        ``landmarks`` (pose model only): (n, 478, 2) face landmarks in pixels of the
        ``settings.size`` square crop, one per frame (looped back and forth if too short), or
        a function (portrait landmarks in crop pixels, frame count) -> such an array."""
        settings = settings or EchoMimicSettings()
        size = settings.size
        if size % self.size_multiple:
            raise InputError(f"the generation size must be a multiple of {self.size_multiple}, got {size}")
        if self.uses_landmarks and landmarks is None:
            raise InputError("these weights are the landmark-pose model: give a pose folder or driving video")
        lap = Laps()

        from genhuman.face import face_landmarks

        face = face_landmarks(image, settings.face_index, name="the portrait")
        crop = FaceCrop.official(face.box, image.shape[1], image.shape[0], settings.crop_dilation,
                                 settings.mask_dilation)
        reference_image = crop.crop(image, size)
        lap("face")
        report(progress, 0.01, "face found")

        features = whisper_features(self.audio_encoder, wave_16k)
        # Generate the official frame count (about duration x fps + 2, capped like its -L) so
        # the noise tensor and the wrap-around windows are the official ones; write only the
        # frames the speech covers.
        num_frames = frame_count(features.shape[0], settings.fps)
        if settings.max_frames:
            num_frames = min(num_frames, settings.max_frames)
        written = min(num_frames, max(1, round(len(wave_16k) / SAMPLE_RATE * settings.fps)))
        audio_tokens = frame_tokens(features, settings.fps, num_frames).to(self.device, self.dtype)
        lap("audio_features")
        report(progress, 0.04, "audio encoded")
        check_cancel(should_cancel)

        ref_latent = encode_image(self.vae, reference_image, self.device, self.dtype)
        bank = self.reference_unet(ref_latent.to(self.dtype), 0)
        reference = self.denoising_unet.prepare_reference(bank)
        del bank
        if self.uses_landmarks:
            if callable(landmarks):
                landmarks = landmarks(crop.to_crop_pixels(face.landmarks, size), num_frames)
            control = _LandmarkControl(self.condition_encoder, landmarks, num_frames, size, self.device, self.dtype)
        else:
            mask = torch.from_numpy(crop.mask(size)).to(self.device, self.dtype)
            control = _MaskControl(self.condition_encoder(mask[None, None, None]))
        lap("reference")
        report(progress, 0.06, "reference encoded")

        latent_side = size // self.vae_factor
        latents = initial_noise((1, 4, num_frames, latent_side, latent_side), settings.seed,
                                settings.clamp_noise, self.device)

        predict = self._predictor(audio_tokens, control, reference)
        latents = denoise(latents, echomimic_scheduler(), predict, steps=settings.steps,
                          guidance_scale=settings.guidance_scale, schedule=settings.context,
                          window_batch=settings.window_batch, progress=Stage(progress, 0.06, 0.92),
                          should_cancel=should_cancel)
        lap("denoise")
        log.debug("denoised %d frames, %d steps, cfg %s (%s)", num_frames, settings.steps,
                  settings.guidance_scale, "batched CFG" if uses_guidance(settings.guidance_scale) else "no CFG")

        width, height = (image.shape[1], image.shape[0]) if settings.paste_back else (size, size)
        weights = crop.paste_weights() if settings.paste_back else None
        decode_stage = Stage(progress, 0.92, 1.0)
        with VideoWriter(output, settings.fps, width, height, audio=wave_16k, sample_rate=SAMPLE_RATE) as writer:
            for i, frame in enumerate(decode_frames(self.vae, latents[:, :, :written], settings.decode_batch,
                                                    self.dtype)):
                writer.write(crop.paste(image, frame, weights) if weights is not None else frame)
                if (i + 1) % settings.decode_batch == 0:
                    check_cancel(should_cancel)
                    decode_stage((i + 1) / written, "decoding")
        lap("decode")
        report(progress, 1.0, "done")
        return PipelineResult(written, settings.fps, width, height, lap.timings)


def _place(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    param = next(module.parameters())
    if param.device != device or param.dtype != dtype:  # diffusers warns on every .to(dtype)
        module = module.to(device=device, dtype=dtype)
    return module.eval().requires_grad_(False)


class _MaskControl:
    """Audio-driven mode: one face-mask feature map broadcast over every frame."""

    def __init__(self, features: torch.Tensor):
        self._features = features  # (1, C0, 1, h, w)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        return self._features.expand(frames.shape[0], -1, -1, -1, -1)


class _LandmarkControl:
    """Landmark-pose mode: renderings drawn and encoded per window, never for the whole video."""

    def __init__(self, encoder, landmarks: np.ndarray, num_frames: int, size: int, device, dtype):
        from genhuman.pose.extend import pingpong_indices

        if landmarks.ndim != 3 or landmarks.shape[2] < 2 or len(landmarks) == 0:
            raise InputError("landmarks must be a non-empty (frames, 478, 2) array")
        self.encoder, self.size, self.device, self.dtype = encoder, size, device, dtype
        self.landmarks = landmarks[pingpong_indices(len(landmarks), num_frames), :, :2]

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        images = np.stack([[render_landmarks(self.landmarks[i], self.size) for i in row]
                           for row in frames.tolist()])  # (n, F, H, W, 3)
        x = torch.from_numpy(images).to(self.device, self.dtype).permute(0, 4, 1, 2, 3)
        return self.encoder(x)

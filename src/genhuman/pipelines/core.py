"""The shared core of the reference-net + 3D-UNet families (EchoMimic V1 and V2; Hallo next).

Tensor level, like diffusers: components are injected (the scheduler among them); the
pipeline takes conditioning (a :class:`Reference`, per-frame audio tokens, a control) and
returns latents or uint8 frames. No file I/O, face detection or audio decoding here: the
engines own those. Two schedules:

- ``__call__``: the official one. Every frame's noise and conditions exist before the first
  step; windows wrap round the video and shift every step; predictions are averaged per
  frame. This is what the parity fixtures check against the official code.
- :meth:`stream`: window after window as audio tokens arrive (see
  :mod:`genhuman.sampling.streaming`); frames come out while later audio is still unknown,
  and memory is per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Protocol, Union

import numpy as np
import torch
from diffusers import DDIMScheduler

from genhuman.models.attention import ReferenceKV
from genhuman.progress import CancelFn, ProgressFn, check_cancel
from genhuman.sampling import StepCallback, WindowSchedule, denoise, echomimic_scheduler, initial_noise
from genhuman.sampling.streaming import denoise_anchored



class Control(Protocol):
    """Per-frame condition features for the denoiser (face mask, landmarks, hand pose)."""

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """(windows, F) frame indices -> (windows, C, F or 1, h, w)."""
        ...


@dataclass
class Reference:
    """The portrait as the denoiser sees it: its VAE latent and the reference net's
    keys/values projected for every denoiser block (computed once per avatar)."""

    latent: torch.Tensor  # (1, 4, h, w) float32, already times the VAE scaling factor
    kv: ReferenceKV


@dataclass
class PipelineOutput:
    latents: torch.Tensor  # (1, 4, L, h, w) float32 clean latents
    frames: Optional[np.ndarray] = None  # (L, H, W, 3) uint8 when output_type == "np"


class ReferenceVideoPipeline:
    """Holds the networks and the scheduler; reuse it for many videos."""

    def __init__(self, vae, reference_unet, denoising_unet, condition_encoder,
                 scheduler: Optional[DDIMScheduler] = None, device: Union[str, torch.device] = "cpu",
                 dtype: torch.dtype = torch.float32, compile: bool = False):
        self.device, self.dtype = torch.device(device), dtype
        self.vae = _place(vae, self.device, dtype)
        self.reference_unet = _place(reference_unet, self.device, dtype)
        self.denoising_unet = _place(denoising_unet, self.device, dtype)
        self.condition_encoder = _place(condition_encoder, self.device, dtype)
        self.scheduler = scheduler if scheduler is not None else echomimic_scheduler()
        self.unet: Callable[..., torch.Tensor] = (
            torch.compile(self.denoising_unet, dynamic=False) if compile else self.denoising_unet)

    @classmethod
    def from_components(cls, components, device: Union[str, torch.device] = "cpu",
                        dtype: torch.dtype = torch.float32, compile: bool = False):
        """From :func:`genhuman.checkpoints.load_echomimic`'s result, with the official scheduler."""
        return cls(components.vae, components.reference_unet, components.denoising_unet,
                   components.condition_encoder, echomimic_scheduler(), device=device, dtype=dtype, compile=compile)

    # ------------------------------------------------------------------ geometry
    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Pixel sides must survive the VAE and every UNet downsampling (64 for SD-1.5)."""
        return self.vae_factor * 2 ** (len(self.denoising_unet.config.block_out_channels) - 1)

    @property
    def latent_scale(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def condition_channels(self) -> int:
        return int(self.condition_encoder.config.conditioning_channels)

    # ------------------------------------------------------------------ reference
    @torch.no_grad()
    def encode_reference(self, image: np.ndarray) -> Reference:
        """HxWx3 uint8 portrait (already at the generation size) -> its :class:`Reference`."""
        pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0 * 2.0 - 1.0
        posterior = self.vae.encode(pixels.to(self.device, self.dtype)).latent_dist
        latent = posterior.mean.float() * self.latent_scale  # official: the posterior mean
        return self.reference_from_latent(latent)

    @torch.no_grad()
    def reference_from_latent(self, latent: torch.Tensor) -> Reference:
        bank = self.reference_unet(latent.to(self.device, self.dtype), 0)  # official: timestep 0
        return Reference(latent, self.denoising_unet.prepare_reference(bank))

    # ------------------------------------------------------------------ model call
    def predictor(self, audio_tokens: torch.Tensor, control: Control, reference: Reference, frame_offset: int = 0):
        """The model call for the samplers, with the official unconditional semantics:
        uncond rows get zero audio, zero control features and no reference tokens.
        ``audio_tokens[j]`` belongs to frame ``frame_offset + j``."""
        kv = reference.kv

        def predict(sample: torch.Tensor, t: torch.Tensor, frames: torch.Tensor, uncond: torch.Tensor):
            repeat = sample.shape[0] // frames.shape[0]  # 2 with CFG: [uncond rows | cond rows]
            keep = (~uncond).to(self.dtype)
            audio = audio_tokens[frames].repeat(repeat, 1, 1, 1) * keep.view(-1, 1, 1, 1)
            cond = control.features(frames + frame_offset).repeat(repeat, 1, 1, 1, 1) * keep.view(-1, 1, 1, 1, 1)
            return self.unet(sample.to(self.dtype), t, audio_tokens=audio, cond=cond, reference=kv,
                             use_reference=~uncond)

        return predict

    # ------------------------------------------------------------------ official schedule
    @torch.no_grad()
    def __call__(self, reference: Reference, audio_tokens: torch.Tensor, control: Control, *,
                 num_frames: Optional[int] = None, steps: int = 30, guidance_scale: float = 2.5,
                 context: WindowSchedule = WindowSchedule(12, 3, 2), seed: int = 420,
                 clamp_noise: Optional[float] = 1.5, latents: Optional[torch.Tensor] = None,
                 window_batch: int = 2, decode_batch: int = 8, output_type: str = "np",
                 callback_on_step_end: Optional[StepCallback] = None,
                 progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
                 ) -> PipelineOutput:
        """``audio_tokens`` (L, tokens, dim): one row per frame. ``latents`` (1, 4, L, h, w):
        the initial noise (default: the official seeded, truncated noise)."""
        if output_type not in ("np", "latent"):
            raise ValueError(f"output_type must be 'np' or 'latent', got {output_type!r}")
        num_frames = num_frames or audio_tokens.shape[0]
        h, w = reference.latent.shape[-2:]
        if latents is None:
            latents = initial_noise((1, 4, num_frames, h, w), seed, clamp_noise, self.device)
        tokens = audio_tokens.to(self.device, self.dtype)
        latents = denoise(latents.to(self.device), self.scheduler, self.predictor(tokens, control, reference),
                          steps=steps, guidance_scale=guidance_scale, schedule=context, window_batch=window_batch,
                          progress=progress, should_cancel=should_cancel, callback=callback_on_step_end)
        frames = np.stack(list(self.decode(latents, decode_batch))) if output_type == "np" else None
        return PipelineOutput(latents, frames)

    # ------------------------------------------------------------------ streaming schedule
    @torch.no_grad()
    def stream(self, reference: Reference, token_chunks: Iterable[torch.Tensor], control: Control, *,
               steps: int = 30, guidance_scale: float = 2.5, window: int = 12, overlap: int = 3,
               seed: int = 420, clamp_noise: Optional[float] = 1.5, decode_batch: int = 8,
               should_cancel: Optional[CancelFn] = None) -> Iterator[np.ndarray]:
        """Frames (uint8 HxWx3) in order, window by window, as ``token_chunks`` (pieces of
        per-frame audio tokens, any length) arrive. The first window needs ``window`` frames
        of tokens (or the end of the input); each later one ``window - overlap`` more."""
        if not 0 <= overlap < window:
            raise ValueError(f"overlap must be in [0, window), got {overlap} for window {window}")
        h, w = reference.latent.shape[-2:]
        carried: Optional[torch.Tensor] = None  # the previous window's last `overlap` frames' tokens
        anchor: Optional[torch.Tensor] = None
        start, index = 0, 0  # first new frame of the next window; window number

        def run(new_tokens: torch.Tensor, final: bool) -> Iterator[np.ndarray]:
            nonlocal carried, anchor, start, index
            tokens = new_tokens if carried is None else torch.cat([carried, new_tokens])
            k = 0 if carried is None else carried.shape[0]
            noise = initial_noise((1, 4, tokens.shape[0], h, w), seed + index, clamp_noise, self.device)
            predict = self.predictor(tokens.to(self.device, self.dtype), control, reference, frame_offset=start - k)
            keep = 0 if final else min(overlap, tokens.shape[0])
            clean, anchor = denoise_anchored(noise, self.scheduler, predict, steps=steps,
                                             guidance_scale=guidance_scale, anchor=anchor if k else None, keep=keep)
            carried = tokens[-keep:] if keep else None
            start += new_tokens.shape[0]
            index += 1
            yield from self.decode(clean[:, :, k:], decode_batch)

        buffered: Optional[torch.Tensor] = None
        for chunk in token_chunks:
            check_cancel(should_cancel)
            buffered = chunk if buffered is None else torch.cat([buffered, chunk])
            while buffered.shape[0] >= (need := window if index == 0 else window - overlap):
                new, buffered = buffered[:need], buffered[need:]
                yield from run(new, final=False)
        if buffered is not None and buffered.shape[0]:
            yield from run(buffered, final=True)

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def decode(self, latents: torch.Tensor, batch: int = 8) -> Iterator[np.ndarray]:
        """(1, 4, L, h, w) -> HxWx3 uint8 frames, ``batch`` per VAE call: only one chunk of
        pixels exists at a time. uint8 by truncation, as the official ``save_videos_grid``."""
        for first in range(0, latents.shape[2], batch):
            chunk = latents[0, :, first:first + batch].transpose(0, 1)  # (k, 4, h, w)
            pixels = self.vae.decode((chunk / self.latent_scale).to(self.dtype)).sample
            pixels = ((pixels.float() / 2 + 0.5).clamp(0, 1) * 255).to(torch.uint8)  # truncates
            yield from pixels.permute(0, 2, 3, 1).cpu().numpy()


def _place(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    param = next(module.parameters())
    if param.device != device or param.dtype != dtype:  # diffusers warns on every .to(dtype)
        module = module.to(device=device, dtype=dtype)
    return module.eval().requires_grad_(False)


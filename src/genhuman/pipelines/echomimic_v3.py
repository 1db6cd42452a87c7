"""EchoMimicV3 sampling at tensor level: preview (Flow-Euler, three-way CFG, long-video CFG) and Flash (UniPC,
audio-only CFG, optional TeaCache). No file I/O: the engine turns media into these tensors.

Inputs (per window, see :class:`V3Conditions`): the raw umT5 text embeddings (zero-padded to 512), the CLIP
penultimate tokens [1, 257, 1280], the Fun-InP condition latents [1, 20, F, h, w] (4 mask channels + 16 masked
video latents), and the audio: preview wav2vec2 ``last_hidden_state`` [1, 2*frames, 768], Flash per-frame windows
[1, frames, 5, 12, 768]. Text and CLIP embeddings are computed once per avatar, so umT5 (5.7 B) and CLIP need
not stay loaded while sampling.

Official numbers are reproduced by default, quirks included:
- preview: the negative text embedding is multiplied by ``neg_scale`` again at every step ``i <= neg_steps``
  and the product kept (x3.375 from step 2 on with the defaults);
- preview: the text and audio guidance scales decay as ``s/2 + s/2 * (1 - cos(pi * ((N-i)/N)**5)) / 2``;
- preview long-video CFG: the negative text embedding is NOT rescaled (``in_prompt_embeds`` is built once
  before that loop); every window reads the condition latents and audio from the START of the clip
  (``y[:, :, :window]``), overlap blended with a linear ramp, scheduler step index reset per window;
- the Flow-Euler timesteps of diffusers 0.32 (``sigma_min`` shifted twice) are rebuilt as explicit sigmas;
- Flash TeaCache counts transformer calls, not steps, and treats the zero-audio call as conditional, so that
  call is mostly skipped and reuses the audio residual (audio CFG silently weakened). ``TeaCache(per_step=True)``
  is the corrected behaviour (one decision per step, one residual per branch); the quirk stays the default
  because it is what the official Flash script produces, and it is what the parity trace checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from genhuman.models.echomimic_v3 import EchoMimicV3Transformer

StepCallback = Callable[[int, float, torch.Tensor, torch.Tensor], None]  # (i, t, guided model output, latents)

# Wan2.1-Fun 1.3B rescale polynomial (official src/cache_utils.py)
TEACACHE_COEFFICIENTS_1_3B = (-5.21862437e04, 9.23041404e03, -5.28275948e02, 1.36987616e01, -4.99875664e-02)


def preview_scheduler(shift: float = 5.0) -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift, use_dynamic_shifting=False)


def set_preview_timesteps(scheduler: FlowMatchEulerDiscreteScheduler, steps: int) -> torch.Tensor:
    """diffusers 0.32's schedule (what the official numbers use): ``linspace(1000, 1000 * sigma_min)`` with the
    already shifted float32 ``sigma_min``, divided by 1000 and shifted again."""
    n = scheduler.config.num_train_timesteps
    shift = scheduler.config.shift
    train = torch.tensor(1.0 / n, dtype=torch.float32)
    sigma_min = float(shift * train / (1 + (shift - 1) * train))
    sigmas = np.linspace(n * 1.0, n * sigma_min, steps) / n
    sigmas = torch.from_numpy(shift * sigmas / (1 + (shift - 1) * sigmas)).to(torch.float32)  # float64, as 0.32
    scheduler.set_timesteps(steps)
    scheduler.sigmas = torch.cat([sigmas, torch.zeros(1)])
    scheduler.timesteps = sigmas * n
    return scheduler.timesteps


def set_flash_timesteps(scheduler: UniPCMultistepScheduler, steps: int) -> torch.Tensor:
    """The official FlowUniPC schedule: ``linspace(0.999, 0, steps + 1)[:-1]`` (its float32 ``sigma_max`` is
    1 - 1/1000), shifted by the scheduler's ``flow_shift``."""
    n = scheduler.config.num_train_timesteps
    sigma_max = float(torch.tensor(1.0 - 1.0 / n, dtype=torch.float32))
    scheduler.set_timesteps(sigmas=np.linspace(sigma_max, 0.0, steps + 1)[:-1])
    return scheduler.timesteps


def flash_scheduler(shift: float = 5.0) -> UniPCMultistepScheduler:
    return UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
                                   flow_shift=shift, solver_order=2, predict_x0=True, solver_type="bh2",
                                   lower_order_final=True, disable_corrector=[], timestep_spacing="linspace")


def dynamic_scale(scale: float, i: int, steps: int) -> float:
    """The official "dynamic" CFG decay (scale at step 0, scale/2 at the end)."""
    return scale / 2 + (scale / 2) * ((1 - math.cos(math.pi * ((steps - i) / steps) ** 5.0)) / 2)


@dataclass
class V3Conditions:
    """Everything but the audio and the noise, for one window (batch 1)."""

    prompt_embeds: torch.Tensor          # [1, 512, text_dim] umT5 output, zero-padded
    negative_embeds: torch.Tensor        # [1, 512, text_dim]
    clip_embeds: torch.Tensor            # [1, 257, image_dim]
    condition: torch.Tensor              # [1, 20, F, h, w]


@dataclass
class PreviewOptions:
    steps: int = 25
    text_scale: float = 4.0
    audio_scale: float = 2.9
    dynamic: bool = True
    neg_scale: float = 1.5
    neg_steps: int = 2
    shift: float = 5.0
    audio_strength: float = 1.0
    long_video: bool = False             # the official use_longvideo_cfg path
    window_latents: int = 29             # partial_video_length 113 frames -> 29 latent frames
    overlap_latents: int = 8


@dataclass
class FlashOptions:
    steps: int = 8
    audio_scale: float = 3.0
    shift: float = 5.0
    teacache: bool = False
    teacache_threshold: float = 0.1
    teacache_skip_start: int = 5
    teacache_per_step: bool = False      # True: the corrected TeaCache (see module docstring)


@dataclass
class TeaCache:
    """Timestep-embedding-aware caching of the block stack's residual."""

    num_steps: int
    threshold: float
    skip_start: int
    per_step: bool = False
    coefficients: tuple[float, ...] = TEACACHE_COEFFICIENTS_1_3B
    calls: list[bool] = field(default_factory=list)   # True where the blocks ran
    _cnt: int = 0
    _acc: float = 0.0
    _prev: torch.Tensor | None = None
    _should_calc: bool = True
    _residuals: dict[str, torch.Tensor] = field(default_factory=dict)
    _branch: str = "cond"

    def branch(self, name: str) -> "TeaCache":
        self._branch = name if self.per_step else "cond"
        return self

    def _rescale(self, x: float) -> float:
        return float(np.poly1d(self.coefficients)(x))

    def decide(self, modulated: torch.Tensor) -> bool:
        if self._branch == "cond":
            if self._cnt < self.skip_start:
                calc = True
                self._acc = 0.0
            else:
                assert self._prev is not None
                rel = float((modulated - self._prev).abs().mean() / self._prev.abs().mean())
                self._acc += self._rescale(rel)
                calc = not self._acc < self.threshold
                if calc:
                    self._acc = 0.0
            self._prev = modulated
            self._should_calc = calc
        calc = self._should_calc or self._branch not in self._residuals
        self.calls.append(calc)
        return calc

    def done(self) -> None:
        """After each transformer call (the official counter ticks at the end of forward)."""
        if not self.per_step or self._branch != "cond":
            self._tick()

    def _tick(self) -> None:
        self._cnt += 1
        if self._cnt == self.num_steps:
            self._cnt, self._acc, self._prev, self._should_calc = 0, 0.0, None, True
            self._residuals = {}

    def store(self, residual: torch.Tensor) -> None:
        self._residuals[self._branch] = residual

    def residual(self) -> torch.Tensor:
        return self._residuals[self._branch]

    def end_step_without_uncond(self) -> None:
        if self.per_step:
            self._tick()


class EchoMimicV3Pipeline:
    """Preview (``transformer.config.flash`` False) or Flash sampling with an injected diffusers scheduler."""

    def __init__(self, transformer: EchoMimicV3Transformer, scheduler=None):
        self.transformer = transformer
        self.flash = transformer.config.flash
        self.scheduler = scheduler if scheduler is not None else (flash_scheduler() if self.flash
                                                                  else preview_scheduler())

    @torch.no_grad()
    def sample_preview(self, cond: V3Conditions, audio: torch.Tensor, noise: torch.Tensor,
                       face_mask: torch.Tensor | None, options: PreviewOptions = PreviewOptions(),
                       callback: StepCallback | None = None) -> torch.Tensor:
        """``audio`` [1, 2*frames, 768] (50 Hz), ``face_mask`` [1, h/2*w/2] or None, ``noise`` [1,16,F,h,w]."""
        model, sched = self.transformer, self.scheduler
        timesteps = set_preview_timesteps(sched, options.steps)
        dtype = noise.dtype
        audio3 = torch.cat([torch.zeros_like(audio), torch.zeros_like(audio), audio]).to(dtype)
        clip3 = cond.clip_embeds.expand(3, -1, -1).to(dtype)
        mask3 = None if face_mask is None else face_mask.expand(3, -1)
        negative = cond.negative_embeds.to(dtype)
        prompt = cond.prompt_embeds.to(dtype)
        latents = noise.clone()
        steps = len(timesteps)

        def guided(i: int, out: torch.Tensor) -> torch.Tensor:
            gs = dynamic_scale(options.text_scale, i, steps) if options.dynamic else options.text_scale
            ags = dynamic_scale(options.audio_scale, i, steps) if options.dynamic else options.audio_scale
            uncond, drop_audio, full = out.chunk(3)
            return uncond + gs * (drop_audio - uncond) + ags * (full - drop_audio)

        for i, t in enumerate(timesteps):
            if i <= options.neg_steps and not options.long_video:  # the official long path never scales it
                negative = negative * options.neg_scale
            context = model.encode_context(torch.cat([negative, prompt, prompt]), clip3)
            tt = t.expand(3).to(dtype)
            if not options.long_video:
                y = cond.condition.expand(3, -1, -1, -1, -1).to(dtype)
                tokens = model.audio_tokens(audio3)
                out = model(torch.cat([latents] * 3), y, tt, context, tokens, mask3, options.audio_strength)
                pred = guided(i, out)
                latents = sched.step(pred, t, latents, return_dict=False)[0]
                if callback is not None:
                    callback(i, float(t), pred, latents)
            else:
                latents = self._long_video_step(i, t, tt, latents, cond, audio3, context, mask3, options, guided,
                                                callback)
        return latents

    def _long_video_step(self, i, t, tt, final, cond, audio3, context, mask3, options, guided, callback):
        """One step of the official ``use_longvideo_cfg`` loop (indices taken mod the latent length)."""
        model, sched = self.transformer, self.scheduler
        total = final.shape[2]
        window, overlap = options.window_latents, options.overlap_latents
        new = torch.zeros_like(final)
        init, last = 0, window
        left_last = last
        end = False
        audio_len = audio3.shape[1]
        while last <= total:
            sched._step_index = None
            idx = [k % total for k in range(init, last)]
            if last == total:
                aidx = [k % audio_len for k in range(init * 8, audio_len)]
            else:
                aidx = [k % audio_len for k in range(init * 8, init * 8 + len(idx) * 8)]
            latents = final[:, :, idx].clone()
            n = latents.shape[2]
            y = cond.condition.expand(3, -1, -1, -1, -1)[:, :, :n].to(latents.dtype)
            tokens = model.audio_tokens(audio3[:, aidx])
            out = model(torch.cat([latents] * 3), y, tt, context, tokens, mask3, options.audio_strength)
            pred = guided(i, out)
            latents = sched.step(pred, t, latents, return_dict=False)[0]
            if callback is not None:
                callback(i, float(t), pred, latents.clone())  # the blend below edits latents in place
            if init != 0 and i != 0:
                ramp = torch.linspace(0, 1, overlap, dtype=latents.dtype).view(1, 1, -1, 1, 1)
                start = [k % n for k in range(overlap)]
                prev = [k % total for k in range(left_last - overlap, left_last)]
                latents[:, :, start] = latents[:, :, start] * ramp + new[:, :, prev] * (1 - ramp)
            for k in range(n):
                new[:, :, (init + k) % total] = latents[:, :, k]
            if end:
                break
            if last != total:
                left_last = last
                init = init + (window - overlap)
                if init + window < total:
                    last = init + window
                else:
                    last = total
                    end = True
        return new

    @torch.no_grad()
    def sample_flash(self, cond: V3Conditions, audio: torch.Tensor, noise: torch.Tensor,
                     options: FlashOptions = FlashOptions(), callback: StepCallback | None = None,
                     cache: TeaCache | None = None) -> torch.Tensor:
        """``audio`` [1, frames, 5, 12, 768] wav2vec hidden-state windows, ``noise`` [1,16,F,h,w]."""
        model, sched = self.transformer, self.scheduler
        set_flash_timesteps(sched, options.steps)
        if cache is None and options.teacache:
            cache = TeaCache(options.steps, options.teacache_threshold, options.teacache_skip_start,
                             options.teacache_per_step)
        dtype = noise.dtype
        context = model.encode_context(cond.prompt_embeds.to(dtype), cond.clip_embeds.to(dtype))
        y = cond.condition.to(dtype)
        tokens = model.audio_tokens(audio.to(dtype))
        silent = model.audio_tokens(torch.zeros_like(audio, dtype=dtype))
        guided_cfg = options.audio_scale > 1.0
        latents = noise.clone()
        for i, t in enumerate(sched.timesteps):
            tt = t.expand(1).to(dtype)
            pred = model(latents, y, tt, context, tokens, cache=None if cache is None else cache.branch("cond"))
            if guided_cfg:
                un = model(latents, y, tt, context, silent, cache=None if cache is None else cache.branch("uncond"))
                pred = un + options.audio_scale * (pred - un)
            elif cache is not None:
                cache.end_step_without_uncond()
            latents = sched.step(pred, t, latents, return_dict=False)[0]
            if callback is not None:
                callback(i, float(t), pred, latents)
        return latents

"""The denoising loop shared by every diffusion family (EchoMimic V1/V2, Hallo).

A family supplies ``predict(sample, timestep, frames, uncond)``: ``sample`` is a batch of
windows (B, C, F, h, w), ``frames`` the (windows, F) frame indices they came from (so it
can slice its per-frame conditions), and ``uncond`` a (B,) bool mask telling which rows
are the unconditional half. With guidance, every window appears twice in one call,
unconditional rows first, so a single UNet call serves both halves.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

import torch
from diffusers import DDIMScheduler

from genhuman.progress import CancelFn, ProgressFn, check_cancel, report
from genhuman.sampling.guidance import apply_guidance, uses_guidance
from genhuman.sampling.windows import WindowBlender, WindowSchedule

log = logging.getLogger(__name__)

PredictFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]
"""``callback(step_index, timestep, latents_after_step, model_output)``, as diffusers'
``callback_on_step_end``: the guided, window-averaged model output of that step."""


def initial_noise(shape: Sequence[int], seed: int, clamp: Optional[float] = 1.5,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Official noise: randn from a CPU generator seeded with ``seed``, clamped to +-1.5
    (truncated noise), float32. Same numbers on every device."""
    noise = torch.randn(tuple(shape), generator=torch.Generator("cpu").manual_seed(seed))
    if clamp is not None:
        noise = noise.clamp(-clamp, clamp)
    return noise.to(device)


def predict_windows(latents: torch.Tensor, timestep: torch.Tensor, windows: list[list[int]],
                    predict: PredictFn, guidance_scale: float, window_batch: int) -> torch.Tensor:
    """Model output for the whole video (1, C, L, h, w): windows batched, CFG batched,
    guided per window, averaged per frame."""
    guided = uses_guidance(guidance_scale)
    blender = WindowBlender(latents)
    for first in range(0, len(windows), window_batch):
        frames = torch.tensor(windows[first:first + window_batch], dtype=torch.long, device=latents.device)
        n = frames.shape[0]
        sample = latents[0][:, frames].transpose(0, 1)  # (n, C, F, h, w)
        uncond = torch.zeros(n, dtype=torch.bool, device=latents.device)
        if guided:
            sample = torch.cat([sample, sample])
            uncond = torch.cat([torch.ones_like(uncond), uncond])
        out = predict(sample, timestep, frames, uncond)
        if guided:
            out = apply_guidance(out[:n].float(), out[n:].float(), guidance_scale)
        for row in range(n):
            blender.add(out[row:row + 1], frames[row])
    return blender.result()


def denoise(
    latents: torch.Tensor,
    scheduler: DDIMScheduler,
    predict: PredictFn,
    *,
    steps: int,
    guidance_scale: float,
    schedule: WindowSchedule = WindowSchedule(),
    window_batch: int = 1,
    progress: Optional[ProgressFn] = None,
    should_cancel: Optional[CancelFn] = None,
    callback: Optional[StepCallback] = None,
) -> torch.Tensor:
    """Run the sampler over latents (1, C, L, h, w) and return the clean latents (float32).
    The scheduler is set to ``steps`` here; the model sees ``scale_model_input(latents, t)``."""
    if latents.shape[0] != 1:
        raise ValueError("denoise works on one video at a time (batch 1)")
    if window_batch < 1:
        raise ValueError("window_batch must be at least 1")
    scheduler.set_timesteps(steps, device=latents.device)
    latents = latents.float() * scheduler.init_noise_sigma
    num_frames = latents.shape[2]
    timesteps = scheduler.timesteps
    log.debug("denoise: %d frames, %d steps, cfg %g, %d windows/step, %d per call", num_frames, steps,
              guidance_scale, len(schedule.windows(num_frames)), window_batch)
    for i, t in enumerate(timesteps):
        check_cancel(should_cancel)
        windows = schedule.windows(num_frames, i)
        model_input = scheduler.scale_model_input(latents, t)
        model_output = predict_windows(model_input, t, windows, predict, guidance_scale, window_batch)
        latents = scheduler.step(model_output, t, latents).prev_sample
        if callback is not None:
            callback(i, t, latents, model_output)
        report(progress, (i + 1) / len(timesteps), f"denoising step {i + 1}/{len(timesteps)}")
    return latents

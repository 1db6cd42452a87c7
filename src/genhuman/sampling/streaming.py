"""The streaming schedule: one window after another, as the conditions arrive.

The official schedule needs every frame's conditions before the first step (its windows
wrap round the whole video and shift every step). Streaming instead denoises window k
(frames [k*stride, k*stride + size)) through all steps on its own; its first ``overlap``
frames are the previous window's last frames, and they are *anchored*: at every step they
are set to the latents the previous window had for them at that step, so the new frames are
denoised in temporal context with frames already shown. Only those ``overlap`` frames'
trajectories (steps+1 latents each) are carried from window to window, so memory does not
grow with the video's length, and window k's frames are final once it is done.
"""

from __future__ import annotations

from typing import Optional

import torch
from diffusers import DDIMScheduler

from genhuman.sampling.guidance import apply_guidance, uses_guidance
from genhuman.sampling.loop import PredictFn


def denoise_anchored(latents: torch.Tensor, scheduler: DDIMScheduler, predict: PredictFn, *, steps: int,
                     guidance_scale: float, anchor: Optional[torch.Tensor] = None, keep: int = 0,
                     ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Denoise one window (1, C, F, h, w). ``anchor`` (steps + 1, C, k, h, w): the trajectory
    its first k frames must follow. Returns (clean latents, trajectory of its last ``keep``
    frames, shaped like ``anchor``, or None)."""
    scheduler.set_timesteps(steps, device=latents.device)
    latents = latents.float() * scheduler.init_noise_sigma
    k = 0 if anchor is None else anchor.shape[2]
    if anchor is not None:
        latents[:, :, :k] = anchor[0]
    trail = [latents[0, :, -keep:].clone()] if keep else []
    frames = torch.arange(latents.shape[2], device=latents.device)[None]
    guided = uses_guidance(guidance_scale)
    for i, t in enumerate(scheduler.timesteps):
        sample = scheduler.scale_model_input(latents, t)
        uncond = torch.zeros(1, dtype=torch.bool, device=latents.device)
        if guided:
            sample, uncond = torch.cat([sample, sample]), torch.tensor([True, False], device=latents.device)
        out = predict(sample, t, frames, uncond).float()
        if guided:
            out = apply_guidance(out[:1], out[1:], guidance_scale)
        latents = scheduler.step(out, t, latents).prev_sample
        if anchor is not None:
            latents[:, :, :k] = anchor[i + 1]
        if keep:
            trail.append(latents[0, :, -keep:].clone())
    return latents, (torch.stack(trail) if keep else None)

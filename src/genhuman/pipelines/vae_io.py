"""VAE encode/decode helpers shared by the diffusion pipelines (SD latent convention)."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

LATENT_SCALE = 0.18215  # SD-1.5 VAE scaling, as the official pipelines hard-code it


@torch.no_grad()
def encode_image(vae, image_rgb: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 4, H/8, W/8) float32 latent: the posterior MEAN x 0.18215 (official)."""
    pixels = torch.from_numpy(image_rgb).permute(2, 0, 1)[None].float() / 255.0 * 2.0 - 1.0  # as VaeImageProcessor
    posterior = vae.encode(pixels.to(device, dtype)).latent_dist
    return posterior.mean.float() * LATENT_SCALE


@torch.no_grad()
def decode_frames(vae, latents: torch.Tensor, batch: int, dtype: torch.dtype) -> Iterator[np.ndarray]:
    """(1, 4, L, h, w) latents -> HxWx3 uint8 frames, ``batch`` frames per VAE call, in order.

    Only one chunk of pixels exists at a time, so memory does not grow with L. uint8 by
    truncation, as the official ``save_videos_grid`` does (``(x * 255).astype(uint8)``).
    """
    num_frames = latents.shape[2]
    for start in range(0, num_frames, batch):
        chunk = latents[0, :, start:start + batch].transpose(0, 1)  # (k, 4, h, w)
        pixels = vae.decode((chunk / LATENT_SCALE).to(dtype)).sample
        pixels = ((pixels.float() / 2 + 0.5).clamp(0, 1) * 255).to(torch.uint8)  # truncates
        for frame in pixels.permute(0, 2, 3, 1).cpu().numpy():
            yield frame

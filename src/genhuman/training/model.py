"""The trainable bundle (reference net + denoiser + condition encoder), its conditioning
dropouts and the v-prediction loss, on the inference networks and the inference scheduler.

The unconditional semantics are the pipeline's (:meth:`ReferenceVideoPipeline.predictor`):
a dropped reference means the row attends to its own tokens only, dropped audio is zero
tokens, a dropped control is zero features. Training on them is what makes CFG work.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import torch
from diffusers import DDIMScheduler
from torch import nn
from torch.utils.checkpoint import checkpoint

from genhuman.models import ConditionEncoder, EchoUNet3D, ReferenceUNet2D
from genhuman.models.unet import project_reference

AUDIO_PARAM = re.compile(r"transformer_blocks\.\d+\.(attn2|norm2)\.")  # EchoMimic's audio attention
MOTION_PARAM = "motion_modules."


@dataclass
class Batch:
    """One training batch. ``latents`` are clean VAE latents (times the scaling factor)."""

    reference: torch.Tensor  # (B, 4, h, w) the reference frame's latent
    latents: torch.Tensor  # (B, 4, F, h, w) the target frames' latents
    mask: torch.Tensor  # (B, C, 1, H, W) the control image (V1: the face mask, one per clip)
    audio: Optional[torch.Tensor] = None  # (B, F, tokens, dim) per-frame whisper tokens; None: stage 1

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.reference.to(device), self.latents.to(device), self.mask.to(device),
                     None if self.audio is None else self.audio.to(device))

    @property
    def size(self) -> int:
        return self.latents.shape[0]


@dataclass
class Keep:
    """Per-row flags: which conditions a row sees (False = the uncond input for that condition)."""

    reference: torch.Tensor
    audio: torch.Tensor
    control: torch.Tensor

    @classmethod
    def all(cls, batch: int, device: torch.device | str = "cpu") -> "Keep":
        ones = torch.ones(batch, dtype=torch.bool, device=device)
        return cls(ones, ones.clone(), ones.clone())

    @classmethod
    def none(cls, batch: int, device: torch.device | str = "cpu") -> "Keep":
        zeros = torch.zeros(batch, dtype=torch.bool, device=device)
        return cls(zeros, zeros.clone(), zeros.clone())

    @classmethod
    def cfg(cls, batch: int, device: torch.device | str = "cpu") -> "Keep":
        """``2 * batch`` rows: the unconditional half first, then the conditional half (the loop's order)."""
        flags = torch.cat([torch.zeros(batch, dtype=torch.bool), torch.ones(batch, dtype=torch.bool)]).to(device)
        return cls(flags, flags.clone(), flags.clone())

    @classmethod
    def sample(cls, batch: int, generator: torch.Generator, ref_ratio: float, audio_ratio: float,
               all_ratio: float) -> "Keep":
        """Independent drops, plus ``all_ratio`` rows that drop every condition (the CFG uncond)."""
        u = torch.rand(batch, 3, generator=generator)
        drop_all = u[:, 2] < all_ratio
        return cls(~((u[:, 0] < ref_ratio) | drop_all), ~((u[:, 1] < audio_ratio) | drop_all), ~drop_all)

    def to(self, device: torch.device) -> "Keep":
        return Keep(self.reference.to(device), self.audio.to(device), self.control.to(device))


class EchoMimicBundle(nn.Module):
    """The three trained networks of EchoMimic V1 as one module (one ``accelerator.prepare``)."""

    def __init__(self, reference_unet: ReferenceUNet2D, denoising_unet: EchoUNet3D,
                 condition_encoder: ConditionEncoder):
        super().__init__()
        self.reference_unet = reference_unet
        self.denoising_unet = denoising_unet
        self.condition_encoder = condition_encoder

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, batch: Batch, keep: Keep) -> torch.Tensor:
        """The denoiser's v-prediction for ``sample (B,4,F,h,w)`` at ``timestep (B,)``."""
        dtype = self.denoising_unet.conv_in.weight.dtype
        bank = self.reference_unet(batch.reference.to(dtype), 0)  # official: the reference net at t = 0
        kv = project_reference(self.denoising_unet, bank)
        cond = self.condition_encoder(batch.mask.to(dtype)) * keep.control.view(-1, 1, 1, 1, 1).to(dtype)
        audio = None
        if batch.audio is not None:
            audio = batch.audio.to(dtype) * keep.audio.view(-1, 1, 1, 1).to(dtype)
        return self.denoising_unet(sample.to(dtype), timestep, audio_tokens=audio, cond=cond, reference=kv,
                                   use_reference=keep.reference)


def select_trainable(bundle: EchoMimicBundle, rule: Callable[[str, str], bool]) -> list[str]:
    """Freeze everything, then unfreeze the parameters ``rule(network, name)`` picks; returns their names."""
    bundle.requires_grad_(False)
    chosen = []
    for network in ("reference_unet", "denoising_unet", "condition_encoder"):
        for name, param in getattr(bundle, network).named_parameters():
            if rule(network, name):
                param.requires_grad_(True)
                chosen.append(f"{network}.{name}")
    return chosen


def enable_gradient_checkpointing(bundle: EchoMimicBundle) -> int:
    """Recompute each resnet, spatial transformer and motion module in the backward pass
    (activation memory of one layer instead of all); returns how many layers were wrapped."""
    count = 0
    for network in (bundle.reference_unet, bundle.denoising_unet):
        for blocks in (network.down_blocks, [network.mid_block], network.up_blocks):
            for block in blocks:
                for layers in (block.resnets, block.attentions, getattr(block, "motion_modules", None)):
                    for layer in layers or []:
                        layer.forward = functools.partial(checkpoint, layer.forward, use_reentrant=False)
                        count += 1
    return count


# ---------------------------------------------------------------- the diffusion loss


def min_snr_weights(scheduler: DDIMScheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights for v-prediction: min(snr, gamma) / (snr + 1)."""
    alphas = scheduler.alphas_cumprod.to(timesteps.device)[timesteps]
    snr = alphas / (1 - alphas)
    return torch.minimum(snr, torch.full_like(snr, gamma)) / (snr + 1)


def diffusion_loss(bundle: nn.Module, scheduler: DDIMScheduler, batch: Batch, generator: torch.Generator, *,
                   keep: Keep, noise_offset: float = 0.0, snr_gamma: float = 0.0) -> torch.Tensor:
    """The v-prediction MSE at a random timestep, with the inference scheduler's own
    ``add_noise``/``get_velocity`` (zero-SNR betas). Randomness comes from ``generator`` only."""
    x0 = batch.latents.float()
    b = x0.shape[0]
    noise = torch.randn(x0.shape, generator=generator)
    if noise_offset:
        noise = noise + noise_offset * torch.randn((b, x0.shape[1], 1, 1, 1), generator=generator)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator)
    noise, t = noise.to(x0.device), t.to(x0.device)
    noisy = scheduler.add_noise(x0, noise, t)
    target = scheduler.get_velocity(x0, noise, t)
    pred = bundle(noisy, t, batch, keep.to(x0.device)).float()
    per_row = ((pred - target) ** 2).flatten(1).mean(1)
    if snr_gamma > 0:
        per_row = per_row * min_snr_weights(scheduler, t, snr_gamma)
    return per_row.mean()


def trainable_parameters(module: nn.Module) -> Iterable[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]

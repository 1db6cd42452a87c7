"""Classifier-free guidance."""

from __future__ import annotations

import torch


def uses_guidance(scale: float) -> bool:
    # Official: do_classifier_free_guidance = guidance_scale > 1.0; at 1.0 the result
    # would equal the conditional prediction anyway, so the uncond pass is skipped.
    return scale > 1.0


def apply_guidance(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    return uncond + scale * (cond - uncond)

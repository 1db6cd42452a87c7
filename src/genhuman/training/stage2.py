"""Stage 2 (video): clips of ``frames`` frames with their audio tokens.

Trained: the denoiser's motion modules and its audio attention (attn2 and its norm2), as
Hallo's stage 2 trains its ``motion_modules`` and ``audio_modules`` (spec hallo.md §1.7);
everything else stays as stage 1 left it. Dropouts: ``uncond_ref_ratio`` (no reference),
``uncond_audio_ratio`` (zero audio) and ``uncond_all_ratio`` (the CFG unconditional input).
"""

from __future__ import annotations

from genhuman.training.config import TrainConfig
from genhuman.training.model import AUDIO_PARAM, MOTION_PARAM


def trains(config: TrainConfig):
    def rule(network: str, name: str) -> bool:
        return network == "denoising_unet" and (MOTION_PARAM in name or bool(AUDIO_PARAM.search(name)))

    return rule


USES_AUDIO = True

"""Stage 1 (image): reference/target frame pairs, no motion and no audio.

Trained, as Hallo's stage 1 (spec hallo.md §1.7): the reference net, the denoiser's spatial
layers and the condition encoder (face locator); the VAE stays frozen. The motion modules and
the audio attention (attn2, norm2) are left for stage 2.
"""

from __future__ import annotations

from genhuman.training.config import TrainConfig
from genhuman.training.model import AUDIO_PARAM, MOTION_PARAM


def trains(config: TrainConfig):
    def rule(network: str, name: str) -> bool:
        if network == "reference_unet":
            return config.train_reference_net
        if network == "condition_encoder":
            return config.train_condition_encoder
        return MOTION_PARAM not in name and not AUDIO_PARAM.search(name)

    return rule


FRAMES = 1  # one target frame per sample
USES_AUDIO = False

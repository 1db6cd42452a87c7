"""The engine's own conditioning, stage by stage, against what the official pipeline built from the same inputs
(the harness's fixtures): the Fun-InP condition latents of the portrait, and the face-box token mask."""

from __future__ import annotations

import numpy as np
import torch

from genhuman.checkpoints.echomimic_v3 import wan_vae_from_official
from genhuman.engines.echomimic_v3 import condition_latents, face_token_mask

from .official import fixture, official_vae_weights

SIZE = 128  # the harness's H = W
FRAMES = 9  # its preview and Flash video length


def _harness_portrait() -> torch.Tensor:
    """The harness's reference image (rng 1), as the engine feeds it: [1, 3, H, W] in [-1, 1]."""
    pixels = np.random.default_rng(1).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div(127.5).sub(1)[None]


def test_condition_latents_equal_the_official_ones():
    """Preview's run (``get_image_to_video_latent3``). Flash's ``get_image_to_video_latent2`` builds the same
    single-image video and mask, but the harness's Flash run drew other VAE weights (after a larger transformer),
    which the fixtures do not regenerate."""
    vae = wan_vae_from_official(official_vae_weights())
    official = fixture("preview")[0]["condition"]
    ours = condition_latents(vae, _harness_portrait(), FRAMES)
    assert ours.shape == official.shape == (1, 20, 3, 16, 16)
    assert torch.equal(ours[:, :4], official[:, :4])  # the InP mask: frame 0 known, the rest generated
    scale = float(official[:, 4:].abs().max())
    assert float((ours[:, 4:] - official[:, 4:]).abs().max()) <= 1e-5 * max(1.0, scale)


def test_face_token_mask_equals_the_harness_mask():
    """The harness's box covers tokens x 3..5, y 2..5 of the 8x8 grid; a pixel box inside those tokens marks them."""
    official = fixture("preview")[0]["face_mask"].numpy()
    ours = face_token_mask((3 * 16 + 2.0, 2 * 16 + 1.0, 6 * 16 - 1.0, 6 * 16 - 3.0), SIZE, SIZE)
    assert ours.shape == official.shape == (1, 64)
    assert np.array_equal(ours.astype(np.float32), official.astype(np.float32))

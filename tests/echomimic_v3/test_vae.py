"""Wan2.1_VAE.pth as diffusers' AutoencoderKLWan (through diffusers' own key conversion)."""

from __future__ import annotations

import pytest
import torch

from genhuman.checkpoints.echomimic_v3 import WAN_LATENTS_MEAN, WAN_LATENTS_STD, wan_vae_from_official
from genhuman.errors import InputError

from .official import fixture, official_vae_weights


def test_decode_matches_the_official_video():
    vae = wan_vae_from_official(official_vae_weights())
    data, _ = fixture("preview")
    mean = torch.tensor(WAN_LATENTS_MEAN).view(1, 16, 1, 1, 1)
    std = torch.tensor(WAN_LATENTS_STD).view(1, 16, 1, 1, 1)
    with torch.no_grad():  # the official wrapper de-normalises, decodes, clamps; the pipeline maps to [0, 1]
        video = vae.decode(data["final_latents"] * std + mean).sample.clamp(-1, 1) / 2 + 0.5
    assert video.shape == (1, 3, 9, 128, 128)
    got = video.clamp(0, 1).flatten()[data["video_index"]]
    assert float((got - data["video_samples"]).abs().max()) <= 1e-5


def test_vae_refuses_other_files():
    state = official_vae_weights()
    del state["decoder.head.2.weight"]
    with pytest.raises(InputError, match="does not fit the Wan2.1 VAE: 1 missing"):
        wan_vae_from_official(state)
    with pytest.raises(InputError, match="not a Wan2.1 VAE"):
        wan_vae_from_official({"x": torch.zeros(1)})

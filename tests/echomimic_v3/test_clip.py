"""Wan's CLIP file (XLM-R ViT-H/14) as transformers' CLIPVisionModel: the official penultimate-block tokens."""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from genhuman.checkpoints.echomimic_v3 import CLIP_MEAN, CLIP_STD, build_clip_vision

from .official import fixture, official_clip_weights


def test_penultimate_tokens_match_the_official_clip():
    model = build_clip_vision(official_clip_weights(), num_heads=2)
    # the harness's reference image; the official pipeline: [-1, 1], bicubic to the CLIP size, back to [0, 1], normalise
    image = np.random.default_rng(1).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)[None] * 2 - 1
    x = F.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False) * 0.5 + 0.5
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        tokens = model(pixel_values=x, output_hidden_states=True).hidden_states[-2]
    expected = fixture("preview")[0]["clip"]
    assert tokens.shape == expected.shape == (1, 257, 64)
    assert float((tokens - expected).abs().max()) <= 2e-6 * max(float(expected.abs().max()), 1.0)

"""Tiny random EchoMimic networks shared by the model tests."""

import pytest
import torch

from genhuman.models import (ConditionEncoder, ConditionEncoderConfig, EchoUNet3D, ReferenceUNet2D,
                             UNet3DConfig, UNetConfig)


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial weights everywhere (no zero-initialized layer may hide a bug)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.2 if p.ndim > 1 else 0.05
            offset = 1.0 if "norm" in name and name.endswith("weight") else 0.0  # norm gains near 1
            p.copy_(torch.randn(p.shape, generator=g) * scale + offset)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    ref = randomize(ReferenceUNet2D(UNetConfig.tiny()), 1)
    den = randomize(EchoUNet3D(UNet3DConfig.tiny()), 2)
    enc = randomize(ConditionEncoder(ConditionEncoderConfig.tiny()), 3)
    return ref, den, enc

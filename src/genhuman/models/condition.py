"""FaceLocator (V1) / PoseEncoder (V2): one class, a per-frame conv stack with stride 8."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genhuman.models.config import ConditionEncoderConfig
from genhuman.models.pretrained import PretrainedMixin


class ConditionEncoder(nn.Module, PretrainedMixin):
    """``[b, C_in, f, H, W]`` mask/pose images -> ``[b, C0, f, H/8, W/8]`` features for conv_in's output."""

    config_class = ConditionEncoderConfig

    def __init__(self, config: ConditionEncoderConfig):
        super().__init__()
        self.config = config
        c = config.block_out_channels
        self.conv_in = nn.Conv2d(config.conditioning_channels, c[0], 3, padding=1)
        pairs = [(c[0], c[0], 1), (c[0], c[1], 2), (c[1], c[1], 1), (c[1], c[2], 2), (c[2], c[2], 1), (c[2], c[3], 2)]
        self.blocks = nn.ModuleList([nn.Conv2d(i, o, 3, padding=1, stride=s) for i, o, s in pairs])
        self.conv_out = nn.Conv2d(c[3], config.embedding_channels, 3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = images.shape
        x = images.transpose(1, 2).reshape(b * f, c, h, w).to(self.conv_in.weight.dtype)
        x = F.silu(self.conv_in(x))
        for block in self.blocks:
            x = F.silu(block(x))
        x = self.conv_out(x)
        return x.view(b, f, *x.shape[1:]).transpose(1, 2)

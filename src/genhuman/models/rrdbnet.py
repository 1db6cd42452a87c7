"""Real-ESRGAN's RRDBNet (ESRGAN's residual-in-residual dense blocks), for Hallo2's background upscale.

Parameter names are those of basicsr's ``RRDBNet`` checkpoints (``RealESRGAN_x2plus.pth['params_ema']``:
``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1/2``, ``conv_hr``, ``conv_last``),
so the released file loads strictly. The x2 and x1 models see the image pixel-unshuffled (4x / 16x the
channels); every model ends with two nearest x2 upsamplings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RRDBConfig:
    scale: int = 2  # 1, 2 or 4 (the output is `scale` times the input)
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    num_in_ch: int = 3
    num_out_ch: int = 3

    @property
    def unshuffle(self) -> int:
        """Pixel-unshuffle factor before the first conv: the network itself always upsamples x4."""
        return {1: 4, 2: 2, 4: 1}[self.scale]


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1)


class ResidualDenseBlock(nn.Module):
    def __init__(self, feat: int, grow: int):
        super().__init__()
        self.conv1 = _conv(feat, grow)
        self.conv2 = _conv(feat + grow, grow)
        self.conv3 = _conv(feat + 2 * grow, grow)
        self.conv4 = _conv(feat + 3 * grow, grow)
        self.conv5 = _conv(feat + 4 * grow, feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return self.conv5(torch.cat(features, 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, feat: int, grow: int):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(feat, grow)
        self.rdb2 = ResidualDenseBlock(feat, grow)
        self.rdb3 = ResidualDenseBlock(feat, grow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    def __init__(self, config: RRDBConfig = RRDBConfig()):
        super().__init__()
        if config.scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4, got {config.scale}")
        self.config = config
        feat = config.num_feat
        self.conv_first = _conv(config.num_in_ch * config.unshuffle ** 2, feat)
        self.body = nn.Sequential(*[RRDB(feat, config.num_grow_ch) for _ in range(config.num_block)])
        self.conv_body = _conv(feat, feat)
        self.conv_up1 = _conv(feat, feat)
        self.conv_up2 = _conv(feat, feat)
        self.conv_hr = _conv(feat, feat)
        self.conv_last = _conv(feat, config.num_out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (b, 3, h, w) in [0, 1] -> (b, 3, h * scale, w * scale); h, w multiples of the unshuffle."""
        feat = F.pixel_unshuffle(x, self.config.unshuffle) if self.config.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))

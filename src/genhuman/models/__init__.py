"""EchoMimic networks on diffusers building blocks: ReferenceNet, denoising UNet3D, condition encoder.

See docs/models.md for the API, the key layout and the speed design.
"""

from genhuman.models.attention import ReferenceBank, ReferenceKV
from genhuman.models.condition import ConditionEncoder
from genhuman.models.config import ConditionEncoderConfig, UNet3DConfig, UNetConfig
from genhuman.models.unet import EchoUNet3D, ReferenceUNet2D

__all__ = ["ConditionEncoder", "ConditionEncoderConfig", "EchoUNet3D", "ReferenceBank", "ReferenceKV",
           "ReferenceUNet2D", "UNet3DConfig", "UNetConfig"]

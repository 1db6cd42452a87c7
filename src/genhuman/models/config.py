"""Typed configs of the EchoMimic networks (SD-1.5 geometry by default).

``sd15()`` is the official geometry (spec echomimic.md §2.3 + inference_v2.yaml);
``tiny()`` keeps the same structure at a size that runs in milliseconds on CPU (tests).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T", bound="_DictConfig")


class _DictConfig:
    """``to_dict``/``from_dict`` for flat dataclasses whose tuple fields travel as JSON lists."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names - {"_class_name"})
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown config keys {unknown}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**values)


@dataclass
class UNetConfig(_DictConfig):
    """The 2D UNet of the ReferenceNet (and the spatial part of the denoiser)."""

    in_channels: int = 4
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    # One flag per down block: does it have transformer blocks? Up blocks mirror it.
    attention_blocks: tuple[bool, ...] = (True, True, True, False)
    layers_per_block: int = 2
    attention_heads: int = 8  # diffusers' "attention_head_dim: 8" really means 8 heads
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    flip_sin_to_cos: bool = True
    freq_shift: int = 0

    def __post_init__(self) -> None:
        if len(self.attention_blocks) != len(self.block_out_channels):
            raise ValueError("attention_blocks needs one flag per entry of block_out_channels")

    @property
    def time_embed_dim(self) -> int:
        return self.block_out_channels[0] * 4

    @classmethod
    def sd15(cls: type[T], **overrides: Any) -> T:
        return cls(**overrides)

    @classmethod
    def tiny(cls: type[T], **overrides: Any) -> T:
        values: dict[str, Any] = dict(block_out_channels=(32, 64), attention_blocks=(True, False),
                                      layers_per_block=1, attention_heads=2, norm_num_groups=8)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_diffusers_config(cls: type[T], data: dict[str, Any], **overrides: Any) -> T:
        """From a diffusers ``UNet2DConditionModel`` config.json (sd-image-variations' unet)."""
        heads = data.get("attention_head_dim", 8)
        values: dict[str, Any] = dict(
            in_channels=data.get("in_channels", 4),
            block_out_channels=tuple(data["block_out_channels"]),
            attention_blocks=tuple("CrossAttn" in t for t in data["down_block_types"]),
            layers_per_block=data.get("layers_per_block", 2),
            attention_heads=heads if isinstance(heads, int) else heads[0],
            norm_num_groups=data.get("norm_num_groups", 32),
            norm_eps=data.get("norm_eps", 1e-5),
            flip_sin_to_cos=data.get("flip_sin_to_cos", True),
            freq_shift=data.get("freq_shift", 0),
        )
        values.update(overrides)
        return cls(**values)

    def to_diffusers_config(self) -> dict[str, Any]:
        """The diffusers-style unet/config.json the official layout ships (inverse of the above)."""
        return {
            "_class_name": "UNet2DConditionModel",
            "in_channels": self.in_channels, "out_channels": 4,
            "block_out_channels": list(self.block_out_channels),
            "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in self.attention_blocks],
            "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D"
                               for a in reversed(self.attention_blocks)],
            "layers_per_block": self.layers_per_block, "attention_head_dim": self.attention_heads,
            "norm_num_groups": self.norm_num_groups, "norm_eps": self.norm_eps,
            "flip_sin_to_cos": self.flip_sin_to_cos, "freq_shift": self.freq_shift,
            "cross_attention_dim": 768, "act_fn": "silu", "sample_size": 64,
        }


@dataclass
class UNet3DConfig(UNetConfig):
    """The denoising UNet: the 2D geometry plus audio cross-attention and motion modules."""

    out_channels: int = 4
    cross_attention_dim: int = 384  # whisper-tiny width
    audio_scale: float = 3.0  # official hard-coded audio_feature_ratio
    motion_heads: int = 8
    motion_max_len: int = 32
    motion_mid_block: bool = True


@dataclass
class ConditionEncoderConfig(_DictConfig):
    """FaceLocator (V1, 1-channel mask or 3-channel landmarks) / PoseEncoder (V2, 3 channels)."""

    conditioning_channels: int = 1
    embedding_channels: int = 320
    block_out_channels: tuple[int, int, int, int] = field(default=(16, 32, 96, 256))

    @classmethod
    def sd15(cls, **overrides: Any) -> "ConditionEncoderConfig":
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> "ConditionEncoderConfig":
        values: dict[str, Any] = dict(embedding_channels=32, block_out_channels=(4, 8, 8, 16))
        values.update(overrides)
        return cls(**values)

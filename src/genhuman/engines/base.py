"""The engine protocol: one interface for every way of animating a portrait."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, Union

import numpy as np

from genhuman.progress import CancelFn, ProgressFn

ImageInput = Union[str, Path, np.ndarray]  # a path, or an HxWx3 uint8 RGB array
AudioInput = Union[str, Path, np.ndarray]  # a path, or 16 kHz mono float32 samples


@dataclass
class EngineOptions:
    """Load-time options: chosen once when the engine is built."""

    weights: Optional[Path] = None  # weights folder (diffusion engines)
    device: Optional[str] = None  # "cpu", "cuda", ...; None = best available
    dtype: Optional[str] = None  # "float32", "float16", "bfloat16"; None = engine default
    accelerated: bool = False  # EchoMimic acc weights: 6 steps, no CFG
    compile: bool = False  # torch.compile the denoiser
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnimateRequest:
    """Per-video options. Engines ignore the ones they do not use."""

    text: Optional[str] = None  # transcript of the speech (lite: forced alignment)
    fps: int = 25
    seed: Optional[int] = None  # None = the engine's default (the official seed for diffusion engines)
    max_size: Optional[int] = None  # cap on the longer output side, pixels
    face_index: int = 0  # 0 = largest face, 1 = next largest, ...
    steps: Optional[int] = None  # diffusion steps (None = engine default)
    cfg: Optional[float] = None  # guidance scale (None = engine default)
    pose: Optional[Path] = None  # pose folder or driving video (V1 pose / V2)
    paste_back: bool = False  # paste the generated face crop back into the portrait
    width: Optional[int] = None  # output size for engines that generate at a fixed size
    height: Optional[int] = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnimateResult:
    output: Path
    frames: int
    fps: float
    width: int
    height: int
    seconds: float  # duration of the video
    timings: dict[str, float] = field(default_factory=dict)  # stage -> wall seconds


class Engine(Protocol):
    name: str

    def __init__(self, options: EngineOptions) -> None: ...

    def animate(
        self,
        image: ImageInput,
        audio: AudioInput,
        output: Union[str, Path],
        request: AnimateRequest,
        progress: Optional[ProgressFn] = None,
        should_cancel: Optional[CancelFn] = None,
    ) -> AnimateResult:
        """Write an MP4 (H.264 + AAC) to ``output``; nothing is left there on failure."""
        ...

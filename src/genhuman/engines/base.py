"""The engine protocol: one interface for every way of animating a portrait.

Every engine offers the same four calls, and ``animate`` is the other three in a row:
``validate(request)`` (one-line :class:`~genhuman.errors.InputError` for a value it cannot
honour), ``prepare_avatar(image)`` (everything that depends only on the portrait, done once),
``stream(avatar, audio_chunks, request)`` (frames while audio is still arriving) and
``animate(image, audio, output, request)`` (prepare + stream + write the MP4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Protocol, Union

import numpy as np

from genhuman.engines.avatar import Avatar
from genhuman.progress import CancelFn, ProgressFn
from genhuman.request import AnimateRequest, EngineOptions

ImageInput = Union[str, Path, np.ndarray]  # a path, or an HxWx3 uint8 RGB array
AudioInput = Union[str, Path, np.ndarray]  # a path, or 16 kHz mono float32 samples
AudioChunks = Iterable[np.ndarray]  # 16 kHz mono float32 pieces of any length, in order


@dataclass
class Frame:
    """One output frame: ``image`` HxWx3 uint8 RGB shown at ``index / fps`` seconds."""

    index: int
    image: np.ndarray
    fps: float

    @property
    def time(self) -> float:
        return self.index / self.fps


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

    def validate(self, request: AnimateRequest) -> AnimateRequest:
        """The request with this engine's defaults filled in; InputError for what it cannot do."""
        ...

    def prepare_avatar(self, image: ImageInput, face_index: int = 0, max_size: Optional[int] = None) -> Avatar:
        ...

    def stream(self, avatar: Avatar, audio_chunks: AudioChunks, request: AnimateRequest,
               progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
               ) -> Iterator[Frame]:
        ...

    def animate(
        self,
        image: Union[ImageInput, Avatar],
        audio: AudioInput,
        output: Union[str, Path],
        request: AnimateRequest,
        progress: Optional[ProgressFn] = None,
        should_cancel: Optional[CancelFn] = None,
    ) -> AnimateResult:
        """Write an MP4 (H.264 + AAC) to ``output``; nothing is left there on failure."""
        ...


__all__ = ["AnimateRequest", "AnimateResult", "AudioChunks", "AudioInput", "Avatar", "Engine", "EngineOptions",
           "Frame", "ImageInput"]

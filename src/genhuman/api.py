"""The Python API: ``genhuman.animate(image, audio, "out.mp4")``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from genhuman.engines import load_engine
from genhuman.engines.base import AnimateResult, AudioInput, ImageInput
from genhuman.request import AnimateRequest, EngineOptions
from genhuman.progress import CancelFn, ProgressFn


def animate(
    image: ImageInput,
    audio: AudioInput,
    output: Union[str, Path],
    *,
    engine: str = "lite",
    weights: Optional[Union[str, Path]] = None,
    device: Optional[str] = None,
    accelerated: bool = False,
    progress: Optional[ProgressFn] = None,
    should_cancel: Optional[CancelFn] = None,
    **request_options,
) -> AnimateResult:
    """Animate ``image`` with ``audio`` into the MP4 ``output``.

    ``request_options`` are the fields of :class:`AnimateRequest` (text, fps, seed,
    max_size, face_index, steps, cfg, pose, paste_back, ...). For many videos with
    one engine, build it once with :func:`genhuman.engines.load_engine` instead.
    """
    options = EngineOptions(weights=Path(weights) if weights else None, device=device,
                            accelerated=accelerated)
    eng = load_engine(engine, options)
    request = AnimateRequest(**request_options)
    return eng.animate(image, audio, output, request, progress=progress, should_cancel=should_cancel)

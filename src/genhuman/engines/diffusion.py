"""What the diffusion engines share: the weights folder, device and dtype, reading the
inputs, and the result. Family engines (EchoMimic, EchoMimic V2, ...) subclass
:class:`DiffusionEngine` and add their own loading and settings."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Union

import numpy as np
import torch

from genhuman.engines.base import AnimateRequest, AnimateResult, AudioInput, EngineOptions, ImageInput
from genhuman.errors import InputError, MissingWeightsError

log = logging.getLogger(__name__)

OFFICIAL_FPS = 24  # every official EchoMimic script passes 24 (the pipeline default 25 is unused)
GENERIC_FPS = AnimateRequest.fps  # a request left at the generic default gets the official fps
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda requested but no CUDA GPU is available")
    return device


def official_fps(request: AnimateRequest) -> int:
    return OFFICIAL_FPS if request.fps == GENERIC_FPS else request.fps


class DiffusionEngine:
    """Checks the weights folder and resolves device/dtype (fp16 on GPU, fp32 on CPU)."""

    name = "diffusion"
    weights_description = "the official weights folder or a converted one"

    def __init__(self, options: EngineOptions):
        if options.weights is None:
            raise MissingWeightsError(
                f"the {self.name} engine needs weights: pass --weights DIR ({self.weights_description}); "
                f"get them with `genhuman download {self.name}`")
        self.weights = Path(options.weights)
        if not self.weights.is_dir():
            raise MissingWeightsError(
                f"weights folder {str(self.weights)!r} does not exist; get the weights with "
                f"`genhuman download {self.name} --dir {self.weights}`")
        if options.dtype is not None and options.dtype not in DTYPES:
            raise InputError(f"unknown dtype {options.dtype!r}; choose one of: {', '.join(DTYPES)}")
        self.options = options
        self.device = resolve_device(options.device)
        self.dtype = DTYPES[options.dtype] if options.dtype else (
            torch.float16 if self.device.type == "cuda" else torch.float32)

    def build_pipeline(self, variant, family: str, pipeline_class, wrong_family_hint: str):
        """Load the weights of ``variant`` and wrap them in ``pipeline_class``; refuse a
        folder that holds another family's weights. Returns (components, pipeline)."""
        from genhuman.checkpoints import load_echomimic

        started = time.perf_counter()
        components = load_echomimic(self.weights, variant, dtype=self.dtype)
        if components.variant.family != family:
            raise InputError(f"{str(self.weights)!r} holds {components.variant.family} weights; {wrong_family_hint}")
        pipeline = pipeline_class(components.vae, components.reference_unet, components.denoising_unet,
                                  components.condition_encoder, components.audio_encoder,
                                  device=self.device, dtype=self.dtype, compile=self.options.compile)
        log.info("loaded %s %s (%s layout) on %s/%s in %.1f s", family, components.variant.name,
                 components.layout, self.device, self.dtype, time.perf_counter() - started)
        return components, pipeline

    @staticmethod
    def read_inputs(image: ImageInput, audio: AudioInput, output: Union[str, Path],
                    request: AnimateRequest) -> tuple[Path, np.ndarray, np.ndarray]:
        """Validate before any network runs: (output path, RGB portrait, 16 kHz speech)."""
        from genhuman.media import is_silent, load_audio, load_image, resize_max

        output = Path(output)
        if output.suffix.lower() != ".mp4":
            raise InputError(f"output must be an .mp4 file, got {str(output)!r}")
        portrait = resize_max(load_image(image), request.max_size)
        wave = load_audio(audio)
        if is_silent(wave):
            raise InputError("audio is silent: no speech found")
        return output, portrait, wave

    @staticmethod
    def result(output: Path, pipeline_result, started: float) -> AnimateResult:
        timings = dict(pipeline_result.timings, total=time.perf_counter() - started)
        return AnimateResult(output=output, frames=pipeline_result.frames, fps=pipeline_result.fps,
                             width=pipeline_result.width, height=pipeline_result.height,
                             seconds=pipeline_result.frames / pipeline_result.fps, timings=timings)

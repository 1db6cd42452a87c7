"""The ``echomimic`` engine: EchoMimic V1 (audio-driven, landmark-pose, accelerated) on the
official weights, through :class:`genhuman.pipelines.EchoMimicPipeline`.

Which weights: the official layout holds several variants; the engine picks ``audio`` or
``pose`` (when the request has a pose folder or driving video), with ``_acc`` when
``accelerated``. A converted folder holds one variant, used as it is. The networks are
loaded on the first request that needs them and kept for the next requests (one variant at a time).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union


from genhuman.engines.base import AnimateRequest, AnimateResult, AudioInput, EngineOptions, ImageInput
from genhuman.engines.diffusion import DiffusionEngine, official_fps
from genhuman.errors import InputError
from genhuman.progress import CancelFn, ProgressFn, Stage, report

if TYPE_CHECKING:
    from genhuman.checkpoints.layout import Variant
    from genhuman.pipelines import EchoMimicSettings

log = logging.getLogger(__name__)

DEFAULT_SIZE = 512
OFFICIAL_SEED = 420  # every official V1 inference script's --seed default


class EchoMimicEngine(DiffusionEngine):
    name = "echomimic"
    weights_description = "the official EchoMimic folder or a converted one"

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        self._loaded: Optional[tuple[Optional[str], object, object]] = None  # (asked variant, components, pipeline)
        from genhuman.checkpoints import is_converted

        self._converted = is_converted(self.weights)

    def _variant(self, pose: bool) -> Optional[str]:
        if self._converted:
            return "acc" if self.options.accelerated and not pose else None  # the manifest decides
        if pose:
            return "pose_acc" if self.options.accelerated else "pose"
        return "acc" if self.options.accelerated else "audio"

    def _load(self, variant: Optional[str]):
        if self._loaded is not None and self._loaded[0] == variant:
            return self._loaded[1], self._loaded[2]
        from genhuman.pipelines import EchoMimicPipeline

        self._loaded = None  # free the previous variant before loading the next
        components, pipeline = self.build_pipeline(variant, "echomimic", EchoMimicPipeline,
                                                   "use --engine echomimic_v2")
        self._loaded = (variant, components, pipeline)
        return components, pipeline

    def animate(self, image: ImageInput, audio: AudioInput, output: Union[str, Path], request: AnimateRequest,
                progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None) -> AnimateResult:
        started = time.perf_counter()
        output, portrait, wave = self.read_inputs(image, audio, output, request)
        size = _square_size(request)
        components, pipeline = self._load(self._variant(pose=request.pose is not None))
        variant = components.variant
        if request.pose is not None and variant.condition_channels != 3:
            raise InputError(f"a pose input needs the landmark-pose weights, but {str(self.weights)!r} "
                             f"holds the '{variant.name}' variant")
        if request.pose is None and variant.condition_channels == 3:
            raise InputError(f"the '{variant.name}' weights are driven by landmarks: give --pose (a folder "
                             "of landmark .npy files or a driving video)")
        report(progress, 0.02, "weights ready")
        settings = settings_for(request, variant, size)
        landmarks = _landmark_source(request.pose, size) if request.pose is not None else None
        result = pipeline(portrait, wave, output, settings, landmarks=landmarks,
                          progress=Stage(progress, 0.02, 1.0), should_cancel=should_cancel)
        return self.result(output, result, started)


def settings_for(request: AnimateRequest, variant: "Variant", size: int) -> "EchoMimicSettings":
    """Pipeline settings: the request's values, else the official ones for this variant
    (30 steps / cfg 2.5, or 6 steps / cfg 1.0 for the acc weights; fps 24; shift 2 for the
    audio model and 3 for the pose models; noise clamped to +-1.5 for the audio models only:
    neither official pose pipeline, acc or not, clamps it).
    ``request.extra`` may set the tuning knobs."""
    from genhuman.pipelines import EchoMimicSettings
    from genhuman.sampling import WindowSchedule

    unknown = sorted(set(request.extra) - _EXTRA_SETTINGS)
    if unknown:
        raise InputError(f"unknown echomimic options: {', '.join(unknown)}")
    if request.steps is not None and not 1 <= request.steps <= 1000:
        raise InputError(f"steps must be between 1 and 1000, got {request.steps}")
    if request.cfg is not None and not 0 <= request.cfg <= 50:
        raise InputError(f"cfg must be between 0 and 50, got {request.cfg}")
    return EchoMimicSettings(
        size=size,
        steps=request.steps or (6 if variant.accelerated else 30),
        guidance_scale=request.cfg if request.cfg is not None else (1.0 if variant.accelerated else 2.5),
        fps=official_fps(request),
        seed=OFFICIAL_SEED if request.seed is None else request.seed,
        face_index=request.face_index,
        paste_back=request.paste_back,
        context=WindowSchedule(12, 3, 3 if variant.condition_channels == 3 else 2),
        clamp_noise=None if variant.condition_channels == 3 else 1.5,  # the pose pipelines skip it
        **request.extra,
    )


_EXTRA_SETTINGS = {"window_batch", "decode_batch", "crop_dilation", "mask_dilation", "max_frames"}


def _square_size(request: AnimateRequest) -> int:
    width, height = request.width, request.height
    if width and height and width != height:
        raise InputError(f"EchoMimic generates square videos; got --width {width} and --height {height}")
    size = width or height or DEFAULT_SIZE
    if size % 64:
        raise InputError(f"the EchoMimic size must be a multiple of 64, got {size}")
    return size


def _landmark_source(pose: Path, size: int):
    """A pose folder (official: landmarks in the 512 crop) or a driving video."""
    from genhuman.pipelines.landmarks import landmarks_from_video, load_landmark_folder

    pose = Path(pose)
    if pose.is_dir():
        return load_landmark_folder(pose) * (size / 512.0)
    if pose.is_file():
        return lambda reference, frames: landmarks_from_video(pose, reference, frames)
    raise InputError(f"pose input not found: {str(pose)!r}")

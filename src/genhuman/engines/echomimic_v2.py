"""The ``echomimic_v2`` engine: EchoMimic V2 half-body animation on the official weights,
through :class:`genhuman.pipelines.echomimic_v2.EchoMimicV2Pipeline`.

Pose input (``request.pose``): an official pose folder (``{i}.npy``), a driving video
(MediaPipe pose + hands, aligned like the official notebook), or nothing (hand motion is
generated from the speech). Weights: the official layout's ``v2`` variant, or ``v2_acc``
(6 steps, no CFG) with ``accelerated``; a converted folder is used as it is.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional, Union

from genhuman.engines.base import AnimateRequest, AnimateResult, AudioInput, EngineOptions, ImageInput
from genhuman.engines.diffusion import DiffusionEngine, official_fps
from genhuman.errors import InputError
from genhuman.progress import CancelFn, ProgressFn, Stage, report

log = logging.getLogger(__name__)

DEFAULT_SIZE = 768  # the V2 training and official inference size
OFFICIAL_SEED, OFFICIAL_SEED_ACC = 3407, 420  # --seed defaults of the official infer.py / infer_acc.py
_EXTRA_SETTINGS = {"window_batch", "decode_batch", "max_frames", "align", "retarget", "pose_extension",
                   "cached_pose_frames"}


class EchoMimicV2Engine(DiffusionEngine):
    name = "echomimic_v2"
    weights_description = "the official EchoMimicV2 folder or a converted one"

    def __init__(self, options: EngineOptions):
        super().__init__(options)
        from genhuman.checkpoints import is_converted

        self._variant = None if is_converted(self.weights) else ("v2_acc" if options.accelerated else "v2")
        self._loaded = None  # (components, pipeline), loaded on the first request

    def _load(self):
        if self._loaded is not None:
            return self._loaded
        from genhuman.pipelines.echomimic_v2 import EchoMimicV2Pipeline

        self._loaded = self.build_pipeline(self._variant, "echomimic_v2", EchoMimicV2Pipeline,
                                           "use --engine echomimic")
        return self._loaded

    def animate(self, image: ImageInput, audio: AudioInput, output: Union[str, Path], request: AnimateRequest,
                progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None) -> AnimateResult:
        started = time.perf_counter()
        output, photo, wave = self.read_inputs(image, audio, output, request)
        components, pipeline = self._load()
        settings = settings_for(request, components.variant)
        report(progress, 0.02, "weights ready")
        pose = None
        if request.pose is not None:
            frames = int(len(wave) / 16000 * settings.fps) + 1
            pose = load_pose_input(Path(request.pose), settings.height, settings.width, frames,
                                   Stage(progress, 0.02, 0.1), should_cancel)
        result = pipeline(photo, wave, output, settings, pose=pose, progress=Stage(progress, 0.1, 1.0),
                          should_cancel=should_cancel)
        return self.result(output, result, started)


def settings_for(request: AnimateRequest, variant):
    """The request's values, else the official ones: 768x768, 30 steps / cfg 2.5 (6 / 1.0 with
    the acc weights), fps 24, windows 12/3 shifted by 3 per step. ``request.extra`` may set
    the tuning knobs (window_batch, decode_batch, max_frames, align, retarget, pose_extension)."""
    from genhuman.pipelines.echomimic_v2 import EchoMimicV2Settings

    unknown = sorted(set(request.extra) - _EXTRA_SETTINGS)
    if unknown:
        raise InputError(f"unknown echomimic_v2 options: {', '.join(unknown)}")
    width = request.width or request.height or DEFAULT_SIZE
    height = request.height or request.width or DEFAULT_SIZE
    return EchoMimicV2Settings(
        width=width, height=height,
        steps=request.steps or (6 if variant.accelerated else 30),
        guidance_scale=request.cfg if request.cfg is not None else (1.0 if variant.accelerated else 2.5),
        fps=official_fps(request),
        seed=(OFFICIAL_SEED_ACC if variant.accelerated else OFFICIAL_SEED) if request.seed is None else request.seed,
        **request.extra,
    )


def load_pose_input(path: Path, height: int, width: int, max_frames: int,
                    progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None):
    """An official pose folder as it is, or a driving video's pose aligned to a (height, width) crop."""
    from genhuman.pose.align import crop_pose, pose_crop
    from genhuman.pose.extract import extract_video_pose
    from genhuman.pose.format import load_pose_dir

    if path.is_dir():
        return load_pose_dir(path)
    if not path.is_file():
        raise InputError(f"pose input not found: {str(path)!r}")
    pose, (video_h, video_w) = extract_video_pose(path, max_frames=max_frames, progress=progress,
                                                  should_cancel=should_cancel)
    box = pose_crop(pose, video_h, video_w, aspect=width / height)
    return crop_pose(pose, box, video_h, video_w, height, width)

"""The ``echomimic_v2`` engine: EchoMimic V2 half-body animation on the official weights,
through :class:`genhuman.pipelines.EchoMimicV2Pipeline`.

Pose input (``request.pose``): an official pose folder (``{i}.npy``), a driving video
(MediaPipe pose + hands, aligned like the official notebook), or nothing (hand motion is
generated from the speech rhythm; in the streaming schedule, where the speech is not known
in advance, from a generated idle track). Weights: the official layout's ``v2`` variant, or
``v2_acc`` (6 steps, no CFG) with ``accelerated``; a converted folder is used as it is.

The avatar holds the reference aligned like the training crops (the demo notebook's crop)
and the reference's own pose, which a given pose is retargeted to and a generated one
starts from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np

from genhuman.engines.avatar import Avatar
from genhuman.engines.diffusion import TUNING, DiffusionEngine, Loaded, Settings
from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE
from genhuman.pipelines import EchoMimicV2Pipeline
from genhuman.pose.format import PoseSequence
from genhuman.progress import CancelFn, ProgressFn
from genhuman.request import AnimateRequest

log = logging.getLogger(__name__)

DEFAULT_SIZE = 768  # the V2 training and official inference size
OFFICIAL_SEED, OFFICIAL_SEED_ACC = 3407, 420  # --seed defaults of the official infer.py / infer_acc.py
STREAMING_POSE_SECONDS = 10.0  # generated idle track, ping-ponged, when the speech is not known ahead
_POSE_FIELDS = ("body", "body_score", "hands", "hands_score", "face", "face_score")


class EchoMimicV2Engine(DiffusionEngine):
    name = "echomimic_v2"
    family = "echomimic_v2"
    weights_description = "the official EchoMimicV2 folder or a converted one"
    pipeline_class = EchoMimicV2Pipeline
    other_family_hint = "use --engine echomimic"
    tuning = frozenset(TUNING | {"align", "retarget", "pose_extension", "cached_pose_frames"})

    def variant_for(self, request: AnimateRequest) -> Optional[str]:
        if self._converted:
            return None
        return "v2_acc" if self.options.accelerated else "v2"

    def default_size(self) -> tuple[int, int]:
        return DEFAULT_SIZE, DEFAULT_SIZE

    def official_seed(self, variant) -> int:
        return OFFICIAL_SEED_ACC if variant.accelerated else OFFICIAL_SEED

    def check_variant(self, request: AnimateRequest, variant) -> None:
        if variant.condition_channels != 3:
            raise InputError("these weights have no 3-channel pose encoder; they are not EchoMimic V2 weights")

    def frame_counts(self, official: int, wave: np.ndarray, request: Settings) -> tuple[int, int]:
        # official infer.py: L = min(L, int(audio duration x fps), ...), truncated
        frames = min(official, max(1, int(len(wave) / SAMPLE_RATE * request.fps)))
        return frames, frames

    def frame_reference(self, portrait: np.ndarray, request: Settings, face_index: int,
                        ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
        from genhuman.pose.align import align_reference

        aligned = align_reference(portrait, request.height, request.width, align=request.extra.get("align", True))
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {}
        if aligned.pose is not None:
            for name in _POSE_FIELDS:
                arrays[f"pose.{name}"] = np.asarray(getattr(aligned.pose, name), np.float64)
            meta["pose_draw_params"] = list(aligned.pose.draw_params)
            meta["pose_fps"] = float(aligned.pose.fps)
        return aligned.image, arrays, meta

    @staticmethod
    def reference_pose(avatar: Avatar) -> Optional[PoseSequence]:
        if "pose.body" not in avatar.arrays:
            return None
        body, body_score, hands, hands_score, face, face_score = (avatar.arrays[f"pose.{n}"] for n in _POSE_FIELDS)
        return PoseSequence(body, body_score, hands, hands_score, face, face_score, fps=avatar.meta["pose_fps"],
                            draw_params=tuple(avatar.meta["pose_draw_params"]))

    def control(self, avatar: Avatar, request: Settings, loaded: Loaded, num_frames: Optional[int],
                wave: Optional[np.ndarray], progress: Optional[ProgressFn], should_cancel: Optional[CancelFn]):
        pipeline = loaded.pipeline
        assert isinstance(pipeline, EchoMimicV2Pipeline)
        pose = None
        if request.pose is not None:
            frames = num_frames or int(request.extra.get("max_frames") or 30 * request.fps)
            pose = load_pose_input(Path(request.pose), request.height, request.width, frames + 1,
                                   progress, should_cancel)
        track = self.pose_track(pose, self.reference_pose(avatar), wave, num_frames, request)
        return pipeline.pose_control(track, request.height, request.width,
                                     request.extra.get("cached_pose_frames", 256))

    @staticmethod
    def pose_track(pose: Optional[PoseSequence], reference_pose: Optional[PoseSequence], wave: Optional[np.ndarray],
                   num_frames: Optional[int], request: Settings) -> PoseSequence:
        """The hand track drawn in the (height, width) canvas: ``num_frames`` long, or a
        track the control ping-pongs (``num_frames`` None: streaming)."""
        from genhuman.pose.align import retarget
        from genhuman.pose.extend import extend_pose
        from genhuman.pose.generate import generate_pose
        from genhuman.pose.render import scale_draw_params

        if pose is None:
            canvas = (request.height, request.width, 0, request.height, 0, request.width)
            frames = num_frames or int(STREAMING_POSE_SECONDS * request.fps)
            track = generate_pose(frames, request.fps, wave, seed=request.seed, rest=reference_pose,
                                  draw_params=canvas)
            log.info("no pose given: generated %d frames of hand motion", frames)
            return track
        on_canvas = False  # retargeting puts the pose in the reference's canvas already
        if request.extra.get("retarget", True) and reference_pose is not None:
            try:
                pose, on_canvas = retarget(pose, reference_pose), True
            except InputError as exc:
                log.warning("pose not retargeted (%s)", exc)
        if num_frames is not None:
            mode = request.extra.get("pose_extension", "pingpong")
            if len(pose) < num_frames:
                log.info("pose track of %d frames extended to %d (%s)", len(pose), num_frames, mode)
            pose = extend_pose(pose, num_frames, mode=mode)
        if not on_canvas:
            pose.draw_params = scale_draw_params(pose.draw_params, request.height, request.width)
        return pose


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

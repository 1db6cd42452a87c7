"""The ``echomimic`` engine: EchoMimic V1 (audio-driven, landmark-pose, accelerated) on the
official weights, through :class:`genhuman.pipelines.EchoMimicPipeline`.

Which weights: the official layout holds several variants; the engine picks ``audio`` or
``pose`` (when the request has a pose folder or driving video), with ``_acc`` when
``accelerated``. A converted folder holds one variant, used as it is. The networks are
loaded on the first request that needs them and kept for the next (one variant at a time).

The avatar holds the official face crop (MediaPipe's face box, the official arithmetic on
it), the face mask, the portrait landmarks in crop pixels (to retarget a driving video) and,
for ``--paste-back``, the portrait itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from genhuman.engines.avatar import Avatar
from genhuman.engines.diffusion import TUNING, DiffusionEngine, Loaded, Settings
from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE
from genhuman.pipelines import EchoMimicPipeline
from genhuman.pipelines.face_crop import FaceCrop
from genhuman.progress import CancelFn, ProgressFn
from genhuman.request import AnimateRequest
from genhuman.sampling import WindowSchedule


DEFAULT_SIZE = 512
OFFICIAL_SEED = 420  # every official V1 inference script's --seed default
CROP_DILATION, MASK_DILATION = 0.5, 0.1  # official crop and mask dilation of the face box


class EchoMimicEngine(DiffusionEngine):
    name = "echomimic"
    family = "echomimic"
    weights_description = "the official EchoMimic folder or a converted one"
    pipeline_class = EchoMimicPipeline
    other_family_hint = "use --engine echomimic_v2"
    tuning = frozenset(TUNING | {"crop_dilation", "mask_dilation"})

    def variant_for(self, request: AnimateRequest) -> Optional[str]:
        pose = request.pose is not None
        if self._converted:
            return "acc" if self.options.accelerated and not pose else None  # the manifest decides
        if pose:
            return "pose_acc" if self.options.accelerated else "pose"
        return "acc" if self.options.accelerated else "audio"

    def default_size(self) -> tuple[int, int]:
        return DEFAULT_SIZE, DEFAULT_SIZE

    def official_seed(self, variant) -> int:
        return OFFICIAL_SEED

    def check_variant(self, request: AnimateRequest, variant) -> None:
        if request.width and request.height and request.width != request.height:
            raise InputError(f"EchoMimic generates square videos; got --width {request.width} "
                             f"and --height {request.height}")
        if request.pose is not None and variant.condition_channels != 3:
            raise InputError(f"a pose input needs the landmark-pose weights, but these weights "
                             f"are the '{variant.name}' variant")
        if request.pose is None and variant.condition_channels == 3:
            raise InputError(f"the '{variant.name}' weights are driven by landmarks: give --pose (a folder "
                             "of landmark .npy/.pkl files or a driving video)")

    def window_schedule(self, variant) -> WindowSchedule:
        # official: shift 2 for the audio model, 3 for the pose models
        return WindowSchedule(12, 3, 3 if variant.condition_channels == 3 else 2)

    def clamp_noise(self, variant) -> Optional[float]:
        return None if variant.condition_channels == 3 else 1.5  # neither official pose pipeline clamps

    def frame_counts(self, official: int, wave: np.ndarray, request: Settings) -> tuple[int, int]:
        # Generate the official frame count (about duration x fps + 2) so the noise and the
        # wrap-around windows are the official ones; write only the frames the speech covers.
        return official, min(official, max(1, round(len(wave) / SAMPLE_RATE * request.fps)))

    def frame_reference(self, portrait: np.ndarray, request: Settings, face_index: int,
                        ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
        from genhuman.face import face_landmarks

        size = request.width
        face = face_landmarks(portrait, face_index, name="the portrait")
        crop = FaceCrop.official(face.box, portrait.shape[1], portrait.shape[0],
                                 request.extra.get("crop_dilation", CROP_DILATION),
                                 request.extra.get("mask_dilation", MASK_DILATION))
        arrays = {"mask": crop.mask(size), "landmarks": crop.to_crop_pixels(face.landmarks, size).astype(np.float32),
                  "crop_box": np.asarray(crop.box, np.int64), "mask_box": np.asarray(crop.mask_box, np.int64)}
        if request.paste_back:
            arrays["portrait"] = portrait
        return crop.crop(portrait, size), arrays, {"paste_back": bool(request.paste_back)}

    def _crop(self, avatar: Avatar) -> FaceCrop:
        box, mask_box = (tuple(int(v) for v in avatar.arrays[k]) for k in ("crop_box", "mask_box"))
        return FaceCrop(box, mask_box)  # type: ignore[arg-type]

    def control(self, avatar: Avatar, request: Settings, loaded: Loaded, num_frames: Optional[int],
                wave: Optional[np.ndarray], progress: Optional[ProgressFn], should_cancel: Optional[CancelFn]):
        pipeline = loaded.pipeline
        assert isinstance(pipeline, EchoMimicPipeline)
        if request.pose is None:
            return pipeline.mask_control(avatar.arrays["mask"])
        return pipeline.landmark_control(self._landmarks(Path(request.pose), avatar, request, num_frames),
                                         request.width)

    def _landmarks(self, pose: Path, avatar: Avatar, request: Settings, num_frames: Optional[int]) -> np.ndarray:
        """A pose folder (official: landmarks in the 512 crop) or a driving video."""
        from genhuman.pipelines.landmarks import landmarks_from_video, load_landmark_folder

        if pose.is_dir():
            return load_landmark_folder(pose) * (request.width / 512.0)
        if pose.is_file():
            frames = num_frames or int(request.extra.get("max_frames") or 30 * request.fps)
            return landmarks_from_video(pose, avatar.arrays["landmarks"], frames)
        raise InputError(f"pose input not found: {str(pose)!r}")

    def finish_frame(self, avatar: Avatar, request: Settings, frame: np.ndarray) -> np.ndarray:
        if not request.paste_back:
            return frame
        if "portrait" not in avatar.arrays:
            raise InputError("this avatar was prepared without --paste-back; prepare it again with it")
        crop = avatar.cache.get("crop") or avatar.cache.setdefault("crop", self._crop(avatar))
        weights = avatar.cache.get("paste_weights")
        if weights is None:
            weights = avatar.cache.setdefault("paste_weights", crop.paste_weights())
        return crop.paste(avatar.arrays["portrait"], frame, weights)

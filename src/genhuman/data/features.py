"""Each family's audio features, face crop, masks and identity embedding, computed with the
functions inference uses (nothing here re-implements them; it only chooses which to call).

- EchoMimic: the official face crop (:class:`~genhuman.pipelines.face_crop.FaceCrop`, the
  engine's dilations) of the first frame's MediaPipe face box, the same square for every
  frame; whisper encoder levels at 50 Hz cut into per-frame windows
  (:func:`~genhuman.audio_features.whisper.frame_tokens`), (T, 50, 384) for whisper-tiny.
- Hallo: the square Hallo is given (:func:`~genhuman.pipelines.hallo_conditions.square_portrait`
  of the first frame) resized with PIL bilinear as Hallo resizes its portrait; wav2vec2's
  12 layers at 25 Hz (:func:`~genhuman.audio_features.wav2vec.wav2vec_features`), (T, 12, 768);
  the raw ArcFace embedding of the first frame's square, as the engine's avatar holds it.

Masks come from each frame's landmarks in the crop: the face box mask (EchoMimic: the
engine's 0.1-dilated face box; Hallo: the silhouette box grown 1.2x), the lip box (Hallo's
outer-lip box grown 2x, for both) and their union.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from genhuman.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class AudioModel:
    """A family's feature extractor: ``encode(wave16k) -> (per-25-fps-frame features source,
    frames the audio covers)`` and ``per_frame(source, T) -> (T, ...)``."""

    family: str
    encoder: Any
    face_embedder: Any = None  # Hallo: a FaceEmbedder

    def encode(self, wave: np.ndarray) -> tuple[torch.Tensor, int]:
        if self.family == "echomimic":
            from genhuman.audio_features.whisper import FEATURES_PER_SECOND, whisper_features

            levels = whisper_features(self.encoder, wave)  # (T50, levels, d)
            return levels, int(round(levels.shape[0] * 25 / FEATURES_PER_SECOND))
        from genhuman.audio_features.wav2vec import wav2vec_features

        features, frames = wav2vec_features(self.encoder, wave)
        return features, int(frames)

    def per_frame(self, source: torch.Tensor, num_frames: int) -> torch.Tensor:
        if self.family == "echomimic":
            from genhuman.audio_features.whisper import frame_tokens

            return frame_tokens(source, 25, num_frames).contiguous()
        return source[:num_frames].contiguous()


def load_audio_model(family: str, directory: Optional[Path]) -> AudioModel:
    """The family's feature extractor from a weights folder: EchoMimic's official folder
    (``audio_processor/whisper_tiny.pt``), a converted one (``whisper/``) or a whisper ``.pt``
    file; Hallo's ``pretrained_models/`` (wav2vec2 + the face analysis ONNX files)."""
    if directory is None:
        raise InputError(f"--audio-model is required: the {family} weights folder that holds its audio encoder")
    directory = Path(directory)
    if not directory.exists():
        raise InputError(f"audio model not found: {str(directory)!r}")
    if family == "echomimic":
        return AudioModel(family, _whisper(directory).eval().requires_grad_(False))
    from genhuman.audio_features.wav2vec import load_wav2vec
    from genhuman.checkpoints.layout import FACE_DETECTOR, FACE_RECOGNIZER, WAV2VEC_DIR
    from genhuman.face.arcface import FaceEmbedder

    wav2vec_dir = directory / WAV2VEC_DIR if (directory / WAV2VEC_DIR).is_dir() else directory
    embedder = FaceEmbedder(directory / FACE_DETECTOR, directory / FACE_RECOGNIZER, ("CPUExecutionProvider",))
    return AudioModel(family, load_wav2vec(wav2vec_dir).eval().requires_grad_(False), embedder)


def _whisper(path: Path):
    from genhuman.checkpoints.echomimic import _whisper_from_folder, _whisper_from_openai
    from genhuman.checkpoints.layout import official_root, whisper_file

    if path.is_file():
        return _whisper_from_openai(path)
    if (path / "whisper" / "config.json").is_file():
        return _whisper_from_folder(path / "whisper")
    found = whisper_file(official_root(path))
    if found is None:
        raise InputError(f"no whisper encoder in {str(path)!r} (expected audio_processor/whisper_tiny.pt "
                         "or a converted whisper/ folder)")
    return _whisper_from_openai(found)


# ---------------------------------------------------------------- crop


Cropper = Callable[[np.ndarray], np.ndarray]


def family_crop(family: str, first_frame: np.ndarray, size: int) -> tuple[Cropper, list[int], np.ndarray]:
    """(frame -> training-size crop, the crop box in the source, the square the embedding sees)."""
    from genhuman.face import face_landmarks

    face = face_landmarks(first_frame, 0, name="the first frame")
    height, width = first_frame.shape[:2]
    if family == "echomimic":
        from genhuman.engines.echomimic import CROP_DILATION, MASK_DILATION
        from genhuman.pipelines.face_crop import FaceCrop

        crop = FaceCrop.official(face.box, width, height, CROP_DILATION, MASK_DILATION)
        return (lambda frame: crop.crop(frame, size)), list(crop.box), crop.crop(first_frame, crop.side)
    from genhuman.pipelines.hallo_conditions import face_square_box, pil_resize

    box = (0, 0, width, height) if width == height else face_square_box(face.landmarks, width, height)
    x0, y0, x1, y1 = box

    def cut(frame: np.ndarray) -> np.ndarray:
        return pil_resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), size, size)

    return cut, [int(v) for v in box], np.ascontiguousarray(first_frame[y0:y1, x0:x1])


# ---------------------------------------------------------------- masks


def frame_masks(family: str, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(face, lip) uint8 0/1 (size, size) masks and the face box of one frame's (478, 2) landmarks."""
    from genhuman.face import landmark_indices as lm
    from genhuman.pipelines.hallo_conditions import LIP_EXPAND, box_mask, hallo_masks, landmark_box

    lip_box = landmark_box(landmarks, lm.LIPS_OUTER, size, size, LIP_EXPAND)
    lip = (box_mask(lip_box, size, size) > 0).astype(np.uint8)
    if family == "echomimic":
        from genhuman.engines.echomimic import MASK_DILATION
        from genhuman.pipelines.face_crop import dilate

        points = np.asarray(landmarks, np.float64)[:, :2]
        x0, y0 = np.round(points.min(axis=0)).astype(int)
        x1, y1 = np.round(points.max(axis=0)).astype(int)
        face_box: tuple[int, ...] = dilate((int(x0), int(y0), int(x1), int(y1)), MASK_DILATION)
        face = (box_mask(face_box, size, size) > 0).astype(np.uint8)  # type: ignore[arg-type]
    else:
        masks = hallo_masks(landmarks, size, size)
        face_box, face = masks.face_box, (masks.face > 0).astype(np.uint8)
    return face, lip, tuple(int(v) for v in face_box)

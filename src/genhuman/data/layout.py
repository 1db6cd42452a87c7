"""The prepared data folder (``genhuman data prepare``): the contract between preparation and training.

::

    OUT_DIR/
      manifest.jsonl                 one JSON object per input video, kept or dropped (:class:`ManifestRow`)
      clips/<clip_id>/
        video.mp4                    face-centred crop at the training size, 25 fps, H.264, no audio
        audio.wav                    16 kHz mono PCM16
        masks.npz                    face, lip, union: uint8 0/1 (T, H, W); boxes: int (T, 4) x0 y0 x1 y1
                                     (the face box each frame's masks came from, in crop pixels)
        audio_features.safetensors   "features": the family's per-frame audio features as inference feeds
                                     the model (EchoMimic (T, 50, 384) whisper windows; Hallo (T, 12, 768)
                                     wav2vec levels); "frames": 0-d int64 tensor, T
        face_embedding.npy           (512,) float32 ArcFace embedding (Hallo only)
        meta.json                    written last, atomically: a clip folder without it is incomplete

``T`` is the same for the video, the masks and the features of a kept clip.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from genhuman.errors import InputError

MANIFEST_FILE = "manifest.jsonl"
CLIPS_DIR = "clips"
VIDEO_FILE = "video.mp4"
AUDIO_FILE = "audio.wav"
MASKS_FILE = "masks.npz"
FEATURES_FILE = "audio_features.safetensors"
EMBEDDING_FILE = "face_embedding.npy"
META_FILE = "meta.json"

MASK_KEYS = ("face", "lip", "union")
BOXES_KEY = "boxes"
FEATURES_KEY, FRAMES_KEY = "features", "frames"

FPS = 25
SAMPLE_RATE = 16000
FAMILIES = ("echomimic", "hallo")
TRAINING_SIZE = {"echomimic": 512, "hallo": 512}  # both trained (and run) at 512 x 512
MAX_FRAME_MISMATCH = 3  # video frames vs audio feature frames: more than this and the video is dropped

KEPT, DROPPED = "kept", "dropped"


@dataclass
class ManifestRow:
    """One input video: kept (its clip folder is complete) or dropped (``reason`` says why)."""

    clip_id: str
    source: str
    family: str
    status: str  # KEPT | DROPPED
    reason: Optional[str] = None
    duration_s: float = 0.0
    num_frames: int = 0  # frames in video.mp4 (kept) or the source's frames at 25 fps (dropped)
    num_feature_frames: int = 0  # rows of "features" (kept) or the frames the audio covers (dropped)
    size: int = 0
    fps: int = FPS
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        return self.status == KEPT

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "ManifestRow":
        known = {k: row[k] for k in cls.__dataclass_fields__ if k in row}
        return cls(**known)


def read_manifest(directory: Union[str, Path]) -> list[ManifestRow]:
    """The rows of ``directory/manifest.jsonl``, in file order."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise InputError(f"{str(directory)!r} is not a prepared data set (no {MANIFEST_FILE}); "
                         "make one with `genhuman data prepare`")
    rows = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(ManifestRow.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            raise InputError(f"{path} line {line_no} is not a manifest row") from None
    return rows


def write_manifest(directory: Union[str, Path], rows: list[ManifestRow]) -> Path:
    """Write the manifest atomically (a temporary file renamed over it)."""
    path = Path(directory) / MANIFEST_FILE
    write_atomic(path, "".join(row.to_json() + "\n" for row in rows))
    return path


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def clip_dir(directory: Union[str, Path], clip_id: str) -> Path:
    return Path(directory) / CLIPS_DIR / clip_id


def is_complete(folder: Path) -> bool:
    """meta.json is written last: its presence means every other file of the clip is there."""
    return (folder / META_FILE).is_file()


class PreparedClip:
    """One prepared clip folder, read lazily (each array is read on first use, then kept)."""

    def __init__(self, folder: Union[str, Path]):
        self.folder = Path(folder)
        if not is_complete(self.folder):
            raise InputError(f"prepared clip {str(self.folder)!r} is incomplete (no {META_FILE}); "
                             "run `genhuman data prepare` again")

    @property
    def clip_id(self) -> str:
        return self.folder.name

    @cached_property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.folder / META_FILE).read_text())

    @cached_property
    def frames(self) -> np.ndarray:
        """uint8 (T, H, W, 3) RGB."""
        from genhuman.media.video_reader import iter_video_frames

        return np.stack(list(iter_video_frames(self.folder / VIDEO_FILE)))

    @cached_property
    def masks(self) -> dict[str, np.ndarray]:
        """face, lip, union: uint8 0/1 (T, H, W); boxes: (T, 4)."""
        with np.load(self.folder / MASKS_FILE) as data:
            return {k: data[k] for k in data.files}

    @cached_property
    def features(self) -> Any:
        """torch float tensor: the family's per-frame audio features, (T, ...)."""
        from safetensors.torch import load_file

        return load_file(str(self.folder / FEATURES_FILE))[FEATURES_KEY]

    @cached_property
    def face_embedding(self) -> Optional[np.ndarray]:
        path = self.folder / EMBEDDING_FILE
        return np.load(path) if path.is_file() else None

    @cached_property
    def audio(self) -> np.ndarray:
        """float32 mono samples at 16 kHz."""
        from genhuman.media import load_audio

        return load_audio(self.folder / AUDIO_FILE)

    @property
    def num_frames(self) -> int:
        return int(self.meta["num_frames"])


def prepared_clips(directory: Union[str, Path]) -> list[PreparedClip]:
    """The kept clips of a prepared folder, in manifest order."""
    return [PreparedClip(clip_dir(directory, row.clip_id)) for row in read_manifest(directory) if row.kept]

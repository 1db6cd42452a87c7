"""The EchoMimic V2 pose format, on disk and in memory.

On disk (the official layout): a folder of ``{i}.npy`` files, one per frame at 24 fps,
each a pickled dict written by ``np.save``::

    bodies: {candidate (18,2), subset (1,18), score (1,18)}   OpenPose-18, normalised xy
    hands: (2,21,2)        hands_score: (2,21)                 [0] = left, [1] = right hand
    faces: (1,68,2)        faces_score: (1,68)
    num: frame index
    draw_pose_params: [imh_new, imw_new, rb, re, cb, ce]       where the drawing is pasted

Coordinates are normalised to the aligned crop (x by its width, y by its height); a
point that was not seen has a low score (DWPose writes -1 or stray values for it).

In memory: :class:`PoseSequence`, the same data stacked over frames. Reading never runs
arbitrary pickles: only numpy arrays, dicts, lists and numbers are accepted, so a pose
folder from the internet cannot execute code (``np.load(allow_pickle=True)`` would).
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from genhuman.errors import InputError
from genhuman.pose.safe_pickle import load_numpy_pickle

BODY_POINTS = 18
HAND_POINTS = 21
FACE_POINTS = 68
SUBSET_THRESHOLD = 0.3  # DWPose marks a body point as found (subset index) above this score
DEFAULT_FPS = 24.0  # the official pose folders and the V2 training data are 24 fps

# OpenPose-18 order, as DWPose writes it.
BODY_NAMES = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
              "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
              "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear")


@dataclass
class PoseSequence:
    """A pose track: ``T`` frames of body, hand and face keypoints, normalised xy.

    ``draw_params`` is the official ``[imh_new, imw_new, rb, re, cb, ce]``: the drawing
    is ``imh_new x imw_new`` pixels pasted at rows ``rb:re``, columns ``cb:ce`` of a
    canvas of the generation size (``[768, 768, 0, 768, 0, 768]`` for a square crop).
    """

    body: np.ndarray  # (T, 18, 2)
    body_score: np.ndarray  # (T, 18)
    hands: np.ndarray  # (T, 2, 21, 2)
    hands_score: np.ndarray  # (T, 2, 21)
    face: np.ndarray  # (T, 68, 2)
    face_score: np.ndarray  # (T, 68)
    fps: float = DEFAULT_FPS
    draw_params: tuple[int, int, int, int, int, int] = (768, 768, 0, 768, 0, 768)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.body)
        expected = {"body": (n, BODY_POINTS, 2), "body_score": (n, BODY_POINTS),
                    "hands": (n, 2, HAND_POINTS, 2), "hands_score": (n, 2, HAND_POINTS),
                    "face": (n, FACE_POINTS, 2), "face_score": (n, FACE_POINTS)}
        for name, shape in expected.items():
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise InputError(f"pose {name} has shape {value.shape}, expected {shape}")
            setattr(self, name, value)
        if n == 0:
            raise InputError("a pose sequence needs at least one frame")
        self.draw_params = tuple(int(v) for v in self.draw_params)  # type: ignore[assignment]
        if len(self.draw_params) != 6:
            raise InputError("draw_pose_params must hold 6 integers")

    def __len__(self) -> int:
        return len(self.body)

    @property
    def seconds(self) -> float:
        return len(self) / self.fps

    def take(self, indices: Sequence[int] | np.ndarray) -> "PoseSequence":
        """A new sequence made of the given frames (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return PoseSequence(self.body[idx], self.body_score[idx], self.hands[idx],
                            self.hands_score[idx], self.face[idx], self.face_score[idx],
                            fps=self.fps, draw_params=self.draw_params, extra=dict(self.extra))

    def frame_dict(self, i: int) -> dict:
        """Frame ``i`` as the official per-frame dict."""
        score = self.body_score[i][None].copy()
        subset = np.where(score > SUBSET_THRESHOLD, np.arange(BODY_POINTS, dtype=np.float64), -1.0)
        return {
            "bodies": {"candidate": self.body[i].copy(), "subset": subset, "score": score},
            "hands": self.hands[i].copy(),
            "hands_score": self.hands_score[i].copy(),
            "faces": self.face[i][None].copy(),
            "faces_score": self.face_score[i][None].copy(),
            "num": int(i),
            "draw_pose_params": [int(v) for v in self.draw_params],
        }

    @classmethod
    def from_frame_dicts(cls, frames: Sequence[dict], fps: float = DEFAULT_FPS) -> "PoseSequence":
        """Stack official per-frame dicts (the first person's body, face and two hands)."""
        if not frames:
            raise InputError("a pose sequence needs at least one frame")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                              ("body", "body_score", "hands", "hands_score", "face", "face_score")}
        for i, frame in enumerate(frames):
            try:
                bodies = frame["bodies"]
                parts["body"].append(np.asarray(bodies["candidate"], np.float64)[:BODY_POINTS])
                parts["body_score"].append(np.asarray(bodies["score"], np.float64).reshape(-1, BODY_POINTS)[0])
                parts["hands"].append(np.asarray(frame["hands"], np.float64)[:2])
                parts["hands_score"].append(np.asarray(frame["hands_score"], np.float64)[:2])
                parts["face"].append(np.asarray(frame["faces"], np.float64).reshape(-1, FACE_POINTS, 2)[0])
                parts["face_score"].append(np.asarray(frame["faces_score"], np.float64).reshape(-1, FACE_POINTS)[0])
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise InputError(f"pose frame {i} is not an EchoMimic V2 pose dict ({exc})") from None
        draw = frames[0].get("draw_pose_params", (768, 768, 0, 768, 0, 768))
        stacked = {k: np.stack(v) for k, v in parts.items()}
        return cls(**stacked, fps=fps, draw_params=tuple(draw))


def load_pose_frame(path: Path) -> dict:
    """Read one official ``{i}.npy`` pose dict without executing arbitrary pickles."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            _, _, dtype = read_header(fh)
            if dtype.hasobject:
                value = load_numpy_pickle(fh)
            else:
                raise InputError(f"{path.name} holds a plain array, not a pose dict")
    except OSError as exc:
        raise InputError(f"cannot read pose file {str(path)!r}: {exc.strerror}") from None
    except (ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
        raise InputError(f"{str(path)!r} is not a valid pose file ({exc})") from None
    frame = value.item() if isinstance(value, np.ndarray) else value
    if not isinstance(frame, dict):
        raise InputError(f"{str(path)!r} is not a pose dict")
    return frame


def _frame_files(folder: Path) -> list[Path]:
    numbered = [(int(m.group(1)), p) for p in folder.iterdir()
                if (m := re.fullmatch(r"(\d+)\.npy", p.name))]
    numbered.sort()
    # The official reader opens 0.npy, 1.npy, ... in order; stop at the first gap.
    files = []
    for expected, (index, path) in enumerate(numbered):
        if index != expected:
            break
        files.append(path)
    return files


def load_pose_dir(folder: str | Path, fps: float = DEFAULT_FPS) -> PoseSequence:
    """Read an official pose folder (``0.npy``, ``1.npy``, ...) into a :class:`PoseSequence`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"pose folder {str(folder)!r} does not exist")
    files = _frame_files(folder)
    if not files:
        raise InputError(f"pose folder {str(folder)!r} has no 0.npy, 1.npy, ... files")
    return PoseSequence.from_frame_dicts([load_pose_frame(p) for p in files], fps=fps)


def save_pose_dir(pose: PoseSequence, folder: str | Path) -> Path:
    """Write ``pose`` as an official pose folder that the official ``infer.py`` can read."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(pose)):
        np.save(folder / f"{i}.npy", np.array(pose.frame_dict(i), dtype=object), allow_pickle=True)
    return folder

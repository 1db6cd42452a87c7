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

import math
import pickle
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np

from genhuman.errors import InputError
from genhuman.pose.safe_pickle import load_numpy_pickle

BODY_POINTS = 18
HAND_POINTS = 21
FACE_POINTS = 68
SUBSET_THRESHOLD = 0.3  # DWPose marks a body point as found (subset index) above this score
DEFAULT_FPS = 24.0  # the official pose folders and the V2 training data are 24 fps
# Normalised coordinates are near [0, 1]; far beyond, a point is garbage, and pixel maths on it
# would overflow OpenCV's int32 coordinates.
MAX_COORDINATE = 1000.0
MAX_NPY_BYTES = 16 * 1024 * 1024  # a plain landmark/pose array file; the official ones are a few KB
MAX_CANVAS = 8192  # draw_pose_params are pixel sizes and offsets in the generation canvas

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
            if not np.isfinite(value).all() or np.abs(value).max(initial=0.0) > MAX_COORDINATE:
                raise InputError(f"pose {name} holds values that are not finite or out of range")
        if n == 0:
            raise InputError("a pose sequence needs at least one frame")
        self.draw_params = _checked_draw_params(self.draw_params)

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
        draw = _checked_draw_params(frames[0].get("draw_pose_params", (768, 768, 0, 768, 0, 768)))
        try:
            stacked = {k: np.stack(v) for k, v in parts.items()}
        except ValueError:
            raise InputError("pose frames differ in shape (not all EchoMimic V2 pose dicts)") from None
        return cls(**stacked, fps=fps, draw_params=draw)


def _checked_draw_params(values: object) -> tuple[int, int, int, int, int, int]:
    """``[imh_new, imw_new, rb, re, cb, ce]``: six whole pixel counts, the drawing at least 1 px,
    and the paste box (``re - rb`` by ``ce - cb``) the drawing's size, as the official tools write."""
    try:
        items = list(values)  # type: ignore[call-overload]
        numbers = [int(v) for v in items if float(v) == int(v)]
    except (TypeError, ValueError, OverflowError):
        numbers = []
    if len(numbers) != 6 or len(items) != 6:
        raise InputError("draw_pose_params must hold 6 whole numbers")
    imh, imw, rb, re, cb, ce = numbers
    if not (all(0 <= v <= MAX_CANVAS for v in numbers) and imh >= 1 and imw >= 1
            and re - rb == imh and ce - cb == imw):
        raise InputError(f"draw_pose_params {numbers} are not a drawing box in a canvas of at most {MAX_CANVAS} px")
    return imh, imw, rb, re, cb, ce


def _read_npy_header(fh: BinaryIO) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of an ``.npy`` file; numpy parses the header with
    ``tokenize``/``ast``, which raise more than ValueError on a damaged one."""
    try:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        return read_header(fh)
    except (tokenize.TokenError, SyntaxError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise ValueError(f"damaged .npy header ({type(exc).__name__})") from None


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc).strip() else type(exc).__name__


def load_pose_frame(path: Path) -> dict:
    """Read one official ``{i}.npy`` pose dict without executing arbitrary pickles.

    Messages name the file, never its folder (a server's paths stay private)."""
    name = path.name
    try:
        with open(path, "rb") as fh:
            shape, _, dtype = _read_npy_header(fh)
            if not dtype.hasobject:
                raise InputError(f"{name} holds a plain array, not a pose dict")
            if dtype != np.dtype(object) or shape != ():
                raise InputError(f"{name} is not a pose dict (an array of shape {shape})")
            value = load_numpy_pickle(fh)
    except OSError as exc:
        raise InputError(f"cannot read pose file {name}: {exc.strerror or type(exc).__name__}") from None
    except (ValueError, EOFError, pickle.UnpicklingError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{name} is not a valid pose file ({_reason(exc)})") from None
    frame = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    if not isinstance(frame, dict):
        raise InputError(f"{name} is not a pose dict")
    return {key: frame[key] for key in FRAME_KEYS if key in frame}


def load_plain_npy(path: Path) -> np.ndarray:
    """A numeric ``.npy`` array (no pickles), its size checked against the file before it is read."""
    name = path.name
    try:
        with open(path, "rb") as fh:
            shape, fortran, dtype = _read_npy_header(fh)
            if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
                raise InputError(f"{name} does not hold plain numbers")
            data = fh.read(MAX_NPY_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or type(exc).__name__}") from None
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{name} is not a valid .npy file ({_reason(exc)})") from None
    if len(data) > MAX_NPY_BYTES or len(data) != math.prod(shape) * dtype.itemsize:
        raise InputError(f"{name}: its data does not match its header's shape {shape}")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


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


FRAME_KEYS = ("bodies", "hands", "hands_score", "faces", "faces_score", "num", "draw_pose_params")


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

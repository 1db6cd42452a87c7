"""V1 landmark-pose inputs: render MediaPipe face landmarks like the official
``FaceMeshVisualizer(draw_iris=False, draw_mouse=False)`` (eyes, eyebrows, pupils, nose; no
mouth, no face oval, so the audio drives the lips), and read pose folders / driving videos.

The per-part colours are our own choice (the official palette is not in the spec), so
renderings are close to, not pixel-identical with, the official ones.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

from genhuman.errors import InputError
from genhuman.face import landmark_indices as lm
from genhuman.pose.safe_pickle import load_numpy_pickle

THICKNESS = 2
_PARTS = (  # (indices, closed, colour RGB)
    (lm.RIGHT_EYE, True, (0, 255, 0)),
    (lm.LEFT_EYE, True, (0, 255, 0)),
    (lm.RIGHT_EYEBROW[:5] + lm.RIGHT_EYEBROW[5:][::-1], False, (255, 255, 0)),
    (lm.LEFT_EYEBROW[:5] + lm.LEFT_EYEBROW[5:][::-1], False, (255, 255, 0)),
    (lm.NOSE_BRIDGE, False, (255, 0, 255)),
)
_POINTS = ((lm.RIGHT_IRIS_CENTER, (255, 255, 255)), (lm.LEFT_IRIS_CENTER, (255, 255, 255)), (4, (0, 0, 255)))


def render_landmarks(points: np.ndarray, size: int) -> np.ndarray:
    """(478, 2) pixel coordinates in the size x size crop -> (size, size, 3) float32 in [0, 1]."""
    canvas = np.zeros((size, size, 3), np.uint8)
    for indices, closed, colour in _PARTS:
        poly = np.round(points[list(indices)]).astype(np.int32)
        cv2.polylines(canvas, [poly], closed, colour, THICKNESS, cv2.LINE_AA)
    for index, colour in _POINTS:
        x, y = np.round(points[index]).astype(int)
        cv2.circle(canvas, (int(x), int(y)), THICKNESS + 1, colour, -1, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def load_landmark_folder(folder: Path) -> np.ndarray:
    """Official pose folder: ``{i}.pkl`` (as the official tools write them) or ``{i}.npy``
    files, each (478, 2|3) pixel coordinates in the 512 crop, numbered from 0."""
    files = [p for p in folder.iterdir() if p.stem.isdigit() and p.suffix in (".pkl", ".npy")]
    files.sort(key=lambda p: int(p.stem))
    if not files:
        raise InputError(f"no numbered .pkl or .npy landmark files in {str(folder)!r}")
    return np.stack([_read_landmarks(path) for path in files])


def _read_landmarks(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".pkl":
            with open(path, "rb") as fh:
                array = np.asarray(load_numpy_pickle(fh))
        else:
            array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(f"cannot read landmarks {path.name}: {exc}") from None
    if array.ndim != 2 or array.shape[0] != lm.NUM_LANDMARKS or array.shape[1] < 2:
        raise InputError(f"{path.name}: expected ({lm.NUM_LANDMARKS}, 2 or 3) landmarks, got {array.shape}")
    return array[:, :2].astype(np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares rotation + uniform scale + translation taking src points to dst."""
    matrix, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    if matrix is None:
        raise InputError("could not align the driving face to the portrait")
    return matrix


def landmarks_from_video(path: Path, reference: np.ndarray, max_frames: int) -> np.ndarray:
    """Track the driving video's face and map its motion onto the reference landmarks.

    Each driving frame's landmarks go through the similarity transform that aligns the
    driver's first frame to the reference on stable points (eyes, brows, nose bridge).
    """
    from genhuman.face import FaceTracker
    from genhuman.media import iter_video_frames

    stable = list(lm.STABLE)
    tracked, transform = [], None
    with FaceTracker() as tracker:  # tracking mode: steadier and faster than per-frame detection
        for frame in iter_video_frames(path):
            if len(tracked) >= max_frames:
                break
            face = tracker.track(frame)
            if face is None:
                if tracked:  # hold the last pose through a missed frame
                    tracked.append(tracked[-1])
                continue
            points = face.landmarks
            if transform is None:
                transform = similarity_transform(points[stable], reference[stable])
            tracked.append(points @ transform[:, :2].T + transform[:, 2])
    if not tracked:
        raise InputError(f"no face found in the driving video {str(path)!r}")
    return np.stack(tracked).astype(np.float32)

"""V1 landmark-pose inputs: the official conditioning images, and reading pose folders and
driving videos.

The official pose scripts draw landmarks with ``FaceMeshVisualizer(draw_iris=False,
draw_mouse=False)`` (``src/utils/draw_utils.py``). We reproduce that rendering pixel for
pixel, from our own code, on the same MediaPipe drawing routine:
- the eye and eyebrow contours of MediaPipe's face mesh, drawn as 2 px cv2 lines in the
  official palette on a 512x512 canvas;
- 6x6 squares at the pupils (468, 473) and the nose tip (4), none within 3 px of the
  top or left edge (the official slice is empty there);
- no mouth and no face oval, so the audio drives the lips;
- the canvas resized to the generation size.

The RGB array, divided by 255, is the FaceLocator input.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

from genhuman.errors import InputError
from genhuman.face import landmark_indices as lm
from genhuman.pose.format import load_plain_npy
from genhuman.pose.safe_pickle import load_numpy_pickle

CANVAS = 512  # the official visualizer always draws at 512 and resizes
_THICKNESS = 2
_SQUARE_HALF_WIDTH = 3
# (MediaPipe face-mesh connection set, RGB colour) in the official drawing order.
_CONTOUR_COLOURS = (
    ("FACEMESH_LEFT_EYE", (180, 200, 10)),
    ("FACEMESH_RIGHT_EYE", (10, 200, 180)),
    ("FACEMESH_LEFT_EYEBROW", (180, 220, 10)),
    ("FACEMESH_RIGHT_EYEBROW", (10, 220, 180)),
)
_SQUARES = ((lm.RIGHT_IRIS_CENTER, (10, 200, 250)), (lm.LEFT_IRIS_CENTER, (250, 200, 10)), (4, (200, 200, 200)))


def _connection_spec() -> dict:
    from mediapipe.python.solutions import drawing_utils, face_mesh

    spec = {}
    for name, colour in _CONTOUR_COLOURS:
        for edge in getattr(face_mesh, name):
            spec[edge] = drawing_utils.DrawingSpec(color=colour, thickness=_THICKNESS)
    return spec


_SPEC: dict | None = None


def render_landmarks(points: np.ndarray, size: int) -> np.ndarray:
    """(478, 2) pixel coordinates in the size x size crop -> (size, size, 3) float32 in [0, 1],
    the official V1 pose conditioning image."""
    global _SPEC
    from mediapipe.framework.formats import landmark_pb2
    from mediapipe.python.solutions import drawing_utils

    if _SPEC is None:
        _SPEC = _connection_spec()
    normalized = landmark_pb2.NormalizedLandmarkList()
    for x, y in np.asarray(points, np.float64)[:, :2] / size:
        landmark = normalized.landmark.add()
        landmark.x, landmark.y, landmark.z = x, y, 1.0
    canvas = np.zeros((CANVAS, CANVAS, 3), np.uint8)
    drawing_utils.draw_landmarks(image=canvas, landmark_list=normalized, connections=_SPEC.keys(),
                                 landmark_drawing_spec=None, connection_drawing_spec=_SPEC)
    for index, colour in _SQUARES:
        x, y = normalized.landmark[index].x, normalized.landmark[index].y
        if 0 <= x < 1 and 0 <= y < 1:  # the official skips points off the canvas
            col, row = int(CANVAS * x), int(CANVAS * y)
            h = _SQUARE_HALF_WIDTH
            # the official slice as it is: within h of the top or left edge its start is
            # negative, the slice comes out empty and no square is drawn (near the bottom or
            # right edge it is cut to a partial square)
            canvas[row - h:row + h, col - h:col + h] = colour
    if size != CANVAS:
        canvas = cv2.resize(canvas, (size, size))
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
            array = load_plain_npy(path)  # header checked against the data, no pickles
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
    tracked: list[np.ndarray] = []
    transform = None
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

"""V1 landmark-pose inputs: render MediaPipe face landmarks like the official
``FaceMeshVisualizer(draw_iris=False, draw_mouse=False)`` (eyes, eyebrows, pupils, nose; no
mouth, no face oval, so the audio drives the lips), and read pose folders / driving videos.

The per-part colours are our own choice (the official palette is not in the spec), so
renderings are close to, not pixel-identical with, the official ones.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from genhuman.errors import InputError
from genhuman.face import landmark_indices as lm

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
    """Official pose folder: ``{i}.npy`` files, each (478, 2|3) pixel coordinates in the 512
    crop, numbered from 0. ``.pkl`` files must be converted first (no unpickling here)."""
    files = sorted(folder.glob("*.npy"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
    files = [f for f in files if f.stem.isdigit()]
    if not files:
        hint = " (.pkl files: convert them to .npy with `genhuman pose`)" if any(folder.glob("*.pkl")) else ""
        raise InputError(f"no numbered .npy landmark files in {str(folder)!r}{hint}")
    frames = []
    for path in files:
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot read landmarks {path.name}: {exc}") from None
        if array.ndim != 2 or array.shape[0] != lm.NUM_LANDMARKS or array.shape[1] < 2:
            raise InputError(f"{path.name}: expected ({lm.NUM_LANDMARKS}, 2 or 3) landmarks, got {array.shape}")
        frames.append(array[:, :2].astype(np.float32))
    return np.stack(frames)


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
    from genhuman.face import detect_faces
    from genhuman.media import iter_video_frames

    stable = list(lm.STABLE)
    tracked, transform = [], None
    for frame in iter_video_frames(path):
        if len(tracked) >= max_frames:
            break
        faces = detect_faces(frame)
        if not faces:
            if tracked:  # hold the last pose through a missed frame
                tracked.append(tracked[-1])
            continue
        points = faces[0].landmarks
        if transform is None:
            transform = similarity_transform(points[stable], reference[stable])
        tracked.append(points @ transform[:, :2].T + transform[:, 2])
    if not tracked:
        raise InputError(f"no face found in the driving video {str(path)!r}")
    return np.stack(tracked).astype(np.float32)

"""Face landmarks across video frames: one MediaPipe graph in tracking mode, reused.

MediaPipe graphs are not thread-safe: use one FaceTracker per thread.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from genhuman.face import _mediapipe
from genhuman.face.detect import Face, faces_from_result


class FaceTracker:
    """``track(frame)`` returns the largest face in each consecutive frame, or None.

    Tracking mode follows the face from the previous frame's landmarks instead of
    re-detecting it, which is faster and steadier than per-image detection.
    """

    def __init__(self, max_faces: int = 1):
        self._graph = _mediapipe.face_mesh(static=False, max_faces=max_faces)

    def track_all(self, frame: np.ndarray) -> list[Face]:
        height, width = frame.shape[:2]
        faces = faces_from_result(self._graph.process(np.ascontiguousarray(frame)), width, height)
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def track(self, frame: np.ndarray) -> Optional[Face]:
        faces = self.track_all(frame)
        return faces[0] if faces else None

    def close(self) -> None:
        self._graph.close()

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

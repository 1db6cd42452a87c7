"""MediaPipe graphs, built once per thread, with its C++ log spam kept off the terminal."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Callable, Iterator

import numpy as np

# Must be set before mediapipe (and its bundled TFLite/glog) is first imported.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import mediapipe as mp  # noqa: E402

log = logging.getLogger(__name__)
_local = threading.local()
_stderr_lock = threading.Lock()


_quiet_depth = 0
_saved_stderr: int | None = None


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while MediaPipe starts: its warnings are
    written by C++ threads before absl logging is configured, so no Python setting
    reaches them. Nests and overlaps across threads (the last one out restores stderr).
    Kept when debugging (GENHUMAN_DEBUG=1 or DEBUG logging)."""
    global _quiet_depth, _saved_stderr
    if os.environ.get("GENHUMAN_DEBUG") == "1" or log.isEnabledFor(logging.DEBUG):
        yield
        return
    with _stderr_lock:
        if _quiet_depth == 0:
            sys.stderr.flush()
            _saved_stderr = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_stderr is not None:
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)
                _saved_stderr = None


# Result fields of the face mesh, face detection, pose and hands solutions.
_FOUND_FIELDS = ("multi_face_landmarks", "detections", "pose_landmarks", "multi_hand_landmarks")


class Graph:
    """A MediaPipe solution whose start-up log lines stay off the terminal.

    Its calculators open on worker threads after the constructor returns, and the
    landmark stages log once when they first see something; so stderr is silenced for
    one blank warm-up image and every call until one has found a face (or pose, hand).
    Construct the solution itself inside :func:`quiet_stderr`.
    """

    def __init__(self, solution):
        self.solution = solution
        self.settled = False
        with quiet_stderr():
            solution.process(np.zeros((64, 64, 3), np.uint8))

    def process(self, image):
        if self.settled:
            return self.solution.process(image)
        with quiet_stderr():
            result = self.solution.process(image)
        self.settled = any(getattr(result, name, None) for name in _FOUND_FIELDS)
        return result

    def close(self) -> None:
        self.solution.close()


def face_mesh(static: bool = True, max_faces: int = 1) -> Graph:
    with quiet_stderr():
        solution = mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=max_faces,
                                                   refine_landmarks=True, min_detection_confidence=0.5,
                                                   min_tracking_confidence=0.5)
    return Graph(solution)


def face_detection(full_range: bool) -> Graph:
    with quiet_stderr():
        solution = mp.solutions.face_detection.FaceDetection(model_selection=1 if full_range else 0,
                                                             min_detection_confidence=0.5)
    return Graph(solution)


def shared(name: str, factory: Callable[[], Graph]) -> Graph:
    """One graph per thread and name: MediaPipe graphs are not thread-safe."""
    graphs = _local.__dict__.setdefault("graphs", {})
    if name not in graphs:
        graphs[name] = factory()
    return graphs[name]

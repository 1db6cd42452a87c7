"""MediaPipe graphs, pooled per kind and shared by all threads, with their C++ log spam
kept off the terminal.

A graph is not thread-safe and costs tens of MB, so a thread borrows one for a call and
gives it back: any number of threads (a server's request and worker threads) share at most
:func:`pool_size` graphs of each kind, built on first need. Static-image graphs keep no
state between calls, so which graph a call gets does not change its result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Callable, Iterator, Optional

import numpy as np

# Must be set before mediapipe (and its bundled TFLite/glog) is first imported.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import mediapipe as mp  # noqa: E402

log = logging.getLogger(__name__)
_stderr_lock = threading.Lock()

POOL_SIZE_VARIABLE = "GENHUMAN_MEDIAPIPE_GRAPHS"
DEFAULT_POOL_CAP = 8  # more graphs than this buys little on CPU and costs memory


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


def selfie_segmentation() -> Graph:
    """The general selfie model (model_selection=0, 256x256 input), as issue 10 measured with;
    the landscape one (1) is a lighter 144x256 variant for video calls."""
    with quiet_stderr():
        solution = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    graph = Graph(solution)
    graph.settled = True  # no stage waits for a find: the blank warm-up already ran (and logged) them all
    return graph


def default_pool_size() -> int:
    """$GENHUMAN_MEDIAPIPE_GRAPHS, else the CPU count between 2 and DEFAULT_POOL_CAP."""
    value = os.environ.get(POOL_SIZE_VARIABLE, "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    return max(2, min(os.cpu_count() or 2, DEFAULT_POOL_CAP))


class GraphPool:
    """At most ``size`` graphs from ``factory``; a borrower waits while all are lent."""

    def __init__(self, factory: Callable[[], Graph], size: int):
        self.factory = factory
        self.size = size
        self.built = 0
        self.closed = False
        self._idle: list[Graph] = []
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Graph]:
        with self._changed:
            while not self._idle and self.built >= self.size:
                self._changed.wait()
            graph: Optional[Graph] = self._idle.pop() if self._idle else None
            if graph is None:
                self.built += 1  # counted before building, so no other thread overshoots
        if graph is None:
            try:
                graph = self.factory()
            except BaseException:
                with self._changed:
                    self.built -= 1
                    self._changed.notify()
                raise
        try:
            yield graph
        finally:
            with self._changed:
                if self.closed:
                    self.built -= 1
                else:
                    self._idle.append(graph)  # last in, first out: the warm graph is lent next
                self._changed.notify()
            if self.closed:
                graph.close()

    def close(self) -> None:
        """Close the idle graphs now and lent ones when they come back."""
        with self._changed:
            self.closed = True
            idle, self._idle = self._idle, []
            self.built -= len(idle)
            self._changed.notify_all()
        for graph in idle:
            graph.close()


_pools: dict[str, GraphPool] = {}
_pools_lock = threading.Lock()
_pool_size: Optional[int] = None


def pool_size() -> int:
    return _pool_size if _pool_size is not None else default_pool_size()


def set_pool_size(size: Optional[int]) -> None:
    """Graphs per kind from now on (None: the default); idle graphs of the old pools close."""
    global _pool_size
    if size is not None and size < 1:
        raise ValueError(f"pool size must be at least 1, got {size}")
    with _pools_lock:
        _pool_size = size
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def borrow(name: str, factory: Callable[[], Graph]) -> contextlib.AbstractContextManager[Graph]:
    """``with borrow(name, factory) as graph:`` one graph of kind ``name`` for this thread alone."""
    with _pools_lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = GraphPool(factory, pool_size())
    return pool.borrow()


def graphs_built() -> dict[str, int]:
    """Graphs alive per kind (for tests and memory figures)."""
    with _pools_lock:
        return {name: pool.built for name, pool in _pools.items()}

"""MediaPipe graphs are pooled: any number of threads share at most N graphs per kind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from genhuman.face import _mediapipe, detect_faces
from genhuman.face._mediapipe import GraphPool, default_pool_size
from genhuman.media import load_image


@pytest.fixture
def pool_of(request):
    _mediapipe.set_pool_size(request.param)
    yield request.param
    _mediapipe.set_pool_size(None)


@pytest.mark.parametrize("pool_of", [2], indirect=True)
def test_sixteen_threads_share_two_graphs_and_get_the_same_faces(portrait_path, pool_of):
    portrait = load_image(portrait_path)
    pair = np.concatenate([portrait, portrait[:, ::-1]], axis=1)  # needs the detector and crop graphs too
    reference = [face.landmarks for face in detect_faces(pair)]
    results: list = [None] * 16
    errors: list = []

    def work(i: int) -> None:
        try:
            results[i] = [face.landmarks for face in detect_faces(pair)]
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    built = _mediapipe.graphs_built()
    assert set(built) == {"mesh-image", "detect-True", "detect-False", "mesh-crop"}
    assert all(1 <= count <= pool_of for count in built.values()), built
    for found in results:  # the same graph code on the same pixels: bit for bit
        assert len(found) == len(reference) == 2
        for mine, theirs in zip(found, reference):
            np.testing.assert_array_equal(mine, theirs)


class FakeGraph:
    closed = 0

    def close(self) -> None:
        FakeGraph.closed += 1


def test_pool_lends_at_most_size_graphs_at_once():
    made: list[FakeGraph] = []
    pool = GraphPool(lambda: made.append(FakeGraph()) or made[-1], size=3)
    lent = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal lent, most
        for _ in range(5):
            with pool.borrow():
                with lock:
                    lent += 1
                    most = max(most, lent)
                time.sleep(0.002)
                with lock:
                    lent -= 1

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == pool.built == 3 and most == 3
    FakeGraph.closed = 0
    pool.close()
    assert FakeGraph.closed == 3 and pool.built == 0


def test_a_failed_build_frees_its_place():
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("no graph")
        return FakeGraph()

    pool = GraphPool(factory, size=1)
    with pytest.raises(RuntimeError):
        with pool.borrow():
            pass
    assert pool.built == 0
    with pool.borrow() as graph:  # would wait forever if the failed build kept its place
        assert isinstance(graph, FakeGraph)
    assert pool.built == 1


def test_pool_size_setting(monkeypatch):
    monkeypatch.setenv("GENHUMAN_MEDIAPIPE_GRAPHS", "5")
    assert default_pool_size() == 5
    for value in ("0", "-1", "many", ""):
        monkeypatch.setenv("GENHUMAN_MEDIAPIPE_GRAPHS", value)
        assert 2 <= default_pool_size() <= _mediapipe.DEFAULT_POOL_CAP
    with pytest.raises(ValueError, match="at least 1"):
        _mediapipe.set_pool_size(0)

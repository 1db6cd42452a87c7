"""The numpy-only unpickler: official pose pickles load; crafted ones are refused before
numpy can read file bytes as object pointers (issue: a dtype with cleared flags segfaulted)."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from genhuman.pose.safe_pickle import load_numpy_pickle


def _load(obj, protocol):
    return load_numpy_pickle(io.BytesIO(pickle.dumps(obj, protocol=protocol)))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numeric_arrays_scalars_containers_and_object_wrappers_load(protocol):
    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.float64(2.5), "c": [1, 2.0, "x"],
            "d": np.array([True, False]), "f": np.asfortranarray(np.arange(12.0).reshape(3, 4))}
    got = _load(data, protocol)
    assert got["a"].dtype == np.float32 and np.array_equal(got["a"], data["a"]) and got["b"] == 2.5
    assert got["c"] == data["c"] and got["d"].tolist() == [True, False] and np.array_equal(got["f"], data["f"])
    wrapped = _load(np.array({"x": np.arange(3.0)}, dtype=object), protocol)  # what np.save writes
    assert np.array_equal(wrapped.item()["x"], np.arange(3.0))


class _DtypeWithClearedFlags:
    def __reduce__(self):
        return (np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0))


class _DtypeWithOtherFlags:
    def __reduce__(self):
        return (np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 63))


class _ObjectArrayFromBytes:
    def __reduce__(self):
        from numpy.core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (2,), np.dtype("O"), False, b"\x41" * 16))


class _Code:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("crafted, message", [
    (_DtypeWithClearedFlags(), "modified state"),
    (_DtypeWithOtherFlags(), "modified state"),
    (_ObjectArrayFromBytes(), "object array whose items are not a list"),
    (np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), "only plain numbers"),
    (_Code(), "refusing to load"),
])
def test_crafted_pickles_are_refused(crafted, message):
    for protocol in (2, 5):
        with pytest.raises(pickle.UnpicklingError, match=message):
            _load(crafted, protocol)


def test_truncated_pickle_is_an_unpickling_error():
    data = pickle.dumps({"a": np.arange(4.0)}, protocol=4)
    with pytest.raises((pickle.UnpicklingError, EOFError)):
        load_numpy_pickle(io.BytesIO(data[: len(data) // 2]))

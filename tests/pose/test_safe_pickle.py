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


# ---- raw opcodes: what no numpy would write, but an attacker can


def _raw(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


def _text(s: str) -> bytes:
    return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()


_DTYPE_F8 = b"cnumpy\ndtype\n" + _text("f8") + b"\x89\x88\x87R"  # numpy.dtype('f8', False, True), no BUILD


def test_big_endian_and_fortran_arrays_keep_their_values():
    data = {"be": np.arange(5, dtype=">f8"), "i2": np.arange(-3, 3, dtype=">i2"),
            "f": np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3))}
    got = _load(data, 2)
    assert got["be"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and got["i2"].tolist() == [-3, -2, -1, 0, 1, 2]
    assert got["f"].tolist() == [[0, 1, 2], [3, 4, 5]] and got["f"].flags.f_contiguous


def test_numpy_ndarray_is_not_callable_from_a_pickle():
    """REDUCE on numpy.ndarray would allocate any shape (and read raw memory with buffer=)."""
    crafted = _raw(b"cnumpy\nndarray\n(J\x00\x00\x00\x40\x85" + _text("f8") + b"tR")
    with pytest.raises(pickle.UnpicklingError, match="malformed pickle"):
        load_numpy_pickle(io.BytesIO(crafted))


def test_dtype_without_its_state_is_refused():
    crafted = _raw(b"cnumpy.core.multiarray\nscalar\n" + _DTYPE_F8 + b"C\x08" + b"\0" * 8 + b"\x86R")
    with pytest.raises(pickle.UnpicklingError, match="before its state was set"):
        load_numpy_pickle(io.BytesIO(crafted))


@pytest.mark.parametrize("state", [
    b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3ft",  # object flags on f8
    b"(K\x04X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t",  # other version
    b"(K\x03X\x01\x00\x00\x00!NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t",  # unknown byte order
    b"(K\x03X\x01\x00\x00\x00<NNNK\x08K\x08K\x00t",  # its own item size
])
def test_tampered_dtype_states_are_refused(state):
    with pytest.raises(pickle.UnpicklingError, match="modified state"):
        load_numpy_pickle(io.BytesIO(_raw(_DTYPE_F8 + state + b"b")))


def _array(shape: bytes, data: bytes) -> bytes:
    """_reconstruct(ndarray, (0,), b'b') + BUILD (1, shape, dtype('f8'), False, data)."""
    built_dtype = _DTYPE_F8 + b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
            + b"(K\x01" + shape + built_dtype + b"\x89" + data + b"tb")


def test_hand_built_array_loads_and_wrong_sizes_are_refused():
    ok = load_numpy_pickle(io.BytesIO(_raw(_array(b"K\x02\x85", b"C\x10" + np.array([1.5, -2.0]).tobytes()))))
    assert ok.dtype == np.float64 and ok.tolist() == [1.5, -2.0]
    for shape, data in [(b"K\x03\x85", b"C\x10" + b"\0" * 16),  # bytes short of the shape
                        (b"J\x00\x00\x00\x40J\x00\x00\x00\x40\x86", b"C\x00"),  # 2**60 items, no bytes
                        (b"J\xff\xff\xff\xff\x85", b"C\x00"),  # negative dimension
                        (b"K\x02\x85", b"](K\x01K\x02e")]:  # a list where the bytes belong
        with pytest.raises(pickle.UnpicklingError, match="bad shape|do not fit"):
            load_numpy_pickle(io.BytesIO(_raw(_array(shape, data))))


def test_a_global_that_would_run_code_runs_nothing(tmp_path):
    canary = tmp_path / "canary"
    crafted = _raw(b"cposix\nsystem\n" + _text(f"touch {canary}") + b"\x85R")
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system"):
        load_numpy_pickle(io.BytesIO(crafted))
    assert not canary.exists()


def test_depth_object_count_and_size_are_bounded():
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(pickle.UnpicklingError, match="nested too deep"):
        _load(deep, 4)
    laughs: list = [0]
    for _ in range(8):
        laughs = [laughs] * 10  # 10**8 leaves from a pickle of a few hundred bytes
    with pytest.raises(pickle.UnpicklingError, match="too many objects"):
        _load(laughs, 4)
    from genhuman.pose import safe_pickle

    with pytest.raises(pickle.UnpicklingError, match="over 16 MB"):
        load_numpy_pickle(io.BytesIO(b"\0" * (safe_pickle.MAX_FILE_BYTES + 1)))


@pytest.mark.parametrize("value, message", [
    ({1, 2}, "refusing a pickled set"),
    ({(1, 2): 3}, "dict key"),
    (np.array(["ab"]), "only plain numbers"),
    (np.array(["2020-01-01"], dtype="M8[D]"), "only plain numbers"),
    (np.dtype("f8"), "refusing a pickled _Dtype"),
])
def test_other_types_are_refused(value, message):
    with pytest.raises(pickle.UnpicklingError, match=message):
        _load(value, 4)

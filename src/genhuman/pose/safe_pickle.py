"""Reading the official pose files without executing arbitrary pickles.

The official tools save poses with pickle: V2 ``{i}.npy`` hold a pickled dict of arrays,
V1 ``{i}.pkl`` a pickled (478, 3) array. A file from the internet must not run code when
it is read, so the unpickler accepts only the numpy classes those files need, and it must
not corrupt memory either: numpy trusts a dtype's pickled state, and a dtype whose flags were
cleared (or an object dtype) makes numpy read bytes from the file as object pointers. So
only plain numeric dtypes are built, a dtype's state must be its own canonical state, and an
array's state is checked (numeric dtype, raw bytes of exactly the right length) before numpy
sees it. The pure-Python unpickler is used because only it lets BUILD be checked.
"""

from __future__ import annotations

import pickle
from typing import Any, BinaryIO, ClassVar

import numpy as np

_NUMERIC_KINDS = set("biufc")  # bool, signed, unsigned, float, complex
# An object dtype is allowed for whole arrays only (np.save wraps the official pose dict in a
# 0-d object array): numpy pickles their items as a list of objects, never as raw bytes.


def _numeric_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 8:
        raise pickle.UnpicklingError("refusing a numpy dtype that is not a plain type code")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise pickle.UnpicklingError(f"refusing numpy dtype {spec!r}") from None
    if dtype.kind not in _NUMERIC_KINDS | {"O"} or dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"refusing numpy dtype {spec!r}: only plain numbers and objects are read")
    return np.dtype(spec, bool(align), bool(copy))


def _checked_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or dtype.hasobject:
        raise pickle.UnpicklingError("refusing an array or scalar that is not plain numbers")
    return dtype


def _scalar(dtype: Any, data: Any = b"") -> Any:
    dtype = _checked_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("refusing a numpy scalar whose bytes do not fit its dtype")
    return np.frombuffer(data, dtype=dtype)[0]


def _latin1_bytes(text: Any, encoding: str = "utf-8") -> bytes:
    """Protocol 2 writes bytes as ``_codecs.encode(str, "latin1")``."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refusing _codecs.encode other than latin1 bytes")
    return text.encode("latin1")


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("refusing an ndarray subclass")
    return np.ndarray((0,), dtype=np.uint8)  # its state (shape, dtype, data) comes by BUILD, checked


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """Protocol 5 writes contiguous arrays as ``numpy.core.numeric._frombuffer``."""
    _, shape, dtype, _, data = _checked_array_state((1, shape, dtype, False, bytes(memoryview(buffer))
                                                     if isinstance(buffer, (bytes, bytearray, memoryview)) else buffer))
    if order not in ("C", "F"):
        raise pickle.UnpicklingError("refusing an ndarray with an unknown memory order")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy()


def _checked_array_state(state: Any) -> tuple:
    if not (isinstance(state, tuple) and len(state) == 5):
        raise pickle.UnpicklingError("refusing an ndarray state of an unknown layout")
    version, shape, dtype, fortran, data = state
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and 0 <= n < 2**31 for n in shape)):
        raise pickle.UnpicklingError("refusing an ndarray with a bad shape")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if isinstance(dtype, np.dtype) and dtype.kind == "O" and dtype.fields is None:
        if not isinstance(data, list) or len(data) != count:  # raw bytes would be read as pointers
            raise pickle.UnpicklingError("refusing an object array whose items are not a list")
        return version, shape, dtype, bool(fortran), data
    dtype = _checked_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)) or len(data) != count * dtype.itemsize:
        raise pickle.UnpicklingError("refusing an ndarray whose bytes do not fit its shape and dtype")
    return version, shape, dtype, bool(fortran), bytes(data)


class NumpyOnlyUnpickler(pickle._Unpickler):
    """Accepts only what pickling numeric numpy arrays, scalars and plain containers needs."""

    FACTORIES = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.multiarray", "scalar"): _scalar,
        ("numpy._core.multiarray", "scalar"): _scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _numeric_dtype,
        ("_codecs", "encode"): _latin1_bytes,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    }

    def find_class(self, module: str, name: str):
        factory = self.FACTORIES.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return factory

    def load_build(self) -> None:
        stack: list[Any] = self.stack  # type: ignore[attr-defined]  # the pure-Python unpickler's stack
        state = stack.pop()
        inst = stack[-1]
        if isinstance(inst, np.dtype):
            if state != inst.__reduce__()[2]:
                raise pickle.UnpicklingError("refusing a numpy dtype with a modified state")
            return
        if isinstance(inst, np.ndarray):
            inst.__setstate__(_checked_array_state(state))
            return
        raise pickle.UnpicklingError(f"refusing to set the state of a {type(inst).__name__}")

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


def load_numpy_pickle(fh: BinaryIO):
    try:
        return NumpyOnlyUnpickler(fh).load()
    except (TypeError, AttributeError, IndexError, KeyError) as exc:  # malformed opcodes / arguments
        raise pickle.UnpicklingError(f"malformed pickle ({type(exc).__name__})") from None

"""Reading the official pose files without executing arbitrary pickles.

The official tools save poses with pickle: V2 ``{i}.npy`` hold a pickled dict of arrays,
V1 ``{i}.pkl`` a pickled (478, 3) array. A file from the internet must not run code when
it is read, and it must not corrupt memory either: numpy trusts a dtype's pickled state,
and a dtype whose flags were cleared (or an object dtype) makes numpy read bytes from the
file as object pointers. So this unpickler is safe by construction:

- it resolves no class or function of numpy or anyone else: the few globals the official
  files name map to our own small functions and inert records;
- a pickled dtype becomes an inert record (a type code from a whitelist, a validated byte
  order); numpy only ever sees dtypes we build from that whitelist;
- every array is built by us, with ``np.frombuffer`` from bytes whose length matches the
  validated shape exactly (object arrays: from a list of exactly that many items);
- the result is rebuilt from plain containers, numbers, strings and those arrays, with a
  bound on nesting depth and on the number of objects, and the file size is capped.

The pure-Python unpickler is used because only it lets BUILD be checked.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
from typing import Any, BinaryIO, ClassVar

import numpy as np

MAX_FILE_BYTES = 16 * 1024 * 1024  # an official pose file is a few KB; 16 MB is generous
MAX_DEPTH = 16  # the official V2 dict nests 3 deep (0-d object array > dict > dict)
MAX_OBJECTS = 100_000  # containers, numbers and arrays in one file
MAX_NDIM = 8

# The type codes numpy writes when it pickles a dtype (``dtype.__reduce__()``), and the flags
# field of each one's canonical state; anything else (strings, dates, records) is refused.
_CODES = {f"{k}{n}" for k, sizes in {"i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8), "c": (8, 16)}.items()
          for n in sizes} | {"b1", "O8"}
_ORDERS = {"<", ">", "|", "="}
_OBJECT_FLAGS = 63  # numpy's flags for the object dtype; every plain number has 0


class _Dtype:
    """A pickled dtype, inert: a whitelisted type code and, once BUILD checked it, a byte order."""

    def __init__(self, code: str):
        self.code = code
        self.order: str | None = None

    @property
    def is_object(self) -> bool:
        return self.code == "O8"

    def numpy(self) -> np.dtype:
        if self.order is None:
            raise pickle.UnpicklingError("refusing a numpy dtype used before its state was set")
        dtype = np.dtype(self.code)
        return dtype if self.order in ("|", "=") else dtype.newbyteorder("<" if self.order == "<" else ">")

    def set_state(self, state: Any) -> None:
        flags = _OBJECT_FLAGS if self.is_object else 0
        if (self.order is not None or not isinstance(state, tuple) or len(state) != 8
                or state[0] != 3 or state[1] not in _ORDERS or state[2:] != (None, None, None, -1, -1, flags)):
            raise pickle.UnpicklingError("refusing a numpy dtype with a modified state")
        self.order = state[1]


class _PendingArray:
    """What ``_reconstruct`` gives: an empty record that BUILD fills with an array we built."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` as ``_reconstruct``'s first argument; calling it does nothing."""


_NDARRAY = _NdarrayClass()


def _dtype(code: Any, align: Any = False, copy: Any = True) -> _Dtype:
    flags_ok = type(align) in (bool, int) and align == 0 and type(copy) in (bool, int) and copy == 1
    if not isinstance(code, str) or code not in _CODES or not flags_ok:
        raise pickle.UnpicklingError(f"refusing numpy dtype {str(code)[:16]!r}: only plain numbers are read")
    return _Dtype(code)


def _shape(shape: Any) -> tuple[int, ...]:
    if not (isinstance(shape, tuple) and len(shape) <= MAX_NDIM
            and all(type(n) is int and 0 <= n < 2**31 for n in shape)):
        raise pickle.UnpicklingError("refusing an ndarray with a bad shape")
    return shape


def _numeric_array(data: Any, dtype: Any, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    if not isinstance(dtype, _Dtype) or dtype.is_object:
        raise pickle.UnpicklingError("refusing an array that is not plain numbers")
    numpy_dtype = dtype.numpy()
    if not isinstance(data, (bytes, bytearray)) or len(data) != math.prod(shape) * numpy_dtype.itemsize:
        raise pickle.UnpicklingError("refusing an ndarray whose bytes do not fit its shape and dtype")
    return np.frombuffer(bytes(data), dtype=numpy_dtype).reshape(shape, order="F" if fortran else "C").copy(order="K")


def _object_array(items: Any, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
    """numpy pickles an object array's items as a list; raw bytes would be read as pointers."""
    if not isinstance(items, list) or len(items) != math.prod(shape):
        raise pickle.UnpicklingError("refusing an object array whose items are not a list")
    flat = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        flat[i] = item
    return flat.reshape(shape, order="F" if fortran else "C")


def _array_from_state(state: Any) -> np.ndarray:
    if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1 and isinstance(state[3], bool)):
        raise pickle.UnpicklingError("refusing an ndarray state of an unknown layout")
    _, shape, dtype, fortran, data = state
    shape = _shape(shape)
    if isinstance(dtype, _Dtype) and dtype.is_object:
        dtype.numpy()  # its state must have been checked
        return _object_array(data, shape, fortran)
    return _numeric_array(data, dtype, shape, fortran)


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _PendingArray:
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("refusing an ndarray subclass")
    return _PendingArray()  # its shape, dtype and bytes come by BUILD, checked


def _scalar(dtype: Any, data: Any = b"") -> Any:
    if not isinstance(dtype, _Dtype) or dtype.is_object:
        raise pickle.UnpicklingError("refusing a numpy scalar that is not a plain number")
    numpy_dtype = dtype.numpy()
    if not isinstance(data, bytes) or len(data) != numpy_dtype.itemsize:
        raise pickle.UnpicklingError("refusing a numpy scalar whose bytes do not fit its dtype")
    return np.frombuffer(data, dtype=numpy_dtype)[0]


def _latin1_bytes(text: Any, encoding: Any = "utf-8") -> bytes:
    """Protocol 2 writes bytes as ``_codecs.encode(str, "latin1")``."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refusing _codecs.encode other than latin1 bytes")
    return text.encode("latin1")


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """Protocol 5 writes contiguous arrays as ``numpy.core.numeric._frombuffer``."""
    if order not in ("C", "F"):
        raise pickle.UnpicklingError("refusing an ndarray with an unknown memory order")
    return _numeric_array(buffer, dtype, _shape(shape), order == "F")


class NumpyOnlyUnpickler(pickle._Unpickler):
    """Accepts only what pickling numeric numpy arrays, scalars and plain containers needs."""

    FACTORIES: ClassVar[dict[tuple[str, str], Any]] = {
        **{(m, "_reconstruct"): _reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
        **{(m, "scalar"): _scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
        **{(m, "_frombuffer"): _frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1_bytes,
    }

    def find_class(self, module: str, name: str):
        factory = self.FACTORIES.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(f"refusing to load {str(module)[:40]}.{str(name)[:40]}")
        return factory

    def persistent_load(self, pid: Any):
        raise pickle.UnpicklingError("refusing a persistent id")

    def load_build(self) -> None:
        stack: list[Any] = self.stack  # type: ignore[attr-defined]  # the pure-Python unpickler's stack
        state = stack.pop()
        inst = stack[-1]
        if isinstance(inst, _Dtype):
            inst.set_state(state)
        elif isinstance(inst, _PendingArray) and inst.array is None:
            inst.array = _array_from_state(state)
        else:
            raise pickle.UnpicklingError(f"refusing to set the state of a {type(inst).__name__}")

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


_PLAIN = (str, bytes, int, float, complex, bool, type(None), np.bool_, np.integer, np.floating, np.complexfloating)


class _Rebuild:
    """The unpickled value, rebuilt from plain types only, with bounded depth and size."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, value: Any, depth: int = 0) -> Any:
        self.count += 1
        if depth > MAX_DEPTH or self.count > MAX_OBJECTS:
            raise pickle.UnpicklingError("refusing a pickle nested too deep or holding too many objects")
        if isinstance(value, _PendingArray):
            if value.array is None:
                raise pickle.UnpicklingError("refusing an ndarray without its state")
            value = value.array
        if isinstance(value, np.ndarray):
            if value.dtype != object:
                return value
            out = np.empty(value.shape, dtype=object)
            for index, item in np.ndenumerate(value):
                out[index] = self(item, depth + 1)
            return out
        if isinstance(value, _PLAIN):
            return value
        if type(value) is dict:
            return {self._key(k): self(v, depth + 1) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self(v, depth + 1) for v in value)
        raise pickle.UnpicklingError(f"refusing a pickled {type(value).__name__}")

    @staticmethod
    def _key(key: Any) -> Any:
        if not isinstance(key, (str, int)):
            raise pickle.UnpicklingError("refusing a dict key that is not a string or an integer")
        return key


def load_numpy_pickle(fh: BinaryIO) -> Any:
    """One pickle of numeric numpy arrays, numbers, strings, dicts, lists and tuples.

    Anything else, and anything malformed, truncated or too large, is a
    ``pickle.UnpicklingError`` (one short message, never numpy's or pickle's internals).
    """
    data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise pickle.UnpicklingError(f"refusing a pickle over {MAX_FILE_BYTES // 2**20} MB")
    try:
        value = NumpyOnlyUnpickler(io.BytesIO(data)).load()
        return _Rebuild()(value)
    except pickle.UnpicklingError:
        raise
    except EOFError:
        raise pickle.UnpicklingError("truncated pickle") from None
    except (TypeError, AttributeError, IndexError, KeyError, ValueError, struct.error, UnicodeError,
            OverflowError, RecursionError, MemoryError) as exc:  # malformed opcodes / arguments
        raise pickle.UnpicklingError(f"malformed pickle ({type(exc).__name__})") from None

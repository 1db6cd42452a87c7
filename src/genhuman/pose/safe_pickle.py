"""Reading the official pose files without executing arbitrary pickles.

The official tools save poses with pickle: V2 ``{i}.npy`` hold a pickled dict of arrays,
V1 ``{i}.pkl`` a pickled (478, 3) array. A file from the internet must not run code when
it is read, so the unpickler accepts only the numpy classes those files need.
"""

from __future__ import annotations

import pickle
from typing import BinaryIO


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Accepts only what pickling numpy arrays, scalars and plain containers needs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_numpy_pickle(fh: BinaryIO):
    return NumpyOnlyUnpickler(fh).load()

"""A restricted unpickler for DEAP's ``.dat`` files (Python-2 pickles of numpy arrays).

``pickle.load`` runs whatever code a pickle names, so a file downloaded from anywhere could do
anything. DEAP's files only need numpy arrays, dtypes and plain containers (dict, list, tuple,
str, numbers), so :func:`safe_load` resolves exactly those globals and refuses every other one
*before* anything is called: a malicious file raises :class:`DataError` and its code never runs.
"""

from __future__ import annotations

import codecs
import collections
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np

from emotionkd.firmware_bridge.errors import DataError


def _numpy_globals() -> dict[tuple[str, str], Any]:
    # Take the reconstruction helpers from numpy's own reducers, so both spellings
    # (numpy.core.* in numpy 1 / Python-2 files, numpy._core.* in numpy 2) map to the real
    # functions without importing numpy's deprecated module paths.
    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.empty(0).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], Any] = {}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    # numpy ≥ 1.25 pickles a dtype by its class (numpy.dtypes.Float64DType …)
    for name in dir(np.dtypes):
        if name.endswith("DType"):
            allowed[("numpy.dtypes", name)] = getattr(np.dtypes, name)
    # Python 3 pickles of bytes at protocol ≤ 2 call _codecs.encode(str, 'latin1')
    allowed[("_codecs", "encode")] = codecs.encode
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    return allowed


_ALLOWED: Final = _numpy_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._source}: refused to unpickle: the file asks for {module}.{name}, which is "
                "not a numpy array or plain container (a DEAP file never does; the file may be "
                "malicious or not a DEAP .dat file). Nothing from it was run.",
                path=self._source,
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self._source}: refused to unpickle: persistent ids are not allowed", path=self._source)


def safe_load(path: str | Path) -> Any:
    """Load a pickle that may hold only numpy arrays and plain containers.

    Raises:
        DataError: the file is missing, truncated, corrupt, or names any other global.
    """
    source = str(path)
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, source).load()
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"{source}: file not found", path=source) from exc
    except EOFError as exc:
        raise DataError(f"{source}: truncated pickle (ends early); re-download or re-extract the file", path=source) from exc
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError, OSError) as exc:
        raise DataError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})", path=source) from exc


__all__ = ["safe_load"]

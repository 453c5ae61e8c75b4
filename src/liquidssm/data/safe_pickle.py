"""Restricted unpickler for the official LrcSSM split files (pickled ``jax.Array`` objects).

LrcSSM Table 1 data (``experiments/lrc_ssm/<Dataset>/<seed>/{X,y}_{train,val,test}.pkl``);
chapter reproductions/01_lra_synthetic_data. ``pickle.load`` on a downloaded file can run
arbitrary code (any importable callable can be named in a ``REDUCE``). These files only need the
globals that rebuild a NumPy array; everything else is refused with
:class:`UnsafePickleError`. A ``jax.Array`` pickles as
``jax._src.array._reconstruct_array(fun, args, arr_state, aval_state)`` where ``fun(*args)`` is
NumPy's ``_reconstruct`` and ``arr_state`` the ndarray state; we map that reconstructor to a
NumPy-only rebuild, so JAX is not needed.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

_np_reconstruct = np._core.multiarray._reconstruct  # type: ignore[attr-defined]
_np_frombuffer = np._core.numeric._frombuffer  # type: ignore[attr-defined]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the NumPy-array allowlist."""


def _rebuild_jax_array(fun: Any, args: tuple, arr_state: tuple, aval_state: dict | None = None
                       ) -> np.ndarray:
    """NumPy stand-in for ``jax._src.array._reconstruct_array``: the wrapped ndarray itself."""
    if fun is not _np_reconstruct:
        raise UnsafePickleError("jax array reconstructor called with an unexpected constructor")
    arr = fun(*args)
    arr.__setstate__(arr_state)
    return arr


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (latin-1 only)."""
    if encoding != "latin1":
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,
    ("jax._src.array", "_reconstruct_array"): _rebuild_jax_array,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only returns NumPy-array builders."""

    def __init__(self, file: io.BufferedIOBase, source: str = "<bytes>") -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refusing to load global {module}.{name} (only NumPy arrays and "
                f"jax.Array reconstructors are allowed in LrcSSM split files)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: persistent ids are not allowed")


def load_array_pickle(path: str | os.PathLike[str]) -> np.ndarray:
    """Load one pickled (jax or NumPy) array from ``path`` without running foreign code."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            obj = NumpyOnlyUnpickler(f, str(path)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise pickle.UnpicklingError(f"{path}: corrupt or truncated pickle ({e})") from None
    if not isinstance(obj, np.ndarray):
        raise UnsafePickleError(f"{path}: expected an array, got {type(obj).__name__}")
    return obj


def dumps_like_jax(arr: np.ndarray) -> bytes:
    """Bytes with the structure of ``pickle.dumps(jax.numpy.asarray(arr))`` (protocol 3).

    Used by fixture writers and tests, as JAX is not a dependency: the opcode stream is
    ``GLOBAL jax._src.array._reconstruct_array`` applied (``REDUCE``) to
    ``(numpy _reconstruct, (ndarray, (0,), b'b'), ndarray state, {'weak_type': False})``.
    """
    fun, args, state = np.ascontiguousarray(arr).__reduce__()
    inner = pickle.dumps((fun, args, state, {"weak_type": False}), protocol=3)
    if inner[:2] != b"\x80\x03" or inner[-1:] != b".":
        raise RuntimeError("unexpected pickle framing")
    return b"\x80\x03" + b"cjax._src.array\n_reconstruct_array\n" + inner[2:-1] + b"R."

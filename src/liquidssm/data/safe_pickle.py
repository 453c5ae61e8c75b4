"""Restricted unpickler for the official LrcSSM split files (pickled ``jax.Array`` objects).

LrcSSM Table 1 data (``experiments/lrc_ssm/<Dataset>/<seed>/{X,y}_{train,val,test}.pkl``);
chapter reproductions/01_lra_synthetic_data. ``pickle.load`` on a downloaded file can run
arbitrary code (any importable callable can be named in a ``REDUCE``). These files only need the
globals that rebuild a NumPy array; everything else is refused with
:class:`UnsafePickleError`. A ``jax.Array`` pickles as
``jax._src.array._reconstruct_array(fun, args, arr_state, aval_state)`` where ``fun(*args)`` is
NumPy's ``_reconstruct`` and ``arr_state`` the ndarray state; we map that reconstructor to a
NumPy-only rebuild, so JAX is not needed. Array sizes are bounded by the file's own size and only
numeric dtypes load, so a tiny file cannot make the loader allocate gigabytes.
"""

from __future__ import annotations

import functools
import io
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

_np_reconstruct = np._core.multiarray._reconstruct  # type: ignore[attr-defined]
_np_frombuffer = np._core.numeric._frombuffer  # type: ignore[attr-defined]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the NumPy-array allowlist, or asks for more than it holds."""


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` inside a pickle: usable as ``_reconstruct``'s subtype, never called.

    A direct ``ndarray(shape)`` call would allocate any shape a tiny file asks for; NumPy's own
    pickles never make one.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsafePickleError("numpy.ndarray(...) called directly (it allocates any shape); NumPy array "
                                "pickles never do this")


_NDARRAY = _NdarrayClass()
_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex


def _numeric_dtype(*args: Any) -> np.dtype:
    """``numpy.dtype(*args)`` restricted to plain numeric dtypes (no object, void or string types)."""
    try:
        dt = np.dtype(*args)
    except (TypeError, ValueError) as e:
        raise UnsafePickleError(f"numpy.dtype{args!r} is not a dtype ({e})") from None
    if dt.kind not in _NUMERIC_KINDS or dt.hasobject or dt.fields is not None:
        raise UnsafePickleError(f"numpy.dtype {dt} refused: only bool, integer, float and complex arrays load")
    return dt


def _nbytes(shape: Any, dtype: Any) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (Python ints, never overflows); refuses odd shapes."""
    dims = (shape,) if isinstance(shape, int) else shape
    if not isinstance(dims, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                for d in dims):
        raise UnsafePickleError(f"array shape {shape!r} is not a tuple of non-negative ints")
    return math.prod(dims) * _numeric_dtype(dtype).itemsize


class _BoundedReconstruct:
    """NumPy's ``_reconstruct(ndarray, shape, dtype)``, refusing shapes larger than the file allows."""

    def __init__(self, max_bytes: int, source: str) -> None:
        self.max_bytes, self.source = max_bytes, source

    def __call__(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not _NDARRAY:
            raise UnsafePickleError(f"{self.source}: _reconstruct of {subtype!r} refused (only numpy.ndarray)")
        nbytes = _nbytes(shape, dtype)
        if nbytes > self.max_bytes:
            raise UnsafePickleError(f"{self.source}: the pickle asks for an array of {nbytes} bytes (shape "
                                    f"{shape!r}) but the file holds only {self.max_bytes} bytes")
        return _np_reconstruct(np.ndarray, shape, dtype)


def _rebuild_jax_array(expected: _BoundedReconstruct, fun: Any, args: tuple, arr_state: tuple,
                       aval_state: dict | None = None) -> np.ndarray:
    """NumPy stand-in for ``jax._src.array._reconstruct_array``: the wrapped ndarray itself."""
    if fun is not expected:
        raise UnsafePickleError("jax array reconstructor called with an unexpected constructor")
    arr = fun(*args)
    arr.__setstate__(arr_state)  # NumPy checks the data against the shape: no allocation beyond the file
    return arr


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: str, *rest: Any) -> np.ndarray:
    """NumPy's ``_frombuffer`` (protocol-5 arrays), with the dtype restricted to numeric types."""
    return _np_frombuffer(buf, _numeric_dtype(dtype), shape, order, *rest)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (latin-1 only)."""
    if encoding != "latin1":
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_FROMBUFFER = {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}


def _stream_size(file: Any) -> int:
    """Bytes in the stream ``file`` (a file on disk, a ``BytesIO`` or any seekable stream)."""
    try:
        return os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    try:
        here = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(here)
        return int(end)
    except (AttributeError, OSError):
        return 0


class NumpyOnlyUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only returns NumPy-array builders.

    Arrays are bounded by ``max_bytes`` (default: the size of ``file``): a pickle that asks for a
    larger array than it could possibly hold the data of is refused before anything is allocated.
    """

    def __init__(self, file: io.BufferedIOBase, source: str = "<bytes>", max_bytes: int | None = None) -> None:
        super().__init__(file)
        self.source = source
        self._reconstruct = _BoundedReconstruct(_stream_size(file) if max_bytes is None else max_bytes, source)
        self._allowed: dict[tuple[str, str], Any] = {
            ("_codecs", "encode"): _latin1_encode,
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): _numeric_dtype,
            ("jax._src.array", "_reconstruct_array"): functools.partial(_rebuild_jax_array, self._reconstruct),
            **{key: self._reconstruct for key in _RECONSTRUCT},
            **{key: _frombuffer for key in _FROMBUFFER},
        }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refusing to load global {module}.{name} (only NumPy arrays and "
                f"jax.Array reconstructors are allowed in LrcSSM split files)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: persistent ids are not allowed")


#: what the unpickler raises on a damaged file (besides :class:`UnsafePickleError`): truncated data,
#: bad opcodes, and ``OverflowError`` for a length field (``FRAME``, ``BINBYTES8``, ``BINUNICODE8``)
#: beyond any size
DAMAGE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
                 AttributeError, MemoryError, RecursionError, OverflowError)


def damage_message(path: Path, exc: BaseException) -> str:
    """One line naming ``path`` and what is wrong with it, for an error of :data:`DAMAGE_ERRORS`."""
    if isinstance(exc, OverflowError):
        return (f"{path}: corrupt pickle: a length field asks for more bytes than the file holds "
                f"({path.stat().st_size} bytes; OverflowError: {exc})")
    return f"{path}: corrupt or truncated pickle ({type(exc).__name__}: {exc})"


def load_array_pickle(path: str | os.PathLike[str]) -> np.ndarray:
    """Load one pickled (jax or NumPy) array of numbers from ``path`` without running foreign code.

    Refuses every global outside the NumPy-array builders, arrays larger than the file, and
    object, string or structured dtypes (:class:`UnsafePickleError`); a damaged file (truncated, a
    length field beyond the file) raises :class:`pickle.UnpicklingError` naming it.
    """
    path = Path(path)
    with open(path, "rb") as f:
        try:
            obj = NumpyOnlyUnpickler(f, str(path)).load()
        except UnsafePickleError as e:
            if str(path) in str(e):
                raise
            raise UnsafePickleError(f"{path}: {e}") from None
        except DAMAGE_ERRORS as e:
            raise pickle.UnpicklingError(damage_message(path, e)) from None
    if not isinstance(obj, np.ndarray):
        raise UnsafePickleError(f"{path}: expected an array, got {type(obj).__name__}")
    if obj.dtype.kind not in _NUMERIC_KINDS or obj.dtype.hasobject:
        raise UnsafePickleError(f"{path}: expected an array of numbers, got dtype {obj.dtype}")
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

"""Input validation shared by every public function of :mod:`liquidssm`.

Each helper raises :class:`TypeError` (wrong kind of object or dtype) or :class:`ValueError`
(wrong shape or value) with a message that names the argument, what was expected and what was
given, so that a reader who passes bad input learns what to fix.

**Array-likes.** One rule for the math modules (:mod:`~liquidssm.ssm`, :mod:`~liquidssm.kernels`,
:mod:`~liquidssm.liquid`, :mod:`~liquidssm.scan`, :mod:`~liquidssm.newton`): every public function
accepts a NumPy array, a nested list or a Python number wherever it takes a tensor, and converts
it at its entry with :func:`as_tensor` (or :func:`as_tensors`), keeping its dtype (a float64 array
becomes a float64 tensor); an input that is not numeric is refused by name. The algorithm cores
documented as taking validated inputs (``scan.*_core``) are not entry points. Modules
(the layers and models of :mod:`~liquidssm.layers` and :mod:`~liquidssm.lrcssm`) are different:
their input must be a ``torch.Tensor`` of the module's own dtype (:func:`check_module_dtype`),
as a silent cast would hide a float64 batch fed to a float32 model.

**Memory guard.** Functions whose memory grows like ``O(N^2 L)`` or ``O(H N L)`` estimate the
bytes they are about to allocate and call :func:`check_memory` first, so a mistyped ``L`` or
``N`` raises :class:`MemoryLimitError` (a ``ValueError`` and a ``MemoryError``) with the
estimate in the message instead of taking the machine down. The limit is, in this order: the
value set with :func:`set_memory_limit` (or inside :func:`limit_memory`), the environment
variable ``LIQUIDSSM_MEMORY_LIMIT`` (bytes, or a size such as ``64GiB``; ``none`` switches the
guard off), else half of the memory of the device the tensors live on (physical RAM for CPU
tensors, the GPU's memory for CUDA tensors).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
COMPLEX_DTYPES = (torch.complex64, torch.complex128)
HALF_DTYPES = (torch.float16, torch.bfloat16)

__all__ = [
    "MemoryLimitError",
    "DEVICES",
    "as_tensor",
    "as_tensors",
    "check_all_finite",
    "check_broadcasts_into",
    "check_choice",
    "check_device",
    "check_finite",
    "check_int",
    "check_length",
    "check_memory",
    "check_module_dtype",
    "check_ndim",
    "check_per_system",
    "check_positive",
    "check_same_dtype",
    "check_square",
    "format_bytes",
    "limit_memory",
    "memory_limit",
    "set_memory_limit",
    "tensor_bytes",
]


def as_tensor(x: object, name: str, *, allow_complex: bool = False, allow_half: bool = True) -> torch.Tensor:
    """Return ``x`` as a floating (or complex) tensor, refusing integer, bool and object inputs.

    ``allow_half=False`` also refuses float16/bfloat16 (the linear-algebra oracles need float32
    or float64; half precision belongs inside an autocast region).
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise TypeError(f"{name}: expected a tensor or array-like of numbers, got {type(x).__name__}") from exc
    allowed = FLOAT_DTYPES + (COMPLEX_DTYPES if allow_complex else ())
    if t.dtype not in allowed:
        kinds = "a real floating" + (" or complex" if allow_complex else "")
        raise TypeError(f"{name}: expected {kinds} dtype, got {t.dtype}")
    if not allow_half and t.dtype in HALF_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64{' (or complex)' if allow_complex else ''}, "
                        f"got {t.dtype}; half precision is not supported here, cast with .float()")
    return t


def as_tensors(*pairs: tuple[str, object], allow_complex: bool = True) -> tuple[torch.Tensor, ...]:
    """:func:`as_tensor` of several ``(name, value)`` pairs: the entry line of a function taking several arrays."""
    return tuple(as_tensor(value, name, allow_complex=allow_complex) for name, value in pairs)


def check_module_dtype(x: object, name: str, want: torch.dtype, owner: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a tensor of the dtype ``want`` of the module ``owner`` (``"model"``, ``"layer"``).

    A float64 batch fed to a float32 module would otherwise be cast down without a word (or fail
    inside a matrix product with a raw dtype error). Under ``torch.autocast`` on ``x``'s device the
    cast is the point of the region, so any dtype is let through.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}; convert it with torch.as_tensor")
    if x.dtype != want and not torch.is_autocast_enabled(x.device.type):
        fix = f"convert the batch with {name}.to({want})"
        if x.is_floating_point():
            fix += f" or the {owner} with {owner}.to({x.dtype})"
        raise TypeError(f"{name}: expected {want} values (the {owner}'s dtype), got {x.dtype}; {fix}")
    return x


#: the accelerators a run can ask for (``"gpu"`` is another name for ``"cuda"``; ``"auto"`` picks
#: CUDA when it is available, else the CPU)
DEVICES = ("cpu", "cuda", "gpu", "auto")


def check_device(device: object, name: str = "device", *, require_available: bool = True) -> str:
    """Return ``device`` as Lightning's accelerator name after checking it is one of :data:`DEVICES`.

    ``"gpu"`` is returned as ``"cuda"``. With ``require_available`` (the default, for the process
    that trains) a CUDA device on a machine where ``torch.cuda.is_available()`` is false is refused
    here, before any data is built, instead of inside Lightning; a launcher that only submits runs
    to other machines passes ``require_available=False``. Other accelerators Lightning knows (``"tpu"``, ``"mps"``) are not supported by
    the book's engine and are refused with the valid names.
    """
    if not isinstance(device, str):
        raise TypeError(f"{name}: expected one of {list(DEVICES)}, got {type(device).__name__} {device!r}")
    if device not in DEVICES:
        hint = ""
        if device.strip().lower() in DEVICES:
            hint = f" (names are lower case: {device.strip().lower()!r})"
        elif ":" in device:
            hint = " (a device kind without an index; the number of GPUs is the devices argument)"
        raise ValueError(f"{name}: expected one of {list(DEVICES)}, got {device!r}{hint}")
    key = "cuda" if device == "gpu" else device
    if require_available and key == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}: {device!r} asks for a CUDA GPU, but torch.cuda.is_available() is False on this "
                         f"machine (torch {torch.__version__}, CUDA build {torch.version.cuda}); use {name}='cpu' "
                         f"or 'auto'")
    return key


def _distinct_view(t: torch.Tensor) -> torch.Tensor:
    """``t`` without its broadcast (stride-0) axes: the same values, none repeated by ``expand``."""
    for dim in range(t.ndim):
        if t.stride(dim) == 0 and t.shape[dim] > 1:
            t = t.narrow(dim, 0, 1)
    return t


def check_finite(t: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``t`` holds NaN or ±inf (an expanded view is checked without copying it)."""
    values = _distinct_view(t)
    if not bool(torch.isfinite(values).all()):
        n_bad = int((~torch.isfinite(values)).sum())
        raise ValueError(f"{name}: expected finite values, found {n_bad} NaN/inf entries")
    return t


def check_all_finite(*pairs: tuple[str, torch.Tensor]) -> None:
    """:func:`check_finite` of several tensors with a single device synchronisation.

    The common case (everything finite) costs one ``bool()`` on the accelerator instead of one
    per tensor; only a failure looks at the tensors one by one to name the culprit.
    """
    if not pairs:
        return
    flags = [torch.isfinite(_distinct_view(t.detach())).all() for _, t in pairs]
    if not bool(torch.stack([f.to(flags[0].device) for f in flags]).all()):
        for name, t in pairs:
            check_finite(t.detach(), name)


def check_ndim(t: torch.Tensor, name: str, ndims: int | Sequence[int], layout: str = "") -> torch.Tensor:
    """Raise ``ValueError`` unless ``t.ndim`` is one of ``ndims``; ``layout`` names the axes."""
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if t.ndim not in allowed:
        want = " or ".join(str(d) for d in allowed)
        hint = f" {layout}" if layout else ""
        raise ValueError(f"{name}: expected a {want}-D tensor{hint}, got shape {tuple(t.shape)}")
    return t


def check_length(t: torch.Tensor, name: str, layout: str = "(..., L)") -> torch.Tensor:
    """Raise ``ValueError`` unless the last (length) axis of ``t`` holds at least one step."""
    if t.ndim == 0 or t.shape[-1] < 1:
        raise ValueError(f"{name}: expected a sequence {layout} with length L >= 1, got shape {tuple(t.shape)}")
    return t


def check_square(t: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` unless the last two axes of ``t`` are square."""
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise ValueError(f"{name}: expected a square (..., N, N) matrix, got shape {tuple(t.shape)}")
    return t


def check_broadcasts_into(shape: Sequence[int], name: str, target: Sequence[int], what: str) -> None:
    """Raise ``ValueError`` unless ``shape`` broadcasts to ``target`` without enlarging it.

    Used for per-system arguments (a step ``dt``, an initial state ``x0``): a shape such as
    ``(H, 1)`` against ``H`` systems would otherwise broadcast into an ``(H, H)`` outer product
    of systems without a word. ``what`` names the target (e.g. ``"the batch of systems"``).
    """
    shape, target = tuple(shape), tuple(target)
    try:
        joint = tuple(torch.broadcast_shapes(shape, target))
    except RuntimeError:
        joint = None
    if joint != target:
        raise ValueError(f"{name}: shape {shape} does not broadcast to {what} {target}"
                         + (f" (it would build a {joint} batch)" if joint is not None else ""))


def check_per_system(shape: Sequence[int], name: str, batch: Sequence[int],
                     what: str = "the batch of systems") -> None:
    """Raise ``ValueError`` unless ``shape`` (a scalar, or one value per system) fits ``batch``.

    The two shapes must broadcast into one of them: a step ``dt`` of shape ``(H,)`` for ``H``
    systems, or for one shared system, is fine; ``(H, 1)`` against ``H`` systems is refused
    rather than silently turned into ``H x H`` systems.
    """
    shape, batch = tuple(shape), tuple(batch)
    try:
        joint = tuple(torch.broadcast_shapes(shape, batch))
    except RuntimeError:
        joint = None
    if joint not in (batch, shape):
        built = "does not broadcast with it" if joint is None else f"would build a {joint} batch"
        raise ValueError(f"{name}: expected a scalar or one value per system (a shape that broadcasts with "
                         f"{what} {batch}), got shape {shape}, which {built}")


def check_positive(value: object, name: str) -> torch.Tensor:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and strictly positive."""
    if isinstance(value, torch.Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(value, dtype=torch.float64)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise TypeError(f"{name}: expected a positive number or tensor, got {type(value).__name__} "
                            f"{value!r}") from exc
    if t.is_complex():
        raise TypeError(f"{name}: expected a real positive step, got complex dtype {t.dtype}")
    if t.dtype == torch.bool:
        raise TypeError(f"{name}: expected a real positive step, got a bool tensor")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.numel() == 0:
        raise ValueError(f"{name}: expected at least one value > 0, got an empty tensor of shape {tuple(t.shape)}")
    if not bool((torch.isfinite(t) & (t > 0)).all()):
        raise ValueError(f"{name}: expected finite values > 0, got {t.detach().flatten()[:5].tolist()}")
    return t


def check_int(value: object, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking its type and range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected an int <= {maximum}, got {value}")
    return value


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    try:
        ok = value in choices
    except TypeError:  # an unhashable value against a set of choices
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return str(value)


def check_same_dtype(*pairs: tuple[str, torch.Tensor]) -> torch.dtype:
    """Raise ``TypeError`` unless all tensors share the same real precision."""
    def real(d: torch.dtype) -> torch.dtype:
        return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(d, d)

    dtypes = {real(t.dtype) for _, t in pairs}
    if len(dtypes) > 1:
        listing = ", ".join(f"{n}: {t.dtype}" for n, t in pairs)
        raise TypeError(f"expected tensors of one precision, got {listing}")
    return next(iter(dtypes))


# ----------------------------------------------------------------------------------------------
# the memory guard
# ----------------------------------------------------------------------------------------------
class MemoryLimitError(ValueError, MemoryError):
    """A call would allocate more than the memory limit (see the module docstring)."""


_MEMORY_ENV = "LIQUIDSSM_MEMORY_LIMIT"  # a size, not a directory (liquidssm.paths owns those)
_UNSET = object()
_limit_override: list[object] = [_UNSET]
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _parse_size(text: str) -> int | None:
    """``"64GiB"``, ``"5e9"``, ``"none"`` -> bytes (``None`` = no limit); ``ValueError`` otherwise."""
    text = text.strip().lower()
    if text in ("none", "off", "0", "inf", "unlimited"):
        return None
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)", text)
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"{_MEMORY_ENV}: expected a size such as 64GiB, 5e9 or 'none', got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _device_memory(device: torch.device | str | None) -> int:
    """Total memory of ``device`` in bytes (physical RAM for the CPU; 16 GiB where unknown)."""
    dev = torch.device(device or "cpu")
    if dev.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(dev).total_memory)
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 32 * 2**30


def memory_limit(device: torch.device | str | None = None) -> int | None:
    """The current limit in bytes for allocations on ``device`` (``None``: no limit)."""
    if _limit_override[0] is not _UNSET:
        return _limit_override[0]  # type: ignore[return-value]
    env = os.environ.get(_MEMORY_ENV, "").strip()
    if env:
        return _parse_size(env)
    return _device_memory(device) // 2


def set_memory_limit(nbytes: int | None) -> int | None | object:
    """Set the limit of the memory guard (bytes, or ``None`` for no limit); returns the old setting."""
    if nbytes is not None:
        check_int(nbytes, "nbytes", minimum=1)
    old = _limit_override[0]
    _limit_override[0] = nbytes
    return old


@contextmanager
def limit_memory(nbytes: int | None) -> Iterator[None]:
    """Context manager: run a block with the memory guard's limit set to ``nbytes`` (``None``: off)."""
    old = set_memory_limit(nbytes)
    try:
        yield
    finally:
        _limit_override[0] = old


def format_bytes(nbytes: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; binary units up to PiB."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} PiB"


def tensor_bytes(shape: Sequence[int], dtype: torch.dtype) -> int:
    """Bytes of a dense tensor of ``shape`` and ``dtype`` (computed in Python ints: never overflows)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    return math.prod(int(s) for s in shape) * itemsize


def check_memory(nbytes: int, what: str, cause: str, device: torch.device | str | None = None) -> int:
    """Raise :class:`MemoryLimitError` if ``nbytes`` exceeds :func:`memory_limit` of ``device``.

    ``what`` names the function and the estimate (e.g. ``"kernel_by_powers: the (H, L) kernel"``),
    ``cause`` the arguments that set the size (e.g. ``"L = 1000000000"``). Returns ``nbytes``.
    """
    limit = memory_limit(device)
    if limit is not None and nbytes > limit:
        raise MemoryLimitError(
            f"{what} would allocate about {format_bytes(nbytes)} ({cause}), above the memory limit of "
            f"{format_bytes(limit)}; check those sizes (a mistyped length?), or raise the limit with "
            f"liquidssm._checks.set_memory_limit(...) or {_MEMORY_ENV}=64GiB")
    return nbytes

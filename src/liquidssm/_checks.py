"""Input validation shared by every public function of :mod:`liquidssm`.

Each helper raises :class:`TypeError` (wrong kind of object or dtype) or :class:`ValueError`
(wrong shape or value) with a message that names the argument, what was expected and what was
given, so that a reader who passes bad input learns what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def as_tensor(x: object, name: str, *, allow_complex: bool = False) -> torch.Tensor:
    """Return ``x`` as a floating (or complex) tensor, refusing integer, bool and object inputs."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise TypeError(f"{name}: expected a tensor or array-like of numbers, got {type(x).__name__}") from exc
        if t.dtype == torch.float64 and not isinstance(x, torch.Tensor):
            pass  # numpy float64 stays float64: the caller asked for it
    allowed = FLOAT_DTYPES + (COMPLEX_DTYPES if allow_complex else ())
    if t.dtype not in allowed:
        kinds = "a real floating" + (" or complex" if allow_complex else "")
        raise TypeError(f"{name}: expected {kinds} dtype, got {t.dtype}")
    return t


def check_finite(t: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``t`` holds NaN or ±inf."""
    if not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name}: expected finite values, found {n_bad} NaN/inf entries")
    return t


def check_ndim(t: torch.Tensor, name: str, ndims: int | Sequence[int], layout: str = "") -> torch.Tensor:
    """Raise ``ValueError`` unless ``t.ndim`` is one of ``ndims``; ``layout`` names the axes."""
    allowed = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if t.ndim not in allowed:
        want = " or ".join(str(d) for d in allowed)
        hint = f" {layout}" if layout else ""
        raise ValueError(f"{name}: expected a {want}-D tensor{hint}, got shape {tuple(t.shape)}")
    return t


def check_square(t: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` unless the last two axes of ``t`` are square."""
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise ValueError(f"{name}: expected a square (..., N, N) matrix, got shape {tuple(t.shape)}")
    return t


def check_positive(value: object, name: str) -> torch.Tensor:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and strictly positive."""
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)
    if t.is_complex() or not t.is_floating_point():
        t = t.to(torch.float64) if not t.is_complex() else t
    if t.is_complex():
        raise TypeError(f"{name}: expected a real positive step, got complex dtype {t.dtype}")
    if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
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
    if value not in choices:
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

"""Opt-in ``torch.compile`` for the recurrence loops, with an eager fallback and one clear message.

Chapter lrcssm/03_newton_solver (the fast sequential solver). A sequential loop over ``T`` steps
pays Python's per-operation overhead ``T`` times; compiling an *unrolled chunk* of ``k`` steps
(the inductor backend fuses the whole chunk, which is element-wise per ``(batch, neuron)``, into
one C++ loop) pays it ``T / k`` times. Compilation needs a working C++ compiler (CPU) or Triton
(GPU). If it fails, for any reason, :func:`call_compiled` warns **once** (naming the reason and
how to silence it: ``compile=False`` or ``LIQUIDSSM_COMPILE=0``) and every later call runs eager.

Nothing here knows a cell: the callers (``liquidssm.newton``) pass the function to compile.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["ENV_VAR", "compile_enabled", "call_compiled", "compile_seconds", "transforms_active", "CompileFallbackWarning"]

#: name -> compiled callable; ``_FAILED`` holds the reason once compilation failed
_COMPILED: dict[str, Callable[..., Any]] = {}
#: ``LIQUIDSSM_COMPILE=0`` turns every ``compile=True`` into the eager path (no compilation tried)
ENV_VAR = "LIQUIDSSM_COMPILE"
_FAILED: dict[str, str] = {}
#: name -> seconds spent in the first (compiling) call of each distinct input signature
_FIRST_CALL_SECONDS: dict[str, list[float]] = {}
_SEEN: set[tuple] = set()


class CompileFallbackWarning(RuntimeWarning):
    """``torch.compile`` is unavailable or failed: the eager path runs instead (same values)."""


def transforms_active() -> bool:
    """True inside ``torch.func`` transforms or a forward-AD level, where hand-written fast paths
    (in place, custom backward without ``jvp``, compiled chunks) step aside for plain autograd ops."""
    from torch.autograd import forward_ad

    functorch_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: False)
    return bool(functorch_active()) or getattr(forward_ad, "_current_level", -1) >= 0


def compile_enabled(compile: bool) -> bool:
    """Whether to try ``torch.compile``: the caller's ``compile`` flag, vetoed by ``LIQUIDSSM_COMPILE=0``
    or by an earlier failure (the eager path then runs silently, the reason was warned once)."""
    if not isinstance(compile, bool):
        raise TypeError(f"compile: expected True or False, got {compile!r}")
    return compile and os.environ.get(ENV_VAR, "1") != "0" and not _FAILED


def compile_seconds(name: str) -> list[float]:
    """Wall-clock seconds of each first (compiling) call of ``name`` so far, one per input signature."""
    return list(_FIRST_CALL_SECONDS.get(name, []))


def _signature(name: str, args: tuple) -> tuple:
    """What a compilation is specialised on: tensors by shape, dtype and device (also inside tuples),
    flags (bools, ints, floats, strings) by value, anything else (a cell) by identity."""
    def key(a: Any) -> Any:
        if isinstance(a, torch.Tensor):
            return (a.shape, a.dtype, a.device)
        if isinstance(a, tuple):
            return tuple(key(t) for t in a)
        return a if isinstance(a, (bool, int, float, str)) else id(a)
    return (name, *(key(a) for a in args))


def call_compiled(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``torch.compile(fn)(*args)`` (compiled once per ``name``), or ``fn(*args)`` after a failure.

    The first failure warns once with :class:`CompileFallbackWarning` and disables compilation for
    the rest of the process. The time of each first call per input signature is recorded
    (:func:`compile_seconds`), which is the compile time.
    """
    if _FAILED:
        return fn(*args)
    compiled = _COMPILED.get(name)
    if compiled is None:
        compiled = _COMPILED[name] = torch.compile(fn, dynamic=False)
    key = _signature(name, args)
    start = time.perf_counter()
    try:
        out = compiled(*args)
    except Exception as exc:  # noqa: BLE001 - no compiler, unsupported op, ...: fall back, never crash
        _FAILED[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        warnings.warn(
            f"liquidssm: torch.compile failed for {name} ({_FAILED[name]}); using the eager loop instead "
            "(same values, slower). Pass compile=False or set LIQUIDSSM_COMPILE=0 to silence this.",
            CompileFallbackWarning, stacklevel=3)
        return fn(*args)
    if key not in _SEEN:
        _SEEN.add(key)
        _FIRST_CALL_SECONDS.setdefault(name, []).append(time.perf_counter() - start)
    return out

"""First-order linear recurrences ``x_t = a_t * x_{t-1} + b_t`` solved by parallel (prefix) scans.

LrcSSM §2.2 (the scan behind every Newton/quasi-DEER iteration); chapter lrcssm/02_parallel_scans.

Layout
------
Every function here takes the coefficients ``a`` and ``b`` with the **time axis last** by default,
``(..., L)`` — the house ``(B, H, L)`` kernel layout — and a ``dim`` keyword selects any other
axis (the Newton solver uses ``dim=-2`` on ``(B, T, D)`` sequences). ``a`` and ``b`` broadcast
against each other; the result has their broadcast shape. The optional initial state ``x0`` has
the broadcast shape with the time axis removed and stands for ``x_{-1}`` (forward) or ``x_{L}``
(reverse); it defaults to zero. Real and complex dtypes are supported. Everything is built from
differentiable torch operations, so autograd works through every method.

Methods
-------
``sequential``      the loop (the oracle): L steps, O(L) depth.
``hillis_steele``   log-depth doubling, O(L log L) work.
``blelloch``        work-efficient odd/even recursion, O(L) work, O(log L) depth (default).
``chunked``         scan inside chunks of ``chunk`` steps, then a scan over the chunk carries.
``associative_scan`` ``torch._higher_order_ops.associative_scan(combine_mode="generic")`` when that
                    private prototype is importable and works, otherwise ``blelloch`` (with a warning).
"""

from __future__ import annotations

import warnings

import torch

from liquidssm._checks import as_tensor, check_choice, check_finite, check_int, check_same_dtype

__all__ = [
    "SCAN_METHODS",
    "linear_scan",
    "scan_sequential",
    "scan_hillis_steele",
    "scan_blelloch",
    "scan_chunked",
    "scan_associative",
    "combine",
    "sequential_core",
    "hillis_steele_core",
    "blelloch_core",
]

SCAN_METHODS = ("sequential", "hillis_steele", "blelloch", "chunked", "associative_scan")


def combine(
    earlier: tuple[torch.Tensor, torch.Tensor], later: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Associative operator of the scan, LrcSSM §2.2: ``(a_i, b_i) • (a_j, b_j) = (a_j a_i, a_j b_i + b_j)``.

    Composing the affine maps ``x -> a_i x + b_i`` (applied first) and ``x -> a_j x + b_j``.
    Shapes: any broadcastable tensors. Chapter lrcssm/02_parallel_scans.
    """
    a_i, b_i = earlier
    a_j, b_j = later
    return a_j * a_i, a_j * b_i + b_j


# ----------------------------------------------------------------------------------------------
# validation and the shared wrapper
# ----------------------------------------------------------------------------------------------


def _prepare(
    a: object, b: object, x0: object | None, dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int]:
    a_t = as_tensor(a, "a", allow_complex=True)
    b_t = as_tensor(b, "b", allow_complex=True)
    check_same_dtype(("a", a_t), ("b", b_t))
    try:
        shape = torch.broadcast_shapes(a_t.shape, b_t.shape)
    except RuntimeError as exc:
        raise ValueError(
            f"a and b: expected broadcastable shapes (..., L), got {tuple(a_t.shape)} and {tuple(b_t.shape)}"
        ) from exc
    if len(shape) == 0:
        raise ValueError("a and b: expected at least one (time) axis, got scalars")
    check_int(dim, "dim")
    if not -len(shape) <= dim < len(shape):
        raise ValueError(f"dim: expected an axis in [{-len(shape)}, {len(shape)}) for shape {tuple(shape)}, got {dim}")
    dim = dim % len(shape)
    if shape[dim] == 0:
        raise ValueError(f"a and b: expected a non-empty time axis (dim={dim}), got shape {tuple(shape)}")
    dtype = torch.promote_types(a_t.dtype, b_t.dtype)
    a_t = a_t.to(dtype).expand(shape)
    b_t = b_t.to(dtype).expand(shape)
    x0_t = None
    if x0 is not None:
        x0_t = as_tensor(x0, "x0", allow_complex=True)
        check_same_dtype(("a", a_t), ("x0", x0_t))
        if x0_t.is_complex() and not dtype.is_complex:
            raise TypeError(f"x0: expected a real initial state for real a and b ({dtype}), got {x0_t.dtype}; "
                            "its imaginary part would be dropped")
        want = shape[:dim] + shape[dim + 1:]
        try:
            ok = torch.broadcast_shapes(x0_t.shape, want) == want
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"x0: expected shape {tuple(want)} (a and b's shape without the time axis dim={dim}), "
                f"got {tuple(x0_t.shape)}"
            )
        x0_t = x0_t.to(dtype).expand(want)
    return a_t, b_t, x0_t, dim


def _fold_x0(a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Absorb the initial state into the first input: b_0 <- a_0 x0 + b_0."""
    if x0 is None:
        return b
    first = b.narrow(dim, 0, 1) + a.narrow(dim, 0, 1) * x0.unsqueeze(dim)
    if b.shape[dim] == 1:
        return first
    return torch.cat([first, b.narrow(dim, 1, b.shape[dim] - 1)], dim=dim)


def _reverse_coeffs(a: torch.Tensor, b: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    return a.flip(dim), b.flip(dim)


def linear_scan(
    a: object,
    b: object,
    x0: object | None = None,
    *,
    dim: int = -1,
    reverse: bool = False,
    method: str = "blelloch",
    chunk: int = 64,
    check_inputs: bool = True,
) -> torch.Tensor:
    """Solve ``x_t = a_t x_{t-1} + b_t`` (or, with ``reverse=True``, ``x_t = a_t x_{t+1} + b_t``).

    LrcSSM §2.2 / Algorithm 1's scan; chapter lrcssm/02_parallel_scans.

    Shapes: ``a``, ``b`` broadcastable, time on axis ``dim`` (default last: ``(..., L)``);
    ``x0`` the broadcast shape without the time axis (``x_{-1}``, or ``x_L`` when reversed; zero
    if omitted). Returns ``x`` with the broadcast shape of ``a`` and ``b``. ``method`` is one of
    :data:`SCAN_METHODS`; all are differentiable. ``check_inputs=False`` skips the finiteness
    check (the Newton solver does its own).
    """
    check_choice(method, "method", SCAN_METHODS)
    a_t, b_t, x0_t, d = _prepare(a, b, x0, dim)
    if check_inputs:
        check_finite(a_t, "a")
        check_finite(b_t, "b")
        if x0_t is not None:
            check_finite(x0_t, "x0")
    if reverse:
        a_t, b_t = _reverse_coeffs(a_t, b_t, d)
    b_t = _fold_x0(a_t, b_t, x0_t, d)
    if method == "sequential":
        x = sequential_core(a_t, b_t, d)
    elif method == "hillis_steele":
        x = hillis_steele_core(a_t, b_t, d)
    elif method == "blelloch":
        # the odd/even slices are fastest on a leading, contiguous time axis
        x = blelloch_core(a_t.movedim(d, 0).contiguous(), b_t.movedim(d, 0).contiguous(), 0).movedim(0, d)
    elif method == "chunked":
        check_int(chunk, "chunk", minimum=1)
        x = _chunked(a_t, b_t, d, chunk)
    else:
        x = _associative(a_t, b_t, d)
    return x.flip(d) if reverse else x


def scan_sequential(a: object, b: object, x0: object | None = None, *, dim: int = -1,
                    reverse: bool = False) -> torch.Tensor:
    """Sequential loop (the oracle) for ``x_t = a_t x_{t-1} + b_t``; shapes as :func:`linear_scan`."""
    return linear_scan(a, b, x0, dim=dim, reverse=reverse, method="sequential")


def scan_hillis_steele(a: object, b: object, x0: object | None = None, *, dim: int = -1,
                       reverse: bool = False) -> torch.Tensor:
    """Hillis–Steele doubling scan (O(L log L) work); shapes as :func:`linear_scan`."""
    return linear_scan(a, b, x0, dim=dim, reverse=reverse, method="hillis_steele")


def scan_blelloch(a: object, b: object, x0: object | None = None, *, dim: int = -1,
                  reverse: bool = False) -> torch.Tensor:
    """Work-efficient odd/even (Blelloch-style) recursive scan; shapes as :func:`linear_scan`."""
    return linear_scan(a, b, x0, dim=dim, reverse=reverse, method="blelloch")


def scan_chunked(a: object, b: object, x0: object | None = None, *, dim: int = -1,
                 reverse: bool = False, chunk: int = 64) -> torch.Tensor:
    """Two-level scan: Blelloch inside chunks of ``chunk`` steps, then over chunk carries."""
    return linear_scan(a, b, x0, dim=dim, reverse=reverse, method="chunked", chunk=chunk)


def scan_associative(a: object, b: object, x0: object | None = None, *, dim: int = -1,
                     reverse: bool = False) -> torch.Tensor:
    """``torch._higher_order_ops.associative_scan`` (generic mode) with a Blelloch fallback."""
    return linear_scan(a, b, x0, dim=dim, reverse=reverse, method="associative_scan")


# ----------------------------------------------------------------------------------------------
# the algorithms (inputs already validated, x0 folded into b, time axis ``d`` non-negative)
# ----------------------------------------------------------------------------------------------


def sequential_core(a: torch.Tensor, b: torch.Tensor, d: int) -> torch.Tensor:
    """The oracle: ``x_t = a_t x_{t-1} + b_t`` step by step along axis ``d`` (``x_0 = b_0``); O(L) depth.

    LrcSSM §2.2; chapter lrcssm/02_parallel_scans. Inputs already validated (``x0`` folded into
    ``b``, ``d`` non-negative): the public entry point is :func:`linear_scan`.
    """
    # unbind (not per-step indexing): its backward stacks the step gradients once, in O(L)
    a_steps, b_steps = a.unbind(d), b.unbind(d)
    x = b_steps[0]
    xs = [x]
    for a_t, b_t in zip(a_steps[1:], b_steps[1:]):
        x = a_t * x + b_t
        xs.append(x)
    return torch.stack(xs, dim=d)


def hillis_steele_core(a: torch.Tensor, b: torch.Tensor, d: int) -> torch.Tensor:
    """Hillis-Steele inclusive scan of the affine maps ``(a_t, b_t)``: log2 L rounds of O(L) work.

    Chapter lrcssm/02_parallel_scans; validated inputs as in :func:`sequential_core`.
    """
    L = b.shape[d]
    k = 1
    while k < L:
        # element t combines with element t-k; the first k elements combine with the identity (1, 0)
        a_prev = torch.cat([torch.ones_like(a.narrow(d, 0, k)), a.narrow(d, 0, L - k)], dim=d)
        b_prev = torch.cat([torch.zeros_like(b.narrow(d, 0, k)), b.narrow(d, 0, L - k)], dim=d)
        a, b = combine((a_prev, b_prev), (a, b))
        k *= 2
    return b


def _slice(t: torch.Tensor, d: int, start: int, stop: int | None, step: int) -> torch.Tensor:
    idx = [slice(None)] * t.ndim
    idx[d] = slice(start, stop, step)
    return t[tuple(idx)]


def blelloch_core(a: torch.Tensor, b: torch.Tensor, d: int) -> torch.Tensor:
    """Blelloch-style work-efficient scan: pair, recurse on the odd steps, fill the even ones; O(L) work.

    Chapter lrcssm/02_parallel_scans; validated inputs as in :func:`sequential_core`.
    """
    L = b.shape[d]
    if L == 1:
        return b
    m = L // 2
    a_e, a_o = _slice(a, d, 0, 2 * m, 2), _slice(a, d, 1, 2 * m, 2)
    b_e, b_o = _slice(b, d, 0, 2 * m, 2), _slice(b, d, 1, 2 * m, 2)
    # pair up (2i, 2i+1): its composed map sends x_{2i-1} to x_{2i+1}
    a_pair, b_pair = combine((a_e, b_e), (a_o, b_o))
    x_odd = blelloch_core(a_pair, b_pair, d)  # x_{2i+1}, i = 0..m-1
    # even steps: x_0 = b_0, x_{2i} = a_{2i} x_{2i-1} + b_{2i}
    a_ev, b_ev = _slice(a, d, 2, None, 2), _slice(b, d, 2, None, 2)  # 2i for i >= 1 (incl. a trailing one)
    n_ev = a_ev.shape[d]
    x_even_rest = a_ev * x_odd.narrow(d, 0, n_ev) + b_ev
    x_even = torch.cat([b.narrow(d, 0, 1), x_even_rest], dim=d)
    inter = torch.stack([x_even.narrow(d, 0, m), x_odd], dim=d + 1).flatten(d, d + 1)
    if L % 2 == 1:
        inter = torch.cat([inter, x_even.narrow(d, m, 1)], dim=d)
    return inter


def _chunked(a: torch.Tensor, b: torch.Tensor, d: int, chunk: int) -> torch.Tensor:
    L = b.shape[d]
    if chunk >= L:
        return blelloch_core(a, b, d)
    n = -(-L // chunk)
    pad = n * chunk - L
    if pad:
        pad_shape = list(b.shape)
        pad_shape[d] = pad
        a = torch.cat([a, a.new_ones(pad_shape)], dim=d)
        b = torch.cat([b, b.new_zeros(pad_shape)], dim=d)
    shape = list(b.shape)
    shape[d:d + 1] = [n, chunk]
    a_c, b_c = a.reshape(shape), b.reshape(shape)
    local = blelloch_core(a_c, b_c, d + 1)               # each chunk from a zero carry
    a_cum = torch.cumprod(a_c, dim=d + 1)             # product of a inside the chunk, up to t
    carry_in = blelloch_core(a_cum.select(d + 1, chunk - 1), local.select(d + 1, chunk - 1), d)
    carry_prev = torch.cat([torch.zeros_like(carry_in.narrow(d, 0, 1)), carry_in.narrow(d, 0, n - 1)], dim=d)
    x = local + a_cum * carry_prev.unsqueeze(d + 1)
    x = x.flatten(d, d + 1)
    return x.narrow(d, 0, L) if pad else x


_ASSOC_STATE: dict[str, object] = {}


def _associative(a: torch.Tensor, b: torch.Tensor, d: int) -> torch.Tensor:
    fn = _ASSOC_STATE.get("fn")
    if fn is None and "failed" not in _ASSOC_STATE:
        try:
            from torch._higher_order_ops import associative_scan as fn  # private prototype API
            _ASSOC_STATE["fn"] = fn
        except Exception as exc:  # noqa: BLE001 - any import failure means: fall back
            _ASSOC_STATE["failed"] = repr(exc)
    if fn is not None:
        try:
            _, x = fn(combine, (a, b), dim=d, reverse=False, combine_mode="generic")
            return x
        except Exception as exc:  # noqa: BLE001 - prototype API: fall back on any failure
            _ASSOC_STATE["failed"] = repr(exc)
            _ASSOC_STATE.pop("fn", None)
    warnings.warn(
        "torch._higher_order_ops.associative_scan is unavailable here "
        f"({_ASSOC_STATE.get('failed')}); using the pure-torch Blelloch scan instead",
        RuntimeWarning,
        stacklevel=3,
    )
    return blelloch_core(a, b, d)

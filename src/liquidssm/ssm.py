"""Continuous state-space models, their discretization, recurrence and convolution kernel.

Liquid-S4 paper, Eq. (1)-(6); derived in chapter ``book/s4/01_ssm``.

Shapes used throughout (leading axes ``...`` broadcast against each other):

* ``A``: ``(..., N, N)``, ``B``: ``(..., N)``, ``C``: ``(..., N)`` -- one single-input
  single-output system per leading index (e.g. ``(H, N, N)`` for ``H`` channels);
* ``dt``: a positive scalar or a tensor of shape ``(...)`` (one step per system);
* ``u``: ``(..., L)`` -- the input sequence along the last axis, e.g. ``(B, H, L)``;
* ``K``: ``(..., L)`` -- the convolution kernel along the last axis.

Every function accepts real or complex systems; complex systems give complex outputs.
"""

from __future__ import annotations

import torch

from liquidssm._checks import (
    as_tensor,
    check_broadcasts_into,
    check_choice,
    check_finite,
    check_int,
    check_length,
    check_memory,
    check_ndim,
    check_per_system,
    check_positive,
    check_same_dtype,
    check_square,
    tensor_bytes,
)

__all__ = [
    "bilinear",
    "zoh",
    "discretize",
    "recurrence",
    "kernel_by_powers",
    "causal_conv",
    "causal_conv_direct",
    "causal_conv_fft",
    "check_discrete_system",
    "check_sequence",
    "initial_state",
    "guard_steps",
]

#: bytes a Python-level loop keeps per step besides the data (tensor objects in a list)
_STEP_OVERHEAD = 256


def _system(A: object, B: object, names: tuple[str, str] = ("A", "B")) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a pair (A, B): A square (..., N, N), B (..., N), finite, same precision."""
    a, b = names
    A = check_finite(check_square(as_tensor(A, a, allow_complex=True, allow_half=False), a), a)
    B = check_finite(as_tensor(B, b, allow_complex=True, allow_half=False), b)
    if B.ndim < 1 or B.shape[-1] != A.shape[-1]:
        raise ValueError(
            f"{b}: expected shape (..., N) with N = {A.shape[-1]} to match {a} {tuple(A.shape)}, "
            f"got {tuple(B.shape)}"
        )
    check_same_dtype((a, A), (b, B))
    dtype = torch.promote_types(A.dtype, B.dtype)
    return A.to(dtype), B.to(dtype)


def _step(dt: object, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Validate the step ``dt`` and shape it to broadcast against ``A`` as ``(..., 1, 1)``.

    ``dt`` is a scalar, or one step per system: its shape must broadcast with the systems' batch
    shape ``(...)`` into one of the two shapes (a ``(H, 1)`` step against ``H`` systems is
    refused rather than silently turned into ``H x H`` systems; :func:`liquidssm._checks.check_per_system`).
    """
    real = torch.empty((), dtype=A.dtype).real.dtype
    dt = check_positive(dt, "dt").to(real)
    check_per_system(dt.shape, "dt", torch.broadcast_shapes(A.shape[:-2], B.shape[:-1]))
    return dt[..., None, None]


def _solve(M: torch.Tensor, rhs: torch.Tensor, what: str) -> torch.Tensor:
    """``M^{-1} rhs`` by ``torch.linalg.solve``; a singular ``M`` raises a ``ValueError`` naming ``what``."""
    try:
        return torch.linalg.solve(M, rhs)
    except torch.linalg.LinAlgError as exc:
        raise ValueError(f"{what} is singular, so the bilinear discretization does not exist: an "
                         "eigenvalue of A equals 2/dt; choose another step dt") from exc


def _guard_matrices(batch: tuple[int, ...], N: int, dtype: torch.dtype, copies: int, what: str,
                    device: torch.device) -> None:
    """Memory guard for ``copies`` dense ``(batch, N, N)`` matrices (:func:`liquidssm._checks.check_memory`)."""
    nbytes = copies * tensor_bytes((*batch, N, N), dtype)
    check_memory(nbytes, f"{what}: {copies} dense (..., N, N) matrices", f"batch {batch}, N = {N}", device)


def bilinear(A: object, B: object, dt: object) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Bilinear (Tustin) discretization, Liquid-S4 Eq. (3); chapter ``s4/01_ssm``.

    .. math:: \bar A = (I - \tfrac{\Delta}{2} A)^{-1}(I + \tfrac{\Delta}{2} A),\qquad
              \bar B = (I - \tfrac{\Delta}{2} A)^{-1}\,\Delta B.

    Args:
        A: continuous state matrix, shape ``(..., N, N)``.
        B: continuous input vector, shape ``(..., N)``.
        dt: step size Δ > 0, a scalar or shape ``(...)``.

    Returns:
        ``(A_bar, B_bar)`` of shapes ``(..., N, N)`` and ``(..., N)``.
    """
    A, B = _system(A, B)
    half = _step(dt, A, B) / 2
    _guard_matrices(tuple(torch.broadcast_shapes(A.shape[:-2], half.shape[:-2])), A.shape[-1], A.dtype, 4,
                    "bilinear", A.device)
    eye = torch.eye(A.shape[-1], dtype=A.dtype)
    backward = eye - half * A
    A_bar = _solve(backward, eye + half * A, "I - dt/2 A")
    B_bar = _solve(backward, (2 * half[..., 0] * B)[..., None], "I - dt/2 A")[..., 0]
    return A_bar, B_bar


def zoh(A: object, B: object, dt: object) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Zero-order-hold discretization, the exact solution for piecewise-constant input; chapter ``s4/01_ssm``.

    .. math:: \bar A = e^{\Delta A},\qquad \bar B = \int_0^\Delta e^{sA}\,ds\; B,

    computed together as one matrix exponential of the block matrix
    ``[[A, B], [0, 0]] * Δ`` (Van Loan's method), so ``A`` need not be invertible.

    Args:
        A: continuous state matrix, shape ``(..., N, N)``.
        B: continuous input vector, shape ``(..., N)``.
        dt: step size Δ > 0, a scalar or shape ``(...)``.

    Returns:
        ``(A_bar, B_bar)`` of shapes ``(..., N, N)`` and ``(..., N)``.
    """
    A, B = _system(A, B)
    step = _step(dt, A, B)
    N = A.shape[-1]
    batch = torch.broadcast_shapes(A.shape[:-2], B.shape[:-1], step.shape[:-2])
    _guard_matrices(tuple(batch), N + 1, A.dtype, 6, "zoh", A.device)
    M = torch.zeros(*batch, N + 1, N + 1, dtype=A.dtype)
    M[..., :N, :N] = A
    M[..., :N, N] = B
    E = torch.linalg.matrix_exp(M * step)
    return E[..., :N, :N], E[..., :N, N]


def discretize(A: object, B: object, dt: object, method: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Discretize ``(A, B)`` with step ``dt`` by ``method`` = ``"bilinear"`` (Eq. 3) or ``"zoh"``."""
    check_choice(method, "method", ("bilinear", "zoh"))
    return bilinear(A, B, dt) if method == "bilinear" else zoh(A, B, dt)


def check_discrete_system(A_bar: object, B_bar: object, C: object) -> tuple[torch.Tensor, ...]:
    """Validate a discrete system: ``A_bar`` (..., N, N), ``B_bar`` and ``C`` (..., N); one dtype out.

    Shared by every oracle that runs a discrete system (here and in :mod:`liquidssm.liquid`).
    """
    A_bar, B_bar = _system(A_bar, B_bar, ("A_bar", "B_bar"))
    C = check_finite(as_tensor(C, "C", allow_complex=True, allow_half=False), "C")
    if C.ndim < 1 or C.shape[-1] != A_bar.shape[-1]:
        raise ValueError(
            f"C: expected shape (..., N) with N = {A_bar.shape[-1]} to match A_bar "
            f"{tuple(A_bar.shape)}, got {tuple(C.shape)}"
        )
    check_same_dtype(("A_bar", A_bar), ("C", C))
    dtype = torch.promote_types(A_bar.dtype, C.dtype)
    return A_bar.to(dtype), B_bar.to(dtype), C.to(dtype)


def check_sequence(u: object, name: str = "u") -> torch.Tensor:
    """Validate an input sequence ``(..., L)``: a finite real or complex tensor with >= 1 axis, ``L >= 1``.

    float16/bfloat16 are refused (the oracles run in float32 or float64).
    """
    u = as_tensor(u, name, allow_complex=True, allow_half=False)
    return check_finite(check_length(check_ndim(u, name, range(1, 9), "(..., L)"), name), name)


def guard_steps(batch: tuple[int, ...], L: int, dtype: torch.dtype, what: str,
                device: torch.device | None = None, rows: int = 1) -> None:
    """Memory guard of a step-by-step loop over ``L`` steps that keeps ``rows`` ``(batch,)`` results per step.

    Shared by the sequential oracles here and in :mod:`liquidssm.liquid`: the stacked output
    ``(batch, L)`` plus a Python tensor object per step (:func:`liquidssm._checks.check_memory`).
    """
    per_step = rows * (tensor_bytes(batch, dtype) + _STEP_OVERHEAD)
    check_memory(2 * L * per_step, f"{what}: a loop over L steps", f"L = {L}, batch {batch}", device)


def initial_state(
    A_bar: object, B_bar: object, C: object, u: object, x0: object | None = None
) -> tuple[torch.Tensor, ...]:
    """Validate a run of a discrete system on ``u`` and return ``(A_bar, B_bar, C, u, x)``.

    All five share one dtype; ``x`` is the initial state ``x_{-1}`` (``x0`` or zeros) broadcast to
    the batch shape of the system and the input, ``(..., N)``. Used by :func:`recurrence` and by
    the liquid recurrence of :mod:`liquidssm.liquid`.
    """
    A_bar, B_bar, C = check_discrete_system(A_bar, B_bar, C)
    u = check_sequence(u)
    check_same_dtype(("A_bar", A_bar), ("u", u))
    dtype = torch.promote_types(A_bar.dtype, u.dtype)
    A_bar, B_bar, C, u = (t.to(dtype) for t in (A_bar, B_bar, C, u))
    batch = torch.broadcast_shapes(A_bar.shape[:-2], B_bar.shape[:-1], C.shape[:-1], u.shape[:-1])
    x = torch.zeros(*batch, A_bar.shape[-1], dtype=dtype)
    if x0 is not None:
        x0 = check_finite(as_tensor(x0, "x0", allow_complex=True, allow_half=False), "x0")
        if x0.is_complex() and not x.is_complex():
            raise TypeError(f"x0: expected a real initial state for the real system ({dtype}), got {x0.dtype}; "
                            "its imaginary part would be dropped")
        check_same_dtype(("A_bar", A_bar), ("x0", x0))
        check_broadcasts_into(x0.shape, "x0", x.shape, "the state (..., N) of the run")
        x = x + x0.to(dtype)
    guard_steps(tuple(batch), u.shape[-1], dtype, "recurrence", u.device)
    return A_bar, B_bar, C, u, x


def recurrence(
    A_bar: object, B_bar: object, C: object, u: object, x0: object | None = None
) -> torch.Tensor:
    r"""Run the discrete SSM step by step, Liquid-S4 Eq. (2); the sequential oracle.

    .. math:: x_k = \bar A x_{k-1} + \bar B u_k,\qquad y_k = C x_k,\qquad x_{-1} = x_0\ (\text{default } 0).

    Args:
        A_bar: ``(..., N, N)``; B_bar: ``(..., N)``; C: ``(..., N)``.
        u: input, shape ``(..., L)``; its leading axes broadcast with the system's.
        x0: optional initial state ``x_{-1}``, shape ``(..., N)``, of the system's precision (real
            for a real system).

    Returns:
        y of shape ``(..., L)`` (broadcast leading axes).
    """
    A_bar, B_bar, C, u, x = initial_state(A_bar, B_bar, C, u, x0)
    ys = []
    for k in range(u.shape[-1]):
        x = (A_bar @ x[..., None])[..., 0] + B_bar * u[..., k, None]
        ys.append((C * x).sum(-1))
    return torch.stack(ys, dim=-1)


def kernel_by_powers(A_bar: object, B_bar: object, C: object, L: int) -> torch.Tensor:
    r"""SSM convolution kernel by explicit matrix powers, Liquid-S4 Eq. (6); the kernel oracle.

    .. math:: \bar K = (C\bar B,\; C\bar A\bar B,\; \dots,\; C\bar A^{L-1}\bar B) \in \mathbb{R}^L.

    Costs O(L N^2); every fast kernel in the library is checked against it.

    Args:
        A_bar: ``(..., N, N)``; B_bar: ``(..., N)``; C: ``(..., N)``.
        L: kernel length, an int >= 1.

    Returns:
        K of shape ``(..., L)``.
    """
    A_bar, B_bar, C = check_discrete_system(A_bar, B_bar, C)
    L = check_int(L, "L", minimum=1)
    batch = torch.broadcast_shapes(A_bar.shape[:-2], B_bar.shape[:-1], C.shape[:-1])
    guard_steps(tuple(batch), L, A_bar.dtype, "kernel_by_powers", A_bar.device)
    v = B_bar.expand(*torch.broadcast_shapes(A_bar.shape[:-2], B_bar.shape[:-1]), B_bar.shape[-1])
    terms = []
    for _ in range(L):
        terms.append((C * v).sum(-1))
        v = (A_bar @ v[..., None])[..., 0]
    return torch.stack(terms, dim=-1)


def _conv_inputs(u: object, K: object) -> tuple[torch.Tensor, torch.Tensor]:
    u, K = check_sequence(u, "u"), check_sequence(K, "K")
    check_same_dtype(("u", u), ("K", K))
    try:
        torch.broadcast_shapes(u.shape[:-1], K.shape[:-1])
    except RuntimeError as exc:
        raise ValueError(
            f"u {tuple(u.shape)} and K {tuple(K.shape)}: leading axes must broadcast"
        ) from exc
    dtype = torch.promote_types(u.dtype, K.dtype)
    out = (*torch.broadcast_shapes(u.shape[:-1], K.shape[:-1]), 4 * u.shape[-1])
    check_memory(4 * tensor_bytes(out, dtype), "causal_conv: the zero-padded signals and their spectra",
                 f"u {tuple(u.shape)}, K {tuple(K.shape)}", u.device)
    return u.to(dtype), K.to(dtype)


def causal_conv_direct(u: object, K: object) -> torch.Tensor:
    r"""Causal convolution by its definition, Liquid-S4 Eq. (5): :math:`y_k = \sum_{j=0}^{k} K_j u_{k-j}`.

    O(L^2) reference for :func:`causal_conv_fft`. ``u``: ``(..., L)``; ``K``: ``(..., L_K)``
    (entries beyond ``L`` are unused, missing ones count as zero). Returns ``(..., L)``.
    """
    u, K = _conv_inputs(u, K)
    L = u.shape[-1]
    Lk = min(L, K.shape[-1])
    y = torch.zeros(torch.broadcast_shapes(u.shape, K.shape[:-1] + (L,)), dtype=u.dtype)
    for j in range(Lk):
        y[..., j:] = y[..., j:] + K[..., j, None] * u[..., : L - j]
    return y


def causal_conv_fft(u: object, K: object) -> torch.Tensor:
    r"""Causal convolution by FFT, the fast form of Liquid-S4 Eq. (5); chapter ``s4/01_ssm``.

    Zero-pads both signals to length ``2L`` so the circular convolution of the DFT equals the
    linear one on the first ``L`` outputs, then keeps those. ``u``: ``(..., L)``;
    ``K``: ``(..., L_K)``. Returns ``(..., L)``; real inputs use ``rfft``.
    """
    u, K = _conv_inputs(u, K)
    L = u.shape[-1]
    K = K[..., :L]
    n = 2 * L
    if u.is_complex():
        return torch.fft.ifft(torch.fft.fft(u, n=n) * torch.fft.fft(K, n=n), n=n)[..., :L]
    return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)[..., :L]


def causal_conv(u: object, K: object, method: str = "fft") -> torch.Tensor:
    """Causal convolution ``y = K * u`` along the last axis by ``method`` = ``"fft"`` or ``"direct"``."""
    check_choice(method, "method", ("fft", "direct"))
    return causal_conv_fft(u, K) if method == "fft" else causal_conv_direct(u, K)

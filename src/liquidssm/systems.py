"""Example systems and measurement harnesses that the chapters use to state their results.

These helpers used to live inside the chapters; they carry main results (the order of Eq. (9)
against the ODE (8), the share of the liquid output that KB and PB recover), so they are library
functions with tests (``tests/test_systems.py``):

* :func:`random_stable_system` -- a random stable continuous SSM, chapter ``s4/01_ssm``;
* :func:`skew_stable_system` -- a random stable system with eigenvalues ``-1/2 + i omega``,
  chapters ``liquid/01_linear_ltc`` and ``liquid/04_kb_vs_pb``;
* :func:`hippo_liquid_system` -- the conjugate-doubled HiPPO-LegS DPLR system in its stored basis,
  chapter ``liquid/04_kb_vs_pb``;
* :func:`ltc_ode_solution` -- the exact solution of Liquid-S4 Eq. (8) for an input held constant on
  each step, chapter ``liquid/01_linear_ltc``;
* :func:`liquid_recovery` -- how much of the exact liquid output (Eq. 9) S4, S4 + KB and S4 + PB
  recover, chapter ``liquid/04_kb_vs_pb``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from liquidssm import hippo, kernels, liquid, ssm
from liquidssm._checks import as_tensor, check_finite, check_int

__all__ = [
    "random_stable_system",
    "skew_stable_system",
    "hippo_liquid_system",
    "ltc_ode_solution",
    "liquid_recovery",
]


def random_stable_system(N: int, *, generator: torch.Generator | None = None,
                         dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""A random continuous SSM ``(A, B, C)`` of Liquid-S4 Eq. (1) whose ``A`` is stable; chapter ``s4/01_ssm``.

    ``A = (M - M^T) - I/2 - 0.05 M M^T / N``: a skew-symmetric matrix plus a negative definite
    one, so every eigenvalue has real part at most ``-1/2``. ``B ~ N(0, 1)``,
    ``C ~ N(0, 1/N)``. Draws ``M``, ``B``, ``C`` from ``generator`` in that order.

    Returns:
        ``A (N, N)``, ``B (N,)``, ``C (N,)`` of ``dtype``.
    """
    N = check_int(N, "N", minimum=1)
    M = torch.randn(N, N, dtype=dtype, generator=generator)
    A = (M - M.T) - torch.eye(N, dtype=dtype) * 0.5 - 0.05 * M @ M.T / N
    B = torch.randn(N, dtype=dtype, generator=generator)
    C = torch.randn(N, dtype=dtype, generator=generator) / N**0.5
    return A, B, C


def skew_stable_system(N: int, seed: int, *, dtype: torch.dtype = torch.float64
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""A random continuous SSM with ``A = (M - M^T) - I/2``: eigenvalues ``-1/2 + i omega``.

    Chapters ``liquid/01_linear_ltc`` and ``liquid/04_kb_vs_pb`` use it as a *dense* (non-diagonal)
    test system for the liquid recurrence, Liquid-S4 Eq. (8)-(9). Draws ``M``, ``B ~ N(0, 1)`` and
    ``C ~ N(0, 1/N)`` from a generator seeded with ``seed``, in that order.

    Returns:
        ``A (N, N)``, ``B (N,)``, ``C (N,)``.
    """
    N = check_int(N, "N", minimum=1)
    g = torch.Generator().manual_seed(int(seed))
    M = torch.randn(N, N, generator=g, dtype=dtype)
    A = (M - M.T) - 0.5 * torch.eye(N, dtype=dtype)
    B = torch.randn(N, generator=g, dtype=dtype)
    C = torch.randn(N, generator=g, dtype=dtype) / N**0.5
    return A, B, C


def hippo_liquid_system(N: int, dt: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The conjugate-doubled HiPPO-LegS DPLR system, bilinear, in its stored basis; chapter ``liquid/04_kb_vs_pb``.

    ``(Λ, P, B)`` from :func:`liquidssm.hippo.nplr_legs` (Liquid-S4 Eq. 14-15), discretized with
    :func:`liquidssm.kernels.discretize_dplr_bilinear` (Eq. 3), and a random complex ``C`` of the
    stored half, ``C_n ~ (N(0,1) + i N(0,1)) / 4``, conjugate-doubled.

    Returns:
        ``A_bar (N, N)``, ``B_bar (N,)``, ``C (N,)``, complex128.
    """
    N = check_int(N, "N", minimum=2)
    d = hippo.nplr_legs(N)
    g = torch.Generator().manual_seed(int(seed))
    n2 = N // 2
    Ch = torch.complex(torch.randn(n2, generator=g, dtype=torch.float64),
                       torch.randn(n2, generator=g, dtype=torch.float64)) / 4
    A_bar, B_bar = kernels.discretize_dplr_bilinear(d.Lambda, d.P, d.B, torch.tensor(float(dt), dtype=torch.float64))
    return A_bar[0], B_bar[0], kernels.conj_double(Ch)


def ltc_ode_solution(A: object, B: object, C: object, u: object, dt: float) -> torch.Tensor:
    r"""Exact solution of Liquid-S4 Eq. (8) for an input held constant on each step; chapter ``liquid/01_linear_ltc``.

    On step ``k`` the ODE ``x' = (A + diag(B) u_k) x + B u_k`` is linear with constant
    coefficients, so one zero-order-hold step (:func:`liquidssm.ssm.zoh` of the frozen matrix
    ``A_k = A + diag(B) u_k`` and input vector ``B u_k``, driven by a unit input) advances it
    exactly from ``t_{k-1}`` to ``t_k``. Starts from ``x = 0`` and returns ``y_k = C x(t_k)``.

    Args:
        A: ``(N, N)``; B, C: ``(N,)``; u: ``(L,)``; dt: step ``> 0``.

    Returns:
        ``y (L,)``.
    """
    A = check_finite(as_tensor(A, "A"), "A")
    B = check_finite(as_tensor(B, "B"), "B")
    C = check_finite(as_tensor(C, "C"), "C")
    u = check_finite(as_tensor(u, "u"), "u")
    if A.ndim != 2 or A.shape[0] != A.shape[1] or B.shape != (A.shape[0],) or C.shape != B.shape or u.ndim != 1:
        raise ValueError(f"expected A (N, N), B (N,), C (N,), u (L,); got {tuple(A.shape)}, "
                         f"{tuple(B.shape)}, {tuple(C.shape)}, {tuple(u.shape)}")
    if not float(dt) > 0:
        raise ValueError(f"dt: expected a positive step, got {dt}")
    x = torch.zeros(A.shape[-1], dtype=A.dtype)
    ys = []
    for uk in u:
        Ak = A + torch.diag(B) * uk
        Ad, Bd = ssm.zoh(Ak, B * uk, float(dt))
        x = Ad @ x + Bd
        ys.append(C @ x)
    return torch.stack(ys)


def liquid_recovery(A_bar: object, B_bar: object, C: object, u: object, *, orders: Sequence[int],
                    windows: Sequence[int]) -> list[dict[str, object]]:
    r"""How much of the exact liquid output each kernel recovers; chapter ``liquid/04_kb_vs_pb``.

    The exact output ``y`` of Liquid-S4 Eq. (9) (:func:`liquidssm.liquid.liquid_recurrence`)
    splits into the S4 part ``K * u`` and the liquid part ``y_liq = y - K * u``. An approximation
    ``y_hat = K * u + y_hat_liq`` recovers the fraction

    .. math:: \eta = 1 - \lVert y - \hat y\rVert / \lVert y_{\mathrm{liq}}\rVert

    of the liquid part (0 for S4 alone, 1 for a perfect liquid kernel, negative when the
    correction moves the output away from Eq. 9). Rows: ``"S4"`` (order 1), ``"S4+KB"`` for each
    order (Proposition 1, :func:`liquidssm.liquid.kb_kernel_dense`, full window) and ``"S4+PB"``
    for each order and window (Eq. 16, :func:`liquidssm.liquid.pb_kernel`).

    Args:
        A_bar ``(N, N)``, B_bar ``(N,)``, C ``(N,)``: a discrete system in its stored basis
            (real or complex; complex systems are read through the real part of ``y``).
        u: ``(batch, L)`` real inputs.
        orders: highest liquid orders ``>= 2``; windows: PB windows ``1 <= L~ <= L``.

    Returns:
        a list of dicts with keys ``method``, ``order``, ``L~``, ``recovered`` (eta) and
        ``rel_err`` (``||y - y_hat|| / ||y||``).
    """
    u = check_finite(as_tensor(u, "u"), "u")
    if u.ndim != 2:
        raise ValueError(f"u: expected (batch, L), got shape {tuple(u.shape)}")
    orders = [liquid.check_order(p) for p in orders]
    if not orders:
        raise ValueError("orders: expected at least one liquid order >= 2, got none")
    L = u.shape[-1]
    windows = [liquid.check_L_tilde(w, L, "windows") for w in windows]
    A_bar = as_tensor(A_bar, "A_bar", allow_complex=True)
    B_bar = as_tensor(B_bar, "B_bar", allow_complex=True)
    C = as_tensor(C, "C", allow_complex=True)
    K = ssm.kernel_by_powers(A_bar, B_bar, C, L)
    K_kb = liquid.kb_kernel_dense(A_bar, B_bar, C, L, max(orders))
    y = liquid.liquid_recurrence(A_bar, B_bar, C, u).real
    y_s4 = ssm.causal_conv(u.to(K.dtype), K).real
    liq_norm = (y - y_s4).norm()
    rows: list[dict[str, object]] = []

    def record(method: str, order: int, window: int, y_hat: torch.Tensor) -> None:
        rows.append({"method": method, "order": order, "L~": window,
                     "recovered": 1 - float((y - y_hat).norm() / liq_norm),
                     "rel_err": float((y - y_hat).norm() / y.norm())})

    record("S4", 1, 0, y_s4)
    for order in orders:
        y_kb = liquid.liquid_output(u.to(K_kb.dtype), K_kb[..., : order - 1, :]).real
        record("S4+KB", order, L, y_s4 + y_kb)
        for window in windows:
            K_pb = liquid.pb_kernel(B_bar, C, L, order, L_tilde=window)
            record("S4+PB", order, window, y_s4 + liquid.liquid_output(u.to(K_pb.dtype), K_pb).real)
    return rows

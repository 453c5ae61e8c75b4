"""HiPPO-LegS, its normal-plus-low-rank (NPLR) form and the diagonal-plus-low-rank (DPLR) initialization.

Liquid-S4 Eq. (14)-(15) (after S4, Gu et al. 2022); derived in chapter ``s4/02_hippo``.

Conventions used by the whole library:

* ``A`` (Eq. 14) is the real ``N x N`` HiPPO-LegS matrix, ``B_n = sqrt(2n+1)``.
* The rank-1 correction is ``P_n = sqrt(n + 1/2)``; ``A + P P^T = -1/2 I + S`` with ``S``
  skew-symmetric, so ``A = V diag(Lambda_full) V^* - P P^T`` with ``V`` unitary.
* The eigenvalues of the normal part are ``-1/2 + i mu`` and come in conjugate pairs. We store
  **N2 = N // 2 modes**: by default (``half="negative"``) those with ``Im Lambda < 0``, sorted
  by increasing imaginary part (most negative first), exactly as the released S4 / Liquid-S4
  code does; ``half="positive"`` keeps their conjugates (``Im Lambda > 0``), entry by entry,
  so mode ``n`` of one convention is the complex conjugate of mode ``n`` of the other.
* **Odd N** (the released Liquid-S4 configs use ``d_state = 7``): the normal part then has one
  real eigenvalue ``-1/2`` (``mu = 0``). Like the official code, :func:`nplr_legs` drops that
  mode (``odd="drop"``, the default) and keeps ``N // 2`` pairs, so the DPLR system has real state
  size ``2 * (N // 2) = N - 1`` and does *not* reconstruct ``A`` exactly; pass ``odd="raise"`` to
  refuse odd ``N`` instead.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from liquidssm._checks import (
    as_tensor,
    check_choice,
    check_finite,
    check_int,
    check_memory,
    tensor_bytes,
)

__all__ = [
    "DPLR",
    "hippo_legs",
    "legs_rank_correction",
    "nplr_legs",
    "dplr_reconstruct",
    "s4d_init",
]


def _check_dtype(dtype: object, allowed: tuple[torch.dtype, ...]) -> torch.dtype:
    """Raise ``TypeError`` unless ``dtype`` is one of ``allowed`` (an integer dtype would truncate)."""
    if dtype not in allowed:
        raise TypeError(f"dtype: expected one of {', '.join(map(str, allowed))}, got {dtype!r}")
    return dtype  # type: ignore[return-value]


def _guard(N: int, copies: int, what: str) -> None:
    """Memory guard for ``copies`` dense ``N x N`` complex128 matrices (:func:`liquidssm._checks.check_memory`)."""
    check_memory(copies * tensor_bytes((N, N), torch.complex128), f"{what}: {copies} dense N x N matrices",
                 f"N = {N}")


def hippo_legs(N: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """HiPPO-LegS state matrix and input vector, Liquid-S4 Eq. (14); chapter s4/02_hippo.

    ``A[n, k] = -sqrt((2n+1)(2k+1))`` for ``n > k``, ``-(n+1)`` for ``n = k``, ``0`` for ``n < k``;
    ``B[n] = sqrt(2n+1)``. Returns ``A`` of shape ``(N, N)`` and ``B`` of shape ``(N,)`` (real).
    """
    N = check_int(N, "N", minimum=1)
    _check_dtype(dtype, (torch.float32, torch.float64))
    _guard(N, 2, "hippo_legs")
    n = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)
    A = -torch.tril(r[:, None] * r[None, :], diagonal=-1) - torch.diag(n + 1)
    return A.to(dtype), r.to(dtype)


def legs_rank_correction(N: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Rank-1 correction of HiPPO-LegS, ``P_n = sqrt(n + 1/2)`` (Liquid-S4 §3.2); chapter s4/02_hippo.

    With ``A`` from :func:`hippo_legs`, ``A + P P^T = -1/2 I + S`` where ``S`` is skew-symmetric.
    Returns a real vector of shape ``(N,)``.
    """
    N = check_int(N, "N", minimum=1)
    _check_dtype(dtype, (torch.float32, torch.float64))
    return torch.sqrt(torch.arange(N, dtype=torch.float64) + 0.5).to(dtype)


class DPLR(NamedTuple):
    """Diagonal-plus-low-rank parameters of one SSM in the eigenbasis ``V`` (N2 stored modes).

    ``Lambda`` (N2,) complex, ``P`` (N2,) complex (= V^* P), ``B`` (N2,) complex (= V^* B),
    ``V`` (N, N2) complex with orthonormal columns (the eigenvectors of the kept modes).
    """

    Lambda: torch.Tensor
    P: torch.Tensor
    B: torch.Tensor
    V: torch.Tensor


def nplr_legs(N: int, dtype: torch.dtype = torch.complex128, *, half: str = "negative",
              odd: str = "drop") -> DPLR:
    """NPLR -> DPLR decomposition of HiPPO-LegS, Liquid-S4 Eq. (15); chapter s4/02_hippo.

    Diagonalizes the normal part ``A + P P^T = -1/2 I + S`` (``S`` skew) in float64: the
    eigenvalues are ``Lambda = -1/2 + i mu`` with ``mu`` the eigenvalues of the Hermitian matrix
    ``-i S``. Keeps ``N2 = N // 2`` modes: ``half="negative"`` (default, as the official code)
    keeps ``Im Lambda < 0`` sorted by increasing imaginary part; ``half="positive"`` keeps their
    conjugates ``Im Lambda > 0`` (and conjugated ``P, B, V``), in the same order.
    Returns :class:`DPLR` ``(Lambda, P = V^* P, B = V^* B, V)`` with shapes ``(N2,)`` and
    ``V`` ``(N, N2)``, cast to ``dtype`` (complex64 or complex128).

    For even ``N``: ``A = 2 Re(V diag(Lambda) V^*) - P P^T`` exactly (see :func:`dplr_reconstruct`).
    For odd ``N`` the real mode ``Lambda = -1/2`` is dropped (``odd="drop"``), as in the released
    Liquid-S4 code; ``odd="raise"`` raises ``ValueError`` instead.
    """
    N = check_int(N, "N", minimum=2)
    check_choice(half, "half", ["negative", "positive"])
    check_choice(odd, "odd", ["drop", "raise"])
    _check_dtype(dtype, (torch.complex64, torch.complex128))
    _guard(N, 8, "nplr_legs")
    if N % 2 == 1 and odd == "raise":
        raise ValueError(
            f"N: odd state size {N} has one real eigenvalue -1/2 that cannot be stored as a "
            f"conjugate pair; use an even N or odd='drop' (keeps {N // 2} pairs, real state {N - 1})"
        )
    A, B = hippo_legs(N, torch.float64)
    P = legs_rank_correction(N, torch.float64)
    normal = A + P[:, None] * P[None, :]
    S = normal + 0.5 * torch.eye(N, dtype=torch.float64)  # skew-symmetric part
    skew_err = float((S + S.T).abs().max())
    if skew_err > 1e-8 * max(1.0, float(S.abs().max())):
        raise RuntimeError(f"HiPPO-LegS: A + P P^T + I/2 is not skew-symmetric (error {skew_err:.2e})")
    mu, V = torch.linalg.eigh(-1j * S.to(torch.complex128))  # ascending real mu
    N2 = N // 2
    mu, V = mu[:N2], V[:, :N2]  # the N2 most negative: Im Lambda < 0 (the middle mu = 0 for odd N)
    Lam = torch.complex(torch.full_like(mu, -0.5), mu)
    Pc, Bc = P.to(torch.complex128), B.to(torch.complex128)
    P_t = V.conj().T @ Pc
    B_t = V.conj().T @ Bc
    if half == "positive":
        Lam, P_t, B_t, V = Lam.conj(), P_t.conj(), B_t.conj(), V.conj()
    return DPLR(Lam.to(dtype), P_t.to(dtype), B_t.to(dtype), V.to(dtype))


def dplr_reconstruct(Lambda: torch.Tensor, P: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Real matrix ``2 Re(V diag(Lambda) V^*) - 2 Re(V P)(2 Re(V P))^T``, Eq. (15); chapter s4/02_hippo.

    Undoes :func:`nplr_legs` for even ``N``: ``V`` (N, N2), ``Lambda`` (N2,), ``P = V^* P_real``
    (N2,). The real rank-1 vector is recovered as ``P_real = 2 Re(V P)`` because the columns of
    ``V`` and their conjugates form a unitary basis. Returns a real ``(N, N)`` matrix.
    """
    Lambda, P, V = (check_finite(as_tensor(t, n, allow_complex=True, allow_half=False), n)
                    for t, n in ((Lambda, "Lambda"), (P, "P"), (V, "V")))
    if V.ndim != 2 or Lambda.shape != (V.shape[1],) or P.shape != (V.shape[1],):
        raise ValueError(f"Lambda (N2,), P (N2,), V (N, N2): shapes do not agree, got {tuple(Lambda.shape)}, "
                         f"{tuple(P.shape)}, {tuple(V.shape)}")
    normal = 2 * ((V * Lambda) @ V.conj().T).real
    p = 2 * (V @ P).real
    return normal - p[:, None] * p[None, :]


def s4d_init(N: int, kind: str = "legs", dtype: torch.dtype = torch.complex64, *,
             half: str = "negative") -> tuple[torch.Tensor, torch.Tensor]:
    """S4D diagonal initializations (S4D-LegS, S4D-Inv, S4D-Lin; Gu et al. 2022b); chapter s4/02_hippo.

    Returns ``(Lambda, B)`` of shape ``(N2,)`` each, ``N2 = N // 2``, with ``Re Lambda = -1/2`` and
    * ``"legs"``: ``Im Lambda`` and ``B`` from the NPLR of HiPPO-LegS (:func:`nplr_legs`; the
      low-rank term is dropped);
    * ``"inv"``: ``Im Lambda_n = -(N/pi)(N/(2n+1) - 1)``, ``B = 1``;
    * ``"lin"``: ``Im Lambda_n = -pi n``, ``B = 1``.
    Signs follow ``half`` (``"negative"``: ``Im <= 0``, like :func:`nplr_legs`).
    """
    N = check_int(N, "N", minimum=2)
    check_choice(kind, "kind", ["legs", "inv", "lin"])
    check_choice(half, "half", ["negative", "positive"])
    _check_dtype(dtype, (torch.complex64, torch.complex128))
    if kind == "legs":
        d = nplr_legs(N, torch.complex128, half=half)
        return d.Lambda.to(dtype), d.B.to(dtype)
    N2 = N // 2
    n = torch.arange(N2, dtype=torch.float64)
    if kind == "inv":
        imag = -(N / math.pi) * (N / (2 * n + 1) - 1)
    else:
        imag = -math.pi * n
    if half == "positive":
        imag = -imag
    Lam = torch.complex(torch.full_like(imag, -0.5), imag)
    return Lam.to(dtype), torch.ones(N2, dtype=dtype)

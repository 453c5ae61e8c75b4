"""Liquid-S4: the linear LTC SSM, its unrolled liquid terms, and the KB and PB liquid kernels.

Liquid-S4 paper, Eq. (7)-(16), Proposition 1 and Algorithm 1; derived in the chapters
``book/liquid/01_linear_ltc`` to ``book/liquid/04_kb_vs_pb``. The released code's behaviour
(``variant="official"`` of the layer) is reproduced by the ``official_*`` functions and
compared with the paper in ``book/appendix/10_paper_vs_code_liquid_s4``.

Conventions (shapes broadcast over leading axes ``...``, e.g. ``(H,)`` systems and ``(B, H)``
inputs):

* a discrete system ``A_bar (..., N, N)``, ``B_bar (..., N)``, ``C (..., N)``, real or complex,
  written **in the basis in which Ā is stored** (for S4: the eigenbasis of the normal part of
  HiPPO, where A = Λ − PP*). The liquid model multiplies the state *elementwise* by ``B_bar``
  (Eq. 9 reads ``(Ā + diag(B̄) u_k)``), and an elementwise product is not invariant under a
  change of basis: the same continuous system written in another basis is a different liquid
  model. Every function here therefore works in the stored basis;
* inputs ``u (..., L)``; outputs ``y (..., L)`` (complex systems give complex outputs);
* liquid kernels are stacked over orders ``p = 2..order`` on an extra axis: ``(..., order - 1, L)``
  (``order`` is the paper's highest order 𝒫; ``P`` is always the DPLR low-rank factor);
* kernels of a DPLR S4 system take ``method=`` (the algorithm: ``"dplr"`` fast, ``"dense"`` the
  oracle, :data:`liquidssm.kernels.KERNEL_METHODS`) and ``backend=`` (where the Cauchy sums run).

The main results, proved in chapter ``03_proposition1``:

* the exact weight of the input product ``∏_{i∈S} u_i`` in ``y_k`` (``S = {i_1 < ... < i_p}``)
  is the ordered product ``C M_k M_{k-1} ... M_{i_1+1} B̄`` with ``M_j = diag(B̄)`` if ``j ∈ S``
  and ``M_j = Ā`` otherwise (:func:`subset_weight`). It equals the printed Eq. (10)-(11) weight
  ``C Ā^{k-i_1-p+1} B̄^p`` (:func:`printed_subset_weight`) whenever ``Ā`` and ``diag(B̄)``
  commute (e.g. diagonal ``Ā``) or ``S`` is a run of consecutive indices;
* the consecutive runs of length ``p`` ending at ``k - ℓ`` have weight ``C Ā^ℓ B̄^p``, so their
  total is the causal convolution ``K^(p) * c^(p)`` of the S4 kernel computed with ``B̄^p`` in
  place of ``B̄`` and the consecutive products ``c^(p)_t = ∏_{j<p} u_{t-j}``
  (Proposition 1; :func:`kb_kernel_dense`, :func:`kb_kernel_dplr`, :func:`kb_kernel`,
  :func:`liquid_output`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch

from liquidssm import kernels, ssm
from liquidssm._checks import (
    as_tensor,
    as_tensors,
    check_all_finite,
    check_choice,
    check_finite,
    check_int,
    check_memory,
    check_ndim,
    check_per_system,
    check_positive,
    tensor_bytes,
)
from liquidssm.compiled import transforms_active

__all__ = [
    "liquid_recurrence",
    "subset_weight",
    "printed_subset_weight",
    "unrolled_output",
    "symbolic_unroll",
    "printed_eq10_terms",
    "consecutive_products",
    "kb_kernel_dense",
    "kb_kernel_dplr",
    "kb_kernel",
    "dplr_B_bar",
    "pb_kernel",
    "pb_coefficients",
    "pb_coefficients_tilde",
    "PB_TAPS",
    "ROW_TAPS_MIN_ORDER",
    "liquid_output",
    "window_sum",
    "pb_term_reference",
    "pb_term",
    "check_order",
    "check_L_tilde",
    "guard_orders",
    "official_L_tilde",
    "official_subsets",
    "official_correlations",
    "official_B_bar",
    "official_pb_coefficients",
    "official_pb_term",
    "official_kb_term",
]

# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def check_order(order: object, name: str = "order") -> int:
    """Validate the highest liquid order (the paper's 𝒫): an int >= 2 (order 1 is the plain S4 kernel)."""
    if isinstance(order, bool) or not isinstance(order, int):
        raise TypeError(f"{name}: expected an int liquid order >= 2, got {type(order).__name__} {order!r}")
    if order < 2:
        raise ValueError(
            f"{name}: expected a liquid order >= 2 (order 1 is the S4 kernel itself), got {order}"
        )
    return order


def check_L_tilde(L_tilde: object, L: int, name: str = "L_tilde") -> int:
    """Validate the liquid kernel length ``L̃``: ``None`` means ``L``; otherwise 1 <= L̃ <= L."""
    if L_tilde is None:
        return L
    if isinstance(L_tilde, bool) or not isinstance(L_tilde, int):
        raise TypeError(f"{name}: expected an int or None, got {type(L_tilde).__name__} {L_tilde!r}")
    if not 1 <= L_tilde <= L:
        raise ValueError(f"{name}: expected 1 <= {name} <= L = {L}, got {L_tilde}")
    return L_tilde


# one validation of a discrete system and of an input sequence for the whole library
_system = ssm.check_discrete_system
_input = ssm.check_sequence

#: largest ``k`` for the symbolic unrolling (``2^(k+1)`` terms): beyond it sympy runs for minutes
MAX_SYMBOLIC_K = 10


def guard_orders(batch: tuple[int, ...], n_orders: int, L: int, dtype: torch.dtype, copies: int,
                  what: str, device: torch.device | None = None) -> None:
    """Memory guard for ``copies`` stacks of liquid terms ``(batch, order - 1, L)`` (:func:`liquidssm._checks.check_memory`)."""
    check_memory(copies * tensor_bytes((*batch, n_orders, L), dtype), f"{what}: the (..., order - 1, L) terms",
                 f"batch {batch}, order - 1 = {n_orders}, L = {L}", device)


def _stored_halves(Lambda: object, B: object, dt: object, **extra: object) -> tuple[torch.Tensor, ...]:
    """Validate ``Lambda``, ``B`` (and ``extra``) ``(..., N/2)`` complex and ``dt > 0`` per system.

    For the O(N) helpers that accept any leading axes (:func:`dplr_B_bar`, :func:`official_B_bar`).
    Returns ``(Lambda, B, dt, *extra.values())`` as tensors.
    """
    named = {"Lambda": Lambda, "B": B, **extra}
    tensors = {n: as_tensor(v, n, allow_complex=True, allow_half=False) for n, v in named.items()}
    check_all_finite(*tensors.items())
    N2 = tensors["Lambda"].shape[-1] if tensors["Lambda"].ndim else None
    for n, t in tensors.items():
        if t.ndim < 1 or t.shape[-1] != N2:
            raise ValueError(f"{n}: expected shape (..., N/2) with N/2 = {N2} (the modes of Lambda), got "
                             f"{tuple(t.shape)}")
    dt_t = check_positive(dt, "dt")
    check_per_system(dt_t.shape, "dt", tensors["Lambda"].shape[:-1], "the leading axes of Lambda")
    return (tensors["Lambda"], tensors["B"], dt_t, *(tensors[n] for n in extra))


# ---------------------------------------------------------------------------------------------
# Eq. (9): the exact recurrence, and its unrolling (Eq. 10-11)
# ---------------------------------------------------------------------------------------------


def liquid_recurrence(
    A_bar: object, B_bar: object, C: object, u: object, x0: object | None = None
) -> torch.Tensor:
    r"""Linear LTC SSM step by step, Liquid-S4 Eq. (9); the exact oracle. Chapter ``liquid/01_linear_ltc``.

    .. math:: x_k = (\bar A + \mathrm{diag}(\bar B)\,u_k)\,x_{k-1} + \bar B u_k,\qquad y_k = C x_k,

    with ``x_{-1} = x0`` (default 0). The state is in the basis where ``A_bar`` is stored
    (the elementwise product ``diag(B̄) x`` is basis-dependent).

    Args:
        A_bar: ``(..., N, N)``; B_bar: ``(..., N)``; C: ``(..., N)`` (real or complex).
        u: ``(..., L)``, leading axes broadcast with the system's (e.g. ``(B, H, L)``).
        x0: optional initial state ``(..., N)``.

    Returns:
        y of shape ``(..., L)``.
    """
    A_bar, B_bar, C, u, x = ssm.initial_state(A_bar, B_bar, C, u, x0)
    ys = []
    for k in range(u.shape[-1]):
        uk = u[..., k, None]
        x = (A_bar @ x[..., None])[..., 0] + B_bar * uk * x + B_bar * uk
        ys.append((C * x).sum(-1))
    return torch.stack(ys, dim=-1)


def _subset_tuple(S: Sequence[int], k: int) -> tuple[int, ...]:
    S = tuple(int(i) for i in S)
    if len(S) == 0:
        raise ValueError("S: expected a non-empty subset of {0..k}, got an empty one")
    if list(S) != sorted(set(S)) or S[0] < 0 or S[-1] > k:
        raise ValueError(f"S: expected strictly increasing indices in [0, k = {k}], got {S}")
    return S


def subset_weight(A_bar: object, B_bar: object, C: object, S: Sequence[int], k: int) -> torch.Tensor:
    r"""Exact weight of ``∏_{i∈S} u_i`` in ``y_k`` for Eq. (9); chapter ``liquid/02_unrolled_liquid_terms``.

    .. math:: w_k(S) = C\, M_k M_{k-1} \cdots M_{i_1+1}\, \bar B,\qquad
              M_j = \mathrm{diag}(\bar B) \text{ if } j \in S \text{ else } \bar A,

    where ``i_1 = min S``. Exact for any ``A_bar``; equals :func:`printed_subset_weight` when
    ``Ā`` commutes with ``diag(B̄)`` or ``S`` is a consecutive run.

    Args:
        A_bar ``(..., N, N)``, B_bar ``(..., N)``, C ``(..., N)``; S: increasing indices in
        ``[0, k]``; k: output time.

    Returns:
        the weight, shape ``(...)``.
    """
    A_bar, B_bar, C = _system(A_bar, B_bar, C)
    k = check_int(k, "k", minimum=0)
    S = _subset_tuple(S, k)
    members = set(S)
    v = B_bar.expand(*torch.broadcast_shapes(A_bar.shape[:-2], B_bar.shape[:-1]), B_bar.shape[-1])
    for j in range(S[0] + 1, k + 1):
        v = B_bar * v if j in members else (A_bar @ v[..., None])[..., 0]
    return (C * v).sum(-1)


def printed_subset_weight(A_bar: object, B_bar: object, C: object, S: Sequence[int], k: int) -> torch.Tensor:
    r"""Weight of ``∏_{i∈S} u_i`` in ``y_k`` as printed in Liquid-S4 Eq. (10)-(11): ``C Ā^{k-i_1-p+1} B̄^p``.

    Chapter ``liquid/02_unrolled_liquid_terms``. ``B̄^p`` is the elementwise power in the stored
    basis. Right for diagonal (commuting) ``Ā`` and for consecutive runs; wrong in general (see
    :func:`subset_weight`). Shapes as in :func:`subset_weight`.
    """
    A_bar, B_bar, C = _system(A_bar, B_bar, C)
    k = check_int(k, "k", minimum=0)
    S = _subset_tuple(S, k)
    p = len(S)
    v = B_bar**p
    v = v.expand(*torch.broadcast_shapes(A_bar.shape[:-2], v.shape[:-1]), v.shape[-1])
    for _ in range(k - S[0] - p + 1):
        v = (A_bar @ v[..., None])[..., 0]
    return (C * v).sum(-1)


def unrolled_output(
    A_bar: object,
    B_bar: object,
    C: object,
    u: object,
    *,
    max_order: int | None = None,
    rule: str = "exact",
    subsets: str = "all",
) -> torch.Tensor:
    r"""Brute-force unrolled Eq. (10)-(11): ``y_k`` split by the order ``p = |S|`` of its input products.

    Chapter ``liquid/02_unrolled_liquid_terms``. Enumerates every non-empty subset
    ``S ⊆ {0..k}`` (``2^{k+1} - 1`` of them) for every ``k < L`` -- use small ``L`` (<= 12).

    Args:
        A_bar ``(..., N, N)``, B_bar ``(..., N)``, C ``(..., N)``, u ``(..., L)``.
        max_order: largest order kept (default ``L``); orders above it are dropped.
        rule: ``"exact"`` (:func:`subset_weight`) or ``"printed"`` (:func:`printed_subset_weight`).
        subsets: ``"all"`` or ``"consecutive"`` (only runs ``{i, i+1, ..., i+p-1}``: the part
            that Proposition 1 / the KB kernel computes).

    Returns:
        ``(..., max_order, L)``: entry ``[..., p-1, k]`` is the order-``p`` part of ``y_k``.
        With ``rule="exact"``, ``subsets="all"`` and ``max_order=L`` the sum over orders is
        exactly :func:`liquid_recurrence`.
    """
    A_bar, B_bar, C = _system(A_bar, B_bar, C)
    u = _input(u)
    L = u.shape[-1]
    max_order = L if max_order is None else check_int(max_order, "max_order", minimum=1)
    check_choice(rule, "rule", ("exact", "printed"))
    check_choice(subsets, "subsets", ("all", "consecutive"))
    if L > 14:
        raise ValueError(f"u: brute-force enumeration needs L <= 14 (2^L subsets), got L = {L}")
    dtype = torch.promote_types(A_bar.dtype, u.dtype)
    A_bar, B_bar, C, u = (t.to(dtype) for t in (A_bar, B_bar, C, u))
    weight = subset_weight if rule == "exact" else printed_subset_weight
    batch = torch.broadcast_shapes(A_bar.shape[:-2], B_bar.shape[:-1], C.shape[:-1], u.shape[:-1])
    out = torch.zeros(*batch, max_order, L, dtype=dtype)
    for k in range(L):
        for p in range(1, min(max_order, k + 1) + 1):
            if subsets == "all":
                family = itertools.combinations(range(k + 1), p)
            else:
                family = (tuple(range(i, i + p)) for i in range(k - p + 2))
            for S in family:
                prod = u[..., list(S)].prod(-1)
                out[..., p - 1, k] += weight(A_bar, B_bar, C, S, k) * prod
    return out


def symbolic_unroll(k: int):
    """Eq. (9) unrolled symbolically with sympy, non-commuting Ā and diag(B̄); chapter ``liquid/02_unrolled_liquid_terms``.

    Symbols: ``c`` (row vector C̄), ``A`` (Ā), ``D`` (the matrix diag(B̄)), ``b`` (column B̄),
    all non-commutative, and commutative inputs ``u0..uk``. ``B̄^p`` (elementwise) is ``D^{p-1} b``.

    Returns:
        ``dict`` mapping each subset ``S`` (a tuple) to the sympy coefficient of ``∏_{i∈S} u_i``
        in ``y_k``.
    """
    import sympy as sp

    k = check_int(k, "k", minimum=0, maximum=MAX_SYMBOLIC_K)
    A, D, b, c = sp.symbols("A D b c", commutative=False)
    us = sp.symbols(f"u0:{k + 1}")
    x = sp.Integer(0)
    for j in range(k + 1):
        x = sp.expand((A + D * us[j]) * x + b * us[j])
    y = sp.expand(c * x)
    coeffs: dict[tuple[int, ...], object] = {}
    for term in sp.Add.make_args(y):
        comm, noncomm = term.args_cnc()
        S = tuple(sorted(us.index(f) for f in comm if f in us))
        scalar = sp.Mul(*[f for f in comm if f not in us])
        coeffs[S] = coeffs.get(S, 0) + scalar * sp.Mul(*noncomm)
    return coeffs


def printed_eq10_terms(k: int):
    """Coefficients of Liquid-S4 Eq. (10) as printed (k <= 2) and Eq. (11)'s rule (any k), in sympy.

    Chapter ``liquid/02_unrolled_liquid_terms``. Same symbols as :func:`symbolic_unroll`. For
    ``k <= 2`` the dictionary is typed in literally from the paper's Eq. (10); for ``k >= 3`` it
    is Eq. (11)'s rule ``c A^{k+1-p-i_1} D^{p-1} b``.
    """
    import sympy as sp

    k = check_int(k, "k", minimum=0, maximum=MAX_SYMBOLIC_K)
    A, D, b, c = sp.symbols("A D b c", commutative=False)
    B2, B3 = D * b, D**2 * b
    literal = {
        0: {(0,): c * b},
        1: {(0,): c * A * b, (1,): c * b, (0, 1): c * B2},
        2: {(0,): c * A**2 * b, (1,): c * A * b, (2,): c * b, (0, 1): c * A * B2,
            (0, 2): c * A * B2, (1, 2): c * B2, (0, 1, 2): c * B3},
    }
    if k in literal:
        return literal[k]
    out = {}
    for p in range(1, k + 2):
        for S in itertools.combinations(range(k + 1), p):
            out[S] = c * A ** (k + 1 - p - S[0]) * D ** (p - 1) * b
    return out


# ---------------------------------------------------------------------------------------------
# Proposition 1: consecutive products and the KB kernel
# ---------------------------------------------------------------------------------------------


def consecutive_products(u: object, p: int) -> torch.Tensor:
    r"""Consecutive input products ``c^(p)_t = ∏_{j=0}^{p-1} u_{t-j}`` (0 for ``t < p-1``); Proposition 1.

    Chapter ``liquid/03_proposition1``. ``u``: ``(..., L)``; returns ``(..., L)``.
    ``p = 1`` gives ``u`` itself.
    """
    u = _input(u)
    p = check_int(p, "p", minimum=1)
    L = u.shape[-1]
    guard_orders(tuple(u.shape[:-1]), 3, L, u.dtype, 1, "consecutive_products", u.device)
    if p > L:  # every product reaches back before the start
        return torch.zeros_like(u)
    out = u.clone()
    for j in range(1, p):
        shifted = torch.zeros_like(u)
        if j < L:
            shifted[..., j:] = u[..., : L - j]
        out = out * shifted
    return out


def kb_kernel_dense(A_bar: object, B_bar: object, C: object, L: int, order: int, L_tilde: int | None = None) -> torch.Tensor:
    r"""KB liquid kernels by matrix powers, Proposition 1: ``K^(p)_ℓ = C Ā^ℓ B̄^p``, ``p = 2..order``.

    Chapter ``liquid/03_proposition1``. The S4 kernel (:func:`liquidssm.ssm.kernel_by_powers`)
    with the elementwise power ``B̄^p`` in place of ``B̄``, truncated to ``ℓ < L̃``
    (``L_tilde``; default ``L``: no truncation, the exact consecutive-run part).

    Args:
        A_bar ``(..., N, N)``, B_bar ``(..., N)``, C ``(..., N)``; L: length; order: highest
        order >= 2.

    Returns:
        ``(..., order - 1, L)``; row ``p - 2`` is order ``p``.
    """
    A_bar, B_bar, C = _system(A_bar, B_bar, C)
    L = check_int(L, "L", minimum=1)
    order = check_order(order)
    Lt = check_L_tilde(L_tilde, L)
    batch = tuple(torch.broadcast_shapes(A_bar.shape[:-2], B_bar.shape[:-1], C.shape[:-1]))
    guard_orders(batch, order - 1, L, A_bar.dtype, 2, "kb_kernel_dense", A_bar.device)
    rows = [ssm.kernel_by_powers(A_bar, B_bar**p, C, L) for p in range(2, order + 1)]
    K = torch.stack(rows, dim=-2)
    if Lt < L:
        K = torch.cat([K[..., :Lt], torch.zeros_like(K[..., Lt:])], dim=-1)
    return K


def dplr_B_bar(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    r"""Bilinear ``B̄ = Δ (I − Δ/2·A)^{-1} B`` for the conjugate-symmetric DPLR ``A = Λ − PP*`` in O(N).

    Algorithm 1 input discretization (Liquid-S4 Eq. 3 with Eq. 6); chapter ``liquid/03_proposition1``.
    ``Lambda``, ``P``, ``B``: ``(..., N/2)`` complex (the stored halves; the full system is
    their conjugate doubling); ``dt``: ``(...)`` or scalar. Returns the stored half of ``B̄``,
    ``(..., N/2)`` (the other half is its conjugate). Uses Sherman-Morrison on
    ``(2/Δ − Λ + PP*)``; the inner product ``P*v`` over the full state is ``2 Re Σ_n conj(P_n) v_n``.
    """
    Lambda, B, dt, P = _stored_halves(Lambda, B, dt, P=P)
    return _dplr_B_bar(Lambda, P, B, dt)


def _dplr_B_bar(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """:func:`dplr_B_bar` on validated tensors (rank-1 ``P`` of ``Lambda``'s shape)."""
    dt = dt.to(Lambda.real.dtype)
    d = 1.0 / (2.0 / dt[..., None] - Lambda)  # (2/Δ − Λ)^{-1}, diagonal
    # (2/Δ − Λ + P P*)^{-1} x = d x − d P (P* d x) / (1 + P* d P), full-state inner products
    dB = d * B
    dP = d * P
    num = 2 * (P.conj() * dB).sum(-1, keepdim=True).real
    den = 1 + 2 * (P.conj() * dP).sum(-1, keepdim=True).real
    return 2.0 * (dB - dP * (num / den))


def kb_kernel_dplr(
    Lambda: torch.Tensor,
    P: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    dt: torch.Tensor,
    L: int,
    order: int,
    *,
    L_tilde: int | None = None,
    backend: str = "auto",
    c_is_tilde: bool = False,
) -> torch.Tensor:
    r"""KB liquid kernels ``K^(p)_ℓ = C Ā^ℓ B̄^p`` for DPLR S4, ``p = 2..order``, through the S4 kernel.

    Proposition 1 and Algorithm 1 lines 6-10; chapter ``liquid/03_proposition1``. For any vector
    ``v``, ``C Ā^ℓ v`` is the bilinear S4 kernel of the continuous input vector
    ``B_eff = (I − Δ/2·A) v / Δ`` (because ``B̄ = Δ (I − Δ/2·A)^{-1} B``). With ``v = B̄^p``
    (elementwise, in the stored eigenbasis of the conjugate-doubled system) and ``A = Λ − PP*``
    this costs O(N) on top of one :func:`liquidssm.kernels.s4_dplr_kernel` call per order. The
    kernels are computed at length ``L̃`` directly (their generating function truncated there,
    ``C̃ = C(I − Ā^{L̃})`` computed once for all orders) and zero-padded to ``L``.

    Args:
        Lambda, P, B: ``(H, N/2)`` complex; C: ``(H, N/2)`` or ``(channels, H, N/2)`` complex
            (un-tilded, or ``C̃`` for length ``L̃`` if ``c_is_tilde``); dt: ``(H,)``; L: output
            length; order: highest liquid order >= 2.
        L_tilde: keep ``ℓ < L̃`` (default ``L``).
        backend: Cauchy backend passed to :func:`liquidssm.kernels.s4_dplr_kernel`.

    Returns:
        real ``(H, order - 1, L)`` (or ``(channels, H, order - 1, L)``), the kernel of the real
        system of :func:`liquidssm.kernels.dplr_to_dense` (conjugate halves summed, no factor 2).
    """
    Lambda, P, B, C, dt = kernels.check_dplr(Lambda, P, B, C, dt)
    L = check_int(L, "L", minimum=1)
    order = check_order(order)
    Lt = check_L_tilde(L_tilde, L)
    dt = torch.as_tensor(dt, dtype=Lambda.real.dtype)
    C_tilde = C if c_is_tilde else kernels.c_tilde(Lambda, P, B, C, dt, Lt)
    B_bar = dplr_B_bar(Lambda, P, B, dt)
    rows = []
    for p in range(2, order + 1):
        B_eff = kernels.bilinear_input(Lambda, P, B_bar**p, dt)  # its bilinear B̄ is B̄^p
        rows.append(kernels.s4_dplr_kernel(Lambda, P, B_eff, C_tilde, dt, Lt, backend=backend, c_is_tilde=True))
    K = torch.stack(rows, dim=-2)
    if Lt < L:
        K = torch.nn.functional.pad(K, (0, L - Lt))
    return K


def kb_kernel(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor,
              L: int, order: int, *, L_tilde: int | None = None, method: str = "dplr",
              backend: str = "auto") -> torch.Tensor:
    r"""KB liquid kernels ``K^(p)_ℓ = C Ā^ℓ B̄^p`` of a DPLR S4 system by a chosen algorithm, Proposition 1.

    Chapter ``liquid/03_proposition1``. ``method="dplr"`` (default): :func:`kb_kernel_dplr` with the
    Cauchy ``backend``; ``method="dense"``: the oracle, :func:`kb_kernel_dense` on the
    conjugate-doubled system of :func:`liquidssm.kernels.discretize_dplr_bilinear` with
    ``C_full = conj_double(C)`` (``backend`` unused). Shapes as :func:`kb_kernel_dplr`: returns real
    ``(H, order - 1, L)`` or ``(channels, H, order - 1, L)``.
    """
    kernels.check_method(method)
    Lambda, P, B, C, dt = kernels.check_dplr(Lambda, P, B, C, dt)
    if method == "dense":
        A_bar, B_bar = kernels.discretize_dplr_bilinear(Lambda, P, B, dt)
        return kb_kernel_dense(A_bar, B_bar, kernels.conj_double(C), L, order, L_tilde=L_tilde).real
    return kb_kernel_dplr(Lambda, P, B, C, dt, L, order, L_tilde=L_tilde, backend=backend)


# ---------------------------------------------------------------------------------------------
# Eq. (16): the PB kernel, and the liquid output of a bank of kernels
# ---------------------------------------------------------------------------------------------


def pb_kernel(B_bar: object, C: object, L: int, order: int, L_tilde: int | None = None, *, conj_pairs: bool = False) -> torch.Tensor:
    r"""PB liquid kernels, Liquid-S4 Eq. (16): ``K^(p)_ℓ = C B̄^p`` for ``ℓ < L̃`` and 0 beyond.

    Chapter ``liquid/04_kb_vs_pb``. Proposition 1's kernel with ``Ā`` replaced by ``I``.

    Args:
        B_bar ``(..., N)``, C ``(..., N)``; L: length; order: highest order >= 2; L_tilde: window
            (default ``L``).
        conj_pairs: if True, ``B_bar`` and ``C`` hold the stored halves of a conjugate-symmetric
            system and the result is the real ``2 Re Σ_n C_n B̄_n^p``.

    Returns:
        ``(..., order - 1, L)``.
    """
    B_bar = check_finite(as_tensor(B_bar, "B_bar", allow_complex=True), "B_bar")
    C = check_finite(as_tensor(C, "C", allow_complex=True), "C")
    L = check_int(L, "L", minimum=1)
    order = check_order(order)
    Lt = check_L_tilde(L_tilde, L)
    if B_bar.ndim < 1 or C.ndim < 1 or B_bar.shape[-1] != C.shape[-1]:
        raise ValueError(f"B_bar, C: expected shapes (..., N) with one N, got {tuple(B_bar.shape)} and {tuple(C.shape)}")
    batch = tuple(torch.broadcast_shapes(B_bar.shape[:-1], C.shape[:-1]))
    guard_orders(batch, order - 1, L, torch.promote_types(B_bar.dtype, C.dtype), 2, "pb_kernel", B_bar.device)
    coef = torch.stack([(C * B_bar**p).sum(-1) for p in range(2, order + 1)], dim=-1)  # (..., order-1)
    if conj_pairs:
        coef = 2 * coef.real
    window = torch.zeros(L, dtype=coef.real.dtype)
    window[:Lt] = 1
    return coef[..., None] * window.to(coef.dtype)


def pb_coefficients(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor,
                    order: int, *, method: str = "dplr") -> torch.Tensor:
    r"""PB coefficients ``C̄ B̄^p``, ``p = 2..order``, of a DPLR S4 system, Liquid-S4 Eq. (16).

    Chapter ``liquid/04_kb_vs_pb``: the constant value of the PB kernel (:func:`pb_kernel`) inside
    its window, ``Σ_n C_full,n B̄_n^p = 2 Re Σ_{n<N/2} C_n B̄_n^p`` over the conjugate-doubled
    state. ``method`` picks how the bilinear ``B̄`` is computed: ``"dplr"`` (default,
    Sherman-Morrison, :func:`dplr_B_bar`) or ``"dense"`` (the oracle,
    :func:`liquidssm.kernels.discretize_dplr_bilinear`).

    Args:
        Lambda, P, B: ``(H, N/2)`` complex; C: ``(H, N/2)`` or ``(channels, H, N/2)``;
            dt: ``(H,)``; order: highest order >= 2.

    Returns:
        real ``(H, order - 1)`` or ``(channels, H, order - 1)``.
    """
    kernels.check_method(method)
    order = check_order(order)
    Lambda, P, B, C, dt = kernels.check_dplr(Lambda, P, B, C, dt)
    if method == "dense":
        B_bar = kernels.discretize_dplr_bilinear(Lambda, P, B, dt)[1][..., : Lambda.shape[-1]]
    else:
        B_bar = dplr_B_bar(Lambda, P, B, dt)
    return torch.stack([2 * (C * B_bar**p).sum(-1).real for p in range(2, order + 1)], dim=-1)


#: how :func:`pb_coefficients_tilde` reads ``C B̄^p`` off ``C̃``: by order (``"auto"``), one column per
#: order, one Cauchy call for all orders, or (the previous form, kept as the reference) two columns per order
PB_TAPS = ("auto", "columns", "row", "two-columns")
#: ``taps="auto"`` uses ``"row"`` from this highest order on. With one column per order the columns
#: were faster at every measured order 2..6 (issue 25: B = 8, H = 128, N = 64, L = 1024 and 4096,
#: 2 threads, the kernel and coefficients forward+backward); from the per-order slope the row's
#: fixed cost (its own Cauchy call) would be reached around order 9 at L = 4096, later at L = 1024
ROW_TAPS_MIN_ORDER = 9


def _rank_one(P: torch.Tensor) -> torch.Tensor:
    """``P`` without its rank axis; a ``ValueError`` unless it has rank 1 (Eq. (16)'s B̄ is the rank-1 Sherman-Morrison one)."""
    if P.ndim == 3 and P.shape[0] != 1:
        raise ValueError(f"P: the PB coefficients use the rank-1 B̄ of Eq. (16); got rank {P.shape[0]} "
                         f"(P of shape {tuple(P.shape)})")
    return P[0] if P.ndim == 3 else P


def _powers(B_bar: torch.Tensor, order: int) -> torch.Tensor:
    """``stack(B̄^p, p = 2..order)`` by repeated products: ``(order - 1, ..., N/2)``."""
    out = [B_bar * B_bar]
    for _ in range(order - 2):
        out.append(out[-1] * B_bar)
    return torch.stack(out)


def _B_bar_powers(order: int) -> Callable[..., torch.Tensor]:
    """``(Lambda, P (1, H, N/2), B, dt) -> stack(B̄^p, p = 2..order)``, for :func:`liquidssm.kernels.s4_dplr_kernel_and_taps`."""
    def powers(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return _powers(_dplr_B_bar(Lambda, _rank_one(P), B, dt), order)
    return powers


def pb_coefficients_tilde(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C_tilde: torch.Tensor,
                          dt: torch.Tensor, order: int, L: int, *, backend: str = "auto",
                          with_kernel: bool = False, taps: str = "auto") -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""PB coefficients ``C̄ B̄^p``, ``p = 2..order``, from a learned ``C̃ = C(I − Ā^L)``, Eq. (16).

    Chapter ``liquid/05_liquid_s4_layer``. The coefficients need the un-truncated ``C``. Instead of
    the dense solve ``C = C̃ (I − Ā^L)^{-1}``, they are tap 0 of the S4 kernels of ``C̃`` with the
    input vectors ``B̄^p``, i.e. the mean of the generating function over the ``L``-th roots of
    unity, computed with the Cauchy denominators of the S4 kernel. ``taps`` picks the form:

    * ``"auto"`` (default): ``"columns"`` below order :data:`ROW_TAPS_MIN_ORDER`, ``"row"`` from it on;
    * ``"columns"``: :func:`liquidssm.kernels.s4_dplr_kernel_and_taps`: the diagonal part of tap 0 in
      closed form (:func:`liquidssm.kernels.diagonal_node_mean`) and one extra right-hand side
      ``P^* v'`` per order in the S4 kernel's own Cauchy call, sharing its reciprocals;
    * ``"row"``: :func:`liquidssm.kernels.s4_dplr_kernel_and_row`, one extra Cauchy call with the
      nodes and modes swapped gives a row ``E`` with ``C v = Re Σ_n bilinear_input(v)_n E_n`` for
      every ``v``: a cost independent of the order, but a call with its own reciprocals;
    * ``"two-columns"``: the previous form (``diagonal="cauchy"``), two right-hand sides per order;
      the reference layer (``liquid_impl="reference"``) keeps it.

    All equal :func:`pb_coefficients` of ``C = kernels.c_from_tilde(..., C̃, L)`` (the dense
    oracle) to rounding. The columns forms need the rank-1 ``P`` of Eq. (16) (a ``ValueError``
    otherwise).

    Args:
        Lambda, P, B: ``(H, N/2)`` complex; C_tilde: ``(H, N/2)`` or ``(channels, H, N/2)``, defined
            for length ``L``; dt: ``(H,)``; order: highest order >= 2; backend: Cauchy backend.
        with_kernel: also return the S4 kernel of ``C̃`` at length ``L`` (computed by the same call).
        taps: one of :data:`PB_TAPS`.

    Returns:
        real ``(H, order - 1)`` or ``(channels, H, order - 1)``; with ``with_kernel`` the pair
        ``(kernel (channels, H, L) or (H, L), coefficients)``.
    """
    order = check_order(order)
    check_choice(taps, "taps", PB_TAPS)
    if taps == "auto":
        taps = "row" if order >= ROW_TAPS_MIN_ORDER else "columns"
    if taps in ("columns", "two-columns"):  # the kernel function validates once and calls _B_bar_powers
        K, T = kernels.s4_dplr_kernel_and_taps(Lambda, P, B, C_tilde, dt, L, _B_bar_powers(order), backend=backend,
                                               diagonal="closed" if taps == "columns" else "cauchy")  # T (.., k, H)
        coef = T.movedim(-2, -1)
        return (K, coef) if with_kernel else coef
    Lambda, P, B, C_tilde, dt = kernels.check_dplr(Lambda, P, B, C_tilde, dt)
    P = _rank_one(P)
    V = _powers(dplr_B_bar(Lambda, P, B, dt), order)  # (order - 1, H, N/2)
    K, E = kernels.s4_dplr_kernel_and_row(Lambda, P, B, C_tilde, dt, L, backend=backend)  # E (.., H, N/2)
    V_in = kernels.bilinear_input(Lambda, P, V, dt).to(E.dtype)  # (order - 1, H, N/2)
    coef = (V_in * E.unsqueeze(-3)).sum(-1).real.movedim(-2, -1).to(K.dtype)  # (.., H, order - 1)
    return (K, coef) if with_kernel else coef


def liquid_output(u: object, K_liquid: object, method: str = "fft") -> torch.Tensor:
    r"""Liquid part of Eq. (11) restricted to consecutive runs: ``Σ_p K^(p) * c^(p)``; Proposition 1.

    Chapter ``liquid/03_proposition1``. ``u``: ``(..., L)``; ``K_liquid``: ``(..., order - 1, L)``
    (row ``p - 2`` is order ``p``, from :func:`kb_kernel_dense`, :func:`kb_kernel_dplr` or
    :func:`pb_kernel`). ``*`` is the causal convolution
    ``(K * c)_k = Σ_{ℓ=0}^{k} K_ℓ c_{k-ℓ}``. Returns ``(..., L)``.
    """
    u = _input(u)
    K = check_ndim(as_tensor(K_liquid, "K_liquid", allow_complex=True), "K_liquid", range(2, 9), "(..., order - 1, L)")
    n_orders = K.shape[-2]
    guard_orders(tuple(u.shape[:-1]), n_orders, u.shape[-1], u.dtype, 4, "liquid_output", u.device)
    corr = torch.stack([consecutive_products(u, p) for p in range(2, n_orders + 2)], dim=-2)
    return ssm.causal_conv(corr, K, method=method).sum(-2)


# ---------------------------------------------------------------------------------------------
# The PB liquid term of a layer: the reference (one pass per operation) and the fused version
# ---------------------------------------------------------------------------------------------


def window_sum(c: torch.Tensor, L_tilde: int) -> torch.Tensor:
    """``Σ_{ℓ<L̃} c_{t-ℓ}`` along the last axis in O(L): the causal moving sum of the PB kernel's window."""
    c = as_tensor(c, "c")
    cs = c.cumsum(-1)
    if L_tilde >= c.shape[-1]:
        return cs
    return cs - torch.nn.functional.pad(cs[..., :-L_tilde], (L_tilde, 0))


def pb_term_reference(u: torch.Tensor, coef: torch.Tensor, L_tilde: int) -> torch.Tensor:
    r"""PB liquid term ``Σ_p a_p Σ_{ℓ<L̃} c^(p)_{t-ℓ}`` of ``u (B, H, L)``, one tensor operation at a time; Eq. (16).

    Chapter ``liquid/05_liquid_s4_layer``; the oracle of :func:`pb_term`. ``coef (H, order - 1)``
    holds ``a_p = C B̄^p``. The consecutive products ``c^(p) = c^(p-1) ⊙ shift_{p-1}(u)`` are built
    incrementally (their own oracle is :func:`consecutive_products`), each order gets its own
    moving sum, and autograd differentiates every step. Returns ``(B, H, L)``.
    """
    u, coef = as_tensor(u, "u"), as_tensor(coef, "coef")
    L = u.shape[-1]
    c, z = u, None
    for p in range(2, coef.shape[-1] + 2):
        c = c * torch.nn.functional.pad(u[..., : L - p + 1], (p - 1, 0)) if p <= L else torch.zeros_like(u)
        term = coef[:, p - 2, None] * window_sum(c, L_tilde)
        z = term if z is None else z + term
    return z  # type: ignore[return-value]


#: from this length on, :func:`_cumsum_time` scans a ``(R, L, C > 1)`` tensor in blocks of :data:`SCAN_BLOCK` steps
BLOCKED_SCAN_MIN_L = 2048
SCAN_BLOCK = 8


def _cumsum_time(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Prefix sums along axis 1 of ``x (R, L, C)``; a new tensor.

    With ``C = 1`` (series contiguous in time) torch's scan along the last axis. With ``C > 1``
    (the layer's ``(B, L, H)``: time is a middle axis, the ``C`` series interleaved) torch scans
    one series at a time with a stride of ``C``; from :data:`BLOCKED_SCAN_MIN_L` on a two-level
    scan is about twice as fast there: :data:`SCAN_BLOCK` - 1 in-place additions, each over
    every block at once and vectorized over ``C``, scan inside the blocks, then the block totals
    are scanned (a tensor ``SCAN_BLOCK`` times smaller) and added to the following blocks.
    ``out``: a contiguous ``(R, L, C)`` tensor to write into (not ``x``; the fused term passes row slices).
    """
    R, L, C = x.shape
    if C == 1:
        if out is None:
            return x.view(R, L).cumsum(-1).view(R, L, 1)
        torch.cumsum(x.view(R, L), -1, out=out.view(R, L))
        return out
    if L < max(BLOCKED_SCAN_MIN_L, SCAN_BLOCK):
        return x.cumsum(1) if out is None else torch.cumsum(x, 1, out=out)
    b = SCAN_BLOCK
    nb = L // b
    y = x.clone() if out is None else out.copy_(x)
    blocks = y[:, : nb * b].view(R, nb, b, C)
    for i in range(1, b):
        blocks[:, :, i] += blocks[:, :, i - 1]
    totals = blocks[:, :, b - 1].cumsum(1)  # (R, nb, C): the prefix sum at the end of every block
    blocks[:, 1:] += totals[:, :-1, None]
    tail = y[:, nb * b:]  # L not a multiple of b: the last few steps one by one
    for i in range(tail.shape[1]):
        tail[:, i] += totals[:, -1] if i == 0 else tail[:, i - 1]
    return y


def _window_sum_into(out: torch.Tensor, c: torch.Tensor, L_tilde: int) -> None:
    """``out = Σ_{ℓ<L̃} c_{t-ℓ}`` along axis 1 of ``c (R, L, C)``: :func:`window_sum` in the fused term's layout."""
    if L_tilde >= c.shape[1]:  # a full prefix sum
        _cumsum_time(c, out=out)
        return
    cs = _cumsum_time(c)
    out.copy_(cs)
    out[:, L_tilde:] -= cs[:, : c.shape[1] - L_tilde]


def _window_sum_adjoint(g: torch.Tensor, L_tilde: int) -> torch.Tensor:
    """``Σ_{ℓ<L̃, t+ℓ<L} g_{t+ℓ}`` along axis 1 of ``g (R, L, C)``, the adjoint of the window sum, without flips.

    With the prefix sums ``s``, the window starting at ``t`` sums to ``s_{min(t+L̃-1, L-1)} - s_{t-1}``.
    """
    L = g.shape[1]
    cs = _cumsum_time(g)
    G = g - cs  # -s_{t-1}
    k = max(0, L - L_tilde + 1)  # windows that end inside the series
    if k:
        G[:, :k] += cs[:, L_tilde - 1:]
    if k < L:
        G[:, k:] += cs[:, L - 1:]
    return G


def _pb_products(u: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    r"""``g_t = Σ_{p=2}^{P} a_p ∏_{j<p} u_{t-j}`` in Horner form: ``u_t u_{t-1} (a_2 + u_{t-2}(a_3 + … + u_{t-P+1} a_P))``.

    ``u (R, L, C)`` with time on axis 1, ``A (R or 1, 1, C, P - 1)`` (``a_p = A[..., p - 2]``); ``u``
    at negative times is 0. Returns ``(R, L, C)``.
    """
    L = u.shape[1]
    P = min(A.shape[-1] + 1, L)  # c^(p) = 0 identically for p > L
    if P < 2:
        return torch.zeros_like(u)
    if P == 2:
        h = u * A[..., 0]
    else:  # h = a_{P-1} + u_{t-P+1} a_P, then h <- a_p + u_{t-p} h for p = P-2, ..., 2
        h = torch.empty_like(u)
        h[:, : P - 1] = 0
        torch.mul(u[:, : L - P + 1], A[..., P - 2], out=h[:, P - 1:])
        h += A[..., P - 3]
        for p in range(P - 2, 1, -1):
            h[:, p:] *= u[:, : L - p]
            h[:, :p] = 0
            h += A[..., p - 2]
        h *= u
    h[:, 1:] *= u[:, :-1]
    h[:, :1] = 0
    return h


#: elements of the fused PB term processed at a time: whole time series of about this many elements
#: per chunk, so the few temporaries of a chunk stay in the CPU cache instead of streaming the
#: whole ``(B, H, L)`` through memory once per operation (issue 25: at L = 4096 a full pass costs
#: as much as the arithmetic of several)
PB_CHUNK_ELEMS = 2**19


def _pb_backward(u: torch.Tensor, A: torch.Tensor, gz: torch.Tensor, L_tilde: int, gu: torch.Tensor | None,
                 grad_a: torch.Tensor | None) -> None:
    """Backward of the fused PB term on ``u``, ``gz`` (R, L, C) (time on axis 1), ``A`` as :func:`_pb_products`.

    Writes ``ū (R, L, C)`` into ``gu`` and ``ā (R, C, P - 1)``, summed over time only (the caller
    sums the rest), into ``grad_a`` (either may be None: not needed); see :class:`_PBTerm` for the
    adjoint recursion.
    """
    G = _window_sum_adjoint(gz, L_tilde)  # the anti-causal moving sum W^T gz
    L, n = u.shape[1], A.shape[-1]
    P = min(n + 1, L)  # c^(p) = 0 identically for p > L
    if P < 2:
        for t in (gu, grad_a):
            if t is not None:
                t.zero_()
        return
    prods = [u]  # c^(1), ..., c^(P-1) (c^(P) only enters grad a_P)
    for p in range(2, P):
        c = torch.empty_like(u)
        c[:, : p - 1] = 0
        torch.mul(prods[-1][:, p - 1:], u[:, : L - p + 1], out=c[:, p - 1:])
        prods.append(c)
    if grad_a is not None:  # grad a_p = Σ_t G_t c^(p)_t = Σ_t m_t c^(p-1)_{t-1}, as c^(p)_t = u_t c^(p-1)_{t-1}
        grad_a[..., P - 1:] = 0  # orders above L: c^(p) = 0
        m = G * u
        for p in range(2, P + 1):
            grad_a[..., p - 2] = torch.linalg.vecdot(m[:, 1:], prods[p - 2][:, : L - 1], dim=1)
    if gu is None:
        return
    bar = G * A[..., P - 2]  # c̄^(P)
    first = True  # gu is written by the first contribution, added to afterwards (no zero fill)
    for p in range(P - 1, 1, -1):  # c^(p+1) = c^(p) ⊙ S_p u: ū_{t-p} += c̄^(p+1)_t c^(p)_t, then c̄^(p)
        if first:
            torch.mul(bar[:, p:], prods[p - 1][:, p:], out=gu[:, : L - p])
            gu[:, L - p:] = 0
            first = False
        else:
            gu[:, : L - p].addcmul_(bar[:, p:], prods[p - 1][:, p:])
        bar[:, p:] *= u[:, : L - p]
        bar[:, :p] = 0
        bar.addcmul_(G, A[..., p - 2])
    # c^(2) = u ⊙ S_1 u: ū_{t-1} += c̄^(2)_t u_t and ū_t += c̄^(2)_t u_{t-1}
    if first:
        torch.mul(bar[:, 1:], u[:, 1:], out=gu[:, : L - 1])
        gu[:, L - 1:] = 0
    else:
        gu[:, : L - 1].addcmul_(bar[:, 1:], u[:, 1:])
    gu[:, 1:].addcmul_(bar[:, 1:], u[:, : L - 1])


def _time_major(x: torch.Tensor, coef: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """``x (B, H, L)`` as a time-major ``(R, L, C)`` tensor without a copy where its memory allows.

    ``(B, L, H)`` memory (the layer's own layout: its input and the gradient of its output) gives
    ``(B, L, H)``; anything else is made ``(B, H, L)``-contiguous and read as ``(B·H, L, 1)``.
    Also returns the coefficients ``coef (H, n)`` broadcast to match, ``(1, 1, H, n)`` or
    ``(B·H, 1, 1, n)``, and whether the first form was used.
    """
    Bsz, H, L = x.shape
    xt = x.transpose(1, 2)
    if H > 1 and xt.is_contiguous():
        return xt, (None if coef is None else coef.view(1, 1, H, -1)), True
    x = x.contiguous()
    return x.view(Bsz * H, L, 1), (None if coef is None else coef.repeat(Bsz, 1).view(Bsz * H, 1, 1, -1)), False


def _chunks(X: torch.Tensor) -> list[slice]:
    """Row slices of ``X (R, L, C)``: whole rows, about :data:`PB_CHUNK_ELEMS` elements a chunk (at least one row).

    Rows are not cut into groups of columns: on the layer's ``(B, L, H)`` the strided column
    slices cost more than the cache they save (issue 25, measured at ``L = 4096``).
    """
    step = max(1, PB_CHUNK_ELEMS // max(1, X.shape[1] * X.shape[2]))
    return [slice(r, r + step) for r in range(0, X.shape[0], step)]


def _rows(A: torch.Tensor, rows: slice) -> torch.Tensor:
    """The coefficients ``A (R or 1, 1, C, n)`` of a chunk of rows: coefficients shared by every row are not sliced."""
    return A if A.shape[0] == 1 else A[rows]


class _PBTerm(torch.autograd.Function):
    """Fused PB term: Horner products, one moving sum for all orders, and an analytic backward.

    Forward saves only ``u`` and ``coef``; the backward recomputes the products. With
    ``G = W^T γ`` (the anti-causal moving sum of the incoming gradient ``γ``), ``grad a_p = Σ G c^(p)``
    and, from ``c^(p) = c^(p-1) ⊙ S_{p-1} u`` (``S_j`` the shift by ``j``), the adjoints
    ``c̄^(p) = a_p G + c̄^(p+1) ⊙ S_p u`` (``c̄^(P+1) = 0``) and
    ``ū = c̄^(2) ⊙ S_1 u + Σ_{p≥2} S_{p-1}^T (c̄^(p) ⊙ c^(p-1))``. Both directions work on the time
    series in the memory layout they arrive in (:func:`_time_major`: the layer's ``(B, L, H)`` needs
    no transposing copy) and in chunks of whole series (:data:`PB_CHUNK_ELEMS`); every series is
    independent, so neither changes a single value.
    """

    @staticmethod
    def forward(ctx: object, u: torch.Tensor, coef: torch.Tensor, L_tilde: int) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(u, coef)  # type: ignore[attr-defined]
        ctx.L_tilde = L_tilde  # type: ignore[attr-defined]
        X, A, blh = _time_major(u, coef)
        z = torch.empty_like(X)
        for rows in _chunks(X):
            _window_sum_into(z[rows], _pb_products(X[rows], _rows(A, rows)), L_tilde)
        return z.transpose(1, 2) if blh else z.view(u.shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: object, gz: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:  # noqa: D102
        u, coef = ctx.saved_tensors  # type: ignore[attr-defined]
        need_u, need_coef = ctx.needs_input_grad[:2]  # type: ignore[attr-defined]
        X, A, blh = _time_major(u, coef)
        gz = gz.expand(u.shape)
        GZ = (gz.transpose(1, 2).contiguous() if blh else gz.contiguous().view(X.shape))
        gu = torch.empty_like(X) if need_u else None
        grad_rows = X.new_empty(X.shape[0], X.shape[2], coef.shape[1]) if need_coef else None
        for rows in _chunks(X):
            _pb_backward(X[rows], _rows(A, rows), GZ[rows], ctx.L_tilde,  # type: ignore[attr-defined]
                         None if gu is None else gu[rows], None if grad_rows is None else grad_rows[rows])
        grad = None
        if need_coef:  # (B, H, n) summed over the batch: rows are batches (C = H) or (b, h) pairs (C = 1)
            grad = grad_rows.sum(0) if blh else grad_rows.view(u.shape[0], *coef.shape).sum(0)  # type: ignore[union-attr]
        gu_out = None if gu is None else (gu.transpose(1, 2) if blh else gu.view(u.shape))
        return gu_out, grad, None


def pb_term(u: torch.Tensor, coef: torch.Tensor, L_tilde: int) -> torch.Tensor:
    r"""PB liquid term of a layer, fused: ``Σ_p a_p Σ_{ℓ<L̃} c^(p)_{t-ℓ}``, Liquid-S4 Eq. (16); chapter ``liquid/05_liquid_s4_layer``.

    Same value as :func:`pb_term_reference` (the oracle, tested in float64 with every gradient):
    the window sum is linear, so one moving sum of ``g_t = Σ_p a_p c^(p)_t`` replaces one per
    order, ``g`` is formed in Horner form (``order - 1`` multiply-adds, no stack of products), the
    backward is analytic and recomputes the products instead of saving them, and both work in the
    memory layout ``u`` and the gradient arrive in (the layer's ``(B, L, H)`` is read in place) one
    cache-sized chunk of series at a time (:class:`_PBTerm`). Inside
    ``torch.func`` transforms or forward-mode AD the reference runs (the hand-written backward
    has no ``jvp``).

    Args:
        u: ``(B, H, L)`` real; coef: ``(H, order - 1)`` real, ``coef[:, p - 2] = C B̄^p``; L_tilde:
            window ``1 <= L̃`` (``>= L`` is a full prefix sum).

    Returns:
        ``(B, H, L)``.
    """
    u = check_ndim(as_tensor(u, "u"), "u", 3, "(B, H, L)")
    coef = check_ndim(as_tensor(coef, "coef"), "coef", 2, "(H, order - 1)")
    if coef.shape[0] != u.shape[1] or coef.shape[1] < 1:
        raise ValueError(f"coef: expected shape (H, order - 1) with H = {u.shape[1]} (u's axis 1) and order >= 2, "
                         f"got {tuple(coef.shape)}")
    L_tilde = check_int(L_tilde, "L_tilde", minimum=1)
    coef = coef.to(u.dtype)
    if transforms_active():
        return pb_term_reference(u, coef, L_tilde)
    return _PBTerm.apply(u, coef, L_tilde)


# ---------------------------------------------------------------------------------------------
# The released code (variant="official"), reference section 1
# ---------------------------------------------------------------------------------------------


def official_L_tilde(L: int, p: int) -> int:
    """Released code's window ``L̃_p``: the smallest ``n`` in ``[2, L)`` with ``C(n, p) >= L``.

    Reference §1.3; chapter ``appendix/10_paper_vs_code_liquid_s4``. The code crashes when no such
    ``n`` exists (tiny ``L``); here that raises ``ValueError``.
    """
    L = check_int(L, "L", minimum=1)
    p = check_order(p, "p")
    for n in range(2, L):
        if math.comb(n, p) >= L:
            return n
    raise ValueError(
        f"L: no window n in [2, L) has C(n, {p}) >= L = {L}; the released code fails here "
        f"(use L >= {_min_L(p)} for p = {p})"
    )


def _min_L(p: int) -> int:
    L = p + 1
    while True:
        if any(math.comb(n, p) >= L for n in range(2, L)):
            return L
        L += 1


def official_subsets(L: int, p: int) -> torch.Tensor:
    """Index sets of the released code's "all combinations" features (``get_combs_cache`` in ``src/models/sequence/ss/s4.py`` of raminmh/liquid-s4@06031dc).

    The ``p``-subsets of the last ``L̃_p`` positions in lexicographic order, keeping the last
    ``L`` of them. Returns an int64 tensor ``(min(L, C(L̃_p, p)), p)``.
    """
    Lt = official_L_tilde(L, p)
    combos = list(itertools.combinations(range(L - Lt, L), p))[-L:]
    return torch.tensor(combos, dtype=torch.int64)


def _lcontract(x: torch.Tensor, lcontract: str | None) -> torch.Tensor:
    if lcontract is None:
        return x
    check_choice(lcontract, "lcontract", ("tanh", "lecun"))
    return torch.tanh(x) if lcontract == "tanh" else 1.7159 * torch.tanh(0.666 * x)


def official_correlations(
    u: object, order: int, *, allcombs: bool = True, lcontract: str | None = None, flip: bool = True
) -> torch.Tensor:
    r"""Released code's correlation sequences ``ū^(p)``, ``p = 2..order`` (``upgrade_degree`` in ``src/models/sequence/ss/s4.py`` of raminmh/liquid-s4@06031dc).

    ``allcombs=True``: feature ``t`` is the product over the ``t``-th of the last ``L``
    lexicographic ``p``-subsets of the last ``L̃_p`` positions (zero-padded to ``L``).
    ``allcombs=False``: compounding shift-and-multiply, ``ũ^(p)_t = ∏_j u_{t-j}^{C(p-1, j)}``
    (degree ``2^{p-1}``). Then ``lcontract`` (None, ``"tanh"``, ``"lecun"``) and, if ``flip``,
    time reversal ``ū[t] = ũ[L-1-t]``.

    ``u``: ``(..., L)``; returns ``(..., order - 1, L)``.
    """
    u = _input(u)
    order = check_order(order)
    if lcontract is not None:
        check_choice(lcontract, "lcontract", ("tanh", "lecun"))
    L = u.shape[-1]
    rows = []
    us = u
    for p in range(2, order + 1):
        if allcombs:
            idx = official_subsets(L, p).to(u.device)
            feats = u[..., idx].prod(-1)
            if feats.shape[-1] < L:
                feats = torch.nn.functional.pad(feats, (0, L - feats.shape[-1]))
            row = feats
        else:
            shifted = torch.nn.functional.pad(us[..., :-1], (1, 0))
            us = us * shifted
            row = us
        row = _lcontract(row, lcontract)
        rows.append(row.flip(-1) if flip else row)
    return torch.stack(rows, dim=-2)


def official_B_bar(Lambda: torch.Tensor, B: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    r"""Released code's discretized input vector, diagonal part only: ``B̄ = Δ B / (1 − ΔΛ/2)``.

    Reference §1.2 (the low-rank ``PP*`` term is ignored). ``Lambda``, ``B``: ``(H, N/2)``
    complex; ``dt``: ``(H,)``. Returns the conjugate-doubled ``(H, N)``.
    """
    Lambda, B, dt = _stored_halves(Lambda, B, dt)
    dt = dt.to(Lambda.real.dtype)
    B_bar = dt[..., None] * B / (1 - dt[..., None] * Lambda / 2)
    return kernels.conj_double(B_bar)


def official_pb_coefficients(B_bar_full: torch.Tensor, C0_full: torch.Tensor, order: int) -> torch.Tensor:
    r"""Released code's PB coefficients ``κ_p``, ``p = 2..order``, by its compounding loop (``S4.forward``, ``src/models/sequence/ss/s4.py`` of raminmh/liquid-s4@06031dc).

    ``coeff ← coeff · Σ_n coeff`` starting from ``B̄``; ``κ_p = Re Σ_n C⁰_n coeff_n``. Closed form
    ``κ_p = Re(Σ_n C⁰_n B̄_n) · S^{2^{p-1}-1}``, ``S = Σ_n B̄_n`` (tested).

    Args:
        B_bar_full: ``(H, N)`` conjugate-doubled (:func:`official_B_bar`); C0_full: ``(..., H, N)``
            conjugate-doubled frozen initial C; order: highest order >= 2.

    Returns:
        real ``(..., H, order - 1)``.
    """
    order = check_order(order)
    B_bar_full, C0_full = as_tensors(("B_bar_full", B_bar_full), ("C0_full", C0_full))
    coeff = B_bar_full
    out = []
    for _ in range(2, order + 1):
        coeff = coeff * coeff.sum(-1, keepdim=True)
        out.append((C0_full * coeff).sum(-1).real)
    return torch.stack(out, dim=-1)


def official_pb_term(corr: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    r"""Released code's PB output ``Σ_p κ_p ū^(p)_t``, added pointwise (``S4.forward``, PB mode, raminmh/liquid-s4@06031dc).

    ``corr``: ``(B, H, order - 1, L)`` from :func:`official_correlations`; ``kappa``: ``(H, order - 1)``.
    Returns ``(B, H, L)``.
    """
    corr, kappa = as_tensors(("corr", corr), ("kappa", kappa))
    return (kappa[..., None] * corr).sum(-2)


def official_kb_term(corr: torch.Tensor, K: torch.Tensor, S: torch.Tensor, *, fft_bug: bool = False) -> torch.Tensor:
    r"""Released code's KB output ``Σ_p (S^{p-1} K) * ū^(p)`` (``S4.forward``, KB mode, raminmh/liquid-s4@06031dc).

    ``corr``: ``(B, H, order - 1, L)`` (flipped products); ``K``: the S4 kernel ``(H, L)``; ``S``:
    ``(H,)`` real, ``Σ_n B̄_n`` of the frozen initial values. With ``fft_bug=False`` a proper causal
    convolution; with ``fft_bug=True`` the released code's mismatched DFT sizes: a complex FFT of
    the kernel with ``L + 1`` points multiplied bin-by-bin with the ``L + 1`` bins of a ``2L``-point
    real FFT of the input, then a ``2L``-point inverse real FFT (not a convolution).
    Returns ``(B, H, L)``.
    """
    corr, K, S = as_tensors(("corr", corr), ("K", K), ("S", S))
    L = corr.shape[-1]
    n_orders = corr.shape[-2]
    powers = torch.stack([S ** (p - 1) for p in range(2, n_orders + 2)], dim=-1)  # (H, order-1)
    Kp = powers[..., None] * K[..., None, :]  # (H, order-1, L)
    if not fft_bug:
        return ssm.causal_conv_fft(corr, Kp.to(corr.dtype)).sum(-2)
    Kf = torch.fft.fft(Kp.to(torch.complex128 if corr.dtype == torch.float64 else torch.complex64), n=L + 1)
    Uf = torch.fft.rfft(corr, n=2 * L)
    return torch.fft.irfft(Kf * Uf, n=2 * L)[..., :L].sum(-2)

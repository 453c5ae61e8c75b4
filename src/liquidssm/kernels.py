"""The S4 DPLR convolution kernel (Liquid-S4 Algorithm 1 lines 1-5) and the S4D Vandermonde kernel.

Chapter ``s4/03_s4_kernel``.

**Which system the kernel belongs to (no hidden factor of 2).** The parameters store
``N2`` modes: ``Lambda, P, B, C`` of shape ``(.., N2)``. They describe the complex system of
size ``N = 2 N2`` whose second half is the conjugate of the first,

    A_full = diag(Lambda, conj Lambda) - sum_r P_full P_full^*,   P_full = [P; conj P],
    B_full = [B; conj B],   C_full = [C, conj C]   (C is a *row* vector: no conjugation),

which is similar, through the unitary ``T = [[I, I], [-iI, iI]] / sqrt(2)``, to the **real**
system ``(T A_full T^*, T B_full, C_full T^*)`` of state size ``N`` returned by
:func:`dplr_to_dense`. :func:`s4_dplr_kernel` returns exactly (no extra factor) the bilinear
kernel of that real system, ``K_l = C_full A_bar_full^l B_bar_full`` for ``l < L``. For a
HiPPO-LegS initialization (:func:`liquidssm.hippo.nplr_legs`, even N) this real system is
HiPPO-LegS itself written in an orthonormal basis. When ``P = 0`` the kernel equals
``2 Re(C A_bar^l B_bar)`` of the diagonal ``N2`` system, which is what :func:`s4d_kernel` computes.
Note that with ``P != 0`` it is **not** ``2 Re`` of the ``N2``-dimensional complex system
``Lambda - P P^*``: the low-rank term couples the two conjugate halves.

Conventions: roots of unity ``omega_k = exp(-2 pi i k / L)``, ``k = 0..L//2``, so the generating
function is the DFT of the kernel and line 5 is ``irfft(., n=L)``.

**Two choices, two arguments.** ``method`` is the *algorithm* (:data:`KERNEL_METHODS`):
``"dplr"`` is Algorithm 1 (Cauchy sums and Woodbury at the roots of unity, :func:`s4_dplr_kernel`),
``"dense"`` the oracle by dense matrix powers of the conjugate-doubled system
(:func:`s4_dense_kernel`). ``backend`` is only *where the Cauchy sums run*
(:data:`liquidssm.cauchy.BACKENDS`: ``"auto" | "torch" | "keops"``) and matters only for
``method="dplr"``. :func:`s4_kernel` takes both; the layers pass them through.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from liquidssm import ssm
from liquidssm._checks import (
    as_tensor,
    as_tensors,
    check_all_finite,
    check_choice,
    check_finite,
    check_int,
    check_memory,
    check_ndim,
    check_positive,
    check_same_dtype,
    check_square,
    tensor_bytes,
)
from liquidssm.cauchy import BACKENDS, cauchy

__all__ = [
    "KERNEL_METHODS",
    "bilinear_factor",
    "bilinear_input",
    "c_from_tilde",
    "c_tilde",
    "check_method",
    "conj_double",
    "discretize_dplr_bilinear",
    "double_c_tilde",
    "dplr_dense_A",
    "diagonal_node_mean",
    "dplr_to_dense",
    "generating_function_blocks",
    "irfft_kernel",
    "matrix_power_squaring",
    "node_distance",
    "node_mean",
    "nyquist_value",
    "roots_of_unity",
    "s4_dense_kernel",
    "s4_dplr_kernel",
    "s4_dplr_kernel_and_taps",
    "s4_kernel",
    "s4d_kernel",
    "woodbury",
    "woodbury_weights",
]

_C2R = {torch.complex64: torch.float32, torch.complex128: torch.float64}
_R2C = {torch.float32: torch.complex64, torch.float64: torch.complex128}

#: kernel algorithms: Algorithm 1 (Cauchy + Woodbury) or the dense-powers oracle
KERNEL_METHODS = ("dplr", "dense")

#: complex64 inputs whose modes ``dt Lambda`` come closer than this to a node of Algorithm 1
#: (:func:`node_distance`) are computed in complex128: the Cauchy sums lose about
#: ``eps / distance`` of relative accuracy, ~6e-4 in complex64 at this distance.
PROMOTE_BELOW = 1e-4
#: below this distance even complex128 loses more than ~1e-4 (and at 0 it is 0/0): refused.
REFUSE_BELOW = 1e-12

_LAYOUTS = {"Lambda": "(H, N2) or (N2,)", "P": "(N2,), (H, N2) or (r, H, N2)", "B": "(H, N2) or (N2,)",
            "C": "(H, N2), (channels, H, N2) or (N2,)"}


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------
def _unit_dt(Lambda: object) -> torch.Tensor:
    """A placeholder step ``1`` of Lambda's real precision (for helpers that need no dt)."""
    d = torch.as_tensor(Lambda).dtype
    return torch.ones((), dtype=_C2R.get(d, d))


def _validate(Lambda: object, P: object | None, B: object | None, C: object | None,
              dt: object, need: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Check kinds, ranks, one precision, finite values, ``dt > 0`` and a common ``N2``.

    ``need`` names the arguments among ``P``, ``B``, ``C`` that the caller cannot do without.
    """
    ranks = {"Lambda": (1, 2), "P": (1, 2, 3), "B": (1, 2), "C": (1, 2, 3)}
    given = {"Lambda": Lambda, "P": P, "B": B, "C": C}
    tensors: dict[str, torch.Tensor] = {}
    for name, value in given.items():
        if value is None and (name == "Lambda" or name in need):
            hint = ("; a diagonal system has P = 0 (pass torch.zeros_like(Lambda), or use s4d_kernel)"
                    if name == "P" else "")
            raise TypeError(f"{name}: expected a complex tensor {_LAYOUTS[name]}, got None{hint}")
        if value is not None:
            tensors[name] = check_ndim(as_tensor(value, name, allow_complex=True), name, ranks[name], _LAYOUTS[name])
    dt = as_tensor(dt, "dt")
    if dt.ndim > 1:
        raise ValueError(f"dt: expected a scalar or a 1-D tensor of shape (H,), got shape {tuple(dt.shape)}")
    check_positive(dt.detach(), "dt")
    tensors["dt"] = dt
    rdtype = check_same_dtype(*tensors.items())
    if rdtype not in _R2C:
        raise TypeError(f"Lambda: expected float32/complex64 or float64/complex128 precision, got {rdtype}")
    check_all_finite(*tensors.items())
    N2 = tensors["Lambda"].shape[-1]
    for name in ("P", "B", "C"):
        if name in tensors and tensors[name].shape[-1] != N2:
            raise ValueError(f"{name}: expected last axis N2 = {N2} (the number of stored modes of "
                             f"Lambda), got shape {tuple(tensors[name].shape)}")
    return tensors


def _channel_count(tensors: dict[str, torch.Tensor]) -> int:
    """The common channel count ``H`` of the validated inputs (broadcast; 1 if none has one)."""
    axes = {"Lambda": tensors["Lambda"].shape[:-1], "dt": tensors["dt"].shape}
    for name in ("P", "B", "C"):  # B has no leading axis; P and C may have one (rank, channels)
        if name in tensors:
            t = tensors[name]
            axes[name] = t.shape[:-1] if name == "B" else (t.shape[-2:-1] if t.ndim >= 2 else ())
    try:
        (H,) = torch.broadcast_shapes(*axes.values(), (1,))
    except RuntimeError as exc:
        listing = ", ".join(f"{k}: H={tuple(v)}" for k, v in axes.items())
        raise ValueError(f"channel axis H does not agree between inputs ({listing})") from exc
    return H


def _stack_axis(t: torch.Tensor, H: int, N2: int) -> torch.Tensor:
    """``(N2,)``, ``(H, N2)`` or ``(k, H, N2)`` -> ``(k, H, N2)`` (``k = 1`` when absent)."""
    return t.reshape((1,) * (3 - t.ndim) + tuple(t.shape)).expand(-1, H, N2)


def _prepare(Lambda: object, P: object | None, B: object | None, C: object | None,
             dt: object, need: tuple[str, ...] = ("P", "B", "C")
             ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None,
                        torch.Tensor | None, torch.Tensor, bool]:
    """Validate and broadcast to Lambda (H, N2), P (r, H, N2), B (H, N2), C (ch, H, N2), dt (H,).

    The last value says whether ``C`` came without a channel axis (the caller then drops it).
    ``need``: the arguments that must not be ``None`` (:func:`_validate`).
    """
    tensors = _validate(Lambda, P, B, C, dt, need)
    H = _channel_count(tensors)
    cdtype = _R2C[check_same_dtype(*tensors.items())]
    N2 = tensors["Lambda"].shape[-1]
    Lambda = tensors["Lambda"].to(cdtype).expand(H, N2)
    P = _stack_axis(tensors["P"].to(cdtype), H, N2) if "P" in tensors else None
    B = tensors["B"].to(cdtype).expand(H, N2) if "B" in tensors else None
    squeeze = "C" not in tensors or tensors["C"].ndim < 3
    C = _stack_axis(tensors["C"].to(cdtype), H, N2) if "C" in tensors else None
    dt = tensors["dt"].to(_C2R[cdtype]).reshape(-1).expand(H)
    return Lambda, P, B, C, dt, squeeze


def _check_L(L: object) -> int:
    return check_int(L, "L", minimum=1)


def check_dplr(Lambda: object, P: object | None, B: object | None, C: object | None, dt: object,
               need: tuple[str, ...] = ("P", "B", "C")
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """Validate DPLR parameters as every kernel here does (shapes, one precision, finite, ``dt > 0``).

    For callers that keep their own shapes (:mod:`liquidssm.liquid`); chapter s4/03_s4_kernel.
    Returns ``(Lambda, P, B, C, dt)`` as tensors in their given shapes and dtypes (array-likes
    converted; ``None`` where an optional one was not given).
    """
    tensors = _validate(Lambda, P, B, C, dt, need)
    _channel_count(tensors)
    return tensors["Lambda"], tensors.get("P"), tensors.get("B"), tensors.get("C"), tensors["dt"]


def _guard_dense(H: int, N: int, dtype: torch.dtype, copies: int, what: str, device: torch.device) -> None:
    """Memory guard for ``copies`` dense ``(H, N, N)`` complex matrices (:func:`liquidssm._checks.check_memory`)."""
    check_memory(copies * tensor_bytes((H, N, N), dtype), f"{what}: {copies} dense (H, N, N) matrices",
                 f"H = {H}, N = {N}", device)


def _solve(M: torch.Tensor, rhs: torch.Tensor, what: str) -> torch.Tensor:
    """``M^{-1} rhs``; a singular ``M`` raises a ``ValueError`` that names it."""
    try:
        return torch.linalg.solve(M, rhs)
    except torch.linalg.LinAlgError as exc:
        raise ValueError(f"{what} is singular for these parameters; the kernel is not defined there") from exc


def check_method(method: object, name: str = "method") -> str:
    """Validate a kernel algorithm: ``"dplr"`` (Algorithm 1) or ``"dense"`` (the oracle); chapter s4/03_s4_kernel.

    ``name`` is the argument name used in the error message (e.g. ``"kernel_method"``).
    """
    return check_choice(method, name, KERNEL_METHODS)


# ----------------------------------------------------------------------------------------------
# dense forms (oracles and line 1)
# ----------------------------------------------------------------------------------------------
def conj_double(x: torch.Tensor) -> torch.Tensor:
    """Stored modes to the full state, ``x_full = [x, conj x]`` (module docstring); chapter s4/03_s4_kernel.

    ``x`` (..., N2) complex -> (..., N) with ``N = 2 N2``. Used for ``Lambda``, ``P``, ``B`` (columns)
    and the row ``C`` alike: a row vector is doubled without conjugating it a second time.
    """
    x = as_tensor(x, "x", allow_complex=True)
    if x.ndim < 1:
        raise ValueError(f"x: expected at least one axis (..., N2), got shape {tuple(x.shape)}")
    return torch.cat([x, x.conj()], dim=-1)


def dplr_dense_A(Lambda: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """Dense complex ``A_full = diag(Lambda, conj Lambda) - sum_r P_full P_full^*``, Eq. (15); chapter s4/03_s4_kernel.

    ``Lambda`` (H, N2) or (N2,), ``P`` (N2,), (H, N2) or (r, H, N2). Returns ``(H, N, N)`` complex with
    ``N = 2 N2``, ``P_full = [P; conj P]``. Similar to a real matrix (see the module docstring).
    """
    Lambda, P, _, _, _, _ = _prepare(Lambda, P, None, None, _unit_dt(Lambda), need=("P",))
    _guard_dense(Lambda.shape[0], 2 * Lambda.shape[-1], Lambda.dtype, 2, "dplr_dense_A", Lambda.device)
    P_full = conj_double(P)  # (r, H, N)
    return torch.diag_embed(conj_double(Lambda)) - torch.einsum("rhn,rhm->hnm", P_full, P_full.conj())


def discretize_dplr_bilinear(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor,
                             dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear discretization of the DPLR system as dense matrices, Liquid-S4 Eq. (3); chapter s4/03_s4_kernel.

    ``A_bar = (I - dt/2 A_full)^{-1}(I + dt/2 A_full)``, ``B_bar = (I - dt/2 A_full)^{-1} dt B_full``
    with ``A_full`` from :func:`dplr_dense_A` and ``B_full = [B; conj B]``. Inputs: ``Lambda`` (H, N2),
    ``P`` (H, N2) or (r, H, N2), ``B`` (H, N2), ``dt`` (H,). Returns ``A_bar`` (H, N, N) and
    ``B_bar`` (H, N), complex, ``N = 2 N2`` (the conjugate half is included explicitly because
    the low-rank term couples the two halves; the first ``N2`` entries of any state are the
    stored modes and the last ``N2`` their conjugates).
    """
    Lambda, P, B, _, dt, _ = _prepare(Lambda, P, B, None, dt, need=("P", "B"))
    _guard_dense(Lambda.shape[0], 2 * Lambda.shape[-1], Lambda.dtype, 5, "discretize_dplr_bilinear",
                 Lambda.device)
    A = dplr_dense_A(Lambda, P)
    N = A.shape[-1]
    eye = torch.eye(N, dtype=A.dtype, device=A.device)
    half = (dt / 2).to(A.dtype)[:, None, None]
    left = eye - half * A
    A_bar = _solve(left, eye + half * A, "I - dt/2 A (an eigenvalue of A equals 2/dt)")
    B_bar = _solve(left, (dt.to(A.dtype)[:, None] * conj_double(B))[..., None], "I - dt/2 A")[..., 0]
    return A_bar, B_bar


def dplr_to_dense(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor,
                  C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The explicit real state-space system of size N = 2 N2 behind the DPLR parameters; chapter s4/03_s4_kernel.

    Returns real ``A`` (H, N, N), ``B`` (H, N), ``C`` (H, N) or (channels, H, N) with
    ``A = T A_full T^*``, ``B = T B_full``, ``C = C_full T^*``, ``T = [[I, I], [-iI, iI]]/sqrt 2``.
    Then ``liquidssm.ssm.kernel_by_powers(*liquidssm.ssm.bilinear(A, B, dt), C, L)`` equals
    :func:`s4_dplr_kernel` ``(Lambda, P, B, C, dt, L)`` with no extra factor. Inputs as in
    :func:`s4_dplr_kernel` (``P`` may be ``(r, H, N2)``).
    """
    Lambda, P, B, C, _, squeeze = _prepare(Lambda, P, B, C, _unit_dt(Lambda))
    _guard_dense(Lambda.shape[0], 2 * Lambda.shape[-1], Lambda.dtype, 5, "dplr_to_dense", Lambda.device)
    A_full = dplr_dense_A(Lambda, P)
    N2 = Lambda.shape[-1]
    eye = torch.eye(N2, dtype=Lambda.dtype, device=Lambda.device)
    T = torch.cat([torch.cat([eye, eye], 1), torch.cat([-1j * eye, 1j * eye], 1)], 0) / math.sqrt(2)
    A = (T @ A_full @ T.conj().T).real
    Bd = (conj_double(B) @ T.T).real
    Cd = (conj_double(C) @ T.conj().T).real
    if squeeze:
        Cd = Cd[0]
    return A, Bd, Cd


def matrix_power_squaring(A: torch.Tensor, L: int) -> torch.Tensor:
    """``A^L`` by repeated squaring (about 2 log2 L matrix products); chapter s4/03_s4_kernel.

    ``A`` (..., N, N), ``L >= 0`` int. Returns (..., N, N). Differentiable.
    """
    A = check_square(as_tensor(A, "A", allow_complex=True, allow_half=False), "A")
    L = check_int(L, "L", minimum=0)
    result = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand_as(A)
    base = A
    while L > 0:
        if L & 1:
            result = result @ base
        L >>= 1
        if L:
            base = base @ base
    return result


# ----------------------------------------------------------------------------------------------
# Algorithm 1, lines 1-5
# ----------------------------------------------------------------------------------------------
def c_tilde(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
            dt: torch.Tensor, L: int) -> torch.Tensor:
    """Truncation ``C_tilde = C (I - A_bar^L)``, Liquid-S4 Algorithm 1 line 1; chapter s4/03_s4_kernel.

    Uses the exact dense bilinear ``A_bar`` of the conjugate-doubled system
    (:func:`discretize_dplr_bilinear`) raised to the power ``L`` by repeated squaring; ``C`` is a
    row vector (no conjugation), so this is the paper's ``(I - A_bar^L)^* C`` written for rows.
    Inputs as :func:`s4_dplr_kernel`; returns ``C_tilde`` of the same shape as ``C``
    ((H, N2) or (channels, H, N2)), the first N2 entries of ``C_full (I - A_bar^L)`` (the other
    N2 are their conjugates).
    """
    L = _check_L(L)
    Lambda, P, B, C, dt, squeeze = _prepare(Lambda, P, B, C, dt)
    out_dtype = Lambda.dtype
    Lambda, P, B, C, dt = _working_precision(L, Lambda, P, B, C, dt, refuse=False)  # 1 - A_bar^L near 0
    A_bar, _ = discretize_dplr_bilinear(Lambda, P, B, dt)
    A_bar_L = matrix_power_squaring(A_bar, L)  # (H, N, N)
    C_full = conj_double(C)  # (ch, H, N)
    C_tilde_full = C_full - torch.einsum("chn,hnm->chm", C_full, A_bar_L)
    C_tilde = C_tilde_full[..., : Lambda.shape[-1]].to(out_dtype)
    return C_tilde[0] if squeeze else C_tilde


def _double_system(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   dt: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(Lambda, P, B, C, dt)`` in complex128/float64 (the dense one-off conversions of C and C_tilde)."""
    return tuple(t.to(torch.complex128) if t.is_complex() else t.to(torch.float64) for t in (Lambda, P, B, C, dt))


def c_from_tilde(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C_tilde: torch.Tensor,
                 dt: torch.Tensor, L: int) -> torch.Tensor:
    """Inverse of line 1: ``C = C_tilde (I - A_bar^L)^{-1}``; chapter s4/03_s4_kernel (*Learning C̃ instead of C*).

    The oracle way back from a learned ``C_tilde`` (defined for length ``L``) to the paper's ``C``:
    one dense ``(N, N)`` solve per channel with ``A_bar^L`` by repeated squaring, always in
    complex128 (``I - A_bar^L`` is ill-conditioned when an eigenvalue of ``A_bar`` is close to an
    ``L``-th root of unity) and returned in the precision of the inputs. Differentiable. Inputs
    as :func:`c_tilde`; returns ``C`` of the shape of ``C_tilde``. A singular ``I - A_bar^L`` (an
    eigenvalue of ``A_bar`` *is* an ``L``-th root of unity) raises ``ValueError``.
    """
    L = _check_L(L)
    Lambda, P, B, C_tilde, dt, squeeze = _prepare(Lambda, P, B, C_tilde, dt)
    out_dtype, N2 = Lambda.dtype, Lambda.shape[-1]
    Lambda, P, B, C_tilde, dt = _double_system(Lambda, P, B, C_tilde, dt)
    A_bar, _ = discretize_dplr_bilinear(Lambda, P, B, dt)
    M = torch.eye(A_bar.shape[-1], dtype=A_bar.dtype, device=A_bar.device) - matrix_power_squaring(A_bar, L)
    rhs = conj_double(C_tilde).permute(1, 2, 0)  # (H, N, ch): the rows, transposed
    C_full = _solve(M.transpose(-1, -2), rhs, "I - A_bar^L (an eigenvalue of A_bar is an L-th root of unity)")
    C = C_full.permute(2, 0, 1)[..., :N2].to(out_dtype)
    return C[0] if squeeze else C


def double_c_tilde(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C_tilde: torch.Tensor,
                   dt: torch.Tensor, L: int) -> torch.Tensor:
    """``C_tilde`` for length ``2L`` from ``C_tilde`` for length ``L``: ``C_tilde (I + A_bar^L)``; chapter s4/03_s4_kernel.

    Because ``I - A_bar^{2L} = (I - A_bar^L)(I + A_bar^L)`` and the two factors commute,
    ``C (I - A_bar^{2L}) = C_tilde_L (I + A_bar^L)``: the kernel of the same system at twice the
    length, without going back to ``C``. Computed in complex128 and returned in the inputs'
    precision. Inputs and output as :func:`c_tilde`.
    """
    L = _check_L(L)
    Lambda, P, B, C_tilde, dt, squeeze = _prepare(Lambda, P, B, C_tilde, dt)
    out_dtype, N2 = Lambda.dtype, Lambda.shape[-1]
    Lambda, P, B, C_tilde, dt = _double_system(Lambda, P, B, C_tilde, dt)
    A_bar, _ = discretize_dplr_bilinear(Lambda, P, B, dt)
    C_full = conj_double(C_tilde)
    C_next = C_full + torch.einsum("chn,hnm->chm", C_full, matrix_power_squaring(A_bar, L))
    C_next = C_next[..., :N2].to(out_dtype)
    return C_next[0] if squeeze else C_next


def bilinear_input(Lambda: torch.Tensor, P: torch.Tensor, v: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """The continuous input vector whose bilinear ``B_bar`` is ``v``: ``(I - dt/2 A) v / dt``; chapter s4/03_s4_kernel.

    Inverts ``B_bar = dt (I - dt/2 A)^{-1} B`` (Eq. 3) for the DPLR ``A = Lambda - P P^*`` of the
    conjugate-doubled state, so any kernel ``C A_bar^l v`` is an S4 kernel (the KB kernels and
    the PB coefficients use it). ``Lambda`` (H, N2), ``P`` (H, N2) or (r, H, N2), ``v`` (..., H, N2)
    stored halves of a conjugate-symmetric vector, ``dt`` (H,). Returns (..., H, N2).
    """
    Lambda, P, v, dt = as_tensors(("Lambda", Lambda), ("P", P), ("v", v), ("dt", dt))
    return _bilinear_input(Lambda, P if P.ndim == 3 else P[None], v, dt)


def _bilinear_input(Lambda: torch.Tensor, P: torch.Tensor, v: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """:func:`bilinear_input` on validated tensors, ``P`` (r, H, N2)."""
    Pv = 2 * (P.conj() * v[..., None, :, :]).sum(-1, keepdim=True).real  # full-state inner products
    Av = Lambda * v - (P * Pv).sum(-3)
    step = dt.to(Lambda.real.dtype)[:, None]
    return (v - 0.5 * step * Av) / step


def node_mean(K_hat: torch.Tensor, L: int) -> torch.Tensor:
    """Tap 0 of a real kernel from its ``rfft`` half at the roots of unity: ``(1/L) sum_k K_hat(omega_k)``.

    Chapter s4/03_s4_kernel. The same value as ``irfft(K_hat, n=L)[..., 0]`` without the
    transform: the conjugate nodes ``omega_{L-k}`` count twice, DC and (even ``L``) Nyquist once.
    ``K_hat`` (..., L//2 + 1) complex -> real (...).
    """
    K_hat = as_tensor(K_hat, "K_hat", allow_complex=True)
    L = _check_L(L)
    return (K_hat.real * _node_weights(K_hat.shape[-1], L, K_hat.real.dtype, K_hat.device)).sum(-1)


def _node_weights(n: int, L: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Weights of the first ``n`` of the ``L//2 + 1`` nodes in the mean over all ``L`` roots of unity.

    ``1/L`` at DC and (even ``L``) at the Nyquist node ``k = L/2``, ``2/L`` elsewhere (each stands
    for itself and its conjugate node).
    """
    weights = torch.full((n,), 2.0 / L, dtype=dtype, device=device)
    weights[0] = 1.0 / L
    if L % 2 == 0 and L > 1 and n > L // 2:
        weights[L // 2] = 1.0 / L
    return weights


def node_distance(Lambda: torch.Tensor, dt: torch.Tensor, L: int) -> torch.Tensor:
    """Distance of every mode ``dt Lambda_n`` to the nearest node of Algorithm 1; chapter s4/03_s4_kernel.

    The Cauchy sums of :func:`generating_function_blocks` divide by ``z_k - dt Lambda_n`` and
    ``z_k - dt conj(Lambda_n)`` with the nodes ``z_k = 2(1 - omega_k)/(1 + omega_k) = 2i tan(pi k/L)``,
    ``k = 0..L//2`` (the Nyquist node of even ``L`` excluded). A mode close to a node is a
    discrete eigenvalue ``A_bar_n`` close to a root of unity ``omega_k^{-1}``: there the truncated
    generating function is (nearly) 0/0 and loses about ``eps / distance`` of relative accuracy.
    ``Lambda`` (H, N2) complex, ``dt`` (H,) -> real (H, N2) in float64, no gradient.
    """
    L = _check_L(L)
    Lambda, dt = as_tensors(("Lambda", Lambda), ("dt", dt))
    w = (Lambda.detach().to(torch.complex128) * dt.detach().to(torch.float64)[:, None])
    x, y = w.real, w.imag.abs()  # conj(w) is the mode facing the nodes with Im z >= 0
    k_max = L // 2 - 1 if L % 2 == 0 and L > 1 else L // 2
    k_star = torch.floor(torch.atan(y / 2) * L / math.pi)
    dist = torch.full_like(x, math.inf)
    for k in (k_star, k_star + 1):
        k = k.clamp(0, k_max)
        dist = torch.minimum(dist, torch.hypot(x, y - 2 * torch.tan(math.pi * k / L)))
    return dist


def _working_precision(L: int, Lambda: torch.Tensor, *rest: torch.Tensor,
                       refuse: bool = True) -> tuple[torch.Tensor, ...]:
    """``(Lambda, *rest)``, cast to complex128/float64 when a complex64 mode is close to a node.

    :func:`node_distance` below :data:`PROMOTE_BELOW` in complex64 computes in double precision;
    below :data:`REFUSE_BELOW` (exactly 0 for a zero mode ``Lambda = 0``) ``refuse`` raises a
    ``ValueError`` naming the mode, because no precision recovers a 0/0.
    """
    dt = rest[-1]
    dist = node_distance(Lambda, dt, L)
    d_min = float(dist.min()) if dist.numel() else math.inf
    if refuse and d_min < REFUSE_BELOW:
        h, n = divmod(int(dist.argmin()), dist.shape[-1])
        w = complex(Lambda[h, n].detach() * dt[h].detach())
        raise ValueError(
            f"Lambda, dt: mode {n} of channel {h} has dt*Lambda = {w:.3g}, {d_min:.1e} from a node of "
            f"Algorithm 1 at L = {L} (its discrete eigenvalue is a root of unity, e.g. a zero mode "
            "Lambda = 0), where the Cauchy sums are 0/0; use method='dense' (the oracle), or keep "
            "Re Lambda < 0 (the S4 layers do)")
    if Lambda.dtype == torch.complex64 and d_min < PROMOTE_BELOW:
        return tuple(t.to(torch.complex128 if t.is_complex() else torch.float64) for t in (Lambda, *rest))
    return (Lambda, *rest)


def _guard_dplr(Lambda: torch.Tensor, P: torch.Tensor, C: torch.Tensor, L: int, dense: bool, extra_rows: int = 0) -> None:
    """Memory guard of :func:`s4_dplr_kernel`: the Cauchy blocks, the spectrum, the kernel (and C_tilde).

    ``extra_rows``: further output rows beside ``C``'s channels (the taps of :func:`s4_dplr_kernel_and_taps`).
    """
    (ch, H, N2), r = C.shape, P.shape[0]
    ch += extra_rows
    nbytes = 3 * tensor_bytes((ch + r, 1 + r, H, L // 2 + 1), Lambda.dtype) + 2 * tensor_bytes((ch, H, L), Lambda.dtype)
    if dense:
        nbytes += 8 * tensor_bytes((H, 2 * N2, 2 * N2), Lambda.dtype)
    check_memory(nbytes, "s4_dplr_kernel: the Cauchy blocks and the kernel", f"L = {L}, H = {H}, N2 = {N2}, "
                 f"channels = {ch}, rank = {r}", Lambda.device)


def _finite_kernel(K: torch.Tensor, what: str) -> torch.Tensor:
    """Raise a ``ValueError`` when a kernel computed from finite inputs is not finite."""
    if not bool(torch.isfinite(K.detach()).all()):
        raise ValueError(f"{what}: the kernel is not finite although its inputs are: the DPLR matrix has an "
                         "eigenvalue whose bilinear image is a root of unity (a marginally stable system), "
                         "so the Woodbury denominator vanishes at a node; use method='dense' (the oracle)")
    return K


def roots_of_unity(L: int, dtype: torch.dtype = torch.complex64,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Nodes ``omega_k = exp(-2 pi i k / L)``, ``k = 0..L//2``, Algorithm 1 line 4; chapter s4/03_s4_kernel.

    Only the ``rfft`` half is needed because the kernel is real. Returns (L//2 + 1,) complex,
    computed in float64 and cast to ``dtype``.
    """
    L = _check_L(L)
    if dtype not in _C2R:
        raise TypeError(f"dtype: expected torch.complex64 or torch.complex128, got {dtype}")
    check_memory(tensor_bytes((L // 2 + 1,), torch.complex128) * 3, "roots_of_unity: the L//2 + 1 nodes",
                 f"L = {L}", device)
    k = torch.arange(L // 2 + 1, dtype=torch.float64, device=device)
    return torch.polar(torch.ones_like(k), -2 * math.pi * k / L).to(dtype)


def bilinear_factor(omega: torch.Tensor) -> torch.Tensor:
    """The factor ``2 / (1 + omega)`` of the bilinear generating function, Algorithm 1 line 3; chapter s4/03_s4_kernel.

    ``omega`` (Lz,) complex -> (Lz,). Not used at the Nyquist node ``omega = -1`` (even ``L``),
    where :func:`s4_dplr_kernel` uses the closed form of :func:`nyquist_value` instead.
    """
    omega = as_tensor(omega, "omega", allow_complex=True)
    return 2 / (1 + omega)


def nyquist_value(B: torch.Tensor, C_tilde: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """Generating function at ``omega = -1``: ``dt/2 * C_tilde_full B_full``; chapter s4/03_s4_kernel.

    For the bilinear transform ``(I + A_bar)^{-1} B_bar = dt/2 B`` exactly, so
    ``K_hat(-1) = C_tilde (I + A_bar)^{-1} B_bar = dt Re(sum_n C_tilde_n B_n)`` without any
    resolvent (the node where ``g(omega)`` is infinite). ``B`` (H, N2), ``C_tilde`` (channels,
    H, N2), ``dt`` (H,) -> (channels, H) complex (zero imaginary part).
    """
    B, C_tilde, dt = as_tensors(("B", B), ("C_tilde", C_tilde), ("dt", dt))
    val = dt.to(B.dtype) * (C_tilde * B).sum(-1).real.to(B.dtype)
    return val


def generating_function_blocks(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor,
                               C_tilde: torch.Tensor, dt: torch.Tensor, omega: torch.Tensor, *,
                               backend: str = "auto") -> torch.Tensor:
    """The 2x2 block ``[C_tilde P]^* (g(omega) - Lambda)^{-1} [B P]``, Algorithm 1 line 2; chapter s4/03_s4_kernel.

    ``g(omega) = (2/dt)(1 - omega)/(1 + omega)``. Each entry is a conjugate-pair Cauchy sum
    (:func:`liquidssm.cauchy.cauchy`) over the ``N = 2 N2`` modes, computed as
    ``dt * cauchy(v, z, dt Lambda)`` with the dt-free nodes ``z = 2(1 - omega)/(1 + omega)``.
    Rows are ``[C_tilde (channels); P^* (r)]``, columns ``[B; P (r)]`` (``C`` is a row vector, ``P``
    a column, hence ``P^* = conj P``). Returns ``k`` of shape (channels + r, 1 + r, H, Lz):
    ``k[:ch, 0]`` = k00, ``k[:ch, 1:]`` = k01, ``k[ch:, 0]`` = k10, ``k[ch:, 1:]`` = k11.
    """
    check_choice(backend, "backend", BACKENDS)
    Lambda, P, B, C_tilde, dt, _ = _prepare(Lambda, P, B, C_tilde, dt)
    omega = check_finite(as_tensor(omega, "omega", allow_complex=True), "omega")
    check_ndim(omega, "omega", 1, "(Lz,)")
    rows = torch.cat([C_tilde, P.conj()], dim=0)  # (ch + r, H, N2)
    cols = torch.cat([B[None], P], dim=0)  # (1 + r, H, N2)
    v = rows[:, None] * cols[None, :]  # (ch + r, 1 + r, H, N2)
    z = (2 * (1 - omega) / (1 + omega)).to(Lambda.dtype)
    w = Lambda * dt[:, None].to(Lambda.dtype)
    r = cauchy(v, z, w, backend=backend)  # (ch + r, 1 + r, H, Lz)
    return r * dt[:, None].to(Lambda.dtype)


def woodbury(k: torch.Tensor, channels: int, inputs: int = 1) -> torch.Tensor:
    """Woodbury identity ``k00 - k01 (I + k11)^{-1} k10``, Algorithm 1 line 3; chapter s4/03_s4_kernel.

    ``k`` (channels + r, inputs + r, H, Lz) from :func:`generating_function_blocks` (``inputs = 1``)
    or :func:`s4_dplr_kernel_and_taps` (several input vectors sharing ``k01`` and ``k11``).
    Returns (channels, H, Lz) -- (channels, inputs, H, Lz) when ``inputs > 1`` -- the resolvent
    ``C_tilde (g - Lambda + P P^*)^{-1} B`` of the DPLR matrix. Rank 1 uses the scalar formula;
    higher rank a batched ``r x r`` solve.
    """
    check_int(channels, "channels", minimum=1)
    check_int(inputs, "inputs", minimum=1)
    k = as_tensor(k, "k", allow_complex=True)
    if k.ndim != 4 or k.shape[0] <= channels or k.shape[1] <= inputs:
        raise ValueError(f"k: expected shape (channels + r, inputs + r, H, Lz) with channels = {channels}, "
                         f"inputs = {inputs}, got {tuple(k.shape)}")
    k00 = k[:channels, :inputs]  # (ch, m, H, Lz)
    k01 = k[:channels, inputs:]  # (ch, r, H, Lz)
    k10 = k[channels:, :inputs]  # (r, m, H, Lz)
    k11 = k[channels:, inputs:]  # (r, r, H, Lz)
    r = k11.shape[0]
    if r == 1:
        out = k00 - k01 * k10 / (1 + k11[0, 0])
    else:
        M = torch.eye(r, dtype=k.dtype, device=k.device)[:, :, None, None] + k11
        sol = _solve(M.permute(2, 3, 0, 1)[:, :, None], k10.permute(2, 3, 1, 0)[..., None],
                     "I + k11 (the Woodbury capacitance matrix)")[..., 0]  # (H, Lz, m, r)
        out = k00 - torch.einsum("crhl,hlmr->cmhl", k01, sol)
    return out[:, 0] if inputs == 1 else out


def irfft_kernel(K_hat: torch.Tensor, L: int) -> torch.Tensor:
    """Inverse FFT of the generating function at the roots of unity, Algorithm 1 line 5; chapter s4/03_s4_kernel.

    ``K_hat`` (..., L//2 + 1) complex at ``omega_k = exp(-2 pi i k/L)`` -> real kernel (..., L).
    """
    L = _check_L(L)
    K_hat = as_tensor(K_hat, "K_hat", allow_complex=True)
    if K_hat.ndim < 1 or K_hat.shape[-1] != L // 2 + 1:
        raise ValueError(f"K_hat: expected (..., L//2 + 1) = (..., {L // 2 + 1}) values at the roots of unity "
                         f"for L = {L}, got shape {tuple(K_hat.shape)}")
    return torch.fft.irfft(K_hat, n=L, dim=-1)


def s4_dplr_kernel(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   dt: torch.Tensor, L: int, *, backend: str = "auto",
                   c_is_tilde: bool = False) -> torch.Tensor:
    """S4 convolution kernel of a DPLR SSM, Liquid-S4 Algorithm 1 lines 1-5; chapter s4/03_s4_kernel.

    Inputs: ``Lambda`` (H, N2) or (N2,) complex; ``P`` (H, N2), (N2,) or (r, H, N2); ``B`` (H, N2)
    or (N2,); ``C`` (H, N2) or (channels, H, N2); ``dt`` (H,) > 0 (or a scalar); ``L >= 1``.
    Returns the real kernel ``K`` (H, L) (or (channels, H, L)) with
    ``K_l = C_full A_bar_full^l B_bar_full`` for the bilinear discretization of the conjugate-
    doubled system ``A_full = diag(Lambda, conj Lambda) - P_full P_full^*`` of state size
    ``N = 2 N2`` -- equivalently of the real system :func:`dplr_to_dense` (no factor 2 to add).
    ``c_is_tilde=True`` skips line 1 (``C`` is then already ``C_tilde``; the official code's
    parametrization). For even ``L`` the node ``omega = -1`` uses :func:`nyquist_value`.
    ``backend`` picks where the Cauchy sums run (``"auto" | "torch" | "keops"``).
    Near-singular inputs: a complex64 mode within :data:`PROMOTE_BELOW` of a node
    (:func:`node_distance`, e.g. ``Lambda`` drifting to 0) is computed in complex128 and returned
    in float32; a mode on a node (a zero mode ``Lambda = 0``: 0/0) raises ``ValueError``, as does
    a non-finite result; the memory of the Cauchy blocks is checked first.
    """
    L = _check_L(L)
    check_choice(backend, "backend", BACKENDS)
    if not isinstance(c_is_tilde, bool):
        raise TypeError(f"c_is_tilde: expected a bool, got {type(c_is_tilde).__name__}")
    Lambda, P, B, C, dt, squeeze = _prepare(Lambda, P, B, C, dt)
    _guard_dplr(Lambda, P, C, L, dense=not c_is_tilde)
    out_dtype = _C2R[Lambda.dtype]
    Lambda, P, B, C, dt = _working_precision(L, Lambda, P, B, C, dt)  # double precision near a node
    C_tilde = C if c_is_tilde else c_tilde(Lambda, P, B, C, dt, L)  # line 1
    omega = roots_of_unity(L, Lambda.dtype, Lambda.device)  # line 4 (the nodes)
    nyquist = L % 2 == 0 and L > 1  # omega = -1 is a node: g(omega) is infinite there
    om = omega[:-1] if nyquist else omega
    k = generating_function_blocks(Lambda, P, B, C_tilde, dt, om, backend=backend)  # line 2
    K_hat = woodbury(k, C.shape[0]) * bilinear_factor(om)  # line 3
    if nyquist:
        K_hat = torch.cat([K_hat, nyquist_value(B, C_tilde, dt)[..., None]], dim=-1)
    K = _finite_kernel(irfft_kernel(K_hat, L), "s4_dplr_kernel").to(out_dtype)  # line 5
    return K[0] if squeeze else K


def diagonal_node_mean(Lambda: torch.Tensor, dt: torch.Tensor, L: int) -> torch.Tensor:
    """``(1/L) sum_k f(omega_k) dt / (z_k - dt Lambda_n)`` over all ``L`` roots of unity, in closed form; chapter s4/03_s4_kernel.

    The diagonal (Woodbury-free) part of tap 0 of a generating function. With ``f = 2/(1 + omega)``
    and ``z = 2(1 - omega)/(1 + omega)`` each term is a geometric series in ``omega``,
    ``f dt / (z - w) = (2 dt / (2 - w)) / (1 - lambda omega)`` with ``w = dt Lambda`` and
    ``lambda = (2 + w)/(2 - w)`` the bilinear eigenvalue, and the mean of ``1/(1 - lambda omega)``
    over the ``L``-th roots of unity is ``1/(1 - lambda^L)`` (only the powers ``omega^{jL} = 1``
    survive). So ``sum_n C_tilde_n v'_n (...)`` costs ``O(N)`` instead of a Cauchy sum over the
    nodes; the Nyquist node is included (there the term is ``dt/2``). Computed in double precision
    (the phase ``L arg lambda`` is large for long ``L``) and returned in ``Lambda``'s dtype.
    ``Lambda`` (H, N2) complex, ``dt`` (H,) -> (H, N2).
    """
    L = _check_L(L)
    Lambda, dt = as_tensors(("Lambda", Lambda), ("dt", dt))
    check_ndim(Lambda, "Lambda", 2, "(H, N2)")
    if not Lambda.is_complex() or dt.shape != Lambda.shape[:1]:
        raise ValueError(f"Lambda, dt: expected complex (H, N2) and (H,), got {Lambda.dtype} {tuple(Lambda.shape)} "
                         f"and {tuple(dt.shape)}")
    return _diagonal_node_mean(Lambda, dt, L)


def _diagonal_node_mean(Lambda: torch.Tensor, dt: torch.Tensor, L: int) -> torch.Tensor:
    """:func:`diagonal_node_mean` on validated tensors."""
    w = Lambda.to(torch.complex128) * dt.to(torch.float64)[:, None]
    num, den = 2 + w, 2 - w
    # lambda^L in polar form from real operations (cheaper than a complex log/pow, same value)
    log_modulus = 0.5 * L * (torch.log(num.real**2 + num.imag**2) - torch.log(den.real**2 + den.imag**2))
    phase = L * (torch.atan2(num.imag, num.real) - torch.atan2(den.imag, den.real))
    lam_L = torch.polar(torch.exp(log_modulus), phase)
    return ((2 * dt.to(torch.float64)[:, None]) / (den * (1 - lam_L))).to(Lambda.dtype)


def woodbury_weights(blocks: torch.Tensor, channels: int) -> torch.Tensor:
    """``gamma = k01 (I + k11)^{-1}`` per node, the Woodbury weights of Algorithm 1 line 3; chapter s4/03_s4_kernel.

    ``blocks`` (channels + r, inputs + r, H, Lz) from the Cauchy call (the first ``inputs``
    columns are ignored). The Woodbury term of any input vector ``v`` at a node is
    ``sum_r gamma_r k10_r(v)``. Returns (channels, r, H, Lz).
    """
    check_int(channels, "channels", minimum=1)
    blocks = check_ndim(as_tensor(blocks, "blocks", allow_complex=True), "blocks", 4, "(channels + r, inputs + r, H, Lz)")
    if blocks.shape[0] <= channels or blocks.shape[1] < blocks.shape[0] - channels:
        raise ValueError(f"blocks: expected shape (channels + r, inputs + r, H, Lz) with channels = {channels}, "
                         f"got {tuple(blocks.shape)}")
    return _woodbury_weights(blocks, channels)


def _woodbury_weights(blocks: torch.Tensor, channels: int) -> torch.Tensor:
    """:func:`woodbury_weights` on a validated ``blocks`` tensor."""
    r = blocks.shape[0] - channels
    k01, k11 = (part.split([part.shape[1] - r, r], dim=1)[1] for part in blocks.split([channels, r]))  # (ch|r, r, H, Lz)
    if r == 1:
        return k01 / (1 + k11[0, 0])
    # gamma^T = (I + k11)^{-T} k01^T per (H, node)
    M = torch.eye(r, dtype=blocks.dtype, device=blocks.device)[:, :, None, None] + k11
    return _solve(M.permute(2, 3, 1, 0)[:, :, None], k01.permute(2, 3, 0, 1)[..., None],
                  "I + k11 (the Woodbury capacitance matrix)")[..., 0].permute(2, 3, 0, 1)


def s4_dplr_kernel_and_taps(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C_tilde: torch.Tensor,
                            dt: torch.Tensor, L: int, V: torch.Tensor | Callable[..., torch.Tensor], *,
                            backend: str = "auto", diagonal: str = "closed") -> tuple[torch.Tensor, torch.Tensor]:
    """S4 kernel from ``C_tilde`` and, from the same Cauchy sums, ``C v`` for extra vectors ``v``; chapter s4/03_s4_kernel.

    ``C_tilde = C (I - A_bar^L)`` is defined for length ``L``. For each stored half ``v = V[j]``
    (a conjugate-symmetric discrete vector), the kernel ``C A_bar^l v`` of the continuous input
    ``v' =`` :func:`bilinear_input` has tap 0 ``C v`` (the truncation only touches taps ``l >= L``),
    and tap 0 is the mean of its generating function over the ``L`` roots of unity
    (:func:`node_mean`): ``(1/L) sum_k (I - omega_k A_bar)^{-1} = (I - A_bar^L)^{-1}``. So ``C v``
    comes out of ``C_tilde`` exactly, with no dense solve and no inverse FFT. By Woodbury the
    generating function at a node is ``f (k00(v) - sum_r gamma_r k10_r(v))``:

    * ``diagonal="closed"`` (default): the mean of the diagonal part ``f k00(v)`` is a geometric
      series, ``2 Re sum_n C_tilde_n v'_n m_n`` with ``m`` from :func:`diagonal_node_mean`, so each
      vector adds **one** right-hand side ``P^* v'`` to the Cauchy call of line 2 (its
      reciprocals, the expensive part, are shared) and the Woodbury part is a weighted sum over
      the nodes with the kernel's own ``gamma`` (:func:`woodbury_weights`); it vanishes at the
      Nyquist node;
    * ``diagonal="cauchy"``: the previous form, two right-hand sides ``C_tilde v'`` and ``P^* v'``
      per vector, then :func:`woodbury` and :func:`node_mean` as for the kernel (the oracle of the
      closed form, with the dense ``C``).

    The Liquid-S4 PB coefficients ``C B_bar^p`` use it (:func:`liquidssm.liquid.pb_coefficients_tilde`).

    Inputs as :func:`s4_dplr_kernel` with ``c_is_tilde=True``; ``V`` (k, H, N2) complex, or a
    function ``V(Lambda, P, B, dt)`` of the validated inputs (``Lambda``, ``B`` (H, N2), ``P``
    (r, H, N2), ``dt`` (H,), already in the working precision) returning (k, H, N2): callers that
    derive the vectors from the system validate once. Returns ``(K, T)``: ``K`` (channels, H, L)
    (or (H, L)) equal to ``s4_dplr_kernel(..., c_is_tilde=True)``, and real ``T`` (channels, k, H)
    (or (k, H)) with ``T[c, j] = C_full[c] . conj_double(V[j])``.
    """
    L = _check_L(L)
    check_choice(backend, "backend", BACKENDS)
    check_choice(diagonal, "diagonal", ("closed", "cauchy"))
    Lambda, P, B, C_tilde, dt, squeeze = _prepare(Lambda, P, B, C_tilde, dt)
    if not callable(V):
        V = check_ndim(as_tensor(V, "V", allow_complex=True), "V", 3, "(k, H, N2)")
        if tuple(V.shape[1:]) != tuple(Lambda.shape) or V.dtype != Lambda.dtype:
            raise ValueError(f"V: expected a {Lambda.dtype} tensor (k, H, N2) with (H, N2) = {tuple(Lambda.shape)}, "
                             f"got {V.dtype} of shape {tuple(V.shape)}")
        check_finite(V.detach(), "V")
    out_dtype = _C2R[Lambda.dtype]
    Lambda, P, B, C_tilde, dt = _working_precision(L, Lambda, P, B, C_tilde, dt)
    V = V(Lambda, P, B, dt) if callable(V) else V.to(Lambda.dtype)
    _guard_dplr(Lambda, P, C_tilde, L, dense=False, extra_rows=V.shape[0])
    K, T = (_kernel_and_taps_cauchy if diagonal == "cauchy" else _kernel_and_taps)(Lambda, P, B, C_tilde, dt, L, V,
                                                                                   backend)
    K = _finite_kernel(K, "s4_dplr_kernel_and_taps").to(out_dtype)
    T = _finite_kernel(T, "s4_dplr_kernel_and_taps").to(out_dtype)
    return (K[0], T[0]) if squeeze else (K, T)


def _nodes(L: int, Lambda: torch.Tensor, dt: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(om, z, w, f, nyquist)`` of Algorithm 1 for length ``L``: the nodes without the Nyquist one (even ``L``),
    the dt-free Cauchy nodes ``z = 2(1 - om)/(1 + om)``, the modes ``w = dt Lambda``, the factor ``f = 2/(1 + om)``."""
    omega = roots_of_unity(L, Lambda.dtype, Lambda.device)
    nyquist = L % 2 == 0 and L > 1
    om = omega[:-1] if nyquist else omega
    return om, (2 * (1 - om) / (1 + om)).to(Lambda.dtype), Lambda * dt[:, None].to(Lambda.dtype), bilinear_factor(om), nyquist


def _kernel_from_blocks(blocks: torch.Tensor, f: torch.Tensor, L: int, nyquist: bool, B: torch.Tensor,
                        C_tilde: torch.Tensor, dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lines 3-5 of Algorithm 1 from the Cauchy ``blocks`` (channels + r, 1 + r, H, Lz): ``(K, gamma)``.

    The Woodbury weights ``gamma`` (:func:`woodbury_weights`) are returned too: the PB
    coefficients reuse them. The blocks are split, not sliced: the backward of a split
    concatenates the gradients once, where every slice would zero-fill and add a gradient of the
    full block size.
    """
    ch = C_tilde.shape[0]
    r = blocks.shape[0] - ch
    k0, k1 = blocks.split([ch, r])  # rows C_tilde and P^*
    (k00, _), (k10, _) = k0.split([1, r], dim=1), k1.split([1, r], dim=1)
    gamma = _woodbury_weights(blocks, ch)  # (ch, r, H, Lz)
    K_hat = (k00[:, 0] - (gamma * k10[None, :, 0]).sum(1)) * f  # Woodbury, line 3: (ch, H, Lz)
    if nyquist:
        K_hat = torch.cat([K_hat, nyquist_value(B, C_tilde, dt)[..., None]], dim=-1)
    return irfft_kernel(K_hat, L), gamma


def _kernel_and_taps(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C_tilde: torch.Tensor,
                     dt: torch.Tensor, L: int, V: torch.Tensor, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``diagonal="closed"`` core of :func:`s4_dplr_kernel_and_taps` on validated, broadcast tensors."""
    (ch, H, N2), k, r = C_tilde.shape, V.shape[0], P.shape[0]
    om, z, w, f, nyquist = _nodes(L, Lambda, dt)
    dtc = dt[:, None].to(Lambda.dtype)
    V_in = _bilinear_input(Lambda, P, V, dt)  # (k, H, N2)
    Pc = P.conj()
    rows = torch.cat([C_tilde, Pc], dim=0)  # (ch + r, H, N2)
    cols = torch.cat([B[None], P], dim=0)  # (1 + r, H, N2)
    numerators = torch.cat([(rows[:, None] * cols[None, :]).reshape(-1, H, N2),
                            (Pc[:, None] * V_in[None]).reshape(-1, H, N2)])  # ((ch+r)(1+r) + r k, H, N2)
    sums = cauchy(numerators, z, w, backend=backend) * dtc
    blocks, k10_v = sums.split([(ch + r) * (1 + r), r * k])  # split, not sliced (see _kernel_from_blocks)
    K, gamma = _kernel_from_blocks(blocks.view(ch + r, 1 + r, H, -1), f, L, nyquist, B, C_tilde, dt)
    k10_v = k10_v.view(1, r, k, H, -1)
    low_rank = ((gamma * (f * _node_weights(om.shape[-1], L, om.real.dtype, om.device)))[:, :, None] * k10_v).sum((1, -1)).real  # (ch, k, H)
    diag = 2 * (C_tilde[:, None] * (V_in * _diagonal_node_mean(Lambda, dt, L))[None]).sum(-1).real  # (ch, k, H)
    return K, diag - low_rank


def _kernel_and_taps_cauchy(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C_tilde: torch.Tensor,
                            dt: torch.Tensor, L: int, V: torch.Tensor, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``diagonal="cauchy"`` core of :func:`s4_dplr_kernel_and_taps`: two right-hand sides per vector (the oracle)."""
    ch, k = C_tilde.shape[0], V.shape[0]
    om, z, w, f, nyquist = _nodes(L, Lambda, dt)
    inputs = torch.cat([B[None], _bilinear_input(Lambda, P, V, dt)], dim=0)  # (1 + k, H, N2)
    rows = torch.cat([C_tilde, P.conj()], dim=0)  # (ch + r, H, N2)
    cols = torch.cat([inputs, P], dim=0)  # (1 + k + r, H, N2)
    blocks = cauchy(rows[:, None] * cols[None, :], z, w, backend=backend) * dt[:, None].to(Lambda.dtype)
    K_hat = woodbury(blocks, ch, inputs=1 + k) * f  # (ch, 1 + k, H, Lz)
    if nyquist:
        K_hat = torch.cat([K_hat, nyquist_value(inputs[None], C_tilde[:, None], dt)[..., None]], dim=-1)
    return irfft_kernel(K_hat[:, 0], L), node_mean(K_hat[:, 1:], L)


def s4_dplr_kernel_and_row(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C_tilde: torch.Tensor,
                           dt: torch.Tensor, L: int, *, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """S4 kernel from ``C_tilde`` and the row ``E`` that gives ``C v`` for *any* vector ``v``; chapter s4/03_s4_kernel.

    The transposed form of :func:`s4_dplr_kernel_and_taps` (its oracle, tested to rounding). Tap 0
    of the kernel of an input vector ``v`` is the mean of its generating function over the nodes,
    and the generating function is linear in the continuous input ``v' = bilinear_input(v)``:
    with the Woodbury weights ``gamma`` of the S4 kernel's own blocks (:func:`woodbury_weights`),

        C_full conj_double(v) = Re sum_n v'_n E_n,
        E_n = 2 C_tilde_n m_n - sum_r conj(P_rn) S_n(gamma_r),
        S_n(x) = sum_k mu_k dt [f_k x_k / (z_k - dt Lambda_n) + conj(f_k x_k) / (conj(z_k) - dt Lambda_n)]

    (``m`` the closed-form diagonal mean of :func:`diagonal_node_mean`, ``f = 2/(1 + omega)``,
    ``mu`` the weights of :func:`node_mean`; the Woodbury part vanishes at the Nyquist node).
    ``S_n`` is one Cauchy sum with the roles of nodes and modes swapped (the nodes are the poles,
    the modes the evaluation points), so **one** extra Cauchy call with ``channels * r``
    right-hand sides serves every vector ``v``, where the column form pays one right-hand side per
    vector. Rank ``r = 1`` or more.

    Inputs as :func:`s4_dplr_kernel` with ``c_is_tilde=True``. Returns ``(K, E)``: ``K``
    (channels, H, L) (or (H, L)) and complex ``E`` (channels, H, N2) (or (H, N2)).
    """
    L = _check_L(L)
    check_choice(backend, "backend", BACKENDS)
    Lambda, P, B, C_tilde, dt, squeeze = _prepare(Lambda, P, B, C_tilde, dt)
    ch, r = C_tilde.shape[0], P.shape[0]
    _guard_dplr(Lambda, P, C_tilde, L, dense=False)
    out_dtype = _C2R[Lambda.dtype]
    Lambda, P, B, C_tilde, dt = _working_precision(L, Lambda, P, B, C_tilde, dt)
    cdt = Lambda.dtype
    om, z, w, f, nyquist = _nodes(L, Lambda, dt)
    rows = torch.cat([C_tilde, P.conj()], dim=0)  # (ch + r, H, N2)
    cols = torch.cat([B[None], P], dim=0)  # (1 + r, H, N2)
    blocks = cauchy(rows[:, None] * cols[None, :], z, w, backend=backend) * dt[:, None].to(cdt)
    K, gamma = _kernel_from_blocks(blocks, f, L, nyquist, B, C_tilde, dt)  # gamma (ch, r, H, Lz)
    K = _finite_kernel(K, "s4_dplr_kernel_and_row").to(out_dtype)
    weight = (_node_weights(om.shape[-1], L, om.real.dtype, om.device) * f) * dt[:, None].to(cdt)  # (H, Lz)
    S = cauchy(-(weight * gamma).reshape(ch * r, *weight.shape), w, z, backend=backend)  # (ch r, H, N2)
    E = 2 * C_tilde * _diagonal_node_mean(Lambda, dt, L) - (P.conj()[None] * S.reshape(ch, r, *S.shape[1:])).sum(1)
    return (K[0], E[0]) if squeeze else (K, E)


# ----------------------------------------------------------------------------------------------
# S4D
# ----------------------------------------------------------------------------------------------
def s4d_kernel(Lambda: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor, L: int,
               method: str = "zoh") -> torch.Tensor:
    """S4D Vandermonde kernel ``K_l = 2 Re sum_n C_n B_bar_n A_bar_n^l`` (Gu et al. 2022b); chapter s4/03_s4_kernel.

    Diagonal system ``A = diag(Lambda)`` with N2 stored modes (conjugates implicit, hence 2 Re):
    ``method="zoh"``: ``A_bar = exp(dt Lambda)``, ``B_bar = (exp(dt Lambda) - 1)/Lambda B``;
    ``method="bilinear"``: ``A_bar = (1 + dt Lambda/2)/(1 - dt Lambda/2)``,
    ``B_bar = dt B/(1 - dt Lambda/2)`` (the ZOH factor ``(e^{dt Lambda} - 1)/Lambda`` is computed
    as ``dt expm1(x)/x``, exact near and at ``Lambda = 0`` where it is ``dt``). Inputs ``Lambda``,
    ``B`` (H, N2) or (N2,), ``C`` (H, N2) or (channels, H, N2), ``dt`` (H,). Returns real (H, L)
    (or (channels, H, L)). Builds the (H, N2, L) Vandermonde matrix ``exp(l log A_bar)``.
    """
    L = _check_L(L)
    check_choice(method, "method", ["zoh", "bilinear"])
    Lambda, _, B, C, dt, squeeze = _prepare(Lambda, None, B, C, dt, need=("B", "C"))
    check_memory(3 * tensor_bytes((C.shape[0], *Lambda.shape, L), Lambda.dtype),
                 "s4d_kernel: the (H, N2, L) Vandermonde matrix", f"L = {L}, H, N2 = {tuple(Lambda.shape)}",
                 Lambda.device)
    dtA = Lambda * dt[:, None].to(Lambda.dtype)
    if method == "zoh":
        log_A_bar = dtA
        B_bar = dt[:, None].to(Lambda.dtype) * _expm1_ratio(dtA) * B  # (e^{dt Lambda} - 1)/Lambda
    else:
        log_A_bar = torch.log((1 + dtA / 2) / (1 - dtA / 2))
        B_bar = dt[:, None].to(Lambda.dtype) * B / (1 - dtA / 2)
    ell = torch.arange(L, dtype=_C2R[Lambda.dtype], device=Lambda.device).to(Lambda.dtype)
    vander = torch.exp(log_A_bar[..., None] * ell)  # (H, N2, L)
    K = 2 * torch.einsum("chn,hnl->chl", C * B_bar, vander).real
    return K[0] if squeeze else K


def _expm1_ratio(x: torch.Tensor) -> torch.Tensor:
    """``(e^x - 1)/x`` with its limit 1 at ``x = 0`` and no cancellation near 0 (``expm1``)."""
    zero = x == 0
    safe = torch.where(zero, torch.ones_like(x), x)
    return torch.where(zero, torch.ones_like(x), torch.expm1(safe) / safe)


# ----------------------------------------------------------------------------------------------
# the oracle, and the algorithm choice
# ----------------------------------------------------------------------------------------------
def s4_dense_kernel(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                    dt: torch.Tensor, L: int) -> torch.Tensor:
    """Kernel oracle ``K_l = C_full A_bar^l B_bar`` by dense powers, Liquid-S4 Eq. (6); chapter s4/03_s4_kernel.

    The conjugate-doubled system of :func:`discretize_dplr_bilinear` run through
    :func:`liquidssm.ssm.kernel_by_powers` with ``C_full = conj_double(C)``: ``O(L N^2)`` work per
    channel, no Cauchy sums. Inputs and output as :func:`s4_dplr_kernel` (real ``(H, L)`` or
    ``(channels, H, L)``); the two agree to rounding.
    """
    L = _check_L(L)
    Lambda, P, B, C, dt, squeeze = _prepare(Lambda, P, B, C, dt)
    A_bar, B_bar = discretize_dplr_bilinear(Lambda, P, B, dt)
    K = ssm.kernel_by_powers(A_bar, B_bar, conj_double(C), L).real
    return K[0] if squeeze else K


def s4_kernel(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
              dt: torch.Tensor, L: int, *, method: str = "dplr", backend: str = "auto",
              c_is_tilde: bool = False) -> torch.Tensor:
    """S4 kernel of a DPLR SSM by a chosen algorithm, Algorithm 1 or Eq. (6); chapter s4/03_s4_kernel.

    ``method="dplr"`` (default): :func:`s4_dplr_kernel` with the Cauchy ``backend``
    (``"auto" | "torch" | "keops"``); ``method="dense"``: the oracle :func:`s4_dense_kernel`
    (``backend`` is validated and unused). Inputs: ``Lambda``, ``P``, ``B`` (H, N2) complex, ``C``
    (H, N2) or (channels, H, N2), ``dt`` (H,); returns real (H, L) or (channels, H, L).
    ``c_is_tilde=True``: ``C`` is ``C_tilde`` for length ``L`` (the dense oracle first recovers
    ``C`` with :func:`c_from_tilde`).
    """
    check_method(method)
    check_choice(backend, "backend", BACKENDS)
    if not isinstance(c_is_tilde, bool):
        raise TypeError(f"c_is_tilde: expected a bool, got {type(c_is_tilde).__name__}")
    if method == "dense":
        if c_is_tilde:
            C = c_from_tilde(Lambda, P, B, C, dt, L)
        return s4_dense_kernel(Lambda, P, B, C, dt, L)
    return s4_dplr_kernel(Lambda, P, B, C, dt, L, backend=backend, c_is_tilde=c_is_tilde)

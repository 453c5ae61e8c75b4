"""Cauchy reductions over conjugate pairs, the "black-box Cauchy kernel" of Liquid-S4 Algorithm 1 line 2.

Chapter ``s4/03_s4_kernel``. Every function computes, for stored modes ``n < N2`` and nodes ``z_j``,

    r_j = sum_n  v_n / (z_j - w_n)  +  conj(v_n) / (z_j - conj(w_n)),

i.e. the plain Cauchy sum over all ``N = 2 N2`` modes of a system whose second half is the
complex conjugate of the first (the conjugates are implicit: only ``N2`` modes are stored).

Backends:

* :func:`cauchy_naive` -- the oracle: one broadcast ``(..., N2, Lz)`` tensor, then a sum.
* :func:`cauchy_torch` -- pure torch, one division per (row, mode, node) and an analytic
  backward (:class:`_CauchyPairs`). Each conjugate pair is merged,
  ``v/(z-w) + conj(v)/(z-conj w) = (a z + b) q`` with real ``a = 2 Re v``,
  ``b = -2 Re(v conj w)`` and ``q = 1/((z - w)(z - conj w))``, so ``r = z (a^T q) + b^T q`` is two
  real matrix products over the modes. The gradients are closed forms in ``q`` and ``q^2``
  (``c = -2 Re w``, ``S = (a z + b) q^2``, ``gbar = conj(grad_r)``, sums over nodes ``j``):
  ``grad_v = 2 Re(sum gbar z q) - 2 w Re(sum gbar q)``;
  ``grad_w = -2 v Re(sum gbar q) + 2 Re(sum gbar z S) - 2 w Re(sum gbar S)``;
  ``grad_z = grad_r conj(sum_n a q - (2 z + c) S)``. The nodes are **chunked** so memory stays
  bounded: a chunk holds ``Lc = max(1, chunk_elems // (R * max(N2, K)))`` nodes, where ``R`` is
  the number of rows of ``w``/``z`` and ``K`` the right-hand sides of ``v`` that share them;
  ``chunk_elems = 2**20`` by default (8 MiB per complex64 temporary, 16 MiB in complex128;
  about three such temporaries live at once). The backward recomputes ``q`` chunk by chunk
  (nothing is stored, nothing re-run under checkpoint). The previous two-division,
  checkpointed version is kept as ``_cauchy_torch_checkpointed`` for benchmarks.
* :func:`cauchy_keops` -- pykeops ``Genred`` on ``view_as_real`` pairs with the merged
  conjugate-pair formula ``2 (z Re v - Re(v conj w)) / ((z - w)(z - conj w))``; never builds the
  ``N2 x Lz`` matrix. Each formula/dtype/gradient compiles once (~6-15 s on a busy CPU) and is
  cached in ``KEOPS_CACHE_FOLDER``.
* :func:`cauchy` -- dispatch with ``backend="auto" | "torch" | "keops"``. ``"auto"`` uses keops
  only when pykeops imports and compiles **and** the problem is large
  (``R * N2 * Lz >= AUTO_KEOPS_MIN_WORK = 2**24``, ``R`` the rows of ``w``/``z`` whose reciprocals
  the torch backend shares between all right-hand sides); otherwise torch. Counting every
  right-hand side instead (the rule before issue 25) sent a Liquid-S4 layer of order 6 at
  ``H = 128, N = 64, L = 1024`` to keops, several times slower than torch there on a 2-core CPU. Measured on a 2-core CPU
  (``python -m liquidssm.bench kernels --threads 1``), keops' forward+backward is on par with
  torch up to ``M N2 Lz ~ 2**19`` and 2-3x faster from ``~2**21`` on; the higher threshold keeps
  small runs (tests, smoke chapters) free of the one-off compile (~15-45 s per dtype). If keops is unusable, ``"auto"`` warns once per process and falls
  back to torch; ``"keops"`` raises.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

from liquidssm._checks import (
    as_tensor,
    check_all_finite,
    check_choice,
    check_int,
    check_memory,
    check_same_dtype,
    tensor_bytes,
)
from liquidssm.compiled import transforms_active

__all__ = [
    "AUTO_KEOPS_MIN_WORK",
    "DEFAULT_CHUNK_ELEMS",
    "cauchy",
    "cauchy_keops",
    "cauchy_naive",
    "cauchy_torch",
    "keops_available",
]

DEFAULT_CHUNK_ELEMS = 2**20
AUTO_KEOPS_MIN_WORK = 2**24
BACKENDS = ("auto", "torch", "keops")

_KEOPS_STATE: dict[str, Any] = {"checked": False, "ok": False, "reason": "", "warned": False}
_KEOPS_ROUTINES: dict[str, Any] = {}


def _validate(v: object, z: object, w: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                      torch.Size]:
    v = as_tensor(v, "v", allow_complex=True)
    z = as_tensor(z, "z", allow_complex=True)
    w = as_tensor(w, "w", allow_complex=True)
    check_same_dtype(("v", v), ("z", z), ("w", w))
    for name, t in (("v", v), ("z", z), ("w", w)):
        if t.ndim < 1:
            raise ValueError(f"{name}: expected at least 1-D tensor, got a scalar")
    check_all_finite(("v", v), ("z", z), ("w", w))
    if v.shape[-1] != w.shape[-1]:
        raise ValueError(f"v, w: expected the same number of stored modes N2 on the last axis, "
                         f"got v {tuple(v.shape)} and w {tuple(w.shape)}")
    try:
        batch = torch.broadcast_shapes(v.shape[:-1], w.shape[:-1], z.shape[:-1])
    except RuntimeError as exc:
        raise ValueError(f"v (..., N2), w (..., N2), z (..., Lz): leading axes do not broadcast: "
                         f"{tuple(v.shape)}, {tuple(w.shape)}, {tuple(z.shape)}") from exc
    cdtype = {torch.float32: torch.complex64, torch.float64: torch.complex128,
              torch.float16: torch.complex64, torch.bfloat16: torch.complex64}

    def to_c(t: torch.Tensor) -> torch.Tensor:
        return t if t.is_complex() else t.to(cdtype[t.dtype])

    return to_c(v), to_c(z), to_c(w), batch


def _cauchy_block(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_n v/(z-w) + conj(v)/(z-conj w)`` on one block: v, w (..., N2), z (..., Lc)."""
    zz = z[..., None, :]
    vv, ww = v[..., :, None], w[..., :, None]
    return (vv / (zz - ww) + vv.conj() / (zz - ww.conj())).sum(dim=-2)


def cauchy_naive(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Conjugate-pair Cauchy sum by full broadcasting (oracle), Alg. 1 line 2; chapter s4/03_s4_kernel.

    ``v`` (..., N2), ``w`` (..., N2), ``z`` (..., Lz) complex with broadcastable leading axes.
    Returns ``r`` (..., Lz) with ``r_j = sum_n v_n/(z_j - w_n) + conj(v_n)/(z_j - conj(w_n))``.
    Materializes a (..., N2, Lz) tensor (refused above the memory guard's limit,
    :func:`liquidssm._checks.check_memory`; :func:`cauchy_torch` chunks it instead).
    """
    v, z, w, batch = _validate(v, z, w)
    shape = (*batch, v.shape[-1], z.shape[-1])
    check_memory(4 * tensor_bytes(shape, v.dtype), "cauchy_naive: the (..., N2, Lz) Cauchy matrix",
                 f"batch {tuple(batch)}, N2 = {v.shape[-1]}, Lz = {z.shape[-1]}", v.device)
    return _cauchy_block(v, z, w)


def _real_rows(q: torch.Tensor) -> torch.Tensor:
    """View a contiguous complex (R, N2, Lc) block as real (R, N2, 2 Lc) (re, im interleaved)."""
    return torch.view_as_real(q).reshape(*q.shape[:-1], 2 * q.shape[-1])


def _real_cols_t(u: torch.Tensor) -> torch.Tensor:
    """Complex (R, m, Lc) -> real (R, m, 2 Lc) with ``_real_cols_t(u) @ _real_rows(q)^T = Re(u q^T)``.

    The backward's products are formed as ``(R, m, 2 Lc) @ (R, 2 Lc, N2)``: with few columns ``m``
    this orientation is several times faster than ``_real_rows(q)`` times an ``(R, 2 Lc, m)`` matrix
    on CPU BLAS, which is slow for a small or odd number ``m`` of output columns (issue 25).
    """
    return torch.view_as_real(u.conj().resolve_conj()).reshape(u.shape[0], u.shape[1], 2 * u.shape[2])


def _inv_den(zc: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``q = 1 / ((z - w)(z - conj w))``: (R, N2, Lc) from zc (R, Lc), w (R, N2); one division."""
    zz, ww = zc[:, None, :], w[:, :, None]
    den = zz - ww
    den.mul_(zz - ww.conj())
    return den.reciprocal_()


class _CauchyPairs(torch.autograd.Function):
    """One-division conjugate-pair Cauchy sum with an analytic, chunked backward.

    Inputs ``v`` (R, K, N2), ``z`` (R, Lz), ``w`` (R, N2) complex; output (R, K, Lz). With
    ``a = 2 Re v``, ``b = -2 Re(v conj w)`` (real) and ``q = 1/((z - w)(z - conj w))`` each term is
    ``(a z + b) q``, so ``r = z (a^T q) + b^T q``: the node-dependent work is one reciprocal per
    (row, mode, node), shared by the ``K`` right-hand sides, and the sums are real matrix products.
    The backward recomputes ``q`` chunk by chunk (never stored) and forms every gradient from the
    products of ``q`` and ``q^2`` with a few vectors (closed form derived in the module docstring).
    """

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, z: torch.Tensor, w: torch.Tensor,  # noqa: D102
                Lc: int) -> torch.Tensor:
        R, K, _ = v.shape
        Lz = z.shape[-1]
        a = 2 * v.real
        b = -2 * (v * w[:, None, :].conj()).real
        ab = torch.cat([a, b], dim=1)  # (R, 2K, N2) real
        out = torch.empty(R, K, Lz, dtype=v.dtype, device=v.device)
        for s in range(0, Lz, Lc):
            zc = z[:, s:s + Lc]
            lc = zc.shape[-1]
            p = torch.view_as_complex((ab @ _real_rows(_inv_den(zc, w))).reshape(R, 2 * K, lc, 2))
            out[:, :, s:s + lc] = torch.addcmul(p[:, K:], zc[:, None, :], p[:, :K])
        ctx.save_for_backward(v, z, w)
        ctx.Lc = Lc
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: D102
        v, z, w = ctx.saved_tensors
        Lc = ctx.Lc
        need_v, need_z, need_w = ctx.needs_input_grad[:3]
        R, K, N2 = v.shape
        Lz = z.shape[-1]
        a = 2 * v.real
        b = -2 * (v * w[:, None, :].conj()).real
        c = -2 * w.real
        rdtype = a.dtype
        need_vw = need_v or need_w
        if need_vw:
            re_a = torch.zeros(R, 2 * K, N2, dtype=rdtype, device=v.device)  # Re [cg z, cg] q^T
            # Re [cg z, cg] (q^2)^T; the z^2 column follows from z^2 q = 1 + 2 Re(w) z q - |w|^2 q
            re_t = torch.zeros(R, 2 * K, N2, dtype=rdtype, device=v.device) if need_w else None
        if need_z:
            gz = torch.empty(R, Lz, dtype=z.dtype, device=z.device)
            a_rows = a  # (R, K, N2)
            q2_rows = torch.cat([a, b, a * c[:, None, :], b * c[:, None, :]], dim=1)  # (R, 4K, N2)
        g = g.resolve_conj()
        for s in range(0, Lz, Lc):
            zc = z[:, s:s + Lc]
            lc = zc.shape[-1]
            q = _inv_den(zc, w)
            zb = zc[:, None, :]
            if need_vw:
                cg = g[:, :, s:s + lc].conj()  # (R, K, lc)
                left = _real_cols_t(torch.cat([cg * zb, cg], dim=1))  # (R, 2K, 2 lc), shared by q and q^2
                re_a.baddbmm_(left, _real_rows(q).transpose(1, 2))
            if need_z:
                aq = torch.view_as_complex((a_rows @ _real_rows(q)).reshape(R, K, lc, 2))
            q.mul_(q)
            if need_w:
                re_t.baddbmm_(left, _real_rows(q).transpose(1, 2))  # type: ignore[union-attr]
            if need_z:
                m = torch.view_as_complex((q2_rows @ _real_rows(q)).reshape(R, 4 * K, lc, 2))
                al, be, ga, de = m[:, :K], m[:, K:2 * K], m[:, 2 * K:3 * K], m[:, 3 * K:]
                # d r_k / d z = a^T q - (2z + c)^T S,  S = (a z + b) q^2
                dr = aq - 2 * zb * (zb * al + be) - (zb * ga + de)
                gz[:, s:s + lc] = (g[:, :, s:s + lc] * dr.conj()).sum(dim=1)
        grad_v = grad_w = None
        if need_vw:
            ga_, gb_ = re_a[:, :K], re_a[:, K:]  # (R, K, N2)
            wb = w[:, None, :]
            if need_v:
                grad_v = 2 * ga_ - 2 * gb_ * wb
            if need_w:
                t1, t0 = re_t[:, :K], re_t[:, K:]  # type: ignore[index]
                t2 = gb_ + (2 * w.real)[:, None, :] * t1 - (w.real**2 + w.imag**2)[:, None, :] * t0
                re_u1 = a * t2 + b * t1
                re_u0 = a * t1 + b * t0
                grad_w = (-2 * gb_ * v + 2 * re_u1 - 2 * re_u0 * wb).sum(dim=1)
        return grad_v, (gz if need_z else None), grad_w, None


def cauchy_torch(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, *,
                 chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> torch.Tensor:
    """Conjugate-pair Cauchy sum, pure torch, one division, chunked; Alg. 1 line 2; chapter s4/03_s4_kernel.

    Same inputs/outputs as :func:`cauchy_naive` (``v``, ``w`` (..., N2); ``z`` (..., Lz) ->
    (..., Lz)). Each conjugate pair is merged, ``(a z + b) / ((z - w)(z - conj w))`` with
    ``a = 2 Re v``, ``b = -2 Re(v conj w)``; the reciprocal depends only on the rows of ``w`` and
    ``z``, so leading axes of ``v`` beyond them (the kernel's 2x2 blocks) share it. Nodes are
    processed ``Lc = max(1, chunk_elems // (R * max(N2, K)))`` at a time (``R`` rows of
    ``w``/``z``, ``K`` right-hand sides of ``v`` per row); the backward is analytic
    (:class:`_CauchyPairs`), recomputing only the reciprocals chunk by chunk, so memory stays
    bounded for any ``Lz`` and nothing is re-run under checkpoint.
    """
    if transforms_active():
        # torch.func / forward-mode AD: the custom backward has no jvp; use plain autograd ops
        return _cauchy_torch_checkpointed(v, z, w, chunk_elems=chunk_elems)
    v, z, w, batch = _validate(v, z, w)
    chunk_elems = check_int(chunk_elems, "chunk_elems", minimum=1)
    N2, Lz = v.shape[-1], z.shape[-1]
    nd = len(torch.broadcast_shapes(w.shape[:-1], z.shape[:-1]))
    rows = tuple(batch[len(batch) - nd:])
    rhs = tuple(batch[:len(batch) - nd])
    R, K = math.prod(rows), math.prod(rhs)
    if R * K == 0 or N2 == 0:
        return _cauchy_block(v, z, w)  # empty problem: the broadcast formula handles it
    ww = w.expand(*rows, N2).reshape(R, N2)
    zz = z.expand(*rows, Lz).reshape(R, Lz)
    vv = v.expand(*batch, N2).reshape(K, R, N2).transpose(0, 1)
    Lc = max(1, chunk_elems // (R * max(N2, K)))
    out = _CauchyPairs.apply(vv, zz, ww, Lc)  # (R, K, Lz)
    return out.transpose(0, 1).reshape(*batch, Lz)


def _cauchy_torch_checkpointed(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, *,
                               chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> torch.Tensor:
    """The previous torch backend (two divisions per term, chunks checkpointed); kept for benchmarks.

    Same contract as :func:`cauchy_torch`; autograd through :func:`_cauchy_block`, each chunk
    recomputed in the backward by :func:`torch.utils.checkpoint.checkpoint`.
    """
    v, z, w, batch = _validate(v, z, w)
    chunk_elems = check_int(chunk_elems, "chunk_elems", minimum=1)
    M = max(1, math.prod(batch))
    N2, Lz = v.shape[-1], z.shape[-1]
    Lc = max(1, chunk_elems // max(1, M * N2))
    if Lc >= Lz:
        return _cauchy_block(v, z, w)
    need_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (v, z, w))
    outs = []
    for start in range(0, Lz, Lc):
        zc = z[..., start:start + Lc]
        if need_grad:
            outs.append(checkpoint(_cauchy_block, v, zc, w, use_reentrant=False))
        else:
            outs.append(_cauchy_block(v, zc, w))
    return torch.cat(outs, dim=-1)


_KEOPS_FORMULA = (
    "ComplexMult(Real2Complex(IntCst(2)), ComplexDivide("
    "ComplexSubtract(ComplexMult(Z, Real2Complex(ComplexReal(V))), Real2Complex(Sum(V*W))), "
    "ComplexMult(ComplexSubtract(Z, W), ComplexSubtract(Z, Conj(W)))))"
)


def _keops_routine(dtype: torch.dtype) -> Any:
    key = str(dtype)
    if key not in _KEOPS_ROUTINES:
        from pykeops.torch import Genred

        _KEOPS_ROUTINES[key] = Genred(_KEOPS_FORMULA, ["V = Vj(2)", "Z = Vi(2)", "W = Vj(2)"],
                                      reduction_op="Sum", axis=1)
    return _KEOPS_ROUTINES[key]


def keops_available() -> tuple[bool, str]:
    """Return ``(True, "")`` if ``pykeops.torch`` imports, else ``(False, reason)`` (cached)."""
    if not _KEOPS_STATE["checked"]:
        _KEOPS_STATE["checked"] = True
        try:
            import pykeops.torch  # noqa: F401
            _KEOPS_STATE["ok"] = True
        except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
            _KEOPS_STATE["ok"] = False
            _KEOPS_STATE["reason"] = f"{type(exc).__name__}: {exc}"
    return bool(_KEOPS_STATE["ok"]), str(_KEOPS_STATE["reason"])


def cauchy_keops(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Conjugate-pair Cauchy sum with a pykeops ``Genred`` reduction, Alg. 1 line 2; chapter s4/03_s4_kernel.

    Same inputs/outputs as :func:`cauchy_naive` (``v``, ``w`` (..., N2); ``z`` (..., Lz) ->
    (..., Lz)); differentiable in ``v``, ``z``, ``w`` through keops' own formula gradients.
    Raises ``RuntimeError`` if pykeops is not importable or the formula fails to compile.
    keops divides by ``|(z - w)(z - conj w)|^2 ~ |z|^4``, so in float32 keep ``|z| < ~1e9``
    (:func:`liquidssm.kernels.s4_dplr_kernel` never passes the infinite Nyquist node).
    """
    v, z, w, batch = _validate(v, z, w)
    ok, reason = keops_available()
    if not ok:
        raise RuntimeError(f"backend='keops': pykeops is not usable ({reason})")
    N2, Lz = v.shape[-1], z.shape[-1]
    rdtype = torch.float64 if v.dtype == torch.complex128 else torch.float32
    cdtype = v.dtype
    M = max(1, math.prod(batch))

    def flat(t: torch.Tensor, n: int) -> torch.Tensor:
        t = t.to(cdtype).expand(*batch, n).reshape(M, n)
        return torch.view_as_real(t).contiguous()

    routine = _keops_routine(rdtype)
    device = "GPU" if v.device.type == "cuda" else "CPU"
    try:
        out = routine(flat(v, N2), flat(z, Lz), flat(w, N2), backend=device)
    except Exception as exc:  # noqa: BLE001 - compile/runtime errors from keops
        raise RuntimeError(f"backend='keops': pykeops failed to compile or run the Cauchy formula "
                           f"({type(exc).__name__}: {exc})") from exc
    return torch.view_as_complex(out.contiguous()).reshape(*batch, Lz)


def _warn_fallback(reason: str) -> None:
    if not _KEOPS_STATE["warned"]:
        _KEOPS_STATE["warned"] = True
        warnings.warn(f"liquidssm.cauchy: backend='auto' could not use pykeops ({reason}); "
                      f"falling back to the chunked pure-torch Cauchy backend (same values, "
                      f"slower for very long sequences). This warning is shown once.",
                      RuntimeWarning, stacklevel=3)


def _shared_rows(w: torch.Tensor, z: torch.Tensor) -> int:
    """``R``: the rows of ``w``/``z`` whose reciprocals the torch backend computes; right-hand sides share them."""
    return max(1, math.prod(torch.broadcast_shapes(w.shape[:-1], z.shape[:-1])))


def cauchy(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """Conjugate-pair Cauchy sum with a chosen backend, Alg. 1 line 2; chapter s4/03_s4_kernel.

    ``v`` (..., N2), ``w`` (..., N2), ``z`` (..., Lz) complex -> ``r`` (..., Lz) with
    ``r_j = sum_n v_n/(z_j - w_n) + conj(v_n)/(z_j - conj(w_n))``.
    ``backend``: ``"torch"`` (:func:`cauchy_torch`), ``"keops"`` (:func:`cauchy_keops`, raises if
    unusable) or ``"auto"`` (keops for problems with ``R * N2 * Lz >= AUTO_KEOPS_MIN_WORK`` when it
    imports and compiles, else torch; one warning per process on fallback). ``R`` counts the rows
    of ``w``/``z`` only: the torch backend shares each reciprocal between the right-hand sides of
    ``v`` (the kernel's blocks, the Liquid-S4 taps), keops recomputes it for each.
    """
    check_choice(backend, "backend", BACKENDS)
    if backend == "torch":
        return cauchy_torch(v, z, w)
    if backend == "keops":
        return cauchy_keops(v, z, w)
    vt, zt, wt, batch = _validate(v, z, w)
    work = _shared_rows(wt, zt) * vt.shape[-1] * zt.shape[-1]
    if work < AUTO_KEOPS_MIN_WORK or _KEOPS_STATE.get("broken"):
        return cauchy_torch(vt, zt, wt)
    ok, reason = keops_available()
    if not ok:
        _warn_fallback(reason)
        return cauchy_torch(vt, zt, wt)
    try:
        return cauchy_keops(vt, zt, wt)
    except RuntimeError as exc:
        _KEOPS_STATE["broken"] = True
        _warn_fallback(str(exc))
        return cauchy_torch(vt, zt, wt)

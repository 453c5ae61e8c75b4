"""Parallel evaluation of a diagonal-Jacobian recurrence by Newton iterations (quasi-DEER).

LrcSSM §2.2 and Algorithm 1 (DEER of Lim et al. 2024 with the diagonal Jacobian of Gonzalez et al.
2024, which is *exact* Newton for LrcSSM); chapter lrcssm/03_newton_solver.

The sequence ``x_t = f(x_{t-1}, u_t)``, ``t = 0..T-1``, ``x_{-1} = x0``, is the root of
``r(x)_t = x_t - f(x_{t-1}, u_t)``. Newton linearises ``f`` around the current guess ``x^(k)``::

    x^(k+1)_t = J_t x^(k+1)_{t-1} + ( f(x^(k)_{t-1}, u_t) - J_t x^(k)_{t-1} ),  J_t = diag ∂f/∂x (x^(k)_{t-1}, u_t)

a linear recurrence solved by one parallel scan (:func:`liquidssm.scan.linear_scan`); that one
step is :func:`newton_step`. After ``k`` iterations the first ``k`` states are exact, so in exact
arithmetic at most ``T`` iterations are needed. :func:`newton_iterate` is the loop (from the zero
guess, with per-sequence stopping and a convergence record). Gradients are implicit (IFT at the
fixed point): the iterations run without autograd and one extra :func:`newton_step` from the
solution, whose iterate and Jacobian are constants, carries the graph
(:func:`implicit_gradient_step`); its derivative is ``(I - J S)^{-1} ∂f``, the
implicit-function-theorem gradient, whose backward is one reverse scan (the adjoint,
:class:`_AdjointScan`). :func:`newton_solve` validates, iterates and attaches that gradient.

The sequential solvers: :func:`sequential_solve_bptt` is the oracle (``cell.step`` in a loop,
backprop through time); :func:`sequential_solve` is the fast one users get: the same loop
without autograd (optionally ``torch.compile``-d in unrolled chunks, :mod:`liquidssm.compiled`),
and the exact gradient of the loop attached by the same adjoint scan — at the exact solution the
implicit gradient *is* backprop through time, without ``T`` recorded steps.

Shapes: inputs ``u`` (B, T, H) (any leading batch axes), states (B, T, D), ``x0`` (B, D).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, TypeVar

import torch
from torch.autograd.function import once_differentiable

from liquidssm._checks import as_tensor, as_tensors, check_choice, check_finite, check_int
from liquidssm.compiled import call_compiled, compile_enabled, transforms_active
from liquidssm.scan import SCAN_METHODS, _fold_x0, blelloch_core, linear_scan

__all__ = [
    "checked_initial_state",
    "sequential_rollout",
    "DiagonalCell",
    "NewtonResult",
    "NewtonStep",
    "NonConvergenceWarning",
    "NewtonConvergenceError",
    "newton_step",
    "newton_iterate",
    "implicit_gradient_step",
    "newton_solve",
    "sequential_solve",
    "sequential_solve_bptt",
    "sequential_states",
    "default_tol",
]


CellT = TypeVar("CellT", bound=torch.nn.Module)


class DiagonalCell(Protocol):
    """What the solver needs from a cell (e.g. :class:`liquidssm.lrc.LrcSSMCell`)."""

    D: int

    @property
    def state_dtype(self) -> torch.dtype: ...

    def input_terms(self, u: torch.Tensor) -> tuple[torch.Tensor, ...]: ...

    def step(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> torch.Tensor: ...

    def jacobian_diag(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> torch.Tensor: ...

    def step_and_jacobian(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]
                          ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def initial_state(self, u: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor: ...

    def rollout(self, u: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor: ...


def checked_initial_state(cell: DiagonalCell, u: torch.Tensor, x0: object | None = None, *,
                          allow_complex: bool = False) -> torch.Tensor:
    """``x0`` (B, D) of a diagonal cell for inputs ``u`` (B, T, H), validated; zeros when ``None``.

    Shared by every cell of the :class:`DiagonalCell` contract (LrcSSM and the App. D cells).
    """
    batch = u.shape[:-2]
    if x0 is None:
        return torch.zeros(*batch, cell.D, dtype=cell.state_dtype, device=u.device)
    x0 = as_tensor(x0, "x0", allow_complex=allow_complex)
    if tuple(x0.shape) != (*batch, cell.D):
        raise ValueError(f"x0: expected shape {(*batch, cell.D)} (batch, D), got {tuple(x0.shape)}")
    check_finite(x0, "x0")
    return x0.to(cell.state_dtype)


def scaled_copy(cell: CellT, factor: float) -> CellT:
    """A deep copy of ``cell`` with every parameter multiplied by ``factor`` (probes harder dynamics).

    Behind ``LrcSSMCell.scaled`` and ``GatedSSMCell.scaled``; chapters lrcssm/03 and lrcssm/05.
    """
    other = copy.deepcopy(cell)
    with torch.no_grad():
        for p in other.parameters():  # type: ignore[attr-defined]
            p.mul_(factor)
    return other


def sequential_rollout(cell: DiagonalCell, u: object, x0: object | None = None,
                       terms: type | None = None) -> torch.Tensor:
    """The oracle of every diagonal cell: ``cell.step`` in a loop over time; (B, T, H) -> (B, T, D).

    ``terms`` rebuilds one step's input terms (the cell's NamedTuple) from the unbound tensors;
    by default the type of ``cell.input_terms(u)``.
    Iterating with ``unbind`` (not indexing) keeps the backward linear in ``T``: it gathers the
    per-step gradients in one stack instead of materialising a (B, T, D) gradient per step.
    """
    u = as_tensor(u, "u")
    if u.ndim < 2:
        raise ValueError(f"u: expected a (..., T, H) tensor, got shape {tuple(u.shape)}")
    check_finite(u, "u")
    x = cell.initial_state(u, x0)
    xs = []
    pre = cell.input_terms(u)
    make = type(pre) if terms is None else terms
    for pre_t in zip(*(p.unbind(-2) for p in pre)):
        x = cell.step(x, make(*pre_t))
        xs.append(x)
    return torch.stack(xs, dim=-2)


class NonConvergenceWarning(RuntimeWarning):
    """Newton did not reach the tolerance within the iteration cap."""


class NewtonConvergenceError(RuntimeError):
    """Raised instead of :class:`NonConvergenceWarning` when ``strict=True``."""


@dataclass
class NewtonResult:
    """Outcome of :func:`newton_solve`.

    ``x`` (B, T, D): the states (differentiable by implicit differentiation);
    ``iterations`` (B,): Newton iterations (= scans) used by each sequence;
    ``converged`` (B,): whether each sequence met the tolerance (or finished the T exact steps);
    ``errors`` (K, B): ℓ∞ size of each iteration's update per sequence (0 after it converged);
    ``tol``, ``max_iter``: the settings used; ``sanitized``: True if the NaN/overflow guard fired.
    """

    x: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    errors: torch.Tensor
    tol: float
    max_iter: int
    sanitized: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def all_converged(self) -> bool:
        """True when every sequence converged."""
        return bool(self.converged.all())


def default_tol(dtype: torch.dtype) -> float:
    """ℓ∞ stopping tolerance used by the released code: 1e-4 for float32, 1e-7 for float64."""
    return 1e-7 if dtype in (torch.float64, torch.complex128) else 1e-4


def _shift(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """``[x0, x_0, ..., x_{T-2}]``: the previous state of every step. (B, T, D) -> (B, T, D)."""
    return torch.cat([x0.unsqueeze(-2), x[..., :-1, :]], dim=-2)


def _sanitize(x: torch.Tensor, clip: float) -> tuple[torch.Tensor, bool]:
    """Replace NaN by 0 and clip to ±clip (real and imaginary parts separately)."""
    if x.is_complex():
        re, fired_re = _sanitize(x.real, clip)
        im, fired_im = _sanitize(x.imag, clip)
        return torch.complex(re, im), fired_re or fired_im
    if x.numel() == 0:
        return x, False
    lo, hi = torch.aminmax(x)  # one pass, no |x| temporary; NaN compares False
    if bool(hi <= clip) and bool(lo >= -clip):
        return x, False
    return torch.nan_to_num(x, nan=0.0, posinf=clip, neginf=-clip).clamp(-clip, clip), True


def _check_u(cell: DiagonalCell, u: object) -> torch.Tensor:
    u_t = as_tensor(u, "u")
    if u_t.ndim < 2:
        raise ValueError(f"u: expected a (B, T, H) tensor, got shape {tuple(u_t.shape)}")
    if u_t.shape[-2] == 0:
        raise ValueError(f"u: expected at least one time step, got shape {tuple(u_t.shape)}")
    check_finite(u_t, "u")
    return u_t


def sequential_solve_bptt(cell: DiagonalCell, u: object, x0: torch.Tensor | None = None) -> torch.Tensor:
    """The oracle: ``cell.step`` in a loop, backprop through time. ``u`` (B, T, H), ``x0`` (B, D) -> (B, T, D).

    LrcSSM Eq. (7)/(11) step by step; chapter lrcssm/03_newton_solver. Every fast solver
    (:func:`sequential_solve`, :func:`newton_solve`) is tested against it in float64.
    """
    return cell.rollout(_check_u(cell, u), x0)


def _rollout_chunk(cell: DiagonalCell, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``k`` steps of the recurrence from ``x`` (B, D) over input terms ``pre`` (B, k, D) -> (B, k, D).

    The unit :func:`sequential_states` compiles (the loop is unrolled; every op is element-wise
    per ``(b, d)``, so inductor fuses the chunk into one kernel).
    """
    terms = type(pre)
    xs = []
    for t in range(pre[0].shape[-2]):
        x = cell.step(x, terms(*(p[..., t, :] for p in pre)))
        xs.append(x)
    return torch.stack(xs, dim=-2)


def sequential_states(cell: DiagonalCell, pre: tuple[torch.Tensor, ...], x0: torch.Tensor, *,
                      compile: bool = False, chunk: int = 32) -> torch.Tensor:
    """The states ``x_t = f(x_{t-1}, u_t)`` by the loop, without autograd: ``pre`` (B, T, D), ``x0`` (B, D) -> (B, T, D).

    LrcSSM Eq. (11); chapter lrcssm/03_newton_solver. Runs under ``torch.no_grad`` (the cell's
    in-place fused step). ``compile=True`` runs ``chunk`` unrolled steps per
    ``torch.compile``-d call (:func:`liquidssm.compiled.call_compiled`; the input terms are
    padded with zeros to a whole number of chunks, so one compilation serves every ``T``); if
    compiling fails it warns once and runs eager. Values equal :func:`sequential_solve_bptt`'s
    to rounding (compiled code may reassociate).
    """
    check_int(chunk, "chunk", minimum=1)
    x0 = as_tensor(x0, "x0", allow_complex=True)
    T = pre[0].shape[-2]
    with torch.no_grad():
        if compile_enabled(compile) and not transforms_active():
            n = -(-T // chunk)
            # chunk-major (n, ..., chunk, D), contiguous: every chunk has the same shape and strides
            # (one compilation for every T); zero input terms pad the last chunk, its extra steps dropped
            pre = type(pre)(*(torch.nn.functional.pad(p, (0, 0, 0, n * chunk - T))
                              .unflatten(-2, (n, chunk)).movedim(-3, 0).contiguous() for p in pre))
            x, outs = x0.contiguous(), []
            for i in range(n):
                out = call_compiled("sequential_states", _rollout_chunk, cell, x, type(pre)(*(p[i] for p in pre)))
                x = out[..., -1, :].contiguous()
                outs.append(out)
            return torch.cat(outs, dim=-2)[..., :T, :]
        terms, x, xs = type(pre), x0, []
        for pre_t in zip(*(p.unbind(-2) for p in pre)):
            x = cell.step(x, terms(*pre_t))
            xs.append(x)
        return torch.stack(xs, dim=-2)


def sequential_solve(cell: DiagonalCell, u: object, x0: torch.Tensor | None = None, *,
                     compile: bool = False, chunk: int = 32) -> torch.Tensor:
    """The fast sequential solver: the loop without autograd, the exact BPTT gradient by one adjoint scan.

    LrcSSM Eq. (11) and the implicit gradient of §2.2; chapter lrcssm/03_newton_solver.
    ``u`` (B, T, H), ``x0`` (B, D) (zeros if None) -> states (B, T, D). The states come from
    :func:`sequential_states` (``compile``, ``chunk`` as there); when autograd is on they carry
    the gradient of :func:`implicit_gradient_step` at this exact solution, which equals backprop
    through the loop (:func:`sequential_solve_bptt`, the oracle) up to rounding: both are
    ``(I - J S)^{-1} ∂f`` with ``J`` the Jacobian diagonals along the true trajectory. A cell
    without ``step_and_jacobian`` (the dense :class:`~liquidssm.lrc.LRCCell`), or a call inside
    ``torch.func`` transforms, gets the oracle.
    """
    u_t = _check_u(cell, u)
    if not hasattr(cell, "step_and_jacobian") or transforms_active():
        return cell.rollout(u_t, x0)
    x0_t = cell.initial_state(u_t, x0)
    pre = cell.input_terms(u_t)
    with torch.no_grad():
        x = sequential_states(cell, type(pre)(*(p.detach() for p in pre)), x0_t.detach(),
                              compile=compile, chunk=chunk)
    if torch.is_grad_enabled():
        x = implicit_gradient_step(cell, x, pre, x0_t, compile=compile)
    return x


def _linearization(cell: DiagonalCell, x_prev: torch.Tensor, pre: tuple[torch.Tensor, ...]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(J, f(x_prev) - J x_prev)``: the coefficients of one Newton scan, Eq. (eq-lrc-newton-2); ``J`` constant.

    The unit :func:`newton_step` compiles with ``compile=True``. Shapes (B, T, D).
    """
    fx, J = cell.step_and_jacobian(x_prev, pre)
    J = J.detach()
    return J, torch.addcmul(fx, J, x_prev, value=-1)  # f(S x) - J S x in one pass


def _blelloch_scan(a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """``x_t = a_t x_{t-1} + b_t`` from ``x_{-1} = x0`` by :func:`~liquidssm.scan.blelloch_core` on the time-major layout.

    What ``linear_scan(a, b, x0, dim=-2, method="blelloch")`` computes (the same operations),
    written as one function for ``compile=True`` to compile: inductor fuses each level's
    slicing, combining and interleaving (and writes ``x`` contiguous). Shapes: ``a``, ``b``
    (..., T, D), ``x0`` (..., D).
    """
    b = _fold_x0(a, b, x0, -2)
    return blelloch_core(a.movedim(-2, 0), b.movedim(-2, 0), 0).movedim(0, -2).contiguous()


class NewtonStep(NamedTuple):
    """Outcome of :func:`newton_step`: the next iterate ``x`` (B, T, D) and whether the guard fired."""

    x: torch.Tensor
    sanitized: bool


def newton_step(
    cell: DiagonalCell,
    x: torch.Tensor,
    pre: tuple[torch.Tensor, ...],
    x0: torch.Tensor,
    *,
    scan_method: str = "blelloch",
    clip: float | None = None,
    compile: bool = False,
) -> NewtonStep:
    """One Newton step ``x^(k+1) = scan(J, f(S x^(k)) - J S x^(k), x0)``, LrcSSM Algorithm 1.

    Chapter lrcssm/03_newton_solver, Eq. (eq-lrc-newton-2). ``S`` shifts by one step (``x0`` in
    front), ``J = diag ∂f/∂x`` at ``S x^(k)``; the linear recurrence is one
    :func:`~liquidssm.scan.linear_scan`. The iterate ``x^(k)`` and ``J`` enter as constants
    (detached): the step is differentiable only through ``f`` (the cell's parameters and ``pre``)
    and ``x0``, which at the fixed point gives the implicit gradient (:func:`implicit_gradient_step`).
    ``clip``: if given, NaN is replaced by 0 and ``J``, the scan input and the new iterate are
    clipped to ``±clip`` (the released code's guard); ``sanitized`` says whether it fired.
    ``compile=True`` (without autograd) evaluates ``J`` and the scan input by one
    ``torch.compile``-d kernel (:func:`_linearization`; eager, with one warning, if compiling fails)
    and, with ``scan_method="blelloch"``, the scan by a compiled :func:`_blelloch_scan`.

    Shapes: ``x`` (B, T, D), ``pre`` the cell's input terms (B, T, D), ``x0`` (B, D).
    """
    x, x0 = as_tensors(("x", x), ("x0", x0))
    x_prev = _shift(x.detach(), x0.detach())
    compiled = compile_enabled(compile) and not torch.is_grad_enabled() and not transforms_active()
    if compiled:
        J, c = call_compiled("newton_linearization", _linearization, cell, x_prev, pre)
    else:
        J, c = _linearization(cell, x_prev, pre)

    def scan(J: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if compiled and scan_method == "blelloch" and not J.is_complex() and compile_enabled(compile):
            return call_compiled("newton_scan", _blelloch_scan, J, c, x0)
        return linear_scan(J, c, x0, dim=-2, method=scan_method, check_inputs=False)

    if clip is None:
        return NewtonStep(scan(J, c), False)
    J, fired_j = _sanitize(J, clip)
    c, fired_c = _sanitize(c, clip)
    x_next = scan(J, c)
    x_next, fired_x = _sanitize(x_next, clip)
    return NewtonStep(x_next, fired_j or fired_c or fired_x)


def _update_size(x_new: torch.Tensor, x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """ℓ∞ size of the update per sequence, float64, ``inf`` if not finite, 0 once finished. -> (B,)."""
    d = torch.sub(x_new, x)
    err = (d.abs() if d.is_complex() else d.abs_()).amax(dim=(-2, -1)).to(torch.float64)  # (B,)
    return err.nan_to_num_(nan=float("inf"), posinf=float("inf")).masked_fill_(~active, 0.0)


def newton_iterate(
    cell: DiagonalCell,
    pre: tuple[torch.Tensor, ...],
    x0: torch.Tensor,
    *,
    tol: float,
    max_iter: int,
    scan_method: str = "blelloch",
    clip: float = 1e8,
    compile: bool = False,
) -> NewtonResult:
    """The loop of LrcSSM Algorithm 1: :func:`newton_step` from the zero guess until each sequence has converged.

    Chapter lrcssm/03_newton_solver. A sequence stops when the ℓ∞ size of its update is
    ``<= tol``; finished sequences are frozen while the others continue, and every iteration's
    update sizes are recorded. After ``T`` iterations with finite, unguarded values a sequence
    counts as converged (finite termination). No validation and no gradient: call it under
    ``torch.no_grad()`` (as :func:`newton_solve` does).

    Shapes: ``pre`` the cell's input terms (B, T, D), ``x0`` (B, D) -> ``NewtonResult.x`` (B, T, D).
    """
    x0 = as_tensor(x0, "x0", allow_complex=True)
    batch, T = x0.shape[:-1], pre[0].shape[-2]
    x = torch.zeros(*batch, T, cell.D, dtype=cell.state_dtype, device=x0.device)
    iterations = torch.zeros(batch, dtype=torch.long, device=x0.device)
    active = torch.ones(batch, dtype=torch.bool, device=x0.device)
    errors: list[torch.Tensor] = []
    sanitized = False
    for _ in range(max_iter):
        x_new, fired = newton_step(cell, x, pre, x0, scan_method=scan_method, clip=clip, compile=compile)
        sanitized = sanitized or fired
        err = _update_size(x_new, x, active)
        errors.append(err)
        all_active = bool(active.all())
        x = x_new if all_active else torch.where(active[..., None, None], x_new, x)  # freeze finished ones
        iterations = iterations + active.long()
        active = active & ~(err <= tol)
        if not bool(active.any()):
            break
    # finite termination: T iterations from the zero guess reproduce the loop exactly (in exact arithmetic)
    finished = iterations >= T
    if bool(finished.any()):
        finished = finished & torch.isfinite(x).flatten(start_dim=-2).all(-1) & (not sanitized)
    result = NewtonResult(
        x=x,
        iterations=iterations,
        converged=~active | finished,
        errors=torch.stack(errors) if errors else torch.zeros(0, *batch, dtype=torch.float64),
        tol=float(tol),
        max_iter=max_iter,
        sanitized=sanitized,
    )
    if sanitized:
        result.notes.append(f"NaN/overflow guard fired (values cleaned, clipped to ±{clip:g})")
    return result


def implicit_gradient_step(cell: DiagonalCell, x_star: torch.Tensor, pre: tuple[torch.Tensor, ...],
                           x0: torch.Tensor, *, scan_method: str = "blelloch",
                           compile: bool = False) -> torch.Tensor:
    """``x*`` carrying the implicit-function gradient ``(I - J S)^{-1} ∂f``, LrcSSM §2.2 (as ``elk/algs/deer.py`` of MoniFarsang/LrcSSM@5581972 differentiates at the fixed point).

    Chapter lrcssm/03_newton_solver, Eq. (eq-lrc-newton-3). One :func:`newton_step` from the
    fixed point ``x*`` (iterate and Jacobian constant): its derivative is ``(I - J S)^{-1}``
    applied to ``∂f/∂θ`` (and ``J_0`` for ``x0``); backprop goes through one scan and one cell
    evaluation, not the iterations; that scan is the adjoint of :class:`_AdjointScan` (inside
    ``torch.func`` transforms: autograd through :func:`newton_step` with ``scan_method``).
    ``compile=True`` computes ``J`` by a compiled kernel; for a cell with a closed-form step
    backward (``cell.vjp_leaves()`` not None, e.g. the plain real LrcSSM cell) the whole backward
    is compiled too (:class:`_CompiledAdjoint`), else the step runs eager with autograd. The returned
    value equals ``x*`` exactly; only the gradient comes from the step. Shapes: ``x_star`` (B, T, D), ``pre`` (B, T, D), ``x0`` (B, D).
    """
    x_star, x0 = as_tensors(("x_star", x_star), ("x0", x0))
    x_star = x_star.detach()
    if transforms_active():  # torch.func / forward AD: differentiate through the scan's own ops
        y = newton_step(cell, x_star, pre, x0, scan_method=scan_method).x
        return y - y.detach() + x_star if y.requires_grad else x_star
    leaves = getattr(cell, "vjp_leaves", lambda: None)() if compile_enabled(compile) else None
    if leaves is not None:  # compiled: J by one kernel now, the whole backward by compiled kernels
        if not (torch.is_grad_enabled() and any(t.requires_grad for t in (x0, *pre, *leaves))):
            return x_star
        with torch.no_grad():
            a_rev, J0 = call_compiled("newton_adjoint_coefficients", _adjoint_coefficients, cell, x_star,
                                      x0.detach(), type(pre)(*(p.detach() for p in pre)))
        return _CompiledAdjoint.apply(cell, type(pre), len(pre), x_star, x0, a_rev, J0, *pre, *leaves)
    x_prev = _shift(x_star, x0.detach())
    if compile_enabled(compile):
        fx = cell.step(x_prev, pre)
        with torch.no_grad():
            J = call_compiled("newton_linearization", _linearization, cell, x_prev,
                              type(pre)(*(p.detach() for p in pre)))[0]
    else:
        fx, J = cell.step_and_jacobian(x_prev, pre)
    if not (fx.requires_grad or x0.requires_grad):
        return x_star
    return _AdjointScan.apply(fx, x0, J.detach(), x_star)


class _AdjointScan(torch.autograd.Function):
    """Value ``x*``; gradient of ``y = scan(J, f - J S x*, x0)`` at its fixed point ``y = x*``, LrcSSM §2.2.

    Chapter lrcssm/03_newton_solver, Eq. (eq-lrc-newton-3). With ``G = ∂L/∂y`` the adjoint is the
    *reverse* linear recurrence ``λ_t = G_t + conj(J_{t+1}) λ_t+1`` (``λ_{T-1} = G_{T-1}``), one
    scan without autograd; then ``∂L/∂f_t = λ_t`` and ``∂L/∂x0 = conj(J_0) λ_0``. Equal to
    backprop through :func:`newton_step`'s scan, without recording the scan.
    Shapes: ``fx``, ``J``, ``x_star`` (B, T, D); ``x0`` (B, D).
    """

    @staticmethod
    def forward(ctx, fx, x0, J, x_star):  # noqa: D102
        ctx.save_for_backward(J)
        return x_star.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, G):  # noqa: D102
        (J,) = ctx.saved_tensors
        Jc = J.conj() if J.is_complex() else J
        lam_rev = blelloch_core(_time_reversed(Jc, shift=1), _time_reversed(G), 0)  # λ_{T-1-s}
        g_x0 = Jc[..., 0, :] * lam_rev[-1] if ctx.needs_input_grad[1] else None
        return lam_rev.flip(0).movedim(0, -2), g_x0, None, None


def _time_reversed(G: torch.Tensor, shift: int = 0) -> torch.Tensor:
    """``G`` (..., T, D) -> (T, ..., D) time-major, reversed and shifted: ``out[s] = G[..., T-1-s+shift, :]``.

    Zero where that index is ``>= T`` (the first ``shift`` rows). One contiguous copy: the layout
    of the reverse (adjoint) scan, ``shift=1`` giving its coefficients ``J_{t+1}``.
    """
    T = G.shape[-2]
    out = G.new_empty((T, *G.shape[:-2], G.shape[-1]))
    out[:shift].zero_()
    idx = torch.arange(T - 1, shift - 1, -1, device=G.device)
    torch.index_select(G.movedim(-2, 0), 0, idx, out=out[shift:])
    return out


def _adjoint_coefficients(cell: DiagonalCell, x_star: torch.Tensor, x0: torch.Tensor,
                          pre: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The adjoint's coefficients at the solution, Eq. (eq-lrc-newton-3): ``(a, J_0)``, ``a_s = J_{T-s}`` (``a_0 = 0``).

    ``J_t = diag ∂f/∂x (x*_{t-1}, u_t)``; ``a`` (..., T, D) is ``J_{t+1}`` time-reversed (the
    reverse scan as a forward one, in the layout of :func:`_blelloch_scan`'s forward calls, so
    its compiled kernel serves both), written by the one compiled kernel that evaluates ``J``;
    ``J_0`` (..., D) gives ``∂L/∂x0``. Without autograd.
    """
    J = cell.step_and_jacobian(_shift(x_star, x0), pre)[1]
    a = torch.cat([J[..., 1:, :], torch.zeros_like(J[..., :1, :])], dim=-2)  # J_{t+1}, 0 at the end
    return a.flip(-2), J[..., 0, :].clone()


def _implicit_vjp(cell: DiagonalCell, x_star: torch.Tensor, x0: torch.Tensor, pre: tuple[torch.Tensor, ...],
                  lam_rev: torch.Tensor, J0: torch.Tensor, need: tuple[bool, ...]
                  ) -> tuple[torch.Tensor | None, ...]:
    """``(∂L/∂x0, ∂L/∂pre..., ∂L/∂leaves...)`` from the adjoint ``λ`` (time-reversed: ``lam_rev`` (..., T, D)).

    ``∂L/∂x0 = J_0 λ_0``; ``∂L/∂f_t = λ_t`` pulled back through one cell step at ``x*_{t-1}``
    (``cell.step_vjp``). The unit :class:`_CompiledAdjoint` compiles: the shift, the reversal of
    ``λ`` and the step's backward with its sums over batch and time fuse into a few loops.
    ``need[0]`` is for ``x0``, the rest for ``cell.step_vjp``; unneeded gradients are None.
    """
    g_x0 = J0 * lam_rev[..., -1, :] if need[0] else None
    if not any(need[1:]):
        return (g_x0, *(None,) * len(need[1:]))
    return (g_x0, *cell.step_vjp(_shift(x_star, x0), pre, lam_rev.flip(-2), need[1:]))


class _CompiledAdjoint(torch.autograd.Function):
    """Value ``x*``; the implicit gradient of :class:`_AdjointScan` with the cell's step backward compiled.

    Chapter lrcssm/03_newton_solver, Eq. (eq-lrc-newton-3). Backward: the reverse scan for ``λ``
    as the compiled forward scan :func:`_blelloch_scan` of the time-reversed coefficients of
    :func:`_adjoint_coefficients` and ``G``, then one compiled :func:`_implicit_vjp`
    (``∂L/∂x0 = J_0 λ_0`` and ``∂L/∂(pre, θ)`` by the cell's closed-form step backward);
    nothing of the step is recorded in the forward. ``call_compiled`` falls back to the same
    functions, eager, if compiling fails. Inputs after ``J0``: the ``n_pre`` input terms (rebuilt
    as ``pre_type``), then ``cell.vjp_leaves()``.
    Shapes: ``x_star``, ``a_rev`` (B, T, D), ``x0``, ``J0`` (B, D).
    """

    @staticmethod
    def forward(ctx, cell, pre_type, n_pre, x_star, x0, a_rev, J0, *inputs):  # noqa: D102
        ctx.cell, ctx.pre_type, ctx.n_pre = cell, pre_type, n_pre
        ctx.save_for_backward(x_star, x0, a_rev, J0, *inputs)
        return x_star.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, G):  # noqa: D102
        x_star, x0, a_rev, J0, *inputs = ctx.saved_tensors
        x0 = x0.detach()
        pre = ctx.pre_type(*inputs[:ctx.n_pre])
        need = (ctx.needs_input_grad[4], *ctx.needs_input_grad[7:])
        # λ_t = G_t + J_{t+1} λ_{t+1}: the forward scan of the time-reversed sequences (same compiled kernel)
        lam_rev = call_compiled("newton_scan", _blelloch_scan, a_rev, G.contiguous().flip(-2),
                                torch.zeros_like(J0))
        grads = call_compiled("newton_implicit_vjp", _implicit_vjp, ctx.cell, x_star, x0, pre, lam_rev, J0, need)
        return (None, None, None, None, grads[0], None, None, *grads[1:])


def _check_tol(tol: float | None, dtype: torch.dtype) -> float:
    if tol is None:
        return default_tol(dtype)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0 or tol != tol:
        raise ValueError(f"tol: expected a float > 0, got {tol!r}")
    return tol


def _report(result: NewtonResult, T: int, strict: bool) -> None:
    """Warn (or raise with ``strict``) when some sequence did not converge."""
    if result.all_converged:
        return
    n_bad = int((~result.converged).sum())
    last = float(result.errors[-1].max()) if len(result.errors) else float("nan")
    msg = (f"Newton solver: {n_bad} of {result.converged.numel()} sequences did not converge within "
           f"max_iter={result.max_iter} (last ℓ∞ update {last:.3g} > tol={result.tol:g}, T={T})")
    if strict:
        raise NewtonConvergenceError(msg)
    warnings.warn(msg, NonConvergenceWarning, stacklevel=3)


def newton_solve(
    cell: DiagonalCell,
    u: object,
    x0: torch.Tensor | None = None,
    *,
    tol: float | None = None,
    max_iter: int | None = None,
    scan_method: str = "blelloch",
    strict: bool = False,
    clip: float = 1e8,
    implicit_grad: bool = True,
    compile: bool = False,
) -> NewtonResult:
    """Solve the cell's recurrence in parallel by Newton iterations with the exact diagonal Jacobian.

    LrcSSM Algorithm 1 (quasi = exact for a diagonal Jacobian); chapter lrcssm/03_newton_solver.

    ``u`` (B, T, H) inputs; ``x0`` (B, D) initial state (zeros if None). Validates the inputs,
    runs :func:`newton_iterate` without autograd and attaches the implicit gradient with
    :func:`implicit_gradient_step`. Stopping when the ℓ∞ update ``max_{t,d} |x^(k+1) - x^(k)|``
    of a sequence is ``<= tol`` (default :func:`default_tol`); ``max_iter`` defaults to ``T`` (in
    exact arithmetic ``T`` iterations reproduce the sequential loop exactly, so reaching ``T``
    with finite values also counts as converged). Iterates are NaN-cleaned and clipped to
    ``±clip``; a sequence that did not converge is reported in ``converged`` and by a
    :class:`NonConvergenceWarning` (or :class:`NewtonConvergenceError` with ``strict=True``) —
    never by a silent NaN. ``compile=True`` compiles each iteration's cell evaluation and scan
    (:func:`newton_step`) and the implicit gradient (:func:`implicit_gradient_step`; opt-in: the
    first call per shape compiles for seconds).

    Returns a :class:`NewtonResult` whose ``x`` (B, T, D) carries the implicit gradient when
    autograd is on (set ``implicit_grad=False`` to return a detached solution).
    """
    u_t = _check_u(cell, u)
    check_choice(scan_method, "scan_method", SCAN_METHODS)
    T = u_t.shape[-2]
    tol = _check_tol(tol, cell.state_dtype)
    max_iter = T if max_iter is None else check_int(max_iter, "max_iter", minimum=1)
    x0_t = cell.initial_state(u_t, x0)
    pre = cell.input_terms(u_t)
    with torch.no_grad():
        pre_d = type(pre)(*(p.detach() for p in pre))
        result = newton_iterate(cell, pre_d, x0_t.detach(), tol=tol, max_iter=max_iter,
                                scan_method=scan_method, clip=clip, compile=compile)
    _report(result, T, strict)
    if implicit_grad and torch.is_grad_enabled():
        result.x = implicit_gradient_step(cell, result.x, pre, x0_t, scan_method=scan_method, compile=compile)
    return result

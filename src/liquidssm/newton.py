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
implicit-function-theorem gradient. :func:`newton_solve` validates, iterates and attaches that
gradient.

Shapes: inputs ``u`` (B, T, H) (any leading batch axes), states (B, T, D), ``x0`` (B, D).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import torch

from liquidssm._checks import as_tensor, check_choice, check_finite, check_int
from liquidssm.scan import SCAN_METHODS, linear_scan

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
    "default_tol",
]


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


def sequential_rollout(cell: DiagonalCell, u: object, x0: object | None = None,
                       terms: type = tuple) -> torch.Tensor:
    """The oracle of every diagonal cell: ``cell.step`` in a loop over time; (B, T, H) -> (B, T, D).

    ``terms`` rebuilds one step's input terms (the cell's NamedTuple) from the unbound tensors.
    Iterating with ``unbind`` (not indexing) keeps the backward linear in ``T``: it gathers the
    per-step gradients in one stack instead of materialising a (B, T, D) gradient per step.
    """
    u = as_tensor(u, "u")
    if u.ndim < 2:
        raise ValueError(f"u: expected a (..., T, H) tensor, got shape {tuple(u.shape)}")
    check_finite(u, "u")
    x = cell.initial_state(u, x0)
    xs = []
    for pre_t in zip(*(p.unbind(-2) for p in cell.input_terms(u))):
        x = cell.step(x, terms(*pre_t))
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
    if x.numel() == 0 or bool(x.abs().amax() <= clip):  # one reduction; NaN compares False
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


def sequential_solve(cell: DiagonalCell, u: object, x0: torch.Tensor | None = None) -> torch.Tensor:
    """The oracle: evaluate the cell step by step. ``u`` (B, T, H), ``x0`` (B, D) -> (B, T, D)."""
    return cell.rollout(_check_u(cell, u), x0)


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
) -> NewtonStep:
    """One Newton step ``x^(k+1) = scan(J, f(S x^(k)) - J S x^(k), x0)``, LrcSSM Algorithm 1.

    Chapter lrcssm/03_newton_solver, Eq. (eq-lrc-newton-2). ``S`` shifts by one step (``x0`` in
    front), ``J = diag ∂f/∂x`` at ``S x^(k)``; the linear recurrence is one
    :func:`~liquidssm.scan.linear_scan`. The iterate ``x^(k)`` and ``J`` enter as constants
    (detached): the step is differentiable only through ``f`` (the cell's parameters and ``pre``)
    and ``x0``, which at the fixed point gives the implicit gradient (:func:`implicit_gradient_step`).
    ``clip``: if given, NaN is replaced by 0 and ``J``, the scan input and the new iterate are
    clipped to ``±clip`` (the released code's guard); ``sanitized`` says whether it fired.

    Shapes: ``x`` (B, T, D), ``pre`` the cell's input terms (B, T, D), ``x0`` (B, D).
    """
    x_prev = _shift(x.detach(), x0.detach())
    fx, J = cell.step_and_jacobian(x_prev, pre)
    J = J.detach()
    c = fx - J * x_prev
    if clip is None:
        return NewtonStep(linear_scan(J, c, x0, dim=-2, method=scan_method, check_inputs=False), False)
    J, fired_j = _sanitize(J, clip)
    c, fired_c = _sanitize(c, clip)
    x_next = linear_scan(J, c, x0, dim=-2, method=scan_method, check_inputs=False)
    x_next, fired_x = _sanitize(x_next, clip)
    return NewtonStep(x_next, fired_j or fired_c or fired_x)


def _update_size(x_new: torch.Tensor, x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """ℓ∞ size of the update per sequence, float64, ``inf`` if not finite, 0 once finished. -> (B,)."""
    err = (x_new - x).abs().amax(dim=(-2, -1)).to(torch.float64)
    err = torch.where(torch.isfinite(err), err, torch.full_like(err, float("inf")))
    return torch.where(active, err, torch.zeros_like(err))


def newton_iterate(
    cell: DiagonalCell,
    pre: tuple[torch.Tensor, ...],
    x0: torch.Tensor,
    *,
    tol: float,
    max_iter: int,
    scan_method: str = "blelloch",
    clip: float = 1e8,
) -> NewtonResult:
    """The loop of LrcSSM Algorithm 1: :func:`newton_step` from the zero guess until each sequence has converged.

    Chapter lrcssm/03_newton_solver. A sequence stops when the ℓ∞ size of its update is
    ``<= tol``; finished sequences are frozen while the others continue, and every iteration's
    update sizes are recorded. After ``T`` iterations with finite, unguarded values a sequence
    counts as converged (finite termination). No validation and no gradient: call it under
    ``torch.no_grad()`` (as :func:`newton_solve` does).

    Shapes: ``pre`` the cell's input terms (B, T, D), ``x0`` (B, D) -> ``NewtonResult.x`` (B, T, D).
    """
    batch, T = x0.shape[:-1], pre[0].shape[-2]
    x = torch.zeros(*batch, T, cell.D, dtype=cell.state_dtype, device=x0.device)
    iterations = torch.zeros(batch, dtype=torch.long, device=x0.device)
    active = torch.ones(batch, dtype=torch.bool, device=x0.device)
    errors: list[torch.Tensor] = []
    sanitized = False
    for _ in range(max_iter):
        x_new, fired = newton_step(cell, x, pre, x0, scan_method=scan_method, clip=clip)
        sanitized = sanitized or fired
        err = _update_size(x_new, x, active)
        errors.append(err)
        x = torch.where(active[..., None, None], x_new, x)
        iterations = iterations + active.long()
        active = active & ~(err <= tol)
        if not bool(active.any()):
            break
    # finite termination: T iterations from the zero guess reproduce the loop exactly (in exact arithmetic)
    finished = (iterations >= T) & torch.isfinite(x.abs()).flatten(start_dim=-2).all(-1) & (not sanitized)
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
                           x0: torch.Tensor, *, scan_method: str = "blelloch") -> torch.Tensor:
    """``x*`` carrying the implicit-function gradient ``(I - J S)^{-1} ∂f``, LrcSSM §2.2 (as ``elk/algs/deer.py`` of MoniFarsang/LrcSSM@5581972 differentiates at the fixed point).

    Chapter lrcssm/03_newton_solver, Eq. (eq-lrc-newton-3). One :func:`newton_step` from the
    fixed point ``x*`` (iterate and Jacobian constant): its derivative is ``(I - J S)^{-1}``
    applied to ``∂f/∂θ`` (and ``J_0`` for ``x0``); backprop goes through one scan and one cell
    evaluation, not the iterations. The returned value equals ``x*`` exactly; only the gradient
    comes from the step. Shapes: ``x_star`` (B, T, D), ``pre`` (B, T, D), ``x0`` (B, D).
    """
    y = newton_step(cell, x_star, pre, x0, scan_method=scan_method).x
    x_star = x_star.detach()
    if not y.requires_grad:
        return x_star
    return y - y.detach() + x_star


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
    never by a silent NaN.

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
                                scan_method=scan_method, clip=clip)
    _report(result, T, strict)
    if implicit_grad and torch.is_grad_enabled():
        result.x = implicit_gradient_step(cell, result.x, pre, x0_t, scan_method=scan_method)
    return result

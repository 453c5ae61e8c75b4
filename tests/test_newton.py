"""Tests for liquidssm.newton: parallel Newton == sequential loop (float32/float64, complex, long T),
finite termination, per-sequence iteration counts, implicit gradient == backprop through the loop,
gradcheck, non-convergence reporting and bad inputs; the pieces newton_step (fixed point = the
loop), newton_iterate (the loop of Algorithm 1) and implicit_gradient_step; the compiled path
(compile=True: gradients == the oracle in float64, and its one-warning eager fallback)."""

from __future__ import annotations

import warnings

import pytest
import torch

from liquidssm import compiled
from liquidssm.lrc import LrcSSMCell
from liquidssm.newton import (
    NewtonConvergenceError,
    NewtonStep,
    NonConvergenceWarning,
    default_tol,
    implicit_gradient_step,
    newton_iterate,
    newton_solve,
    newton_step,
    sequential_solve_bptt,
)
from liquidssm.scan import SCAN_METHODS

F64 = torch.float64


def _setup(H=5, D=4, B=2, T=50, dtype=F64, seed=0, scale=1.0, **kw):
    torch.manual_seed(seed)
    cell = LrcSSMCell(H, D, dtype=dtype, **kw)
    if scale != 1.0:
        cell = cell.scaled(scale)
    u = torch.randn(B, T, H, dtype=dtype)
    return cell, u


@pytest.mark.parametrize("kw", [{}, {"variant": "official"}, {"elastance": False}, {"ablation": "A(u)"},
                                {"ablation": "A(u),b(u)"}, {"complex_params": True}, {"scale": 4.0}])
def test_newton_matches_sequential_float64(kw):
    cell, u = _setup(**kw)
    x0 = torch.randn(2, 4, dtype=F64).to(cell.state_dtype)
    with torch.no_grad():
        res = newton_solve(cell, u, x0)
        ref = sequential_solve_bptt(cell, u, x0)
    assert res.all_converged and res.x.dtype == cell.state_dtype
    assert (res.x - ref).abs().max() <= 1e-10
    assert bool((res.iterations <= u.shape[-2]).all())


@pytest.mark.slow
def test_newton_matches_sequential_float32_eigenworms_length():
    cell, u = _setup(H=4, D=4, B=1, T=17984, dtype=torch.float32)
    with torch.no_grad():
        res = newton_solve(cell, u)
        ref = sequential_solve_bptt(cell, u)
    assert res.all_converged
    assert (res.x - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("method", SCAN_METHODS)
def test_every_scan_method_gives_the_same_solution(method):
    cell, u = _setup(T=33)
    with torch.no_grad():
        ref = sequential_solve_bptt(cell, u)
        res = newton_solve(cell, u, scan_method=method)
    assert (res.x - ref).abs().max() <= 1e-10


def test_linear_ablation_needs_one_newton_step():
    cell, u = _setup(ablation="A(u),b(u)")
    with torch.no_grad():
        res = newton_solve(cell, u)
    assert res.errors[1].max() <= 1e-12  # step 1 is exact, step 2 only confirms it
    assert res.iterations.tolist() == [2, 2]


def test_first_k_states_exact_after_k_iterations():
    cell, u = _setup(T=12, scale=8.0)
    ref = sequential_solve_bptt(cell, u).detach()
    for k in (1, 3, 6):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonConvergenceWarning)
            with torch.no_grad():
                res = newton_solve(cell, u, max_iter=k)
        assert (res.x[:, :k] - ref[:, :k]).abs().max() <= 1e-12


def test_finite_termination_within_T():
    cell, u = _setup(T=6, scale=10.0)
    with torch.no_grad():
        res = newton_solve(cell, u, tol=1e-300)  # tolerance never met: T iterations finish it
    assert res.all_converged and res.iterations.tolist() == [6, 6]
    assert (res.x - sequential_solve_bptt(cell, u)).abs().max() <= 1e-12


def test_iterations_are_recorded_per_sequence():
    cell, u = _setup(B=3, T=40, scale=6.0)
    u = u * torch.tensor([0.0, 1.0, 3.0], dtype=F64)[:, None, None]
    with torch.no_grad():
        batched = newton_solve(cell, u)
        alone = [int(newton_solve(cell, u[i:i + 1]).iterations) for i in range(3)]
    assert batched.iterations.tolist() == alone
    assert batched.errors.shape == (max(alone), 3)
    for i, k in enumerate(alone):
        assert batched.errors[k:, i].abs().max() == 0 if k < len(batched.errors) else True
        assert batched.errors[k - 1, i] <= batched.tol


def test_default_tolerances():
    assert default_tol(torch.float32) == 1e-4 and default_tol(F64) == 1e-7


@pytest.mark.parametrize("kw", [{}, {"variant": "official", "scale": 3.0}, {"complex_params": True}])
def test_implicit_gradient_equals_backprop_through_loop(kw):
    cell, u = _setup(T=30, **kw)
    x0 = torch.randn(2, 4, dtype=F64).to(cell.state_dtype).requires_grad_(True)
    u = u.requires_grad_(True)
    w = torch.randn(2, 30, 4, dtype=F64)
    leaves = [u, x0, *cell.parameters()]

    def loss(x):
        return (x.real * w).sum() + x.abs().square().sum()

    g_ref = torch.autograd.grad(loss(sequential_solve_bptt(cell, u, x0)), leaves)
    g_new = torch.autograd.grad(loss(newton_solve(cell, u, x0).x), leaves)
    for a, b in zip(g_new, g_ref):
        assert (a - b).abs().max() <= 1e-6 * max(1.0, float(b.abs().max()))


class _Solve(torch.nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, u, x0):
        return newton_solve(self.cell, u, x0, tol=1e-13).x


def test_gradcheck_tiny():
    cell, u = _setup(H=2, D=2, B=1, T=5)
    x0 = torch.randn(1, 2, dtype=F64)
    solve = _Solve(cell)
    assert torch.autograd.gradcheck(solve, (u.requires_grad_(True), x0.requires_grad_(True)))
    names = ["cell.W_f", "cell.g_max_x", "cell.kappa", "cell.W_eps"]
    params = tuple(dict(solve.named_parameters())[n].detach().clone().requires_grad_(True) for n in names)

    def of_params(*ps):
        return torch.func.functional_call(solve, dict(zip(names, ps)), (u.detach(), x0))

    assert torch.autograd.gradcheck(of_params, params)
    grads = torch.autograd.grad(of_params(*params).sum(), params)
    assert all(float(g.abs().max()) > 1e-6 for g in grads)  # the check above is not vacuous


def test_nonconvergence_is_reported():
    cell, u = _setup(T=200, scale=8.0)
    with pytest.warns(NonConvergenceWarning, match="did not converge within max_iter=2"):
        with torch.no_grad():
            res = newton_solve(cell, u, max_iter=2)
    assert not res.all_converged and res.iterations.tolist() == [2, 2]
    assert bool(torch.isfinite(res.x).all())  # never a silent NaN
    with pytest.raises(NewtonConvergenceError, match="did not converge"):
        newton_solve(cell, u, max_iter=2, strict=True)


def test_overflow_guard_keeps_values_finite():
    cell, u = _setup(T=300, scale=40.0)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with torch.no_grad():
            res = newton_solve(cell, u, max_iter=3)
    assert bool(torch.isfinite(res.x).all())
    assert res.sanitized == bool(res.notes)


def test_newton_bad_inputs():
    cell, u = _setup()
    with pytest.raises(ValueError, match="tol"):
        newton_solve(cell, u, tol=0.0)
    with pytest.raises(ValueError, match="tol"):
        newton_solve(cell, u, tol=-1e-3)
    with pytest.raises(ValueError, match="max_iter"):
        newton_solve(cell, u, max_iter=0)
    with pytest.raises(ValueError, match="finite"):
        newton_solve(cell, torch.full_like(u, float("nan")))
    with pytest.raises(ValueError, match="u: expected last axis H=5"):
        newton_solve(cell, torch.randn(2, 7, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"u: expected a \(B, T, H\)"):
        newton_solve(cell, torch.randn(5, dtype=F64))
    with pytest.raises(ValueError, match="x0: expected shape"):
        newton_solve(cell, u, torch.zeros(3, 4, dtype=F64))
    with pytest.raises(ValueError, match="scan_method"):
        newton_solve(cell, u, scan_method="fast")


# ----------------------------------------------------------------------------------------------
# the pieces: newton_step, newton_iterate, implicit_gradient_step
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{}, {"scale": 6.0}, {"complex_params": True}])
def test_newton_step_fixed_point_is_the_sequential_solution(kw):
    cell, u = _setup(T=40, **kw)
    x0 = torch.randn(2, 4, dtype=F64).to(cell.state_dtype)
    pre = cell.input_terms(u)
    with torch.no_grad():
        ref = sequential_solve_bptt(cell, u, x0)
        step = newton_step(cell, ref, pre, x0)
    assert isinstance(step, NewtonStep) and step.sanitized is False
    assert (step.x - ref).abs().max() <= 1e-12  # the loop's states are a fixed point of the step


def test_newton_step_equation_and_finite_termination():
    cell, u = _setup(T=9, scale=8.0)
    x0 = torch.randn(2, 4, dtype=F64)
    pre = cell.input_terms(u)
    with torch.no_grad():
        x = torch.randn(2, 9, 4, dtype=F64)
        # Eq. (newton-2) written as a sequential loop over t
        x_prev = torch.cat([x0[:, None], x[:, :-1]], dim=1)
        fx, J = cell.step_and_jacobian(x_prev, pre)
        want, y = [], x0
        for t in range(9):
            y = J[:, t] * y + fx[:, t] - J[:, t] * x_prev[:, t]
            want.append(y)
        torch.testing.assert_close(newton_step(cell, x, pre, x0).x, torch.stack(want, dim=1))
        # T steps from any guess give the loop (finite termination)
        for _ in range(9):
            x = newton_step(cell, x, pre, x0).x
        assert (x - sequential_solve_bptt(cell, u, x0)).abs().max() <= 1e-12


def test_newton_step_guard_reports_when_it_fires():
    cell, u = _setup(T=50, scale=40.0)
    x0 = torch.zeros(2, 4, dtype=F64)
    pre = cell.input_terms(u)
    with torch.no_grad():
        x = torch.full((2, 50, 4), 1e6, dtype=F64)
        free = newton_step(cell, x, pre, x0)
        guarded = newton_step(cell, x, pre, x0, clip=1.0)
    assert guarded.sanitized and guarded.x.abs().max() <= 1.0
    assert not free.sanitized and free.x.abs().max() > 1.0


def test_newton_iterate_is_the_solver_loop():
    cell, u = _setup(B=3, T=40, scale=4.0)
    x0 = torch.randn(3, 4, dtype=F64)
    with torch.no_grad():
        it = newton_iterate(cell, cell.input_terms(u), x0, tol=1e-9, max_iter=40)
        solved = newton_solve(cell, u, x0, tol=1e-9)
        ref = sequential_solve_bptt(cell, u, x0)
    assert it.all_converged and torch.equal(it.x, solved.x) and torch.equal(it.errors, solved.errors)
    assert it.iterations.tolist() == solved.iterations.tolist()
    assert (it.x - ref).abs().max() <= 1e-10


def test_implicit_gradient_step_value_and_gradient():
    cell, u = _setup(T=30, scale=3.0)
    x0 = torch.randn(2, 4, dtype=F64, requires_grad=True)
    w = torch.randn(2, 30, 4, dtype=F64)
    params = list(cell.parameters())
    with torch.no_grad():
        x_star = sequential_solve_bptt(cell, u, x0)
    y = implicit_gradient_step(cell, x_star, cell.input_terms(u), x0)
    assert torch.equal(y.detach(), x_star)  # the value is the fixed point, exactly
    g_ift = torch.autograd.grad((y * w).sum(), [x0, *params])
    g_bptt = torch.autograd.grad((sequential_solve_bptt(cell, u, x0) * w).sum(), [x0, *params])
    for a, b in zip(g_ift, g_bptt):
        assert (a - b).abs().max() <= 1e-6 * max(1.0, float(b.abs().max()))
    with torch.no_grad():  # no graph: the fixed point comes back detached
        assert not implicit_gradient_step(cell, x_star, cell.input_terms(u), x0).requires_grad


# ----------------------------------------------------------------------------------------------
# compile=True: the compiled Jacobian and the compiled implicit backward
# ----------------------------------------------------------------------------------------------


def _grads_of(solve, cell, u, x0, w):
    leaves = [u, x0, *cell.parameters()]
    x = solve(cell, u, x0)
    g = torch.autograd.grad(((x * w).real if x.is_complex() else x * w).sum(), leaves, allow_unused=True)
    return x, [torch.zeros_like(p) if gi is None else gi for p, gi in zip(leaves, g)]


@pytest.mark.parametrize("kw", [{}, {"variant": "official", "scale": 3.0}, {"elastance": False},
                                {"ablation": "A(u)"}, {"rho": 0.9}])
def test_compiled_newton_gradients_equal_the_oracle_float64(kw):
    """compile=True (float64 kernels; the plain real cells get the compiled backward, the others
    the compiled Jacobian only): states and gradients w.r.t. u, x0 and every parameter equal
    backprop through the loop. Without a working compiler the eager fallback runs the same test."""
    cell, u = _setup(B=3, T=37, **kw)
    u = u.requires_grad_(True)
    x0 = torch.randn(3, 4, dtype=F64, requires_grad=True)
    w = torch.randn(3, 37, 4, dtype=F64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compiled.CompileFallbackWarning)
        x_c, g_c = _grads_of(lambda c, u, x0: newton_solve(c, u, x0, tol=1e-13, compile=True).x, cell, u, x0, w)
    x_r, g_r = _grads_of(sequential_solve_bptt, cell, u, x0, w)
    assert (x_c - x_r).abs().max() <= 1e-11
    for a, b in zip(g_c, g_r):
        assert (a - b).abs().max() <= 1e-9 * max(1.0, float(b.abs().max()))
    if cell.vjp_leaves() is not None and not compiled._FAILED:  # the compiled backward really ran
        assert compiled.compile_seconds("newton_implicit_vjp")


def test_compiled_implicit_gradient_without_x0_or_input_gradients():
    cell, u = _setup(T=20, variant="official")
    pre = cell.input_terms(u)  # u does not require grad, the parameters do
    with torch.no_grad():
        x_star = sequential_solve_bptt(cell, u)
    x0 = torch.zeros(2, 4, dtype=F64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compiled.CompileFallbackWarning)
        y = implicit_gradient_step(cell, x_star, pre, x0, compile=True)
        with torch.no_grad():
            assert not implicit_gradient_step(cell, x_star, pre, x0, compile=True).requires_grad
    assert torch.equal(y.detach(), x_star)
    g = torch.autograd.grad(y.square().sum(), [cell.W_f, cell.kappa])
    g_ref = torch.autograd.grad(sequential_solve_bptt(cell, u).square().sum(), [cell.W_f, cell.kappa])
    for a, b in zip(g, g_ref):
        assert (a - b).abs().max() <= 1e-6 * max(1.0, float(b.abs().max()))


def test_compiled_newton_falls_back_with_one_warning(broken_compile):
    """torch.compile failing (no C++ compiler, ...): one CompileFallbackWarning, then the same
    gradients eager, for the whole solver and for the compiled implicit backward on its own."""
    cell, u = _setup(T=25, variant="official")
    u = u.requires_grad_(True)
    x0 = torch.randn(2, 4, dtype=F64, requires_grad=True)
    w = torch.randn(2, 25, 4, dtype=F64)
    x_r, g_r = _grads_of(sequential_solve_bptt, cell, u, x0, w)
    with pytest.warns(compiled.CompileFallbackWarning, match="no C\\+\\+ compiler.*compile=False"):
        x_c, g_c = _grads_of(lambda c, u, x0: newton_solve(c, u, x0, tol=1e-13, compile=True).x, cell, u, x0, w)
    assert (x_c - x_r).abs().max() <= 1e-11
    for a, b in zip(g_c, g_r):
        assert (a - b).abs().max() <= 1e-9 * max(1.0, float(b.abs().max()))
    # the compiled implicit backward itself, failing at its first compiled call, runs eager
    broken_compile.setattr(compiled, "_FAILED", {})
    with pytest.warns(compiled.CompileFallbackWarning, match="newton_adjoint_coefficients"):
        y = implicit_gradient_step(cell, x_r.detach(), cell.input_terms(u), x0, compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only: later calls are silent and eager
        g_y = torch.autograd.grad((y * w).sum(), [u, x0, *cell.parameters()])
    for a, b in zip(g_y, g_r):
        assert (a - b).abs().max() <= 1e-9 * max(1.0, float(b.abs().max()))

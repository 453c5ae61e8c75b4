"""Tests for the fast sequential solver (liquidssm.newton.sequential_solve): states and gradients
(inputs, x0, every cell parameter) equal backprop through the oracle loop sequential_solve_bptt in
float64 for every LrcSSM variant and the App. D gated cells; gradcheck on a tiny case; the
compiled path (when a compiler works) and its one-warning eager fallback; the adjoint scan."""

from __future__ import annotations

import warnings

import pytest
import torch

from liquidssm import compiled
from liquidssm.gated import gated_cell
from liquidssm.lrc import LRCCell, LrcSSMCell
from liquidssm.lrcssm import LrcSSMLayer
from liquidssm.newton import (
    implicit_gradient_step,
    newton_step,
    sequential_solve,
    sequential_solve_bptt,
)

F64 = torch.float64
VARIANTS = [{}, {"variant": "official"}, {"elastance": False}, {"ablation": "A(u)"}, {"ablation": "A(u),b(u)"},
            {"rho": 0.9}, {"rho": 0.9, "clamp": "tanh"}, {"complex_params": True}]


def _grads(solve, cell, u, x0, w):
    leaves = [u, x0, *cell.parameters()]
    x = solve(cell, u, x0)
    loss = (x * w).real.sum() if x.is_complex() else (x * w).sum()
    g = torch.autograd.grad(loss, leaves, allow_unused=True)
    return x, [torch.zeros_like(p) if gi is None else gi for p, gi in zip(leaves, g)]


@pytest.mark.parametrize("kw", VARIANTS)
def test_fast_sequential_equals_the_oracle_float64(kw):
    torch.manual_seed(0)
    cell = LrcSSMCell(5, 4, dtype=F64, **kw).scaled(2.0)
    u = torch.randn(3, 40, 5, dtype=F64, requires_grad=True)
    x0 = torch.randn(3, 4, dtype=F64).to(cell.state_dtype).requires_grad_()
    w = torch.randn(3, 40, 4, dtype=F64).to(cell.state_dtype)
    x_fast, g_fast = _grads(sequential_solve, cell, u, x0, w)
    x_ref, g_ref = _grads(sequential_solve_bptt, cell, u, x0, w)
    assert (x_fast - x_ref).abs().max() <= 1e-12
    for a, b in zip(g_fast, g_ref):
        assert (a - b).abs().max() <= 1e-10 * (1 + b.abs().max())


@pytest.mark.parametrize("name", ["mgu", "gru", "lstm"])
def test_fast_sequential_gated_cells(name):
    torch.manual_seed(1)
    cell = gated_cell(name, 3, 4, dtype=F64)
    u = torch.randn(2, 30, 3, dtype=F64, requires_grad=True)
    x0 = torch.randn(2, 4, dtype=F64, requires_grad=True)
    w = torch.randn(2, 30, 4, dtype=F64)
    x_fast, g_fast = _grads(sequential_solve, cell, u, x0, w)
    x_ref, g_ref = _grads(sequential_solve_bptt, cell, u, x0, w)
    assert (x_fast - x_ref).abs().max() <= 1e-12
    for a, b in zip(g_fast, g_ref):
        assert (a - b).abs().max() <= 1e-10 * (1 + b.abs().max())


def test_fast_sequential_gradcheck_tiny():
    torch.manual_seed(2)
    cell = LrcSSMCell(2, 3, dtype=F64)
    u = torch.randn(2, 6, 2, dtype=F64, requires_grad=True)
    x0 = torch.randn(2, 3, dtype=F64, requires_grad=True)
    kappa = cell.kappa
    assert torch.autograd.gradcheck(lambda u, x0, k: sequential_solve(cell, u, x0).sin().sum()
                                   + 0 * k.sum(), (u, x0, kappa))


def test_fast_sequential_no_grad_and_dense_cell_fallback():
    torch.manual_seed(3)
    cell = LrcSSMCell(3, 4)
    u = torch.randn(2, 17, 3)
    with torch.no_grad():
        x = sequential_solve(cell, u)
        ref = sequential_solve_bptt(cell, u)
    assert not x.requires_grad and (x - ref).abs().max() <= 1e-6
    dense = LRCCell(3, 4, dtype=F64)  # dense Jacobian: no step_and_jacobian, the oracle runs
    ud = torch.randn(2, 9, 3, dtype=F64)
    assert torch.equal(sequential_solve(dense, ud), sequential_solve_bptt(dense, ud))


def test_fast_sequential_bad_inputs():
    cell = LrcSSMCell(3, 4)
    with pytest.raises(ValueError, match="u"):
        sequential_solve(cell, torch.randn(2, 0, 3))
    with pytest.raises(ValueError, match="x0"):
        sequential_solve(cell, torch.randn(2, 5, 3), torch.zeros(2, 5))
    with pytest.raises(TypeError, match="compile"):
        sequential_solve(cell, torch.randn(2, 5, 3), compile="yes")
    with pytest.raises(ValueError, match="chunk"):
        sequential_solve(cell, torch.randn(2, 5, 3), chunk=0)


def test_adjoint_scan_equals_autograd_through_the_newton_step():
    torch.manual_seed(4)
    cell = LrcSSMCell(3, 4, dtype=F64)
    u = torch.randn(2, 25, 3, dtype=F64)
    x0 = torch.randn(2, 4, dtype=F64, requires_grad=True)
    x_star = sequential_solve_bptt(cell, u, x0).detach()
    w = torch.randn_like(x_star)
    leaves = [x0, *cell.parameters()]
    y_adj = implicit_gradient_step(cell, x_star, cell.input_terms(u), x0)
    assert torch.equal(y_adj, x_star)
    g_adj = torch.autograd.grad((y_adj * w).sum(), leaves)
    y_ref = newton_step(cell, x_star, cell.input_terms(u), x0, scan_method="sequential").x
    g_ref = torch.autograd.grad((y_ref * w).sum(), leaves)
    for a, b in zip(g_adj, g_ref):
        assert (a - b).abs().max() <= 1e-10 * (1 + b.abs().max())


def test_compile_failure_falls_back_with_one_warning(broken_compile):
    torch.manual_seed(5)
    cell = LrcSSMCell(3, 4, dtype=F64)
    u = torch.randn(2, 10, 3, dtype=F64)
    with pytest.warns(compiled.CompileFallbackWarning, match="no C\\+\\+ compiler.*compile=False"):
        x = sequential_solve(cell, u, compile=True, chunk=4)
    assert (x - sequential_solve_bptt(cell, u)).abs().max() <= 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only: later calls are silent and eager
        sequential_solve(cell, u, compile=True, chunk=4)


def test_compiled_sequential_matches_the_oracle():
    torch.manual_seed(6)
    cell = LrcSSMCell(3, 4, dtype=F64)
    u = torch.randn(2, 21, 3, dtype=F64, requires_grad=True)  # 21 = 2 chunks of 8 + a padded one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", compiled.CompileFallbackWarning)  # no compiler: eager, same test
        x = sequential_solve(cell, u, compile=True, chunk=8)
    ref = sequential_solve_bptt(cell, u)
    assert (x - ref).abs().max() <= 1e-12
    g = torch.autograd.grad(x.sum(), [u, cell.kappa])
    g_ref = torch.autograd.grad(ref.sum(), [u, cell.kappa])
    for a, b in zip(g, g_ref):
        assert (a - b).abs().max() <= 1e-10 * (1 + b.abs().max())


def test_layer_sequential_solver_uses_the_fast_path():
    torch.manual_seed(7)
    layer = LrcSSMLayer(3, 4, solver="sequential", dtype=F64)
    u = torch.randn(2, 12, 3, dtype=F64)
    assert (layer(u) - sequential_solve_bptt(layer.cell, u)).abs().max() <= 1e-12
    with pytest.raises(TypeError, match="compile"):
        LrcSSMLayer(3, 4, compile=1)

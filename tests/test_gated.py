"""Tests for liquidssm.gated (LrcSSM App. D: MguSSM, GruSSM, LstmSSM): each cell's step against the
textbook gated RNN with diagonal recurrent weights (GRU also against torch.nn.GRUCell), the
closed-form Jacobian diagonal and every piece's derivative against autograd (off-diagonals exactly
zero), parallel Newton == sequential loop in float64 and float32, implicit gradient == BPTT,
gradcheck, parameter counts, the LSTM read-out, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from liquidssm.gated import (
    GATED_CELLS,
    GatedSSMCell,
    GruSSMCell,
    LstmSSMCell,
    MguSSMCell,
    gated_cell,
)
from liquidssm.newton import newton_solve, sequential_solve_bptt

F64 = torch.float64


def _cell(name, H=5, D=4, dtype=F64, scale=1.0, seed=0, **kw):
    torch.manual_seed(seed)
    c = gated_cell(name, H, D, dtype=dtype, **kw)
    return c.scaled(scale) if scale != 1.0 else c


# ----------------------------------------------------------------------------------------------
# the step is the gated RNN
# ----------------------------------------------------------------------------------------------


def _textbook_step(c: GatedSSMCell, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The gated RNNs written out from their papers, with U replaced by diag(v) (App. D), Δt = 1."""
    def lin(k, y):
        return u @ getattr(c, f"W_{k}").T + getattr(c, f"v_{k}") * y + getattr(c, f"b_{k}")

    if isinstance(c, MguSSMCell):
        f = torch.sigmoid(lin("f", x))
        h = torch.tanh(lin("c", f * x))
        return (1 - f) * x + f * h
    if isinstance(c, GruSSMCell):
        z, r = torch.sigmoid(lin("z", x)), torch.sigmoid(lin("r", x))
        h = torch.tanh(lin("c", r * x))
        return (1 - z) * x + z * h
    f, i, g = torch.sigmoid(lin("f", x)), torch.sigmoid(lin("i", x)), torch.tanh(lin("g", x))
    return f * x + i * g


@pytest.mark.parametrize("name", GATED_CELLS)
def test_step_is_the_gated_rnn(name):
    c = _cell(name, scale=2.0)
    x, u = torch.randn(3, 4, dtype=F64), torch.randn(3, 5, dtype=F64)
    torch.testing.assert_close(c(x, u), _textbook_step(c, x, u), rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", GATED_CELLS)
def test_euler_step_scales_the_drift(name):
    c1, ch = _cell(name), _cell(name, euler_step=0.3)
    x, u = torch.randn(3, 4, dtype=F64), torch.randn(3, 5, dtype=F64)
    # x + Δt (A x + b) with A x + b = (gated RNN step) - x
    torch.testing.assert_close(ch(x, u), x + 0.3 * (c1(x, u) - x), rtol=0, atol=1e-15)


def test_gru_equals_torch_grucell_with_diagonal_recurrence():
    """torch's GRUCell keeps the state with its z (ours: 1 - z) and computes r ⊙ (U h + b_hn);
    with U = diag(v) and b_hn = 0 that is v ⊙ r ⊙ h, our candidate."""
    c = _cell("gru", H=5, D=4, scale=2.0)
    ref = torch.nn.GRUCell(5, 4, dtype=F64)
    with torch.no_grad():
        ref.weight_ih.copy_(torch.cat([c.W_r, -c.W_z, c.W_c]))
        ref.bias_ih.copy_(torch.cat([c.b_r, -c.b_z, c.b_c]))
        ref.weight_hh.copy_(torch.cat([torch.diag(c.v_r), torch.diag(-c.v_z), torch.diag(c.v_c)]))
        ref.bias_hh.zero_()
    x, u = torch.randn(3, 4, dtype=F64), torch.randn(3, 5, dtype=F64)
    torch.testing.assert_close(c(x, u), ref(u, x), rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# the Jacobian is exactly diagonal, and its closed form is right
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GATED_CELLS)
@pytest.mark.parametrize("scale,euler_step", [(1.0, 1.0), (4.0, 1.0), (2.0, 0.5)])
def test_jacobian_diag_matches_autograd_and_is_diagonal(name, scale, euler_step):
    c = _cell(name, H=6, D=5, scale=scale, euler_step=euler_step)
    u = torch.randn(6, dtype=F64)
    x = 2 * torch.randn(5, dtype=F64)
    pre = c.input_terms(u)
    J = torch.func.jacrev(lambda y: c.step(y, pre))(x).detach()
    diag = torch.diagonal(J)
    assert float((J - torch.diag(diag)).abs().max()) == 0.0  # off-diagonal entries exactly zero
    torch.testing.assert_close(c.jacobian_diag(x, pre).detach(), diag.detach(), rtol=0, atol=1e-14)
    step, jd = c.step_and_jacobian(x, pre)
    torch.testing.assert_close(step, c.step(x, pre), rtol=0, atol=0)
    torch.testing.assert_close(jd, c.jacobian_diag(x, pre), rtol=0, atol=0)


@pytest.mark.parametrize("name", GATED_CELLS)
def test_every_piece_derivative_matches_autograd(name):
    """Gate.dx and Drift.A_x, b_x are d/dx_i of their values (a JVP with an all-ones tangent,
    exact because every piece is element-wise in x)."""
    c = _cell(name, scale=3.0)
    pre = c.input_terms(torch.randn(7, 5, dtype=F64))
    x = torch.randn(7, 4, dtype=F64)
    ones = torch.ones_like(x)
    gates = c.gates(x, pre)
    for k, gate in enumerate(gates):
        _, d = torch.func.jvp(lambda y, k=k: c.gates(y, pre)[k].value, (x,), (ones,))
        torch.testing.assert_close(gate.dx, d, rtol=0, atol=1e-14)
    drift = c.drift(gates)
    _, dA = torch.func.jvp(lambda y: c.drift(c.gates(y, pre)).A, (x,), (ones,))
    _, db = torch.func.jvp(lambda y: c.drift(c.gates(y, pre)).b, (x,), (ones,))
    torch.testing.assert_close(drift.A_x, dA, rtol=0, atol=1e-14)
    torch.testing.assert_close(drift.b_x, db, rtol=0, atol=1e-14)
    # the step is one Euler step of dx/dt = A x + b
    torch.testing.assert_close(c.step(x, pre), x + drift.A * x + drift.b, rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# parallel == sequential, gradients
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GATED_CELLS)
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_newton_equals_sequential_float64(name, scale):
    c = _cell(name, scale=scale)
    u = torch.randn(2, 80, 5, dtype=F64)
    x0 = torch.randn(2, 4, dtype=F64)
    with torch.no_grad():
        res = newton_solve(c, u, x0)
        ref = sequential_solve_bptt(c, u, x0)
    assert res.all_converged and res.x.dtype == F64
    assert float((res.x - ref).abs().max()) <= 1e-12
    assert int(res.iterations.max()) < 80


@pytest.mark.parametrize("name", GATED_CELLS)
def test_newton_equals_sequential_float32_long(name):
    c = _cell(name, H=8, D=8, dtype=torch.float32)
    u = torch.randn(2, 2048, 8)
    with torch.no_grad():
        res = newton_solve(c, u)
        ref = sequential_solve_bptt(c, u)
    assert res.all_converged
    assert float((res.x - ref).abs().max()) <= 1e-5


def test_first_k_states_exact_after_k_iterations():
    import warnings

    from liquidssm.newton import NonConvergenceWarning

    c = _cell("gru", scale=6.0)
    u = torch.randn(1, 30, 5, dtype=F64)
    with torch.no_grad():
        ref = sequential_solve_bptt(c, u)
        for k in (1, 3, 7):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NonConvergenceWarning)
                res = newton_solve(c, u, max_iter=k)
            assert float((res.x[:, :k] - ref[:, :k]).abs().max()) <= 1e-13


@pytest.mark.parametrize("name", GATED_CELLS)
def test_implicit_gradient_equals_bptt(name):
    c = _cell(name, scale=2.0)
    u = torch.randn(2, 60, 5, dtype=F64, requires_grad=True)
    x0 = torch.randn(2, 4, dtype=F64, requires_grad=True)
    w = torch.randn(2, 60, 4, dtype=F64)
    leaves = [u, x0, *c.parameters()]
    g_bptt = torch.autograd.grad((sequential_solve_bptt(c, u, x0) * w).sum(), leaves, allow_unused=True)
    g_ift = torch.autograd.grad((newton_solve(c, u, x0).x * w).sum(), leaves, allow_unused=True)
    for a, b in zip(g_ift, g_bptt, strict=True):
        if b is None:  # LstmSSM's output gate is read-out only: no gradient through the states
            assert a is None and name == "lstm"
            continue
        assert float((a - b).abs().max()) <= 1e-9 * max(1.0, float(b.abs().max()))


@pytest.mark.parametrize("name", GATED_CELLS)
def test_gradcheck_of_the_parallel_solution(name):
    c = _cell(name, H=3, D=2)
    u = torch.randn(1, 6, 3, dtype=F64, requires_grad=True)
    x0 = torch.randn(1, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: newton_solve(c, a, b, tol=1e-13).x, (u, x0))


# ----------------------------------------------------------------------------------------------
# parameters, read-out, bad inputs
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,n_gates", [("mgu", 2), ("gru", 3), ("lstm", 4)])
def test_parameter_count(name, n_gates):
    H, D = 7, 5
    c = _cell(name, H=H, D=D)
    # each gate: W (D, H), v (D,), bias (D,); LstmSSM's fourth is the read-out's output gate
    assert sum(p.numel() for p in c.parameters()) == n_gates * (D * H + 2 * D)
    assert all(-1 / D**0.5 <= float(p.min()) and float(p.max()) <= 1 / D**0.5 for p in c.parameters())


def test_lstm_readout_is_the_peephole_output_gate():
    c = _cell("lstm")
    u = torch.randn(2, 9, 5, dtype=F64)
    x = sequential_solve_bptt(c, u)
    h = c.readout(x, u)
    o = torch.sigmoid(u @ c.W_o.T + c.v_o * x + c.b_o)
    torch.testing.assert_close(h, o * torch.tanh(x), rtol=0, atol=1e-15)
    g = _cell("gru")
    assert g.readout(x, u) is x  # the other cells output their states


def test_bad_inputs_are_named():
    c = _cell("gru")
    with pytest.raises(ValueError, match=r"u: expected last axis H=5"):
        c.input_terms(torch.randn(2, 3, 4, dtype=F64))
    with pytest.raises(TypeError, match="u: expected dtype torch.float64"):
        c.input_terms(torch.randn(2, 3, 5))
    with pytest.raises(TypeError, match="u: expected a real floating dtype"):
        c.input_terms(torch.ones(2, 3, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="u: expected finite values"):
        sequential_solve_bptt(c, torch.full((1, 3, 5), float("nan"), dtype=F64))
    with pytest.raises(ValueError, match="u: expected finite values"):
        newton_solve(c, torch.full((1, 3, 5), float("inf"), dtype=F64))
    with pytest.raises(ValueError, match=r"u: expected a \(B, T, H\) tensor"):
        newton_solve(c, torch.randn(5, dtype=F64))
    with pytest.raises(ValueError, match=r"x0: expected shape \(2, 4\)"):
        newton_solve(c, torch.randn(2, 3, 5, dtype=F64), torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="x0: expected finite values"):
        sequential_solve_bptt(c, torch.randn(2, 3, 5, dtype=F64), torch.full((2, 4), float("nan"), dtype=F64))
    with pytest.raises(ValueError, match="euler_step: expected finite values > 0"):
        MguSSMCell(3, 2, euler_step=0.0)
    with pytest.raises(ValueError, match="H: expected an int >= 1"):
        GruSSMCell(0, 2)
    with pytest.raises(TypeError, match="D: expected an int"):
        LstmSSMCell(3, 2.0)
    with pytest.raises(TypeError, match="dtype: expected torch.float32 or torch.float64"):
        MguSSMCell(3, 2, dtype=torch.complex64)
    with pytest.raises(ValueError, match=r"name: expected one of \['mgu', 'gru', 'lstm'\], got 'lrc'"):
        gated_cell("lrc", 3, 2)

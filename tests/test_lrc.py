"""Tests for liquidssm.lrc: the LrcSSM step against an independent transcription of the released
code, exact diagonality of the Jacobian, the analytic diagonal against autograd, the ablations,
the dense original LRC, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from liquidssm.lrc import ABLATIONS, InputTerms, LRCCell, LrcSSMCell

F64 = torch.float64


def _cell(**kw):
    torch.manual_seed(kw.pop("seed", 0))
    return LrcSSMCell(5, 4, dtype=F64, **kw)


def _one_step_official(cell, x, u):
    """The released cell's update written out directly from reference §1.3 (no shared code)."""
    s_u = torch.sigmoid(cell.sigma_u * (u - cell.mu_u))
    s_x = torch.sigmoid(cell.sigma_x * (x - cell.mu_x))
    f = cell.g_leak + cell.W_f @ s_u + cell.g_max_x * s_x
    z = cell.g_leak + cell.W_z @ s_u + cell.k_max_x * s_x
    a = -torch.sigmoid(f)
    b = cell.e_leak * torch.tanh(z)
    eps = torch.sigmoid(cell.kappa * x + cell.beta) * cell.dt
    return x + eps * (a * x + b)


def test_step_matches_released_formula():
    cell = _cell(variant="official")
    x, u = torch.randn(4, dtype=F64), torch.randn(5, dtype=F64)
    torch.testing.assert_close(cell(x, u), _one_step_official(cell, x, u), rtol=1e-14, atol=1e-14)


def test_paper_elastance_adds_input_term():
    cell = _cell(variant="paper")
    x, u = torch.randn(4, dtype=F64), torch.randn(5, dtype=F64)
    assert (cell(x, u) - _one_step_official(cell, x, u)).abs().max() > 1e-6
    with torch.no_grad():
        cell.W_eps.zero_()
    torch.testing.assert_close(cell(x, u), _one_step_official(cell, x, u), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("ablation", ABLATIONS)
@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("elastance", [True, False])
@pytest.mark.parametrize("scale", [1.0, 8.0])
def test_jacobian_is_diagonal_and_matches_closed_form(ablation, variant, elastance, scale):
    cell = _cell(ablation=ablation, variant=variant, elastance=elastance).scaled(scale)
    x, u = torch.randn(4, dtype=F64) * scale, torch.randn(5, dtype=F64)
    pre = cell.input_terms(u)
    J = torch.autograd.functional.jacobian(lambda z: cell.step(z, pre), x)
    off = J - torch.diag(torch.diagonal(J))
    assert torch.count_nonzero(off) == 0  # exactly zero, not merely small
    torch.testing.assert_close(cell.jacobian_diag(x, pre), torch.diagonal(J), rtol=1e-12, atol=1e-12)
    fx, Jd = cell.step_and_jacobian(x, pre)
    torch.testing.assert_close(fx, cell.step(x, pre))
    torch.testing.assert_close(Jd, torch.diagonal(J), rtol=1e-12, atol=1e-12)


def test_complex_jacobian_diagonal_by_finite_differences():
    cell = _cell(complex_params=True)
    assert cell.state_dtype == torch.complex128
    x = torch.randn(4, dtype=torch.complex128)
    pre = cell.input_terms(torch.randn(5, dtype=F64))
    Jd = cell.jacobian_diag(x, pre)
    h = 1e-6
    for i in range(4):
        for direction in (1.0, 1j):  # holomorphic: same derivative along both directions
            e = torch.zeros(4, dtype=torch.complex128)
            e[i] = h * direction
            col = (cell.step(x + e, pre) - cell.step(x - e, pre)) / (2 * h * direction)
            assert abs(col[i] - Jd[i]) < 1e-8
            others = torch.cat([col[:i], col[i + 1:]])
            assert others.abs().max() == 0


def test_coefficients_reproduce_step_and_frozen_lambda_in_unit_interval():
    cell = _cell()
    x, pre = torch.randn(7, 4, dtype=F64), cell.input_terms(torch.randn(7, 5, dtype=F64))
    lam, beta = cell.coefficients(x, pre)
    torch.testing.assert_close(lam * x + beta, cell.step(x, pre))
    assert bool(((lam > 0) & (lam < 1)).all())  # dt = 1: lambda = 1 - sigma(f) sigma(eps)


def test_stc_has_no_elastance():
    cell = _cell(elastance=False)
    x, pre = torch.randn(4, dtype=F64), cell.input_terms(torch.randn(5, dtype=F64))
    s_x = torch.sigmoid(cell.sigma_x * (x - cell.mu_x))
    f = pre.f_u + cell.g_max_x * s_x
    z = pre.z_u + cell.k_max_x * s_x
    want = x + (-torch.sigmoid(f) * x + torch.tanh(z) * cell.e_leak)
    torch.testing.assert_close(cell.step(x, pre), want)


def test_linear_ablation_is_linear_in_x():
    cell = _cell(ablation="A(u),b(u)")
    pre = cell.input_terms(torch.randn(5, dtype=F64))
    x1, x2 = torch.randn(4, dtype=F64), torch.randn(4, dtype=F64)
    lam, _ = cell.coefficients(x1, pre)
    torch.testing.assert_close(cell.jacobian_diag(x1, pre), lam)
    torch.testing.assert_close(cell.jacobian_diag(x2, pre), lam)
    torch.testing.assert_close(cell.step(x1, pre) - cell.step(x2, pre), lam * (x1 - x2))


def test_input_terms_are_state_independent_and_batched():
    cell = _cell()
    u = torch.randn(3, 6, 5, dtype=F64)
    pre = cell.input_terms(u)
    assert isinstance(pre, InputTerms) and all(p.shape == (3, 6, 4) for p in pre)
    one = cell.input_terms(u[1, 2])
    for p_all, p_one in zip(pre, one):
        torch.testing.assert_close(p_all[1, 2], p_one)


def test_dense_lrc_has_dense_jacobian():
    torch.manual_seed(0)
    cell = LRCCell(5, 4, dtype=F64)
    x, u = torch.randn(4, dtype=F64), torch.randn(5, dtype=F64)
    J = torch.autograd.functional.jacobian(lambda z: cell.step(z, u), x)
    off = J - torch.diag(torch.diagonal(J))
    assert torch.count_nonzero(off) == 12
    xs = cell.rollout(torch.randn(2, 7, 5, dtype=F64))
    assert xs.shape == (2, 7, 4) and bool(torch.isfinite(xs).all())


def test_rollout_is_the_step_loop():
    cell = _cell()
    u = torch.randn(2, 9, 5, dtype=F64)
    x0 = torch.randn(2, 4, dtype=F64)
    xs = cell.rollout(u, x0)
    x = x0
    for t in range(9):
        x = cell(x, u[:, t])
        torch.testing.assert_close(xs[:, t], x)


def test_lrc_bad_inputs():
    with pytest.raises(ValueError, match="variant"):
        LrcSSMCell(3, 2, variant="bogus")
    with pytest.raises(ValueError, match="ablation"):
        LrcSSMCell(3, 2, ablation="A(x)")
    with pytest.raises(ValueError, match="dt"):
        LrcSSMCell(3, 2, dt=0.0)
    with pytest.raises(ValueError, match="H"):
        LrcSSMCell(0, 2)
    with pytest.raises(TypeError, match="dtype"):
        LrcSSMCell(3, 2, dtype=torch.float16)
    cell = LrcSSMCell(3, 2)
    with pytest.raises(ValueError, match="u: expected last axis H=3"):
        cell.input_terms(torch.randn(4, 5))
    with pytest.raises(ValueError, match="x0: expected shape"):
        cell.rollout(torch.randn(2, 4, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="finite"):
        cell.rollout(torch.full((1, 4, 3), float("inf")))
    with pytest.raises(TypeError, match="u: expected dtype torch.float32"):
        cell.input_terms(torch.randn(4, 3, dtype=F64))


@pytest.mark.parametrize("clamp", ["softplus", "tanh"])
def test_rho_clamp_bounds_frozen_transition_and_keeps_exact_jacobian(clamp):
    cell = _cell(rho=0.9, clamp=clamp).scaled(8.0)
    x, u = torch.randn(50, 4, dtype=F64) * 4, torch.randn(50, 5, dtype=F64)
    pre = cell.input_terms(u)
    lam, _ = cell.coefficients(x, pre)
    assert float(lam.detach().abs().max()) <= 0.9
    pre0 = InputTerms(*(p[0] for p in pre))
    J = torch.autograd.functional.jacobian(lambda z: cell.step(z, pre0), x[0])
    assert torch.count_nonzero(J - torch.diag(torch.diagonal(J))) == 0
    torch.testing.assert_close(cell.jacobian_diag(x[0], pre0), torch.diagonal(J))
    plain = _cell().scaled(8.0)
    if clamp == "softplus":  # rho * (1 - dt sigma sigma): only the transition is scaled
        lam0, b0 = plain.coefficients(x, plain.input_terms(u))
        torch.testing.assert_close(lam, 0.9 * lam0)


def test_rho_bad_values():
    with pytest.raises(ValueError, match="rho"):
        LrcSSMCell(3, 2, rho=1.5)
    with pytest.raises(ValueError, match="rho"):
        LrcSSMCell(3, 2, rho=0.9, complex_params=True)
    with pytest.raises(ValueError, match="clamp"):
        LrcSSMCell(3, 2, rho=0.9, clamp="sigmoid")

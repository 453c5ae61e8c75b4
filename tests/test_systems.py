"""liquidssm.systems: the example systems and the recovery harness, against float64 oracles."""

from __future__ import annotations

import pytest
import torch

from liquidssm import liquid, ssm, systems

f64 = torch.float64


def test_random_stable_system_is_stable_and_reproducible():
    A, B, C = systems.random_stable_system(8, generator=torch.Generator().manual_seed(0))
    assert A.shape == (8, 8) and B.shape == C.shape == (8,) and A.dtype == f64
    assert torch.linalg.eigvals(A).real.max() <= -0.5 + 1e-12
    A2, _, _ = systems.random_stable_system(8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(A, A2)


def test_skew_stable_system_spectrum():
    A, B, C = systems.skew_stable_system(6, seed=3)
    assert torch.allclose(torch.linalg.eigvals(A).real, torch.full((6,), -0.5, dtype=f64), atol=1e-12)
    assert torch.equal(systems.skew_stable_system(6, seed=3)[2], C)


def test_hippo_liquid_system_is_conjugate_symmetric():
    A_bar, B_bar, C = systems.hippo_liquid_system(16, 0.05, seed=0)
    assert A_bar.shape == (16, 16) and B_bar.shape == C.shape == (16,)
    K = ssm.kernel_by_powers(A_bar, B_bar, C, 32)
    assert K.imag.abs().max() < 1e-12  # a real system in a conjugate-doubled basis


def test_ltc_ode_solution_matches_a_fine_euler_integration():
    """Eq. (8) solved exactly per step against forward Euler with a 2000-times finer step (float64)."""
    A, B, C = systems.skew_stable_system(3, seed=1)
    u = torch.tensor([0.3, -0.5, 0.8, 0.1], dtype=f64)
    dt = 0.1
    y = systems.ltc_ode_solution(A, B, C, u, dt)
    x, ys, m = torch.zeros(3, dtype=f64), [], 2000
    for uk in u:
        for _ in range(m):
            x = x + dt / m * ((A + torch.diag(B) * uk) @ x + B * uk)
        ys.append(C @ x)
    assert torch.allclose(y, torch.stack(ys), atol=1e-4)


def test_ltc_ode_solution_with_zero_input_stays_at_zero():
    A, B, C = systems.skew_stable_system(3, seed=1)
    assert torch.equal(systems.ltc_ode_solution(A, B, C, torch.zeros(5, dtype=f64), 0.1), torch.zeros(5, dtype=f64))


def test_ltc_ode_solution_validates():
    A, B, C = systems.skew_stable_system(3, seed=1)
    with pytest.raises(ValueError, match="dt"):
        systems.ltc_ode_solution(A, B, C, torch.zeros(4, dtype=f64), 0.0)
    with pytest.raises(ValueError, match="expected A"):
        systems.ltc_ode_solution(A, B[:2], C, torch.zeros(4, dtype=f64), 0.1)


def _rows(A_bar, B_bar, C, u, **kw):
    return {(r["method"], r["order"], r["L~"]): r for r in systems.liquid_recovery(A_bar, B_bar, C, u, **kw)}


def test_recovery_of_s4_is_zero_and_kb_is_exact_for_two_steps():
    A, B, C = systems.skew_stable_system(4, seed=0)
    A_bar, B_bar = ssm.bilinear(A, B, 0.1)
    u = torch.randn(3, 2, dtype=f64, generator=torch.Generator().manual_seed(0))
    rows = _rows(A_bar, B_bar, C, u, orders=[2], windows=[1, 2])
    assert rows[("S4", 1, 0)]["recovered"] == 0.0
    # with L = 2 the only liquid term is u_0 u_1, a consecutive run: KB recovers all of it
    assert rows[("S4+KB", 2, 2)]["recovered"] == pytest.approx(1.0, abs=1e-12)
    assert rows[("S4+KB", 2, 2)]["rel_err"] < 1e-12


def test_recovery_pb_window_one_equals_kb_window_one():
    A, B, C = systems.skew_stable_system(4, seed=2)
    A_bar, B_bar = ssm.bilinear(A, B, 0.1)
    u = torch.randn(2, 12, dtype=f64, generator=torch.Generator().manual_seed(1))
    rows = _rows(A_bar, B_bar, C, u, orders=[3], windows=[1])
    y = liquid.liquid_recurrence(A_bar, B_bar, C, u)
    y_s4 = ssm.causal_conv(u, ssm.kernel_by_powers(A_bar, B_bar, C, 12))
    y_kb1 = y_s4 + liquid.liquid_output(u, liquid.kb_kernel_dense(A_bar, B_bar, C, 12, 3, L_tilde=1))
    eta = 1 - float((y - y_kb1).norm() / (y - y_s4).norm())
    assert rows[("S4+PB", 3, 1)]["recovered"] == pytest.approx(eta, abs=1e-12)


def test_recovery_validates():
    A, B, C = systems.skew_stable_system(4, seed=0)
    with pytest.raises(ValueError, match="batch, L"):
        systems.liquid_recovery(A, B, C, torch.zeros(5, dtype=f64), orders=[2], windows=[1])
    with pytest.raises(ValueError, match="order"):
        systems.liquid_recovery(A, B, C, torch.zeros(1, 5, dtype=f64), orders=[1], windows=[1])
    with pytest.raises(ValueError, match="windows"):
        systems.liquid_recovery(A, B, C, torch.zeros(1, 5, dtype=f64), orders=[2], windows=[9])

"""Tests for liquidssm.lrc: the LrcSSM step against an independent transcription of the released
code, exact diagonality of the Jacobian, the analytic diagonal against autograd, the ablations,
each named piece of the step (conductances, ablation, drift, Euler transition, rho-clamp) against
autograd and against the previous one-block formula, the dense original LRC, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from liquidssm.lrc import (
    ABLATIONS,
    Conductances,
    Drift,
    InputTerms,
    LRCCell,
    LrcSSMCell,
    Transition,
)

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
    eps = torch.sigmoid(cell.kappa * x + cell.beta) * cell.euler_step
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
    with pytest.raises(ValueError, match="euler_step"):
        LrcSSMCell(3, 2, euler_step=0.0)
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


# ----------------------------------------------------------------------------------------------
# the named pieces of one step
# ----------------------------------------------------------------------------------------------


def _dsig(s):
    return s * (1 - s)


def _one_block_terms(cell, x, pre):
    """The step's terms as one block, transcribed from the cell before it was split into pieces."""
    s_x = torch.sigmoid(cell.sigma_x * (x - cell.mu_x))
    ds_x = cell.sigma_x * _dsig(s_x)
    F = pre.f_u + cell.g_max_x * s_x
    Z = pre.z_u + cell.k_max_x * s_x
    F_x, Z_x = cell.g_max_x * ds_x, cell.k_max_x * ds_x
    if cell.elastance:
        sE = torch.sigmoid(pre.e_u + cell.kappa * x)
        sE_x = _dsig(sE) * cell.kappa
        sE0 = torch.sigmoid(pre.e_u)
    else:
        sE = sE0 = torch.ones_like(F)
        sE_x = torch.zeros_like(F)
    zero = torch.zeros_like(F)
    if cell.ablation == "none":
        FA, FA_x, sEA, sEA_x = F, F_x, sE, sE_x
    else:
        FA, FA_x, sEA, sEA_x = pre.f_u, zero, sE0, zero
    if cell.ablation == "A(u),b(u)":
        Zb, Zb_x, sEb, sEb_x = pre.z_u, zero, sE0, zero
    else:
        Zb, Zb_x, sEb, sEb_x = Z, Z_x, sE, sE_x
    sF, tZ = torch.sigmoid(FA), torch.tanh(Zb)
    A = -sF * sEA
    A_x = -(_dsig(sF) * FA_x * sEA + sF * sEA_x)
    b = cell.e_leak * tZ * sEb
    b_x = cell.e_leak * ((1 - tZ * tZ) * Zb_x * sEb + tZ * sEb_x)
    h = cell.euler_step
    lam, lam_x = 1 + h * A, h * A_x
    if cell.rho is not None:
        if cell.clamp == "softplus":
            lam, lam_x = cell.rho * lam, cell.rho * lam_x
        else:
            th = torch.tanh(lam)
            lam, lam_x = cell.rho * th, cell.rho * (1 - th * th) * lam_x
    return lam, lam_x, h * b, h * b_x


def _d_dx(fn, x):
    """Element-wise derivative of an element-wise map by autograd (its Jacobian is diagonal)."""
    return torch.diagonal(torch.autograd.functional.jacobian(fn, x))


_CASES = [{"ablation": a, "variant": v, "elastance": e} for a in ABLATIONS
          for v in ("paper", "official") for e in (True, False)]
_CASES += [{"rho": 0.9}, {"rho": 0.8, "clamp": "tanh", "ablation": "A(u)"}, {"euler_step": 0.3},
           {"complex_params": True}, {"complex_params": True, "ablation": "A(u)", "elastance": False}]


@pytest.mark.parametrize("kw", _CASES)
def test_transition_equals_the_one_block_formula(kw):
    cell = _cell(**kw).scaled(3.0)
    x = torch.randn(6, 4, dtype=F64).to(cell.state_dtype) * 2
    pre = cell.input_terms(torch.randn(6, 5, dtype=F64))
    t = cell.transition(x, pre)
    assert isinstance(t, Transition)
    for got, want in zip(t, _one_block_terms(cell, x, pre)):
        assert got.dtype == want.dtype and torch.equal(got, want)  # bit for bit


@pytest.mark.parametrize("elastance", [True, False])
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_conductances_eq_8_to_10_and_their_derivatives(elastance, variant):
    cell = _cell(elastance=elastance, variant=variant).scaled(2.0)
    x, u = torch.randn(4, dtype=F64), torch.randn(5, dtype=F64)
    pre = cell.input_terms(u)
    g = cell.conductances(x, pre)
    assert isinstance(g, Conductances)
    s_u = torch.sigmoid(cell.sigma_u * (u - cell.mu_u))
    s_x = torch.sigmoid(cell.sigma_x * (x - cell.mu_x))
    torch.testing.assert_close(g.f, cell.g_leak + cell.W_f @ s_u + cell.g_max_x * s_x)   # Eq. 8
    torch.testing.assert_close(g.z, cell.g_leak + cell.W_z @ s_u + cell.k_max_x * s_x)   # Eq. 9
    eps = cell.kappa * x + cell.beta + (cell.W_eps @ u if variant == "paper" and elastance else 0)
    want_s_eps = torch.sigmoid(eps) if elastance else torch.ones(4, dtype=F64)           # Eq. 10
    torch.testing.assert_close(g.s_eps, want_s_eps)
    for value, deriv in (("f", "f_x"), ("z", "z_x"), ("s_eps", "s_eps_x")):
        auto = _d_dx(lambda z, v=value: getattr(cell.conductances(z, pre), v), x)
        torch.testing.assert_close(getattr(g, deriv), auto, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("elastance", [True, False])
def test_ablate_table_10(elastance):
    cell_kw = {"elastance": elastance}
    x, u = torch.randn(4, dtype=F64), torch.randn(5, dtype=F64)
    none = _cell(**cell_kw)
    pre = none.input_terms(u)
    g = none.conductances(x, pre)
    g_A, g_b = none.ablate(g, pre)
    assert g_A is g and g_b is g
    s_eps_u = torch.sigmoid(pre.e_u) if elastance else torch.ones(4, dtype=F64)
    for ablation in ("A(u)", "A(u),b(u)"):
        cell = _cell(ablation=ablation, **cell_kw)
        g_A, g_b = cell.ablate(g, pre)
        # A sees only the input: no self-loop, no kappa x, zero derivatives
        torch.testing.assert_close(g_A, Conductances(pre.f_u, 0 * x, pre.z_u, 0 * x, s_eps_u, 0 * x))
        assert (g_b is g) == (ablation == "A(u)")
        if ablation == "A(u),b(u)":
            assert g_b is g_A


def test_drift_eq_13_14_and_euler_transition_eq_7():
    cell = _cell(euler_step=0.4).scaled(2.0)
    x, pre = torch.randn(4, dtype=F64), cell.input_terms(torch.randn(5, dtype=F64))
    g = cell.conductances(x, pre)
    d = cell.drift(g, g)
    assert isinstance(d, Drift)
    torch.testing.assert_close(d.A, -torch.sigmoid(g.f) * g.s_eps)                        # Eq. 13
    torch.testing.assert_close(d.b, torch.tanh(g.z) * g.s_eps * cell.e_leak)              # Eq. 14
    torch.testing.assert_close(d.A_x, _d_dx(lambda z: cell.drift(*[cell.conductances(z, pre)] * 2).A, x))
    torch.testing.assert_close(d.b_x, _d_dx(lambda z: cell.drift(*[cell.conductances(z, pre)] * 2).b, x))
    t = cell.euler_transition(d)
    torch.testing.assert_close(t.lam * x + t.offset, x + 0.4 * (d.A * x + d.b))          # Eq. 7
    torch.testing.assert_close(t, Transition(1 + 0.4 * d.A, 0.4 * d.A_x, 0.4 * d.b, 0.4 * d.b_x))


@pytest.mark.parametrize("clamp", ["softplus", "tanh"])
def test_rho_clamp_bounds_lam_and_differentiates_it(clamp):
    plain = _cell().scaled(8.0)
    cell = _cell(rho=0.7, clamp=clamp).scaled(8.0)
    x, pre = torch.randn(30, 4, dtype=F64) * 3, plain.input_terms(torch.randn(30, 5, dtype=F64))
    t = plain.euler_transition(plain.drift(*[plain.conductances(x, pre)] * 2))
    assert plain.rho_clamp(t) is t  # identity without rho
    c = cell.rho_clamp(t)
    assert float(c.lam.detach().abs().max()) <= 0.7
    assert c.offset is t.offset and c.offset_x is t.offset_x  # only the transition changes
    want = 0.7 * t.lam if clamp == "softplus" else 0.7 * torch.tanh(t.lam)
    torch.testing.assert_close(c.lam, want)
    auto = _d_dx(lambda z: cell.transition(z, InputTerms(*(p[0] for p in pre))).lam, x[0])
    torch.testing.assert_close(cell.transition(x[0], InputTerms(*(p[0] for p in pre))).lam_x, auto)


def test_lrc_euler_step_scales_the_update():
    torch.manual_seed(0)
    one = LRCCell(5, 4, dtype=F64)
    half = LRCCell(5, 4, euler_step=0.5, dtype=F64)
    half.load_state_dict(one.state_dict())
    x, u = torch.randn(4, dtype=F64), torch.randn(5, dtype=F64)
    torch.testing.assert_close(half.step(x, u) - x, 0.5 * (one.step(x, u) - x))
    with pytest.raises(ValueError, match="euler_step"):
        LRCCell(5, 4, euler_step=-1.0)


def test_cell_flags_must_be_bool():
    with pytest.raises(TypeError, match="elastance: expected True or False"):
        LrcSSMCell(3, 2, elastance="no")
    with pytest.raises(TypeError, match="complex_params"):
        LrcSSMCell(3, 2, complex_params=1)


_FUSED_CASES = _CASES + [{"rho": 0.9, "clamp": "tanh"}, {"rho": 0.7, "ablation": "A(u),b(u)"},
                         {"rho": 0.8, "clamp": "tanh", "elastance": False, "variant": "official"},
                         {"complex_params": True, "ablation": "A(u),b(u)"},
                         {"complex_params": True, "variant": "official", "ablation": "A(u)"}]


def _pieces(cell, x, pre):
    t = cell.transition(x, pre)
    return t.lam * x + t.offset, t.lam + x * t.lam_x + t.offset_x


@pytest.mark.parametrize("kw", _FUSED_CASES)
def test_fused_step_and_jacobian_equal_the_pieces(kw):
    """The fused fast paths against the readable pieces (the oracle), every variant, float64.

    With autograd: the same operations, bit for bit, and the same gradients. Without autograd
    (the Newton iterations): in-place and regrouped, equal to rounding.
    """
    cell = _cell(**kw).scaled(3.0)
    x = (torch.randn(2, 6, 4, dtype=F64).to(cell.state_dtype) * 2).requires_grad_()
    pre = cell.input_terms(torch.randn(2, 6, 5, dtype=F64))
    want_x, want_J = _pieces(cell, x, pre)
    got_x, got_J = cell.step_and_jacobian(x, pre)
    for got, want in ((got_x, want_x), (cell._fused(x, pre, True)[1], want_J), (cell.step(x, pre), want_x)):
        assert got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want)
    assert not got_J.requires_grad  # the solvers' constant Jacobian
    assert got_J.dtype == want_J.dtype and got_J.shape == want_J.shape
    torch.testing.assert_close(got_J, want_J.detach(), rtol=1e-14, atol=1e-14)
    params = [p for p in cell.parameters()]
    leaves = [x, *params]
    g_out = torch.randn_like(want_x)
    g_want = torch.autograd.grad((want_x * g_out.conj()).real.sum(), leaves, allow_unused=True,
                                 retain_graph=True)
    g_got = torch.autograd.grad((cell.step(x, pre) * g_out.conj()).real.sum(), leaves, allow_unused=True)
    for a, b in zip(g_got, g_want):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
    with torch.no_grad():
        ng_x, ng_J = cell.step_and_jacobian(x, pre)
        ng_step = cell.step(x, pre)
    for got, want in ((ng_x, want_x), (ng_J, want_J), (ng_step, want_x)):
        assert got.dtype == want.dtype and got.shape == want.shape
        torch.testing.assert_close(got, want.detach(), rtol=1e-14, atol=1e-14)
    assert not ng_x.requires_grad and not ng_J.requires_grad


def test_fused_no_grad_path_does_not_touch_its_inputs():
    cell = _cell(rho=0.9, clamp="tanh").scaled(2.0)
    x = torch.randn(3, 4, dtype=F64)
    pre = cell.input_terms(torch.randn(3, 5, dtype=F64))
    pre = InputTerms(*(p.detach() for p in pre))
    copies = [t.clone() for t in (x, *pre)]
    with torch.no_grad():
        cell.step_and_jacobian(x, pre)
        cell.step(x, pre)
    for a, b in zip((x, *pre), copies):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kw", [{}, {"elastance": False}, {"variant": "official"}])
def test_closed_form_step_backward_gradcheck(kw):
    """The plain real cell's step has a hand-written backward: gradcheck it in float64."""
    cell = _cell(**kw).scaled(2.0)
    x = torch.randn(2, 3, 4, dtype=F64, requires_grad=True)
    pre = cell.input_terms(torch.randn(2, 3, 5, dtype=F64))
    pre = [p.detach().requires_grad_() for p in pre]
    assert torch.autograd.gradcheck(lambda x, f, z, e: cell.step(x, InputTerms(f, z, e)), (x, *pre))


@pytest.mark.parametrize("kw", [{}, {"ablation": "A(u)", "rho": 0.9}])
def test_fast_paths_step_aside_under_torch_func(kw):
    """torch.func.jvp / forward AD see plain autograd ops: one JVP of the step = the diagonal."""
    cell = _cell(**kw)
    x = torch.randn(3, 4, dtype=F64)
    pre = cell.input_terms(torch.randn(3, 5, dtype=F64))
    _, jvp = torch.func.jvp(lambda z: cell.step(z, pre), (x,), (torch.ones_like(x),))
    torch.testing.assert_close(jvp, cell.jacobian_diag(x, pre).detach(), rtol=1e-12, atol=1e-14)
    _, jvp2 = torch.func.jvp(lambda z: cell.step_and_jacobian(z, pre)[0], (x,), (torch.ones_like(x),))
    torch.testing.assert_close(jvp2, jvp)


@pytest.mark.parametrize("kw", [{}, {"elastance": False}, {"variant": "official"}])
def test_step_vjp_equals_autograd_of_the_pieces(kw):
    """step_vjp (the closed-form backward the compiled implicit gradient uses) against autograd
    through the readable pieces, float64: gradients of the input terms and of vjp_leaves()."""
    cell = _cell(**kw).scaled(2.0)
    x = torch.randn(2, 6, 4, dtype=F64)
    pre = InputTerms(*(p.detach().requires_grad_() for p in cell.input_terms(torch.randn(2, 6, 5, dtype=F64))))
    G = torch.randn(2, 6, 4, dtype=F64)
    leaves = cell.vjp_leaves()
    assert leaves is not None and len(leaves) == 6
    t = cell.transition(x, pre)
    want = torch.autograd.grad(((t.lam * x + t.offset) * G).sum(), [*pre, *leaves], allow_unused=True)
    got = cell.step_vjp(x, pre, G, (True,) * 9)
    for a, b in zip(got, want):
        if b is None:  # e.g. e_u and kappa without elastance
            assert a is None
        else:
            assert a is not None and a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
    some = cell.step_vjp(x, pre, G, (False, True, *(False,) * 7))
    assert some[0] is None and torch.equal(some[1], got[1]) and all(g is None for g in some[2:])


@pytest.mark.parametrize("kw", [{"ablation": "A(u)"}, {"rho": 0.9}, {"complex_params": True}])
def test_step_vjp_only_for_the_plain_real_cell(kw):
    cell = _cell(**kw)
    assert cell.vjp_leaves() is None
    x = torch.zeros(2, 4, dtype=F64).to(cell.state_dtype)
    pre = cell.input_terms(torch.zeros(2, 5, dtype=F64))
    with pytest.raises(ValueError, match="step_vjp: expected the plain real cell"):
        cell.step_vjp(x, pre, x, (True,) * 9)

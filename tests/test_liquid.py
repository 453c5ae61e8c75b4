"""Tests of liquidssm.liquid: Eq. (9)-(11), Proposition 1, KB/PB kernels, and the released code.

All oracles run in float64 (tolerance 1e-12 unless stated); brute-force enumerations use L <= 7.
"""

from __future__ import annotations

import itertools
import math

import pytest
import sympy as sp
import torch

from liquidssm import liquid, ssm

f64 = torch.float64


def random_system(N: int = 3, seed: int = 0, *, diagonal: bool = False, complex_: bool = False):
    g = torch.Generator().manual_seed(seed)
    dtype = torch.complex128 if complex_ else f64

    def rnd(*shape):
        x = torch.randn(*shape, generator=g, dtype=f64)
        if complex_:
            x = torch.complex(x, torch.randn(*shape, generator=g, dtype=f64))
        return x

    A = torch.diag(rnd(N)) * 0.5 if diagonal else rnd(N, N) * 0.4
    return A.to(dtype), (rnd(N) * 0.6).to(dtype), rnd(N).to(dtype)


# --- Eq. (9)-(11): exact unrolling -----------------------------------------------------------


@pytest.mark.parametrize("complex_", [False, True])
def test_exact_unrolling_sums_to_recurrence(complex_):
    A, B, C = random_system(3, 1, complex_=complex_)
    u = torch.randn(2, 7, dtype=f64)
    y = liquid.liquid_recurrence(A, B, C, u)
    parts = liquid.unrolled_output(A, B, C, u)
    assert parts.shape == (2, 7, 7)
    torch.testing.assert_close(parts.sum(-2), y, rtol=0, atol=1e-12)


def test_order_one_part_is_s4_convolution():
    A, B, C = random_system(4, 2)
    u = torch.randn(6, dtype=f64)
    parts = liquid.unrolled_output(A, B, C, u, max_order=1)
    s4 = ssm.causal_conv(u, ssm.kernel_by_powers(A, B, C, 6))
    torch.testing.assert_close(parts[0], s4, rtol=0, atol=1e-12)


def test_printed_rule_exact_for_diagonal_wrong_for_dense():
    u = torch.randn(6, dtype=f64)
    A, B, C = random_system(3, 3, diagonal=True)
    y = liquid.liquid_recurrence(A, B, C, u)
    torch.testing.assert_close(liquid.unrolled_output(A, B, C, u, rule="printed").sum(-2), y, rtol=0, atol=1e-12)
    A, B, C = random_system(3, 3)
    y = liquid.liquid_recurrence(A, B, C, u)
    err = (liquid.unrolled_output(A, B, C, u, rule="printed").sum(-2) - y).abs().max()
    assert err > 1e-3  # the printed weights are not the model for a dense A_bar


def test_printed_weight_equals_exact_iff_consecutive():
    A, B, C = random_system(3, 4)
    k = 4
    for p in range(1, k + 2):
        for S in itertools.combinations(range(k + 1), p):
            same = torch.allclose(liquid.subset_weight(A, B, C, S, k), liquid.printed_subset_weight(A, B, C, S, k), atol=1e-12)
            consecutive = S == tuple(range(S[0], S[0] + p))
            assert same == consecutive, S


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_sympy_unrolling_vs_printed_eq10(k):
    exact = liquid.symbolic_unroll(k)
    printed = liquid.printed_eq10_terms(k)
    assert set(exact) == set(printed) == {S for p in range(1, k + 2) for S in itertools.combinations(range(k + 1), p)}
    A, D, b, c = sp.symbols("A D b c", commutative=False)
    a_, d_ = sp.symbols("a d")  # commuting stand-ins (diagonal A_bar)
    for S in exact:
        consecutive = S == tuple(range(S[0], S[0] + len(S)))
        assert (sp.expand(exact[S] - printed[S]) == 0) == consecutive, (k, S)
        commuted = sp.expand((exact[S] - printed[S]).subs({A: a_, D: d_}))
        assert commuted == 0, (k, S)
    if k == 2:  # the one wrong term printed in Eq. (10): C A B^2 u0 u2 is really C diag(B) A B u0 u2
        assert exact[(0, 2)] == c * D * A * b and printed[(0, 2)] == c * A * D * b


# --- Proposition 1 and the kernels -------------------------------------------------------------


@pytest.mark.parametrize("complex_", [False, True])
def test_proposition1_kb_equals_consecutive_runs(complex_):
    A, B, C = random_system(3, 5, complex_=complex_)
    L = 7
    u = torch.randn(3, L, dtype=f64)
    cons = liquid.unrolled_output(A, B, C, u, subsets="consecutive")
    K = liquid.kb_kernel_dense(A, B, C, L, L)
    assert K.shape == (L - 1, L)
    torch.testing.assert_close(liquid.liquid_output(u, K), cons[:, 1:].sum(-2), rtol=0, atol=1e-12)
    torch.testing.assert_close(liquid.liquid_output(u, K, method="direct"), cons[:, 1:].sum(-2), rtol=0, atol=1e-12)
    # order-by-order (P = 3 keeps orders 2, 3)
    K3 = liquid.kb_kernel_dense(A, B, C, L, 3)
    torch.testing.assert_close(liquid.liquid_output(u, K3), cons[:, 1:3].sum(-2), rtol=0, atol=1e-12)


def test_consecutive_products():
    u = torch.arange(1.0, 7.0, dtype=f64)
    c3 = liquid.consecutive_products(u, 3)
    assert c3.tolist() == [0, 0, 6, 24, 60, 120]
    torch.testing.assert_close(liquid.consecutive_products(u, 1), u)


def test_pb_is_kb_with_identity_A():
    _, B, C = random_system(3, 6)
    L, P = 9, 4
    Kkb = liquid.kb_kernel_dense(torch.eye(3, dtype=f64), B, C, L, P, L_tilde=5)
    Kpb = liquid.pb_kernel(B, C, L, P, L_tilde=5)
    torch.testing.assert_close(Kpb, Kkb, rtol=0, atol=1e-12)
    assert (Kpb[:, 5:] == 0).all() and (Kpb[:, :5] != 0).all()


def test_pb_conj_pairs_is_real_full_sum():
    g = torch.Generator().manual_seed(7)
    Bh = torch.randn(2, 3, generator=g, dtype=torch.complex128)
    Ch = torch.randn(2, 3, generator=g, dtype=torch.complex128)
    full = liquid.pb_kernel(torch.cat([Bh, Bh.conj()], -1), torch.cat([Ch, Ch.conj()], -1), 5, 3)
    half = liquid.pb_kernel(Bh, Ch, 5, 3, conj_pairs=True)
    assert half.dtype == f64
    torch.testing.assert_close(half, full.real, rtol=0, atol=1e-12)
    assert full.imag.abs().max() < 1e-12


def dense_dplr(Lambda, P, B):
    """Full conjugate-doubled complex system of a stored DPLR half (test oracle)."""
    Lf = torch.cat([Lambda, Lambda.conj()], -1)
    Pf = torch.cat([P, P.conj()], -1)
    Bf = torch.cat([B, B.conj()], -1)
    A = torch.diag_embed(Lf) - Pf[..., :, None] * Pf[..., None, :].conj()
    return A, Bf


def test_dplr_B_bar_matches_dense_bilinear():
    from liquidssm import hippo

    d = hippo.nplr_legs(8)
    dt = torch.tensor([0.05, 0.3], dtype=f64)
    Lam, P, B = (t.expand(2, -1) for t in (d.Lambda, d.P, d.B))
    A, Bf = dense_dplr(Lam, P, B)
    _, Bbar = ssm.bilinear(A, Bf, dt)
    got = liquid.dplr_B_bar(Lam, P, B, dt)
    torch.testing.assert_close(got, Bbar[..., :4], rtol=0, atol=1e-12)
    torch.testing.assert_close(Bbar[..., 4:], Bbar[..., :4].conj(), rtol=0, atol=1e-12)


def dplr_case(H=2, N2=4, channels=2, seed=3):
    g = torch.Generator().manual_seed(seed)
    c128 = torch.complex128
    Lam = torch.complex(-torch.rand(H, N2, generator=g, dtype=f64) - 0.2, 3 * torch.randn(H, N2, generator=g, dtype=f64))
    P = 0.3 * torch.randn(H, N2, generator=g, dtype=c128)
    B = torch.randn(H, N2, generator=g, dtype=c128)
    C = torch.randn(channels, H, N2, generator=g, dtype=c128)
    dt = 0.05 + 0.3 * torch.rand(H, generator=g, dtype=f64)
    return Lam, P, B, C, dt


@pytest.mark.parametrize("L_tilde", [None, 5])
def test_kb_kernel_methods_agree_float64(L_tilde):
    Lam, P, B, C, dt = dplr_case()
    dense = liquid.kb_kernel(Lam, P, B, C, dt, 12, 4, L_tilde=L_tilde, method="dense")
    fast = liquid.kb_kernel(Lam, P, B, C, dt, 12, 4, L_tilde=L_tilde, backend="torch")
    assert dense.shape == fast.shape == (2, 2, 3, 12) and dense.dtype == f64
    torch.testing.assert_close(fast, dense, rtol=0, atol=1e-10 * float(dense.abs().max()))
    assert torch.equal(fast, liquid.kb_kernel_dplr(Lam, P, B, C, dt, 12, 4, L_tilde=L_tilde, backend="torch"))


def test_pb_coefficients_methods_agree_and_equal_pb_kernel():
    Lam, P, B, C, dt = dplr_case()
    fast = liquid.pb_coefficients(Lam, P, B, C, dt, 4)
    dense = liquid.pb_coefficients(Lam, P, B, C, dt, 4, method="dense")
    assert fast.shape == (2, 2, 3) and fast.dtype == f64
    torch.testing.assert_close(fast, dense, rtol=1e-12, atol=1e-12)
    window = liquid.pb_kernel(liquid.dplr_B_bar(Lam, P, B, dt), C, 6, 4, L_tilde=3, conj_pairs=True)
    torch.testing.assert_close(window[..., 0], fast, rtol=0, atol=0)
    assert (window[..., 3:] == 0).all()


def test_liquid_kernels_bad_method():
    Lam, P, B, C, dt = dplr_case()
    with pytest.raises(ValueError, match="method: expected one of"):
        liquid.kb_kernel(Lam, P, B, C, dt, 6, 2, method="keops")
    with pytest.raises(ValueError, match="method: expected one of"):
        liquid.pb_coefficients(Lam, P, B, C, dt, 2, method="torch")
    with pytest.raises(ValueError, match="order: expected a liquid order >= 2"):
        liquid.pb_coefficients(Lam, P, B, C, dt, 1)


# --- gradients ------------------------------------------------------------------------------


def test_gradcheck_kb_dense_and_pb():
    A, B, C = random_system(2, 8)
    u = torch.randn(5, dtype=f64)
    B = B.clone().requires_grad_()
    C = C.clone().requires_grad_()
    u = u.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda B, C, u: liquid.liquid_output(u, liquid.kb_kernel_dense(A, B, C, 5, 3)), (B, C, u))
    assert torch.autograd.gradcheck(lambda B, C, u: liquid.liquid_output(u, liquid.pb_kernel(B, C, 5, 3, L_tilde=2)), (B, C, u))


# --- the released code (variant="official") --------------------------------------------------


def test_official_L_tilde_table():
    table = {1024: [46, 20, 15, 13, 13], 2048: [65, 25, 17, 15, 14], 4000: [90, 30, 20, 16, 15],
             4096: [92, 31, 20, 16, 15], 16000: [180, 47, 27, 21, 18], 16384: [182, 48, 27, 21, 18]}
    for L, row in table.items():
        assert [liquid.official_L_tilde(L, p) for p in range(2, 7)] == row


def test_official_subsets_small_example():
    assert liquid.official_subsets(10, 2).tolist() == [[5, 6], [5, 7], [5, 8], [5, 9], [6, 7], [6, 8], [6, 9], [7, 8], [7, 9], [8, 9]]
    s3 = liquid.official_subsets(10, 3).tolist()
    assert len(s3) == 10 and s3[0] == [5, 6, 7] and s3[1] == [5, 6, 8] and s3[-1] == [7, 8, 9]
    s = liquid.official_subsets(1024, 2)  # C(46, 2) = 1035 subsets: the first 11 are dropped
    assert s.shape == (1024, 2) and s[0].tolist() == [978 + 0, 978 + 12]  # (0, 12) offset by L - 46
    assert math.comb(46, 2) - 1024 == 11


def test_official_tiny_L_raises():
    with pytest.raises(ValueError, match="no window"):
        liquid.official_L_tilde(4, 2)
    assert liquid.official_L_tilde(5, 2) == 4


def test_official_correlations_allcombs_and_flip():
    u = torch.randn(2, 10, dtype=f64)
    corr = liquid.official_correlations(u, 3)
    assert corr.shape == (2, 2, 10)
    want2 = torch.stack([u[:, i] * u[:, j] for i, j in liquid.official_subsets(10, 2).tolist()], -1)
    torch.testing.assert_close(corr[:, 0], want2.flip(-1))
    raw = liquid.official_correlations(u, 3, flip=False, lcontract="lecun")
    torch.testing.assert_close(raw[:, 0], 1.7159 * torch.tanh(0.666 * want2))


def test_official_correlations_compounding():
    u = torch.randn(10, dtype=f64)
    corr = liquid.official_correlations(u, 3, allcombs=False)
    L = 10
    t = torch.arange(L)
    want2 = torch.zeros(L, dtype=f64)
    want2[1:] = u[1:] * u[:-1]
    # PB with P = 2, allcombs=False adds kappa * u_{L-1-t} u_{L-2-t} at position t
    torch.testing.assert_close(corr[0], want2.flip(-1))
    assert corr[0][t[:-1]].tolist() == pytest.approx((u[L - 1 - t[:-1]] * u[L - 2 - t[:-1]]).tolist())
    want3 = torch.zeros(L, dtype=f64)
    want3[2:] = u[2:] * u[1:-1] ** 2 * u[:-2]  # degree 2^{p-1} = 4, not p = 3
    torch.testing.assert_close(corr[1], want3.flip(-1))


def test_official_pb_coefficients_compounding_identity():
    from liquidssm import hippo

    d = hippo.nplr_legs(8)
    dt = torch.tensor([0.01, 0.1, 0.2], dtype=f64)
    Lam, B = d.Lambda.expand(3, -1), d.B.expand(3, -1)
    Bbar = liquid.official_B_bar(Lam, B, dt)
    C0h = torch.randn(3, 4, dtype=torch.complex128)
    C0 = torch.cat([C0h, C0h.conj()], -1)
    kappa = liquid.official_pb_coefficients(Bbar, C0, 5)
    S = Bbar.sum(-1)
    assert S.imag.abs().max() < 1e-12  # S is real (conjugate pairs)
    for j, p in enumerate(range(2, 6)):
        closed = (C0 * Bbar).sum(-1).real * S.real ** (2 ** (p - 1) - 1)
        torch.testing.assert_close(kappa[:, j], closed, rtol=1e-10, atol=1e-14)
    assert ((C0 * Bbar * S[:, None]).sum(-1).imag.abs() < 1e-12).all()  # Im(kappa) = 0


def test_official_kb_term_proper_and_bug():
    L = 16
    g = torch.Generator().manual_seed(3)
    corr = torch.randn(2, 3, 2, L, generator=g, dtype=f64)
    K = torch.randn(3, L, generator=g, dtype=f64)
    S = torch.tensor([0.3, -0.2, 0.5], dtype=f64)
    proper = liquid.official_kb_term(corr, K, S)
    want = sum(ssm.causal_conv_direct(corr[:, :, j], S[:, None] ** (j + 1) * K) for j in range(2))
    torch.testing.assert_close(proper, want, rtol=0, atol=1e-12)
    bug = liquid.official_kb_term(corr, K, S, fft_bug=True)
    assert (bug - proper).abs().max() > 0.1 * proper.abs().max()  # not a convolution
    delta = torch.zeros(3, L, dtype=f64)
    delta[:, 0] = 1.0
    one = torch.ones(3, dtype=f64)
    # a unit impulse still passes through unchanged: both DFTs of delta_0 are all ones
    torch.testing.assert_close(liquid.official_kb_term(corr[:, :, :1], delta, one, fft_bug=True), corr[:, :, 0], rtol=0, atol=1e-12)


# --- bad inputs -----------------------------------------------------------------------------


def test_bad_inputs():
    A, B, C = random_system(3, 9)
    with pytest.raises(ValueError, match="liquid order >= 2"):
        liquid.kb_kernel_dense(A, B, C, 5, 1)
    with pytest.raises(TypeError, match="order: expected an int"):
        liquid.pb_kernel(B, C, 5, 2.0)
    with pytest.raises(ValueError, match="L_tilde"):
        liquid.pb_kernel(B, C, 5, 2, L_tilde=0)
    with pytest.raises(ValueError, match="L_tilde"):
        liquid.kb_kernel_dense(A, B, C, 5, 2, L_tilde=6)
    with pytest.raises(ValueError, match="rule"):
        liquid.unrolled_output(A, B, C, torch.randn(4, dtype=f64), rule="paper")
    with pytest.raises(ValueError, match="S: expected strictly increasing"):
        liquid.subset_weight(A, B, C, (2, 1), 3)
    with pytest.raises(ValueError, match=r"B_bar: expected shape \(\.\.\., N\) with N = 3"):
        liquid.liquid_recurrence(A, B[:2], C, torch.randn(4, dtype=f64))
    with pytest.raises(ValueError, match="lcontract"):
        liquid.official_correlations(torch.randn(10, dtype=f64), 2, lcontract="relu")
    with pytest.raises(ValueError, match="L <= 14"):
        liquid.unrolled_output(A, B, C, torch.randn(15, dtype=f64))

"""S4 DPLR kernel (Alg. 1 lines 1-5) and S4D kernel against the dense powers oracle."""

from __future__ import annotations

import pytest
import torch

from liquidssm import ssm
from liquidssm.cauchy import keops_available
from liquidssm.hippo import hippo_legs, nplr_legs
from liquidssm.kernels import (
    KERNEL_METHODS,
    bilinear_factor,
    c_tilde,
    check_method,
    conj_double,
    discretize_dplr_bilinear,
    dplr_dense_A,
    dplr_to_dense,
    generating_function_blocks,
    irfft_kernel,
    matrix_power_squaring,
    nyquist_value,
    roots_of_unity,
    s4_dense_kernel,
    s4_dplr_kernel,
    s4_kernel,
    s4d_kernel,
    woodbury,
)


def random_dplr(H, N2, *, rank=None, channels=None, dtype=torch.complex128):
    """A random stable DPLR system (Re Lambda < 0 and a small low-rank term)."""
    rd = torch.float64 if dtype == torch.complex128 else torch.float32
    Lam = torch.complex(-torch.rand(H, N2, dtype=rd) - 0.2, 3 * torch.randn(H, N2, dtype=rd))
    P = 0.3 * torch.randn(*((rank,) if rank else ()), H, N2, dtype=dtype)
    B = torch.randn(H, N2, dtype=dtype)
    C = torch.randn(*((channels,) if channels else ()), H, N2, dtype=dtype)
    dt = 0.05 + 0.5 * torch.rand(H, dtype=rd)
    return Lam, P, B, C, dt


def powers_oracle(Lam, P, B, C, dt, L):
    A, Bd, Cd = dplr_to_dense(Lam, P, B, C)
    A_bar, B_bar = ssm.bilinear(A, Bd, dt)
    return ssm.kernel_by_powers(A_bar, B_bar, Cd, L)


def rel(a, b):
    return float(((a - b).abs().max() / b.abs().max()).detach())


@pytest.mark.parametrize("H,N2,L,rank,channels", [
    (1, 1, 1, None, None),
    (3, 4, 16, None, None),
    (2, 5, 37, None, 2),
    (2, 3, 20, 2, None),
    (4, 8, 64, None, None),
    (1, 16, 99, 1, 3),
])
def test_dplr_kernel_equals_powers_random(H, N2, L, rank, channels):
    Lam, P, B, C, dt = random_dplr(H, N2, rank=rank, channels=channels)
    K = s4_dplr_kernel(Lam, P, B, C, dt, L, backend="torch")
    assert K.shape == ((channels,) if channels else ()) + (H, L)
    assert K.dtype == torch.float64
    assert rel(K, powers_oracle(Lam, P, B, C, dt, L)) < 1e-9


@pytest.mark.parametrize("N,L", [(8, 32), (16, 50), (64, 200)])
def test_dplr_kernel_equals_powers_hippo_legs(N, L):
    d = nplr_legs(N)
    H = 3
    C = torch.randn(H, N // 2, dtype=torch.complex128)
    dt = torch.tensor([1e-3, 1e-2, 1e-1], dtype=torch.float64)
    K = s4_dplr_kernel(d.Lambda, d.P, d.B, C, dt, L)
    assert rel(K, powers_oracle(d.Lambda, d.P, d.B, C, dt, L)) < 1e-9


def test_hippo_init_real_system_is_legs():
    """For the LegS init the explicit real system is HiPPO-LegS in an orthonormal basis."""
    N = 8
    d = nplr_legs(N)
    C = torch.randn(N // 2, dtype=torch.complex128)
    A, B, Cd = dplr_to_dense(d.Lambda[None], d.P[None], d.B[None], C[None])
    A_legs, B_legs = hippo_legs(N)
    assert torch.allclose(torch.linalg.eigvals(A[0]).abs().sort().values,
                          torch.linalg.eigvals(A_legs).abs().sort().values, rtol=1e-9)
    # same transfer function: C (sI - A)^-1 B with C mapped into the LegS basis
    N2 = N // 2
    eye = torch.eye(N2, dtype=torch.complex128)
    T = torch.cat([torch.cat([eye, eye], 1), torch.cat([-1j * eye, 1j * eye], 1)], 0) / 2**0.5
    Vf = torch.cat([d.V, d.V.conj()], 1)  # (N, N): LegS coords = Vf @ full coords
    Q = (Vf @ T.conj().T).real  # orthogonal map real coords -> LegS coords
    assert torch.allclose(Q.T @ Q, torch.eye(N, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(Q @ A[0] @ Q.T, A_legs, atol=1e-10)
    assert torch.allclose(Q @ B[0], B_legs, atol=1e-10)


def test_zero_P_is_two_real_part_of_diagonal_system_and_s4d():
    Lam, P, B, C, dt = random_dplr(3, 4)
    L = 40
    K = s4_dplr_kernel(Lam, torch.zeros_like(P), B, C, dt, L)
    A_bar, B_bar = ssm.bilinear(torch.diag_embed(Lam), B, dt)
    K2 = 2 * ssm.kernel_by_powers(A_bar, B_bar, C, L).real
    assert rel(K, K2) < 1e-9
    assert rel(s4d_kernel(Lam, B, C, dt, L, method="bilinear"), K2) < 1e-9


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_s4d_kernel_equals_powers(method):
    Lam, _, B, C, dt = random_dplr(2, 5, channels=2)
    L = 33
    K = s4d_kernel(Lam, B, C, dt, L, method=method)
    A_bar, B_bar = ssm.discretize(torch.diag_embed(Lam), B, dt, method=method)
    assert K.shape == (2, 2, L)
    assert rel(K, 2 * ssm.kernel_by_powers(A_bar, B_bar, C, L).real) < 1e-9


def test_float32_within_1e4():
    d = nplr_legs(32, torch.complex64)
    C = torch.randn(2, 16, dtype=torch.complex64)
    dt = torch.tensor([0.01, 0.05])
    K = s4_dplr_kernel(d.Lambda, d.P, d.B, C, dt, 128)
    assert K.dtype == torch.float32
    d64 = nplr_legs(32)
    K64 = powers_oracle(d64.Lambda, d64.P, d64.B, C.to(torch.complex128), dt.double(), 128)
    assert rel(K.double(), K64) < 1e-4


def test_lines_compose_and_truncation_matters():
    Lam, P, B, C, dt = random_dplr(2, 4)
    dt = dt * 0.1  # slow decay: the kernel is far from zero after L steps
    L = 24
    want = powers_oracle(Lam, P, B, C, dt, L)
    C_tilde = c_tilde(Lam, P, B, C, dt, L)
    omega = roots_of_unity(L, torch.complex128)
    k = generating_function_blocks(Lam, P, B, C_tilde, dt, omega, backend="torch")
    K = irfft_kernel(woodbury(k, 1) * bilinear_factor(omega), L)[0]
    assert rel(K, want) < 1e-9
    assert rel(s4_dplr_kernel(Lam, P, B, C_tilde, dt, L, c_is_tilde=True), want) < 1e-9
    # without C_tilde the infinite kernel is aliased into L taps: K_l + K_{l+L} + ...
    K_alias = s4_dplr_kernel(Lam, P, B, C, dt, L, c_is_tilde=True)
    assert rel(K_alias, want) > 1e-3
    # exactly: sum_m K_{l+mL} = C_full (I - A_bar^L)^{-1} A_bar^l B_bar
    A_bar, B_bar = discretize_dplr_bilinear(Lam, P, B, dt)
    eye = torch.eye(A_bar.shape[-1], dtype=A_bar.dtype)
    Cf = torch.cat([C, C.conj()], -1)
    C_alias = torch.linalg.solve((eye - matrix_power_squaring(A_bar, L)).mT, Cf[..., None])[..., 0]
    assert rel(K_alias, ssm.kernel_by_powers(A_bar, B_bar, C_alias, L).real) < 1e-9


def test_nyquist_closed_form_equals_dft():
    Lam, P, B, C, dt = random_dplr(2, 4, channels=2)
    L = 18
    want = torch.fft.rfft(powers_oracle(Lam, P, B, C, dt, L), n=L)[..., -1]  # omega = -1
    C_tilde = c_tilde(Lam, P, B, C, dt, L)
    got = nyquist_value(B, C_tilde, dt)
    assert got.shape == (2, 2)
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_float32_long_kernel_has_no_overflow():
    """Even L: the Nyquist node is handled in closed form, so no inf/NaN appears in float32."""
    d = nplr_legs(16, torch.complex64)
    C = torch.randn(3, 8, dtype=torch.complex64)
    K = s4_dplr_kernel(d.Lambda, d.P, d.B, C, torch.tensor([1e-4, 1e-2, 1.0]), 4096, backend="torch")
    assert torch.isfinite(K).all()


def test_woodbury_rank2_equals_dense_resolvent():
    Lam, P, B, C, dt = random_dplr(2, 3, rank=2, channels=2)
    omega = roots_of_unity(10, torch.complex128)
    k = generating_function_blocks(Lam, P, B, C, dt, omega)
    got = woodbury(k, 2)  # (ch, H, Lz)
    A = dplr_dense_A(Lam, P)  # (H, N, N)
    g = (2 / dt[:, None]) * (1 - omega) / (1 + omega)  # (H, Lz)
    N = A.shape[-1]
    R = torch.linalg.inv(g[..., None, None] * torch.eye(N, dtype=A.dtype) - A[:, None])  # (H,Lz,N,N)
    Cf = torch.cat([C, C.conj()], -1)
    Bf = torch.cat([B, B.conj()], -1)
    want = torch.einsum("chn,hlnm,hm->chl", Cf, R, Bf)
    assert torch.allclose(got, want, rtol=1e-10)


def test_discretize_and_matrix_power():
    Lam, P, B, C, dt = random_dplr(2, 3)
    A_bar, B_bar = discretize_dplr_bilinear(Lam, P, B, dt)
    A_ref, B_ref = ssm.bilinear(dplr_dense_A(Lam, P), torch.cat([B, B.conj()], -1), dt)
    assert torch.allclose(A_bar, A_ref) and torch.allclose(B_bar, B_ref)
    for L in (0, 1, 5, 13):
        assert torch.allclose(matrix_power_squaring(A_bar, L), torch.linalg.matrix_power(A_bar, L))


def test_gradcheck_dplr_kernel():
    Lam, P, B, C, dt = random_dplr(1, 2)
    args = [t.clone().requires_grad_() for t in (Lam, P, B, C, dt)]
    assert torch.autograd.gradcheck(
        lambda a, p, b, c, d: s4_dplr_kernel(a, p, b, c, d, 6, backend="torch"), args)


def test_gradcheck_s4d_kernel():
    Lam, _, B, C, dt = random_dplr(1, 2)
    args = [t.clone().requires_grad_() for t in (Lam, B, C, dt)]
    assert torch.autograd.gradcheck(lambda a, b, c, d: s4d_kernel(a, b, c, d, 5), args)


def test_broadcast_shared_parameters():
    Lam, P, B, C, dt = random_dplr(1, 4)
    dt3 = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    K = s4_dplr_kernel(Lam[0], P[0], B[0], C.expand(3, 4), dt3, 10)
    for h in range(3):
        assert torch.allclose(K[h], s4_dplr_kernel(Lam, P, B, C, dt3[h:h + 1], 10)[0])


def test_bad_inputs():
    Lam, P, B, C, dt = random_dplr(2, 3)
    with pytest.raises(ValueError, match="dt: expected finite values > 0"):
        s4_dplr_kernel(Lam, P, B, C, -dt, 8)
    with pytest.raises(ValueError, match="L: expected an int >= 1"):
        s4_dplr_kernel(Lam, P, B, C, dt, 0)
    with pytest.raises(TypeError, match="L: expected an int"):
        s4_dplr_kernel(Lam, P, B, C, dt, 8.0)
    with pytest.raises(ValueError, match="backend"):
        s4_dplr_kernel(Lam, P, B, C, dt, 8, backend="cuda")
    with pytest.raises(ValueError, match="B: expected last axis N2 = 3"):
        s4_dplr_kernel(Lam, P, B[:, :2], C, dt, 8)
    with pytest.raises(ValueError, match="channel axis H"):
        s4_dplr_kernel(Lam, P, B, C, torch.ones(5, dtype=torch.float64), 8)
    with pytest.raises(TypeError, match="one precision"):
        s4_dplr_kernel(Lam.to(torch.complex64), P, B, C, dt, 8)
    with pytest.raises(ValueError, match="Lambda: expected a 1 or 2-D"):
        s4_dplr_kernel(Lam[None, None], P, B, C, dt, 8)
    bad = C.clone()
    bad[0, 0] = complex("nan+0j")
    with pytest.raises(ValueError, match="C: expected finite"):
        s4_dplr_kernel(Lam, P, B, bad, dt, 8)
    with pytest.raises(TypeError, match="B: expected a real floating or complex dtype"):
        s4_dplr_kernel(Lam, P, torch.ones(2, 3, dtype=torch.int64), C, dt, 8)
    with pytest.raises(ValueError, match="method"):
        s4d_kernel(Lam, B, C, dt, 8, method="euler")


def test_conj_double():
    x = torch.tensor([[1 + 2j, 3 - 1j]], dtype=torch.complex128)
    assert conj_double(x).tolist() == [[1 + 2j, 3 - 1j, 1 - 2j, 3 + 1j]]
    with pytest.raises(ValueError, match="x: expected at least one axis"):
        conj_double(torch.tensor(1j))


@pytest.mark.parametrize("rank,channels", [(None, None), (2, 3)])
def test_dense_kernel_equals_powers_of_real_system(rank, channels):
    Lam, P, B, C, dt = random_dplr(2, 4, rank=rank, channels=channels)
    K = s4_dense_kernel(Lam, P, B, C, dt, 21)
    assert K.shape == ((channels,) if channels else ()) + (2, 21) and K.dtype == torch.float64
    assert rel(K, powers_oracle(Lam, P, B, C, dt, 21)) < 1e-10


@pytest.mark.parametrize("L", [1, 16, 37])
def test_s4_kernel_methods_agree_float64(L):
    Lam, P, B, C, dt = random_dplr(3, 5, channels=2)
    dense = s4_kernel(Lam, P, B, C, dt, L, method="dense")
    fast = s4_kernel(Lam, P, B, C, dt, L, method="dplr", backend="torch")
    assert rel(fast, dense) < 1e-9
    assert torch.equal(fast, s4_dplr_kernel(Lam, P, B, C, dt, L, backend="torch"))
    assert torch.equal(dense, s4_dense_kernel(Lam, P, B, C, dt, L))


def test_bad_method_names_method():
    Lam, P, B, C, dt = random_dplr(2, 3)
    assert KERNEL_METHODS == ("dplr", "dense") and check_method("dense") == "dense"
    with pytest.raises(ValueError, match=r"method: expected one of \['dplr', 'dense'\], got 'torch'"):
        s4_kernel(Lam, P, B, C, dt, 8, method="torch")
    with pytest.raises(ValueError, match="backend"):
        s4_kernel(Lam, P, B, C, dt, 8, backend="dense")
    with pytest.raises(ValueError, match="kernel_method: expected one of"):
        check_method("keops", "kernel_method")


@pytest.mark.keops
@pytest.mark.slow
def test_keops_kernel_equals_torch_kernel():
    """Same float64 Cauchy formula as tests/test_cauchy.py (compiled once, then cached)."""
    ok, reason = keops_available()
    if not ok:
        pytest.skip(f"pykeops not importable: {reason}")
    Lam, P, B, C, dt = random_dplr(2, 4)
    args = [t.clone().requires_grad_() for t in (Lam, P, B, C, dt)]
    try:
        Kk = s4_dplr_kernel(*args, 32, backend="keops")
    except RuntimeError as exc:
        pytest.skip(f"pykeops cannot compile here: {exc}")
    Kt = s4_dplr_kernel(*args, 32, backend="torch")
    assert rel(Kk, Kt) < 1e-10
    gk = torch.autograd.grad(Kk.square().sum(), args)
    gt = torch.autograd.grad(Kt.square().sum(), args)
    for a, b in zip(gk, gt):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)


def test_dplr_kernel_gradients_equal_dense_float64():
    """Values and gradients of the DPLR kernel (one-division Cauchy, analytic backward) == dense."""
    Lam, P, B, C, dt = random_dplr(3, 5, rank=2, channels=2)
    args = [t.clone().requires_grad_() for t in (Lam, P, B, C, dt)]
    Kf = s4_kernel(*args, 37, method="dplr", backend="torch")
    Kd = s4_kernel(*args, 37, method="dense")
    assert rel(Kf, Kd) < 1e-9
    W = torch.randn_like(Kd)
    gf = torch.autograd.grad((Kf * W).sum(), args)
    gd = torch.autograd.grad((Kd * W).sum(), args)
    for a, b in zip(gf, gd):
        assert rel(a, b) < 1e-8


def test_dplr_kernel_float32_gradients_unchanged_by_one_division_cauchy(monkeypatch):
    """float32 kernel and gradients: new torch Cauchy vs the previous checkpointed one vs float64 dense."""
    from liquidssm import cauchy as cauchy_mod

    d = nplr_legs(32, torch.complex64)
    H = 4
    C = torch.randn(H, 16, dtype=torch.complex64)
    dt = torch.logspace(-3, -1, H)
    args32 = [t.clone().requires_grad_() for t in (d.Lambda.expand(H, 16), d.P.expand(H, 16),
                                                     d.B.expand(H, 16), C, dt)]
    args64 = [t.detach().to(torch.complex128 if t.is_complex() else torch.float64).requires_grad_()
              for t in args32]
    L = 256
    K64 = s4_kernel(*args64, L, method="dense")
    W = torch.randn_like(K64)
    g64 = torch.autograd.grad((K64 * W).sum(), args64)

    def run():
        K = s4_dplr_kernel(*args32, L, backend="torch")
        return K, torch.autograd.grad((K * W.float()).sum(), args32)

    K_new, g_new = run()
    monkeypatch.setattr(cauchy_mod, "cauchy_torch", cauchy_mod._cauchy_torch_checkpointed)
    K_old, g_old = run()
    assert rel(K_new.double(), K64) < 1e-4 and rel(K_old.double(), K64) < 1e-4
    assert rel(K_new, K_old) < 1e-5
    for a, b, ref in zip(g_new, g_old, g64):
        err_new, err_old = rel(a.to(ref.dtype), ref), rel(b.to(ref.dtype), ref)
        assert err_new < max(1e-4, 3 * err_old), (err_new, err_old)

"""Unit tests of liquidssm.ssm (Liquid-S4 Eq. 1-6) against SciPy and the loop oracles."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from liquidssm import ssm

F64 = torch.float64


def stable_system(N: int, H: int | None = None, dtype=F64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (H, N, N) if H else (N, N)
    M = torch.randn(*shape, dtype=dtype, generator=g)
    A = M - M.transpose(-1, -2) - 0.5 * torch.eye(N, dtype=dtype)
    B = torch.randn(*shape[:-1], dtype=dtype, generator=g)
    C = torch.randn(*shape[:-1], dtype=dtype, generator=g)
    return A, B, C


@pytest.mark.parametrize("method", ["bilinear", "zoh"])
@pytest.mark.parametrize("dt", [1e-3, 0.1, 1.0])
def test_discretization_matches_scipy(method, dt):
    A, B, C = stable_system(5)
    A_bar, B_bar = ssm.discretize(A, B, dt, method=method)
    Ad, Bd, *_ = scipy.signal.cont2discrete(
        (A.numpy(), B.numpy()[:, None], C.numpy()[None], np.zeros((1, 1))), dt, method=method
    )
    np.testing.assert_allclose(A_bar.numpy(), Ad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(B_bar.numpy(), Bd[:, 0], rtol=0, atol=1e-12)


def test_bilinear_batched_steps_match_one_by_one():
    A, B, _ = stable_system(4, H=3)
    dt = torch.tensor([0.01, 0.1, 0.7], dtype=F64)
    A_bar, B_bar = ssm.bilinear(A, B, dt)
    for h in range(3):
        a, b = ssm.bilinear(A[h], B[h], dt[h].item())
        torch.testing.assert_close(A_bar[h], a)
        torch.testing.assert_close(B_bar[h], b)


def test_bilinear_keeps_stability_for_any_step():
    A, B, _ = stable_system(6)
    for dt in (1e-4, 1.0, 1e3):
        A_bar, _ = ssm.bilinear(A, B, dt)
        assert torch.linalg.eigvals(A_bar).abs().max() < 1


def test_complex_diagonal_system():
    lam = torch.complex(-torch.rand(4, dtype=F64), torch.randn(4, dtype=F64))
    B = torch.randn(4, dtype=torch.complex128)
    A_bar, B_bar = ssm.bilinear(torch.diag(lam), B, 0.2)
    expected = (1 + 0.1 * lam) / (1 - 0.1 * lam)
    torch.testing.assert_close(torch.diagonal(A_bar), expected)
    torch.testing.assert_close(B_bar, 0.2 * B / (1 - 0.1 * lam))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_recurrence_equals_convolution(dtype, tol):
    A, B, C = stable_system(6, H=3)
    A_bar, B_bar = ssm.bilinear(A, B, torch.tensor([0.05, 0.2, 1.0], dtype=F64))
    u = torch.randn(2, 3, 300, dtype=F64)
    A_bar, B_bar, C, u = (t.to(dtype) for t in (A_bar, B_bar, C, u))
    y = ssm.recurrence(A_bar, B_bar, C, u)
    K = ssm.kernel_by_powers(A_bar, B_bar, C, 300)
    for method in ("fft", "direct"):
        y2 = ssm.causal_conv(u, K, method=method)
        assert y2.dtype == dtype
        err = ((y2.double() - y.double()).norm() / y.double().norm()).item()
        assert err < tol, (method, err)


def test_recurrence_with_initial_state():
    A, B, C = stable_system(3)
    A_bar, B_bar = ssm.bilinear(A, B, 0.1)
    x0 = torch.randn(3, dtype=F64)
    u = torch.zeros(5, dtype=F64)
    y = ssm.recurrence(A_bar, B_bar, C, u, x0=x0)
    expected = torch.stack([C @ torch.linalg.matrix_power(A_bar, k + 1) @ x0 for k in range(5)])
    torch.testing.assert_close(y, expected)


def test_kernel_by_powers_definition():
    A, B, C = stable_system(4)
    A_bar, B_bar = ssm.bilinear(A, B, 0.3)
    K = ssm.kernel_by_powers(A_bar, B_bar, C, 7)
    expected = torch.stack([C @ torch.linalg.matrix_power(A_bar, k) @ B_bar for k in range(7)])
    torch.testing.assert_close(K, expected)


@pytest.mark.parametrize("L,Lk", [(1, 1), (17, 17), (64, 10), (10, 64)])
def test_fft_conv_equals_direct_and_numpy(L, Lk):
    u = torch.randn(2, L, dtype=F64)
    K = torch.randn(2, Lk, dtype=F64)
    y = ssm.causal_conv_fft(u, K)
    torch.testing.assert_close(y, ssm.causal_conv_direct(u, K), rtol=1e-10, atol=1e-12)
    ref = np.convolve(u[0].numpy(), K[0].numpy())[:L]
    np.testing.assert_allclose(y[0].numpy(), ref, atol=1e-12)


def test_complex_conv():
    u = torch.randn(3, 40, dtype=torch.complex128)
    K = torch.randn(40, dtype=torch.complex128)
    torch.testing.assert_close(ssm.causal_conv_fft(u, K), ssm.causal_conv_direct(u, K))


def test_gradients_of_discretization_and_conv():
    A, B, _ = stable_system(3)
    C = torch.randn(3, dtype=F64)
    u = torch.randn(12, dtype=F64)

    def output(A, B, C, dt, u):
        A_bar, B_bar = ssm.bilinear(A, B, dt)
        return ssm.causal_conv_fft(u, ssm.kernel_by_powers(A_bar, B_bar, C, 12))

    args = (A.requires_grad_(), B.requires_grad_(), C.requires_grad_(),
            torch.tensor(0.3, dtype=F64, requires_grad=True), u.requires_grad_())
    assert torch.autograd.gradcheck(output, args)
    assert torch.autograd.gradcheck(lambda A, B: ssm.zoh(A, B, 0.2)[1], args[:2])


# --- bad input: every error names the problem -------------------------------------------

def test_non_square_A():
    with pytest.raises(ValueError, match=r"A: expected a square"):
        ssm.bilinear(torch.zeros(3, 4), torch.zeros(4), 0.1)


def test_mismatched_B_and_C():
    A = -torch.eye(3)
    with pytest.raises(ValueError, match=r"B: expected shape \(\.\.\., N\) with N = 3"):
        ssm.bilinear(A, torch.zeros(4), 0.1)
    with pytest.raises(ValueError, match=r"C: expected shape \(\.\.\., N\) with N = 3"):
        ssm.kernel_by_powers(A, torch.zeros(3), torch.zeros(2), 5)


@pytest.mark.parametrize("dt", [0.0, -0.1, float("nan"), float("inf"), [0.1, -1.0]])
def test_non_positive_or_non_finite_step(dt):
    with pytest.raises(ValueError, match=r"dt: expected finite values > 0"):
        ssm.bilinear(-torch.eye(2), torch.ones(2), torch.tensor(dt))


def test_non_finite_values():
    A = -torch.eye(2)
    A[0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"A: expected finite values, found 1 NaN/inf"):
        ssm.bilinear(A, torch.ones(2), 0.1)
    with pytest.raises(ValueError, match=r"u: expected finite values"):
        ssm.causal_conv(torch.tensor([1.0, float("inf")]), torch.ones(2))


def test_wrong_dtypes():
    with pytest.raises(TypeError, match=r"A: expected a real floating or complex dtype, got torch.int64"):
        ssm.bilinear(torch.zeros(2, 2, dtype=torch.long), torch.ones(2), 0.1)
    with pytest.raises(TypeError, match=r"one precision"):
        ssm.bilinear(torch.zeros(2, 2, dtype=torch.float32), torch.ones(2, dtype=torch.float64), 0.1)
    with pytest.raises(TypeError, match=r"u: expected a real floating"):
        ssm.causal_conv(torch.ones(3, dtype=torch.bool), torch.ones(3))


def test_bad_length_and_method():
    A, B, C = -torch.eye(2), torch.ones(2), torch.ones(2)
    with pytest.raises(ValueError, match=r"L: expected an int >= 1, got 0"):
        ssm.kernel_by_powers(A, B, C, 0)
    with pytest.raises(TypeError, match=r"L: expected an int"):
        ssm.kernel_by_powers(A, B, C, 3.5)
    with pytest.raises(ValueError, match=r"method: expected one of \['bilinear', 'zoh'\]"):
        ssm.discretize(A, B, 0.1, method="euler")
    with pytest.raises(ValueError, match=r"leading axes must broadcast"):
        ssm.causal_conv(torch.ones(3, 5), torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"u: expected a .*-D tensor"):
        ssm.causal_conv(torch.tensor(1.0), torch.ones(2))


def test_discrete_errors_name_the_discrete_arguments():
    with pytest.raises(ValueError, match=r"A_bar: expected a square"):
        ssm.recurrence(torch.zeros(2, 3), torch.zeros(3), torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"B_bar: expected shape \(\.\.\., N\) with N = 2"):
        ssm.kernel_by_powers(torch.eye(2), torch.zeros(3), torch.zeros(2), 4)
    with pytest.raises(ValueError, match=r"x0: expected finite values"):
        ssm.recurrence(torch.eye(2), torch.ones(2), torch.ones(2), torch.ones(3),
                       x0=torch.tensor([float("nan"), 0.0]))

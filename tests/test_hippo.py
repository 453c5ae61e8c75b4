"""HiPPO-LegS (Eq. 14), its rank-1 correction, the NPLR -> DPLR decomposition (Eq. 15), S4D inits."""

from __future__ import annotations

import math

import pytest
import torch

from liquidssm.hippo import dplr_reconstruct, hippo_legs, legs_rank_correction, nplr_legs, s4d_init


def test_legs_entries_match_eq14():
    A, B = hippo_legs(5)
    for n in range(5):
        assert B[n] == pytest.approx(math.sqrt(2 * n + 1))
        for k in range(5):
            want = -math.sqrt((2 * n + 1) * (2 * k + 1)) if n > k else (-(n + 1) if n == k else 0.0)
            assert A[n, k].item() == pytest.approx(want)


@pytest.mark.parametrize("N", [1, 2, 7, 16])
def test_rank_correction_makes_normal_part_skew(N):
    A, _ = hippo_legs(N)
    P = legs_rank_correction(N)
    S = A + P[:, None] * P[None, :] + 0.5 * torch.eye(N, dtype=torch.float64)
    assert torch.allclose(S, -S.T, atol=1e-12)


@pytest.mark.parametrize("N,expected_imag", [
    (4, [-4.6033, -0.5565]),
    (7, [-15.0855, -3.7975, -1.1216]),
    (8, [-19.8574, -5.3542, -1.9578, -0.4275]),
])
def test_nplr_eigenvalues_reference_values(N, expected_imag):
    d = nplr_legs(N)
    assert d.Lambda.shape == (N // 2,) and d.V.shape == (N, N // 2)
    assert torch.allclose(d.Lambda.real, torch.full((N // 2,), -0.5, dtype=torch.float64))
    assert torch.allclose(d.Lambda.imag, torch.tensor(expected_imag, dtype=torch.float64), atol=1e-4)


def test_nplr_n64_range_and_positive_half():
    d = nplr_legs(64)
    assert d.Lambda.imag.min().item() == pytest.approx(-1303.27, abs=1e-2)
    assert d.Lambda.imag.max().item() == pytest.approx(-0.2639, abs=1e-4)
    pos = nplr_legs(64, half="positive")
    assert torch.allclose(pos.Lambda, d.Lambda.conj())
    assert torch.allclose(pos.B, d.B.conj()) and torch.allclose(pos.P, d.P.conj())


@pytest.mark.parametrize("N", [2, 4, 8, 64])
@pytest.mark.parametrize("half", ["negative", "positive"])
def test_dplr_reconstructs_legs(N, half):
    A, B = hippo_legs(N)
    d = nplr_legs(N, half=half)
    assert torch.allclose(dplr_reconstruct(d.Lambda, d.P, d.V), A, atol=1e-10 * N)
    assert torch.allclose(2 * (d.V @ d.B).real, B, atol=1e-10 * N)
    # V has orthonormal columns, orthogonal to their conjugates
    eye = torch.eye(N // 2, dtype=torch.complex128)
    assert torch.allclose(d.V.conj().T @ d.V, eye, atol=1e-12)
    assert torch.allclose(d.V.T @ d.V, torch.zeros_like(eye), atol=1e-12)


def test_odd_n_drops_real_mode_or_raises():
    d = nplr_legs(7)
    assert d.Lambda.shape == (3,)
    assert (d.Lambda.imag < 0).all()
    with pytest.raises(ValueError, match="odd state size 7"):
        nplr_legs(7, odd="raise")


def test_nplr_dtype_and_bad_inputs():
    assert nplr_legs(8, torch.complex64).Lambda.dtype == torch.complex64
    with pytest.raises(TypeError, match="dtype"):
        nplr_legs(8, torch.float32)
    with pytest.raises(ValueError, match="half"):
        nplr_legs(8, half="up")
    with pytest.raises(ValueError, match="N"):
        nplr_legs(1)
    with pytest.raises(TypeError, match="N"):
        hippo_legs(4.0)


def test_s4d_inits():
    N = 8
    lam, b = s4d_init(N, "lin", torch.complex128)
    assert torch.allclose(lam.imag, -math.pi * torch.arange(4, dtype=torch.float64))
    assert torch.all(b == 1)
    lam, _ = s4d_init(N, "inv", torch.complex128)
    n = torch.arange(4, dtype=torch.float64)
    assert torch.allclose(lam.imag, -(N / math.pi) * (N / (2 * n + 1) - 1))
    lam, b = s4d_init(N, "legs", torch.complex128)
    d = nplr_legs(N)
    assert torch.allclose(lam, d.Lambda) and torch.allclose(b, d.B)
    assert (s4d_init(N, "lin", half="positive")[0].imag >= 0).all()
    with pytest.raises(ValueError, match="kind"):
        s4d_init(N, "fourier")

"""Tests for liquidssm.scan: every scan method equals the sequential loop (real, complex, reverse,
initial state, other time axes), gradients match the loop's, gradcheck, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from liquidssm.scan import SCAN_METHODS, combine, linear_scan

FAST = [m for m in SCAN_METHODS if m != "sequential"]


def _coeffs(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(shape, generator=g, dtype=torch.float64) * 1.2 - 0.6)
    b = torch.randn(shape, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        phase = torch.rand(shape, generator=g, dtype=torch.float64) * 6.28
        a = a * torch.exp(1j * phase)
        b = b + 1j * torch.randn(shape, generator=g, dtype=torch.float64)
    return a.to(dtype), b.to(dtype)


def _loop(a, b, x0=None, reverse=False):
    """Independent oracle: a plain Python loop over the last axis."""
    L = a.shape[-1]
    x = torch.zeros(a.shape[:-1], dtype=a.dtype) if x0 is None else x0
    out = [None] * L
    order = range(L - 1, -1, -1) if reverse else range(L)
    for t in order:
        x = a[..., t] * x + b[..., t]
        out[t] = x
    return torch.stack(out, dim=-1)


@pytest.mark.parametrize("method", SCAN_METHODS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("L", [1, 2, 3, 8, 13, 100])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_matches_loop(method, dtype, L, reverse):
    a, b = _coeffs((2, 3, L), dtype)
    x0 = _coeffs((2, 3), dtype, seed=1)[1]
    ref = _loop(a, b, x0, reverse)
    x = linear_scan(a, b, x0, method=method, reverse=reverse, chunk=4)
    assert x.shape == ref.shape and x.dtype == dtype
    torch.testing.assert_close(x, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", FAST)
def test_scan_float32_tolerance(method):
    a, b = _coeffs((4, 5, 2048), torch.float64)
    a = 0.5 + 0.49 * a.abs()  # slowly decaying, long memory
    ref = _loop(a, b)
    x = linear_scan(a.float(), b.float(), method=method)
    assert (x.double() - ref).abs().max() < 1e-4


@pytest.mark.parametrize("method", FAST)
def test_scan_other_time_axis_and_broadcasting(method):
    a, b = _coeffs((2, 37, 3), torch.float64)
    ref = _loop(a.transpose(1, 2), b.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(linear_scan(a, b, dim=1, method=method, chunk=8), ref)
    torch.testing.assert_close(linear_scan(a, b, dim=-2, method=method, chunk=8), ref)
    # a shared across the batch broadcasts against b
    a1 = a[:1]
    ref1 = _loop(a1.expand_as(b).transpose(1, 2), b.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(linear_scan(a1, b, dim=1, method=method), ref1)


def test_combine_is_associative():
    p, q, r = (_coeffs((5,), torch.float64, seed=s) for s in range(3))
    left = combine(combine(p, q), r)
    right = combine(p, combine(q, r))
    for lt, rt in zip(left, right):
        torch.testing.assert_close(lt, rt)


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_scan_gradients_match_loop(method, dtype):
    a, b = _coeffs((2, 19), dtype)
    x0 = _coeffs((2,), dtype, seed=3)[1]
    w = _coeffs((2, 19), dtype, seed=4)[1]
    grads = []
    for fn in (lambda a, b, x0: _loop(a, b, x0, reverse=True),
               lambda a, b, x0: linear_scan(a, b, x0, method=method, reverse=True, chunk=4)):
        leaves = [t.clone().requires_grad_(True) for t in (a, b, x0)]
        loss = (fn(*leaves) * w).real.sum() + fn(*leaves).abs().square().sum()
        grads.append(torch.autograd.grad(loss, leaves))
    for g_ref, g in zip(*grads):
        torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", FAST)
def test_scan_gradcheck(method):
    a, b = _coeffs((2, 6), torch.float64)
    x0 = torch.randn(2, dtype=torch.float64)
    leaves = [t.clone().requires_grad_(True) for t in (a, b, x0)]
    assert torch.autograd.gradcheck(lambda a, b, x0: linear_scan(a, b, x0, method=method, chunk=4), leaves)


def test_scan_bad_inputs():
    a = torch.rand(2, 5)
    with pytest.raises(ValueError, match="broadcastable"):
        linear_scan(a, torch.rand(3, 4))
    with pytest.raises(ValueError, match="x0: expected shape"):
        linear_scan(a, a, torch.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        linear_scan(a, torch.full((2, 5), float("nan")))
    with pytest.raises(ValueError, match="method"):
        linear_scan(a, a, method="magic")
    with pytest.raises(TypeError, match="precision"):
        linear_scan(a, a.double())
    with pytest.raises(TypeError, match="dtype"):
        linear_scan(torch.ones(2, 5, dtype=torch.long), a)
    with pytest.raises(ValueError, match="dim"):
        linear_scan(a, a, dim=2)
    with pytest.raises(ValueError, match="non-empty"):
        linear_scan(torch.rand(2, 0), torch.rand(2, 0))
    with pytest.raises(ValueError, match="chunk"):
        linear_scan(a, a, method="chunked", chunk=0)


def test_core_algorithms_agree_with_the_loop_in_float64():
    from liquidssm.scan import blelloch_core, hillis_steele_core, sequential_core

    g = torch.Generator().manual_seed(3)
    a = torch.rand(3, 37, 5, generator=g, dtype=torch.float64) * 1.5 - 0.75
    b = torch.randn(3, 37, 5, generator=g, dtype=torch.float64)
    ref = sequential_core(a, b, 1)
    x = b[:, 0]
    for t in range(1, 37):
        x = a[:, t] * x + b[:, t]
    assert torch.allclose(ref[:, -1], x, rtol=0, atol=1e-12)
    for core in (hillis_steele_core, blelloch_core):
        assert torch.allclose(core(a, b, 1), ref, rtol=0, atol=1e-12)

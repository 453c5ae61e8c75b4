"""Conjugate-pair Cauchy reductions: naive oracle, chunked torch, keops, dispatch (Alg. 1 line 2)."""

from __future__ import annotations

import pytest
import torch

from liquidssm import cauchy as cauchy_mod
from liquidssm.cauchy import cauchy, cauchy_keops, cauchy_naive, cauchy_torch, keops_available


def _problem(batch=(3,), N2=5, Lz=11, dtype=torch.complex128, grad=False):
    rd = torch.float64 if dtype == torch.complex128 else torch.float32
    v = torch.randn(*batch, N2, dtype=dtype)
    w = torch.complex(-torch.rand(*batch, N2, dtype=rd) - 0.1, 3 * torch.randn(*batch, N2, dtype=rd))
    z = torch.complex(torch.zeros(Lz, dtype=rd), 4 * torch.randn(Lz, dtype=rd))
    if grad:
        v.requires_grad_()
        w.requires_grad_()
    return v, z, w


def test_naive_matches_explicit_double_sum():
    v, z, w = _problem(batch=(), N2=3, Lz=4)
    vf, wf = torch.cat([v, v.conj()]), torch.cat([w, w.conj()])
    want = torch.stack([(vf / (zj - wf)).sum() for zj in z])
    assert torch.allclose(cauchy_naive(v, z, w), want, rtol=1e-13)


@pytest.mark.parametrize("chunk_elems", [1, 7, 64, 2**22])
def test_torch_chunked_equals_naive(chunk_elems):
    v, z, w = _problem(batch=(2, 3), N2=4, Lz=13)
    out = cauchy_torch(v, z, w, chunk_elems=chunk_elems)
    assert out.shape == (2, 3, 13)
    assert torch.allclose(out, cauchy_naive(v, z, w), rtol=1e-12)


def test_torch_chunked_gradients_equal_naive():
    v, z, w = _problem(grad=True)
    gout = torch.randn(3, 11, dtype=torch.complex128)
    g1 = torch.autograd.grad((cauchy_torch(v, z, w, chunk_elems=10) * gout.conj()).real.sum(), (v, w))
    g2 = torch.autograd.grad((cauchy_naive(v, z, w) * gout.conj()).real.sum(), (v, w))
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-12)


def test_torch_gradcheck():
    v, z, w = _problem(batch=(2,), N2=3, Lz=5, grad=True)
    z.requires_grad_()
    assert torch.autograd.gradcheck(lambda v, z, w: cauchy_torch(v, z, w, chunk_elems=6), (v, z, w))


def test_float32_close_to_float64():
    v, z, w = _problem()
    want = cauchy_naive(v, z, w)
    got = cauchy_torch(v.to(torch.complex64), z.to(torch.complex64), w.to(torch.complex64))
    assert got.dtype == torch.complex64
    assert ((got.to(torch.complex128) - want).abs().max() / want.abs().max()) < 1e-5


def test_auto_small_problem_uses_torch_without_warning(recwarn):
    v, z, w = _problem()
    assert torch.allclose(cauchy(v, z, w), cauchy_naive(v, z, w))
    assert not [r for r in recwarn if "pykeops" in str(r.message)]


def test_auto_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(cauchy_mod, "AUTO_KEOPS_MIN_WORK", 1)
    monkeypatch.setitem(cauchy_mod._KEOPS_STATE, "checked", True)
    monkeypatch.setitem(cauchy_mod._KEOPS_STATE, "ok", False)
    monkeypatch.setitem(cauchy_mod._KEOPS_STATE, "reason", "ImportError: pretend")
    monkeypatch.setitem(cauchy_mod._KEOPS_STATE, "warned", False)
    v, z, w = _problem()
    with pytest.warns(RuntimeWarning, match="falling back to the chunked pure-torch"):
        out = cauchy(v, z, w, backend="auto")
    assert torch.allclose(out, cauchy_naive(v, z, w))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cauchy(v, z, w, backend="auto")  # second call: no second warning
    with pytest.raises(RuntimeError, match="pykeops is not usable"):
        cauchy(v, z, w, backend="keops")


def test_bad_inputs():
    v, z, w = _problem()
    with pytest.raises(ValueError, match="backend"):
        cauchy(v, z, w, backend="cuda")
    with pytest.raises(ValueError, match="same number of stored modes"):
        cauchy_torch(v, z, w[..., :-1])
    with pytest.raises(ValueError, match="do not broadcast"):
        cauchy_torch(v, z, w[:2])
    with pytest.raises(TypeError, match="one precision"):
        cauchy_torch(v.to(torch.complex64), z, w)
    bad = v.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="v: expected finite"):
        cauchy_torch(bad, z, w)
    with pytest.raises(TypeError, match="z"):
        cauchy_torch(v, torch.arange(3), w)
    with pytest.raises(ValueError, match="chunk_elems"):
        cauchy_torch(v, z, w, chunk_elems=0)


def _keops_or_skip():
    ok, reason = keops_available()
    if not ok:
        pytest.skip(f"pykeops not importable: {reason}")


@pytest.mark.keops
@pytest.mark.slow
def test_keops_values_and_gradients_equal_torch():
    """One float64 formula (forward + v, w gradients: 3 compiles, cached in KEOPS_CACHE_FOLDER)."""
    _keops_or_skip()
    v, z, w = _problem(batch=(2, 3), N2=6, Lz=17, grad=True)
    try:
        out_k = cauchy_keops(v, z, w)
    except RuntimeError as exc:
        pytest.skip(f"pykeops cannot compile here: {exc}")
    out_t = cauchy_torch(v, z, w)
    assert out_k.shape == out_t.shape == (2, 3, 17)
    assert torch.allclose(out_k, out_t, rtol=1e-11, atol=1e-12)
    gout = torch.randn_like(out_t)
    gk = torch.autograd.grad((out_k * gout.conj()).real.sum(), (v, w))
    gt = torch.autograd.grad((out_t * gout.conj()).real.sum(), (v, w))
    for a, b in zip(gk, gt):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.keops
@pytest.mark.slow
def test_auto_uses_keops_for_large_problems(monkeypatch):
    """With the size threshold lowered, 'auto' routes to keops (same cached float64 formula)."""
    _keops_or_skip()
    v, z, w = _problem()
    try:
        cauchy_keops(v, z, w)
    except RuntimeError as exc:
        pytest.skip(f"pykeops cannot compile here: {exc}")
    calls = []
    real = cauchy_mod.cauchy_keops
    monkeypatch.setattr(cauchy_mod, "AUTO_KEOPS_MIN_WORK", 1)
    monkeypatch.setattr(cauchy_mod, "cauchy_keops", lambda *a: calls.append(1) or real(*a))
    out = cauchy(v, z, w, backend="auto")
    assert calls == [1]
    assert torch.allclose(out, cauchy_naive(v, z, w), rtol=1e-11)


def _broadcast_problem(vb, wb, zb, N2=4, Lz=9):
    v = torch.randn(*vb, N2, dtype=torch.complex128)
    w = torch.complex(-torch.rand(*wb, N2, dtype=torch.float64) - 0.1,
                      3 * torch.randn(*wb, N2, dtype=torch.float64))
    z = torch.complex(0.3 * torch.randn(*zb, Lz, dtype=torch.float64),
                      4 * torch.randn(*zb, Lz, dtype=torch.float64))
    return [t.requires_grad_() for t in (v, z, w)]


# (v batch, w batch, z batch): rows shared by v's leading axes (the kernel's 2x2 blocks),
# everything shared, and w/z rows that broadcast against each other.
BROADCASTS = [((3,), (3,), ()), ((2, 3), (3,), ()), ((2, 2, 3), (3,), (3,)), ((), (), ()),
              ((5,), (), (2, 1)), ((2, 1), (1, 3), ())]


@pytest.mark.parametrize("vb,wb,zb", BROADCASTS)
@pytest.mark.parametrize("chunk_elems", [1, 7, 2**20])
def test_one_division_values_and_all_gradients_equal_naive(vb, wb, zb, chunk_elems):
    """The merged formula's closed-form backward (v, z, w, complex) equals autograd of the oracle."""
    v, z, w = _broadcast_problem(vb, wb, zb)
    got, want = cauchy_torch(v, z, w, chunk_elems=chunk_elems), cauchy_naive(v, z, w)
    assert got.shape == want.shape
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-13)
    gout = torch.randn_like(want)
    g1 = torch.autograd.grad((got * gout.conj()).real.sum(), (v, z, w))
    g2 = torch.autograd.grad((want * gout.conj()).real.sum(), (v, z, w))
    for a, b in zip(g1, g2):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("vb,wb,zb", BROADCASTS[:3])
def test_one_division_gradcheck_complex_inputs(vb, wb, zb):
    v, z, w = _broadcast_problem(vb, wb, zb, N2=3, Lz=5)
    assert torch.autograd.gradcheck(lambda v, z, w: cauchy_torch(v, z, w, chunk_elems=4), (v, z, w))


def test_one_division_gradcheck_real_inputs_and_partial_gradients():
    v = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    w = (-torch.rand(2, 3, dtype=torch.float64) - 0.5).requires_grad_()
    z = torch.linspace(0.1, 2.0, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, z, w: cauchy_torch(v, z, w, chunk_elems=5), (v, z, w))
    vc, zc, wc = _broadcast_problem((2, 3), (3,), ())
    for idx, leaf in enumerate((vc, zc, wc)):  # one input needs a gradient: the rest is skipped
        others = [t.detach() for t in (vc, zc, wc)]
        others[idx] = leaf
        g1, = torch.autograd.grad(cauchy_torch(*others, chunk_elems=5).abs().square().sum(), leaf)
        g2, = torch.autograd.grad(cauchy_naive(*others).abs().square().sum(), leaf)
        assert torch.allclose(g1, g2, rtol=1e-11, atol=1e-12)


def test_one_division_equals_previous_checkpointed_backend():
    v, z, w = _broadcast_problem((2, 2, 3), (3,), ())
    gout = torch.randn(2, 2, 3, 9, dtype=torch.complex128)
    outs = [fn(v, z, w, chunk_elems=10) for fn in (cauchy_torch, cauchy_mod._cauchy_torch_checkpointed)]
    assert torch.allclose(outs[0], outs[1], rtol=1e-12, atol=1e-13)
    g1, g2 = (torch.autograd.grad((o * gout.conj()).real.sum(), (v, z, w)) for o in outs)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-11, atol=1e-12)
    with torch.no_grad():
        assert torch.allclose(cauchy_torch(v, z, w, chunk_elems=10), outs[1], rtol=1e-12, atol=1e-13)


def test_one_division_float32_gradients_close_to_float64():
    v, z, w = _broadcast_problem((2, 2, 3), (3,), ())
    gout = torch.randn(2, 2, 3, 9, dtype=torch.complex128)
    g64 = torch.autograd.grad((cauchy_naive(v, z, w) * gout.conj()).real.sum(), (v, z, w))
    v32, z32, w32 = (t.detach().to(torch.complex64).requires_grad_() for t in (v, z, w))
    r32 = cauchy_torch(v32, z32, w32, chunk_elems=10)
    g32 = torch.autograd.grad((r32 * gout.to(torch.complex64).conj()).real.sum(), (v32, z32, w32))
    for a, b in zip(g32, g64):
        assert a.dtype == torch.complex64
        assert ((a.to(torch.complex128) - b).abs().max() / b.abs().max()) < 1e-5


def test_torch_backend_under_torch_func_jvp():
    v, z, w = (t.detach() for t in _broadcast_problem((2, 3), (3,), ()))
    dv = torch.randn_like(v)
    _, t1 = torch.func.jvp(lambda v: cauchy_torch(v, z, w, chunk_elems=10), (v,), (dv,))
    _, t2 = torch.func.jvp(lambda v: cauchy_naive(v, z, w), (v,), (dv,))
    assert torch.allclose(t1, t2, rtol=1e-12, atol=1e-13)

"""The fused Liquid-S4 PB term and the one-row PB coefficients against the previous implementation (the oracle).

Issue 25: :func:`liquidssm.liquid.pb_term` (Horner products, one moving sum, analytic backward)
against :func:`liquidssm.liquid.pb_term_reference`; :func:`liquidssm.kernels.s4_dplr_kernel_and_row`
against :func:`liquidssm.kernels.s4_dplr_kernel_and_taps` and the dense ``C``; and the layer with
``liquid_impl="fused"`` against ``liquid_impl="reference"``: outputs and every gradient in float64.
"""

from __future__ import annotations

import pytest
import torch

from liquidssm import cauchy as cauchy_mod
from liquidssm import hippo, kernels, layers, liquid

f64, c128 = torch.float64, torch.complex128


def grads(fn, inputs, gout):
    out = fn(*inputs)
    got = torch.autograd.grad(out, inputs, gout, allow_unused=True)
    return out.detach(), [torch.zeros_like(x) if g is None else g for g, x in zip(got, inputs)]


@pytest.mark.parametrize("order", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("L", [1, 2, 5, 17])
def test_pb_term_equals_reference_with_gradients(order, L):
    torch.manual_seed(order * 100 + L)
    u = torch.randn(2, 3, L, dtype=f64, requires_grad=True)
    coef = torch.randn(3, order - 1, dtype=f64, requires_grad=True)
    gout = torch.randn(2, 3, L, dtype=f64)
    for L_tilde in sorted({1, 3, max(1, L - 1), L, L + 4}):
        y1, g1 = grads(lambda u, a, Lt=L_tilde: liquid.pb_term(u, a, Lt), (u, coef), gout)
        y2, g2 = grads(lambda u, a, Lt=L_tilde: liquid.pb_term_reference(u, a, Lt), (u, coef), gout)
        torch.testing.assert_close(y1, y2, rtol=0, atol=1e-12)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_pb_term_non_contiguous_input_and_broadcast_gradient():
    """A flipped view as input (the bidirectional layer passes one) and the stride-0 gradient of ``.sum()``."""
    torch.manual_seed(1)
    coef = torch.randn(4, 4, dtype=f64, requires_grad=True)
    u = torch.randn(2, 4, 9, dtype=f64).requires_grad_()
    g1 = torch.autograd.grad(liquid.pb_term(u.flip(-1), coef, 9).sum(), (u, coef))
    g2 = torch.autograd.grad(liquid.pb_term_reference(u.flip(-1), coef, 9).sum(), (u, coef))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 40, 2**19])
@pytest.mark.parametrize("layout", ["bhl", "blh", "flipped"])
@pytest.mark.parametrize("order", [2, 5])
def test_pb_term_chunks_and_layouts_equal_the_reference(order, layout, chunk, monkeypatch):
    """Every chunk size (down to one element: one series per chunk; rows not a multiple of H) and both memory layouts
    (the layer's ``(B, L, H)`` read in place, anything else made contiguous) give the reference's values and gradients."""
    monkeypatch.setattr(liquid, "PB_CHUNK_ELEMS", chunk)
    monkeypatch.setattr(liquid, "BLOCKED_SCAN_MIN_L", 1 if chunk == 7 else 10**9)  # both scans of the (B, L, H) layout
    torch.manual_seed(order + chunk)
    B, H, L = 3, 5, 11
    base = torch.randn(B, L, H, dtype=f64) if layout == "blh" else torch.randn(B, H, L, dtype=f64)
    coef = torch.randn(H, order - 1, dtype=f64, requires_grad=True)
    gout = torch.randn(B, L, H, dtype=f64).transpose(1, 2)  # the gradient arrives in the layer's layout
    view = {"blh": lambda t: t.transpose(1, 2), "bhl": lambda t: t, "flipped": lambda t: t.flip(-1)}[layout]
    x = base.clone().requires_grad_()
    for L_tilde in (4, L):
        y1, g1 = grads(lambda x, a, Lt=L_tilde: liquid.pb_term(view(x), a, Lt), (x, coef), gout)
        y2, g2 = grads(lambda x, a, Lt=L_tilde: liquid.pb_term_reference(view(x), a, Lt), (x, coef), gout)
        assert liquid._time_major(view(x.detach()))[2] == (layout == "blh")  # the layer's layout is read in place
        torch.testing.assert_close(y1, y2, rtol=0, atol=1e-12)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("L", [1, 7, 8, 9, 30, 33])
def test_blocked_time_scan_equals_cumsum(L, monkeypatch):
    """The two-level scan of the layer's (B, L, H) layout (forced on at short L) against torch.cumsum, tails included."""
    monkeypatch.setattr(liquid, "BLOCKED_SCAN_MIN_L", 1)
    x = torch.randn(2, L, 3, dtype=f64)
    got = liquid._cumsum_time(x)
    torch.testing.assert_close(got, x.cumsum(1), rtol=0, atol=1e-12)
    assert got.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("order", [2, 4, 6])
def test_pb_term_gradcheck(order):
    torch.manual_seed(order)
    u = torch.randn(2, 2, 7, dtype=f64, requires_grad=True)
    coef = torch.randn(2, order - 1, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, a: liquid.pb_term(u, a, 4), (u, coef))


def test_pb_term_inside_torch_func_uses_the_reference():
    torch.manual_seed(2)
    u = torch.randn(1, 2, 6, dtype=f64)
    coef = torch.randn(2, 3, dtype=f64)
    g_func = torch.func.grad(lambda x: liquid.pb_term(x, coef, 6).pow(2).sum())(u)
    u1 = u.clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(liquid.pb_term_reference(u1, coef, 6).pow(2).sum(), u1)
    torch.testing.assert_close(g_func, g_ref, rtol=0, atol=1e-12)


def system(H=3, N=8, ch=2, rank=1, seed=0):
    torch.manual_seed(seed)
    d = hippo.nplr_legs(N, c128)
    Lam, B = (t.expand(H, -1).clone() for t in (d.Lambda, d.B))
    P = d.P.expand(H, -1).clone()[None]
    if rank > 1:  # an extra random low-rank column (the row form must not assume rank 1)
        P = torch.cat([P, 0.3 * torch.randn(rank - 1, H, N // 2, dtype=c128)])
    C = torch.randn(ch, H, N // 2, dtype=c128)
    return Lam, (P[0] if rank == 1 else P), B, C, torch.linspace(0.05, 0.3, H, dtype=f64)


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("ch", [1, 2])
@pytest.mark.parametrize("L", [7, 8, 32])
def test_kernel_and_row_equals_kernel_and_taps(L, ch, rank):
    Lam, P, B, C, dt = system(ch=ch, rank=rank)
    Ct = kernels.c_tilde(Lam, P, B, C, dt, L)
    B_bar = liquid.dplr_B_bar(Lam, P, B, dt) if rank == 1 else B * 0.1
    V = torch.stack([B_bar**p for p in range(2, 6)])
    K1, T1 = kernels.s4_dplr_kernel_and_taps(Lam, P, B, Ct, dt, L, V, backend="torch")
    K2, E = kernels.s4_dplr_kernel_and_row(Lam, P, B, Ct, dt, L, backend="torch")
    torch.testing.assert_close(K2, K1, rtol=0, atol=1e-12)
    T2 = (kernels.bilinear_input(Lam, P, V, dt)[None] * E[:, None]).sum(-1).real
    torch.testing.assert_close(T2, T1, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", [2, 3, 6])
def test_pb_coefficients_row_and_columns_equal_the_dense_oracle(order):
    L = 12
    Lam, P, B, C, dt = system()
    Ct = kernels.c_tilde(Lam, P, B, C, dt, L)
    want = liquid.pb_coefficients(Lam, P, B, C, dt, order, method="dense")
    for taps in liquid.PB_TAPS:
        K, coef = liquid.pb_coefficients_tilde(Lam, P, B, Ct, dt, order, L, backend="torch", with_kernel=True, taps=taps)
        torch.testing.assert_close(coef, want, rtol=0, atol=1e-12)
        torch.testing.assert_close(K, kernels.s4_dense_kernel(Lam, P, B, C, dt, L), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="taps"):
        liquid.pb_coefficients_tilde(Lam, P, B, Ct, dt, order, L, taps="rows")


@pytest.mark.parametrize("taps", ["columns", "row", "two-columns"])
def test_pb_coefficients_refuse_a_rank_two_P(taps):
    """Eq. (16)'s B̄ is the rank-1 Sherman-Morrison one: a rank-2 P is refused, not silently mis-discretized."""
    Lam, P, B, C, dt = system(rank=2)
    with pytest.raises(ValueError, match="rank-1"):
        liquid.pb_coefficients_tilde(Lam, P, B, C, dt, 3, 8, backend="torch", taps=taps)


def test_pb_coefficients_row_gradcheck():
    Lam, P, B, C, dt = system(H=1, N=4, ch=1)
    Ct = kernels.c_tilde(Lam, P, B, C, dt, 6).requires_grad_()
    Bg, Lg = B.clone().requires_grad_(), Lam.clone().requires_grad_()
    dtg = dt.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda Lam, B, Ct, dt: liquid.pb_coefficients_tilde(Lam, P, B, Ct, dt, 4, 6, backend="torch", taps="row"),
        (Lg, Bg, Ct, dtg))


def layer_pair(**kw):
    out = []
    for impl in layers.LIQUID_IMPLS:
        torch.manual_seed(0)
        out.append(layers.LiquidS4Layer(4, 6, dt_min=0.05, dt_max=0.3, cauchy_backend="torch", liquid_impl=impl,
                                        **kw).double())
    return out


def all_grads(layer, u, lengths=None):
    u = u.clone().requires_grad_()
    y = layer(u, lengths)
    names = [n for n, p in layer.named_parameters() if p.requires_grad]
    got = torch.autograd.grad(y.pow(2).sum(), [u, *(dict(layer.named_parameters())[n] for n in names)],
                              allow_unused=True)
    return y.detach(), dict(zip(["u", *names], got))


@pytest.mark.parametrize("order", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_layer_fused_equals_reference_outputs_and_all_gradients(order, bidirectional, variant):
    fused, ref = layer_pair(kind="pb", order=order, bidirectional=bidirectional, variant=variant, l_max=16)
    torch.manual_seed(3)
    u = torch.randn(2, 13, 4, dtype=f64)
    y1, g1 = all_grads(fused, u)
    y2, g2 = all_grads(ref, u)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-11)
    assert g1.keys() == g2.keys()
    for name in g1:
        if g1[name] is None or g2[name] is None:
            assert g1[name] is None and g2[name] is None, name
            continue
        torch.testing.assert_close(g1[name], g2[name], rtol=0, atol=1e-10, msg=name)


@pytest.mark.parametrize("opts", [dict(c_param="c"), dict(L_tilde=5, l_max=16), dict(kind="kb", l_max=16)])
def test_layer_fused_equals_reference_other_settings_and_padding(opts):
    kw = {"kind": "pb", "order": 3, **opts}
    fused, ref = layer_pair(**kw)
    torch.manual_seed(4)
    u = torch.randn(3, 11, 4, dtype=f64)
    lengths = torch.tensor([11, 7, 3])
    y1, g1 = all_grads(fused, u, lengths)
    y2, g2 = all_grads(ref, u, lengths)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-11)
    for name in g1:
        if g1[name] is not None:
            torch.testing.assert_close(g1[name], g2[name], rtol=0, atol=1e-10, msg=name)


def test_layer_rejects_unknown_liquid_impl():
    with pytest.raises(ValueError, match="liquid_impl"):
        layers.LiquidS4Layer(4, 6, liquid_impl="compiled")


def test_auto_counts_shared_rows_not_right_hand_sides(monkeypatch):
    """Many right-hand sides on few rows stay on torch (they share the reciprocals there)."""
    torch.manual_seed(5)
    v = torch.randn(16, 2, 4, dtype=c128)  # 16 right-hand sides on 2 rows
    z = torch.randn(2, 8, dtype=c128)
    w = torch.complex(-torch.rand(2, 4, dtype=f64), torch.randn(2, 4, dtype=f64))
    calls = []
    monkeypatch.setattr(cauchy_mod, "AUTO_KEOPS_MIN_WORK", 2 * 4 * 8 + 1)  # above R N2 Lz, below M N2 Lz
    monkeypatch.setattr(cauchy_mod, "cauchy_keops", lambda *a: calls.append(1))
    out = cauchy_mod.cauchy(v, z, w, backend="auto")
    assert calls == []
    torch.testing.assert_close(out, cauchy_mod.cauchy_naive(v, z, w), rtol=0, atol=1e-12)


def test_bench_liquid_rows_parts_and_recorded_file(tmp_path):
    from liquidssm.bench import liquid as bench

    df = bench.run_liquid_benchmark(H=4, N=4, lengths=(16,), batch=1, orders=(2, 3), kinds=("pb",), repeats=1,
                                    impls=("fused", "reference"), cauchy_backend="torch", parts=True)
    assert set(df.layer) == {"S4", "PB", "PB (reference)", "S4 kernel", "PB kernel", "PB term"}
    assert (df[df.layer == "S4"].ratio == 1).all() and (df.ms > 0).all()
    table = bench.overhead_table(df)
    assert {("PB", 2), ("PB (reference)", 3), ("PB term", 2)} <= set(table.index)
    out = tmp_path / "liquid-test.json"
    assert bench.main(["--quick", "--orders", "2", "--repeats", "1", "--cauchy-backend", "torch", "--threads", "1",
                       "--out", str(out)]) == 0
    rows, meta = bench.load_liquid_benchmark(out)
    assert meta["format"] == bench.FORMAT and meta["settings"]["threads"] == 1
    assert {"allocator", "allocator_mode", "compile", "loadavg", "loadavg_before"} <= set(meta["settings"])
    assert set(rows.layer) == {"S4", "PB", "PB (reference)"}
    with pytest.raises(SystemExit):  # an existing file is not overwritten without --force
        bench.main(["--quick", "--out", str(out)])
    (tmp_path / "other.json").write_text('{"records": []}')
    with pytest.raises(ValueError, match="bench liquid"):
        bench.load_liquid_benchmark(tmp_path / "other.json")


def test_bench_official_liquid_times_every_order_of_ours():
    from liquidssm.bench import official

    records = official.measure("liquid", {"B": 1, "H": 2, "N": 4, "L": 16, "P": 4}, None, repeats=1, warmup=0,
                               threads=1, rtol=None)
    variants = {r["variant"] for r in records if r["kind"] == "time"}
    assert variants == {"ours_s4", "ours_pb", "ours_pb3", "ours_pb4"}
    assert [official.pb_variant("official", p) for p in (2, 5)] == ["official_pb", "official_pb5"]


def test_pb_term_validates_its_inputs():
    u = torch.randn(2, 3, 5)
    with pytest.raises(ValueError, match=r"u: expected a 3-D tensor \(B, H, L\)"):
        liquid.pb_term(u[0], torch.randn(3, 1), 5)
    with pytest.raises(ValueError, match=r"coef: expected shape \(H, order - 1\) with H = 3"):
        liquid.pb_term(u, torch.randn(4, 1), 5)
    with pytest.raises(ValueError, match="L_tilde"):
        liquid.pb_term(u, torch.randn(3, 1), 0)
    with pytest.raises(TypeError, match="u"):
        liquid.pb_term(torch.ones(2, 3, 5, dtype=torch.int64), torch.randn(3, 1), 5)
    # float64 coefficients on a float32 input: the input's dtype, like the reference
    assert liquid.pb_term(u, torch.randn(3, 2, dtype=f64), 5).dtype == torch.float32

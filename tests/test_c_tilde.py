"""Learning C̃ = C(I − Ā^L) instead of C: kernels, S4/Liquid-S4 layers, loading, configs (float64 oracles).

A ``c_param="tilde"`` layer and a ``c_param="c"`` layer built from the same seed describe the same
system (the random C is drawn identically and converted once), so their outputs and input
gradients must agree; the C parameterisation (and the dense-powers kernel) is the oracle.
"""

from __future__ import annotations

import pytest
import torch

from liquidssm import hippo, kernels, layers, liquid
from liquidssm.configs import SequenceModelConfig
from liquidssm.repro.models import build_model

f64, c128 = torch.float64, torch.complex128
DPLR = dict(kernel_method="dplr", cauchy_backend="torch")


def system(H=3, N=8, ch=2, seed=0):
    torch.manual_seed(seed)
    d = hippo.nplr_legs(N, c128)
    Lam, P, B = (t.expand(H, -1).clone() for t in (d.Lambda, d.P, d.B))
    C = torch.randn(ch, H, N // 2, dtype=c128)
    return Lam, P, B, C, torch.linspace(0.05, 0.3, H, dtype=f64)


@pytest.mark.parametrize("L", [7, 16])
def test_c_tilde_round_trip_and_doubling(L):
    Lam, P, B, C, dt = system()
    Ct = kernels.c_tilde(Lam, P, B, C, dt, L)
    torch.testing.assert_close(kernels.c_from_tilde(Lam, P, B, Ct, dt, L), C, rtol=0, atol=1e-12)
    torch.testing.assert_close(kernels.double_c_tilde(Lam, P, B, Ct, dt, L), kernels.c_tilde(Lam, P, B, C, dt, 2 * L),
                               rtol=0, atol=1e-12)
    # the dense oracle accepts C̃ too
    torch.testing.assert_close(kernels.s4_kernel(Lam, P, B, Ct, dt, L, method="dense", c_is_tilde=True),
                               kernels.s4_dense_kernel(Lam, P, B, C, dt, L), rtol=0, atol=1e-12)


@pytest.mark.parametrize("L", [9, 16])
def test_kernel_and_taps_give_the_kernel_and_the_pb_coefficients(L):
    Lam, P, B, C, dt = system()
    Ct = kernels.c_tilde(Lam, P, B, C, dt, L)
    K, coef = liquid.pb_coefficients_tilde(Lam, P, B, Ct, dt, 4, L, backend="torch", with_kernel=True)
    torch.testing.assert_close(K, kernels.s4_dense_kernel(Lam, P, B, C, dt, L), rtol=0, atol=1e-12)
    torch.testing.assert_close(coef, liquid.pb_coefficients(Lam, P, B, C, dt, 4), rtol=0, atol=1e-12)
    # tap 0 of a kernel is the node mean of its spectrum
    K_hat = torch.fft.rfft(K, n=L)
    torch.testing.assert_close(kernels.node_mean(K_hat, L), K[..., 0], rtol=0, atol=1e-12)


def test_pb_coefficients_tilde_gradcheck():
    Lam, P, B, C, dt = system(H=1, N=4, ch=1)
    Ct = kernels.c_tilde(Lam, P, B, C, dt, 6).requires_grad_()
    Bg = B.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda B, Ct: liquid.pb_coefficients_tilde(Lam, P, B, Ct, dt, 3, 6, backend="torch"), (Bg, Ct))


def pair(cls=layers.S4Layer, l_max=8, seed=0, **kw):
    """The same system as a C layer (oracle) and a C̃ layer learned at ``l_max``.

    The C̃ layer converted its random C in float32 at init; the C layer gets that system's C
    recovered in float64, so the two are one system to float64 rounding.
    """
    out = []
    for opts in (dict(c_param="c"), dict(c_param="tilde", l_max=l_max)):
        torch.manual_seed(seed)
        out.append(cls(3, 6, dt_min=0.05, dt_max=0.3, **opts, **kw).double())
    with torch.no_grad():
        out[0].C.copy_(torch.view_as_real(out[1].ssm_parameters()[3]))
    return out


def io_grads(m, u):
    u = u.clone().requires_grad_()
    y = m(u)
    (g,) = torch.autograd.grad(y.pow(2).sum(), u)
    return y.detach(), g


@pytest.mark.parametrize("method", ["dplr", "dense"])
@pytest.mark.parametrize("L", [8, 5, 19])  # = l_max, < l_max, > l_max (C̃ doubled twice)
def test_s4_layer_tilde_equals_c_layer(method, L):
    c_layer, t_layer = pair(bidirectional=True, kernel_method=method, cauchy_backend="torch")
    assert int(t_layer.l_max) == 8
    u = torch.randn(2, L, 3, dtype=f64)
    y_c, g_c = io_grads(c_layer, u)
    y_t, g_t = io_grads(t_layer, u)
    torch.testing.assert_close(y_t, y_c, rtol=0, atol=1e-10)
    torch.testing.assert_close(g_t, g_c, rtol=0, atol=1e-10)
    torch.testing.assert_close(t_layer.kernel(L), c_layer.kernel(L), rtol=0, atol=1e-10)
    assert int(t_layer.l_max) == (32 if L > 8 else 8)  # 8 -> 16 -> 32 >= 19
    torch.testing.assert_close(t_layer.ssm_parameters()[3], c_layer.ssm_parameters()[3], rtol=0, atol=1e-10)


def test_l_max_none_fixed_by_first_forward_and_saved():
    torch.manual_seed(0)
    c_layer = layers.S4Layer(3, 6, c_param="c", **DPLR).double()
    torch.manual_seed(0)
    t_layer = layers.S4Layer(3, 6, **DPLR).double()
    assert int(t_layer.l_max) == 0 and not t_layer.c_is_tilde
    torch.testing.assert_close(t_layer.C, c_layer.C)  # pending: C itself
    u = torch.randn(2, 12, 3, dtype=f64)
    torch.testing.assert_close(t_layer(u), c_layer(u), rtol=0, atol=1e-10)
    assert int(t_layer.l_max) == 12 and t_layer.state_dict()["l_max"] == 12
    Lam, P, B, C, dt = c_layer.stored_parameters()
    torch.testing.assert_close(torch.view_as_complex(t_layer.C.detach()), kernels.c_tilde(Lam, P, B, C, dt, 12).detach())


def test_state_dict_converts_between_parameterisations():
    c_layer, t_layer = pair(l_max=10, **DPLR)
    with torch.no_grad():  # a different system than the layers' own, so the conversion must use the dict's
        c_layer.log_dt.add_(0.3)
        c_layer.C.mul_(1.7)
    u = torch.randn(2, 10, 3, dtype=f64)
    fresh_t = pair(l_max=10, seed=5, **DPLR)[1]
    fresh_t.load_state_dict(c_layer.state_dict())  # C -> C̃ at the loading layer's l_max
    assert int(fresh_t.l_max) == 10
    torch.testing.assert_close(fresh_t(u), c_layer(u), rtol=0, atol=1e-10)
    fresh_c = pair(seed=5, **DPLR)[0]
    fresh_c.load_state_dict(fresh_t.state_dict())  # C̃ -> C
    torch.testing.assert_close(fresh_c.C, c_layer.C, rtol=0, atol=1e-10)
    assert "l_max" not in fresh_c.state_dict()
    with pytest.raises(ValueError, match="l_max"):
        layers.S4Layer(3, 6, c_param="c", l_max=8)
    with pytest.raises(ValueError, match="c_param"):
        layers.S4Layer(3, 6, c_param="C_tilde")


def test_step_forward_matches_forward_with_c_tilde():
    _, t_layer = pair(l_max=9, **DPLR)
    t_layer.eval()
    u = torch.randn(2, 9, 3, dtype=f64)
    torch.testing.assert_close(t_layer.step_forward(u), t_layer(u), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["pb", "kb"])
@pytest.mark.parametrize("L", [8, 6, 11])
def test_liquid_layer_tilde_equals_c_layer(kind, L):
    c_layer, t_layer = pair(layers.LiquidS4Layer, kind=kind, order=3, L_tilde=4, bidirectional=True, **DPLR)
    u = torch.randn(2, L, 3, dtype=f64)
    y_c, g_c = io_grads(c_layer, u)
    y_t, g_t = io_grads(t_layer, u)
    torch.testing.assert_close(y_t, y_c, rtol=0, atol=1e-10)
    torch.testing.assert_close(g_t, g_c, rtol=0, atol=1e-10)
    if kind == "pb":
        torch.testing.assert_close(t_layer.pb_coefficients(), c_layer.pb_coefficients(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["pb", "kb"])
def test_gradients_flow_to_c_tilde_and_match_the_dense_oracle(kind):
    grads = []
    for method in ("dense", "dplr"):
        torch.manual_seed(3)
        m = layers.LiquidS4Layer(3, 6, kind=kind, order=3, l_max=7, dt_min=0.05, dt_max=0.3, kernel_method=method,
                                 cauchy_backend="torch").double()
        u = torch.randn(2, 7, 3, dtype=f64, generator=torch.Generator().manual_seed(0))
        m(u).pow(2).sum().backward()
        assert m.C.grad is not None and m.C.grad.abs().max() > 0
        grads.append(torch.cat([m.C.grad.flatten(), m.B.grad.flatten(), m.log_dt.grad, m.P.grad.flatten()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-8, atol=1e-10)


def test_config_and_build_model_pass_l_max():
    c = SequenceModelConfig(d_output=2, d_input=1, d_model=4, d_state=4, n_blocks=1)
    assert c.c_param == "tilde" and c.l_max is None
    assert int(build_model(c, l_max=32).blocks[0].layer.l_max) == 32
    assert int(build_model(c.replace(l_max=16), l_max=32).blocks[0].layer.l_max) == 16  # configured wins
    assert build_model(c.replace(c_param="c"), l_max=32).blocks[0].layer.c_param == "c"
    with pytest.raises(ValueError, match="l_max"):
        c.replace(c_param="c", l_max=8)
    with pytest.raises(ValueError, match="c_param"):
        c.replace(c_param="C")
    with pytest.raises(ValueError, match="l_max"):
        c.replace(l_max=0)
    with pytest.raises(ValueError, match="l_max"):
        build_model(c, l_max=0)
    assert c.replace(c_param="c").config_hash() != c.config_hash()


def test_sequence_length_of_tasks():
    from liquidssm.repro.taskbase import TaskData, sequence_length, stack_collate

    class Series(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.zeros(37, 2), 0

    class Tokens(Series):
        l_max = 64

    for ds, want in ((Series(), 37), (Tokens(), 64)):
        data = TaskData(ds, ds, ds, stack_collate, "classification", 2, "fixture", "-")
        assert sequence_length(data) == want
    with pytest.raises(TypeError, match="TaskData"):
        sequence_length([1, 2])


def test_benchmarks_time_both_parameterisations():
    from liquidssm.bench.kernels import bench_kernels, c_tilde_ratio
    from liquidssm.bench.liquid import run_liquid_benchmark

    df = bench_kernels(Ns=(8,), Ls=(32,), backends=("torch",), repeats=1, c_params=("tilde", "c"))
    assert {"kernel", "kernel (C)"} <= set(df.what) and len(c_tilde_ratio(df)) == 1
    ldf = run_liquid_benchmark(H=4, N=4, lengths=(16,), batch=1, orders=(2,), kinds=("pb",), repeats=1,
                               c_param="both")
    assert list(ldf.layer) == ["S4", "S4 (C)", "PB"]
    with pytest.raises(ValueError, match="c_param"):
        run_liquid_benchmark(H=4, N=4, lengths=(16,), c_param="C")

"""Tests for liquidssm.lrcssm: block/model wiring (reference §4.2), parallel == sequential model
outputs and gradients, ablation/StcSSM/complex variants, parameter count, bad inputs, and the
model's one frozen configuration (LrcSSMConfig): same seed -> same parameters as before the config."""

from __future__ import annotations

import pytest
import torch

from liquidssm.configs import LrcSSMConfig, SequenceModelConfig
from liquidssm.lrcssm import LrcSSMBlock, LrcSSMLayer, LrcSSMModel, OutputMapping

F64 = torch.float64


def _config(**kw):
    args = {"d_input": 3, "d_model": 8, "d_state": 8, "d_output": 4, "n_blocks": 2, "dtype": "float64"}
    args.update(kw)
    return LrcSSMConfig(**args)


def _model(**kw):
    torch.manual_seed(kw.pop("seed", 0))
    return LrcSSMModel(_config(**kw))


@pytest.mark.parametrize("kw", [{}, {"d_state": 5}, {"elastance": False}, {"ablation": "A(u)"},
                                {"ablation": "A(u),b(u)"}, {"variant": "paper"},
                                {"complex_params": True}, {"complex_params": True, "d_state": 5}])
def test_parallel_model_equals_sequential_model(kw):
    par = _model(**kw)
    seq = _model(solver="sequential", **kw)
    seq.load_state_dict(par.state_dict())
    x = torch.randn(2, 40, 3, dtype=F64)
    y_par, y_seq = par(x), seq(x)
    assert y_par.shape == (2, 4)
    torch.testing.assert_close(y_par, y_seq, rtol=1e-9, atol=1e-10)
    g_par = torch.autograd.grad(y_par.square().sum(), list(par.parameters()), allow_unused=True)
    g_seq = torch.autograd.grad(y_seq.square().sum(), list(seq.parameters()), allow_unused=True)
    for a, b in zip(g_par, g_seq):
        if b is None:
            assert a is None
            continue
        assert (a - b).abs().max() <= 1e-6 * max(1.0, float(b.abs().max()))
    its = par.iterations()
    assert len(its) == 2 and all(int(i.max()) <= 40 for i in its)


def test_pool_none_and_mean_of_logits():
    m = _model(pool="none")
    x = torch.randn(2, 11, 3, dtype=F64)
    per_step = m(x)
    assert per_step.shape == (2, 11, 4)
    m_mean = LrcSSMModel(m.config.replace(pool="mean"))
    m_mean.load_state_dict(m.state_dict())
    torch.testing.assert_close(m_mean(x), per_step.mean(dim=1))


def test_block_wiring_matches_reference():
    torch.manual_seed(0)
    # H == D: residual MLP after the post-norm
    blk = LrcSSMBlock(6, 6, dtype=F64)
    u = torch.randn(2, 9, 6, dtype=F64)
    un = torch.nn.functional.layer_norm(u, (6,))
    x = blk.lrc(un)
    h = torch.nn.functional.layer_norm(x + un, (6,))
    torch.testing.assert_close(blk(u), blk.mlp(h) + h)
    # H != D: the MLP projects D -> H before the residual
    blk2 = LrcSSMBlock(6, 4, dtype=F64)
    x2 = blk2.lrc(un)
    torch.testing.assert_close(blk2(u), torch.nn.functional.layer_norm(blk2.mlp(x2) + un, (6,)))


def test_complex_output_mapping_is_shared():
    m = _model(complex_params=True, n_blocks=3)
    assert all(b.output_mapping is m.output_mapping for b in m.blocks)
    assert isinstance(m.output_mapping, OutputMapping)


def test_stc_has_no_elastance_parameters_in_use():
    m = _model(elastance=False, variant="paper")
    assert all(not b.lrc.cell.elastance and b.lrc.cell.W_eps is None for b in m.blocks)


def test_parameter_count_formula():
    # reference §4.2 formula with the cell's 8 used D-vectors (the released code also stores an
    # unused elastance shift, its "9D"): cell 2H + 2DH + 8D; block MLP DH + H^2 + 2H (H != D) or
    # 2H^2 + 2H (H == D); encoder pH + H^2 + 2H; classifier H^2 + H + HC + C.
    p, H, D, C, L = 6, 64, 64, 5, 6
    m = LrcSSMModel(LrcSSMConfig(d_input=p, d_model=H, d_state=D, d_output=C, n_blocks=L,
                                 variant="official"))
    cell = 2 * H + 2 * D * H + 8 * D
    mlp = 2 * H * H + 2 * H
    want = L * (cell + mlp) + (p * H + H * H + 2 * H) + (H * H + H + H * C + C)
    assert sum(t.numel() for t in m.parameters()) == want == 112_389 - L * D


def test_model_bad_inputs():
    m = _model()
    with pytest.raises(ValueError, match=r"inputs: expected a 3-D tensor \(B, T, d_input\)"):
        m(torch.randn(5, 3, dtype=F64))
    with pytest.raises(ValueError, match="d_input=3"):
        m(torch.randn(2, 5, 4, dtype=F64))
    with pytest.raises(ValueError, match="finite"):
        m(torch.full((2, 5, 3), float("nan"), dtype=F64))
    with pytest.raises(ValueError, match="cell"):  # the StcSSM switch is elastance=False, not cell=
        m.config.replace(cell="gru")
    with pytest.raises(ValueError, match="pool"):
        _model(pool="max")
    with pytest.raises(ValueError, match="solver"):
        _model(solver="euler")


# ----------------------------------------------------------------------------------------------
# the model's configuration
# ----------------------------------------------------------------------------------------------


# fingerprints of LrcSSMModel(p=3, H=8, D, C=4, L=2, dtype=float64) after torch.manual_seed(0),
# recorded with the positional constructor before the configuration existed:
# (number of tensors, sum_k (k+1) * sum(p_k), sum_k |p_k|^2) over the state_dict in order
# (complex tensors contribute Re + 2 Im to the sum)
_BEFORE_CONFIG = {
    "paper": ({}, 42, -795.8351243779173, 143.71015636055952),
    "official": ({"variant": "official"}, 40, -244.406951844961, 137.26406595004144),
    "stc": ({"elastance": False}, 40, -244.406951844961, 137.26406595004144),
    "complex": ({"complex_params": True, "d_state": 5}, 40, 11.290953724178891, 219.8330705546316),
}


@pytest.mark.parametrize("name", sorted(_BEFORE_CONFIG))
def test_same_seed_same_parameters_as_before_the_config(name):
    kw, n, weighted, square = _BEFORE_CONFIG[name]
    sd = _model(**kw).state_dict()

    def total(t):
        return t.real.sum() + 2 * t.imag.sum() if t.is_complex() else t.sum()

    assert len(sd) == n
    assert float(sum((k + 1) * total(t) for k, t in enumerate(sd.values()))) == pytest.approx(weighted, rel=1e-12)
    assert float(sum(t.abs().square().sum() for t in sd.values())) == pytest.approx(square, rel=1e-12)


def test_model_keeps_its_config_and_maps_every_field():
    cfg = _config(d_state=5, n_blocks=3, elastance=False, variant="official", ablation="A(u)",
                  rho=0.9, clamp="tanh", euler_step=0.5, solver="sequential", tol=1e-6,
                  max_iter=7, scan_method="hillis_steele", strict=True, dtype="float32")
    m = LrcSSMModel(cfg)
    assert m.config is cfg and len(m.blocks) == 3
    assert m.encoder.fc1.in_features == 3 and m.decoder.fc2.out_features == 4
    assert all(p.dtype == torch.float32 for p in m.parameters())
    for b in m.blocks:
        c, layer = b.lrc.cell, b.lrc
        assert (c.H, c.D, c.elastance, c.variant, c.ablation) == (8, 5, False, "official", "A(u)")
        assert (c.rho, c.clamp, c.euler_step, c.complex_params) == (0.9, "tanh", 0.5, False)
        assert (layer.solver, layer.tol, layer.max_iter, layer.scan_method, layer.strict) == (
            "sequential", 1e-6, 7, "hillis_steele", True)
    assert m(torch.randn(2, 6, 3)).shape == (2, 4)


def test_model_refuses_a_bad_config():
    with pytest.raises(TypeError, match="config: expected an LrcSSMConfig, got dict"):
        LrcSSMModel({"d_input": 3, "d_output": 4})
    with pytest.raises(TypeError, match="got SequenceModelConfig"):
        LrcSSMModel(SequenceModelConfig(d_output=4, d_input=3))
    with pytest.raises(ValueError, match="variant: expected one of"):
        _config(variant="bogus")
    with pytest.raises(ValueError, match="rho: the rho-clamp is defined for real states only"):
        LrcSSMModel(_config(rho=0.9, complex_params=True))  # a combination only the cell can refuse


def test_layer_and_block_take_explicit_options():
    torch.manual_seed(0)
    layer = LrcSSMLayer(6, 4, euler_step=0.25, elastance=False, ablation="A(u),b(u)", dtype=F64,
                        solver="sequential")
    assert (layer.cell.euler_step, layer.cell.elastance, layer.cell.ablation) == (0.25, False, "A(u),b(u)")
    blk = LrcSSMBlock(6, 4, lrc=layer, dtype=F64)
    assert blk.lrc is layer and blk(torch.randn(2, 5, 6, dtype=F64)).shape == (2, 5, 6)
    with pytest.raises(ValueError, match="lrc: expected a layer with H=6, D=5"):
        LrcSSMBlock(6, 5, lrc=layer, dtype=F64)
    with pytest.raises(TypeError, match="lrc: expected a layer of dtype torch.float32"):
        LrcSSMBlock(6, 4, lrc=layer)
    with pytest.raises(TypeError, match="unexpected keyword"):
        LrcSSMLayer(6, 4, cell="stc")  # no **kwargs funnel: unknown options are refused

"""Tests for liquidssm.lrcssm: block/model wiring (reference §4.2), parallel == sequential model
outputs and gradients, ablation/StcSSM/complex variants, the App. D gated cells (cell="mgu"|"gru"|
"lstm") and the refusal of LRC-only options with them, parameter counts, bad inputs, and the
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
                                {"complex_params": True}, {"complex_params": True, "d_state": 5},
                                {"cell": "mgu"}, {"cell": "gru", "d_state": 5}, {"cell": "lstm"},
                                {"complex_params": "g,k"}, {"complex_params": "g,k,a", "d_state": 5},
                                {"cell": "lstm", "d_state": 5, "euler_step": 0.5}])
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
    with pytest.raises(ValueError, match="cell: expected one of 'lrc', 'mgu', 'gru', 'lstm', 'lrc_dense'"):
        m.config.replace(cell="stc")  # the StcSSM switch is elastance=False, not a cell
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
        LrcSSMLayer(6, 4, stc=True)  # no **kwargs funnel: unknown options are refused
    with pytest.raises(ValueError, match=r"cell: expected one of \['lrc', 'mgu', 'gru', 'lstm', 'lrc_dense'\]"):
        LrcSSMLayer(6, 4, cell="stc")


# ----------------------------------------------------------------------------------------------
# the App. D gated cells inside the model
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,cls", [("mgu", "MguSSMCell"), ("gru", "GruSSMCell"), ("lstm", "LstmSSMCell")])
def test_model_builds_the_chosen_cell_in_every_block(cell, cls):
    m = _model(cell=cell, n_blocks=3, d_state=5, euler_step=0.5)
    assert m.config.cell == cell and len(m.blocks) == 3
    for b in m.blocks:
        assert type(b.lrc.cell).__name__ == cls
        assert (b.lrc.cell.H, b.lrc.cell.D, b.lrc.cell.euler_step) == (8, 5, 0.5)
    y = m(torch.randn(2, 7, 3, dtype=F64))
    assert y.shape == (2, 4) and bool(torch.isfinite(y).all())
    assert len(m.iterations()) == 3


def test_lstm_layer_outputs_its_readout():
    torch.manual_seed(0)
    layer = LrcSSMLayer(5, 4, cell="lstm", dtype=F64)
    u = torch.randn(2, 9, 5, dtype=F64)
    c = layer.cell
    x = c.rollout(u)
    torch.testing.assert_close(layer(u), c.readout(x, u), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell,gates", [("mgu", 2), ("gru", 3), ("lstm", 4)])
def test_gated_model_parameter_count(cell, gates):
    p, H, D, C, L = 6, 64, 16, 5, 4
    m = LrcSSMModel(LrcSSMConfig(d_input=p, d_model=H, d_state=D, d_output=C, n_blocks=L, cell=cell))
    recurrence = gates * (D * H + 2 * D)
    mlp = D * H + H * H + 2 * H  # H != D: the D -> H projection MLP
    want = L * (recurrence + mlp) + (p * H + H * H + 2 * H) + (H * H + H + H * C + C)
    assert sum(t.numel() for t in m.parameters()) == want


@pytest.mark.parametrize("option", [{"elastance": False}, {"variant": "official"}, {"ablation": "A(u)"},
                                    {"complex_params": True}, {"rho": 0.9}, {"clamp": "tanh"}])
def test_lrc_only_options_are_refused_with_a_gated_cell(option):
    (name, value), = option.items()
    with pytest.raises(ValueError, match=rf"cell='gru': {name}=.* applies only to cell='lrc'"):
        _config(cell="gru", **option)
    with pytest.raises(ValueError, match=rf"cell='mgu': {name}=.* only applies to cell='lrc'"):
        LrcSSMLayer(6, 4, cell="mgu", **option)
    _config(cell="lrc", **option)  # fine for the LRC cell


def test_several_lrc_only_options_are_all_named():
    with pytest.raises(ValueError, match=r"elastance=False, variant='official' apply only to cell='lrc'"):
        _config(cell="lstm", elastance=False, variant="official")


def test_gated_model_trains_one_step():
    m = _model(cell="gru", dtype="float32")
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    x, y = torch.randn(4, 12, 3), torch.tensor([0, 1, 2, 3])
    loss0 = torch.nn.functional.cross_entropy(m(x), y)
    loss0.backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in m.parameters())
    opt.step()


# ----------------------------------------------------------------------------------------------
# Table 9 (dense LRC), Table 11 (partly complex), PPG-DaLiA's strided outputs
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subset,complex_names", [("g,k", {"g_max_x", "k_max_x"}),
                                                  ("g,k,a", {"g_max_x", "k_max_x", "sigma_x"}),
                                                  ("g,k,a,b", {"g_max_x", "k_max_x", "sigma_x", "mu_x"})])
def test_partly_complex_cells_complexify_exactly_their_parameters(subset, complex_names):
    m = _model(complex_params=subset, n_blocks=1)
    cell = m.blocks[0].lrc.cell
    got = {n for n, p in cell.named_parameters() if p.is_complex()}
    assert got == complex_names and cell.state_dtype == torch.complex128
    assert m.output_mapping is not None  # a complex state needs the shared output mapping
    if subset == "g,k,a,b":  # the released complex cell, drawn exactly as complex_params=True
        ref = _model(complex_params=True, n_blocks=1)
        for a, b in zip(m.state_dict().values(), ref.state_dict().values()):
            assert torch.equal(a, b)


def test_partly_complex_newton_equals_sequential():
    from liquidssm.lrcssm import PartlyComplexLrcSSMCell
    from liquidssm.newton import newton_solve, sequential_solve_bptt

    torch.manual_seed(0)
    cell = PartlyComplexLrcSSMCell(5, 4, complex_params="g,k", dtype=F64).scaled(2.0)
    u = torch.randn(2, 60, 5, dtype=F64)
    with torch.no_grad():
        assert (newton_solve(cell, u).x - sequential_solve_bptt(cell, u)).abs().max() <= 1e-10
    with pytest.raises(ValueError, match="complex_params: expected one of"):
        PartlyComplexLrcSSMCell(5, 4, complex_params="g")


def test_dense_lrc_model_runs_sequentially_and_is_refused_otherwise():
    m = _model(cell="lrc_dense", solver="sequential")
    assert all(type(b.lrc.cell).__name__ == "LRCCell" for b in m.blocks)
    y = m(torch.randn(2, 7, 3, dtype=F64))
    assert y.shape == (2, 4) and m.iterations() == []
    with pytest.raises(ValueError, match="cell='lrc_dense'.*set solver='sequential'"):
        _config(cell="lrc_dense")
    with pytest.raises(ValueError, match="cell='lrc_dense'.*set solver='sequential'"):
        LrcSSMLayer(6, 4, cell="lrc_dense")
    with pytest.raises(ValueError, match="cell='lrc_dense': elastance=False applies only to cell='lrc'"):
        _config(cell="lrc_dense", solver="sequential", elastance=False)
    # the original LRC cell: every state entry sees every other (dense Jacobian)
    cell = m.blocks[0].lrc.cell
    J = torch.func.jacrev(lambda x: cell.step(x, torch.randn(8, dtype=F64)))(torch.randn(8, dtype=F64))
    assert int(torch.count_nonzero(J)) == 64


def test_output_stride_gives_one_output_per_block_of_steps():
    m = _model(pool="none", output_stride=4, d_output=1)
    x = torch.randn(2, 12, 3, dtype=F64)
    y = m(x)
    assert y.shape == (2, 3)
    full = LrcSSMModel(m.config.replace(output_stride=None))
    full.load_state_dict(m.state_dict())
    torch.testing.assert_close(y, full(x)[:, 3::4, 0])
    m2 = _model(pool="none", output_stride=5)
    assert m2(x).shape == (2, 2, 4)
    with pytest.raises(ValueError, match="output_stride: applies to pool='none'"):
        _config(output_stride=4)
    with pytest.raises(ValueError, match="output_stride=4 needs at least 4 time steps"):
        m(torch.randn(2, 3, 3, dtype=F64))
    with pytest.raises(ValueError, match="complex_params: expected one of"):
        _config(complex_params="g,k,b")

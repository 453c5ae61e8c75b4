"""Tests for liquidssm.lrcssm: block/model wiring (reference §4.2), parallel == sequential model
outputs and gradients, ablation/StcSSM/complex variants, parameter count, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from liquidssm.lrcssm import LrcSSMBlock, LrcSSMModel, OutputMapping

F64 = torch.float64


def _model(**kw):
    torch.manual_seed(kw.pop("seed", 0))
    args = {"p": 3, "H": 8, "D": 8, "C": 4, "L": 2, "dtype": F64}
    args.update(kw)
    return LrcSSMModel(**args)


@pytest.mark.parametrize("kw", [{}, {"D": 5}, {"cell": "stc"}, {"ablation": "A(u)"},
                                {"ablation": "A(u),b(u)"}, {"variant": "paper"},
                                {"complex_params": True}, {"complex_params": True, "D": 5}])
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
    m.pool = "mean"
    torch.testing.assert_close(m(x), per_step.mean(dim=1))


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
    m = _model(complex_params=True, L=3)
    assert all(b.output_mapping is m.output_mapping for b in m.blocks)
    assert isinstance(m.output_mapping, OutputMapping)


def test_stc_has_no_elastance_parameters_in_use():
    m = _model(cell="stc", variant="paper")
    assert all(not b.lrc.cell.elastance and b.lrc.cell.W_eps is None for b in m.blocks)


def test_parameter_count_formula():
    # reference §4.2 formula with the cell's 8 used D-vectors (the released code also stores an
    # unused elastance shift, its "9D"): cell 2H + 2DH + 8D; block MLP DH + H^2 + 2H (H != D) or
    # 2H^2 + 2H (H == D); encoder pH + H^2 + 2H; classifier H^2 + H + HC + C.
    p, H, D, C, L = 6, 64, 64, 5, 6
    m = LrcSSMModel(p, H, D, C, L, variant="official")
    cell = 2 * H + 2 * D * H + 8 * D
    mlp = 2 * H * H + 2 * H
    want = L * (cell + mlp) + (p * H + H * H + 2 * H) + (H * H + H + H * C + C)
    assert sum(t.numel() for t in m.parameters()) == want == 112_389 - L * D


def test_model_bad_inputs():
    m = _model()
    with pytest.raises(ValueError, match=r"inputs: expected a 3-D tensor \(B, T, p\)"):
        m(torch.randn(5, 3, dtype=F64))
    with pytest.raises(ValueError, match="p=3"):
        m(torch.randn(2, 5, 4, dtype=F64))
    with pytest.raises(ValueError, match="finite"):
        m(torch.full((2, 5, 3), float("nan"), dtype=F64))
    with pytest.raises(ValueError, match="cell"):
        _model(cell="gru")
    with pytest.raises(ValueError, match="pool"):
        _model(pool="max")
    with pytest.raises(ValueError, match="solver"):
        _model(solver="euler")

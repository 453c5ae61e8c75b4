"""Under mixed precision the SSM kernels stay in float32/complex64 (engine notes: rfft has no bf16)."""

from __future__ import annotations

import torch

from liquidssm.configs import LrcSSMConfig, SequenceModelConfig
from liquidssm.layers import SequenceModel
from liquidssm.lrcssm import LrcSSMModel


def _bf16(model, x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(x)


def test_liquid_s4_model_runs_under_bf16_autocast_close_to_float32():
    torch.manual_seed(0)
    cfg = SequenceModelConfig(d_output=3, d_input=2, d_model=8, n_blocks=2, d_state=4, layer="liquid",
                              liquid_order=3)
    model = SequenceModel(cfg).eval()
    x = torch.randn(4, 32, 2)
    ref = model(x)
    out = _bf16(model, x)
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.05


def test_lrcssm_newton_runs_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    model = LrcSSMModel(LrcSSMConfig(d_input=2, d_output=3, d_model=8, d_state=8, n_blocks=1))
    x = torch.randn(2, 16, 2)
    ref = model(x)
    out = _bf16(model, x)
    out.float().sum().backward()
    assert model.blocks[0].lrc.last_result.x.dtype == torch.float32
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.05

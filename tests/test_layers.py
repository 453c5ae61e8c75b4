"""Tests of liquidssm.layers: S4/Liquid-S4 layers against float64 oracles, padding, step mode, model.

Layer oracles run in float64 with ``kernel_method="dense"`` (dense powers of the conjugate-doubled
system) or the brute-force subset enumeration of :mod:`liquidssm.liquid`; tolerance 1e-10. The
fast path is ``kernel_method="dplr"`` with ``cauchy_backend="torch"``.
"""

from __future__ import annotations

import pytest
import torch

from liquidssm import kernels, layers, liquid, ssm
from liquidssm.configs import SequenceModelConfig

f64 = torch.float64
#: the two kernel algorithms a layer can use: the dense oracle and Algorithm 1 (torch Cauchy sums)
KERNEL_OPTIONS = {"dense": dict(kernel_method="dense"), "dplr": dict(kernel_method="dplr", cauchy_backend="torch")}
DPLR = KERNEL_OPTIONS["dplr"]


def make(kind="pb", order=3, **kw):
    torch.manual_seed(kw.pop("seed", 0))
    return layers.LiquidS4Layer(3, 6, kind=kind, order=order, dt_min=0.05, dt_max=0.3, **kw).double()


def full_system(m: layers.S4Layer, channel: int = 0):
    Lambda, P, B, C, dt = (t.detach() for t in m.ssm_parameters())
    A_bar, B_bar = kernels.discretize_dplr_bilinear(Lambda, P, B, dt)
    return A_bar, B_bar, kernels.conj_double(C[channel])


@pytest.mark.parametrize("method", ["dense", "dplr"])
def test_kb_layer_equals_consecutive_run_enumeration(method):
    m = make("kb", order=3, **KERNEL_OPTIONS[method])
    L = 7
    u = torch.randn(2, 3, L, dtype=f64)
    A_bar, B_bar, Cf = full_system(m)
    runs = liquid.unrolled_output(A_bar, B_bar, Cf, u, max_order=3, subsets="consecutive").real
    want = runs.sum(-2) + m.D.detach()[:, None] * u  # order 1 is the S4 convolution
    torch.testing.assert_close(m.conv(u).detach(), want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["dense", "dplr"])
def test_pb_layer_equals_identity_A_correlation_terms(method):
    m = make("pb", order=3, L_tilde=4, **KERNEL_OPTIONS[method])
    L = 8
    u = torch.randn(2, 3, L, dtype=f64)
    A_bar, B_bar, Cf = full_system(m)
    s4 = ssm.causal_conv(u, ssm.kernel_by_powers(A_bar, B_bar, Cf, L).real)
    pb = liquid.liquid_output(u, liquid.pb_kernel(B_bar, Cf, L, 3, L_tilde=4).real)
    torch.testing.assert_close(m.conv(u).detach(), s4 + pb + m.D.detach()[:, None] * u, rtol=0, atol=1e-10)


def test_bidirectional_fold_matches_released_convention():
    m = make("pb", order=2, bidirectional=True, kernel_method="dense")
    L = 6
    u = torch.randn(1, 3, L, dtype=f64)
    K = m.kernel(L).detach()
    y_s4 = torch.zeros_like(u)
    for t in range(L):
        for s in range(t + 1):
            y_s4[..., t] += K[0, :, t - s] * u[..., s]
        for mm in range(L - 1 - t):  # y_t += sum_m k1[m] u_{t+1+m}: no lag-0 anti-causal tap
            y_s4[..., t] += K[1, :, mm] * u[..., t + 1 + mm]
    m.order = 2
    S4 = layers.S4Layer(3, 6, bidirectional=True, kernel_method="dense").double()
    S4.load_state_dict(m.state_dict())
    torch.testing.assert_close(S4.conv(u).detach(), y_s4 + S4.D.detach()[:, None] * u, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["pb", "kb"])
def test_paper_variant_padding_keeps_liquid_features(kind):
    m = make(kind, order=3, **DPLR).eval()
    u = torch.randn(2, 10, 3, dtype=f64)
    short = 6
    padded = u.clone()
    padded[1, short:] = 5.0  # garbage in the padding
    y = m(padded, lengths=torch.tensor([10, short]))
    y_short = m(u[1:, :short])
    torch.testing.assert_close(y[1, :short], y_short[0], rtol=0, atol=1e-10)


def test_official_variant_padding_zeroes_liquid_features():
    m = make("pb", order=2, variant="official", **DPLR)
    u = torch.randn(1, 3, 12, dtype=f64)
    S4 = layers.S4Layer(3, 6, **DPLR).double()
    S4.load_state_dict({k: v for k, v in m.state_dict().items() if not k.endswith("0")})
    lengths = torch.tensor([5])  # L~_2 = 6 for L = 12: the window is all padding
    torch.testing.assert_close(m.conv(u, lengths), S4.conv(u, lengths), rtol=0, atol=1e-12)
    assert (m.conv(u) - S4.conv(u)).abs().max() > 1e-6  # unpadded: liquid features present


def test_official_pb_layer_term_and_frozen_coefficients():
    m = make("pb", order=3, variant="official", **DPLR)
    L = 10
    u = torch.randn(2, 3, L, dtype=f64)
    S4 = layers.S4Layer(3, 6, **DPLR).double()
    S4.load_state_dict({k: v for k, v in m.state_dict().items() if not k.endswith("0")})
    Bbar, C0, S = m.official_frozen()
    kappa = liquid.official_pb_coefficients(Bbar, C0, 3)[0]
    corr = liquid.official_correlations(u, 3)
    torch.testing.assert_close(m.conv(u) - S4.conv(u), (kappa[..., None] * corr).sum(-2), rtol=0, atol=1e-12)
    # training B, C, dt does not move the official liquid coefficients
    with torch.no_grad():
        m.B.mul_(3.0)
        m.C.mul_(-2.0)
        m.log_dt.add_(0.5)
    Bbar2, C02, _ = m.official_frozen()
    torch.testing.assert_close(liquid.official_pb_coefficients(Bbar2, C02, 3)[0], kappa)
    assert "B0" in m.state_dict() and not m.B0.requires_grad


def test_step_mode_ignores_liquid():
    m = make("pb", order=2, variant="official", **DPLR).eval()
    u = torch.randn(2, 9, 3, dtype=f64)
    S4 = layers.S4Layer(3, 6, **DPLR).double().eval()
    S4.load_state_dict({k: v for k, v in m.state_dict().items() if not k.endswith("0")})
    torch.testing.assert_close(S4.step_forward(u), S4(u), rtol=0, atol=1e-10)  # S4: CNN == RNN
    torch.testing.assert_close(m.step_forward(u), S4(u), rtol=0, atol=1e-10)  # liquid dropped
    assert (m.step_forward(u) - m(u)).abs().max() > 1e-6


def test_gradients_through_both_kernels():
    torch.manual_seed(1)
    Lambda = torch.complex(-0.5 * torch.ones(1, 2, dtype=f64), torch.tensor([[-3.0, -0.7]], dtype=f64))
    P = torch.randn(1, 2, dtype=torch.complex128) * 0.3
    B = torch.randn(1, 2, dtype=torch.complex128).requires_grad_()
    C = torch.randn(1, 2, dtype=torch.complex128).requires_grad_()
    dt = torch.tensor([0.2], dtype=f64)

    def kb(B, C):
        return liquid.kb_kernel_dplr(Lambda, P, B, C, dt, 6, 3, backend="torch")

    assert torch.autograd.gradcheck(kb, (B, C))
    assert torch.autograd.gradcheck(lambda B: liquid.dplr_B_bar(Lambda, P, B, dt) ** 2, (B,))
    # layer level: autograd through the fast path equals autograd through the dense oracle
    for kind in ("pb", "kb"):
        grads = []
        for method in ("dense", "dplr"):
            m = make(kind, order=3, **KERNEL_OPTIONS[method], seed=2)
            u = torch.randn(2, 7, 3, dtype=f64, generator=torch.Generator().manual_seed(0))
            m(u).pow(2).sum().backward()
            grads.append(torch.cat([m.B.grad.flatten(), m.C.grad.flatten(), m.log_dt.grad, m.P.grad.flatten()]))
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-8, atol=1e-10)


def test_model_shapes_heads_pooling():
    torch.manual_seed(0)
    x = torch.randn(4, 12, 2)
    m = layers.SequenceModel(SequenceModelConfig(d_output=3, d_input=2, d_model=8, n_blocks=2, d_state=4, layer="liquid",
                                                 liquid_kind="kb", liquid_order=2, norm="layer", prenorm=False,
                                                 pool="last"))
    assert m(x).shape == (4, 3)
    lengths = torch.tensor([12, 5, 7, 1])
    out = m(x, lengths)
    solo = m(x[1:2, :5])
    torch.testing.assert_close(out[1], solo[0], rtol=1e-4, atol=1e-5)  # last valid position
    tok = torch.randint(0, 10, (6, 12))
    r = layers.SequenceModel(SequenceModelConfig(d_output=2, n_tokens=10, d_model=8, n_blocks=1, d_state=4,
                                                 head="retrieval")).eval()
    assert r(tok).shape == (3, 2)
    g = layers.SequenceModel(SequenceModelConfig(d_output=1, d_input=2, d_model=8, n_blocks=1, d_state=4,
                                                 head="regression", bidirectional=True))
    assert g(x).shape == (4, 1)


def test_param_groups():
    m = layers.SequenceModel(SequenceModelConfig(d_output=3, d_input=1, d_model=8, n_blocks=2, d_state=4, layer="liquid"))
    groups = layers.ssm_param_groups(m, lr=0.01, ssm_lr=0.001, weight_decay=0.05)
    assert [g["lr"] for g in groups] == [0.01, 0.001] and [g["weight_decay"] for g in groups] == [0.05, 0.0]
    ssm_ids = {id(p) for p in groups[1]["params"]}
    names = {n.rsplit(".", 1)[-1] for n, p in m.named_parameters() if id(p) in ssm_ids}
    assert names == set(layers.SSM_PARAM_NAMES)
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    torch.optim.AdamW(groups)  # accepted by the optimizer


def test_speech_commands_parameter_count():
    # Table S1 / released config: 6 layers, H = 128, N = 7, BatchNorm, pre-norm, 35 classes
    speech = SequenceModelConfig(d_output=35, d_input=1, d_model=128, n_blocks=6, d_state=7)
    m = layers.SequenceModel(speech.replace(layer="liquid", liquid_kind="pb", liquid_order=2))
    s4 = layers.SequenceModel(speech)
    assert layers.count_parameters(m) == layers.count_parameters(s4) == 224_675  # paper: 224K


def test_bad_inputs():
    with pytest.raises(ValueError, match="liquid order >= 2"):
        layers.LiquidS4Layer(4, 4, order=1)
    with pytest.raises(ValueError, match="kind"):
        layers.LiquidS4Layer(4, 4, kind="pk")
    with pytest.raises(ValueError, match="variant"):
        layers.LiquidS4Layer(4, 4, variant="code")
    with pytest.raises(ValueError, match="L_tilde"):
        layers.LiquidS4Layer(4, 4, L_tilde=0)
    with pytest.raises(ValueError, match="L_tilde"):
        layers.LiquidS4Layer(4, 4, L_tilde=5, variant="official")
    m = layers.LiquidS4Layer(4, 4, L_tilde=20)
    u10 = torch.randn(1, 10, 4)
    whole = layers.LiquidS4Layer(4, 4, L_tilde=10)  # a window as long as the input
    whole.load_state_dict(m.state_dict())
    assert torch.allclose(m(u10), whole(u10), atol=1e-6)  # a longer window is clipped: same output
    with pytest.raises(ValueError, match="u: expected last axis H = 4"):
        m(torch.randn(1, 10, 5))
    with pytest.raises(ValueError, match="lengths"):
        m(torch.randn(2, 10, 4), lengths=torch.tensor([3, 11]))
    with pytest.raises(ValueError, match="no window"):
        layers.LiquidS4Layer(4, 4, variant="official")(torch.randn(1, 4, 4))
    with pytest.raises(ValueError, match="exactly one"):
        layers.SequenceModel(SequenceModelConfig(d_output=2, d_model=8))
    with pytest.raises(ValueError, match="n_ssm"):
        layers.S4Layer(6, 4, n_ssm=4)
    with pytest.raises(TypeError, match="config: expected a liquidssm.configs.SequenceModelConfig"):
        layers.SequenceModel(dict(d_output=2, d_input=1))
    with pytest.raises(ValueError, match="kernel_method"):
        layers.S4Layer(4, 4, kernel_method="torch")
    with pytest.raises(ValueError, match="cauchy_backend"):
        layers.LiquidS4Layer(4, 4, cauchy_backend="dense")


# --- the model from its configuration -----------------------------------------------------------


def keyword_model(cfg: SequenceModelConfig) -> torch.nn.Module:
    """The model assembled by hand in the order the former keyword constructor used (encoder, then
    each block's layer and residual wrapper, final norm, decoder): the reference for the config."""
    H = cfg.d_model
    model = torch.nn.Module()
    model.encoder = torch.nn.Embedding(cfg.n_tokens, H) if cfg.n_tokens else torch.nn.Linear(cfg.d_input, H)
    s4 = dict(dt_min=cfg.dt_min, dt_max=cfg.dt_max, bidirectional=cfg.bidirectional, dropout=cfg.dropout,
              tie_dropout=cfg.tie_dropout, kernel_method=cfg.kernel_method, cauchy_backend=cfg.cauchy_backend,
              n_ssm=cfg.n_ssm)
    blocks = []
    for _ in range(cfg.n_blocks):
        if cfg.layer == "liquid":
            core = layers.LiquidS4Layer(H, cfg.d_state, kind=cfg.liquid_kind, order=cfg.liquid_order,
                                        variant=cfg.variant, L_tilde=cfg.liquid_window, **s4)
        else:
            core = layers.S4Layer(H, cfg.d_state, **s4)
        blocks.append(layers.ResidualBlock(core, H, norm=cfg.norm, prenorm=cfg.prenorm, dropout=cfg.dropout))
    model.blocks = torch.nn.ModuleList(blocks)
    model.final_norm = (torch.nn.BatchNorm1d(H) if cfg.norm == "batch" else torch.nn.LayerNorm(H)) if cfg.prenorm else None
    model.decoder = torch.nn.Linear(H, cfg.d_output)
    return model


@pytest.mark.parametrize("changes", [
    dict(),
    dict(layer="liquid", liquid_kind="kb", liquid_order=3, liquid_window=5, norm="layer", prenorm=False),
    dict(layer="liquid", variant="official", bidirectional=True, n_ssm=2, dt_min=0.01, dt_max=0.2),
    dict(layer="liquid", kernel_method="dense", cauchy_backend="torch", dropout=0.1, tie_dropout=False),
])
def test_sequence_model_from_config_equals_keyword_construction(changes):
    cfg = SequenceModelConfig(d_output=3, d_input=2, d_model=4, d_state=6, n_blocks=2).replace(**changes)
    torch.manual_seed(0)
    m = layers.SequenceModel(cfg)
    torch.manual_seed(0)
    ref = keyword_model(cfg)
    assert m.config is cfg
    got, want = m.state_dict(), ref.state_dict()
    assert list(got) == list(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)
    core = m.blocks[0].layer
    assert len(m.blocks) == cfg.n_blocks and core.kernel_method == cfg.kernel_method
    assert core.cauchy_backend == cfg.cauchy_backend and core.bidirectional == cfg.bidirectional
    if cfg.layer == "liquid":
        assert (core.kind, core.order, core.L_tilde, core.variant) == (
            cfg.liquid_kind, cfg.liquid_order, cfg.liquid_window, cfg.variant)


def test_sequence_model_kernel_methods_agree():
    cfg = SequenceModelConfig(d_output=2, d_input=2, d_model=3, d_state=6, n_blocks=1, layer="liquid",
                              liquid_kind="kb", liquid_order=3, bidirectional=True)
    x = torch.randn(2, 9, 2, dtype=f64)
    outs = []
    for method in ("dense", "dplr"):
        torch.manual_seed(3)
        outs.append(layers.SequenceModel(cfg.replace(kernel_method=method)).double().eval()(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-10)


def test_official_terms_are_the_pointwise_liquid_term():
    m = make("kb", order=3, variant="official", **DPLR)
    u = torch.randn(2, 3, 12, dtype=f64)
    spectra, pointwise = m.liquid_terms(u)
    assert spectra is None
    torch.testing.assert_close(pointwise, m.official_terms(u), rtol=0, atol=0)
    S4 = layers.S4Layer(3, 6, **DPLR).double()
    S4.load_state_dict({k: v for k, v in m.state_dict().items() if not k.endswith("0")})
    torch.testing.assert_close(m.conv(u) - S4.conv(u), pointwise, rtol=0, atol=1e-12)

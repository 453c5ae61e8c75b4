"""Bad input to the math modules: a clear error that names the argument, never a silent result.

One parametrised table per module (``ssm``, ``kernels``, ``cauchy``, ``liquid``, ``hippo``,
``layers``, ``scan``, ``lrcssm``): every row is a call that must raise the given exception with a
message matching the pattern. Then the one rule for array-likes (every public math function takes
a NumPy array where it takes a tensor and gives the tensor answer), the numerical fixes (the zero
mode and modes near a node of Algorithm 1, against float64 oracles), the memory guard and the
NaN-never-spreads checks.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from liquidssm import (
    _checks,
    cauchy,
    hippo,
    kernels,
    layers,
    liquid,
    lrc,
    lrcssm,
    newton,
    scan,
    ssm,
)
from liquidssm._checks import MemoryLimitError, limit_memory
from liquidssm.configs import LrcSSMConfig, SequenceModelConfig

F64, C128 = torch.float64, torch.complex128


def _sys(N=3, H=None):
    shape = (H, N, N) if H else (N, N)
    A = -torch.eye(N, dtype=F64).expand(shape).clone()
    return A, torch.ones(*shape[:-1], dtype=F64), torch.ones(*shape[:-1], dtype=F64)


def _dplr(H=2, N2=3):
    Lam = torch.complex(-0.5 * torch.ones(H, N2, dtype=F64), torch.arange(H * N2, dtype=F64).view(H, N2))
    P = 0.1 * torch.ones(H, N2, dtype=C128)
    B = torch.ones(H, N2, dtype=C128)
    C = torch.ones(H, N2, dtype=C128)
    return Lam, P, B, C, torch.full((H,), 0.1, dtype=F64)


def _singular_blocks() -> torch.Tensor:
    """Blocks (channels + r, 1 + r, H, Lz) with channels 1, rank 2 and I + k11 = 0."""
    k = torch.ones(3, 3, 1, 2, dtype=C128)
    k[1:, 1:] = -torch.eye(2, dtype=C128)[:, :, None, None]
    return k


A, B, C = _sys()
Ah, Bh, Ch = _sys(H=3)
LAM, P, BB, CC, DT = _dplr()

SSM_CASES = [
    ("half A", lambda: ssm.bilinear(A.half(), B.half(), 0.1), TypeError, r"A: expected float32 or float64.*half"),
    ("bfloat16 u", lambda: ssm.causal_conv(torch.ones(4, dtype=torch.bfloat16), torch.ones(4)), TypeError, "u: expected float32"),
    ("L = 0 recurrence", lambda: ssm.recurrence(A, B, C, torch.zeros(2, 0, dtype=F64)), ValueError, r"u: expected a sequence .* L >= 1"),
    ("L = 0 conv", lambda: ssm.causal_conv(torch.zeros(0, dtype=F64), torch.ones(3, dtype=F64)), ValueError, "L >= 1"),
    ("empty kernel", lambda: ssm.causal_conv(torch.ones(3, dtype=F64), torch.zeros(0, dtype=F64)), ValueError, "K: expected a sequence"),
    ("x0 wrong N", lambda: ssm.recurrence(A, B, C, torch.ones(4, dtype=F64), x0=torch.ones(2, dtype=F64)), ValueError, r"x0: shape \(2,\) does not broadcast"),
    ("x0 enlarges batch", lambda: ssm.recurrence(A, B, C, torch.ones(4, dtype=F64), x0=torch.ones(5, 3, dtype=F64)), ValueError, r"x0: shape \(5, 3\)"),
    ("x0 wrong N, batched input", lambda: ssm.recurrence(A, B, C, torch.ones(2, 4, dtype=F64), x0=torch.ones(2, 4, dtype=F64)),
     ValueError, r"x0: shape \(2, 4\) does not broadcast to the state \(\.\.\., N\) of the run \(2, 3\)"),
    ("x0 complex, system real", lambda: ssm.recurrence(A, B, C, torch.ones(4, dtype=F64), x0=torch.ones(3, dtype=C128)),
     TypeError, r"x0: expected a real initial state for the real system \(torch.float64\), got torch.complex128"),
    ("x0 float32, system float64", lambda: ssm.recurrence(A, B, C, torch.ones(4, dtype=F64), x0=torch.ones(3)),
     TypeError, r"expected tensors of one precision, got A_bar: torch.float64, x0: torch.float32"),
    ("dt (H, 1)", lambda: ssm.bilinear(Ah, Bh, torch.full((3, 1), 0.1)), ValueError, r"dt: .*got shape \(3, 1\), which would build a \(3, 3\) batch"),
    ("dt (2,) vs 3 systems", lambda: ssm.zoh(Ah, Bh, torch.full((2,), 0.1)), ValueError, "does not broadcast"),
    ("dt string", lambda: ssm.bilinear(A, B, "0.1"), TypeError, "dt: expected a positive number"),
    ("dt bool", lambda: ssm.bilinear(A, B, torch.tensor(True)), TypeError, "dt: .*bool"),
    ("dt empty", lambda: ssm.bilinear(A, B, torch.zeros(0)), ValueError, "dt: expected at least one value"),
    ("singular bilinear", lambda: ssm.bilinear(2 * torch.eye(2, dtype=F64), torch.ones(2, dtype=F64), 1.0), ValueError, r"I - dt/2 A is singular.*2/dt"),
    ("A list of strings", lambda: ssm.bilinear([["a"]], B, 0.1), TypeError, "A: expected a tensor"),
    ("kernel_by_powers huge L", lambda: ssm.kernel_by_powers(A, B, C, 10**12), MemoryLimitError, r"kernel_by_powers: .*L = 1000000000000"),
    ("recurrence huge batch", lambda: ssm.recurrence(A, B, C, torch.ones(1, 1, dtype=F64).expand(10**6, 10**6)), MemoryLimitError, "recurrence"),
    ("bilinear huge N", lambda: ssm.bilinear(torch.zeros(1, 1, dtype=F64).expand(60000, 60000),
                                             torch.zeros(1, dtype=F64).expand(60000), 0.1), MemoryLimitError, "N = 60000"),
    ("conv huge", lambda: ssm.causal_conv(torch.zeros(1, dtype=F64).expand(10**11), torch.ones(2, dtype=F64)), MemoryLimitError, "causal_conv"),
]

KERNELS_CASES = [
    ("P None", lambda: kernels.s4_dplr_kernel(LAM, None, BB, CC, DT, 8), TypeError, r"P: expected a complex tensor.*got None.*zeros_like"),
    ("B None dense", lambda: kernels.s4_dense_kernel(LAM, P, None, CC, DT, 8), TypeError, "B: expected a complex tensor"),
    ("C None c_tilde", lambda: kernels.c_tilde(LAM, P, BB, None, DT, 8), TypeError, "C: expected"),
    ("Lambda None", lambda: kernels.s4d_kernel(None, BB, CC, DT, 8), TypeError, "Lambda: expected"),
    ("half precision", lambda: kernels.s4d_kernel(*(torch.ones(2, 3, dtype=torch.float16),) * 3, DT.half(), 8), TypeError,
     r"Lambda: expected float32/complex64 or float64/complex128 precision, got torch.float16"),
    ("zero mode", lambda: kernels.s4_dplr_kernel(torch.zeros(1, 2, dtype=C128), torch.zeros(1, 2, dtype=C128),
                                                 torch.ones(1, 2, dtype=C128), torch.ones(1, 2, dtype=C128),
                                                 torch.ones(1, dtype=F64), 8), ValueError, r"mode 0 of channel 0 .*0/0.*method='dense'"),
    ("mode at a node", lambda: kernels.s4_dplr_kernel(torch.tensor([[2j * math.tan(math.pi / 8)]], dtype=C128),
                                                      torch.zeros(1, 1, dtype=C128), torch.ones(1, 1, dtype=C128),
                                                      torch.ones(1, 1, dtype=C128), torch.ones(1, dtype=F64), 8),
     ValueError, "root of unity"),
    ("roots_of_unity real dtype", lambda: kernels.roots_of_unity(8, torch.float32), TypeError, "complex64"),
    ("roots_of_unity huge", lambda: kernels.roots_of_unity(10**13), MemoryLimitError, "L = 10000000000000"),
    ("s4d huge L", lambda: kernels.s4d_kernel(LAM, BB, CC, DT, 10**10), MemoryLimitError, r"s4d_kernel: the \(H, N2, L\)"),
    ("dplr huge L", lambda: kernels.s4_dplr_kernel(LAM, P, BB, CC, DT, 10**11), MemoryLimitError, "s4_dplr_kernel"),
    ("dense huge N", lambda: kernels.discretize_dplr_bilinear(*[t.expand(64, 40000) if t.ndim == 2 else t.expand(64)
                                                                for t in (LAM[:1, :1], P[:1, :1], BB[:1, :1], DT[:1])]),
     MemoryLimitError, "discretize_dplr_bilinear"),
    ("irfft wrong bins", lambda: kernels.irfft_kernel(torch.ones(2, 4, dtype=C128), 16), ValueError, r"K_hat: expected .*= \(\.\.\., 9\)"),
    ("matrix power non-square", lambda: kernels.matrix_power_squaring(torch.ones(2, 3), 2), ValueError, "square"),
    ("matrix power list", lambda: kernels.matrix_power_squaring([[object()]], 2), TypeError, "A: expected a tensor"),
    ("woodbury not a tensor", lambda: kernels.woodbury("k", 1), TypeError, "k: expected"),
    ("singular Woodbury r=2", lambda: kernels.woodbury(_singular_blocks(), 1), ValueError, "Woodbury capacitance matrix"),
    ("method case", lambda: kernels.s4_kernel(LAM, P, BB, CC, DT, 8, method="Dense"), ValueError, r"method: expected one of \['dplr', 'dense'\]"),
]

CAUCHY_CASES = [
    ("naive too large", lambda: cauchy.cauchy_naive(torch.ones(1, dtype=C128).expand(2**20), torch.ones(1, dtype=C128).expand(2**20),
                                                    torch.zeros(1, dtype=C128).expand(2**20)), MemoryLimitError, "cauchy_naive"),
    ("scalar v", lambda: cauchy.cauchy(torch.tensor(1j, dtype=C128), torch.ones(3, dtype=C128), torch.ones(1, dtype=C128)), ValueError, "v: expected at least 1-D"),
    ("int z", lambda: cauchy.cauchy_torch(torch.ones(2, dtype=C128), torch.ones(3, dtype=torch.long), torch.ones(2, dtype=C128)), TypeError, "z: expected"),
    ("NaN w", lambda: cauchy.cauchy(torch.ones(2, dtype=C128), torch.ones(3, dtype=C128), torch.tensor([1j, math.nan], dtype=C128)), ValueError, "w: expected finite"),
    ("N2 mismatch", lambda: cauchy.cauchy(torch.ones(2, dtype=C128), torch.ones(3, dtype=C128), torch.ones(3, dtype=C128)), ValueError, "same number of stored modes"),
    ("chunk 0", lambda: cauchy.cauchy_torch(torch.ones(2, dtype=C128), torch.ones(3, dtype=C128), torch.ones(2, dtype=C128), chunk_elems=0), ValueError, "chunk_elems"),
    ("backend case", lambda: cauchy.cauchy(torch.ones(2, dtype=C128), torch.ones(3, dtype=C128), torch.ones(2, dtype=C128), backend="Torch"), ValueError, "backend"),
]

_AB, _BB, _CB = _sys(N=2)
LIQUID_CASES = [
    ("L = 0 liquid recurrence", lambda: liquid.liquid_recurrence(_AB, _BB, _CB, torch.zeros(0, dtype=F64)), ValueError, "L >= 1"),
    ("x0 wrong shape", lambda: liquid.liquid_recurrence(_AB, _BB, _CB, torch.ones(3, dtype=F64), x0=torch.ones(3, dtype=F64)), ValueError, "x0"),
    ("dplr_B_bar string", lambda: liquid.dplr_B_bar("Lambda", BB, P, 0.1), TypeError, "Lambda: expected a tensor"),
    ("dplr_B_bar dt (H, 1)", lambda: liquid.dplr_B_bar(LAM.to(C128), P, BB, torch.full((2, 1), 0.1)), ValueError, r"dt: .*\(2, 1\)"),
    ("dplr_B_bar N mismatch", lambda: liquid.dplr_B_bar(LAM.to(C128), P[:, :2], BB, DT), ValueError, "P: expected shape"),
    ("kb P None", lambda: liquid.kb_kernel(LAM, None, BB, CC, DT, 8, 2), TypeError, "P: expected"),
    ("kb_dplr dt negative", lambda: liquid.kb_kernel_dplr(LAM, P, BB, CC, -DT, 8, 2), ValueError, "dt: expected finite values > 0"),
    ("pb_coefficients C None", lambda: liquid.pb_coefficients(LAM, P, BB, None, DT, 2), TypeError, "C: expected"),
    ("official_B_bar string dt", lambda: liquid.official_B_bar(LAM.to(C128), BB, "x"), TypeError, "dt"),
    ("pb_kernel N mismatch", lambda: liquid.pb_kernel(torch.ones(3), torch.ones(2), 8, 2), ValueError, "B_bar, C"),
    ("pb_kernel huge L", lambda: liquid.pb_kernel(torch.ones(3), torch.ones(3), 10**11, 3), MemoryLimitError, "pb_kernel"),
    ("kb_dense huge L", lambda: liquid.kb_kernel_dense(_AB, _BB, _CB, 10**11, 3), MemoryLimitError, "kb_kernel_dense"),
    ("liquid_output huge", lambda: liquid.liquid_output(torch.zeros(1, dtype=F64).expand(10**10), torch.ones(2, 4, dtype=F64)), MemoryLimitError, "liquid_output"),
    ("symbolic k too large", lambda: liquid.symbolic_unroll(40), ValueError, r"k: expected an int <= 10"),
    ("printed k too large", lambda: liquid.printed_eq10_terms(30), ValueError, "k: expected an int <= 10"),
    ("order float", lambda: liquid.pb_kernel(torch.ones(3), torch.ones(3), 8, 2.0), TypeError, "order"),
]

HIPPO_CASES = [
    ("int dtype", lambda: hippo.hippo_legs(4, torch.int64), TypeError, "dtype: expected one of torch.float32"),
    ("complex P dtype", lambda: hippo.legs_rank_correction(4, torch.complex64), TypeError, "dtype"),
    ("huge N", lambda: hippo.hippo_legs(10**6), MemoryLimitError, "hippo_legs: .*N = 1000000"),
    ("huge nplr", lambda: hippo.nplr_legs(200000), MemoryLimitError, "nplr_legs"),
    ("s4d real dtype", lambda: hippo.s4d_init(4, "lin", torch.float32), TypeError, "complex64"),
    ("reconstruct shapes", lambda: hippo.dplr_reconstruct(torch.ones(2, dtype=C128), torch.ones(3, dtype=C128),
                                                          torch.ones(4, 2, dtype=C128)), ValueError, "shapes do not agree"),
    ("N bool", lambda: hippo.hippo_legs(True), TypeError, "N: expected an int"),
]

_cfg_tok = SequenceModelConfig(d_output=3, n_tokens=5, d_model=4, d_state=4, n_blocks=1)
_cfg_lin = SequenceModelConfig(d_output=3, d_input=2, d_model=4, d_state=4, n_blocks=1)
_cfg_ret = SequenceModelConfig(d_output=2, n_tokens=5, d_model=4, d_state=4, n_blocks=1, head="retrieval")
LAYERS_CASES = [
    ("S4 batch 0", lambda: layers.S4Layer(4, 4)(torch.zeros(0, 5, 4)), ValueError, r"non-empty batch .* got shape \(0, 5, 4\)"),
    ("S4 length 0", lambda: layers.S4Layer(4, 4)(torch.zeros(2, 0, 4)), ValueError, "L >= 1"),
    ("S4 NaN input", lambda: layers.S4Layer(4, 4)(torch.full((2, 5, 4), math.nan)), ValueError, "u: expected finite values"),
    ("S4 int input", lambda: layers.S4Layer(4, 4)(torch.ones(2, 5, 4, dtype=torch.long)), TypeError, "real floating"),
    ("S4 numpy input", lambda: layers.S4Layer(4, 4)([[[0.0] * 4]]), TypeError, "torch.Tensor"),
    ("S4 old kernel_backend", lambda: layers.S4Layer(4, 4, kernel_backend="Dense"), TypeError, "kernel_backend"),
    ("S4 kernel_method case", lambda: layers.S4Layer(4, 4, kernel_method="Dense"), ValueError, "kernel_method"),
    ("S4 dt_min string", lambda: layers.S4Layer(4, 4, dt_min="0.1"), ValueError, "dt_min, dt_max"),
    ("S4 dropout 1.5", lambda: layers.S4Layer(4, 4, dropout=1.5), ValueError, r"dropout: expected a probability in \[0, 1\)"),
    ("float lengths", lambda: layers.S4Layer(4, 4)(torch.zeros(2, 5, 4), lengths=torch.tensor([2.0, 3.0])), TypeError, "lengths: expected integer"),
    ("step_forward wrong H", lambda: layers.S4Layer(4, 4).step_forward(torch.zeros(1, 3, 5)), ValueError, "H = 4"),
    ("token >= n_tokens", lambda: layers.SequenceModel(_cfg_tok)(torch.tensor([[1, 5]])), ValueError, r"token ids in \[0, n_tokens = 5\), got values in \[1, 5\]"),
    ("negative token", lambda: layers.SequenceModel(_cfg_tok)(torch.tensor([[-1, 2]])), ValueError, "token ids"),
    ("bool tokens", lambda: layers.SequenceModel(_cfg_tok)(torch.ones(2, 3, dtype=torch.bool)), TypeError, "integer tokens"),
    ("float64 input to float32 model", lambda: layers.SequenceModel(_cfg_lin)(torch.zeros(2, 3, 2, dtype=F64)), TypeError, r"expected torch.float32 .*x.to\(torch.float32\)"),
    ("S4 float64 input to float32 layer", lambda: layers.S4Layer(4, 4)(torch.zeros(2, 5, 4, dtype=F64)), TypeError,
     r"u: expected torch.float32 values \(the layer's dtype\), got torch.float64; convert the batch with "
     r"u.to\(torch.float32\) or the layer with layer.to\(torch.float64\)"),
    ("Liquid-S4 float64 input to float32 layer", lambda: layers.LiquidS4Layer(4, 4)(torch.zeros(2, 5, 4, dtype=F64)),
     TypeError, r"u: expected torch.float32 values \(the layer's dtype\), got torch.float64"),
    ("S4 float32 input to float64 layer", lambda: layers.S4Layer(4, 4).double()(torch.zeros(2, 5, 4)), TypeError,
     r"u: expected torch.float64 values \(the layer's dtype\), got torch.float32"),
    ("step_forward float64 input", lambda: layers.S4Layer(4, 4).step_forward(torch.zeros(2, 5, 4, dtype=F64)), TypeError,
     r"u: expected torch.float32 values \(the layer's dtype\)"),
    ("wrong d_input", lambda: layers.SequenceModel(_cfg_lin)(torch.zeros(2, 3, 5)), ValueError, "d_input = 2"),
    ("NaN sample", lambda: layers.SequenceModel(_cfg_lin)(torch.cat([torch.zeros(1, 3, 2), torch.full((1, 3, 2), math.nan)])), ValueError, "x: expected finite"),
    ("batch 1 x length 1 train", lambda: layers.SequenceModel(_cfg_lin).train()(torch.zeros(1, 1, 2)), ValueError, "BatchNorm in training mode"),
    ("retrieval odd batch", lambda: layers.SequenceModel(_cfg_ret)(torch.ones(3, 4, dtype=torch.long)), ValueError, "two stacked document batches"),
    ("empty token batch", lambda: layers.SequenceModel(_cfg_tok)(torch.zeros(0, 4, dtype=torch.long)), ValueError, "non-empty batch"),
    ("huge vocabulary", lambda: layers.SequenceModel(SequenceModelConfig(d_output=2, n_tokens=10**11, d_model=4, d_state=4)),
     MemoryLimitError, "SequenceModel: the parameters"),
    ("huge liquid order", lambda: layers.LiquidS4Layer(2, 4, order=10**7)(torch.zeros(1, 8, 2)), MemoryLimitError, "LiquidS4Layer"),
]

SCAN_CASES = [
    ("x0 wrong shape", lambda: scan.linear_scan(torch.ones(2, 5), torch.ones(2, 5), torch.ones(3)), ValueError,
     r"x0: expected shape \(2,\) \(a and b's shape without the time axis dim=1\), got \(3,\)"),
    ("x0 complex, a and b real", lambda: scan.linear_scan(torch.ones(2, 5, dtype=F64), torch.ones(2, 5, dtype=F64),
                                                          torch.ones(2, dtype=C128)),
     TypeError, r"x0: expected a real initial state for real a and b \(torch.float64\), got torch.complex128"),
    ("x0 float64, a float32", lambda: scan.linear_scan(torch.ones(2, 5), torch.ones(2, 5), torch.ones(2, dtype=F64)),
     TypeError, "got a: torch.float32, x0: torch.float64"),
    ("a of strings", lambda: scan.linear_scan(np.array([["x"]]), torch.ones(1, 1)), TypeError, "a: expected a tensor"),
]

_cfg_lrc = LrcSSMConfig(d_input=2, d_output=3, d_model=4, d_state=4, n_blocks=1)
_lrc_cell = lrc.LrcSSMCell(2, 4)
_U = torch.zeros(2, 5, 2)
LRCSSM_CASES = [
    ("float64 input to float32 model", lambda: lrcssm.LrcSSMModel(_cfg_lrc)(torch.zeros(2, 5, 2, dtype=F64)), TypeError,
     r"inputs: expected torch.float32 values \(the model's dtype\), got torch.float64; convert the batch with "
     r"inputs.to\(torch.float32\) or the model with model.to\(torch.float64\)"),
    ("float32 input to float64 model", lambda: lrcssm.LrcSSMModel(_cfg_lrc.replace(dtype="float64"))(_U), TypeError,
     r"inputs: expected torch.float64 values \(the model's dtype\), got torch.float32"),
    ("NumPy input to the model", lambda: lrcssm.LrcSSMModel(_cfg_lrc)(np.zeros((2, 5, 2), np.float32)), TypeError,
     "inputs: expected a torch.Tensor, got ndarray"),
    ("integer input to the model", lambda: lrcssm.LrcSSMModel(_cfg_lrc)(torch.zeros(2, 5, 2, dtype=torch.long)),
     TypeError, r"inputs: expected torch.float32 values .*got torch.int64; convert the batch with inputs.to"),
    ("float64 input to a float32 block", lambda: lrcssm.LrcSSMBlock(4, 4)(torch.zeros(2, 5, 4, dtype=F64)), TypeError,
     r"u: expected torch.float32 values \(the block's dtype\), got torch.float64"),
    ("float64 input to a float32 layer", lambda: lrcssm.LrcSSMLayer(2, 4)(torch.zeros(2, 5, 2, dtype=F64)), TypeError,
     r"u: expected torch.float32 values \(the layer's dtype\), got torch.float64"),
    ("layer x0 of another D", lambda: lrcssm.LrcSSMLayer(2, 4)(_U, x0=torch.zeros(2, 3)), ValueError,
     r"x0: expected shape \(2, 4\) \(batch, D\), got \(2, 3\)"),
    ("sequential layer x0 of another batch", lambda: lrcssm.LrcSSMLayer(2, 4, solver="sequential")(_U, x0=torch.zeros(5, 4)),
     ValueError, r"x0: expected shape \(2, 4\) \(batch, D\), got \(5, 4\)"),
    ("newton_solve x0 of another D", lambda: newton.newton_solve(_lrc_cell, _U, torch.zeros(2, 3)), ValueError,
     r"x0: expected shape \(2, 4\)"),
    ("sequential_solve x0 flat", lambda: newton.sequential_solve(_lrc_cell, _U, torch.zeros(8)), ValueError,
     r"x0: expected shape \(2, 4\) \(batch, D\), got \(8,\)"),
    ("dense LRC cell x0 of another D", lambda: lrc.LRCCell(2, 4).rollout(_U, torch.zeros(2, 3)), ValueError,
     r"x0: expected shape \(2, 4\) \(batch, D\), got \(2, 3\)"),
    ("dense LRC cell float64 input", lambda: lrc.LRCCell(2, 4).rollout(_U.double()), TypeError,
     r"u: expected dtype torch.float32 \(the cell's parameters\), got torch.float64"),
    ("dense LRC cell wrong H", lambda: lrc.LRCCell(2, 4).rollout(torch.zeros(2, 5, 3)), ValueError,
     r"u: expected shape \(B, T, H\) with H=2, got \(2, 5, 3\)"),
]

TABLES = {"ssm": SSM_CASES, "kernels": KERNELS_CASES, "cauchy": CAUCHY_CASES, "liquid": LIQUID_CASES,
          "hippo": HIPPO_CASES, "layers": LAYERS_CASES, "scan": SCAN_CASES, "lrcssm": LRCSSM_CASES}


@pytest.fixture
def small_limit():
    """A 1 GiB memory limit, whatever the machine (the guard's default is half the RAM)."""
    with limit_memory(2**30):
        yield


@pytest.mark.parametrize("module,case,call,exc,pattern", [
    pytest.param(m, c, f, e, p, id=f"{m}: {c}") for m, rows in TABLES.items() for c, f, e, p in rows])
def test_bad_input_is_refused_clearly(module, case, call, exc, pattern, small_limit):
    with pytest.raises(exc, match=pattern):
        call()


# ---------------------------------------------------------------------------------------------
# array-likes: one rule for the math modules (liquidssm._checks, "Array-likes")
# ---------------------------------------------------------------------------------------------
def _np(t):
    """A tensor as the NumPy array a user would pass (other values unchanged)."""
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t


_Ub = torch.linspace(-1, 1, 8, dtype=F64).expand(2, 8).clone()  # (H, L) input for the liquid functions
_cell = lrc.LrcSSMCell(2, 4, dtype=F64)
_u_cell = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
_pre = _cell.input_terms(_u_cell)
_x0_cell = torch.zeros(2, 4, dtype=F64)
_x_cell = torch.zeros(2, 5, 4, dtype=F64)
_a_scan, _b_scan, _x0_scan = 0.5 * torch.ones(2, 6, dtype=F64), torch.ones(2, 6, dtype=F64), torch.ones(2, dtype=F64)
_corr = torch.ones(1, 2, 1, 8, dtype=F64)

#: (module, function, call given a converter ``c`` applied to every array argument)
ARRAY_CALLS = [
    (ssm, "bilinear", lambda c: ssm.bilinear(c(A), c(B), c(torch.tensor(0.1, dtype=F64)))),
    (ssm, "zoh", lambda c: ssm.zoh(c(A), c(B), c(torch.tensor(0.1, dtype=F64)))),
    (ssm, "discretize", lambda c: ssm.discretize(c(A), c(B), c(torch.tensor(0.1, dtype=F64)))),
    (ssm, "recurrence", lambda c: ssm.recurrence(c(A), c(B), c(C), c(_Ub[0]), x0=c(torch.ones(3, dtype=F64)))),
    (ssm, "kernel_by_powers", lambda c: ssm.kernel_by_powers(c(A), c(B), c(C), 6)),
    (ssm, "causal_conv", lambda c: ssm.causal_conv(c(_Ub), c(_Ub))),
    (ssm, "causal_conv_direct", lambda c: ssm.causal_conv_direct(c(_Ub), c(_Ub))),
    (ssm, "causal_conv_fft", lambda c: ssm.causal_conv_fft(c(_Ub), c(_Ub))),
    (ssm, "check_discrete_system", lambda c: ssm.check_discrete_system(c(A), c(B), c(C))),
    (ssm, "check_sequence", lambda c: ssm.check_sequence(c(_Ub))),
    (ssm, "initial_state", lambda c: ssm.initial_state(c(A), c(B), c(C), c(_Ub[0]), c(torch.ones(3, dtype=F64)))),
    (kernels, "bilinear_factor", lambda c: kernels.bilinear_factor(c(kernels.roots_of_unity(8, C128)[:-1]))),
    (kernels, "bilinear_input", lambda c: kernels.bilinear_input(c(LAM.to(C128)), c(P), c(BB), c(DT))),
    (kernels, "c_from_tilde", lambda c: kernels.c_from_tilde(c(LAM), c(P), c(BB), c(CC), c(DT), 8)),
    (kernels, "c_tilde", lambda c: kernels.c_tilde(c(LAM), c(P), c(BB), c(CC), c(DT), 8)),
    (kernels, "conj_double", lambda c: kernels.conj_double(c(BB))),
    (kernels, "discretize_dplr_bilinear", lambda c: kernels.discretize_dplr_bilinear(c(LAM), c(P), c(BB), c(DT))),
    (kernels, "double_c_tilde", lambda c: kernels.double_c_tilde(c(LAM), c(P), c(BB), c(CC), c(DT), 8)),
    (kernels, "dplr_dense_A", lambda c: kernels.dplr_dense_A(c(LAM), c(P))),
    (kernels, "dplr_to_dense", lambda c: kernels.dplr_to_dense(c(LAM), c(P), c(BB), c(CC))),
    (kernels, "generating_function_blocks", lambda c: kernels.generating_function_blocks(
        c(LAM.to(C128)), c(P), c(BB), c(CC), c(DT), c(kernels.roots_of_unity(8, C128)[:-1]), backend="torch")),
    (kernels, "irfft_kernel", lambda c: kernels.irfft_kernel(c(torch.ones(2, 5, dtype=C128)), 8)),
    (kernels, "matrix_power_squaring", lambda c: kernels.matrix_power_squaring(c(A), 3)),
    (kernels, "node_distance", lambda c: kernels.node_distance(c(LAM.to(C128)), c(DT), 8)),
    (kernels, "node_mean", lambda c: kernels.node_mean(c(torch.ones(2, 5, dtype=C128)), 8)),
    (kernels, "nyquist_value", lambda c: kernels.nyquist_value(c(BB), c(CC[None]), c(DT))),
    (kernels, "s4_dense_kernel", lambda c: kernels.s4_dense_kernel(c(LAM), c(P), c(BB), c(CC), c(DT), 8)),
    (kernels, "s4_dplr_kernel", lambda c: kernels.s4_dplr_kernel(c(LAM), c(P), c(BB), c(CC), c(DT), 8, backend="torch")),
    (kernels, "s4_dplr_kernel_and_taps", lambda c: kernels.s4_dplr_kernel_and_taps(
        c(LAM), c(P), c(BB), c(CC), c(DT), 8, c(BB[None] ** 2), backend="torch")),
    (kernels, "s4_dplr_kernel_and_row", lambda c: kernels.s4_dplr_kernel_and_row(
        c(LAM), c(P), c(BB), c(CC), c(DT), 8, backend="torch")),
    (kernels, "diagonal_node_mean", lambda c: kernels.diagonal_node_mean(c(LAM.to(C128)), c(DT), 8)),
    (kernels, "woodbury_weights", lambda c: kernels.woodbury_weights(c(0.1 * torch.ones(2, 2, 2, 5, dtype=C128)), 1)),
    (kernels, "s4_kernel", lambda c: kernels.s4_kernel(c(LAM), c(P), c(BB), c(CC), c(DT), 8, backend="torch")),
    (kernels, "s4d_kernel", lambda c: kernels.s4d_kernel(c(LAM), c(BB), c(CC), c(DT), 8)),
    (kernels, "woodbury", lambda c: kernels.woodbury(c(0.1 * torch.ones(2, 2, 2, 5, dtype=C128)), 1)),
    (liquid, "liquid_recurrence", lambda c: liquid.liquid_recurrence(c(_AB), c(_BB), c(_CB), c(_Ub[0]))),
    (liquid, "subset_weight", lambda c: liquid.subset_weight(c(_AB), c(_BB), c(_CB), (0, 1), 2)),
    (liquid, "printed_subset_weight", lambda c: liquid.printed_subset_weight(c(_AB), c(_BB), c(_CB), (0, 1), 2)),
    (liquid, "unrolled_output", lambda c: liquid.unrolled_output(c(_AB), c(_BB), c(_CB), c(_Ub[0, :5]))),
    (liquid, "consecutive_products", lambda c: liquid.consecutive_products(c(_Ub), 2)),
    (liquid, "kb_kernel_dense", lambda c: liquid.kb_kernel_dense(c(_AB), c(_BB), c(_CB), 8, 3)),
    (liquid, "kb_kernel_dplr", lambda c: liquid.kb_kernel_dplr(c(LAM), c(P), c(BB), c(CC), c(DT), 8, 3, backend="torch")),
    (liquid, "kb_kernel", lambda c: liquid.kb_kernel(c(LAM), c(P), c(BB), c(CC), c(DT), 8, 3, backend="torch")),
    (liquid, "dplr_B_bar", lambda c: liquid.dplr_B_bar(c(LAM.to(C128)), c(P), c(BB), c(DT))),
    (liquid, "pb_kernel", lambda c: liquid.pb_kernel(c(BB), c(CC), 8, 3)),
    (liquid, "pb_coefficients", lambda c: liquid.pb_coefficients(c(LAM), c(P), c(BB), c(CC), c(DT), 3)),
    (liquid, "pb_coefficients_tilde", lambda c: liquid.pb_coefficients_tilde(c(LAM), c(P), c(BB), c(CC), c(DT), 3, 8,
                                                                             backend="torch")),
    (liquid, "liquid_output", lambda c: liquid.liquid_output(c(_Ub), c(torch.ones(2, 1, 8, dtype=F64)))),
    (liquid, "official_correlations", lambda c: liquid.official_correlations(c(_Ub), 2)),
    (liquid, "official_B_bar", lambda c: liquid.official_B_bar(c(LAM.to(C128)), c(BB), c(DT))),
    (liquid, "official_pb_coefficients", lambda c: liquid.official_pb_coefficients(c(kernels.conj_double(BB)),
                                                                                   c(kernels.conj_double(CC)), 3)),
    (liquid, "window_sum", lambda c: liquid.window_sum(c(_Ub), 3)),
    (liquid, "pb_term_reference", lambda c: liquid.pb_term_reference(c(_Ub[None]), c(torch.ones(2, 2, dtype=F64)), 3)),
    (liquid, "pb_term", lambda c: liquid.pb_term(c(_Ub[None]), c(torch.ones(2, 2, dtype=F64)), 3)),
    (liquid, "official_pb_term", lambda c: liquid.official_pb_term(c(_corr), c(torch.ones(2, 1, dtype=F64)))),
    (liquid, "official_kb_term", lambda c: liquid.official_kb_term(c(_corr), c(_Ub), c(torch.ones(2, dtype=F64)))),
    (scan, "linear_scan", lambda c: scan.linear_scan(c(_a_scan), c(_b_scan), c(_x0_scan))),
    (scan, "scan_sequential", lambda c: scan.scan_sequential(c(_a_scan), c(_b_scan), c(_x0_scan))),
    (scan, "scan_hillis_steele", lambda c: scan.scan_hillis_steele(c(_a_scan), c(_b_scan), c(_x0_scan))),
    (scan, "scan_blelloch", lambda c: scan.scan_blelloch(c(_a_scan), c(_b_scan), c(_x0_scan))),
    (scan, "scan_chunked", lambda c: scan.scan_chunked(c(_a_scan), c(_b_scan), c(_x0_scan), chunk=4)),
    (scan, "scan_associative", lambda c: scan.scan_associative(c(_a_scan), c(_b_scan), c(_x0_scan))),
    (newton, "checked_initial_state", lambda c: newton.checked_initial_state(_cell, _u_cell, c(_x0_cell))),
    (newton, "sequential_rollout", lambda c: newton.sequential_rollout(_cell, c(_u_cell), c(_x0_cell))),
    (newton, "sequential_solve_bptt", lambda c: newton.sequential_solve_bptt(_cell, c(_u_cell), c(_x0_cell))),
    (newton, "sequential_states", lambda c: newton.sequential_states(_cell, _pre, c(_x0_cell))),
    (newton, "sequential_solve", lambda c: newton.sequential_solve(_cell, c(_u_cell), c(_x0_cell))),
    (newton, "newton_step", lambda c: newton.newton_step(_cell, c(_x_cell), _pre, c(_x0_cell))),
    (newton, "newton_iterate", lambda c: newton.newton_iterate(_cell, _pre, c(_x0_cell), tol=1e-12, max_iter=5)),
    (newton, "implicit_gradient_step", lambda c: newton.implicit_gradient_step(_cell, c(_x_cell), _pre, c(_x0_cell))),
    (newton, "newton_solve", lambda c: newton.newton_solve(_cell, c(_u_cell), c(_x0_cell))),
]

#: public functions that take no array, and the scan's algorithm cores and their operator
#: ``combine``, which take already validated tensors (their entry point is linear_scan)
NO_ARRAY_ARGUMENTS = {
    "ssm": {"guard_steps"},
    "kernels": {"check_method", "roots_of_unity"},
    "liquid": {"symbolic_unroll", "printed_eq10_terms", "check_order", "check_L_tilde", "guard_orders",
               "official_L_tilde", "official_subsets"},
    "scan": {"combine", "sequential_core", "hillis_steele_core", "blelloch_core"},
    "newton": {"default_tol"},
}


def _public(module) -> set[str]:
    """The functions of a module's ``__all__``."""
    return {n for n in module.__all__ if inspect.isfunction(getattr(module, n))}


def _tensors(out) -> list:
    """The values of a result (a tensor, a tuple of them, or a result record)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, newton.NewtonResult):
        return [out.x, out.iterations]
    return [out]


@pytest.mark.parametrize("module", [ssm, kernels, liquid, scan, newton], ids=lambda m: m.__name__.split(".")[-1])
def test_every_public_math_function_is_covered_by_the_array_rule(module):
    short = module.__name__.split(".")[-1]
    covered = {name for m, name, _ in ARRAY_CALLS if m is module}
    assert _public(module) - covered - NO_ARRAY_ARGUMENTS[short] == set()


@pytest.mark.parametrize("module,name,call", [pytest.param(m, n, f, id=f"{m.__name__.split('.')[-1]}.{n}")
                                              for m, n, f in ARRAY_CALLS])
def test_numpy_arrays_are_accepted_and_give_the_tensor_answer(module, name, call):
    with torch.no_grad():
        want, got = _tensors(call(lambda t: t)), _tensors(call(_np))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if not isinstance(w, torch.Tensor):
            assert g == w
            continue
        assert isinstance(g, torch.Tensor), f"{name} returned {type(g).__name__} for NumPy input"
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def test_non_numeric_arrays_are_refused_by_name():
    words = np.array([["a", "b"], ["c", "d"]])
    with pytest.raises(TypeError, match="corr: expected a tensor or array-like of numbers, got ndarray"):
        liquid.official_pb_term(words, np.ones((2, 1)))
    with pytest.raises(TypeError, match="K_hat: expected a tensor or array-like of numbers, got ndarray"):
        kernels.node_mean(words, 8)
    with pytest.raises(TypeError, match="x0: expected a real floating or complex dtype, got torch.int64"):
        newton.newton_step(_cell, _x_cell, _pre, np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="Lambda: expected a tensor or array-like of numbers"):
        liquid.kb_kernel_dplr(words, P, BB, CC, DT, 8, 2)


# ---------------------------------------------------------------------------------------------
# modules: their own dtype, except inside autocast
# ---------------------------------------------------------------------------------------------
def test_layers_take_lower_precision_inside_autocast_only():
    u = torch.randn(2, 6, 4).bfloat16()
    s4, lrc_layer = layers.S4Layer(4, 4), lrcssm.LrcSSMLayer(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert s4(u).shape == (2, 6, 4) and lrc_layer(u).shape == (2, 6, 4)
    with pytest.raises(TypeError, match=r"u: expected torch.float32 values \(the layer's dtype\), got torch.bfloat16"):
        s4(u)
    with pytest.raises(TypeError, match=r"u: expected torch.float32 values \(the layer's dtype\), got torch.bfloat16"):
        lrc_layer(u)


# ---------------------------------------------------------------------------------------------
# the zero mode and modes near a node: limits computed, or refused, never NaN (float64 oracles)
# ---------------------------------------------------------------------------------------------
def test_s4d_zoh_kernel_has_the_limit_at_a_zero_mode():
    Lam = torch.tensor([[0j, -0.5 - 3j]], dtype=C128)
    B, C = torch.tensor([[1 + 1j, 0.5]], dtype=C128), torch.tensor([[2 - 1j, 1.0]], dtype=C128)
    dt = torch.tensor([0.1], dtype=F64)
    K = kernels.s4d_kernel(Lam, B, C, dt, 16)
    zero_part = 2 * (C[0, 0] * B[0, 0] * 0.1).real  # (e^{dt 0} - 1)/0 -> dt: K_l = 2 Re(C dt B)
    rest = kernels.s4d_kernel(Lam[:, 1:], B[:, 1:], C[:, 1:], dt, 16)
    torch.testing.assert_close(K, rest + zero_part, rtol=1e-12, atol=1e-12)
    K32 = kernels.s4d_kernel(Lam.to(torch.complex64), B.to(torch.complex64), C.to(torch.complex64), dt.float(), 16)
    assert torch.isfinite(K32).all() and (K32.double() - K).abs().max() < 1e-5 * K.abs().max()


@pytest.mark.parametrize("lam0", [1e-9, 1e-6, 1e-3])
@pytest.mark.parametrize("low_rank", [False, True])
def test_complex64_kernel_near_a_zero_mode_matches_the_float64_oracle(lam0, low_rank):
    d = hippo.nplr_legs(8, C128)
    Lam = d.Lambda.clone()
    Lam[0] = -lam0
    P = d.P if low_rank else torch.zeros_like(d.P)
    C = torch.randn(4, dtype=C128)
    dt = torch.tensor([0.01], dtype=F64)
    ref = kernels.s4_dense_kernel(Lam, P, d.B, C, dt, 256)
    c64 = [t.to(torch.complex64) for t in (Lam, P, d.B, C)]
    K = kernels.s4_dplr_kernel(*c64, dt.float(), 256, backend="torch")
    assert K.dtype == torch.float32
    assert (K.double() - ref).abs().max() < 1e-5 * ref.abs().max()  # was 0.1-3 before promotion


def test_node_distance_finds_the_nearest_node():
    L = 16
    z3 = 2 * math.tan(math.pi * 3 / L)
    Lam = torch.tensor([[-0.01 + 1j * z3, -0.01 - 1j * z3, 0j, -1 + 0j]], dtype=C128)
    d = kernels.node_distance(Lam, torch.ones(1, dtype=F64), L)
    torch.testing.assert_close(d[0, :3], torch.tensor([0.01, 0.01, 0.0], dtype=F64))
    assert d[0, 3] == pytest.approx(1.0)
    odd = kernels.node_distance(torch.tensor([[1e6j]], dtype=C128), torch.ones(1, dtype=F64), 15)
    assert odd[0, 0] == pytest.approx(1e6 - 2 * math.tan(math.pi * 7 / 15))  # nearest is the last node


def test_well_separated_complex64_inputs_stay_in_complex64(monkeypatch):
    """No behaviour change for valid input: the usual initialisation is never promoted."""
    calls = []
    real = kernels.c_tilde
    monkeypatch.setattr(kernels, "c_tilde", lambda *a, **k: calls.append(a[0].dtype) or real(*a, **k))
    d = hippo.nplr_legs(16, torch.complex64)
    H = 3
    Lam, P, B = (t.expand(H, 8) for t in (d.Lambda, d.P, d.B))
    kernels.s4_dplr_kernel(Lam, P, B, torch.randn(H, 8, dtype=torch.complex64),
                           torch.tensor([1e-3, 1e-2, 1e-1]), 1024, backend="torch")
    assert calls == [torch.complex64]


# ---------------------------------------------------------------------------------------------
# the memory guard
# ---------------------------------------------------------------------------------------------
def test_memory_guard_message_and_override(monkeypatch):
    with limit_memory(2**20), pytest.raises(MemoryLimitError) as info:
        ssm.kernel_by_powers(A, B, C, 10**6)
    msg = str(info.value)
    assert "would allocate about" in msg and "above the memory limit of 1 MiB" in msg
    assert "set_memory_limit" in msg and "LIQUIDSSM_MEMORY_LIMIT" in msg
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)
    with limit_memory(None):  # switched off: the call runs
        assert ssm.kernel_by_powers(A, B, C, 3).shape == (3,)
    monkeypatch.setenv("LIQUIDSSM_MEMORY_LIMIT", "2KiB")
    assert _checks.memory_limit() == 2048
    with pytest.raises(MemoryLimitError, match="2 KiB"):
        ssm.kernel_by_powers(A, B, C, 100)
    monkeypatch.setenv("LIQUIDSSM_MEMORY_LIMIT", "none")
    assert _checks.memory_limit() is None
    monkeypatch.setenv("LIQUIDSSM_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="LIQUIDSSM_MEMORY_LIMIT: expected a size"):
        _checks.memory_limit()
    monkeypatch.delenv("LIQUIDSSM_MEMORY_LIMIT")
    assert _checks.memory_limit() >= 2**28  # half of this machine's RAM
    with pytest.raises(ValueError, match="nbytes"):
        _checks.set_memory_limit(0)


def test_memory_guard_leaves_normal_sizes_alone():
    with limit_memory(2**30):
        d = hippo.nplr_legs(64, C128)
        K = kernels.s4_dplr_kernel(d.Lambda, d.P, d.B, torch.ones(32, dtype=C128), torch.tensor(0.01, dtype=F64),
                                   16384, backend="torch")
    assert K.shape == (1, 16384) and torch.isfinite(K).all()


# ---------------------------------------------------------------------------------------------
# layers: no NaN spreads through a batch; step mode is differentiable
# ---------------------------------------------------------------------------------------------
def test_a_nan_sample_never_reaches_batch_norm():
    model = layers.SequenceModel(_cfg_lin).train()
    x = torch.randn(4, 6, 2)
    x[2, 3, 1] = math.nan
    with pytest.raises(ValueError, match="x: expected finite values, found 1 NaN/inf"):
        model(x)
    assert torch.isfinite(model(torch.nan_to_num(x))).all()
    assert all(not b.layer.check_inputs for b in model.blocks)  # the model checked once


def test_step_forward_is_differentiable():
    layer = layers.S4Layer(3, 4).double()
    u = torch.randn(2, 5, 3, dtype=F64, requires_grad=True)
    layer.step_forward(u).sum().backward()
    assert u.grad is not None and torch.isfinite(u.grad).all()
    with torch.no_grad():
        assert not layer.step_forward(u).requires_grad


def test_consecutive_products_longer_than_the_sequence_are_zero_at_once():
    u = torch.arange(1.0, 5.0, dtype=F64)
    assert liquid.consecutive_products(u, 10**9).eq(0).all()  # no loop over 10**9 shifts
    torch.testing.assert_close(liquid.consecutive_products(u, 4), torch.tensor([0, 0, 0, 24.0], dtype=F64))


def test_per_system_and_broadcast_checks():
    _checks.check_per_system((3,), "dt", (3,))
    _checks.check_per_system((3,), "dt", ())  # one system, three steps
    _checks.check_per_system((), "dt", (3,))
    with pytest.raises(ValueError, match=r"would build a \(3, 3\) batch"):
        _checks.check_per_system((3, 1), "dt", (3,))
    _checks.check_broadcasts_into((1, 4), "x0", (2, 4), "the state")
    with pytest.raises(ValueError, match="x0: shape"):
        _checks.check_broadcasts_into((3, 4), "x0", (2, 4), "the state")
    assert _checks.format_bytes(3 * 2**30) == "3 GiB"
    assert _checks.tensor_bytes((10**6, 10**6), torch.float64) == 8 * 10**12

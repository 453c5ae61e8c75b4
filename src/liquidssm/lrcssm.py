"""LrcSSM layer, block and model, LrcSSM Figure 1 / §4 (as the released code builds it).

Chapters lrcssm/03_newton_solver (layer), lrcssm/06_lrcssm_model (model) and the LrcSSM
reproduction chapters.

The model takes one frozen :class:`~liquidssm.configs.LrcSSMConfig` (the book's model vocabulary:
``d_input`` = p, ``d_model`` = H, ``d_state`` = D, ``d_output`` = C, ``n_blocks`` = L of the paper);
blocks, layers and the cell keep the paper's names ``H`` and ``D``.

Shapes at the model boundary: inputs ``(B, T, d_input)``, logits ``(B, d_output)`` (or
``(B, T, d_output)`` with ``pool="none"``). Inside: encoded sequences ``(B, T, H)``, LRC states
``(B, T, D)``.

Block ``i`` (``SingleScaleGRU`` in ``experiments/lrc_ssm/run_train.py`` of MoniFarsang/LrcSSM@5581972)::

    u <- LayerNorm(u)                 (no affine parameters, eps 1e-5)
    x <- LrcSSM(u)                    (B, T, D), solved by Newton (or the sequential loop)
    x <- Re(C x) + d                  if the state is complex
         MLP_i(x)                     elif H != D   (Linear(D,H) -> ReLU -> Linear(H,H))
    x <- LayerNorm(x + u)             (residual with the *normalised* input)
    x <- MLP_i(x) + x                 if H == D     (Linear(H,H) -> ReLU -> Linear(H,H))

Model: encoder MLP (d_input -> H) per step, ``n_blocks`` blocks, per-step classifier MLP
(H -> d_output), mean over time of the logits. ``cell`` chooses the recurrence: ``"lrc"``
(:class:`LrcSSMCell`) or an App. D gated cell of :mod:`liquidssm.gated` (``"mgu"``, ``"gru"``,
``"lstm"``; Table 2), all solved by the same Newton solver, or ``"lrc_dense"``, the original
LRC cell (:class:`~liquidssm.lrc.LRCCell`, dense Jacobian, Table 9), solved by the sequential
loop. Variants of the LRC cell (options of :class:`LrcSSMCell`, validated there):
``elastance=False`` (StcSSM, Table 8); ``ablation`` of Table 10 (``"A(u)"``, ``"A(u),b(u)"``);
``variant="paper"|"official"`` elastance; ``complex_params`` (Table 11, with
:class:`PartlyComplexLrcSSMCell` for the columns that complexify only some parameters).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from liquidssm._checks import as_tensor, check_choice, check_finite, check_module_dtype, check_ndim
from liquidssm.configs import LrcSSMConfig
from liquidssm.gated import GATED_CELLS, GatedSSMCell, gated_cell
from liquidssm.lrc import LRCCell, LrcSSMCell
from liquidssm.newton import NewtonResult, newton_solve, sequential_solve

__all__ = ["MLP", "OutputMapping", "LrcSSMLayer", "LrcSSMBlock", "LrcSSMModel", "PartlyComplexLrcSSMCell",
           "DTYPES", "CELLS", "COMPLEX_SUBSETS"]

#: the configuration's ``dtype`` string -> torch dtype
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: the recurrences a layer can use: the LrcSSM cell, the App. D gated cells, the original dense LRC
CELLS = ("lrc", *GATED_CELLS, "lrc_dense")
#: Table 11's columns: the complex self-loop parameters (g = g_max_x, k = k_max_x, a = sigma_x, b = mu_x)
COMPLEX_SUBSETS = ("g,k", "g,k,a", "g,k,a,b")
#: options of :class:`LrcSSMCell` that a gated cell does not have, with their defaults
_LRC_ONLY = {"variant": "paper", "elastance": True, "ablation": "none", "complex_params": False,
             "rho": None, "clamp": "softplus"}


def _param_dtype(cell: nn.Module) -> torch.dtype:
    """The real dtype of a cell's parameters (an LRC cell's input matrices; a gated cell's ``dtype``)."""
    if isinstance(cell, LrcSSMCell):
        return cell.W_f.dtype
    if isinstance(cell, LRCCell):
        return cell.a.dtype
    return cell.dtype  # type: ignore[return-value]


class PartlyComplexLrcSSMCell(LrcSSMCell):
    """LrcSSM cell with only some self-loop parameters complex: LrcSSM Table 11 (App. E).

    Chapter ``reproductions`` (the ablations). Table 11 complexifies ``g^{max,x}`` and
    ``k^{max,x}`` (``"g,k"``), then also ``a^x`` (``"g,k,a"``), then ``b^x`` (``"g,k,a,b"``, the
    released complex cell, i.e. :class:`LrcSSMCell` with ``complex_params=True``). In the
    released parametrisation ``a^x = sigma_x`` and ``b^x = -sigma_x mu_x``, so ``a`` is
    ``sigma_x`` and ``b`` is ``mu_x``; the parameters left real keep ``U(-1/sqrt(D), 1/sqrt(D))``.
    The state is complex whenever any self-loop parameter is. Other options as :class:`LrcSSMCell`.
    """

    def __init__(self, H: int, D: int, *, complex_params: str = "g,k", **options: object) -> None:
        check_choice(complex_params, "complex_params", COMPLEX_SUBSETS)
        super().__init__(H, D, complex_params=True, **options)  # type: ignore[arg-type]
        self.complex_subset = complex_params
        real = self.W_f.dtype
        bound = 1.0 / math.sqrt(D)
        if "a" not in complex_params.split(","):
            self.sigma_x = nn.Parameter(torch.empty(D, dtype=real).uniform_(-bound, bound))
        if "b" not in complex_params.split(","):
            self.mu_x = nn.Parameter(torch.empty(D, dtype=real).uniform_(-bound, bound))

    @property
    def state_dtype(self) -> torch.dtype:
        """Complex: ``g^{max,x}`` and ``k^{max,x}`` are complex in every Table 11 column."""
        return self.g_max_x.dtype

    def extra_repr(self) -> str:
        return super().extra_repr() + f", complex_subset={self.complex_subset!r}"


class MLP(nn.Module):
    """Two-layer perceptron ``Linear(d_in, d_hidden) -> ReLU -> Linear(d_hidden, d_out)`` (per time step).

    ``init="official"`` reproduces the released code's He-uniform bound ``sqrt(6 / out_features)``
    (JAX takes fan-in from axis -2 of an (out, in) matrix) with zero biases; ``init="torch"`` keeps
    PyTorch's defaults. Shapes: (..., d_in) -> (..., d_out).
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, *, init: str = "official",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_choice(init, "init", ("official", "torch"))
        self.fc1 = nn.Linear(d_in, d_hidden, dtype=dtype)
        self.fc2 = nn.Linear(d_hidden, d_out, dtype=dtype)
        if init == "official":
            for lin in (self.fc1, self.fc2):
                bound = math.sqrt(6.0 / lin.out_features)
                nn.init.uniform_(lin.weight, -bound, bound)
                nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class OutputMapping(nn.Module):
    """``y = Re(C x) + d`` mapping a complex state (..., D) to (..., H); C, d ~ N(0, 1) (``experiments/lrc_ssm/LRC_diagmat_complex.py``, MoniFarsang/LrcSSM@5581972)."""

    def __init__(self, D: int, H: int, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.C = nn.Parameter(torch.randn(H, D, dtype=cdtype))
        self.d = nn.Parameter(torch.randn(H, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.C.T).real + self.d


class LrcSSMLayer(nn.Module):
    """The LrcSSM recurrence over a whole sequence, LrcSSM Eq. (8)–(14) + Algorithm 1.

    ``u`` (B, T, H) -> states (B, T, D). ``cell="lrc"`` (default) builds an
    :class:`~liquidssm.lrc.LrcSSMCell` with the cell options (``euler_step`` … ``clamp``,
    ``dtype``), which it validates; ``cell="mgu"|"gru"|"lstm"`` builds the App. D gated cell of
    :mod:`liquidssm.gated` (only ``euler_step`` and ``dtype`` apply; an LRC-only option away
    from its default is refused by name). The output is the cell's read-out of the solved states
    (the states themselves, except LstmSSM's ``h = o ⊙ tanh(c)``). ``solver="newton"``
    (parallel, implicit gradient; ``tol``, ``max_iter``, ``scan_method``, ``strict`` as in
    :func:`~liquidssm.newton.newton_solve`) or ``"sequential"`` (the fast loop with the exact
    backprop-through-time gradient, :func:`~liquidssm.newton.sequential_solve`). ``compile=True``
    lets either solver ``torch.compile`` its cell evaluations (opt-in; eager with one warning if
    compiling fails).
    The last :class:`NewtonResult` (iterations per sequence, convergence flags) is kept in
    ``self.last_result``.
    """

    def __init__(self, H: int, D: int, *, cell: str = "lrc", euler_step: float = 1.0,
                 variant: str = "paper", elastance: bool = True, ablation: str = "none",
                 complex_params: bool | str = False, rho: float | None = None, clamp: str = "softplus",
                 solver: str = "newton", tol: float | None = None, max_iter: int | None = None,
                 scan_method: str = "blelloch", strict: bool = False, compile: bool = False,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_choice(cell, "cell", CELLS)
        self.cell: LrcSSMCell | GatedSSMCell | LRCCell
        if cell == "lrc" and isinstance(complex_params, str) and complex_params != "g,k,a,b":
            self.cell = PartlyComplexLrcSSMCell(H, D, complex_params=complex_params, euler_step=euler_step,
                                                variant=variant, elastance=elastance, ablation=ablation,
                                                rho=rho, clamp=clamp, dtype=dtype)
        elif cell == "lrc":
            self.cell = LrcSSMCell(H, D, euler_step=euler_step, variant=variant, elastance=elastance,
                                   ablation=ablation, complex_params=bool(complex_params), rho=rho,
                                   clamp=clamp, dtype=dtype)
        else:
            given = {"variant": variant, "elastance": elastance, "ablation": ablation,
                     "complex_params": complex_params, "rho": rho, "clamp": clamp}
            bad = [f"{k}={v!r}" for k, v in given.items() if v != _LRC_ONLY[k]]
            if bad:
                raise ValueError(f"cell={cell!r}: {', '.join(bad)} only appl"
                                 f"{'ies' if len(bad) == 1 else 'y'} to cell='lrc'")
            if cell == "lrc_dense":
                if solver != "sequential":
                    raise ValueError("cell='lrc_dense': the original LRC cell has a dense Jacobian, which "
                                     "the diagonal Newton solver cannot use; set solver='sequential' (got "
                                     f"solver={solver!r})")
                self.cell = LRCCell(H, D, euler_step=euler_step, dtype=dtype)
            else:
                self.cell = gated_cell(cell, H, D, euler_step=euler_step, dtype=dtype)
        self.solver = check_choice(solver, "solver", ("newton", "sequential"))
        if not isinstance(compile, bool):
            raise TypeError(f"compile: expected True or False, got {compile!r}")
        self.tol, self.max_iter, self.scan_method, self.strict = tol, max_iter, scan_method, strict
        self.compile = compile
        self.last_result: NewtonResult | None = None

    def forward(self, u: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """``u`` (B, T, H) of the layer's dtype (any dtype under autocast), ``x0`` (B, D) or None -> (B, T, D)."""
        check_module_dtype(u, "u", _param_dtype(self.cell), "layer")
        # the recurrence runs in the cell's dtype even under mixed precision (autocast off)
        with torch.autocast(u.device.type, enabled=False):
            u = u.to(_param_dtype(self.cell))
            if self.solver == "sequential":
                x = sequential_solve(self.cell, u, x0, compile=self.compile)
            else:
                res = newton_solve(self.cell, u, x0, tol=self.tol, max_iter=self.max_iter,
                                   scan_method=self.scan_method, strict=self.strict, compile=self.compile)
                self.last_result = res
                x = res.x
            if isinstance(self.cell, GatedSSMCell):
                x = self.cell.readout(x, u)  # LstmSSM: h = o * tanh(c); the others: x
        return x


class LrcSSMBlock(nn.Module):
    """One LrcSSM block (as ``SingleScaleGRU`` builds it, ``run_train.py`` of MoniFarsang/LrcSSM@5581972): pre-LayerNorm, LrcSSM, MLP/mapping, residual LayerNorm, MLP.

    Shapes: (B, T, H) -> (B, T, H). ``lrc`` is the block's :class:`LrcSSMLayer` (a default
    ``LrcSSMLayer(H, D, dtype=dtype)`` when None); ``output_mapping`` maps a complex state back
    to ``H`` (required when the layer's state is complex).
    """

    def __init__(self, H: int, D: int, *, lrc: LrcSSMLayer | None = None,
                 output_mapping: OutputMapping | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.H, self.D = H, D
        self.lrc = LrcSSMLayer(H, D, dtype=dtype) if lrc is None else lrc
        cell = self.lrc.cell
        if (cell.H, cell.D) != (H, D):
            raise ValueError(f"lrc: expected a layer with H={H}, D={D}, got H={cell.H}, D={cell.D}")
        if _param_dtype(cell) != dtype:
            raise TypeError(f"lrc: expected a layer of dtype {dtype} (the block's), got {_param_dtype(cell)}")
        self.complex = bool(getattr(self.lrc.cell, "complex_params", False))
        self.output_mapping = output_mapping
        if self.complex and output_mapping is None:
            raise ValueError("output_mapping: a complex-state block needs an OutputMapping (D -> H)")
        self.mlp = None if self.complex and H != D else MLP(D if H != D else H, H, H, dtype=dtype)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        check_module_dtype(u, "u", _param_dtype(self.lrc.cell), "block")
        u = F.layer_norm(u, (self.H,), eps=1e-5)
        x = self.lrc(u)
        if self.complex:
            x = self.output_mapping(x)  # type: ignore[misc]
        elif self.H != self.D:
            x = self.mlp(x)  # type: ignore[misc]
        x = F.layer_norm(x + u, (self.H,), eps=1e-5)
        if self.H == self.D and self.mlp is not None:
            x = self.mlp(x) + x
        return x


class LrcSSMModel(nn.Module):
    """LrcSSM classifier, LrcSSM Figure 1 (as released): encoder, ``n_blocks`` blocks, per-step decoder, mean over time.

    Built from one frozen :class:`~liquidssm.configs.LrcSSMConfig`, kept in ``self.config``.
    Inputs ``(B, T, d_input)`` -> logits ``(B, d_output)`` (``pool="mean"``) or
    ``(B, T, d_output)`` (``pool="none"``). ``cell`` chooses every block's recurrence:
    ``"lrc"`` (LrcSSM) or an App. D gated cell (``"mgu"``, ``"gru"``, ``"lstm"``: MguSSM,
    GruSSM, LstmSSM of Table 2). The LRC cell options of the configuration go to every
    block's :class:`~liquidssm.lrc.LrcSSMCell` (which validates them): ``elastance=False`` is
    StcSSM; ``ablation`` in ``("none", "A(u)", "A(u),b(u)")``; ``variant`` in
    ``("paper", "official")`` (the paper's elastance with its input term by default, as
    everywhere in the book; ``"official"`` is the released code's state-only elastance);
    ``complex_params`` for the complex self-loop (one output mapping shared by all blocks, as in
    the released code). The solver options go to every :class:`LrcSSMLayer`.
    """

    def __init__(self, config: LrcSSMConfig) -> None:
        super().__init__()
        if not isinstance(config, LrcSSMConfig):
            raise TypeError(f"config: expected an LrcSSMConfig, got {type(config).__name__}")
        self.config = config
        H, D, dtype = config.d_model, config.d_state, DTYPES[config.dtype]
        self.encoder = MLP(config.d_input, H, H, dtype=dtype)
        self.output_mapping = OutputMapping(D, H, dtype=dtype) if config.complex_params else None
        self.blocks = nn.ModuleList(
            LrcSSMBlock(H, D, lrc=self._layer(config), output_mapping=self.output_mapping, dtype=dtype)
            for _ in range(config.n_blocks)
        )
        self.decoder = MLP(H, H, config.d_output, dtype=dtype)

    @staticmethod
    def _layer(c: LrcSSMConfig) -> LrcSSMLayer:
        """One block's :class:`LrcSSMLayer` from the configuration (cell and solver options)."""
        return LrcSSMLayer(c.d_model, c.d_state, cell=c.cell, euler_step=c.euler_step, variant=c.variant,
                           elastance=c.elastance, ablation=c.ablation,
                           complex_params=c.complex_params, rho=c.rho, clamp=c.clamp,
                           solver=c.solver, tol=c.tol, max_iter=c.max_iter,
                           scan_method=c.scan_method, strict=c.strict, compile=c.compile, dtype=DTYPES[c.dtype])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of ``inputs`` (B, T, d_input): (B, d_output), or (B, T, d_output) with ``pool="none"``.

        With ``output_stride=k`` (``pool="none"``): the outputs at steps ``k-1, 2k-1, ...``,
        ``(B, T // k, d_output)``, or ``(B, T // k)`` when ``d_output == 1`` (one regression
        target per block of ``k`` steps, as PPG-DaLiA's heart rate every 128 steps).
        """
        x = as_tensor(check_module_dtype(inputs, "inputs", self.encoder.fc1.weight.dtype, "model"), "inputs")
        check_ndim(x, "inputs", 3, "(B, T, d_input)")
        d_input = self.config.d_input
        if x.shape[-1] != d_input:
            raise ValueError(f"inputs: expected last axis d_input={d_input} (shape (B, T, d_input)), "
                             f"got {tuple(x.shape)}")
        check_finite(x, "inputs")
        u = self.encoder(x)
        for block in self.blocks:
            u = block(u)
        logits = self.decoder(u)
        if self.config.pool == "mean":
            return logits.mean(dim=-2)
        k = self.config.output_stride
        if k is None:
            return logits
        if x.shape[-2] < k:
            raise ValueError(f"inputs: output_stride={k} needs at least {k} time steps, got T={x.shape[-2]}")
        out = logits[..., k - 1::k, :]
        return out.squeeze(-1) if self.config.d_output == 1 else out

    def iterations(self) -> list[torch.Tensor]:
        """Newton iterations per sequence used by each block in the last forward pass."""
        return [b.lrc.last_result.iterations for b in self.blocks if b.lrc.last_result is not None]

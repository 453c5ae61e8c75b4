"""Model configurations: one frozen dataclass per model, in the book's one model vocabulary.

Design appendix (``book/appendix/90_design.md``, *Glossary*). A configuration is pure data (no
torch import), so the experiment registry can print, compare and hash it without building a
model. The model classes take exactly one argument, their configuration::

    SequenceModel(SequenceModelConfig(d_output=10, n_tokens=20, d_model=64, layer="liquid"))
    LrcSSMModel(LrcSSMConfig(d_input=6, d_output=2, d_model=64, d_state=64, n_blocks=6))

Names at the model boundary never collide with the papers' notation (``L`` is the sequence length,
``C`` the output matrix, ``P`` the low-rank factor inside the kernels):

========================  =================  =========================  ===========================
code name                 Liquid-S4 / S4     LrcSSM paper               meaning
========================  =================  =========================  ===========================
``d_input``               --                 ``p``                      input features per step
``n_tokens``              --                 --                         vocabulary (embedding input)
``d_model``               ``H``              ``H``                      width of the residual stream
``d_state``               ``N``              ``D``                      state size per feature/layer
``d_output``              --                 ``C``                      classes or regression targets
``n_blocks``              layers             ``L`` (blocks)             depth
``liquid_order``          ``p`` (max order)  --                         highest liquid order (>= 2)
``liquid_kind``           KB / PB            --                         liquid kernel (Eq. 13 / 16)
``liquid_window``         ``L̃``              --                         PB/KB kernel length
``euler_step``            --                 ``Δt`` (Eq. 7)             explicit-Euler step of the cell
========================  =================  =========================  ===========================
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

#: the two variants of a model that differ between paper and released code (design §4): the
#: paper's mathematics, or what the official implementation computed; defined once here
VARIANTS = ("paper", "official")

__all__ = ["VARIANTS", "ModelConfig", "SequenceModelConfig", "LrcSSMConfig", "config_from_dict", "CONFIG_TYPES"]


def _choice(value: object, name: str, options: tuple) -> None:
    if value not in options:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {value!r}")


def _int(value: object, name: str, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def _real(value: object, name: str, low: float, high: float, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (low < value if open_low else low <= value) and value <= high  # type: ignore[operator]
    if not ok:
        lo = "(" if open_low else "["
        raise ValueError(f"{name}: expected a number in {lo}{low}, {high}], got {value!r}")


def _bool(value: object, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Base of the model configurations: dictionary form, hashing and validated replacement."""

    #: name of the model class the configuration builds (set by each subclass)
    model: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{"model": ..., field: value}`` (JSON-serialisable)."""
        return {"model": self.model, **dataclasses.asdict(self)}

    def config_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of :meth:`to_dict`."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied and validated; unknown names are refused by name."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown field(s) {unknown}; valid: {sorted(names)}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SequenceModelConfig(ModelConfig):
    """S4 / Liquid-S4 sequence model (Liquid-S4 §4, App. S2); built by ``layers.SequenceModel``.

    Encoder (``nn.Embedding(n_tokens, d_model)`` or ``nn.Linear(d_input, d_model)``) →
    ``n_blocks`` residual S4 (``layer="s4"``) or Liquid-S4 (``layer="liquid"``) blocks → pooling →
    head. Chapter ``liquid/05_liquid_s4_layer``; glossary in the module docstring.

    ``c_param`` and ``l_max`` are the layers' (``layers.S4Layer``): ``"tilde"`` (default) learns
    ``C̃ = C(I − Ā^{l_max})`` like the official S4 code, ``"c"`` the paper's ``C``. Experiments set
    ``l_max`` to the task's sequence length (``repro.models.build_model``); ``None`` lets the first
    forward fix it (longer inputs later double ``C̃``). ``l_max`` must be ``None`` with ``"c"``.
    """

    model: ClassVar[str] = "SequenceModel"

    d_output: int
    d_input: int | None = None
    n_tokens: int | None = None
    d_model: int = 128
    d_state: int = 64
    n_blocks: int = 4
    layer: str = "s4"
    liquid_kind: str = "pb"
    liquid_order: int = 2
    variant: str = "paper"
    liquid_window: int | None = None
    allcombs: bool = True
    lcontract: str | None = None
    fft_bug: bool = False
    dt_min: float = 0.001
    dt_max: float = 0.1
    bidirectional: bool = False
    n_ssm: int | None = None
    kernel_method: str = "dplr"
    cauchy_backend: str = "auto"
    c_param: str = "tilde"
    l_max: int | None = None
    dropout: float = 0.0
    tie_dropout: bool = True
    norm: str = "batch"
    prenorm: bool = True
    pool: str = "mean"
    head: str = "classification"

    def __post_init__(self) -> None:
        _int(self.d_output, "d_output", 1)
        if (self.d_input is None) == (self.n_tokens is None):
            raise ValueError("d_input, n_tokens: give exactly one (linear or embedding encoder), "
                             f"got d_input={self.d_input}, n_tokens={self.n_tokens}")
        _int(self.d_input, "d_input", 1, optional=True)
        _int(self.n_tokens, "n_tokens", 1, optional=True)
        _int(self.d_model, "d_model", 1)
        _int(self.d_state, "d_state", 2)
        _int(self.n_blocks, "n_blocks", 1)
        _choice(self.layer, "layer", ("s4", "liquid"))
        _choice(self.liquid_kind, "liquid_kind", ("pb", "kb"))
        _int(self.liquid_order, "liquid_order", 2)
        _choice(self.variant, "variant", VARIANTS)
        _int(self.liquid_window, "liquid_window", 1, optional=True)
        if self.variant == "official" and self.liquid_window is not None:
            raise ValueError("liquid_window: the official variant chooses L̃_p by the binomial rule; "
                             f"expected None, got {self.liquid_window}")
        for name in ("allcombs", "fft_bug", "bidirectional", "tie_dropout", "prenorm"):
            _bool(getattr(self, name), name)
        _choice(self.lcontract, "lcontract", (None, "tanh", "lecun"))
        _real(self.dt_min, "dt_min", 0.0, float("inf"), open_low=True)
        _real(self.dt_max, "dt_max", self.dt_min, float("inf"))
        _int(self.n_ssm, "n_ssm", 1, optional=True)
        if self.n_ssm is not None and self.d_model % self.n_ssm:
            raise ValueError(f"n_ssm: expected a divisor of d_model = {self.d_model}, got {self.n_ssm}")
        _choice(self.kernel_method, "kernel_method", ("dplr", "dense"))
        _choice(self.cauchy_backend, "cauchy_backend", ("auto", "torch", "keops"))
        _choice(self.c_param, "c_param", ("tilde", "c"))
        _int(self.l_max, "l_max", 1, optional=True)
        if self.c_param == "c" and self.l_max is not None:
            raise ValueError("l_max: the length at which C̃ is learned applies to c_param='tilde'; with "
                             f"c_param='c' expected None, got {self.l_max}")
        _real(self.dropout, "dropout", 0.0, 1.0)
        if self.dropout == 1.0:
            raise ValueError("dropout: expected a probability in [0, 1), got 1.0")
        _choice(self.norm, "norm", ("batch", "layer"))
        _choice(self.pool, "pool", ("mean", "last"))
        _choice(self.head, "head", ("classification", "regression", "retrieval"))


@dataclass(frozen=True)
class LrcSSMConfig(ModelConfig):
    """LrcSSM model (LrcSSM Fig. 1, as released); built by ``lrcssm.LrcSSMModel``.

    Encoder MLP (``d_input → d_model``) → ``n_blocks`` LrcSSM blocks with state size ``d_state``
    → per-step decoder MLP (``d_model → d_output``) → mean over time (``pool="mean"``), or the
    per-step outputs (``pool="none"``; with ``output_stride=k`` only every k-th step's, the last
    of each block of k steps, as for PPG-DaLiA's one target per 128 steps; with ``d_output=1`` the
    output axis is dropped, giving ``(B, T // k)``). ``cell`` chooses the recurrence of every
    block: ``"lrc"`` (LrcSSM), an App. D gated cell, ``"mgu"`` (MguSSM), ``"gru"`` (GruSSM),
    ``"lstm"`` (LstmSSM) (Table 2), or ``"lrc_dense"``, the original LRC cell with a dense
    Jacobian (Table 9; only ``solver="sequential"`` solves it). The LRC-only options apply to
    ``cell="lrc"`` alone and keep their defaults otherwise: ``elastance=False`` is the StcSSM
    ablation (Table 8); ``ablation`` the Table 10 rows; ``variant`` the elastance of the paper
    (with its input term) or of the released code; ``complex_params`` (Table 11: ``True`` or
    ``"g,k,a,b"`` makes the four self-loop parameters complex, ``"g,k"`` and ``"g,k,a"`` only
    those); ``rho`` and ``clamp`` (Theorem 1). ``compile=True`` lets both solvers
    ``torch.compile`` the cell evaluations (opt-in: a few seconds of compilation per shape, then
    faster, chapter ``reproductions/30_performance``; eager with one warning where compilation
    fails). Chapters ``lrcssm/03_newton_solver``, ``lrcssm/05_gated_cells``, ``lrcssm/06_lrcssm_model``.
    """

    model: ClassVar[str] = "LrcSSMModel"
    #: the recurrences a block can use (``"lrc"`` = LrcSSM; the others are LrcSSM App. D)
    CELLS: ClassVar[tuple[str, ...]] = ("lrc", "mgu", "gru", "lstm", "lrc_dense")
    #: the Table 11 columns: which self-loop parameters are complex (g_max_x, k_max_x, a = sigma_x, b = mu_x)
    COMPLEX_SUBSETS: ClassVar[tuple[str, ...]] = ("g,k", "g,k,a", "g,k,a,b")

    d_input: int
    d_output: int
    d_model: int = 64
    d_state: int = 64
    n_blocks: int = 2
    cell: str = "lrc"
    elastance: bool = True
    variant: str = "paper"
    ablation: str = "none"
    complex_params: bool | str = False
    rho: float | None = None
    clamp: str = "softplus"
    euler_step: float = 1.0
    pool: str = "mean"
    output_stride: int | None = None
    solver: str = "newton"
    tol: float | None = None
    max_iter: int | None = None
    scan_method: str = "blelloch"
    strict: bool = False
    compile: bool = False
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("d_input", "d_output", "d_model", "d_state", "n_blocks"):
            _int(getattr(self, name), name, 1)
        for name in ("elastance", "strict", "compile"):
            _bool(getattr(self, name), name)
        if not isinstance(self.complex_params, str):
            _bool(self.complex_params, "complex_params")
        else:
            _choice(self.complex_params, "complex_params", self.COMPLEX_SUBSETS)
        _choice(self.variant, "variant", VARIANTS)
        _choice(self.ablation, "ablation", ("none", "A(u)", "A(u),b(u)"))
        if self.rho is not None:
            _real(self.rho, "rho", 0.0, 1.0, open_low=True)
        _choice(self.clamp, "clamp", ("softplus", "tanh"))
        _real(self.euler_step, "euler_step", 0.0, float("inf"), open_low=True)
        _choice(self.pool, "pool", ("mean", "none"))
        _int(self.output_stride, "output_stride", 1, optional=True)
        if self.output_stride is not None and self.pool != "none":
            raise ValueError(f"output_stride: applies to pool='none' (per-step outputs), got pool={self.pool!r}")
        _choice(self.solver, "solver", ("newton", "sequential"))
        if self.tol is not None:
            _real(self.tol, "tol", 0.0, float("inf"), open_low=True)
        _int(self.max_iter, "max_iter", 1, optional=True)
        _choice(self.scan_method, "scan_method", ("sequential", "hillis_steele", "blelloch", "chunked", "associative_scan"))
        _choice(self.dtype, "dtype", ("float32", "float64"))
        _choice(self.cell, "cell", self.CELLS)
        if self.cell != "lrc":
            lrc_only = {"elastance": True, "variant": "paper", "ablation": "none",
                        "complex_params": False, "rho": None, "clamp": "softplus"}
            changed = [f"{k}={getattr(self, k)!r}" for k, v in lrc_only.items() if getattr(self, k) != v]
            if changed:
                what = "the original dense LRC cell" if self.cell == "lrc_dense" else "a gated cell"
                raise ValueError(f"cell={self.cell!r}: {', '.join(changed)} appl"
                                 f"{'ies' if len(changed) == 1 else 'y'} only to cell='lrc' (the LrcSSM "
                                 f"cell's elastance, variant, Table 10 ablation, complex self-loop and "
                                 f"rho-clamp have no counterpart in {what}); leave "
                                 f"{'it' if len(changed) == 1 else 'them'} at the default")
        if self.cell == "lrc_dense" and self.solver != "sequential":
            raise ValueError("cell='lrc_dense': the original LRC cell has a dense Jacobian, which the "
                             "diagonal Newton solver cannot use; set solver='sequential' (got "
                             f"solver={self.solver!r})")


#: model name -> configuration class (``config_from_dict`` uses it)
CONFIG_TYPES: dict[str, type[ModelConfig]] = {
    c.model: c for c in (SequenceModelConfig, LrcSSMConfig)
}


def config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """Inverse of :meth:`ModelConfig.to_dict`: ``{"model": name, ...}`` → the frozen configuration."""
    if not isinstance(d, dict) or "model" not in d:
        raise ValueError(f"config: expected a dict with a 'model' key, got {d!r}")
    kind = d["model"]
    if kind not in CONFIG_TYPES:
        raise ValueError(f"config: unknown model {kind!r}; known: {sorted(CONFIG_TYPES)}")
    cls = CONFIG_TYPES[kind]
    fields = {f.name for f in dataclasses.fields(cls)}
    rest = {k: v for k, v in d.items() if k != "model"}
    unknown = sorted(set(rest) - fields)
    if unknown:
        raise ValueError(f"config: unknown field(s) {unknown} for {kind}; valid: {sorted(fields)}")
    return cls(**rest)

"""Gated RNNs rewritten as diagonal-Jacobian state-space cells: MguSSM, GruSSM, LstmSSM.

LrcSSM App. D; chapter lrcssm/05_gated_cells.

A gated RNN updates its state as ``x_t = q_t ⊙ x_{t-1} + s_t`` with gates ``q, s`` that depend
on the previous state and the input. App. D reads this as one explicit Euler step (``Δt = 1``)
of the ODE::

    dx/dt = A(x, u) ⊙ x + b(x, u),      A = q - 1,   b = s,

the form of LrcSSM Eq. (12), and then makes every *state* dependence element-wise (each neuron
sees only its own previous state, through a vector ``v`` instead of a matrix ``U``) while the
*input* matrices ``W`` stay full. The one-step Jacobian ``∂x_t/∂x_{t-1}`` is then exactly
diagonal, so :func:`liquidssm.newton.newton_solve` solves the sequence in parallel with exact
Newton steps. Every cell here follows the ``newton.DiagonalCell`` contract of
:class:`liquidssm.lrc.LrcSSMCell` and returns its pieces with their derivatives along the
neuron's own state, from which :meth:`GatedSSMCell.jacobian_diag` is assembled in closed form.

=====================  ==========================================  ==================================
cell                   gates (each ``σ`` or ``tanh`` of            drift ``A``, ``b``
                       ``W u + v ⊙ (·) + bias``)
=====================  ==========================================  ==================================
:class:`MguSSMCell`    ``f = σ(·x)``, ``c = tanh(·(f ⊙ x))``       ``A = -f``,     ``b = f ⊙ c``
:class:`GruSSMCell`    ``z, r = σ(·x)``, ``c = tanh(·(r ⊙ x))``    ``A = -z``,     ``b = z ⊙ c``
:class:`LstmSSMCell`   ``f, i = σ(·x)``, ``g = tanh(·x)``          ``A = f - 1``,  ``b = i ⊙ g``
=====================  ==========================================  ==================================

The LSTM's state is the cell state ``c`` (its recurrence is the ``q ⊙ x + s`` form); its gates see
the neuron's own ``c_{t-1}`` instead of ``h_{t-1}`` (a recurrent ``h`` would make the state two
vectors and the Jacobian 2×2-block-diagonal), and its output ``h_t = o_t ⊙ tanh(c_t)`` with a
peephole output gate ``o_t = σ(W_o u_t + v_o ⊙ c_t + b_o)`` is an element-wise read-out of the
solved states (:meth:`LstmSSMCell.readout`), outside the recurrence.

All parameters start ~ U(-1/sqrt(D), 1/sqrt(D)) (the rule of the released LrcSSM cell and of
``torch.nn.GRU``/``LSTM``). Shapes: inputs ``u`` (..., H), states (..., D); sequences (B, T, ·).
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from liquidssm._checks import as_tensor, check_int, check_positive
from liquidssm.lrc import Drift, Transition
from liquidssm.newton import checked_initial_state, scaled_copy, sequential_rollout

__all__ = [
    "GATED_CELLS",
    "Gate",
    "GatedSSMCell",
    "MguSSMCell",
    "GruSSMCell",
    "LstmSSMCell",
    "MguGates",
    "MguInputTerms",
    "GruInputTerms",
    "LstmInputTerms",
    "GruGates",
    "LstmGates",
    "gated_cell",
]

#: config name -> cell class (see :func:`gated_cell`)
GATED_CELLS = ("mgu", "gru", "lstm")


class Gate(NamedTuple):
    """A gate (or candidate) value and its derivative along the neuron's own previous state ``x_i``.

    Chapter lrcssm/05_gated_cells. Both (..., D).
    """

    value: torch.Tensor
    dx: torch.Tensor


def _sigmoid_gate(pre: torch.Tensor, v: torch.Tensor, y: torch.Tensor, y_x: torch.Tensor) -> Gate:
    """``σ(pre + v ⊙ y)`` and its derivative ``σ(1 - σ) v ⊙ y_x`` (``y_x = ∂y/∂x_i``)."""
    s = torch.sigmoid(pre + v * y)
    return Gate(s, s * (1 - s) * v * y_x)


def _tanh_gate(pre: torch.Tensor, v: torch.Tensor, y: torch.Tensor, y_x: torch.Tensor) -> Gate:
    """``tanh(pre + v ⊙ y)`` and its derivative ``(1 - tanh²) v ⊙ y_x``."""
    t = torch.tanh(pre + v * y)
    return Gate(t, (1 - t * t) * v * y_x)


class MguInputTerms(NamedTuple):
    """State-independent parts ``W_k u + b_k`` of :class:`MguSSMCell`'s gates. Each (..., D)."""

    f_u: torch.Tensor
    c_u: torch.Tensor


class GruInputTerms(NamedTuple):
    """State-independent parts ``W_k u + b_k`` of :class:`GruSSMCell`'s gates. Each (..., D)."""

    z_u: torch.Tensor
    r_u: torch.Tensor
    c_u: torch.Tensor


class LstmInputTerms(NamedTuple):
    """State-independent parts ``W_k u + b_k`` of :class:`LstmSSMCell`'s recurrence gates. Each (..., D)."""

    f_u: torch.Tensor
    i_u: torch.Tensor
    g_u: torch.Tensor


class MguGates(NamedTuple):
    """Gates of :class:`MguSSMCell`: forget ``f`` and candidate ``c``, each a :class:`Gate`."""

    f: Gate
    c: Gate


class GruGates(NamedTuple):
    """Gates of :class:`GruSSMCell`: update ``z``, reset ``r``, candidate ``c``, each a :class:`Gate`."""

    z: Gate
    r: Gate
    c: Gate


class LstmGates(NamedTuple):
    """Gates of :class:`LstmSSMCell`: forget ``f``, input ``i``, candidate ``g``, each a :class:`Gate`."""

    f: Gate
    i: Gate
    g: Gate


class GatedSSMCell(nn.Module, abc.ABC):
    """Base of the App. D cells: a gated RNN as ``x_t = x + Δt (A ⊙ x + b)`` with a diagonal Jacobian.

    LrcSSM App. D; chapter lrcssm/05_gated_cells. Subclasses name their gates in ``GATES``
    (each gate ``k`` has an input matrix ``W_k`` (D, H), a diagonal recurrent weight ``v_k``
    (D,) and a bias ``b_k`` (D,)), the gates that feed the recurrence in ``RECURRENT``, and
    implement :meth:`gates` and :meth:`drift`. ``euler_step`` is ``Δt``; ``Δt = 1`` (the
    default) gives back the gated RNN exactly. Shapes: ``u`` (..., H), ``x`` (..., D).
    """

    #: every gate of the recurrence, with parameters (W_k, v_k, b_k), in the order of the input terms
    GATES: ClassVar[tuple[str, ...]] = ()
    #: the NamedTuple type of :meth:`input_terms`
    INPUT_TERMS: ClassVar[type] = tuple
    #: short name used by the configuration (``LrcSSMConfig.cell``)
    NAME: ClassVar[str] = ""
    #: the state is real (the LRC cell's complex variant has no counterpart here)
    complex_params: ClassVar[bool] = False

    def __init__(self, H: int, D: int, *, euler_step: float = 1.0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.H = check_int(H, "H", minimum=1)
        self.D = check_int(D, "D", minimum=1)
        self.euler_step = float(check_positive(euler_step, "euler_step"))
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        bound = 1.0 / math.sqrt(D)
        for k in self.GATES:
            self.register_parameter(f"W_{k}", nn.Parameter(torch.empty(D, H, dtype=dtype).uniform_(-bound, bound)))
            self.register_parameter(f"v_{k}", nn.Parameter(torch.empty(D, dtype=dtype).uniform_(-bound, bound)))
            self.register_parameter(f"b_{k}", nn.Parameter(torch.empty(D, dtype=dtype).uniform_(-bound, bound)))

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the parameters (and of the inputs the cell accepts)."""
        return getattr(self, f"W_{self.GATES[0]}").dtype

    @property
    def state_dtype(self) -> torch.dtype:
        """dtype of the state ``x`` (real: the same as the parameters)."""
        return self.dtype

    def extra_repr(self) -> str:
        return f"H={self.H}, D={self.D}, euler_step={self.euler_step}"

    def scaled(self, factor: float) -> GatedSSMCell:
        """A copy with every parameter multiplied by ``factor`` (used to probe harder dynamics)."""
        return scaled_copy(self, factor)

    # -- state-independent part ------------------------------------------------------------------

    def input_terms(self, u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``W_k u + b_k`` for every gate ``k`` in ``GATES`` (the full input matrices, once per layer).

        ``u`` (..., H) -> the cell's ``INPUT_TERMS`` NamedTuple of (..., D) tensors.
        """
        u = as_tensor(u, "u")
        if u.shape[-1:] != (self.H,):
            raise ValueError(f"u: expected last axis H={self.H} (shape (..., H)), got shape {tuple(u.shape)}")
        if u.dtype != self.dtype:
            raise TypeError(f"u: expected dtype {self.dtype} (the cell's parameters), got {u.dtype}")
        return self.INPUT_TERMS(*(u @ getattr(self, f"W_{k}").T + getattr(self, f"b_{k}") for k in self.GATES))

    # -- one step --------------------------------------------------------------------------------

    @abc.abstractmethod
    def gates(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> tuple[Gate, ...]:
        """The gates at state ``x`` with their derivatives along ``x_i`` (each cell's own equations)."""

    @abc.abstractmethod
    def drift(self, g: tuple[Gate, ...]) -> Drift:
        """``A = q - 1`` and ``b = s`` of ``dx/dt = A x + b`` from the gates (each cell's own equations)."""

    def euler_transition(self, d: Drift) -> Transition:
        """One explicit Euler step of ``dx/dt = A x + b``: ``lam = 1 + Δt A``, ``offset = Δt b``.

        LrcSSM Eq. (7) applied to App. D's rewrite; with ``Δt = 1``, ``lam = q`` and
        ``offset = s``: the gated RNN's own update. Shapes (..., D).
        """
        h = self.euler_step
        return Transition(1 + h * d.A, h * d.A_x, h * d.b, h * d.b_x)

    def transition(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> Transition:
        """``x_t = lam ⊙ x + offset`` with its derivatives: :meth:`gates`, :meth:`drift`, :meth:`euler_transition`."""
        return self.euler_transition(self.drift(self.gates(x, pre)))

    # -- what the solvers use --------------------------------------------------------------------

    def step(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """One step ``x + Δt (A x + b) = lam x + offset``. ``x``, ``pre`` (..., D) -> (..., D)."""
        t = self.transition(x, pre)
        return t.lam * x + t.offset

    def jacobian_diag(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Diagonal of ``∂x_t/∂x_{t-1}`` in closed form: ``lam + x ∂lam/∂x + ∂offset/∂x``.

        ``= 1 + Δt (A + x A_x + b_x)``; the off-diagonal entries are exactly zero.
        Shapes: ``x``, ``pre`` (..., D) -> (..., D).
        """
        t = self.transition(x, pre)
        return t.lam + x * t.lam_x + t.offset_x

    def step_and_jacobian(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` and :meth:`jacobian_diag` from one :meth:`transition` (what Newton needs)."""
        t = self.transition(x, pre)
        return t.lam * x + t.offset, t.lam + x * t.lam_x + t.offset_x

    def readout(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The layer's output from the solved states ``x`` (B, T, D) and inputs ``u`` (B, T, H): ``x`` itself here."""
        return x

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One step from raw input: ``x`` (..., D), ``u`` (..., H) -> next state (..., D)."""
        return self.step(x, self.input_terms(u))

    def initial_state(self, u: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Validated ``x0`` (B, D) for inputs ``u`` (B, T, H); zeros when ``x0`` is None."""
        return checked_initial_state(self, u, x0, allow_complex=False)

    def rollout(self, u: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Sequential loop over time — the oracle. ``u`` (B, T, H), ``x0`` (B, D) -> states (B, T, D)."""
        return sequential_rollout(self, u, x0, self.INPUT_TERMS)


class MguSSMCell(GatedSSMCell):
    """MguSSM: the minimal gated unit (Zhou et al. 2016) with diagonal recurrence, LrcSSM App. D.

    Chapter lrcssm/05_gated_cells. Per neuron ``i`` (``x`` the previous state, ``u`` the input)::

        f   = σ(W_f u + v_f ⊙ x + b_f)                  forget gate
        c   = tanh(W_c u + v_c ⊙ (f ⊙ x) + b_c)          candidate
        x_t = (1 - f) ⊙ x + f ⊙ c                        (the MGU)
            = x + Δt (A x + b),  A = -f,  b = f ⊙ c,  Δt = 1

    Parameters ``W_f, W_c`` (D, H), ``v_f, v_c, b_f, b_c`` (D,). Shapes: ``u`` (..., H), ``x`` (..., D).
    """

    GATES: ClassVar[tuple[str, ...]] = ("f", "c")
    INPUT_TERMS: ClassVar[type] = MguInputTerms
    NAME: ClassVar[str] = "mgu"

    def gates(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> MguGates:
        """``f = σ(W_f u + v_f x + b_f)``, ``c = tanh(W_c u + v_c f x + b_c)`` with ``∂/∂x_i`` (chain rule through ``f x``)."""
        f_u, c_u = pre
        f = _sigmoid_gate(f_u, self.v_f, x, torch.ones_like(x))
        c = _tanh_gate(c_u, self.v_c, f.value * x, f.dx * x + f.value)
        return MguGates(f, c)

    def drift(self, g: MguGates) -> Drift:  # type: ignore[override]
        """``A = -f``, ``b = f c`` and their derivatives ``A_x = -f_x``, ``b_x = f_x c + f c_x``."""
        f, c = g
        return Drift(-f.value, -f.dx, f.value * c.value, f.dx * c.value + f.value * c.dx)


class GruSSMCell(GatedSSMCell):
    """GruSSM: the GRU (Cho et al. 2014) with diagonal recurrence, LrcSSM App. D.

    Chapter lrcssm/05_gated_cells. Per neuron ``i``::

        z   = σ(W_z u + v_z ⊙ x + b_z)                  update gate
        r   = σ(W_r u + v_r ⊙ x + b_r)                  reset gate
        c   = tanh(W_c u + v_c ⊙ (r ⊙ x) + b_c)          candidate
        x_t = (1 - z) ⊙ x + z ⊙ c                        (the GRU)
            = x + Δt (A x + b),  A = -z,  b = z ⊙ c,  Δt = 1   (App. D: dx/dt = -z x + z c)

    The full GRU's ``U_z x``, ``U_r x`` and ``U_c (r ⊙ x)`` become ``v_z ⊙ x``, ``v_r ⊙ x`` and
    ``v_c ⊙ r ⊙ x``. Parameters ``W_z, W_r, W_c`` (D, H), ``v_*, b_*`` (D,).
    """

    GATES: ClassVar[tuple[str, ...]] = ("z", "r", "c")
    INPUT_TERMS: ClassVar[type] = GruInputTerms
    NAME: ClassVar[str] = "gru"

    def gates(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> GruGates:
        """``z, r = σ(W u + v x + b)``, ``c = tanh(W_c u + v_c r x + b_c)`` with ``∂/∂x_i``."""
        z_u, r_u, c_u = pre
        one = torch.ones_like(x)
        z = _sigmoid_gate(z_u, self.v_z, x, one)
        r = _sigmoid_gate(r_u, self.v_r, x, one)
        c = _tanh_gate(c_u, self.v_c, r.value * x, r.dx * x + r.value)
        return GruGates(z, r, c)

    def drift(self, g: GruGates) -> Drift:  # type: ignore[override]
        """``A = -z``, ``b = z c`` and their derivatives ``A_x = -z_x``, ``b_x = z_x c + z c_x``."""
        z, _, c = g
        return Drift(-z.value, -z.dx, z.value * c.value, z.dx * c.value + z.value * c.dx)


class LstmSSMCell(GatedSSMCell):
    """LstmSSM: the LSTM (Hochreiter & Schmidhuber 1997) with diagonal recurrence, LrcSSM App. D.

    Chapter lrcssm/05_gated_cells. The state is the cell state ``c`` (written ``x``); the gates
    see the neuron's own ``c_{t-1}``::

        f   = σ(W_f u + v_f ⊙ x + b_f),   i = σ(W_i u + v_i ⊙ x + b_i)      forget, input gates
        g   = tanh(W_g u + v_g ⊙ x + b_g)                                   candidate
        x_t = f ⊙ x + i ⊙ g                                                 (the LSTM's c update)
            = x + Δt (A x + b),  A = f - 1,  b = i ⊙ g,  Δt = 1
        h_t = o_t ⊙ tanh(x_t),  o_t = σ(W_o u_t + v_o ⊙ x_t + b_o)          read-out (:meth:`readout`)

    The output gate reads the *current* cell state (a peephole), so ``h`` is an element-wise
    function of the solved states and never enters the recurrence. Parameters ``W_f, W_i, W_g,
    W_o`` (D, H), ``v_*, b_*`` (D,).
    """

    GATES: ClassVar[tuple[str, ...]] = ("f", "i", "g")
    INPUT_TERMS: ClassVar[type] = LstmInputTerms
    NAME: ClassVar[str] = "lstm"

    def __init__(self, H: int, D: int, *, euler_step: float = 1.0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(H, D, euler_step=euler_step, dtype=dtype)
        bound = 1.0 / math.sqrt(D)  # the output gate: read-out only, not part of the recurrence
        self.W_o = nn.Parameter(torch.empty(D, H, dtype=dtype).uniform_(-bound, bound))
        self.v_o = nn.Parameter(torch.empty(D, dtype=dtype).uniform_(-bound, bound))
        self.b_o = nn.Parameter(torch.empty(D, dtype=dtype).uniform_(-bound, bound))

    def gates(self, x: torch.Tensor, pre: tuple[torch.Tensor, ...]) -> LstmGates:
        """``f, i = σ(W u + v x + b)``, ``g = tanh(W_g u + v_g x + b_g)`` with ``∂/∂x_i`` (``o`` is not a recurrence gate)."""
        f_u, i_u, g_u = pre
        one = torch.ones_like(x)
        return LstmGates(_sigmoid_gate(f_u, self.v_f, x, one), _sigmoid_gate(i_u, self.v_i, x, one),
                         _tanh_gate(g_u, self.v_g, x, one))

    def drift(self, g: LstmGates) -> Drift:  # type: ignore[override]
        """``A = f - 1``, ``b = i g`` and their derivatives ``A_x = f_x``, ``b_x = i_x g + i g_x``."""
        f, i, gg = g
        return Drift(f.value - 1, f.dx, i.value * gg.value, i.dx * gg.value + i.value * gg.dx)

    def readout(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``h_t = σ(W_o u_t + v_o ⊙ x_t + b_o) ⊙ tanh(x_t)`` from the solved cell states ``x`` (B, T, D), inputs ``u`` (B, T, H)."""
        return torch.sigmoid(u @ self.W_o.T + self.b_o + self.v_o * x) * torch.tanh(x)


_CELLS: dict[str, type[GatedSSMCell]] = {c.NAME: c for c in (MguSSMCell, GruSSMCell, LstmSSMCell)}


def gated_cell(name: str, H: int, D: int, *, euler_step: float = 1.0,
               dtype: torch.dtype = torch.float32) -> GatedSSMCell:
    """The App. D cell called ``name`` (``"mgu"``, ``"gru"`` or ``"lstm"``) with input size ``H`` and state size ``D``."""
    if name not in _CELLS:
        raise ValueError(f"name: expected one of {list(GATED_CELLS)}, got {name!r}")
    return _CELLS[name](H, D, euler_step=euler_step, dtype=dtype)

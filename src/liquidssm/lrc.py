"""Liquid-resistance liquid-capacitance (LRC) cells: the original dense cell and the LrcSSM cell.

LrcSSM Eq. (1)–(14); chapter lrcssm/01_lrc_diagonal_jacobian.

Shapes: states ``x`` are ``(..., D)``, inputs ``u`` are ``(..., H)``; whole sequences are
``(B, T, D)`` / ``(B, T, H)`` (time on axis -2, the model-boundary layout). ``sigma`` below is the
logistic sigmoid and every update is one explicit Euler step of size ``euler_step`` (the paper's
``Δt`` of Eq. 7, not a discretisation step of an SSM).

* :class:`LRCCell` — the original LRC (Eq. 1–7): every conductance sees the full vector
  ``y = [x, u]``, so the one-step Jacobian ``∂x_t/∂x_{t-1}`` is dense.
* :class:`LrcSSMCell` — LrcSSM (Eq. 8–14): state dependence only through each neuron's self-loop,
  full input matrices. The one-step Jacobian is exactly diagonal and
  :meth:`LrcSSMCell.jacobian_diag` returns that diagonal in closed form (reference §1.4).

One step of :class:`LrcSSMCell` is computed in named pieces, one per equation; from
:meth:`~LrcSSMCell.conductances` on, each returns its values together with their derivatives along
the neuron's own previous state ``x_i`` (a NamedTuple of (..., D) tensors):

==========================================  ==========================  ====================
piece                                       returns                     equations
==========================================  ==========================  ====================
:meth:`LrcSSMCell.input_terms`              :class:`InputTerms`         input parts of 8–10
:meth:`LrcSSMCell.conductances`             :class:`Conductances`       8–10
:meth:`LrcSSMCell.ablate`                   two :class:`Conductances`   Table 10
:meth:`LrcSSMCell.drift`                    :class:`Drift`              12–14
:meth:`LrcSSMCell.euler_transition`         :class:`Transition`         7, 12
:meth:`LrcSSMCell.rho_clamp`                :class:`Transition`         Theorem 1's premise
:meth:`LrcSSMCell.transition`               :class:`Transition`         all of the above
==========================================  ==========================  ====================

The pieces are the readable oracle. What the solvers call goes through fused fast paths that
compute only what the caller needs: :meth:`LrcSSMCell.step` (values; with autograd on the plain
real cell a closed-form backward, :class:`_LrcStep`) and :meth:`LrcSSMCell.step_and_jacobian`
(values and a constant Jacobian diagonal, in place without autograd), skipping the derivatives,
the ones/zeros of disabled branches and the temporaries. ``tests/test_lrc.py`` checks them against
the pieces in float64 for every variant (bit for bit where the operations are the same).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from liquidssm._checks import as_tensor, check_choice, check_int, check_positive
from liquidssm.compiled import transforms_active as _transforms_active
from liquidssm.configs import VARIANTS
from liquidssm.newton import checked_initial_state, scaled_copy, sequential_rollout

__all__ = [
    "LRCCell",
    "LrcSSMCell",
    "InputTerms",
    "Conductances",
    "Drift",
    "Transition",
    "ABLATIONS",
    "VARIANTS",
    "CLAMPS",
]

CLAMPS = ("softplus", "tanh")
ABLATIONS = ("none", "A(u)", "A(u),b(u)")

_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _uniform(shape: tuple[int, ...], bound: float, dtype: torch.dtype) -> nn.Parameter:
    if dtype.is_complex:
        real = {torch.complex64: torch.float32, torch.complex128: torch.float64}[dtype]
        re = torch.empty(shape, dtype=real).uniform_(-bound, bound)
        im = torch.empty(shape, dtype=real).uniform_(-bound, bound)
        return nn.Parameter(torch.complex(re, im))
    return nn.Parameter(torch.empty(shape, dtype=dtype).uniform_(-bound, bound))


def _dsigmoid(s: torch.Tensor) -> torch.Tensor:
    """Derivative of the sigmoid written with its value ``s = sigma(y)``: ``s (1 - s)``."""
    return s * (1 - s)


# ----------------------------------------------------------------------------------------------
# The original, dense LRC cell (Eq. 1-7)
# ----------------------------------------------------------------------------------------------


class LRCCell(nn.Module):
    """Original LRC cell, LrcSSM Eq. (1)–(7) (Farsang et al. 2024); chapter lrcssm/01_lrc_diagonal_jacobian.

    With ``y = [x, u]`` (length ``D + H``) and synapse ``j -> i``::

        f_i = sum_j g_max[j,i] sigma(a[j,i] y_j + b[j,i]) + g_leak[i]          (Eq. 1)
        z_i = sum_j k_max[j,i] sigma(a[j,i] y_j + b[j,i]) + g_leak[i]          (Eq. 2)
        eps_i = sum_j w[j,i] y_j + v[i]                                       (Eq. 3)
        dx_i/dt = (-sigma(f_i) x_i + tanh(z_i) e_leak[i]) sigma(eps_i)          (Eq. 6)
        x_{t+1} = x_t + euler_step * dx/dt                                    (Eq. 7)

    ``k_max`` is learned directly (Eq. 2 writes it as ``g_max e_rev / e_leak``). Every neuron's
    conductances see every other neuron's state, so the Jacobian is dense.
    Shapes: ``x`` (..., D), ``u`` (..., H).
    """

    def __init__(self, H: int, D: int, *, euler_step: float = 1.0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.H = check_int(H, "H", minimum=1)
        self.D = check_int(D, "D", minimum=1)
        self.euler_step = float(check_positive(euler_step, "euler_step"))
        bound = 1.0 / math.sqrt(D)
        n = H + D
        self.a = _uniform((n, D), bound, dtype)
        self.b = _uniform((n, D), bound, dtype)
        self.g_max = _uniform((n, D), bound, dtype)
        self.k_max = _uniform((n, D), bound, dtype)
        self.w = _uniform((n, D), bound, dtype)
        self.v = _uniform((D,), bound, dtype)
        self.g_leak = _uniform((D,), bound, dtype)
        self.e_leak = _uniform((D,), bound, dtype)

    def step(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One Euler step of Eq. (6)–(7). Shapes: ``x`` (..., D), ``u`` (..., H) -> (..., D)."""
        y = torch.cat([x, u.expand(*x.shape[:-1], self.H)], dim=-1)        # (..., D+H)
        s = torch.sigmoid(self.a * y.unsqueeze(-1) + self.b)                 # (..., D+H, D)
        f = (self.g_max * s).sum(-2) + self.g_leak
        z = (self.k_max * s).sum(-2) + self.g_leak
        eps = y @ self.w + self.v
        return x + self.euler_step * torch.sigmoid(eps) * (-torch.sigmoid(f) * x + torch.tanh(z) * self.e_leak)

    def rollout(self, u: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Sequential evaluation. Shapes: ``u`` (B, T, H), ``x0`` (B, D) -> states (B, T, D)."""
        x = u.new_zeros(*u.shape[:-2], self.D) if x0 is None else x0
        xs = []
        for u_t in u.unbind(-2):
            x = self.step(x, u_t)
            xs.append(x)
        return torch.stack(xs, dim=-2)


# ----------------------------------------------------------------------------------------------
# The LrcSSM cell (Eq. 8-14)
# ----------------------------------------------------------------------------------------------


class InputTerms(NamedTuple):
    """State-independent parts of f*, z*, eps* (Eq. 8–10), computed once per layer. Each (..., D) or (B, T, D)."""

    f_u: torch.Tensor
    z_u: torch.Tensor
    e_u: torch.Tensor


class Conductances(NamedTuple):
    """``f*``, ``z*`` and ``sigma(eps*)`` of LrcSSM Eq. (8)–(10) with their derivatives along ``x_i``.

    Chapter lrcssm/01_lrc_diagonal_jacobian. Each field (..., D); ``*_x`` is the element-wise
    derivative with respect to the neuron's own previous state (the only one it sees).
    """

    f: torch.Tensor        #: forget conductance f* (Eq. 8)
    f_x: torch.Tensor      #: ∂f*/∂x_i
    z: torch.Tensor        #: update conductance z* (Eq. 9)
    z_x: torch.Tensor      #: ∂z*/∂x_i
    s_eps: torch.Tensor    #: sigma(eps*), the liquid capacitance's inverse (Eq. 10); 1 without elastance
    s_eps_x: torch.Tensor  #: ∂sigma(eps*)/∂x_i


class Drift(NamedTuple):
    """Diagonal ``A`` and ``b`` of ``dx/dt = A(x, u) x + b(x, u)``, LrcSSM Eq. (12)–(14), with derivatives along ``x_i``.

    Chapter lrcssm/01_lrc_diagonal_jacobian. Each field (..., D).
    """

    A: torch.Tensor    #: -sigma(f*) sigma(eps*) (Eq. 13)
    A_x: torch.Tensor  #: ∂A/∂x_i
    b: torch.Tensor    #: tanh(z*) sigma(eps*) e_leak (Eq. 14)
    b_x: torch.Tensor  #: ∂b/∂x_i


class Transition(NamedTuple):
    """One Euler step written as ``x_t = lam * x_{t-1} + offset``, LrcSSM Eq. (7) applied to Eq. (12).

    Chapter lrcssm/01_lrc_diagonal_jacobian. ``lam = 1 + euler_step * A`` is the *frozen*
    transition (rho-clamped if the cell has ``rho``), ``offset = euler_step * b``. Each field
    (..., D); ``*_x`` are the derivatives along ``x_{t-1,i}``.
    """

    lam: torch.Tensor
    lam_x: torch.Tensor
    offset: torch.Tensor
    offset_x: torch.Tensor


def _sum_to(g: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return g if g.shape == like.shape else g.sum_to_size(like.shape)


def _lrc_gates(x: torch.Tensor, f_u: torch.Tensor, z_u: torch.Tensor, e_u: torch.Tensor,
               sigma_x: torch.Tensor, mu_x: torch.Tensor, g_max_x: torch.Tensor, k_max_x: torch.Tensor,
               kappa: torch.Tensor, elastance: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``s_x, sigma(f*), tanh(z*), sigma(eps*)`` (None without elastance) of the plain real cell, Eq. (8)–(10).

    The forward of :class:`_LrcStep` (in place on fresh buffers; the same operations as
    :meth:`LrcSSMCell.conductances`), shared with :meth:`LrcSSMCell.step_vjp`. Shapes (..., D).
    """
    s_x = torch.sub(x, mu_x).mul_(sigma_x).sigmoid_()
    s_f = torch.mul(g_max_x, s_x).add_(f_u).sigmoid_()
    t_z = torch.mul(k_max_x, s_x).add_(z_u).tanh_()
    e = torch.mul(kappa, x).add_(e_u).sigmoid_() if elastance else None
    return s_x, s_f, t_z, e


def _lrc_step_vjp(G: torch.Tensor, x: torch.Tensor, f_u: torch.Tensor, z_u: torch.Tensor,
                  e_u: torch.Tensor, sigma_x: torch.Tensor, mu_x: torch.Tensor, g_max_x: torch.Tensor,
                  k_max_x: torch.Tensor, kappa: torch.Tensor, e_leak: torch.Tensor, s_x: torch.Tensor,
                  s_f: torch.Tensor, t_z: torch.Tensor, e: torch.Tensor | None, h: float,
                  need: tuple[bool, ...]) -> tuple[torch.Tensor | None, ...]:
    """The closed-form backward of :class:`_LrcStep` (formulas in its docstring), Eq. (7)–(14).

    ``G`` = ∂L/∂x_t; returns the gradients of ``(x, f_u, z_u, e_u, sigma_x, mu_x, g_max_x,
    k_max_x, kappa, e_leak)`` (None where ``need`` is False or the input does not matter), each
    summed to its input's shape. Shared by :class:`_LrcStep` (eager) and
    :meth:`LrcSSMCell.step_vjp` (which :mod:`liquidssm.newton` compiles). Shapes (..., D).
    """
    Ge = G * e if e is not None else G                               # G e
    g_f = torch.rsub(s_f, 1).mul_(s_f).mul_(x).mul_(Ge).mul_(-h)       # dL/df*
    g_z = torch.mul(t_z, t_z).neg_().add_(1).mul_(Ge).mul_(e_leak).mul_(h)   # dL/dz*
    g_e = None
    if e is not None:
        q = torch.mul(e_leak, t_z).sub_(torch.mul(x, s_f))          # e_leak tanh z* - x sigma(f*)
        g_e = q.mul_(G).mul_(h).mul_(torch.rsub(e, 1).mul_(e))        # dL/deps*
    g_s = torch.mul(g_f, g_max_x).add_(torch.mul(g_z, k_max_x)).mul_(torch.rsub(s_x, 1).mul_(s_x))
    gx = None
    if need[0]:
        lam = (torch.mul(s_f, e) if e is not None else s_f.clone()).mul_(-h).add_(1)
        gx = lam.mul_(G).add_(torch.mul(g_s, sigma_x))
        if g_e is not None:
            gx.add_(torch.mul(g_e, kappa))
    return (gx,
            _sum_to(g_f, f_u) if need[1] else None,
            _sum_to(g_z, z_u) if need[2] else None,
            _sum_to(g_e, e_u) if need[3] and g_e is not None else None,
            _sum_to(g_s * (x - mu_x), sigma_x) if need[4] else None,
            _sum_to(-(g_s * sigma_x), mu_x) if need[5] else None,
            _sum_to(g_f * s_x, g_max_x) if need[6] else None,
            _sum_to(g_z * s_x, k_max_x) if need[7] else None,
            _sum_to(g_e * x, kappa) if need[8] and g_e is not None else None,
            _sum_to(Ge * t_z * h, e_leak) if need[9] else None)


class _LrcStep(torch.autograd.Function):
    """``x_t`` of the plain real LrcSSM cell (no ablation, no rho) with a closed-form backward.

    Forward: the operations of :meth:`LrcSSMCell.transition` (bit for bit), in place; saves
    ``s_x, sigma(f*), tanh(z*), sigma(eps*)``. Backward, with ``G`` the incoming gradient and
    ``x_t = x + Δt e (e_leak tanh z* - x sigma(f*))`` (``e = sigma(eps*)``, 1 without elastance)::

        g_f = -G Δt e x sigma'(f*),  g_z = G Δt e e_leak (1 - tanh^2 z*),
        g_e = G Δt (e_leak tanh z* - x sigma(f*)) e (1 - e),
        g_s = (g_f g_max_x + g_z k_max_x) s_x (1 - s_x),
        dx = G lam + g_e kappa + g_s sigma_x.
    """

    @staticmethod
    def forward(ctx, x, f_u, z_u, e_u, sigma_x, mu_x, g_max_x, k_max_x, kappa, e_leak,  # noqa: D102
                h, elastance):
        s_x, s_f, t_z, e = _lrc_gates(x, f_u, z_u, e_u, sigma_x, mu_x, g_max_x, k_max_x, kappa, elastance)
        lam = (torch.mul(s_f, e) if e is not None else s_f.clone()).mul_(-h).add_(1)
        offset = torch.mul(e_leak, t_z)
        if e is not None:
            offset.mul_(e)
        x_next = lam.mul_(x).add_(offset.mul_(h))
        ctx.h, ctx.elastance = h, elastance
        ctx.save_for_backward(x, f_u, z_u, e_u, sigma_x, mu_x, g_max_x, k_max_x, kappa, e_leak,
                              s_x, s_f, t_z, *((e,) if e is not None else ()))
        return x_next

    @staticmethod
    @once_differentiable
    def backward(ctx, G):  # noqa: D102
        x, f_u, z_u, e_u, sigma_x, mu_x, g_max_x, k_max_x, kappa, e_leak, s_x, s_f, t_z, *rest = \
            ctx.saved_tensors
        e = rest[0] if rest else None
        return (*_lrc_step_vjp(G, x, f_u, z_u, e_u, sigma_x, mu_x, g_max_x, k_max_x, kappa, e_leak,
                               s_x, s_f, t_z, e, ctx.h, ctx.needs_input_grad[:10]), None, None)


class LrcSSMCell(nn.Module):
    """LrcSSM cell with a diagonal Jacobian, LrcSSM Eq. (8)–(14); chapter lrcssm/01_lrc_diagonal_jacobian.

    Per neuron ``i`` (``x`` the previous state, ``u`` the current input)::

        s_u   = sigma(sigma_u * (u - mu_u))                 (H,)  per-input sigmoid
        s_x   = sigma(sigma_x * (x - mu_x))                 (D,)  self-loop sigmoid
        f*    = g_leak + W_f s_u + g_max_x s_x              (Eq. 8)
        z*    = g_leak + W_z s_u + k_max_x s_x              (Eq. 9)
        eps*  = kappa x + beta [+ W_eps u]                  (Eq. 10; the bracket only for variant="paper")
        A     = -sigma(f*) sigma(eps*),  b = tanh(z*) sigma(eps*) e_leak      (Eq. 13-14)
        x_t   = x + Δt (A x + b) = lam_t x + Δt b,   lam_t = 1 + Δt A         (Eq. 7, 11-12)

    with ``Δt = euler_step``. ``variant="paper"`` adds the input term ``W_eps u`` of Eq. (10) to
    the elastance (its input bias ``v^u`` is absorbed in ``beta``); ``variant="official"`` is the
    released code's state-only elastance ``sigma(kappa x + beta)``. ``elastance=False`` gives the
    StcSSM ablation (Eq. 5: ``sigma(eps*)`` replaced by 1). ``ablation`` removes state dependence
    (Table 10): ``"A(u)"`` drops the self-loop terms from ``f*`` and ``eps*`` inside ``A`` only,
    ``"A(u),b(u)"`` drops them everywhere (the recurrence becomes linear in ``x``).
    ``complex_params=True`` makes the four self-loop vectors ``mu_x, sigma_x, g_max_x, k_max_x``
    complex (reference §1.5) and the state complex. ``rho`` (with ``clamp``) bounds the frozen
    transition, the premise of Theorem 1. All parameters start ~ U(-1/sqrt(D), 1/sqrt(D)) as in
    the released code.

    Shapes: ``u`` (..., H); states and the :class:`InputTerms` (..., D); sequences (B, T, ·).
    """

    def __init__(
        self,
        H: int,
        D: int,
        *,
        euler_step: float = 1.0,
        variant: str = "paper",
        elastance: bool = True,
        ablation: str = "none",
        complex_params: bool = False,
        rho: float | None = None,
        clamp: str = "softplus",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if rho is not None and not (isinstance(rho, (int, float)) and 0 < rho <= 1):
            raise ValueError(f"rho: expected a radius in (0, 1] or None, got {rho!r}")
        self.rho = None if rho is None else float(rho)
        self.clamp = check_choice(clamp, "clamp", CLAMPS)
        for name, flag in (("elastance", elastance), ("complex_params", complex_params)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name}: expected True or False, got {flag!r}")
        if self.rho is not None and complex_params:
            raise ValueError("rho: the rho-clamp is defined for real states only (complex_params=False)")
        self.H = check_int(H, "H", minimum=1)
        self.D = check_int(D, "D", minimum=1)
        self.euler_step = float(check_positive(euler_step, "euler_step"))
        self.variant = check_choice(variant, "variant", VARIANTS)
        self.ablation = check_choice(ablation, "ablation", ABLATIONS)
        self.elastance = elastance
        self.complex_params = complex_params
        if dtype not in _COMPLEX_OF:
            raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        cdtype = _COMPLEX_OF[dtype] if complex_params else dtype
        bound = 1.0 / math.sqrt(D)
        # input side (always real)
        self.mu_u = _uniform((H,), bound, dtype)
        self.sigma_u = _uniform((H,), bound, dtype)
        self.W_f = _uniform((D, H), bound, dtype)
        self.W_z = _uniform((D, H), bound, dtype)
        # self-loop (complex in the complex variant)
        self.mu_x = _uniform((D,), bound, cdtype)
        self.sigma_x = _uniform((D,), bound, cdtype)
        self.g_max_x = _uniform((D,), bound, cdtype)
        self.k_max_x = _uniform((D,), bound, cdtype)
        # leak and elastance
        self.g_leak = _uniform((D,), bound, dtype)
        self.e_leak = _uniform((D,), bound, dtype)
        self.kappa = _uniform((D,), bound, dtype)
        self.beta = _uniform((D,), bound, dtype)
        with_input_term = self.variant == "paper" and self.elastance
        self.W_eps = _uniform((D, H), bound, dtype) if with_input_term else None

    @property
    def state_dtype(self) -> torch.dtype:
        """dtype of the state ``x`` (complex when the self-loop parameters are complex)."""
        return self.mu_x.dtype

    def extra_repr(self) -> str:
        return (f"H={self.H}, D={self.D}, euler_step={self.euler_step}, variant={self.variant!r}, "
                f"elastance={self.elastance}, ablation={self.ablation!r}, complex={self.complex_params}")

    def scaled(self, factor: float) -> LrcSSMCell:
        """A copy with every parameter multiplied by ``factor`` (used to probe harder dynamics)."""
        return scaled_copy(self, factor)

    # -- state-independent part ------------------------------------------------------------------

    def input_terms(self, u: torch.Tensor) -> InputTerms:
        """Input parts of Eq. (8)–(10): the two D×H products, done once per layer. ``u`` (..., H) -> (..., D)."""
        u = as_tensor(u, "u")
        if u.shape[-1:] != (self.H,):
            raise ValueError(f"u: expected last axis H={self.H} (shape (..., H)), got shape {tuple(u.shape)}")
        if u.dtype != self.W_f.dtype:
            raise TypeError(f"u: expected dtype {self.W_f.dtype} (the cell's parameters), got {u.dtype}")
        s_u = torch.sigmoid(self.sigma_u * (u - self.mu_u))
        f_u = self.g_leak + s_u @ self.W_f.T
        z_u = self.g_leak + s_u @ self.W_z.T
        e_u = self.beta + (u @ self.W_eps.T if self.W_eps is not None else torch.zeros_like(f_u))
        return InputTerms(f_u, z_u, e_u)

    # -- one step, one equation at a time --------------------------------------------------------

    def conductances(self, x: torch.Tensor, pre: InputTerms) -> Conductances:
        """Conductances and elastance, LrcSSM Eq. (8)–(10), with their derivatives along ``x_i``.

        Chapter lrcssm/01_lrc_diagonal_jacobian. The state enters only through the neuron's own
        self-loop sigmoid ``s_x`` (and ``kappa x`` in the elastance), so every derivative is
        element-wise. Without elastance (StcSSM) ``sigma(eps*) = 1``. ``x``, ``pre`` (..., D).
        """
        s_x = torch.sigmoid(self.sigma_x * (x - self.mu_x))
        ds_x = self.sigma_x * _dsigmoid(s_x)
        f = pre.f_u + self.g_max_x * s_x
        z = pre.z_u + self.k_max_x * s_x
        if self.elastance:
            s_eps = torch.sigmoid(pre.e_u + self.kappa * x)
            s_eps_x = _dsigmoid(s_eps) * self.kappa
        else:
            s_eps, s_eps_x = torch.ones_like(f), torch.zeros_like(f)
        return Conductances(f, self.g_max_x * ds_x, z, self.k_max_x * ds_x, s_eps, s_eps_x)

    def ablate(self, g: Conductances, pre: InputTerms) -> tuple[Conductances, Conductances]:
        """The Table 10 ablations: the conductances seen by ``A`` and by ``b`` (LrcSSM App. E).

        Chapter lrcssm/01_lrc_diagonal_jacobian. ``"none"``: both see ``g``. The input-only
        conductances drop the self-loop terms (``f* = f_u``, ``z* = z_u``,
        ``sigma(eps*) = sigma(e_u)``, zero derivatives); ``"A(u)"`` gives them to ``A`` only,
        ``"A(u),b(u)"`` to both (the recurrence is then linear in ``x``). Returns ``(g_A, g_b)``.
        """
        if self.ablation == "none":
            return g, g
        zero = torch.zeros_like(g.f)
        s_eps = torch.sigmoid(pre.e_u) if self.elastance else torch.ones_like(g.f)
        g_u = Conductances(pre.f_u, zero, pre.z_u, zero, s_eps, zero)
        return (g_u, g) if self.ablation == "A(u)" else (g_u, g_u)

    def drift(self, g_A: Conductances, g_b: Conductances) -> Drift:
        """``A = -sigma(f*) sigma(eps*)`` and ``b = tanh(z*) sigma(eps*) e_leak``, LrcSSM Eq. (13)–(14).

        Chapter lrcssm/01_lrc_diagonal_jacobian. ``A`` reads ``g_A``, ``b`` reads ``g_b`` (equal
        unless ablated); derivatives by the product and chain rules. Shapes (..., D).
        """
        s_f = torch.sigmoid(g_A.f)
        t_z = torch.tanh(g_b.z)
        A = -s_f * g_A.s_eps
        A_x = -(_dsigmoid(s_f) * g_A.f_x * g_A.s_eps + s_f * g_A.s_eps_x)
        b = self.e_leak * t_z * g_b.s_eps
        b_x = self.e_leak * ((1 - t_z * t_z) * g_b.z_x * g_b.s_eps + t_z * g_b.s_eps_x)
        return Drift(A, A_x, b, b_x)

    def euler_transition(self, d: Drift) -> Transition:
        """One explicit Euler step of ``dx/dt = A x + b``, LrcSSM Eq. (7) on Eq. (12): ``lam = 1 + Δt A``, ``offset = Δt b``.

        Chapter lrcssm/01_lrc_diagonal_jacobian; ``Δt = euler_step``. Shapes (..., D).
        """
        h = self.euler_step
        return Transition(1 + h * d.A, h * d.A_x, h * d.b, h * d.b_x)

    def rho_clamp(self, t: Transition) -> Transition:
        """Bound the frozen transition by ``rho``, the premise ``|lam_t| <= rho < 1`` of LrcSSM Theorem 1.

        Chapter lrcssm/04_stability. ``clamp="softplus"``: ``rho * lam`` (``rho`` times the
        unclamped ``1 - Δt sigma(f*) sigma(eps*)``); ``clamp="tanh"``: ``rho * tanh(lam)``.
        Identity when the cell has no ``rho``. Only ``lam`` changes. Shapes (..., D).
        """
        if self.rho is None:
            return t
        if self.clamp == "softplus":
            return t._replace(lam=self.rho * t.lam, lam_x=self.rho * t.lam_x)
        th = torch.tanh(t.lam)
        return t._replace(lam=self.rho * th, lam_x=self.rho * (1 - th * th) * t.lam_x)

    def transition(self, x: torch.Tensor, pre: InputTerms) -> Transition:
        """``x_t = lam x + offset`` with its derivatives: Eq. (8)–(10), Table 10, Eq. (12)–(14), (7), rho-clamp.

        Chapter lrcssm/01_lrc_diagonal_jacobian. ``x``, ``pre`` (..., D) -> fields (..., D).
        """
        g_A, g_b = self.ablate(self.conductances(x, pre), pre)
        return self.rho_clamp(self.euler_transition(self.drift(g_A, g_b)))

    # -- what the solvers use --------------------------------------------------------------------

    def coefficients(self, x: torch.Tensor, pre: InputTerms) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen coefficients of Eq. (12) after the Euler step: ``(lam_t, Δt b_t)`` with ``x_t = lam_t x + Δt b_t``.

        ``lam_t = 1 + Δt A`` (rho-clamped if the cell has ``rho``). Shapes (..., D).
        """
        t = self.transition(x, pre)
        return t.lam, t.offset

    def _fused(self, x: torch.Tensor, pre: InputTerms,
               want_jac: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fast path of :meth:`transition`: ``(x_t, diag J or None)`` computing only what is needed.

        The same operations, in the same order, as :meth:`conductances` -> :meth:`ablate` ->
        :meth:`drift` -> :meth:`euler_transition` -> :meth:`rho_clamp` (the readable oracle), but
        no derivatives unless ``want_jac``, no ones/zeros tensors for a disabled elastance or an
        ablated self-loop, and the elastance sigmoid shared by ``A`` and ``b``. Values equal the
        pieces bit for bit; the Jacobian differs at most by the sign of a zero.
        Shapes: ``x``, ``pre`` (..., D).
        """
        if not (torch.is_grad_enabled() and any(t.requires_grad for t in (x, *pre, *self.parameters()))
                or _transforms_active()):  # under torch.func / forward AD: the out-of-place ops below
            return self._fused_no_grad(x, pre, want_jac)
        h = self.euler_step
        x_in_A = self.ablation == "none"             # A sees the self-loop
        x_in_b = self.ablation != "A(u),b(u)"        # b sees the self-loop
        s_x = ds_x = None
        if x_in_A or x_in_b:
            s_x = torch.sigmoid(self.sigma_x * (x - self.mu_x))
            if want_jac:
                ds_x = self.sigma_x * _dsigmoid(s_x)
        s_e_x = s_e_u = None                          # sigma(eps*) with / without the state
        if self.elastance:
            if x_in_A or x_in_b:
                s_e_x = torch.sigmoid(pre.e_u + self.kappa * x)
            if not (x_in_A and x_in_b):
                s_e_u = torch.sigmoid(pre.e_u)
        e_A = s_e_x if x_in_A else s_e_u
        e_b = s_e_x if x_in_b else s_e_u
        s_f = torch.sigmoid(pre.f_u + self.g_max_x * s_x if x_in_A else pre.f_u)
        t_z = torch.tanh(pre.z_u + self.k_max_x * s_x if x_in_b else pre.z_u)
        A = -s_f * e_A if e_A is not None else -s_f
        b = self.e_leak * t_z * e_b if e_b is not None else self.e_leak * t_z
        lam, offset = 1 + h * A, h * b
        lam_x = offset_x = None
        if want_jac:
            de_x = _dsigmoid(s_e_x) * self.kappa if s_e_x is not None else None
            if x_in_A:
                A_x = _dsigmoid(s_f) * (self.g_max_x * ds_x)
                if e_A is not None:
                    A_x = -(A_x * e_A + s_f * de_x)
                else:
                    A_x = -A_x
                lam_x = h * A_x
            if x_in_b:
                b_x = (1 - t_z * t_z) * (self.k_max_x * ds_x)
                b_x = self.e_leak * (b_x * e_b + t_z * de_x if e_b is not None else b_x)
                offset_x = h * b_x
        if self.rho is not None:
            if self.clamp == "softplus":
                lam = self.rho * lam
                lam_x = self.rho * lam_x if lam_x is not None else None
            else:
                th = torch.tanh(lam)
                lam = self.rho * th
                lam_x = self.rho * (1 - th * th) * lam_x if lam_x is not None else None
        x_next = lam * x + offset
        if not want_jac:
            return x_next, None
        J = lam + x * lam_x if lam_x is not None else lam
        J = J + offset_x if offset_x is not None else J
        return x_next, (J if J.shape == x_next.shape and J.dtype == x_next.dtype
                        else torch.broadcast_to(J, x_next.shape).to(x_next.dtype))

    def _fused_no_grad(self, x: torch.Tensor, pre: InputTerms,
                       want_jac: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`_fused` without autograd: in-place updates of a few fresh buffers (no temporaries).

        Same formulas, regrouped (``-A_x = sigma'(f*) g_max_x s_x' e_A + sigma(f*) e'``,
        ``b_x / e_leak = (1 - tanh^2 z*) k_max_x s_x' e_b + tanh(z*) e'``), so values agree with the
        pieces to rounding (a few ulp), not bit for bit. Used when no gradient is needed
        (the Newton iterations). Shapes: ``x``, ``pre`` (..., D).
        """
        h = self.euler_step
        x_in_A = self.ablation == "none"
        x_in_b = self.ablation != "A(u),b(u)"
        s_x = ds_x = s_e_x = s_e_u = de_x = None
        if x_in_A or x_in_b:
            s_x = torch.sub(x, self.mu_x).mul_(self.sigma_x).sigmoid_()
            if want_jac:
                ds_x = torch.rsub(s_x, 1).mul_(s_x).mul_(self.sigma_x)
            if self.elastance:
                s_e_x = torch.mul(x, self.kappa).add_(pre.e_u).sigmoid_()
                if want_jac:
                    de_x = torch.rsub(s_e_x, 1).mul_(s_e_x).mul_(self.kappa)
        if self.elastance and not (x_in_A and x_in_b):
            s_e_u = torch.sigmoid(pre.e_u)
        e_A = s_e_x if x_in_A else s_e_u
        e_b = s_e_x if x_in_b else s_e_u
        s_f = (torch.mul(s_x, self.g_max_x).add_(pre.f_u) if x_in_A else pre.f_u.clone()).sigmoid_()
        t_z = (torch.mul(s_x, self.k_max_x).add_(pre.z_u) if x_in_b else pre.z_u.clone()).tanh_()
        lam = (torch.mul(s_f, e_A) if e_A is not None else s_f.clone()).mul_(-h).add_(1)
        offset = torch.mul(t_z, self.e_leak)
        if e_b is not None:
            offset.mul_(e_b)
        offset.mul_(h)
        th = None
        if self.rho is not None:
            if self.clamp == "tanh":
                th = lam.tanh_()
                lam = torch.mul(th, self.rho)
            else:
                lam.mul_(self.rho)
        x_next = torch.mul(lam, x).add_(offset)
        if not want_jac:
            return x_next, None
        J = torch.broadcast_to(lam, x_next.shape).to(x_next.dtype, copy=True)
        if x_in_A:
            ax = torch.rsub(s_f, 1).mul_(s_f).mul_(ds_x).mul_(self.g_max_x)  # -A_x (no elastance)
            if e_A is not None:
                ax.mul_(e_A).addcmul_(s_f, de_x)
            ax.mul_(x).mul_(-h)                                         # x * h A_x
            if th is not None:
                ax.mul_(th.mul_(th).neg_().add_(1))
            if self.rho is not None:
                ax.mul_(self.rho)
            J.add_(ax)
        if x_in_b:
            bx = torch.mul(t_z, t_z).neg_().add_(1).mul_(ds_x).mul_(self.k_max_x)
            if e_b is not None:
                bx.mul_(e_b).addcmul_(t_z, de_x)
            J.add_(bx.mul_(self.e_leak).mul_(h))
        return x_next, J

    def step(self, x: torch.Tensor, pre: InputTerms) -> torch.Tensor:
        """One Euler step of Eq. (11): ``x + Δt (A(x,u) x + b(x,u)) = lam x + Δt b``. ``x``, ``pre`` (..., D) -> (..., D).

        Values only, through the fused path: equal to ``t.lam * x + t.offset`` with
        ``t =`` :meth:`transition` (bit for bit under autograd, to a few ulp in the in-place
        no-autograd path); with autograd on the plain real cell (no ablation, no rho)
        the backward is the closed form of :class:`_LrcStep` instead of ~30 recorded operations.
        """
        if (self.ablation == "none" and self.rho is None and not self.complex_params
                and torch.is_grad_enabled() and x.shape == pre.f_u.shape and not _transforms_active()):
            return _LrcStep.apply(x, pre.f_u, pre.z_u, pre.e_u, self.sigma_x, self.mu_x, self.g_max_x,
                                  self.k_max_x, self.kappa, self.e_leak, self.euler_step, self.elastance)
        return self._fused(x, pre, False)[0]

    def jacobian_diag(self, x: torch.Tensor, pre: InputTerms) -> torch.Tensor:
        """Diagonal of ``∂x_t/∂x_{t-1}`` in closed form (reference §1.4): ``lam + x dlam/dx + Δt db/dx``.

        Unclamped this is ``1 + Δt (A + x A_x + b_x)``. Shapes: ``x`` and ``pre`` (..., D) -> (..., D).
        The off-diagonal entries are exactly zero.
        """
        t = self.transition(x, pre)
        return t.lam + x * t.lam_x + t.offset_x

    def step_and_jacobian(self, x: torch.Tensor, pre: InputTerms) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` and :meth:`jacobian_diag` in one fused pass (what Newton needs); :meth:`transition` is its oracle.

        The step carries autograd history when gradients are on; the Jacobian diagonal is
        returned **as a constant** (no history: the solvers detach it), computed by the
        no-autograd fast path. Use :meth:`jacobian_diag` for a differentiable diagonal.
        Shapes: ``x``, ``pre`` (..., D) -> two (..., D).
        """
        if _transforms_active():
            x_next, J = self._fused(x, pre, True)
        elif torch.is_grad_enabled():
            x_next = self.step(x, pre)
            with torch.no_grad():
                J = self._fused_no_grad(x, pre, True)[1]
        else:
            x_next, J = self._fused_no_grad(x, pre, True)
        assert J is not None
        return x_next, J

    def vjp_leaves(self) -> tuple[torch.Tensor, ...] | None:
        """The parameters one step reads besides its input terms, in the order :meth:`step_vjp` returns their gradients.

        ``(sigma_x, mu_x, g_max_x, k_max_x, kappa, e_leak)`` for the plain real cell (no
        ablation, no rho, real parameters: the cell of :class:`_LrcStep`); ``None`` for the
        other variants, which have no closed-form step backward (the solvers then use autograd).
        """
        if self.ablation != "none" or self.rho is not None or self.complex_params:
            return None
        return (self.sigma_x, self.mu_x, self.g_max_x, self.k_max_x, self.kappa, self.e_leak)

    def step_vjp(self, x: torch.Tensor, pre: InputTerms, G: torch.Tensor, need: tuple[bool, ...]
                 ) -> tuple[torch.Tensor | None, ...]:
        """Gradients of ``<G, step(x, pre)>`` for ``(*pre, *vjp_leaves())``, ``x`` held constant: Eq. (7)–(14).

        Chapter lrcssm/03_newton_solver (the implicit gradient at the fixed point). The closed form
        of :class:`_LrcStep`'s backward, recomputing the gates from ``x`` (no saved activations),
        out of autograd: a pure function of tensors that :func:`liquidssm.newton.implicit_gradient_step`
        ``torch.compile``-s into a few fused loops. ``need`` (9 flags) says which gradients to form
        (the others are None); parameter gradients are summed over the batch and time axes.
        Only for cells whose :meth:`vjp_leaves` is not None. Shapes: ``x``, ``pre``, ``G`` (..., D).
        """
        if self.vjp_leaves() is None:
            raise ValueError(f"step_vjp: expected the plain real cell (no ablation, no rho, real parameters), "
                             f"got {self.extra_repr()}")
        args = (x, pre.f_u, pre.z_u, pre.e_u, self.sigma_x, self.mu_x, self.g_max_x, self.k_max_x,
                self.kappa, self.e_leak)
        gates = _lrc_gates(*args[:9], self.elastance)
        return _lrc_step_vjp(G, *args, *gates, self.euler_step, (False, *need))[1:]

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One step from raw input: ``x`` (..., D), ``u`` (..., H) -> next state (..., D)."""
        return self.step(x, self.input_terms(u))

    def initial_state(self, u: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Validated ``x0`` (B, D) for inputs ``u`` (B, T, H); zeros when ``x0`` is None."""
        return checked_initial_state(self, u, x0, allow_complex=True)

    def rollout(self, u: torch.Tensor, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Sequential loop over time — the oracle. ``u`` (B, T, H), ``x0`` (B, D) -> states (B, T, D)."""
        return sequential_rollout(self, u, x0, InputTerms)

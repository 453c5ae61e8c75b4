"""S4 and Liquid-S4 layers, the residual block and the sequence model; optimizer parameter groups.

Liquid-S4 paper §4 and Appendix S2 (architecture), Algorithm 1 (kernels); derived in chapter
``book/liquid/05_liquid_s4_layer``. Released-code behaviour: class ``S4`` in ``src/models/sequence/ss/s4.py`` and ``src/models/sequence/model.py`` of raminmh/liquid-s4@06031dc.

Shapes: ``(B, L, H)`` at every public ``forward`` (batch, length, features); ``(B, H, L)``
inside the convolution. ``lengths`` (``(B,)`` ints) marks the valid prefix of each sequence.

The layers only *pass through* the two kernel choices: ``kernel_method`` (the algorithm,
``"dplr"`` or the ``"dense"`` oracle, :data:`liquidssm.kernels.KERNEL_METHODS`) and
``cauchy_backend`` (where Algorithm 1's Cauchy sums run); :mod:`liquidssm.kernels` and
:mod:`liquidssm.liquid` own what they mean. :class:`SequenceModel` is built from one frozen
:class:`liquidssm.configs.SequenceModelConfig`.

Layer (one SSM per feature, ``n_ssm = H``, as the released configs):

    y = GLU(W · Dropout(GELU(K * u + D ⊙ u + liquid(u))) + b)

* ``K * u`` is the S4 convolution (causal; ``bidirectional=True`` adds a strictly anti-causal
  kernel with its own ``C``, the released code's fold);
* ``liquid(u)`` (``LiquidS4Layer``) is, for ``variant="paper"`` (default), the liquid part of
  Proposition 1 -- ``Σ_{p=2}^{order} K^(p) * c^(p)`` with the KB kernel ``C Ā^ℓ B̄^p`` or the PB kernel
  ``C B̄^p 1[ℓ < L̃]``, trainable through Λ, P, B, C, Δ, causal and aligned with each sequence's
  start (padding at the end never changes valid outputs); for ``variant="official"``, what the
  released code computes (frozen initial B̄, C, Δ; binomial L̃_p; "all combinations" or
  compounding products; time flip; pointwise PB coefficient; KB with an optional FFT-size bug).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from liquidssm import hippo, kernels, liquid, ssm
from liquidssm._checks import (
    check_choice,
    check_finite,
    check_int,
    check_memory,
    check_module_dtype,
    check_ndim,
)
from liquidssm.cauchy import BACKENDS
from liquidssm.configs import VARIANTS, SequenceModelConfig

__all__ = [
    "S4Layer",
    "LiquidS4Layer",
    "ResidualBlock",
    "SequenceModel",
    "ssm_param_groups",
    "SSM_PARAM_NAMES",
    "count_parameters",
]

#: names of the SSM parameters that get their own learning rate and no weight decay
SSM_PARAM_NAMES = ("log_dt", "Lambda_log_neg_re", "Lambda_im", "P", "B")

#: implementations of the paper variant's PB term: fused (default) or the reference (the oracle)
LIQUID_IMPLS = ("fused", "reference")

#: what the output parameter ``C`` of an S4 layer stores: ``C̃ = C(I − Ā^{l_max})`` or the paper's ``C``
C_PARAMS = ("tilde", "c")


def _complex_system(Lambda_log_neg_re: torch.Tensor, Lambda_im: torch.Tensor, P: torch.Tensor, B: torch.Tensor,
                    log_dt: torch.Tensor, H: int) -> tuple[torch.Tensor, ...]:
    """``(Lambda, P, B, dt)`` ``(H, N/2)`` ×3 complex and ``(H,)`` from the stored real parameters.

    The ``n_ssm`` stored copies are repeated to the ``H`` features. Used by :meth:`S4Layer.ssm_parameters`
    and by the state-dict conversion (which reads the tensors being loaded, not the layer's).
    """
    r = H // Lambda_im.shape[0]
    Lambda = torch.complex(-torch.exp(Lambda_log_neg_re), Lambda_im).repeat(r, 1)
    return (Lambda, torch.view_as_complex(P).repeat(r, 1), torch.view_as_complex(B).repeat(r, 1),
            torch.exp(log_dt))


def _as_double(*ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(torch.complex128) if t.is_complex() else t.double() for t in ts)


def _anticausal_fold(z: torch.Tensor) -> torch.Tensor:
    """``y_t = z_{L-2-t}`` (0 at ``t = L-1``): a causal result in reversed time made strictly anti-causal.

    The released bidirectional fold (no lag-0 tap of the backward kernel); ``z (..., L)``.
    """
    return F.pad(z.flip(-1)[..., 1:], (0, 1))


def _check_sequences(u: object, name: str, layout: str, last: tuple[str, int] | None = None, *,
                     finite: bool = True) -> torch.Tensor:
    """Validate a batch of real sequences ``(B, L, features)`` at a layer or model boundary.

    A floating tensor of rank 3 with ``B >= 1``, ``L >= 1``, last axis ``last = (name, size)`` and,
    if ``finite``, no NaN/inf: one NaN sample would otherwise reach BatchNorm and spread to the
    whole batch. Shared by :class:`S4Layer` and :class:`SequenceModel`.
    """
    if not isinstance(u, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor {layout}, got {type(u).__name__}")
    if not u.is_floating_point():
        raise TypeError(f"{name}: expected a real floating tensor {layout}, got {u.dtype}")
    check_ndim(u, name, 3, layout)
    if last is not None and u.shape[-1] != last[1]:
        raise ValueError(f"{name}: expected last axis {last[0]} = {last[1]} {layout}, got shape {tuple(u.shape)}")
    if u.shape[0] < 1 or u.shape[1] < 1:
        raise ValueError(f"{name}: expected a non-empty batch {layout} with B >= 1 and L >= 1, got shape "
                         f"{tuple(u.shape)}")
    if finite:
        check_finite(u.detach(), name)
    return u


def _check_batch_norm(x: torch.Tensor, norm: nn.Module) -> None:
    """BatchNorm in training mode needs more than one value per feature: refuse ``B x L = 1`` clearly."""
    if isinstance(norm, nn.BatchNorm1d) and norm.training and x.shape[0] * x.shape[1] == 1:
        raise ValueError("x: BatchNorm in training mode needs more than one value per feature, got batch 1 x "
                         "length 1; use a larger batch, model.eval(), or norm='layer'")


def _mask(lengths: torch.Tensor | None, B: int, L: int, device) -> torch.Tensor | None:
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
        raise TypeError(f"lengths: expected integer lengths (B,), got {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(f"lengths: expected shape ({B},) (one length per sequence), got {tuple(lengths.shape)}")
    if bool((lengths < 1).any()) or bool((lengths > L).any()):
        raise ValueError(f"lengths: expected values in [1, L = {L}], got {lengths.tolist()[:8]}")
    return torch.arange(L, device=device)[None, :] < lengths[:, None]  # (B, L)


def _check_steps(dt_min: object, dt_max: object) -> None:
    """``0 < dt_min <= dt_max``, both finite real numbers (the range of the initial log step)."""
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (dt_min, dt_max))
    if not ok or not 0 < dt_min <= dt_max:  # type: ignore[operator]
        raise ValueError(f"dt_min, dt_max: expected finite numbers with 0 < dt_min <= dt_max, got {dt_min!r}, "
                         f"{dt_max!r}")


def _check_probability(p: object, name: str) -> float:
    """A dropout probability in ``[0, 1)``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {p!r}")
    return float(p)


class _TiedDropout(nn.Module):
    """Dropout whose mask is shared along the length axis (released ``DropoutNd``); input ``(B, H, L)``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], x.shape[1], 1, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)


class S4Layer(nn.Module):
    r"""S4 layer: DPLR kernel + D skip + GELU + dropout + Linear(H → 2H) + GLU. Chapter ``liquid/05_liquid_s4_layer``.

    Args:
        H: features (``d_model``); N: state size (``d_state``; ``N // 2`` conjugate modes are
            stored, odd N drops the real mode like the released code).
        dt_min, dt_max: ``log Δ ~ U[log dt_min, log dt_max]``, one per feature.
        bidirectional: add a strictly anti-causal kernel (own C), as the released fold.
        dropout, tie_dropout: dropout after GELU, mask shared over length if tied.
        kernel_method: ``"dplr"`` (Algorithm 1, default) or ``"dense"`` (the dense-powers oracle),
            passed to :func:`liquidssm.kernels.s4_kernel` and the liquid kernels.
        cauchy_backend: ``"auto" | "torch" | "keops"``, where the Cauchy sums of ``"dplr"`` run.
        n_ssm: number of independent ``(Λ, P, B)`` copies shared across the ``H`` features
            (default ``H``: one per feature, the Liquid-S4 configs; 1 = the S4 v4 LRA default).
        c_param: what the trainable output vector ``C`` (parameter ``self.C``) stores.
            ``"tilde"`` (default, the official S4 code and the S4 paper): ``C̃ = C(I − Ā^{l_max})``,
            so a forward skips Algorithm 1 line 1 (a dense LU solve and ~2 log2 L complex matrix
            products per feature). ``"c"``: the paper's ``C`` (Algorithm 1 literally; the oracle).
            Both describe the same set of kernels (chapter ``s4/03_s4_kernel``, *Learning C̃
            instead of C*); gradient steps differ.
        l_max: ``c_param="tilde"`` only: the length at which ``C̃`` is defined, kept in the saved
            buffer ``l_max`` (0 = not fixed yet). At init the random ``C`` is converted once with
            :func:`liquidssm.kernels.c_tilde`. ``None``: ``C`` holds the un-truncated ``C`` until
            the first forward, whose length ``L`` fixes ``l_max`` (converting ``C`` in place, once);
            pass the task's sequence length instead when data-parallel ranks could see different
            first lengths. An input of length ``L <= l_max`` uses the kernel at ``l_max`` cut to
            its first ``L`` taps (exact). ``L > l_max`` **doubles** ``C̃`` in place
            (``C̃_{2l} = C̃_l (I + Ā^l)``, :func:`liquidssm.kernels.double_c_tilde`, under
            ``no_grad``) until ``l_max >= L``: the same system, a one-off cost; it must not
            happen between a forward and its backward.

    ``forward(u (B, L, H), lengths=None) -> (B, L, H)``. Loading a state dict converts between the
    parameterizations: a dict without ``l_max`` (saved by a ``c_param="c"`` layer) loads into a
    ``"tilde"`` layer through ``C ↦ C(I − Ā^{l_max})``, and a ``"tilde"`` dict into a ``"c"``
    layer through :func:`liquidssm.kernels.c_from_tilde` (both in float64, once).
    """

    def __init__(
        self,
        H: int,
        N: int = 64,
        *,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        tie_dropout: bool = True,
        kernel_method: str = "dplr",
        cauchy_backend: str = "auto",
        n_ssm: int | None = None,
        c_param: str = "tilde",
        l_max: int | None = None,
    ) -> None:
        super().__init__()
        self.c_param = check_choice(c_param, "c_param", C_PARAMS)
        if l_max is not None:
            check_int(l_max, "l_max", minimum=1)
            if c_param == "c":
                raise ValueError(f"l_max: the length at which C̃ is defined applies to c_param='tilde'; with "
                                 f"c_param='c' pass l_max=None, got {l_max}")
        self.H = check_int(H, "H", minimum=1)
        self.N = check_int(N, "N", minimum=2)
        _check_steps(dt_min, dt_max)
        _check_probability(dropout, "dropout")
        self.bidirectional = bool(bidirectional)
        self.kernel_method = kernels.check_method(kernel_method, "kernel_method")
        self.cauchy_backend = check_choice(cauchy_backend, "cauchy_backend", BACKENDS)
        d = hippo.nplr_legs(N, torch.complex128)
        N2 = N // 2
        self.N2 = N2
        ch = 2 if bidirectional else 1
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        S = H if n_ssm is None else check_int(n_ssm, "n_ssm", minimum=1)
        if H % S:
            raise ValueError(f"n_ssm: expected a divisor of H = {H}, got {S}")
        self.n_ssm = S
        self.Lambda_log_neg_re = nn.Parameter(torch.log(-d.Lambda.real.clamp(max=-1e-3)).float().repeat(S, 1))
        self.Lambda_im = nn.Parameter(d.Lambda.imag.float().repeat(S, 1))
        self.P = nn.Parameter(torch.view_as_real(d.P.to(torch.complex64)).repeat(S, 1, 1))
        self.B = nn.Parameter(torch.view_as_real(d.B.to(torch.complex64)).repeat(S, 1, 1))
        C = torch.randn(ch, H, N2, dtype=torch.complex64)  # real and imaginary parts of variance 1/2
        if self.c_param == "tilde":
            self.register_buffer("l_max", torch.tensor(l_max or 0, dtype=torch.int64))
            if l_max:
                Lambda, P, B, dt = _complex_system(self.Lambda_log_neg_re, self.Lambda_im, self.P, self.B,
                                                   self.log_dt, H)
                with torch.no_grad():
                    C = kernels.c_tilde(*_as_double(Lambda, P, B, C, dt), l_max).to(torch.complex64)
        self.C = nn.Parameter(torch.view_as_real(C))
        self.D = nn.Parameter(torch.randn(H))
        self.dropout = _TiedDropout(dropout) if tie_dropout else nn.Dropout(dropout)
        self.output_linear = nn.Linear(H, 2 * H)
        #: validate every input in :meth:`forward` (a :class:`SequenceModel` validates once and
        #: switches this off for its inner layers)
        self.check_inputs = True

    # -- the SSM in complex form ----------------------------------------------------------
    def stored_parameters(self) -> tuple[torch.Tensor, ...]:
        """``(Lambda, P, B, C_stored, dt)`` as trained: ``C̃`` (for ``l_max``) or ``C``, per ``c_param``.

        ``(H, N/2)`` ×3 complex, ``C_stored`` ``(ch, H, N/2)``, ``dt`` ``(H,)``; the fast paths use it.
        """
        Lambda, P, B, dt = _complex_system(self.Lambda_log_neg_re, self.Lambda_im, self.P, self.B, self.log_dt,
                                           self.H)
        return Lambda, P, B, torch.view_as_complex(self.C), dt

    @property
    def c_is_tilde(self) -> bool:
        """Whether ``self.C`` currently holds ``C̃`` (``c_param="tilde"`` with ``l_max`` fixed)."""
        return self.c_param == "tilde" and int(self.l_max) > 0

    def ssm_parameters(self) -> tuple[torch.Tensor, ...]:
        """``(Lambda, P, B, C, dt)`` with the paper's ``C``: ``(H, N/2)`` ×3 complex, ``C`` ``(ch, H, N/2)``, ``dt`` ``(H,)``.

        The oracle view of the system (chapter ``s4/03_s4_kernel``). With a learned ``C̃`` the
        paper's ``C = C̃ (I − Ā^{l_max})^{-1}`` is recovered by a dense float64 solve
        (:func:`liquidssm.kernels.c_from_tilde`, differentiable, O(N³) per feature).
        """
        Lambda, P, B, C, dt = self.stored_parameters()
        if self.c_is_tilde:
            C = kernels.c_from_tilde(Lambda, P, B, C, dt, int(self.l_max))
        return Lambda, P, B, C, dt

    def kernel_length(self, L: int) -> int:
        """The length at which the kernel is computed for an input of length ``L``.

        ``L`` for ``c_param="c"``; for ``"tilde"`` it is ``l_max``, fixed by this call when not yet
        fixed (converting ``C`` to ``C̃`` at ``L``) and doubled (``C̃`` with it) until ``>= L``,
        in place under ``no_grad`` (see the class docstring).
        """
        L = check_int(L, "L", minimum=1)
        if self.c_param == "c":
            return L
        l_max = int(self.l_max)
        if l_max >= L:
            return l_max
        with torch.no_grad():
            Lambda, P, B, C, dt = _as_double(*self.stored_parameters())
            if l_max == 0:
                C, l_max = kernels.c_tilde(Lambda, P, B, C, dt, L), L
            while l_max < L:
                C, l_max = kernels.double_c_tilde(Lambda, P, B, C, dt, l_max), 2 * l_max
            self.C.copy_(torch.view_as_real(C.to(torch.view_as_complex(self.C).dtype)))
            self.l_max.fill_(l_max)
        return l_max

    def kernel(self, L: int) -> torch.Tensor:
        """S4 kernel ``(ch, H, L)`` (``ch = 2`` if bidirectional); with ``C̃``, the first ``L`` taps at ``l_max``."""
        Lk = self.kernel_length(L)
        Lambda, P, B, C, dt = self.stored_parameters()
        K = kernels.s4_kernel(Lambda, P, B, C, dt, Lk, method=self.kernel_method, backend=self.cauchy_backend,
                              c_is_tilde=self.c_is_tilde)
        return K[..., :L]

    def conv_kernel(self, L: int) -> tuple[torch.Tensor, Any]:
        """``(kernel (ch, H, L), extra)`` for :meth:`conv`; ``extra`` goes to :meth:`liquid_terms` (None here)."""
        return self.kernel(L), None

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        """Convert ``C`` between the parameterizations when the dict was saved with the other one.

        A dict saved by a ``c_param="tilde"`` layer has the buffer ``l_max``; one saved by a ``"c"``
        layer has not. The conversion uses the ``Λ, P, B, Δ`` being loaded (float64, once).
        """
        key_c, key_l = prefix + "C", prefix + "l_max"
        if key_c in state_dict:
            saved_tilde = key_l in state_dict
            if self.c_param == "tilde" and not saved_tilde:
                L = int(self.l_max)
                if L > 0:
                    state_dict[key_c] = self._converted(state_dict, prefix, kernels.c_tilde, L)
                state_dict[key_l] = self.l_max.detach().clone()
            elif self.c_param == "c" and saved_tilde:
                L = int(state_dict.pop(key_l))
                if L > 0:
                    state_dict[key_c] = self._converted(state_dict, prefix, kernels.c_from_tilde, L)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _converted(self, state_dict: dict, prefix: str, convert: Any, L: int) -> torch.Tensor:
        """``view_as_real(convert(Λ, P, B, C, Δ, L))`` of the tensors in ``state_dict`` (float64 inside)."""
        names = ("Lambda_log_neg_re", "Lambda_im", "P", "B", "log_dt")
        raw = [state_dict.get(prefix + n, getattr(self, n)).detach() for n in names]
        C = state_dict[prefix + "C"].detach()
        system = _complex_system(*(t.double() for t in raw), self.H)
        out = convert(*_as_double(*system[:3], torch.view_as_complex(C.double().contiguous()), system[3]), L)
        return torch.view_as_real(out).to(C.dtype)

    def liquid_terms(self, u: torch.Tensor, extra: Any = None) -> tuple[list[torch.Tensor] | None, torch.Tensor | None]:
        """Hook for :class:`LiquidS4Layer`: (extra spectra per direction, pointwise term); none for S4."""
        return None, None

    def conv(self, u: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The linear part ``K * u + D ⊙ u (+ liquid)`` on ``u (B, H, L)``; returns ``(B, H, L)``."""
        Bsz, H, L = u.shape
        mask = _mask(lengths, Bsz, L, u.device)
        if mask is not None:
            u = u * mask[:, None, :].to(u.dtype)
        K, aux = self.conv_kernel(L)  # (ch, H, L)
        extra, pointwise = self.liquid_terms(u, aux)
        n = 2 * L
        spec = torch.fft.rfft(u, n=n) * torch.fft.rfft(K[0], n=n)
        if extra is not None:
            spec = spec + extra[0]
        y = torch.fft.irfft(spec, n=n)[..., :L]
        if self.bidirectional:
            ur = u.flip(-1)
            spec_b = torch.fft.rfft(ur, n=n) * torch.fft.rfft(K[1], n=n)
            if extra is not None:
                spec_b = spec_b + extra[1]
            z = torch.fft.irfft(spec_b, n=n)[..., :L]  # causal in reversed time
            y = y + _anticausal_fold(z)
        y = y + self.D[:, None] * u
        if pointwise is not None:
            y = y + pointwise
        return y

    def forward(self, u: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``u``: ``(B, L, H)`` → ``(B, L, H)`` of the layer's dtype; ``u`` must be finite (checked while ``check_inputs``)."""
        _check_sequences(u, "u", "(B, L, H)", ("H", self.H), finite=self.check_inputs)
        check_module_dtype(u, "u", self.D.dtype, "layer")
        # the SSM convolution stays in float32/complex64 under mixed precision (rfft has no bf16)
        with torch.autocast(u.device.type, enabled=False):
            y = self.conv(u.transpose(1, 2).to(self.D.dtype), lengths)
        y = self.dropout(F.gelu(y))
        return F.glu(self.output_linear(y.transpose(1, 2)), dim=-1)

    def step_forward(self, u: torch.Tensor) -> torch.Tensor:
        """Recurrent (step) mode ``(B, L, H) → (B, L, H)``: S4 recurrence + D, no liquid terms.

        Causal only. Like the released ``step()``, it ignores any liquid term, so for a liquid layer
        it disagrees with :meth:`forward` (chapter ``liquid/05_liquid_s4_layer``). Differentiable;
        wrap it in ``torch.no_grad()`` for inference.
        """
        _check_sequences(u, "u", "(B, L, H)", ("H", self.H))
        check_module_dtype(u, "u", self.D.dtype, "layer")
        if self.bidirectional:
            raise ValueError("step_forward: a bidirectional layer has no recurrent mode")
        Lambda, P, B, C, dt = _as_double(*self.ssm_parameters())  # C recovered from C̃ if needed (oracle)
        A_bar, B_bar = kernels.discretize_dplr_bilinear(Lambda, P, B, dt)
        x = u.transpose(1, 2).double()
        y = ssm.recurrence(A_bar, B_bar, kernels.conj_double(C[0]), x).real + self.D.double()[:, None] * x
        y = self.dropout(F.gelu(y.to(u.dtype)))
        return F.glu(self.output_linear(y.transpose(1, 2)), dim=-1)


class LiquidS4Layer(S4Layer):
    r"""Liquid-S4 layer: S4Layer plus the liquid terms of orders ``2..order``. Chapter ``liquid/05_liquid_s4_layer``.

    Args (in addition to :class:`S4Layer`, whose keywords ``**s4_options`` are passed on):
        kind: ``"pb"`` (Eq. 16, the paper's choice in every experiment) or ``"kb"`` (Prop. 1).
        order: highest liquid order (the paper's 𝒫) ``>= 2``.
        variant: ``"paper"`` (default) or ``"official"`` (the released code, chapter ``appendix/10_paper_vs_code_liquid_s4``).
        L_tilde: paper variant only: liquid kernel length ``L̃`` (``None`` = the input length).
        allcombs, lcontract, fft_bug: official variant only (``S4.forward`` in ``src/models/sequence/ss/s4.py`` of raminmh/liquid-s4@06031dc).
        liquid_impl: paper variant, PB: ``"fused"`` (default: :func:`liquidssm.liquid.pb_term`, and the
            coefficients with ``taps="auto"``) or ``"reference"`` (the previous implementation, kept as
            the oracle: :func:`liquidssm.liquid.pb_term_reference`, ``taps="columns"``). Same values and
            gradients to rounding; chapter ``reproductions/30_performance``.

    The official variant keeps *frozen copies* of the initial ``Λ, B, C, Δ`` as buffers (the
    released code keeps them as plain attributes that are not saved; here they are saved).
    """

    def __init__(
        self,
        H: int,
        N: int = 64,
        *,
        kind: str = "pb",
        order: int = 2,
        variant: str = "paper",
        L_tilde: int | None = None,
        allcombs: bool = True,
        lcontract: str | None = None,
        fft_bug: bool = False,
        liquid_impl: str = "fused",
        **s4_options: Any,
    ) -> None:
        super().__init__(H, N, **s4_options)
        self.liquid_impl = check_choice(liquid_impl, "liquid_impl", LIQUID_IMPLS)
        self.kind = check_choice(kind, "kind", ("pb", "kb"))
        self.order = liquid.check_order(order)
        self.variant = check_choice(variant, "variant", VARIANTS)
        if L_tilde is not None:
            if variant == "official":
                raise ValueError("L_tilde: the official variant chooses L̃_p by the binomial rule; pass L_tilde=None")
            check_int(L_tilde, "L_tilde", minimum=1)
        self.L_tilde = L_tilde
        if lcontract is not None:
            check_choice(lcontract, "lcontract", ("tanh", "lecun"))
        self.allcombs, self.lcontract, self.fft_bug = bool(allcombs), lcontract, bool(fft_bug)
        if variant == "official" and kind == "kb" and self.bidirectional:
            raise ValueError("kind='kb' with variant='official' is implemented for causal layers only")
        if variant == "official":
            Lambda, P, B, C, dt = (t.detach().clone() for t in self.ssm_parameters())
            self.register_buffer("Lambda0", torch.view_as_real(Lambda))
            self.register_buffer("B0", torch.view_as_real(B))
            # the released wrapper's C is the conjugate of the kernel's initial C parameter
            self.register_buffer("C0", torch.view_as_real(C.conj().resolve_conj()))
            self.register_buffer("dt0", dt)

    def _L_tilde(self, L: int) -> int:
        """The window for an input of length ``L``: ``min(L̃, L)``.

        A window longer than the input already covers its whole causal past, so clipping changes
        nothing numerically; it lets batches of variable-length sequences be shorter than L̃.
        """
        return liquid.check_L_tilde(None if self.L_tilde is None else min(self.L_tilde, L), L)

    def official_frozen(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Official variant: ``(B̄0 (H, N) conj-doubled, C0 (ch, H, N) conj-doubled, S (H,) real)``."""
        B_bar = liquid.official_B_bar(torch.view_as_complex(self.Lambda0), torch.view_as_complex(self.B0), self.dt0)
        return B_bar, kernels.conj_double(torch.view_as_complex(self.C0)), B_bar.sum(-1).real

    def conv_kernel(self, L: int) -> tuple[torch.Tensor, Any]:
        """``(S4 kernel (ch, H, L), PB coefficients or None)``; with ``C̃`` both come from one Cauchy call.

        Paper variant, ``kind="pb"``, ``kernel_method="dplr"`` and a learned ``C̃``: the PB
        coefficients ``C B̄^p`` (which need the un-truncated ``C``) are tap 0 of S4 kernels of ``C̃``
        (:func:`liquidssm.liquid.pb_coefficients_tilde`) and share the Cauchy denominators of the
        S4 kernel. Otherwise ``(self.kernel(L), None)``.
        """
        if self.variant == "official" or self.kind != "pb" or self.kernel_method != "dplr" or self.c_param != "tilde":
            return self.kernel(L), None
        Lk = self.kernel_length(L)
        Lambda, P, B, C, dt = self.stored_parameters()
        K, coef = liquid.pb_coefficients_tilde(Lambda, P, B, C, dt, self.order, Lk, backend=self.cauchy_backend,
                                               with_kernel=True, taps=self._taps())
        return K[..., :L], coef

    def _taps(self) -> str:
        """How the PB coefficients are read off ``C̃``: by order (fused) or two columns per order (reference)."""
        return "auto" if self.liquid_impl == "fused" else "two-columns"

    def pb_coefficients(self) -> torch.Tensor:
        """PB coefficients ``C B̄^p`` ``(ch, H, order - 1)`` of the paper variant, Eq. (16).

        From ``C`` (:func:`liquidssm.liquid.pb_coefficients`) or, with a learned ``C̃`` and
        ``kernel_method="dplr"``, from ``C̃`` without a dense solve
        (:func:`liquidssm.liquid.pb_coefficients_tilde`); ``kernel_method="dense"`` recovers ``C``
        (the oracle).
        """
        if self.c_is_tilde and self.kernel_method == "dplr":
            Lambda, P, B, C, dt = self.stored_parameters()
            return liquid.pb_coefficients_tilde(Lambda, P, B, C, dt, self.order, int(self.l_max),
                                                backend=self.cauchy_backend, taps=self._taps())
        Lambda, P, B, C, dt = self.ssm_parameters()
        return liquid.pb_coefficients(Lambda, P, B, C, dt, self.order, method=self.kernel_method)

    def kb_kernels(self, L: int, L_tilde: int) -> torch.Tensor:
        """KB kernels ``C Ā^ℓ B̄^p`` for ``ℓ < L̃`` (zero beyond), ``(ch, H, order - 1, L)``; Prop. 1.

        With a learned ``C̃`` the kernels are computed at ``l_max`` from ``C̃`` and cut to ``L̃``
        (``kernel_method="dense"``: from the recovered ``C``, the oracle).
        """
        if self.c_param == "tilde" and self.kernel_method == "dplr":
            Lk = self.kernel_length(L)
            Lambda, P, B, C, dt = self.stored_parameters()
            K = liquid.kb_kernel_dplr(Lambda, P, B, C, dt, Lk, self.order, backend=self.cauchy_backend,
                                      c_is_tilde=True)[..., :L_tilde]
            return F.pad(K, (0, L - L_tilde))
        self.kernel_length(L)
        Lambda, P, B, C, dt = self.ssm_parameters()
        return liquid.kb_kernel(Lambda, P, B, C, dt, L, self.order, L_tilde=L_tilde, method=self.kernel_method,
                                backend=self.cauchy_backend)

    def _guard_liquid(self, u: torch.Tensor) -> None:
        """Memory guard of the paper variant's ``(B, H, order - 1, 2L)`` liquid terms of ``u (B, H, L)``."""
        copies = 3 * (2 if self.bidirectional else 1)
        liquid.guard_orders(tuple(u.shape[:-1]), self.order - 1, 2 * u.shape[-1], u.dtype, copies, "LiquidS4Layer",
                            u.device)

    def conv(self, u: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`S4Layer.conv` with the liquid terms; a too-large ``order`` is refused before any kernel is built."""
        if self.variant == "paper":
            self._guard_liquid(u)
        return super().conv(u, lengths)

    def liquid_terms(self, u: torch.Tensor, extra: Any = None) -> tuple[list[torch.Tensor] | None, torch.Tensor | None]:
        """Liquid terms of ``u (B, H, L)``: (spectra per direction, pointwise term); Prop. 1, Eq. (16).

        Chapter ``liquid/05_liquid_s4_layer``. Paper variant, KB: the ``2L``-point spectra of
        ``Σ_p K^(p) * c^(p)`` per direction, added to the S4 spectrum by :meth:`S4Layer.conv`; PB:
        the same sum, a moving window sum in time, returned as the pointwise ``(B, H, L)`` term
        (the backward direction folded like the S4 kernel's), so it costs no FFT; ``extra`` is the
        PB coefficients from :meth:`conv_kernel` (else computed here). Official variant: a
        pointwise ``(B, H, L)`` term (:meth:`official_terms`).
        """
        if self.variant == "official":
            return None, self.official_terms(u)
        L = u.shape[-1]
        n = 2 * L
        Lt = self._L_tilde(L)
        dirs = [u, u.flip(-1)] if self.bidirectional else [u]
        self._guard_liquid(u)
        if self.kind == "pb":
            # PB is a moving sum in time: added after the inverse FFT (no extra spectrum to transform)
            coef = self.pb_coefficients() if extra is None else extra  # (ch, H, order-1)
            term = liquid.pb_term if self.liquid_impl == "fused" else liquid.pb_term_reference
            sums = [term(x, coef[d], Lt) for d, x in enumerate(dirs)]  # (B, H, L)
            if self.bidirectional:  # the backward direction runs in reversed time: the S4 fold
                sums[0] = sums[0] + _anticausal_fold(sums[1])
            return None, sums[0]
        corr = [torch.stack([liquid.consecutive_products(x, p) for p in range(2, self.order + 1)], -2) for x in dirs]
        K = self.kb_kernels(L, Lt)  # (ch, H, order-1, L)
        return [(torch.fft.rfft(c, n=n) * torch.fft.rfft(K[d], n=n)).sum(-2) for d, c in enumerate(corr)], None

    def official_terms(self, u: torch.Tensor) -> torch.Tensor:
        """Released code's liquid term of ``u (B, H, L)``, added pointwise; ``S4.forward`` in ``src/models/sequence/ss/s4.py`` of raminmh/liquid-s4@06031dc.

        Chapter ``appendix/10_paper_vs_code_liquid_s4``. Frozen initial ``B̄``, ``C``
        (:meth:`official_frozen`); PB: ``Σ_p κ_p ū^(p)`` (the backward channel on the un-flipped
        products); KB: :func:`liquidssm.liquid.official_kb_term`. Returns ``(B, H, L)``.
        """
        corr = liquid.official_correlations(u, self.order, allcombs=self.allcombs, lcontract=self.lcontract)
        B_bar, C0, S = self.official_frozen()
        if self.kind == "kb":
            K = self.kernel(u.shape[-1])[0]
            return liquid.official_kb_term(corr, K, S.to(u.dtype), fft_bug=self.fft_bug)
        kappa = liquid.official_pb_coefficients(B_bar, C0, self.order).to(u.dtype)  # (ch, H, order-1)
        y = liquid.official_pb_term(corr, kappa[0])
        if self.bidirectional:  # backward channel uses the un-flipped products
            y = y + liquid.official_pb_term(corr.flip(-1), kappa[1])
        return y


def _norm_layer(norm: str, H: int) -> nn.Module:
    """``BatchNorm1d(H)`` (over batch × length per feature) or ``LayerNorm(H)``."""
    return nn.BatchNorm1d(H) if norm == "batch" else nn.LayerNorm(H)


class ResidualBlock(nn.Module):
    """Residual block around a layer, pre-norm ``x + Drop(layer(Norm(x)))`` or post-norm ``Norm(x + Drop(layer(x)))``.

    Chapter ``liquid/05_liquid_s4_layer``. ``norm``: ``"batch"`` (BatchNorm over batch × length per
    feature, padded positions included like the released code) or ``"layer"``. ``(B, L, H) → (B, L, H)``.
    """

    def __init__(self, layer: nn.Module, H: int, *, norm: str = "batch", prenorm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        check_choice(norm, "norm", ("batch", "layer"))
        self.layer, self.prenorm, self.norm_kind = layer, bool(prenorm), norm
        self.norm = _norm_layer(norm, H)
        self.drop = _TiedDropout(dropout)

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_kind == "batch":
            _check_batch_norm(x, self.norm)
            return self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x)

    def _drop(self, y: torch.Tensor) -> torch.Tensor:
        return self.drop(y.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.prenorm:
            return x + self._drop(self.layer(self._norm(x), lengths))
        return self._norm(x + self._drop(self.layer(x, lengths)))


def _core_layer(config: SequenceModelConfig) -> S4Layer:
    """The core layer of one residual block of :class:`SequenceModel`, from its configuration.

    Chapter ``liquid/05_liquid_s4_layer``. ``layer="s4"`` gives an :class:`S4Layer`,
    ``layer="liquid"`` a :class:`LiquidS4Layer` with ``liquid_kind``, ``liquid_order``,
    ``liquid_window`` as ``kind``, ``order``, ``L_tilde``; width ``d_model``, state size
    ``d_state``; ``c_param`` and ``l_max`` as the layer's. The layer's dropout is the model's ``dropout``.
    """
    c = config
    s4_options = dict(dt_min=c.dt_min, dt_max=c.dt_max, bidirectional=c.bidirectional, dropout=c.dropout,
                      tie_dropout=c.tie_dropout, kernel_method=c.kernel_method,
                      cauchy_backend=c.cauchy_backend, n_ssm=c.n_ssm, c_param=c.c_param, l_max=c.l_max)
    if c.layer == "s4":
        return S4Layer(c.d_model, c.d_state, **s4_options)
    return LiquidS4Layer(c.d_model, c.d_state, kind=c.liquid_kind, order=c.liquid_order, variant=c.variant,
                         L_tilde=c.liquid_window, allcombs=c.allcombs, lcontract=c.lcontract,
                         fft_bug=c.fft_bug, **s4_options)


def _guard_parameters(c: SequenceModelConfig) -> None:
    """Memory guard of a model's float32 parameters (a mistyped ``n_tokens`` or ``d_model``)."""
    H, N = c.d_model, c.d_state
    n = (c.n_tokens or c.d_input or 0) * H + c.n_blocks * (2 * H * H + 6 * H * N) + 4 * H * (H + c.d_output)
    check_memory(4 * n, "SequenceModel: the parameters", f"n_tokens/d_input, d_model = {H}, d_state = {N}, "
                 f"n_blocks = {c.n_blocks}")


class SequenceModel(nn.Module):
    r"""Encoder → residual Liquid-S4/S4 blocks → pooling → head (§4, App. S2). Chapter ``liquid/05_liquid_s4_layer``.

    Built from one frozen :class:`liquidssm.configs.SequenceModelConfig` (kept as ``self.config``):

    * encoder: ``nn.Embedding(n_tokens, d_model)`` or ``nn.Linear(d_input, d_model)``;
    * ``n_blocks`` :class:`ResidualBlock` s around an S4 or Liquid-S4 layer (``norm``, ``prenorm``,
      ``dropout``; a final norm after the last block when ``prenorm``);
    * ``pool``: ``"mean"`` (over valid positions) or ``"last"`` (last valid position);
    * ``head``: ``"classification"``, ``"regression"`` (a linear read-out to ``d_output``) or
      ``"retrieval"`` (AAN: the batch holds two stacked document batches ``(2B, L)``; features
      ``[a, b, a − b, a ⊙ b]`` → Linear(4H → H) → GELU → Linear(H → d_output)).

    ``forward(x, lengths=None)``: ``x`` is ``(B, L)`` int tokens (embedding) or ``(B, L, d_input)``
    (linear); returns ``(B, d_output)`` (``(B/2, d_output)`` for retrieval).
    """

    def __init__(self, config: SequenceModelConfig) -> None:
        super().__init__()
        if not isinstance(config, SequenceModelConfig):
            raise TypeError(f"config: expected a liquidssm.configs.SequenceModelConfig, got {type(config).__name__}")
        self.config = config
        H = config.d_model
        _guard_parameters(config)
        self.pool, self.head_kind, self.norm_kind = config.pool, config.head, config.norm
        self.embedding = config.n_tokens is not None
        self.encoder = nn.Embedding(config.n_tokens, H) if self.embedding else nn.Linear(config.d_input, H)
        self.blocks = nn.ModuleList(
            ResidualBlock(_core_layer(config), H, norm=config.norm, prenorm=config.prenorm, dropout=config.dropout)
            for _ in range(config.n_blocks)
        )
        for block in self.blocks:  # the model validates its input once (:meth:`check_input`)
            block.layer.check_inputs = False
        self.final_norm = _norm_layer(config.norm, H) if config.prenorm else None
        if config.head == "retrieval":
            self.decoder = nn.Sequential(nn.Linear(4 * H, H), nn.GELU(), nn.Linear(H, config.d_output))
        else:
            self.decoder = nn.Linear(H, config.d_output)

    def check_input(self, x: object) -> torch.Tensor:
        """Validate a model input: tokens ``(B, L)`` in ``[0, n_tokens)`` or finite ``(B, L, d_input)``.

        Values of the model's own dtype (a float64 batch for a float32 model is refused with the
        fix, instead of failing inside the encoder); ``B >= 1``, ``L >= 1``.
        """
        c = self.config
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if not self.embedding:
            _check_sequences(x, "x", "(B, L, d_input)", ("d_input", c.d_input))
            return check_module_dtype(x, "x", self.encoder.weight.dtype, "model")
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"x: the embedding encoder expects integer tokens (B, L), got {x.dtype}")
        check_ndim(x, "x", 2, "(B, L)")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"x: expected a non-empty batch (B, L) with B >= 1 and L >= 1, got shape {tuple(x.shape)}")
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= c.n_tokens:
            raise ValueError(f"x: expected token ids in [0, n_tokens = {c.n_tokens}), got values in [{lo}, {hi}]; "
                             "is the vocabulary of the data larger than the configured n_tokens?")
        return x

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence features ``(B, L, H)`` before pooling (the input is checked by :meth:`check_input`)."""
        self.check_input(x)
        h = self.encoder(x)
        for block in self.blocks:
            h = block(h, lengths)
        if self.final_norm is not None:
            _check_batch_norm(h, self.final_norm)
            h = self.final_norm(h.transpose(1, 2)).transpose(1, 2) if self.norm_kind == "batch" else self.final_norm(h)
        return h

    def pooled(self, h: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Pool ``(B, L, H) → (B, H)`` over valid positions."""
        Bsz, L, _ = h.shape
        mask = _mask(lengths, Bsz, L, h.device)
        if self.pool == "mean":
            if mask is None:
                return h.mean(1)
            m = mask[..., None].to(h.dtype)
            return (h * m).sum(1) / m.sum(1)
        if mask is None:
            return h[:, -1]
        return h[torch.arange(Bsz, device=h.device), torch.as_tensor(lengths, device=h.device) - 1]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.head_kind == "retrieval" and isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[0] % 2:
            raise ValueError(f"x: retrieval expects two stacked document batches (2B, ...), got batch {x.shape[0]}")
        z = self.pooled(self.features(x, lengths), lengths)
        if self.head_kind == "retrieval":
            a, b = z.chunk(2, dim=0)
            z = torch.cat([a, b, a - b, a * b], dim=-1)
        return self.decoder(z)


def ssm_param_groups(model: nn.Module, lr: float, ssm_lr: float | None, weight_decay: float,
                     dt_lr: float | None = None) -> list[dict]:
    """AdamW parameter groups: SSM parameters (Λ, P, B, Δ) with ``ssm_lr`` and no weight decay.

    Chapter ``liquid/05_liquid_s4_layer`` (``SequenceLightningModule.configure_optimizers`` in ``train.py`` of raminmh/liquid-s4@06031dc). ``ssm_lr=None`` means ``lr``.
    ``dt_lr``: Δ's (``log_dt``) own learning rate, in a third group with no weight decay (the
    released configs' ``lr: {dt: null, ...}`` give Δ the global rate); ``None`` keeps Δ in the SSM
    group. Everything else (C, D, linear, norm, embedding) gets ``lr`` and ``weight_decay``, like
    the released code. Returns ``[{"params", "lr", "weight_decay"}, ...]`` (empty groups omitted).
    """
    ssm_params, dt_params, other = [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "log_dt" and dt_lr is not None:
            dt_params.append(param)
        else:
            (ssm_params if leaf in SSM_PARAM_NAMES else other).append(param)
    groups = [{"params": other, "lr": lr, "weight_decay": weight_decay},
              {"params": ssm_params, "lr": lr if ssm_lr is None else ssm_lr, "weight_decay": 0.0},
              {"params": dt_params, "lr": dt_lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter entries of ``model``; complex values stored as 2 reals count 2."""
    params: Iterable[nn.Parameter] = model.parameters()
    return sum(p.numel() for p in params if p.requires_grad or not trainable_only)

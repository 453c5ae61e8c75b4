"""Does "liquid" help? Two small trainable comparisons; chapter ``lrcssm/90_bridge_liquid_s4``.

Both papers motivate their input-dependent dynamics by *input correlations*: Liquid-S4 adds kernels
of products of inputs (Liquid-S4 Eq. 11-16), LrcSSM lets the input change the transition of a
non-linear cell (LrcSSM Eq. 8-14). The toy task here has nothing but such a correlation to learn:

* :func:`correlation_task` -- the label is the sign of the lag-``lag`` correlation of the input: of
  the sample autocorrelation of white noise (a weak signal), or of the coefficient of an AR process
  (a strong one). The classes are balanced, and no linear function of the inputs carries any
  information about the label.
* :func:`train_classifier` -- a plain Adam loop (full-batch evaluation, fixed number of steps) that
  returns the test accuracy and the wall time; :func:`compare` runs it for several models and seeds.

The functions are small on purpose: each comparison runs on a laptop CPU in well under a minute,
and the chapter reports whatever it measures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from liquidssm._checks import check_int

__all__ = ["correlation_task", "accuracy", "train_classifier", "compare"]


def correlation_task(n: int, L: int, seed: int, *, a: float = 0.0, lag: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A balanced binary task whose only signal is the lag-``lag`` correlation of the input.

    * ``a = 0`` (default): ``u_t ~ N(0, 1)`` i.i.d. and ``y = 1`` if the sample autocorrelation
      ``sum_{t >= lag} u_t u_{t-lag}`` is positive. The label is a noisy statistic of products of
      inputs -- exactly what the order-2 liquid terms of Liquid-S4 (Eq. 11) are.
    * ``0 < a < 1``: ``y ~ Bernoulli(1/2)`` and ``u`` is the stationary AR process
      ``u_t = ±a u_{t-lag} + sqrt(1 - a^2) e_t`` with sign ``+`` for ``y = 1``: a strong, population-level
      correlation.

    In both cases the label is invariant under ``u -> -u``, so no linear function of the inputs carries
    information about it. Chapter ``lrcssm/90_bridge_liquid_s4``.

    Returns:
        ``u`` of shape ``(n, L, 1)`` (float32) and ``y`` of shape ``(n,)`` (int64).
    """
    n = check_int(n, "n", minimum=1)
    L = check_int(L, "L", minimum=2)
    lag = check_int(lag, "lag", minimum=1, maximum=L - 1)
    if not 0 <= a < 1:
        raise ValueError(f"a: expected 0 <= a < 1 (0: white noise), got {a!r}")
    g = torch.Generator().manual_seed(int(seed))
    if a == 0:
        u = torch.randn(n, L, generator=g, dtype=torch.float64)
        y = ((u[:, lag:] * u[:, :-lag]).sum(-1) > 0).long()
        return u.float()[..., None], y
    y = torch.randint(0, 2, (n,), generator=g)
    coef = torch.where(y == 1, a, -a).to(torch.float64)
    e = torch.randn(n, L, generator=g, dtype=torch.float64)
    u = torch.empty(n, L, dtype=torch.float64)
    u[:, :lag] = e[:, :lag]
    for t in range(lag, L):
        u[:, t] = coef * u[:, t - lag] + (1 - a * a) ** 0.5 * e[:, t]
    return u.float()[..., None], y


def accuracy(model: nn.Module, u: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``(u (n, L, 1), y (n,))`` that ``model`` (logits ``(n, 2)``) classifies correctly, in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        acc = float((model(u).argmax(-1) == y).double().mean())
    model.train(was_training)
    return acc


def train_classifier(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                     test: tuple[torch.Tensor, torch.Tensor], *, steps: int, lr: float,
                     batch_size: int, seed: int) -> dict[str, float]:
    """Train ``model`` with Adam and cross-entropy for ``steps`` mini-batches; chapter ``lrcssm/90_bridge_liquid_s4``.

    Mini-batches are drawn with a generator seeded by ``seed`` (the model's initialisation is the
    caller's). Returns ``{"test_accuracy", "train_accuracy", "seconds"}``.
    """
    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if not lr > 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
    u_tr, y_tr = train
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(y_tr), (batch_size,), generator=g)
        loss = nn.functional.cross_entropy(model(u_tr[idx]), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return {"test_accuracy": accuracy(model, *test), "train_accuracy": accuracy(model, u_tr, y_tr),
            "seconds": seconds}


def compare(factories: Mapping[str, Callable[[], nn.Module]], seeds: Sequence[int], *, n_train: int,
            n_test: int, L: int, steps: int, lr: float, batch_size: int, a: float = 0.0,
            lag: int = 1) -> list[dict[str, object]]:
    """Train every model of ``factories`` on :func:`correlation_task` once per seed; chapter ``lrcssm/90_bridge_liquid_s4``.

    For each seed the data (train and test), the model initialisation (``torch.manual_seed``) and
    the mini-batch order are fixed by that seed, and identical across the models compared.

    Returns:
        one dict per (model, seed): ``model``, ``seed``, ``parameters`` and the keys of
        :func:`train_classifier`.
    """
    rows: list[dict[str, object]] = []
    for seed in seeds:
        train = correlation_task(n_train, L, 1000 + seed, a=a, lag=lag)
        test = correlation_task(n_test, L, 2000 + seed, a=a, lag=lag)
        for name, factory in factories.items():
            torch.manual_seed(seed)
            model = factory()
            result = train_classifier(model, train, test, steps=steps, lr=lr, batch_size=batch_size, seed=seed)
            rows.append({"model": name, "seed": seed,
                         "parameters": sum(p.numel() for p in model.parameters()), **result})
    return rows

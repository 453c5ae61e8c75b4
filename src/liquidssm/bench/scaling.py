"""Scaling exponents of measured costs: fit ``cost ≈ c · size^k`` in log-log space.

Used by the performance chapter (``book/reproductions/30_performance``) to summarise how time and
memory grow with the sequence length: ``k ≈ 1`` is linear (the S4 kernel is ``O(L log L)``, which
reads as ``k`` slightly above 1 over a decade), ``k ≈ 2`` quadratic. Only the exponent carries over
to other machines; the prefactor is this machine's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PowerLaw", "fit_power_law"]


@dataclass(frozen=True)
class PowerLaw:
    """``cost ≈ prefactor · size^exponent``, fitted by least squares on ``log cost`` vs ``log size``.

    ``r2`` is the coefficient of determination of that straight-line fit (1 = a perfect power law).
    """

    exponent: float
    prefactor: float
    r2: float

    def __call__(self, size: float) -> float:
        """The fitted cost at ``size``."""
        return self.prefactor * size**self.exponent


def _positive_finite(values: Sequence[float], name: str) -> list[float]:
    out = []
    for i, v in enumerate(values):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"{name}[{i}]: expected a number, got {type(v).__name__}") from None
        if not math.isfinite(f) or f <= 0:
            raise ValueError(f"{name}[{i}]: expected a finite number > 0 (a log-log fit), got {v!r}")
        out.append(f)
    return out


def fit_power_law(sizes: Sequence[float], costs: Sequence[float]) -> PowerLaw:
    """Fit ``costs ≈ c · sizes^k``; returns :class:`PowerLaw` ``(k, c, r2)``.

    Needs at least two distinct sizes; every size and cost must be finite and positive (a NaN from
    a skipped measurement is refused, naming its position, rather than silently dropped).
    """
    xs = [math.log(s) for s in _positive_finite(sizes, "sizes")]
    ys = [math.log(c) for c in _positive_finite(costs, "costs")]
    if len(xs) != len(ys):
        raise ValueError(f"sizes and costs: expected the same length, got {len(xs)} and {len(ys)}")
    if len(set(xs)) < 2:
        raise ValueError(f"sizes: expected at least two distinct sizes for a fit, got {list(sizes)}")
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    k = sxy / sxx
    b = my - k * mx
    ss_res = sum((y - (b + k * x)) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return PowerLaw(exponent=k, prefactor=math.exp(b), r2=r2)

"""Power-law fits of the performance chapter (liquidssm.bench.scaling)."""

import math

import numpy as np
import pytest

from liquidssm.bench.scaling import PowerLaw, fit_power_law


@pytest.mark.parametrize("k", [0.5, 1.0, 2.0])
def test_exact_power_law_is_recovered(k):
    sizes = [256, 1024, 4096, 16384]
    fit = fit_power_law(sizes, [3.0 * s**k for s in sizes])
    assert fit.exponent == pytest.approx(k, abs=1e-12)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-10)
    assert fit.r2 == pytest.approx(1.0)
    assert fit(100.0) == pytest.approx(3.0 * 100.0**k)


def test_matches_numpy_polyfit_on_noisy_data():
    rng = np.random.default_rng(0)
    sizes = np.array([100, 300, 1000, 3000, 10000], dtype=float)
    costs = 0.01 * sizes * np.log(sizes) * np.exp(rng.normal(0, 0.05, sizes.size))
    slope, intercept = np.polyfit(np.log(sizes), np.log(costs), 1)
    fit = fit_power_law(sizes.tolist(), costs.tolist())
    assert fit.exponent == pytest.approx(slope, rel=1e-10)
    assert fit.prefactor == pytest.approx(math.exp(intercept), rel=1e-10)
    assert 1.0 < fit.exponent < 1.3  # L log L over two decades
    assert 0.9 < fit.r2 < 1.0


def test_bad_input_is_refused_with_its_position():
    with pytest.raises(ValueError, match=r"costs\[1\]: expected a finite number > 0"):
        fit_power_law([1, 2, 3], [1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match=r"sizes\[0\]"):
        fit_power_law([0, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        fit_power_law([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="two distinct sizes"):
        fit_power_law([4, 4], [1.0, 2.0])
    with pytest.raises(TypeError, match=r"sizes\[1\]: expected a number, got str"):
        fit_power_law([1, "x"], [1.0, 2.0])


def test_powerlaw_is_a_frozen_value():
    fit = PowerLaw(1.0, 2.0, 1.0)
    with pytest.raises(AttributeError):
        fit.exponent = 2.0  # type: ignore[misc]

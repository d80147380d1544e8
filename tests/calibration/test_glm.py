"""Poisson GLM rates and the exponential fill-curve fit (calibration.glm)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.glm import poisson_log_linear, poisson_rates


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5000), st.floats(0.5, 1e5, allow_nan=False)),
        min_size=1,
        max_size=12,
    )
)
def test_poisson_rates_are_count_over_exposure_with_sqrt_count_errors(cells):
    count = np.array([c for c, _ in cells], dtype=float)
    expo = np.array([e for _, e in cells])
    r = poisson_rates(count, expo)
    np.testing.assert_allclose(r.rate, count / expo, rtol=1e-6, atol=0)
    seen = count > 0
    np.testing.assert_allclose(r.se[seen], np.sqrt(count[seen]) / expo[seen], rtol=1e-5)
    np.testing.assert_allclose(r.se[~seen], 1.0 / expo[~seen])


def test_cells_without_exposure_have_no_rate():
    r = poisson_rates(np.array([3.0, 0.0]), np.array([10.0, 0.0]))
    assert r.rate[0] == pytest.approx(0.3)
    assert np.isnan(r.rate[1]) and np.isnan(r.se[1])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        poisson_rates(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match=">= 0"):
        poisson_rates(np.array([-1.0]), np.array([1.0]))


def test_log_linear_recovers_A_and_k_from_poisson_counts():
    rng = np.random.default_rng(7)
    A, k = 0.6, 1.3
    delta = np.arange(0.5, 6.0, 0.5)
    expo = np.full(delta.size, 20_000.0)
    counts = rng.poisson(A * np.exp(-k * delta) * expo)
    fit = poisson_log_linear(delta, counts, expo)
    assert abs(fit.A - A) < 3 * fit.se_A
    assert abs(fit.k - k) < 3 * fit.se_k
    assert fit.se_A > 0 and fit.se_k > 0
    # the Poisson law holds, so the Pearson dispersion is near 1
    assert 0.3 < fit.pearson_chi2_per_df < 3.0

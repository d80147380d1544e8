"""Propagator of market-order signs (calibration/impact.py): recovery on synthetic prices.

Signs with memory (a two-state Markov chain, P(same sign) = 0.8) or independent; the mid just
before each market order follows ``m_{n+1} = m_n + sum_k g_k eps_{n-k} + noise`` with a known
kernel; the fit must recover every increment (and the power law's Gamma_0, beta) within 3 SE.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from calibration.impact import (
    ImpactParams,
    fit_propagator_arrays,
    lag_bins,
    simulate_propagator_mid,
)


def markov_signs(n: int, stay: float, rng: np.random.Generator) -> np.ndarray:
    flips = rng.random(n) > stay
    flips[0] = rng.random() < 0.5
    out: np.ndarray = np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0)
    return out


def binned_params(g: np.ndarray, max_lag: int) -> ImpactParams:
    bins = lag_bins(max_lag)
    return ImpactParams(
        lag_bins=[[lo, hi] for lo, hi in bins],
        increments=g.tolist(),
        propagator_lags=[hi + 1 for _, hi in bins],
        propagator=np.zeros(len(bins)).tolist(),
        gamma0=1.0,
        beta=0.0,
        response_horizons=[],
        response=[],
        half_spread=0.0,
        noise_sd=0.0,
    )


def test_lag_bins_cover_every_lag_once():
    bins = lag_bins(128)
    assert bins[:5] == [(0, 0), (1, 1), (2, 2), (3, 4), (5, 8)]
    lags = np.concatenate([np.arange(lo, hi + 1) for lo, hi in bins])
    np.testing.assert_array_equal(lags, np.arange(129))


def test_binned_kernel_is_recovered_within_three_se():
    rng = np.random.default_rng(7)
    max_lag = 32
    g = np.array([2.0, -0.4, -0.3, -0.15, -0.08, -0.04, -0.02])  # bins of lag_bins(32)
    eps = markov_signs(40_000, 0.8, rng)
    mid = simulate_propagator_mid(eps, binned_params(g, max_lag), noise=rng.normal(0, 1, 40_000))
    fit = fit_propagator_arrays(eps, mid, max_lag=max_lag)
    z = (np.array(fit.params.increments) - g) / np.array(fit.std_errors["increments"])
    assert np.all(np.abs(z) < 3), z
    assert (z**2).sum() < stats.chi2.ppf(0.999, z.size), z
    # G(l) = sum_{k<l} g_k at the bins' ends
    widths = [hi - lo + 1 for lo, hi in lag_bins(max_lag)]
    G_true = np.cumsum(g * np.array(widths))
    zG = (np.array(fit.params.propagator) - G_true) / np.array(fit.std_errors["propagator"])
    assert np.all(np.abs(zG) < 3), zG
    assert abs(fit.params.noise_sd - 1.0) < 3 * fit.std_errors["noise_sd"]


def test_power_law_kernel_is_recovered_within_three_se():
    rng = np.random.default_rng(3)
    max_lag, gamma0, beta, n = 128, 1.5, 0.3, 60_000
    G = gamma0 * np.arange(1, max_lag + 2, dtype=float) ** (-beta)  # G(1..max_lag+1)
    g = np.diff(np.concatenate([[0.0], G]))  # g_k = G(k+1) - G(k), g_0 = G(1)
    eps = np.where(rng.random(n) < 0.5, 1.0, -1.0)  # independent signs: bins sum exactly
    r = np.convolve(eps, g)[: n - 1] + rng.normal(0, 1, n - 1)
    mid = np.concatenate([[0.0], np.cumsum(r)])
    fit = fit_propagator_arrays(eps, mid, max_lag=max_lag)
    se = fit.std_errors
    assert abs(fit.params.gamma0 - gamma0) < 3 * se["gamma0"], (fit.params.gamma0, se)
    assert abs(fit.params.beta - beta) < 3 * se["beta"], (fit.params.beta, se)
    assert fit.chi2 < stats.chi2.ppf(0.999, fit.chi2_df)

"""The realistic order flow on the GOOG sample day (calibration/realistic.py).

Sign memory: the market-order Hawkes process fitted on GOOG, simulated as long as the day, must
give a positive lag-1 sign autocorrelation within 0.1 of the data's (0.634 in the
``calibration.sample.prepare`` view, executions of one market order merged). Why 0.1: it is the
calibration report's tolerance for sign autocorrelations; the
simulation noise of one day's lag-1 ACF is about 0.02 (SD over paths), so a model whose ACF
differs by less than 0.1 passes, one that has no sign memory (the CST market's -0.01) fails by
far. The fitted process (three exponentials) gives about 0.58 on this day.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

from calibration.hawkes import fit_hawkes, sign_acf, simulate_hawkes
from calibration.realistic import (
    MARKET_ORDER_TYPES,
    RealisticFlowParams,
    calibrate_realistic,
    calibrate_realistic_frames,
    market_order_stream,
    sample_duration,
)
from calibration.sample import prepare
from data import load_lobster
from data.samples import data_file

GOOG = "lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
SIGN_TOLERANCE = 0.1
"""Largest |model - data| of the sign ACF (the validation's tolerance for sign autocorrelations)."""

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def goog():
    return load_lobster(data_file(GOOG))


def test_market_order_hawkes_reproduces_goog_sign_memory(goog):
    sample = prepare(goog.events, goog.book, goog.spec)
    t, d = market_order_stream(sample)
    T = sample_duration(sample)
    data = sign_acf(np.where(d == 0, 1.0, -1.0), (1,))[1]
    assert data == pytest.approx(0.634, abs=0.01)
    fit = fit_hawkes(t, d, T, MARKET_ORDER_TYPES, n_exponentials=3)
    assert fit.converged
    # stationary with room to spare: 3 SE below 1
    assert fit.spectral_radius + 3 * fit.spectral_radius_se < 1
    rng = np.random.default_rng(0)
    model = []
    for _ in range(2):
        _, ds = simulate_hawkes(fit.params, T, rng, burn_in=600.0)
        model.append(sign_acf(np.where(ds == 0, 1.0, -1.0), (1,))[1])
    assert np.mean(model) > 0.3
    assert abs(np.mean(model) - data) < SIGN_TOLERANCE, (model, data)


def test_calibration_of_a_slice_runs_and_round_trips(goog):
    n = 15_000  # the first ~40 min of the day (LOBSTER rows: events and book aligned)
    cal = calibrate_realistic_frames(
        goog.events.iloc[:n],
        goog.book.iloc[:n],
        goog.spec,
        n_exponentials=1,
        mo_exponentials=1,
        n_buckets=3,
        max_lag=8,
        check_paths=1,
    )
    p = cal.params
    assert p.spread.grid_ticks > 1  # a small-tick book gets a coarse grid
    assert p.hawkes.spectral_radius < 1 and p.market_order_hawkes.spectral_radius < 1
    assert p.impact.propagator[0] > 0  # a buy pushes the mid up
    assert all(np.isfinite(cal.std_errors["market_order_hawkes"]["baseline"]))
    again = RealisticFlowParams.model_validate(yaml.safe_load(yaml.safe_dump(p.to_dict())))
    assert again == p
    expected = {"sign_acf_model", "gap_model_s", "response_model", "volatility_model"}
    assert set(cal.checks) >= expected | {"spread_share_model"}


@pytest.mark.slow
def test_goog_day_calibrates_in_under_a_minute(goog):
    t0 = time.perf_counter()
    cal = calibrate_realistic(goog, check_paths=0)
    elapsed = time.perf_counter() - t0
    print(f"GOOG realistic calibration: {elapsed:.1f} s {cal.timings}")
    assert elapsed < 60
    assert cal.diagnostics["hawkes"]["converged"]
    assert cal.diagnostics["market_order_hawkes"]["converged"]

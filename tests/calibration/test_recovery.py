"""Parameter recovery: simulate the order-book market with known CST parameters, calibrate it.

The simulated market is :func:`envs.lob.events.simulate_events` (Cont, Stoikov & Talreja 2010
with the published Tokyo parameters, Table 2). Every lambda(i), theta(i) and mu must come back
within 3 standard errors. Why 3 and not 2: the test compares 21 estimates at once; for an
unbiased estimator with Gaussian errors, all 21 fall within 2 SE with probability
0.954^21 = 0.37 only, within 3 SE with probability 0.997^21 = 0.945. The z-scores must also
pass jointly: sum z^2 below the 0.999 quantile of chi2(21).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from calibration.calibrate import calibrate_frames
from calibration.params import TOKYO_CST, MarketParams
from data.schema import InstrumentSpec
from envs.lob.events import simulate_events

ROOT = Path(__file__).resolve().parents[2]
SPEC = InstrumentSpec("SIM", tick_size=1.0, lot_size=1.0, price_scale=1.0, timezone="UTC")


def z_scores(params: MarketParams, truth: MarketParams, se: dict) -> np.ndarray:
    z_lam = (np.array(params.limit_rates) - truth.limit_rates) / np.array(se["limit_rates"])
    z_theta = (np.array(params.cancel_rates) - truth.cancel_rates) / np.array(se["cancel_rates"])
    z_mu = (params.market_rate - truth.market_rate) / se["market_rate"]
    return np.concatenate([z_lam, z_theta, [z_mu]])


def check_recovery(duration: float, seed: int) -> None:
    events, book = simulate_events(TOKYO_CST, duration, seed=seed)
    cal = calibrate_frames(events, book, SPEC, lot=1.0, reference="auto")
    assert cal.settings["reference"] == "opposite"  # a one-tick market
    assert cal.params.size_distribution == "unit"
    assert cal.repairs == []
    z = z_scores(cal.params, TOKYO_CST, cal.std_errors)
    assert np.all(np.abs(z) < 3), z
    assert (z**2).sum() < stats.chi2.ppf(0.999, z.size), z
    # the summaries: the mid's volatility is about one tick per sqrt(second) (params.py)
    assert 0.8 < cal.params.mid_volatility < 1.2
    assert cal.params.fill_curve.k > 0


def test_cst_parameters_are_recovered_within_three_standard_errors():
    check_recovery(duration=2_000.0, seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cst_recovery_on_long_runs(seed):
    check_recovery(duration=20_000.0, seed=seed)


def test_same_seed_same_calibration():
    runs = [
        calibrate_frames(*simulate_events(TOKYO_CST, 300.0, seed=5), SPEC, lot=1.0).to_dict()
        for _ in range(2)
    ]
    for d in runs:
        d.pop("timings_s")
    assert runs[0]["market"] == runs[1]["market"]
    assert runs[0]["std_errors"] == runs[1]["std_errors"]


def test_sized_orders_recover_theta_per_order():
    """With geometric sizes (mean 2 lots) a cancellation removes one ORDER: theta(i) is per
    order of the mean size, so it must come back unchanged from lots-based exposures."""
    truth = TOKYO_CST.model_copy(update={"size_distribution": "geometric", "size_mean": 2.0})
    events, book = simulate_events(truth, 2_000.0, seed=3)
    cal = calibrate_frames(events, book, SPEC, lot=1.0, reference="opposite")
    assert cal.params.size_distribution == "discrete"
    assert cal.params.mean_size == pytest.approx(2.0, abs=0.1)
    z = z_scores(cal.params, truth, cal.std_errors)
    # the empirical mean size enters theta's exposure; its own error (~1%) is not in theta's SE
    assert np.all(np.abs(z) < 4), z


def test_queue_reactive_intensities_are_recovered():
    """Huang, Lehalle & Rosenbaum (2015) Model I with the illustrative rates of
    configs/markets/queue_reactive_default.yaml: every (queue, size) cell with at least 100
    events must come back within 4 SE (some 70 cells are compared at once: the chance that a
    correct estimator puts one beyond 4 SE is 0.4%), and the cells jointly pass a chi-square
    test at 0.999. Empty queues (n = 0) are left out: an even spread does not show which side
    the empty first queue belongs to (calibration.intensities), so their rates are biased when
    the reference price moves (theta > 0). theta and theta_reinit are proxies, not tested."""
    truth = MarketParams.from_dict(
        yaml.safe_load((ROOT / "configs/markets/queue_reactive_default.yaml").read_text())
    )
    qr_true = truth.queue_reactive
    assert qr_true is not None
    events, book = simulate_events(truth, 20_000.0, seed=4)
    cal = calibrate_frames(events, book, SPEC, lot=1.0, reference="opposite", qr_levels=3)
    fit = cal.queue_reactive
    z_all = []
    for name, counts in (("limit_rates", "limit"), ("cancel_rates", "cancel")):
        est = np.array(fit[name])
        se = np.array(fit["std_errors"][name])
        n = np.array(fit["counts"][counts])
        ok = n >= 100
        ok[:, 0] = False
        z_all.append((est[ok] - np.array(getattr(qr_true, name))[ok]) / se[ok])
    n = np.array(fit["counts"]["market"])
    est, se = np.array(fit["market_rates"]), np.array(fit["std_errors"]["market_rates"])
    ok_m = n >= 100
    z_all.append((est[ok_m] - np.array(qr_true.market_rates)[ok_m]) / se[ok_m])
    z = np.concatenate(z_all)
    assert z.size >= 40
    assert np.all(np.abs(z) < 4), z
    assert (z**2).sum() < stats.chi2.ppf(0.999, z.size)

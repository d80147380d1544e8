"""The calibration CLI and the shipped markets; real-data runs on GOOG and NEXO/USDT."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.calibrate import Calibration, calibrate
from calibration.empirical import size_distribution
from calibration.fit import load_market_data, main
from calibration.params import MarketParams
from configs.schema import LOBMarketConfig
from data.samples import SAMPLES_DIR

ROOT = Path(__file__).resolve().parents[2]
MARKETS = sorted((ROOT / "configs" / "markets").glob("*.yaml"))
GOOG = "lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
AAPL_L1 = "lobster/AAPL_2012-06-21_34200000_57600000_message_1.csv.gz"
AAPL_TINY = "lobster/AAPL_first49s_L10/AAPL_2012-06-21_34200000_57600000_message_10.csv"
NEXO = ("binance_raw/spot_nexousdt_20240723.dat.gz", "binance_raw/spot_nexousdt_20240724.dat.gz")


def data_file(name: str) -> Path:
    """A file of the project's samples (``data/samples``)."""
    return SAMPLES_DIR / name


# ------------------------------------------------------------------ shipped markets
@pytest.mark.parametrize("path", MARKETS, ids=[p.name for p in MARKETS])
def test_every_market_file_is_an_lob_env_market(path):
    data = yaml.safe_load(path.read_text())
    params = MarketParams.from_dict(data)
    cfg = LOBMarketConfig(market=data)
    assert cfg.market == params


@pytest.mark.parametrize(
    "name", ["goog_2012-06-21.yaml", "nexo_usdt_2024-07-23.yaml", "aapl_2012-06-21.yaml"]
)
def test_shipped_calibrations_have_their_details_and_errors(name):
    market = MarketParams.from_dict(yaml.safe_load((ROOT / "configs/markets" / name).read_text()))
    details = yaml.safe_load((ROOT / "configs/markets/calibration" / name).read_text())
    assert MarketParams.from_dict(details["market"]) == market
    se = details["std_errors"]
    assert len(se["limit_rates"]) == len(se["cancel_rates"]) == market.n_levels
    assert all(s > 0 and np.isfinite(s) for s in se["limit_rates"] + se["cancel_rates"])
    assert len(details["data"]["files"][0]["sha256"]) == 64
    qr = MarketParams.from_dict(details["market_queue_reactive"])
    assert qr.model == "queue_reactive"


# ------------------------------------------------------------------ invariants
@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.01, 500.0, allow_nan=False), min_size=1, max_size=200))
def test_size_table_is_a_distribution_on_whole_lots(sizes):
    d = size_distribution(np.array(sizes))
    assert sum(d.probs) == pytest.approx(1.0)
    assert all(p >= 0 for p in d.probs)
    assert d.probs[-1] > 0  # the table ends at the largest size seen (capped)
    assert 1.0 <= d.mean <= 32.0
    if max(sizes) <= 32.0:  # rounding up to whole lots never shrinks the mean
        assert d.mean >= np.mean(sizes) - 1e-9


# ------------------------------------------------------------------ CLI
def test_cli_rejects_an_unknown_file_name(tmp_path, capsys):
    bad = tmp_path / "prices.csv"
    bad.write_text("1,2\n")
    assert main(["--data", str(bad)]) == 2
    assert "prices.csv" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no such file"):
        load_market_data([tmp_path / "missing_message_1.csv"])


@pytest.mark.data
def test_cli_writes_a_loadable_market_and_its_details(tmp_path):
    path = data_file(AAPL_TINY)
    out = tmp_path / "markets" / "aapl_tiny.yaml"
    assert main(["--data", str(path), "--out", str(out), "--levels", "5"]) == 0
    market = MarketParams.from_dict(yaml.safe_load(out.read_text()))
    assert market.n_levels == 5 and market.tick_size == 0.01
    LOBMarketConfig(market=market, depth_max=4.0)
    assert "# standard errors:" in out.read_text()
    details = yaml.safe_load((tmp_path / "markets" / "calibration" / "aapl_tiny.yaml").read_text())
    assert details["data"]["symbol"] == "AAPL"
    assert details["std_errors"]["market_rate"] > 0


def test_a_level_one_book_calibrates(tmp_path):
    """AAPL's L1 day: no queue behind the best is shown, which the queue-reactive fit skips."""
    out = tmp_path / "aapl_l1.yaml"
    assert main(["--data", str(data_file(AAPL_L1)), "--out", str(out)]) == 0
    details = yaml.safe_load((tmp_path / "calibration" / "aapl_l1.yaml").read_text())
    assert details["market_queue_reactive"]["model"] == "queue_reactive"


# ------------------------------------------------------------------ real data
def check_plausible(cal: Calibration) -> None:
    p, se = cal.params, cal.std_errors
    lam, theta = np.array(p.limit_rates), np.array(p.cancel_rates)
    assert (lam > 0).all() and (theta > 0).all() and p.market_rate > 0
    # decreasing-ish in distance: the far levels get fewer orders than the near ones
    assert lam[-3:].mean() < lam[:3].mean()
    assert p.fill_curve.A > 0 and p.fill_curve.k > 0
    for key in ("limit_rates", "cancel_rates"):
        assert np.isfinite(se[key]).all() and (np.array(se[key]) > 0).all()
    for value in (se["market_rate"], se["mid_volatility"], *se["fill_curve"].values()):
        assert np.isfinite(value) and value > 0
    # relative errors: a day of data pins the rates down to a few percent
    assert (np.array(se["limit_rates"]) / lam < 0.1).all()
    regimes = cal.volatility_regimes
    assert regimes["variance"][0] < regimes["variance"][1]
    assert np.isfinite(regimes["variance_se"]).all()
    assert np.allclose(np.sum(regimes["transition"], axis=1), 1.0)
    spread = np.array(cal.spread["probs"])
    rows = np.array(cal.spread["counts"]).sum(axis=1) > 0
    assert np.allclose(spread[rows].sum(axis=1), 1.0)
    assert cal.queue_reactive_params is not None
    assert 0 < cal.queue_reactive["theta"] < 1


@pytest.fixture(scope="module")
def goog() -> tuple[Calibration, float]:
    md = load_market_data([data_file(GOOG)])
    t0 = time.perf_counter()
    cal = calibrate(md)
    return cal, time.perf_counter() - t0


@pytest.mark.data
def test_goog_day_calibrates_to_plausible_values_in_under_30_seconds(goog):
    cal, seconds = goog
    assert seconds < 30.0
    check_plausible(cal)
    p = cal.params
    # wide spread (median 28 ticks): distances from the own best, lots of 100 shares
    assert cal.settings["reference"] == "own" and p.lot_size == 100.0
    assert cal.notes["hidden_executions_excluded"] == 3913  # data README
    # a $580 stock moving a few ticks per sqrt(second)
    assert 0.5 < p.mid_volatility < 20.0
    # executions: 7,765 visible, merged into market orders over 6.5 hours
    assert 0.05 < p.market_rate < 0.5


@pytest.mark.data
def test_nexo_capture_calibrates_to_plausible_values():
    md = load_market_data([data_file(n) for n in NEXO])
    cal = calibrate(md)
    check_plausible(cal)
    p = cal.params
    assert cal.settings["reference"] == "opposite"  # median spread one tick
    assert cal.data["open_seconds"] > 20 * 3600
    assert 0.01 < p.mid_volatility < 2.0
    assert cal.notes["l2_cancel_volume_reconciled_with_trades_lots"] > 0
    # one taker order is one market order: its trades arrive microseconds apart but share the
    # exchange time (merged by receive time, the capture had twice as many market orders)
    trades = md.events[md.events["kind"] == "trade"]
    orders = trades.groupby(["exch_ts", "aggressor"]).ngroups
    rate = orders / 2 / cal.data["open_seconds"]  # market_rate is per side
    assert p.market_rate == pytest.approx(rate, rel=0.05)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_cli_logs_params_errors_and_times_to_mlflow(tmp_path, capsys):
    from tracking import load_run

    path = data_file(AAPL_TINY)
    out = tmp_path / "aapl.yaml"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["--data", str(path), "--out", str(out), "--levels", "5", "--track"]
    assert main([*argv, "--tracking-uri", uri, "--experiment", "calibration-test"]) == 0
    run_id = capsys.readouterr().out.split("logged to MLflow run")[1].split()[0]
    record = load_run(run_id, uri)
    assert record.params["market.n_levels"] == "5"
    assert float(record.params["se.market_rate"]) > 0
    assert any(k.startswith("calibration/time/") for k in record.metrics)

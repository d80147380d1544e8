"""Calibration validation report: stylized facts on hand-made frames, the two-sample statistics,
and the comparison of simulated markets (against themselves and against a perturbed market)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.rates import confint_poisson_2indep

from calibration.params import TOKYO_CST
from data.schema import ADD, TRADE, InstrumentSpec, make_book, make_events
from envs.lob.events import simulate_events
from evaluation.calibration_report import (
    COLUMNS,
    FACT_COLUMNS,
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPORTED,
    REPRODUCED,
    compare,
    difference_verdict,
    fact_metrics,
    fact_table,
    integrated_time,
    ks_test,
    model_spec,
    rate_ratio,
    ratio_verdict,
    simulated_facts,
    stylized_facts,
    table_metrics,
    tv_distance,
    write_report,
)

SPEC = InstrumentSpec("TEST", tick_size=0.01, lot_size=1.0, price_scale=1.0, timezone="UTC")
NS = 1_000_000_000
SIM_SECONDS = 1000.0
SIM_HORIZONS = (1.0, 10.0, 60.0)


def frames(
    starts: list[float],
    spreads: list[int],
    queues: list[float] | None = None,
    trade_signs: list[int] | None = None,
    adds: list[tuple[float, int]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A one-level book whose row ``k`` starts at ``starts[k]`` s with the best bid at 100 ticks
    and the spread ``spreads[k]``; events: limit buys ``(time, price)`` and one market order per
    sign, 0.1 s apart from t = 0.05 s."""
    n = len(starts)
    q = np.asarray(queues if queues is not None else [1.0] * n, np.float64)[:, None]
    bid = np.full((n, 1), 100.0)
    ask = bid + np.asarray(spreads, np.float64)[:, None]
    book = make_book(np.rint(np.asarray(starts) * NS), bid, q, ask, q)
    rows = [(t, ADD, 1, p, 1.0, 0) for t, p in (adds or [(0.01, 100), (0.02, 100)])]
    rows += [(0.05 + 0.1 * i, TRADE, -s, 100 if s < 0 else 101, 1.0, s)
             for i, s in enumerate(trade_signs or [])]  # fmt: skip
    rows.sort()
    t, kind, side, price, size, aggressor = (np.array(c) for c in zip(*rows, strict=True))
    events = make_events(np.rint(t * NS), kind, side, price, size, np.arange(len(rows)), aggressor)
    return events, book


def test_spread_and_queue_samples_are_the_book_in_force_every_second():
    # rows from t = 0, 3, 5 and a last row at t = 10: samples at t = 0..10
    events, book = frames([0, 3, 5, 10], [1, 2, 4, 4], queues=[2, 3, 5, 5])
    f = stylized_facts(events, book, SPEC, lot=1.0)
    values, counts = np.unique(f.spread, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist(), strict=True)) == {1.0: 3, 2.0: 2, 4.0: 6}
    # bid and ask queues are pooled: twice the samples
    values, counts = np.unique(f.best_queue, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist(), strict=True)) == {2.0: 6, 3.0: 4, 5.0: 12}
    assert f.duration == pytest.approx(10.0)


def test_queue_sizes_are_in_calibration_lots():
    events, book = frames([0, 10], [1, 1], queues=[300, 300])
    assert np.all(stylized_facts(events, book, SPEC, lot=100.0).best_queue == 3.0)


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 6)), min_size=2, max_size=12))
def test_spread_histogram_is_the_time_spent_at_each_spread(rows):
    durations, spreads = zip(*rows, strict=True)
    starts = np.concatenate([[0], np.cumsum(durations)[:-1]]).tolist()
    f = stylized_facts(*frames(starts, list(spreads)), SPEC, lot=1.0)
    expected: dict[int, int] = {}
    for d, s in zip(durations[:-1], spreads[:-1], strict=True):
        expected[s] = expected.get(s, 0) + d  # one sample per whole second of the row
    expected[spreads[-1]] = expected.get(spreads[-1], 0) + 1  # the last row: its first second
    values, counts = np.unique(f.spread, return_counts=True)
    assert dict(zip(values.astype(int).tolist(), counts.tolist(), strict=True)) == expected


@pytest.mark.parametrize(
    ("signs", "positive"),
    [([1, -1] * 20, False), (([1] * 5 + [-1] * 5) * 4, True)],
    ids=["alternating", "runs_of_five"],
)
def test_trade_sign_acf_has_the_sign_of_the_pattern(signs, positive):
    events, book = frames([0, 10], [1, 1], trade_signs=signs)
    f = stylized_facts(events, book, SPEC, lot=1.0, max_lag=3)
    assert f.n_market_orders == len(signs)
    assert f.sign_acf[0] == pytest.approx(1.0)
    assert (f.sign_acf[1] > 0.5) if positive else (f.sign_acf[1] < -0.9)
    assert np.all(f.sign_acf_se[1:] > 0)


def test_rates_count_whole_market_orders_and_the_window():
    # two executions at one time stamp are one market order; an add 30 ticks deep is outside
    # a 10-level window counted from the opposite best
    events, book = frames([0, 10], [1, 1], trade_signs=[1, -1],
                          adds=[(0.01, 100), (0.02, 70), (0.03, 99)])  # fmt: skip
    split = events.copy()
    extra = split.iloc[[-1]].assign(order_id=99)
    split = pd.concat([split, extra], ignore_index=True).sort_values("ts", kind="stable")
    f_all = stylized_facts(split, book, SPEC, lot=1.0)
    f_win = stylized_facts(split, book, SPEC, lot=1.0, levels=10)
    assert f_all.counts == {"limit": 3, "cancel": 0, "market": 2}
    assert f_win.counts == {"limit": 2, "cancel": 0, "market": 2}
    assert f_all.rates["limit"] == pytest.approx(3 / 10.0)


def test_bad_parameters_are_named():
    events, book = frames([0, 10], [1, 1])
    with pytest.raises(ValueError, match="sample_dt"):
        stylized_facts(events, book, SPEC, sample_dt=0.0)
    with pytest.raises(ValueError, match="levels"):
        stylized_facts(events, book, SPEC, levels=0)
    with pytest.raises(ValueError, match="kind"):
        stylized_facts(events.drop(columns="kind"), book, SPEC)


# --------------------------------------------------------------------------- statistics


def test_integrated_time_of_an_ar1_is_one_plus_phi_over_one_minus_phi():
    # tau = sum_k phi^|k| = (1 + phi) / (1 - phi) for an AR(1): 9 at phi = 0.8
    rng = np.random.default_rng(0)
    phi, n = 0.8, 200_000
    x = np.empty(n)
    x[0] = 0.0
    eps = rng.standard_normal(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    assert integrated_time(x) == pytest.approx(9.0, rel=0.1)
    assert integrated_time(rng.standard_normal(5000)) == pytest.approx(1.0, abs=0.15)
    assert integrated_time(np.ones(100)) == 1.0


def test_ks_test_is_scipy_asymptotic_for_independent_samples_and_wider_for_correlated():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=800), rng.normal(0.1, size=900)
    d, p = ks_test(x, y)
    ref = stats.ks_2samp(x, y, method="asymp")
    assert d == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue, rel=0.05)
    assert ks_test(x, y, 10.0, 10.0)[1] > p


def test_rate_ratio_is_statsmodels_for_poisson_counts_and_wider_when_overdispersed():
    ratio, p, low, high = rate_ratio(220, 100.0, 200, 100.0, alpha=0.05)
    ref = confint_poisson_2indep(220, 100.0, 200, 100.0, method="score", compare="ratio")
    assert ratio == pytest.approx(1.1)
    assert (low, high) == pytest.approx(tuple(ref))
    assert low < 1.0 < high and p > 0.05
    _, p4, low4, high4 = rate_ratio(220, 100.0, 200, 100.0, 4.0, 4.0, alpha=0.05)
    assert low4 < low and high4 > high and p4 > p


# --------------------------------------------------------------------------- simulated markets


@pytest.fixture(scope="module")
def tokyo() -> dict[str, object]:
    """The CST Tokyo market (CST 2010, Table 2) twice with different seeds, and with the
    market-order rate doubled."""
    doubled = TOKYO_CST.model_copy(update={"market_rate": 2 * TOKYO_CST.market_rate})
    return {
        "a": simulated_facts(TOKYO_CST, SIM_SECONDS, 1, horizons=SIM_HORIZONS, label="seed 1"),
        "b": simulated_facts(TOKYO_CST, SIM_SECONDS, 2, horizons=SIM_HORIZONS, label="seed 2"),
        "doubled": simulated_facts(doubled, SIM_SECONDS, 2, horizons=SIM_HORIZONS),
    }


def test_a_market_against_itself_with_another_seed_is_reproduced(tokyo):
    table = compare(tokyo["a"], tokyo["b"])
    assert list(table.columns) == COLUMNS
    assert len(table) == 2 + 3 + len(SIM_HORIZONS) + 2
    assert (table["verdict"] == REPRODUCED).all(), table[["fact", "p_value", "verdict"]]
    ks = table[table["statistic"] == "KS D"]
    assert (ks["p_value"] > 0.05).all()
    assert table["criterion"].str.len().gt(10).all()


def test_doubled_market_order_rate_is_not_reproduced(tokyo):
    table = compare(tokyo["a"], tokyo["doubled"]).set_index("fact")
    market = table.loc["rate_market"]
    assert market["verdict"] == NOT_REPRODUCED
    assert 1.7 < market["value"] < 2.3 and market["ci_low"] > 1.1
    # limit orders arrive at constant rates in CST: unchanged
    assert table.loc["rate_limit", "verdict"] == REPRODUCED


def test_same_seed_same_facts():
    a = simulated_facts(TOKYO_CST, 200.0, 7, horizons=(1.0,))
    b = simulated_facts(TOKYO_CST, 200.0, 7, horizons=(1.0,))
    np.testing.assert_array_equal(a.spread, b.spread)
    np.testing.assert_array_equal(a.sign_acf, b.sign_acf)
    assert a.counts == b.counts


def test_a_horizon_without_returns_is_not_measured(tokyo):
    short = simulated_facts(TOKYO_CST, 200.0, 3, horizons=(1.0, 60.0))
    table = compare(short, short).set_index("fact")
    assert table.loc["volatility_60s", "verdict"] == NOT_MEASURED
    assert table.loc["volatility_1s", "verdict"] == REPRODUCED


def test_report_files_and_metrics(tokyo, tmp_path):
    data, model = tokyo["a"], tokyo["doubled"]
    paths = write_report(data, model, tmp_path, title="Tokyo against doubled market orders")
    for key in ("table_csv", "table_html", "summary_md", "index_html", "spread_distribution",
                "best_queue_distribution", "event_rates", "volatility_signature",
                "trade_sign_acf", "facts_csv", "price_impact", "interarrival_times"):  # fmt: skip
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    facts = pd.read_csv(paths["facts_csv"]).set_index("fact")
    assert facts.loc["interarrival_mean", "verdict"] == NOT_REPRODUCED
    assert "ratio within [0.8, 1.25]" in paths["summary_md"].read_text()
    table = pd.read_csv(paths["table_csv"])
    assert table.set_index("fact").loc["rate_market", "verdict"] == NOT_REPRODUCED
    summary = paths["summary_md"].read_text()
    assert "Rate of market orders" in summary.split("## Reproduced")[0]
    assert "data:image/png;base64" in paths["index_html"].read_text()
    metrics = table_metrics(compare(data, model))
    assert metrics["calibration/rate_market/reproduced"] == 0.0
    assert metrics["calibration/rate_limit/reproduced"] == 1.0
    assert metrics["calibration/rate_market/value"] == pytest.approx(table["value"][4])
    assert all(k.startswith("calibration/") and k.count("/") == 2 for k in metrics)


# --------------------------------------------------------------------------- fact table


def test_tv_distance_of_known_laws():
    ones, twos = np.ones(100), np.full(100, 2.0)
    assert tv_distance(ones, ones) == 0.0
    assert tv_distance(ones, twos) == 1.0
    # uniform on {1, 2} against a point mass at 1: 1/2 (|1/2 - 1| + |1/2 - 0|) = 1/2
    assert tv_distance(np.r_[ones, twos], ones) == pytest.approx(0.5)
    # P = (0.2, 0.8), Q = (0.6, 0.4): 0.4
    p = np.r_[np.ones(2), np.full(8, 3.0)]
    q = np.r_[np.ones(6), np.full(4, 3.0)]
    assert tv_distance(p, q) == pytest.approx(0.4)


def impact_frames(direction: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A one-tick book whose bid moves ``2 * direction`` ticks every 10 s (rows at t = 0, 10,
    ..., 200) and one market order 0.5 s before each move, its aggressor on the side the mid
    is about to move to: the impact is 2 ticks at 1 s and 10 s, 12 ticks at 60 s."""
    starts = np.arange(0.0, 201.0, 10.0)
    bid = (1000.0 + 2.0 * direction * np.arange(starts.size))[:, None]
    q = np.full((starts.size, 1), 5.0)
    book = make_book(np.rint(starts * NS), bid, q, bid + 1.0, q)
    t = starts[:-1] + 9.5
    ask = bid[:-1, 0] + 1.0
    price = np.where(direction > 0, ask, bid[:-1, 0]).astype(np.int64)
    n = t.size
    events = make_events(np.rint(t * NS), np.full(n, TRADE), np.full(n, -direction), price,
                         np.ones(n), np.arange(n), np.full(n, direction))  # fmt: skip
    return events, book


@pytest.mark.parametrize("direction", [1, -1], ids=["buys_up", "sells_down"])
def test_price_impact_of_a_constructed_price_path(direction):
    events, book = impact_frames(direction)
    f = stylized_facts(events, book, SPEC, lot=1.0, max_lag=2, block_s=50.0, n_boot=20)
    assert f.impact_horizons == (1.0, 10.0, 60.0)
    assert f.estimates["impact_1s"] == pytest.approx(2.0)
    assert f.estimates["impact_10s"] == pytest.approx(2.0)
    assert f.estimates["impact_60s"] == pytest.approx(12.0)
    # orders within 60 s of the last book row have no 60 s mid: left out
    assert np.isnan(f.impact[-6:, 2]).all() and np.isfinite(f.impact[:-6, 2]).all()
    # inter-arrival times: one order every 10 s
    assert f.estimates["interarrival_mean"] == pytest.approx(10.0)
    assert f.estimates["interarrival_cv"] == pytest.approx(0.0, abs=1e-9)


def markov_sign_frames(p_same: float, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` market orders whose signs keep the previous sign with probability ``p_same`` (a
    symmetric two-state Markov chain: ACF(k) = (2 p_same - 1)^k), at exponential times of mean
    0.5 s (a Poisson flow: inter-arrival mean 0.5 s, CV 1), on a constant one-tick book."""
    rng = np.random.default_rng(seed)
    flips = rng.random(n) > p_same
    signs = np.where(np.cumsum(flips) % 2 == 0, 1, -1)
    t = 0.5 + np.cumsum(rng.exponential(0.5, n))
    end = float(t[-1]) + 1.0
    bid, q = np.full((2, 1), 100.0), np.full((2, 1), 5.0)
    book = make_book(np.rint(np.array([0.0, end]) * NS), bid, q, bid + 1.0, q)
    price = np.where(signs > 0, 101, 100).astype(np.int64)
    events = make_events(np.rint(t * NS), np.full(n, TRADE), -signs, price, np.ones(n),
                         np.arange(n), signs)  # fmt: skip
    return events, book


def test_sign_acf_and_inter_arrivals_of_a_markov_sign_process():
    events, book = markov_sign_frames(0.8, 20_000, seed=4)
    f = stylized_facts(events, book, SPEC, lot=1.0, max_lag=100, n_boot=50)
    rho = 2 * 0.8 - 1
    for k in (1, 10, 100):
        assert abs(f.estimates[f"sign_acf_lag{k}"] - rho**k) < 3 * f.sign_acf_se[k] + 1e-3, k
    assert f.estimates["sign_acf_lag1"] == pytest.approx(0.6, abs=0.02)
    assert f.estimates["interarrival_mean"] == pytest.approx(0.5, rel=0.03)
    assert f.estimates["interarrival_cv"] == pytest.approx(1.0, rel=0.05)
    lo, hi = np.percentile(f.draws["interarrival_mean"], [2.5, 97.5])
    assert lo < 0.5 < hi


@pytest.mark.parametrize(
    ("ratio", "verdict"),
    [(1.0, REPRODUCED), (0.8, REPRODUCED), (1.25, REPRODUCED), (0.79, NOT_REPRODUCED),
     (1.26, NOT_REPRODUCED), (-0.5, NOT_REPRODUCED), (np.nan, NOT_MEASURED)],
)  # fmt: skip
def test_ratio_band(ratio, verdict):
    assert ratio_verdict(ratio)[0] == verdict


def test_ratio_gap_says_by_how_much():
    assert "2.00x above" in ratio_verdict(2.5)[1]
    assert "2.00x below" in ratio_verdict(0.4)[1]


@pytest.mark.parametrize(
    ("diff", "verdict"),
    [(0.0, REPRODUCED), (0.1, REPRODUCED), (-0.1, REPRODUCED), (0.11, NOT_REPRODUCED),
     (-0.65, NOT_REPRODUCED), (np.nan, NOT_MEASURED)],
)  # fmt: skip
def test_sign_acf_tolerance(diff, verdict):
    assert difference_verdict(diff)[0] == verdict


def test_fact_table_of_a_market_against_itself_and_against_faster_market_orders(tokyo):
    a = tokyo["a"]
    same = fact_table(a, a).set_index("fact")
    assert list(fact_table(a, a).columns) == FACT_COLUMNS
    ruled = same[same["statistic"] != "TV distance"]
    ruled = ruled[ruled["statistic"] != "KS D"]
    assert (ruled["verdict"].isin([REPRODUCED, NOT_MEASURED])).all()
    assert same.loc["spread_tv", "value"] == 0.0 and same.loc["spread_tv", "verdict"] == REPORTED
    for k in ("spread_mean", "queue_mean", "interarrival_mean", "volatility_1s"):
        assert same.loc[k, "value"] == pytest.approx(1.0)
        assert same.loc[k, "data_low"] < same.loc[k, "data"] < same.loc[k, "data_high"], k
    other = fact_table(a, tokyo["doubled"]).set_index("fact")
    # twice the market orders: half the time between them
    assert 0.4 < other.loc["interarrival_mean", "value"] < 0.6
    assert other.loc["interarrival_mean", "verdict"] == NOT_REPRODUCED
    assert other.loc["interarrival_mean", "value_high"] < 0.8
    assert "below the band" in other.loc["interarrival_mean", "gap"]
    metrics = fact_metrics(other.reset_index())
    assert metrics["calibration/facts/interarrival_mean/reproduced"] == 0.0
    assert "calibration/facts/spread_tv/reproduced" not in metrics


def test_data_and_model_replicates_are_independent_even_on_the_same_events():
    # the same simulated events measured as "data" (bootstrap seed 0) and as "model" (the
    # simulation's seed 0): equal estimates, but the ratio's interval must not collapse
    events, book = simulate_events(TOKYO_CST, 300.0, 0)
    data = stylized_facts(events, book, model_spec(TOKYO_CST), lot=TOKYO_CST.lot_size,
                          levels=TOKYO_CST.n_levels, horizons=(1.0,), block_s=30.0,
                          n_boot=100)  # fmt: skip
    model = simulated_facts(TOKYO_CST, 300.0, 0, horizons=(1.0,), block_s=30.0, n_boot=100)
    table = fact_table(data, model).set_index("fact")
    for fact in ("spread_mean", "volatility_1s", "sign_acf_lag1", "interarrival_mean"):
        row = table.loc[fact]
        assert row["data"] == pytest.approx(row["model"]), fact
        assert row["value_high"] - row["value_low"] > 1e-3, fact


def test_explanations_name_a_mechanism_only_for_the_flows_that_have_it(tokyo):
    """The CST mechanisms (independent market-order signs, lambda / theta queues) are named for
    the CST and queue-reactive flows, not for a market whose flow has sign memory."""
    from evaluation.calibration_report import explain

    table = compare(tokyo["a"], tokyo["doubled"])
    cst = " ".join(explain(table, tokyo["a"], tokyo["doubled"], "cst"))
    realistic = " ".join(explain(table, tokyo["a"], tokyo["doubled"], "realistic"))
    assert "Rate of market orders" in cst and "Rate of market orders" in realistic
    assert len(realistic) < len(cst)
    for mechanism in ("Cont", "birth-death", "independently"):
        assert mechanism not in realistic

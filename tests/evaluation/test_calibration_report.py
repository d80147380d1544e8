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
from evaluation.calibration_report import (
    COLUMNS,
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPRODUCED,
    compare,
    integrated_time,
    ks_test,
    rate_ratio,
    simulated_facts,
    stylized_facts,
    table_metrics,
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
                "trade_sign_acf"):  # fmt: skip
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
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

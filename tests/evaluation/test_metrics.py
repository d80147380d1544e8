"""Trading metrics: hand-computed series, invariants, and agreement with quantstats / riskfolio."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import quantstats as qs
import riskfolio as rp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evaluation.metrics import (
    Fills,
    TradingRecord,
    compute_metrics,
    drawdown,
    episode_metrics,
    expected_shortfall,
    fill_rate,
    fill_rate_by_queue,
    inventory_half_life,
    inventory_pnl,
    inventory_stats,
    markout_summary,
    markouts,
    max_drawdown,
    max_drawdown_fraction,
    periods_per_year,
    pnl_returns,
    sharpe,
    sortino,
    spread_capture,
    spread_decomposition,
    value_at_risk,
    wealth_returns,
)

# ------------------------------------------------------------------ a tiny hand-computed session
# time (s)      0     1     2     3
# mid         100   101    99   100
# bid          99    99   nan     -     (quotes live over (t, t+1])
# ask         101   nan   101     -
# fills: buy 1 @ 99.5 at 0.5 (maker, rebate 0.1); sell 2 @ 101.5 at 1.0 (maker, rebate 0.2);
#        sell 1 @ 99.0 at 2.5 (taker, fee 0.05)
TIME = [0.0, 1.0, 2.0, 3.0]
MID = [100.0, 101.0, 99.0, 100.0]


def tiny_record() -> TradingRecord:
    fills = Fills.from_arrays(
        time=[0.5, 1.0, 2.5],
        price=[99.5, 101.5, 99.0],
        size=[1.0, 2.0, 1.0],
        side=[1, -1, -1],
        fee=[-0.1, -0.2, 0.05],
        taker=[False, False, True],
        queue_ahead=[3.0, 5.0, np.nan],
    )
    return TradingRecord.from_arrays(
        time=TIME,
        mid=MID,
        pnl=[0.0, 3.0, 1.0, 4.0],
        inventory=[0.0, 1.0, -1.0, -2.0],
        bid=[99.0, 99.0, np.nan, np.nan],
        ask=[101.0, np.nan, 101.0, np.nan],
        fills=fills,
    )


def test_periods_per_year_for_one_minute_steps():
    # equities: 252 * 6.5 * 3600 / 60 = 98,280; crypto: 365 * 86400 / 60 = 525,600
    assert periods_per_year(60.0, "equities") == pytest.approx(98_280.0)
    assert periods_per_year(60.0, "crypto") == pytest.approx(525_600.0)
    with pytest.raises(ValueError, match="calendar"):
        periods_per_year(60.0, "forex")  # type: ignore[arg-type]


def test_sharpe_and_sortino_by_hand():
    r = np.array([1.0, -2.0, 3.0])
    # mean 2/3; sample variance ((1/3)^2 + (8/3)^2 + (7/3)^2) / 2 = 19/3
    assert sharpe(r) == pytest.approx((2 / 3) / math.sqrt(19 / 3), rel=1e-12)
    assert sharpe(r, periods=4) == pytest.approx(2 * (2 / 3) / math.sqrt(19 / 3), rel=1e-12)
    # downside deviation sqrt((-2)^2 / 3) = sqrt(4/3); 2/3 / sqrt(4/3) = 1/sqrt(3)
    assert sortino(r) == pytest.approx(1 / math.sqrt(3), rel=1e-12)
    assert math.isnan(sortino(np.array([1.0, 2.0])))
    assert math.isnan(sharpe(np.array([1.0, 1.0])))


def test_pnl_returns_are_increments_over_capital():
    # increments 3, -2, 3 over capital 100
    np.testing.assert_allclose(
        pnl_returns(np.array([0.0, 3.0, 1.0, 4.0]), 100.0), [0.03, -0.02, 0.03]
    )
    with pytest.raises(ValueError, match="capital"):
        pnl_returns(np.zeros(3), 0.0)


def test_historical_var_and_es_by_hand():
    x = np.arange(101.0) - 50.0  # -50 .. 50
    # 5% quantile at position 0.05 * 100 = 5 -> -45; 1% at position 1 -> -49
    assert value_at_risk(x, 0.95) == pytest.approx(45.0)
    assert value_at_risk(x, 0.99) == pytest.approx(49.0)
    # tails {-50..-45} (mean -47.5) and {-50, -49} (mean -49.5)
    assert expected_shortfall(x, 0.95) == pytest.approx(47.5)
    assert expected_shortfall(x, 0.99) == pytest.approx(49.5)


def test_gaussian_var_and_es_by_hand():
    x = np.array([-1.0, 1.0])  # mean 0, sample std sqrt(2)
    z = 1.6448536269514722  # -Phi^{-1}(0.05)
    assert value_at_risk(x, 0.95, "gaussian") == pytest.approx(math.sqrt(2) * z, rel=1e-12)
    pdf = math.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)
    es = math.sqrt(2) * pdf / 0.05
    assert expected_shortfall(x, 0.95, "gaussian") == pytest.approx(es, rel=1e-12)
    with pytest.raises(ValueError, match="method"):
        value_at_risk(x, 0.95, "cornish")  # type: ignore[arg-type]


def test_drawdowns_by_hand():
    pnl = np.array([0.0, 3.0, 1.0, 4.0, -2.0, 5.0])
    # running peak 0 3 3 4 4 5 -> drawdown 0 0 2 0 6 0
    np.testing.assert_allclose(drawdown(pnl), [0, 0, 2, 0, 6, 0])
    assert max_drawdown(pnl) == 6.0
    # wealth 10 + pnl = 10 13 11 14 8 15: worst 1 - 8/14
    assert max_drawdown_fraction(pnl, 10.0) == pytest.approx(1 - 8 / 14)


def test_markouts_by_hand():
    m = markouts(tiny_record(), horizons=(0.0, 1.0, 2.0))
    # buy @ 99.5 at 0.5: mids in force at 0.5, 1.5, 2.5 are 100, 101, 99
    np.testing.assert_allclose(m[0], np.array([0.5, 1.5, -0.5]) / 99.5 * 1e4)
    # sell @ 101.5 at 1.0, the end of interval (0, 1]: mids in force at 1, 2, 3 are those set
    # at 0, 1, 2 (100, 101, 99) -> -(mid - 101.5) = 1.5, 0.5, 2.5
    np.testing.assert_allclose(m[1], np.array([1.5, 0.5, 2.5]) / 101.5 * 1e4)
    # sell @ 99 at 2.5: mid 99 at 2.5, 100 at 3.5 -> past the end at h = 1, 2
    assert m[2, 0] == pytest.approx(0.0)
    assert np.isnan(m[2, 1]) and np.isnan(m[2, 2])
    # size-weighted mean at h = 1 over the two fills that have it: (1 * m01 + 2 * m11) / 3
    summary = markout_summary(tiny_record(), (1.0,))
    assert summary[1.0] == pytest.approx((m[0, 1] + 2 * m[1, 1]) / 3)


def test_spread_decomposition_by_hand():
    d = spread_decomposition(tiny_record(), horizon=1.0)
    eff = (0.5 / 99.5 + 2 * 1.5 / 101.5) / 3 * 1e4
    real = (1.5 / 99.5 + 2 * 0.5 / 101.5) / 3 * 1e4
    assert d["effective_half_spread_bps"] == pytest.approx(eff)
    assert d["realized_spread_bps"] == pytest.approx(real)
    # the mid rose after the (larger) sell: adverse selection is positive
    assert d["adverse_selection_bps"] == pytest.approx(eff - real)
    assert d["adverse_selection_bps"] > 0


def test_spread_capture_by_hand():
    c = spread_capture(tiny_record())
    # maker fills: 1 * (+1) * (100 - 99.5) + 2 * (-1) * (100 - 101.5) = 0.5 + 3.0
    assert c["spread_capture_gross"] == pytest.approx(3.5)
    assert c["maker_fees"] == pytest.approx(-0.3)
    assert c["taker_fees"] == pytest.approx(0.05)
    assert c["spread_capture_net"] == pytest.approx(3.8)
    assert c["rebate_share"] == pytest.approx(0.3 / 3.8)


def test_fill_rate_by_hand():
    f = fill_rate(tiny_record())
    # bid quoted in intervals 0, 1; filled in 0 (buy at 0.5) -> 1/2
    # ask quoted in intervals 0, 2; maker sell at 1.0 falls in interval 0 -> 1/2
    # (the taker sell at 2.5 does not count as a fill of the resting ask)
    assert f["fill_rate_bid"] == pytest.approx(0.5)
    assert f["fill_rate_ask"] == pytest.approx(0.5)
    assert f["fill_rate"] == pytest.approx(2 / 4)
    assert f["fills_per_hour"] == pytest.approx(3 / 3 * 3600)


def test_inventory_stats_and_pnl_by_hand():
    s = inventory_stats(tiny_record())
    # q = 0, 1, -1, -2: mean -0.5, mean |q| = 1, max |q| = 2, volume 1 + 2 + 1 = 4
    assert s["inventory_mean"] == pytest.approx(-0.5)
    assert s["inventory_abs_mean"] == pytest.approx(1.0)
    assert s["inventory_max"] == 2.0
    assert s["volume"] == 4.0
    assert s["turnover"] == pytest.approx(4.0)
    # q_{t-1} dS_t = 0 * 1 + 1 * (-2) + (-1) * 1
    np.testing.assert_allclose(inventory_pnl(tiny_record()), [0.0, -2.0, -1.0])


def test_half_life_of_a_geometric_decay_is_exact():
    q = 16.0 * 0.5 ** np.arange(8)  # q_t = 0.5 q_{t-1}: phi = 0.5, half-life 1 step
    assert inventory_half_life(q, step_seconds=2.0) == pytest.approx(2.0, rel=1e-9)
    assert math.isnan(inventory_half_life(np.full(10, 3.0)))
    assert inventory_half_life(np.arange(10.0) ** 2) == math.inf  # explosive: phi > 1


def test_half_life_of_a_simulated_ar1():
    rng = np.random.default_rng(7)
    phi, n = 0.9, 20_000
    q = np.zeros(n)
    e = rng.normal(size=n)
    for t in range(1, n):
        q[t] = phi * q[t - 1] + e[t]
    # ln 2 / -ln 0.9 = 6.579 steps; OLS phi has std ~ sqrt((1 - phi^2) / n) = 0.003
    assert inventory_half_life(q) == pytest.approx(math.log(2) / -math.log(phi), rel=0.05)


def test_fill_rate_by_queue_counts_and_intervals():
    q = np.array([0, 0, 1, 1, 5, 5, 9, 9], float)
    filled = np.array([1, 1, 1, 0, 1, 0, 0, 0], bool)
    t = fill_rate_by_queue(q, filled, bins=[0, 1, 5, 10])
    # bins [0, 1] -> 4 orders 3 fills; (1, 5] -> 2 orders 1 fill; (5, 10] -> 2 orders 0 fills
    assert t["orders"].tolist() == [4, 2, 2]
    np.testing.assert_allclose(t["fill_rate"], [0.75, 0.5, 0.0])
    assert np.all(t["ci_low"] <= t["fill_rate"]) and np.all(t["fill_rate"] <= t["ci_high"])
    with pytest.raises(ValueError, match="filled"):
        fill_rate_by_queue(q, filled[:3])


def test_compute_metrics_gathers_everything_with_plain_floats():
    m = compute_metrics(tiny_record(), capital=100.0, horizons=(1.0,), calendar="crypto")
    assert m["pnl"] == 4.0
    assert m["pnl_inventory"] == pytest.approx(-3.0)
    assert m["periods_per_year"] == pytest.approx(365 * 86400)
    assert m["sharpe"] == pytest.approx(sharpe(np.array([0.03, -0.02, 0.03]), 365 * 86400))
    assert m["max_drawdown"] == 2.0
    assert m["markout_1s_bps"] == pytest.approx(markout_summary(tiny_record(), (1.0,))[1.0])
    assert {"var95", "es95", "var99", "es99", "adverse_selection_bps", "turnover"} <= set(m)
    assert all(type(v) is float for v in m.values()), {k: type(v) for k, v in m.items()}


def test_episode_metrics_are_per_episode():
    pnl = np.array([1.0, -2.0, 3.0])
    e = episode_metrics(pnl)
    assert e["episode_sharpe"] == pytest.approx(sharpe(pnl))
    assert e["episode_var95"] == pytest.approx(value_at_risk(pnl, 0.95))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(time=[0.0, 0.0, 1.0]), "record.time: expected strictly increasing, row 0"),
        (dict(mid=[100.0, np.nan, 1.0, 1.0]), "record.mid: expected finite values, row 1"),
        (dict(pnl=[0.0, 1.0]), "record.pnl: expected 4 values, got 2"),
    ],
)
def test_bad_records_name_the_field_and_row(kwargs, message):
    base = dict(time=TIME, mid=MID, pnl=[0.0] * 4, inventory=[0.0] * 4) | kwargs
    if len(base["time"]) != 4:
        base["mid"] = base["pnl"] = base["inventory"] = [1.0] * len(base["time"])
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TradingRecord.from_arrays(**base)


def test_fills_from_a_table():
    frame = pd.DataFrame(
        {"episode": [0, 0], "time": [0.5, 2.5], "price": [99.5, 99.0], "size": [1.0, 1.0],
         "side": [1.0, -1.0], "fee": [-0.1, 0.05], "taker": [0, 1]}
    )  # fmt: skip
    fills = Fills.from_frame(frame)
    assert fills.taker.tolist() == [False, True]
    assert np.isnan(fills.queue_ahead).all()
    with pytest.raises(ValueError, match=r"missing columns \['side'\]"):
        Fills.from_frame(frame.drop(columns="side"))


def test_bad_fills_name_the_field_and_row():
    with pytest.raises(ValueError, match=r"fills.side: expected \+1 \(buy\) or -1 \(sell\), row 1"):
        Fills.from_arrays(time=[1, 2], price=[1, 1], size=[1, 1], side=[1, 0])
    with pytest.raises(ValueError, match="fills.size: expected > 0 lots, row 0"):
        Fills.from_arrays(time=[1], price=[1], size=[0], side=[1])
    fills = Fills.from_arrays(time=[5.0], price=[100.0], size=[1], side=[1])
    with pytest.raises(ValueError, match=r"fills.time: expected in \(record.time\[0\]"):
        TradingRecord.from_arrays(TIME, MID, [0.0] * 4, [0.0] * 4, fills=fills)


# ------------------------------------------------------------------ invariants

samples = arrays(
    np.float64,
    st.integers(5, 200),
    # no magnitudes near underflow, so that power-of-two scalings stay exact
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False).map(
        lambda v: 0.0 if abs(v) < 1e-100 else v
    ),
)


@settings(max_examples=60, deadline=None)
@given(samples)
def test_tail_measures_are_ordered(x):
    for method in ("historical", "gaussian"):
        v95, v99 = value_at_risk(x, 0.95, method), value_at_risk(x, 0.99, method)
        e95, e99 = expected_shortfall(x, 0.95, method), expected_shortfall(x, 0.99, method)
        tol = 1e-9 * (1 + np.abs(x).max())
        assert v99 >= v95 - tol
        assert e95 >= v95 - tol and e99 >= v99 - tol
        assert e99 >= e95 - tol


@settings(max_examples=60, deadline=None)
@given(samples, st.floats(0.01, 100.0), st.floats(-100.0, 100.0), st.integers(-3, 3))
def test_scaling_and_translation(x, k, c, j):
    tol = 1e-7 * (1 + np.abs(x).max()) * (k + 1)
    # positive homogeneity and translation of VaR; scale-free ratios
    assert value_at_risk(k * x, 0.95) == pytest.approx(k * value_at_risk(x, 0.95), abs=tol)
    assert value_at_risk(x + c, 0.99) == pytest.approx(
        value_at_risk(x, 0.99) - c, abs=tol + 1e-9 * abs(c)
    )
    # the historical ES jumps where a sample ties with the quantile, so its homogeneity is
    # checked with exact (power-of-two) scale factors only
    assert expected_shortfall(2.0**j * x, 0.99) == 2.0**j * expected_shortfall(x, 0.99)
    if np.ptp(x) > 1e-6 * (1 + np.abs(x).max()):
        assert sharpe(k * x) == pytest.approx(sharpe(x), rel=1e-7)
    assert max_drawdown(k * np.cumsum(x)) == pytest.approx(k * max_drawdown(np.cumsum(x)), abs=tol)


@settings(max_examples=60, deadline=None)
@given(samples)
def test_drawdown_is_bounded_by_the_range(x):
    p = np.concatenate([[0.0], np.cumsum(x)])
    d = drawdown(p)
    assert np.all(d >= 0)
    assert d.max() <= np.ptp(p) + 1e-9 * (1 + np.abs(p).max())
    if np.all(x >= 0):
        assert d.max() == 0.0


@settings(max_examples=30, deadline=None)
@given(st.floats(0.1, 1e4), st.integers(0, 2**31 - 1))
def test_markouts_are_invariant_to_the_price_scale(scale, seed):
    # bps mark-outs do not change when every price is multiplied by the same factor
    rng = np.random.default_rng(seed)
    t = np.arange(20.0)
    mid = 100 + np.cumsum(rng.normal(0, 0.1, 20))
    ft = np.sort(rng.uniform(0.1, 19.0, 6))
    side = rng.choice([-1.0, 1.0], 6)
    price = mid[np.floor(ft).astype(int)] - side * 0.05

    def record(s):
        fills = Fills.from_arrays(ft, s * price, np.ones(6), side)
        return TradingRecord.from_arrays(t, s * mid, np.zeros(20), np.zeros(20), fills=fills)

    a, b = markouts(record(1.0), (0.0, 2.0)), markouts(record(scale), (0.0, 2.0))
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    assert np.all(a[:, 0] > 0)  # quoted 0.05 on the passive side of the mid: a gain at h = 0


# ------------------------------------------------------------------ quantstats and riskfolio


@pytest.fixture(scope="module")
def qs_returns() -> pd.Series:
    rng = np.random.default_rng(2024)
    r = rng.standard_t(4, 500) * 2e-4 + 1e-5
    return pd.Series(r, index=pd.bdate_range("2024-01-02", periods=r.size))


def test_sharpe_and_sortino_agree_with_quantstats(qs_returns):
    ppy = round(periods_per_year(60.0))  # one-minute steps, equities calendar: 98,280 exactly
    assert ppy == periods_per_year(60.0)
    r = qs_returns.to_numpy()
    assert sharpe(r, ppy) == pytest.approx(qs.stats.sharpe(qs_returns, periods=ppy), abs=1e-9)
    assert sortino(r, ppy) == pytest.approx(qs.stats.sortino(qs_returns, periods=ppy), abs=1e-9)
    assert sharpe(r) == pytest.approx(qs.stats.sharpe(qs_returns, annualize=False), abs=1e-12)


def test_var_and_es_agree_with_quantstats(qs_returns):
    r = qs_returns.to_numpy()
    for c in (0.95, 0.99):
        # quantstats' VaR is gaussian (variance-covariance, ddof=1) and signed (negative = loss)
        assert value_at_risk(r, c, "gaussian") == pytest.approx(
            -qs.stats.value_at_risk(qs_returns, confidence=c), abs=1e-12
        )
        for ours, theirs in (("historical", "historical"), ("gaussian", "parametric")):
            assert expected_shortfall(r, c, ours) == pytest.approx(  # type: ignore[arg-type]
                -qs.stats.conditional_value_at_risk(qs_returns, confidence=c, method=theirs),
                abs=1e-12,
            )


def test_max_drawdown_fraction_agrees_with_quantstats(qs_returns):
    capital = 1.0
    pnl = np.concatenate([[0.0], np.cumsum(qs_returns.to_numpy())])
    # quantstats compounds: feed it the wealth returns W_t / W_{t-1} - 1 of W = C + P
    w = pd.Series(wealth_returns(pnl, capital), index=qs_returns.index)
    assert max_drawdown_fraction(pnl, capital) == pytest.approx(-qs.stats.max_drawdown(w), abs=1e-9)
    # on the additive increments themselves quantstats would compound, and differ
    assert max_drawdown_fraction(pnl, capital) != pytest.approx(
        -qs.stats.max_drawdown(qs_returns), abs=1e-9
    )


def test_max_drawdown_agrees_with_riskfolio(qs_returns):
    dp = qs_returns.to_numpy() * 1e4  # PnL increments (cash units)
    pnl = np.concatenate([[0.0], np.cumsum(dp)])
    assert max_drawdown(pnl) == pytest.approx(rp.RiskFunctions.MDD_Abs(dp), abs=1e-9)


# ------------------------------------------------------------------ records of a simulated market


def analytic_records(num_envs: int, n_steps: int, seed: int) -> tuple[list[TradingRecord], float]:
    """Records of the Cartea-Jaimungal optimum in the analytic market, one per market.

    In that market a step fills at ``mid -/+ depth`` before the mid moves (``envs/analytic.py``);
    fills are stamped at the end of their step, as the rollout does, and :func:`mid_at` marks
    them against the mid of the step's start. Returns the records and ``A dt``.
    """
    from agents.baselines import CarteaJaimungal
    from configs.schema import AnalyticMarketConfig
    from envs.analytic import AnalyticMarketVectorEnv
    from envs.layout import INVENTORY, MID

    cj: dict[str, Any] = dict(A=10.0, k=1.0, sigma=0.1, phi=0.5, alpha=0.001, T=1.0, q_max=25)
    cfg = AnalyticMarketConfig(**cj, n_steps=n_steps, depth_min=-5.0, depth_max=10.0, s0=100.0)
    env = AnalyticMarketVectorEnv(num_envs=num_envs, config=cfg)
    policy = CarteaJaimungal(**cj, action_map=env.action_map)
    obs, _ = env.reset(seed=seed)
    dt = cfg.T / n_steps
    mids, invs, pnls = [obs[MID][:, 0].astype(float)], [obs[INVENTORY][:, 0].astype(float)], []
    bids, asks, fb, fa = [], [], [], []
    pnl = np.zeros(num_envs)
    pnls.append(pnl.copy())
    for _ in range(n_steps):
        s = mids[-1]
        obs, _, _, _, info = env.step(policy.act(obs))
        pnl = pnl + info["dpnl"]
        bids.append(s - info["bid_depth"])
        asks.append(s + info["ask_depth"])
        fb.append(info["fill_bid"].copy())
        fa.append(info["fill_ask"].copy())
        mids.append(obs[MID][:, 0].astype(float))
        invs.append(obs[INVENTORY][:, 0].astype(float))
        pnls.append(pnl.copy())
    time = np.arange(n_steps + 1) * dt
    records = []
    for i in range(num_envs):
        b, a = np.array([x[i] for x in bids]), np.array([x[i] for x in asks])
        hb, ha = np.array([x[i] for x in fb]), np.array([x[i] for x in fa])
        steps = np.concatenate([np.flatnonzero(hb), np.flatnonzero(ha)])
        side = np.concatenate([np.ones(hb.sum()), -np.ones(ha.sum())])
        price = np.concatenate([b[hb], a[ha]])
        order = np.argsort(steps, kind="stable")
        fills = Fills.from_arrays(
            time=time[steps[order] + 1],
            price=price[order],
            size=np.ones(steps.size),
            side=side[order],
        )
        records.append(
            TradingRecord.from_arrays(
                time,
                [m[i] for m in mids],
                [p[i] for p in pnls],
                [q[i] for q in invs],
                np.append(b, np.nan),
                np.append(a, np.nan),
                fills,
            )
        )
    return records, cj["A"] * dt


def test_metrics_account_for_the_pnl_of_a_simulated_market():
    records, a_dt = analytic_records(num_envs=32, n_steps=100, seed=5)
    hits = probs = 0.0
    n_fills = 0
    for rec in records:
        m = compute_metrics(rec, capital=1_000.0, horizons=(0.01, 0.05))
        # PnL = spread earned at the fills + q_{t-1} dS_t + each fill's move to its interval end
        k = np.searchsorted(rec.time, rec.fills.time) - 1
        drift = float(np.sum(rec.fills.side * (rec.mid[k + 1] - rec.mid[k])))
        total = m["spread_capture_gross"] + m["pnl_inventory"] + drift
        # (to the float32 rounding of the observed mid, ~1e-5 of 100 per step held)
        assert m["pnl"] == pytest.approx(total, abs=1e-4)
        # the fill rate estimates the model's fill probability min(A exp(-k depth) dt, 1)
        depth = np.concatenate([rec.mid[:-1] - rec.bid[:-1], rec.ask[:-1] - rec.mid[:-1]])
        probs += float(np.minimum(a_dt * np.exp(-depth), 1.0).sum())
        hits += (m["fill_rate_bid"] + m["fill_rate_ask"]) * (rec.time.size - 1)
        n_fills += rec.fills.time.size
        # at horizon 0 the mark-out is the quoted depth over the price
        d0 = markouts(rec, (0.0,))[:, 0]
        k_fill = np.searchsorted(rec.time, rec.fills.time) - 1
        depth_fill = np.where(
            rec.fills.side > 0, rec.mid[k_fill] - rec.bid[k_fill], rec.ask[k_fill] - rec.mid[k_fill]
        )
        np.testing.assert_allclose(d0, depth_fill / rec.fills.price * 1e4, rtol=1e-9)
    assert n_fills > 150  # enough fills for the rate check to have power
    # binomial standard error of the number of filled intervals
    assert abs(hits - probs) < 4 * np.sqrt(probs), (hits, probs)

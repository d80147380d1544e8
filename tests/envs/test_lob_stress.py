"""Stress scenarios in the order-book market: effects inside the window only, on paired numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from calibration.params import TOKYO_CST
from configs.schema import LOBMarketConfig, StressScenario
from envs.lob.book import (
    ASK,
    BID,
    F_T0,
    F_TIME,
    FILL_PRICE,
    FILL_SIDE,
    FILL_TAKER,
    I_AGENT_MAKER,
    I_AREM,
    I_ASK_PX,
    I_BID_PX,
    I_EVENTS,
    I_INV,
    I_MKT_EXEC,
    I_PASSIVE_OTHERS,
    KIND_TRADE,
    LOG_AGGRESSOR,
    LOG_KIND,
    N_PARAMS,
    P_MKT_SCALE,
    STOP_LOG,
    OrderBooks,
    log_width,
    pack_params,
)
from envs.lob.core import (
    E_STRESS,
    S_ENTRY_LAT,
    S_FEED_LAT,
    S_JUMP,
    S_MKT_ASK,
    S_MKT_BID,
    S_RATE,
    S_RESP_LAT,
    LOBMarketCore,
    jump_book,
    others_mid,
    pack_env_params,
    place,
    stress_schedule,
)
from evaluation.stress import skip_reason, stressed_market

N_ENVS, N_STEPS = 32, 50
WINDOW = {"start": 0.4, "end": 0.6}  # steps 20 .. 29 of dt = 1
FIRST, STOP = 20, 30
MARKET = {"T": float(N_STEPS), "n_steps": N_STEPS, "q_max": 10_000}
AT_BEST = -0.5  # action quoting 0.5 ticks from the mid on the default depth map [-1, 5]
FAR = 1.0  # action quoting 5 ticks from the mid


def scenario(window=WINDOW, **perturbations) -> dict:
    return {"name": "test", "markets": ["lob"], "window": window,
            "perturbations": perturbations}  # fmt: skip


def run(stress=None, seed=5, action=AT_BEST, n_envs=N_ENVS, **market) -> dict:
    """Per decision (rows): observed and true mids, rewards, events counted so far, the agent's
    passive bid / ask fills of the step, entry time of the live bid (from the step's start),
    whether a bid is live, observed and true inventory. ``action`` None: quotes 2.6 and 3.8
    ticks out in turn, so that new orders are sent every step."""
    config = LOBMarketConfig(**(MARKET | market), stress=stress)
    core = LOBMarketCore(config, n_envs)
    core.seed(seed)
    core.reset_state()
    keys = ("mid", "true_mid", "reward", "events", "bid_fills", "ask_fills", "t0_bid",
            "live_bid", "inv_obs", "inv")  # fmt: skip
    rows: dict[str, list] = {k: [] for k in keys}
    for t in range(N_STEPS):
        a = (0.2 if t % 2 else 0.6) if action is None else action
        obs, reward, _, info = core.step(np.full((n_envs, 2), a))
        fills = info["fills"]
        valid = np.arange(fills.shape[1])[None, :] < info["n_fills"][:, None]
        passive = valid & (fills[:, :, FILL_TAKER] == 0)
        rows["mid"].append(obs["mid"][:, 0].copy())
        rows["true_mid"].append([others_mid(core.book, core.ist, m, core.L) for m in range(n_envs)])
        rows["reward"].append(reward.copy())
        rows["events"].append(core.ist[:, I_EVENTS].copy())
        rows["bid_fills"].append((passive & (fills[:, :, FILL_SIDE] > 0)).sum(axis=1))
        rows["ask_fills"].append((passive & (fills[:, :, FILL_SIDE] < 0)).sum(axis=1))
        rows["t0_bid"].append(core.fst[:, F_T0 + BID] - t * config.dt)
        rows["live_bid"].append(core.ist[:, I_AREM + BID] > 0)
        rows["inv_obs"].append(obs["inventory"][:, 0].copy())
        rows["inv"].append(core.ist[:, I_INV].copy())
    return {k: np.asarray(v) for k, v in rows.items()}


# ----------------------------------------------------------------------------- configuration
def test_no_scenario_packs_no_schedule_and_a_scenario_packs_one():
    plain = LOBMarketConfig(**MARKET)
    p = pack_env_params(plain)
    assert p[E_STRESS] == 0 and p.size == N_PARAMS
    assert LOBMarketCore(plain, 1).stress_schedule is None
    core = LOBMarketCore(LOBMarketConfig(**MARKET, stress=scenario(volatility={"factor": 2.0})), 1)
    assert core.params[E_STRESS] == N_PARAMS
    assert core.stress_schedule is not None and core.stress_schedule.shape == (7, N_STEPS)


def test_schedule_rows_inside_and_outside_the_window():
    config = LOBMarketConfig(**MARKET, entry_latency=0.01, feed_latency=0.02,
                             response_latency=0.03)  # fmt: skip
    sc = StressScenario.model_validate(scenario(
        volatility={"factor": 3.0}, fill_intensity={"factor": 0.25, "side": "bid"},
        jump={"size": -4, "revert": True}, latency={"factor": 10.0, "add": 0.1}))  # fmt: skip
    s = stress_schedule(sc, config)
    inside = np.zeros(N_STEPS, bool)
    inside[FIRST:STOP] = True
    np.testing.assert_array_equal(s[S_RATE], np.where(inside, 9.0, 1.0))
    np.testing.assert_array_equal(s[S_MKT_BID], np.where(inside, 0.25, 1.0))
    np.testing.assert_array_equal(s[S_MKT_ASK], np.ones(N_STEPS))
    jump = np.zeros(N_STEPS)
    jump[FIRST], jump[STOP - 1] = -4, 4
    np.testing.assert_array_equal(s[S_JUMP], jump)
    for row, base in ((S_ENTRY_LAT, 0.01), (S_FEED_LAT, 0.02), (S_RESP_LAT, 0.03)):
        np.testing.assert_allclose(s[row], np.where(inside, base * 10 + 0.1, base))


def test_jump_in_sigmas_uses_the_mid_volatility_over_the_horizon():
    config = LOBMarketConfig(**MARKET)
    sc = StressScenario.model_validate(scenario(jump={"size": -3.0, "unit": "sigma"}))
    expected = round(-3.0 * TOKYO_CST.mid_volatility * np.sqrt(config.T))
    assert stress_schedule(sc, config)[S_JUMP, FIRST] == expected != 0


@pytest.mark.parametrize(
    ("perturbations", "message"),
    [
        ({"jump": {"size": 2.5}}, "whole number"),
        ({"jump": {"size": 0.01, "unit": "sigma"}}, "rounds to no tick"),
        ({"latency": {"add": 1.0}}, "must stay < dt"),
    ],
)
def test_bad_scenarios_are_refused_naming_the_scenario(perturbations, message):
    with pytest.raises(ValueError, match=message) as err:
        LOBMarketCore(LOBMarketConfig(**MARKET, stress=scenario(**perturbations)), 1)
    assert "'test'" in str(err.value)


def test_a_reverting_jump_needs_two_steps_and_analytic_only_shocks_are_refused():
    one_step = {"start": 0.4, "end": 0.41}
    with pytest.raises(ValueError, match="at least 2 steps"):
        LOBMarketCore(LOBMarketConfig(**MARKET, stress=scenario(
            one_step, jump={"size": -2, "revert": True})), 1)  # fmt: skip
    analytic_only = StressScenario.model_validate(
        scenario(fill_decay={"factor": 2.0}) | {"markets": ["analytic"]}
    )
    with pytest.raises(ValueError, match="not 'lob'"):
        stress_schedule(analytic_only, LOBMarketConfig(**MARKET))


def test_stress_evaluation_runs_the_lob_scenarios():
    market = LOBMarketConfig(**MARKET)
    sc = StressScenario.model_validate(scenario(
        volatility={"factor": 2.0}, fill_intensity={"factor": 0.5}, jump={"size": -3},
        latency={"factor": 2.0}))  # fmt: skip
    assert skip_reason(sc, market) == ""
    stressed = stressed_market(market, sc)
    assert isinstance(stressed, LOBMarketConfig) and stressed.stress == sc


# ----------------------------------------------------------------------------- paired paths
def test_neutral_scenario_gives_the_unstressed_numbers_exactly():
    neutral = scenario(volatility={"factor": 1.0}, fill_intensity={"factor": 1.0},
                       latency={"factor": 1.0})  # fmt: skip
    base, again = run(), run(neutral)
    for key in base:
        np.testing.assert_array_equal(base[key], again[key], err_msg=key)


@pytest.mark.parametrize(
    "perturbations",
    [
        {"volatility": {"factor": 2.0}},
        {"fill_intensity": {"factor": 0.25, "side": "ask"}},
        {"jump": {"size": -3}},
        {"latency": {"add": 0.5}},
    ],
    ids=["volatility", "fill_intensity", "jump", "latency"],
)
def test_scenario_changes_nothing_before_its_window(perturbations):
    base, stressed = run(), run(scenario(**perturbations))
    for key in ("mid", "reward", "events", "bid_fills", "ask_fills", "inv_obs"):
        np.testing.assert_array_equal(base[key][:FIRST], stressed[key][:FIRST], err_msg=key)
    assert not np.array_equal(base["mid"][FIRST:], stressed["mid"][FIRST:])


def test_same_seed_same_numbers_under_a_scenario():
    sc = scenario(volatility={"factor": 2.0}, jump={"size": -3, "revert": True})
    first, again = run(sc), run(sc)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)


def test_volatility_window_raises_the_event_count_by_the_factor_squared():
    factor = 2.0
    base = np.diff(run()["events"], axis=0)[FIRST : STOP - 1].sum()
    spiked = np.diff(run(scenario(volatility={"factor": factor}))["events"], axis=0)
    inside = spiked[FIRST : STOP - 1].sum()
    # ~ 10^4 unstressed events: a Poisson-like count has a relative error below 2%; the book's
    # state makes the rate vary, so allow 10%
    assert inside / base == pytest.approx(factor**2, rel=0.1)
    assert spiked[: FIRST - 1].sum() == np.diff(run()["events"], axis=0)[: FIRST - 1].sum()


@pytest.mark.parametrize(("factor", "side"), [(0.25, "bid"), (3.0, "ask")])
def test_market_order_rate_of_one_side_scales_by_the_factor(factor, side):
    """The book's own mechanism: sells (hitting the bids) and buys counted in the event log."""
    p = pack_params(TOKYO_CST)
    p[P_MKT_SCALE + (BID if side == "bid" else ASK)] = factor
    books = OrderBooks(TOKYO_CST, 16, params=p)
    books.seed(11)
    books.reset()
    evlog = np.zeros((16, 2048, log_width(books.L)))
    nlog = np.zeros(16, np.int64)
    sells = buys = 0
    while True:
        stops = books.simulate(until=300.0, event_log=(evlog, nlog))
        for m in range(16):
            rows = evlog[m, : nlog[m]]
            trade = rows[:, LOG_KIND] == KIND_TRADE
            sells += int((trade & (rows[:, LOG_AGGRESSOR] < 0)).sum())
            buys += int((trade & (rows[:, LOG_AGGRESSOR] > 0)).sum())
        nlog[:] = 0
        if not (stops == STOP_LOG).any():
            break
    # unit orders, one trade row each: sells ~ Bin(sells + buys, r / (1 + r)), r the rate ratio
    r = factor if side == "bid" else 1.0 / factor
    assert stats.binomtest(sells, sells + buys, r / (1.0 + r)).pvalue > 1e-3
    assert buys + sells > 1000


def test_no_sell_market_orders_leave_the_agents_bid_unfilled_in_the_window():
    base = run()
    dry = run(scenario(fill_intensity={"factor": 0.0, "side": "bid"}))
    assert base["bid_fills"][FIRST:STOP].sum() > 20
    assert dry["bid_fills"][FIRST:STOP].sum() == 0
    assert dry["ask_fills"][FIRST:STOP].sum() > 20


@pytest.mark.parametrize("revert", [True, False])
def test_jump_moves_the_mid_by_its_ticks_at_the_window_start(revert):
    jump = 3  # quotes 5 ticks out: the jump crosses none of the agent's orders
    # risk_averse: no random draw depends on where the agent's orders sit, so after the jump
    # the same random numbers drive the same relative flow
    base = run(action=FAR, queue_model="risk_averse")["mid"]
    moved = run(scenario(jump={"size": jump, "revert": revert}), action=FAR,
                queue_model="risk_averse")["mid"]  # fmt: skip
    diff = moved - base  # row t: the mid observed at decision t + 1
    np.testing.assert_array_equal(diff[:FIRST], 0.0)
    inside = diff[FIRST : STOP - 1]  # decisions strictly inside the window
    assert np.mean(inside == jump) > 0.9  # the same flow, shifted (agent orders aside)
    after = diff[STOP - 1 :]  # back at the start of the window's last step
    assert np.mean(after == (0 if revert else jump)) > 0.9


def test_a_crash_trades_through_the_agents_bid_at_its_price():
    config = LOBMarketConfig(**MARKET)
    core = LOBMarketCore(config, 1)
    core.seed(0)
    core.reset_state()
    bid, ask = int(core.ist[0, I_BID_PX]), int(core.ist[0, I_ASK_PX])
    place(*core.order_args(), 0, BID, bid, 2)
    place(*core.order_args(), 0, ASK, ask + 1, 1)
    others = core.book.copy()
    maker0, mkt0, passive0 = (core.ist[0, k] for k in (I_AGENT_MAKER, I_MKT_EXEC,
                                                         I_PASSIVE_OTHERS))  # fmt: skip
    jump_book(core.feed, core.ist, core.fst, core.params, core.fills, core.nfill, 0, -4)
    assert core.ist[0, I_INV] == 2 and core.ist[0, I_AREM + BID] == 0  # bought both lots
    assert core.fills[0, core.nfill[0] - 1, FILL_PRICE] == bid  # at its own price
    assert core.ist[0, I_AGENT_MAKER] - maker0 == core.ist[0, I_MKT_EXEC] - mkt0 == 2
    assert core.ist[0, I_PASSIVE_OTHERS] == passive0
    assert core.ist[0, I_BID_PX] == bid - 4 and core.ist[0, I_ASK_PX] == ask - 4
    np.testing.assert_array_equal(core.book, others)  # the others' queues, shifted
    assert core.ist[0, I_AREM + ASK] == 1  # the ask rests where it was, now far from the book
    assert core.fst[0, F_TIME] == 0.0


@settings(max_examples=15, deadline=None)
@given(d=st.integers(-12, 12).filter(bool), bid_off=st.integers(0, 6), ask_off=st.integers(1, 6))
def test_jump_conserves_lots_and_cash(d, bid_off, ask_off):
    core = LOBMarketCore(LOBMarketConfig(**MARKET), 1)
    core.seed(abs(d))
    core.reset_state()
    bid, ask = int(core.ist[0, I_BID_PX]), int(core.ist[0, I_ASK_PX])
    args = (core.feed, core.ist, core.fst, core.params, core.fills, core.nfill, 0)
    place(*args, BID, bid - bid_off, 1)
    place(*args, ASK, ask + ask_off, 1)
    others = core.book.sum()
    jump_book(*args, d)
    assert core.book.sum() == others  # no lot of the others moved
    filled = core.ist[0, I_AGENT_MAKER]
    assert abs(core.ist[0, I_INV]) == filled <= 1  # a jump crosses at most one side
    assert core.ist[0, I_AREM + BID] + core.ist[0, I_AREM + ASK] == 2 - filled
    crossed_bid = bid - bid_off >= ask + d
    crossed_ask = ask + ask_off <= bid + d
    assert core.ist[0, I_INV] == int(crossed_bid) - int(crossed_ask)


def test_latency_shock_delays_entries_and_ages_the_observation():
    add = 0.5
    base = run(action=None)
    slow = run(scenario(latency={"add": add}), action=None)
    # entry: orders sent at t dt go live at t dt + latency (quotes change every step)
    for runs, lat in ((slow, add), (base, 0.0)):
        t0 = runs["t0_bid"][FIRST:STOP]
        new = runs["live_bid"][FIRST:STOP] & (t0 >= 0)  # live orders sent in this step
        assert new.mean() > 0.5
        np.testing.assert_allclose(t0[new], lat, atol=1e-9)
    # feed and response: the observation is 0.5 time units old, so it misses recent changes
    stale_mid = slow["mid"] != slow["true_mid"]
    stale_inv = slow["inv_obs"] != slow["inv"]
    assert not stale_mid[:FIRST].any() and not stale_inv[:FIRST].any()
    assert stale_mid[FIRST:STOP].mean() > 0.2 and stale_inv[FIRST:STOP].any()
    assert not (base["mid"] != base["true_mid"]).any()

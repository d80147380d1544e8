"""The agent's orders in the order-book market: FIFO, partial fills, queue models, latency,
marketable orders and fees, inventory limits, liquidation and the kill switch."""

from __future__ import annotations

import numpy as np
import pytest

from envs.lob.book import (
    ASK,
    BID,
    F_CASH,
    F_FEES,
    F_T0,
    F_TIME,
    FILL_AHEAD0,
    FILL_PRICE,
    FILL_SIDE,
    FILL_SIZE,
    FILL_TAKER,
    I_AHEAD,
    I_AHEAD0,
    I_APX,
    I_AREM,
    I_ASK_PX,
    I_BID_PX,
    I_INV,
    P_QUEUE_MODEL,
    P_QUEUE_POWER,
    QUEUE_EXACT,
    QUEUE_PROB,
    QUEUE_PROB_LOG,
    QUEUE_RISK_AVERSE,
    cancel,
    execute_market,
)
from envs.lob.config import LOBMarketConfig
from envs.lob.core import LOBMarketCore, apply_quotes, place
from envs.lob.env import FILL_FIELDS, LOBMarketVectorEnv

PX = 10_000


def core_with_book(bid, ask, **cfg):
    """One market, spread one tick (bid PX, ask PX + 1), the given queues per level (lots)."""
    core = LOBMarketCore(LOBMarketConfig(**cfg), 1)
    core.seed(0)
    L = core.L
    core.book[0] = 0
    core.book[0, BID, : len(bid)] = bid
    core.book[0, ASK, : len(ask)] = ask
    core.ist[0] = 0
    core.ist[0, I_BID_PX] = PX
    core.ist[0, I_ASK_PX] = PX + 1
    core.fst[0] = 0.0
    core.nfill[:] = 0
    assert core.book.shape == (1, 2, L)
    return core


def args(core):
    return core.book, core.ist, core.fst, core.params, core.fills, core.nfill


def orders(core, p):
    """The order functions' leading arguments for ``core`` with the parameter vector ``p``."""
    feed, ist, fst, _, fills, nfill = core.order_args()
    return feed, ist, fst, p, fills, nfill


def fills(core):
    return core.fills[0, : core.nfill[0]]


def test_market_orders_consume_the_queue_ahead_then_the_agent_then_the_rest():
    core = core_with_book(bid=[3, 2, 2], ask=[2, 2, 2])
    b, i, f, p, fl, nf = args(core)
    place(*orders(core, p), 0, BID, PX, 2)
    assert i[0, I_AHEAD + BID] == 3 and i[0, I_AHEAD0 + BID] == 3
    for expected_ahead in (2, 1, 0):
        execute_market(b, i, f, p, fl, nf, 0, BID, 1, core.L)
        assert i[0, I_AHEAD + BID] == expected_ahead and core.nfill[0] == 0
    execute_market(b, i, f, p, fl, nf, 0, BID, 1, core.L)  # partial fill: 1 of 2 lots
    assert i[0, I_AREM + BID] == 1 and i[0, I_INV] == 1
    assert i[0, I_BID_PX] == PX  # the agent's remaining lot keeps the best bid
    # 3 lots: the agent's last lot, then the next level (the price is traded through)
    execute_market(b, i, f, p, fl, nf, 0, BID, 3, core.L)
    log = fills(core)
    assert log[:, FILL_SIZE].tolist() == [1.0, 1.0]
    assert np.all(log[:, FILL_PRICE] == PX) and np.all(log[:, FILL_SIDE] == 1.0)
    assert np.all(log[:, FILL_TAKER] == 0.0) and np.all(log[:, FILL_AHEAD0] == 3.0)
    assert i[0, I_AREM + BID] == 0 and i[0, I_INV] == 2
    assert b[0, BID, 1] == 0 and b[0, BID, 2] == 2  # PX - 1 (2 lots) consumed
    assert i[0, I_BID_PX] == PX - 2


def test_a_market_order_walking_through_the_agents_price_fills_it():
    core = core_with_book(bid=[3, 2, 4], ask=[2, 2, 2])
    b, i, f, p, fl, nf = args(core)
    place(*orders(core, p), 0, BID, PX - 1, 1)  # behind 2 lots at the second level
    assert i[0, I_AHEAD + BID] == 2
    execute_market(b, i, f, p, fl, nf, 0, BID, 6, core.L)  # 3 + 2 ahead + the agent
    assert i[0, I_INV] == 1 and fills(core)[0, FILL_PRICE] == PX - 1
    assert b[0, BID, 1] == 0 and i[0, I_BID_PX] == PX - 2


@pytest.mark.parametrize(
    ("model", "power", "p_ahead"),
    [
        (QUEUE_PROB, 2.0, 1.0 / (1.0 + 9.0)),  # f(x) = x^2: 1 / (1 + 3^2)
        (QUEUE_PROB, 1.0, 0.25),
        (QUEUE_PROB_LOG, 2.0, np.log(2.0) / (np.log(2.0) + np.log(4.0))),
        (QUEUE_EXACT, 2.0, 0.25),  # a uniform pick among the 4 resting lots
        (QUEUE_RISK_AVERSE, 2.0, 0.0),
    ],
)
def test_queue_models_decide_whether_a_cancellation_was_ahead(model, power, p_ahead):
    n = 4000
    core = core_with_book(bid=[4], ask=[2])
    b, i, f, p, fl, nf = args(core)
    p = p.copy()
    p[P_QUEUE_MODEL], p[P_QUEUE_POWER] = model, power
    place(*orders(core, p), 0, BID, PX, 1)
    i[0, I_AHEAD + BID] = 1  # ahead 1, behind 3
    ahead_hits = 0
    for _ in range(n):
        b[0, BID, 0] = 4
        i[0, I_AHEAD + BID] = 1
        cancel(b, i, f, core.rng, p, 0, BID, 1, core.L)
        assert b[0, BID, 0] == 3
        ahead_hits += i[0, I_AHEAD + BID] == 0
    se = np.sqrt(max(p_ahead * (1 - p_ahead), 1e-4) / n)
    assert abs(ahead_hits / n - p_ahead) < 5 * se


def test_risk_averse_queue_advances_only_when_nothing_is_behind():
    core = core_with_book(bid=[2], ask=[2], queue_model="risk_averse")
    b, i, f, p, fl, nf = args(core)
    place(*orders(core, p), 0, BID, PX, 1)
    b[0, BID, 0] = 3  # one lot arrived behind the agent
    cancel(b, i, f, core.rng, p, 0, BID, 1, core.L)
    assert i[0, I_AHEAD + BID] == 2
    cancel(b, i, f, core.rng, p, 0, BID, 1, core.L)  # nothing behind any more: from ahead
    assert i[0, I_AHEAD + BID] == 1


def test_marketable_order_walks_the_book_pays_the_taker_fee_and_rests_the_rest():
    core = core_with_book(bid=[2], ask=[2, 1, 3], taker_fee_bps=5.0)
    b, i, f, p, fl, nf = args(core)
    place(*orders(core, p), 0, BID, PX + 2, 4)  # asks at PX+1 (2), PX+2 (1)
    log = fills(core)
    assert log[:, FILL_PRICE].tolist() == [PX + 1, PX + 2]
    assert log[:, FILL_SIZE].tolist() == [2.0, 1.0] and np.all(log[:, FILL_TAKER] == 1.0)
    notional = 2 * (PX + 1) + (PX + 2)
    assert f[0, F_FEES] == pytest.approx(5e-4 * notional)
    assert f[0, F_CASH] == pytest.approx(-notional * (1 + 5e-4))
    assert i[0, I_INV] == 3 and i[0, I_AREM + BID] == 1 and i[0, I_APX + BID] == PX + 2
    assert i[0, I_BID_PX] == PX + 2 and i[0, I_ASK_PX] == PX + 3  # it is the new best bid
    assert b[0, ASK, 0] == 3  # the asks re-indexed from the new bid


def test_maker_rebate_is_credited():
    core = core_with_book(bid=[1], ask=[1], maker_fee_bps=-2.0)
    b, i, f, p, fl, nf = args(core)
    place(*orders(core, p), 0, ASK, PX + 1, 1)
    execute_market(b, i, f, p, fl, nf, 0, ASK, 2, core.L)
    assert i[0, I_INV] == -1
    assert f[0, F_FEES] == pytest.approx(-2e-4 * (PX + 1))
    assert f[0, F_CASH] == pytest.approx((PX + 1) * (1 + 2e-4))


def test_unchanged_quote_keeps_its_place_and_a_changed_one_goes_to_the_back():
    core = core_with_book(bid=[3, 4], ask=[2, 2])
    b, i, f, p, fl, nf = args(core)
    apply_quotes(*orders(core, p), 0, PX, PX + 1)
    assert i[0, I_AHEAD + BID] == 3
    execute_market(b, i, f, p, fl, nf, 0, BID, 2, core.L)
    f[0, F_TIME] = 1.0
    b[0, BID, 0] += 5  # others queue behind the agent
    apply_quotes(*orders(core, p), 0, PX, PX + 1)
    assert i[0, I_AHEAD + BID] == 1 and f[0, F_T0 + BID] == 0.0
    apply_quotes(*orders(core, p), 0, PX - 1, PX + 1)  # moved: back of the queue
    assert i[0, I_APX + BID] == PX - 1 and i[0, I_AHEAD + BID] == 4
    assert f[0, F_T0 + BID] == 1.0


def test_quotes_that_could_exceed_the_inventory_limit_are_not_sent():
    core = core_with_book(bid=[3], ask=[3], q_max=2)
    b, i, f, p, fl, nf = args(core)
    i[0, I_INV] = 2
    apply_quotes(*orders(core, p), 0, PX, PX + 1)
    assert i[0, I_AREM + BID] == 0 and i[0, I_AREM + ASK] == 1
    i[0, I_INV] = -2
    apply_quotes(*orders(core, p), 0, PX, PX + 1)
    assert i[0, I_AREM + BID] == 1 and i[0, I_AREM + ASK] == 0


def run_env(n=64, steps=40, seed=0, low=-0.9, high=-0.3, **cfg):
    env = LOBMarketVectorEnv(num_envs=n, n_steps=steps, T=float(steps), **cfg)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    infos = []
    for _ in range(steps):
        action = rng.uniform(low, high, (n, 2)).astype(np.float32)
        infos.append(env.step(action)[4])
    return env, infos


@pytest.mark.parametrize("distribution", ["constant", "exponential"])
def test_orders_are_live_only_after_the_entry_latency(distribution):
    lat = 0.3
    env, infos = run_env(entry_latency=lat, latency_distribution=distribution)
    n_maker = 0
    offsets = set()
    for step, info in enumerate(infos):
        for m in range(env.num_envs):
            for row in info["fills"][m, : info["n_fills"][m]]:
                if row[FILL_FIELDS["taker"]] == 0:
                    entry = row[FILL_FIELDS["time"]] - row[FILL_FIELDS["waited"]]
                    offset = entry - np.floor(entry + 1e-9)
                    offsets.add(round(offset, 6))
                    n_maker += 1
                    assert row[FILL_FIELDS["waited"]] >= 0.0
                    if distribution == "constant":
                        assert offset == pytest.approx(lat, abs=1e-9) or entry == 0.0
                    else:
                        assert entry <= step + 1.0 + 1e-9
                else:  # orders crossing on entry trade at entry time
                    offset = row[FILL_FIELDS["time"]] - np.floor(row[FILL_FIELDS["time"]] + 1e-9)
                    if distribution == "constant" and step < len(infos) - 1:
                        assert offset == pytest.approx(lat, abs=1e-9)
    assert n_maker > 50
    assert (len(offsets) == 1) == (distribution == "constant")  # random entry times otherwise


def test_the_episode_ends_flat_after_liquidation():
    env, infos = run_env(low=-1.0, high=-0.5, q_max=5)
    last = infos[-1]
    assert np.all(env.core.ist[:, I_INV] == 0) or np.any(last["unliquidated"] != 0)
    np.testing.assert_array_equal(env.core.ist[:, I_INV], last["unliquidated"])
    assert np.all(env.core.ist[:, I_AREM + BID] == 0) and np.all(env.core.ist[:, I_AREM + ASK] == 0)


def test_kill_switch_ends_the_episode_on_drawdown():
    env = LOBMarketVectorEnv(num_envs=32, n_steps=200, T=200.0, max_drawdown=3.0, q_max=20)
    env.reset(seed=1)
    # Always buy at the touch, never sell: inventory grows, the value swings with the mid.
    action = env.action_map.to_action(np.full(32, 0.5), np.full(32, 5.0))
    ended_early = np.zeros(32, np.bool_)
    for t in range(200):
        _, _, term, _, info = env.step(action)
        ended_early |= term & (t < 199)
        if term.any():
            break
    assert ended_early.any()


@pytest.mark.parametrize("feed", [0.0, 0.6])
def test_the_observed_book_is_feed_latency_old(feed):
    from envs.lob.core import others_mid

    env = LOBMarketVectorEnv(num_envs=64, n_steps=20, T=20.0, feed_latency=feed)
    env.reset(seed=3)
    stale = 0
    for _ in range(19):
        obs, *_ = env.step(np.full((64, 2), 0.5, np.float32))
        now = np.array([others_mid(env.core.book, env.core.ist, m, env.core.L) for m in range(64)])
        stale += int(np.sum(obs["mid"][:, 0] != now))
        best_now = env.core.ist[:, I_BID_PX]
        if feed == 0.0:
            np.testing.assert_array_equal(obs["mid"][:, 0], now)
            np.testing.assert_array_equal(obs["book"][:, 0, 0, 0], best_now)
    assert (stale > 0) == (feed > 0)

"""One rollout loop for both markets: the EpisodeBatch means the same in each, and the per-step
record (mid, PnL, inventory, quotes, every fill) agrees with the episode totals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.baselines import FixedSpread
from configs.schema import AnalyticMarketConfig, LOBMarketConfig
from envs.analytic import AnalyticMarketVectorEnv
from envs.lob.env import LOBMarketVectorEnv
from evaluation.rollout import FILL_COLUMNS, rollout, step_info_adapter

LOB = LOBMarketConfig(T=40.0, n_steps=40, q_max=5, phi=0.01, max_fills=256)
ANALYTIC = AnalyticMarketConfig(n_steps=40, q_max=5, phi=0.01, A=20.0)


def make_env(kind: str, n: int = 32):
    if kind == "lob":
        return LOBMarketVectorEnv(num_envs=n, config=LOB)
    return AnalyticMarketVectorEnv(num_envs=n, config=ANALYTIC)


def run(kind: str, half_spread: float = 0.5, skew: float = 0.1, seed: int = 3, n: int = 32):
    env = make_env(kind, n)
    policy = FixedSpread(half_spread, skew, action_map=env.action_map)
    return rollout(env, policy, seed, record_paths=True, record_steps=True), env


@pytest.mark.parametrize("kind", ["lob", "analytic"])
def test_the_step_record_adds_up_to_the_episode_totals(kind):
    batch, _ = run(kind)
    rec = batch.record
    assert rec is not None
    n = batch.reward.size
    assert list(rec.fills.columns) == list(FILL_COLUMNS)
    fills = rec.fills
    # one row per fill event, and every fill inside its step
    np.testing.assert_array_equal(np.bincount(fills.episode, minlength=n), batch.fills)
    lo = rec.time[fills.episode, fills.step]
    hi = rec.time[fills.episode, fills.step + 1]
    assert np.all((fills.time > lo - 1e-5) & (fills.time <= hi + 1e-5))
    # the fills move the inventory
    traded = np.bincount(fills.episode, fills.side * fills["size"], minlength=n)
    np.testing.assert_allclose(traded, rec.inventory[:, -1] - rec.inventory[:, 0])
    np.testing.assert_allclose(rec.inventory[:, -1], batch.final_inventory)
    np.testing.assert_allclose(rec.pnl[:, -1], batch.pnl)
    np.testing.assert_allclose(batch.paths["pnl"], rec.pnl)
    # the mean quoted spread is the mean of ask - bid over the decisions
    np.testing.assert_allclose(np.nanmean(rec.ask - rec.bid, axis=1), batch.spread)
    assert np.isnan(rec.bid[:, -1]).all() and rec.mid.shape == (n, batch.steps.max() + 1)


@pytest.mark.parametrize("kind", ["lob", "analytic"])
def test_buys_fill_at_or_below_the_quoted_bid_and_sells_at_or_above_the_ask(kind):
    batch, _ = run(kind)
    rec = batch.record
    assert rec is not None
    passive = rec.fills[rec.fills.taker == 0]
    bid = rec.bid[passive.episode, passive.step]
    ask = rec.ask[passive.episode, passive.step]
    buys, sells = passive.side > 0, passive.side < 0
    assert buys.any() and sells.any()
    assert np.all(passive.price[buys] <= bid[buys] + 1e-9)
    assert np.all(passive.price[sells] >= ask[sells] - 1e-9)
    if kind == "analytic":  # fills exactly at the quotes, unit size, no fees, no queue
        np.testing.assert_allclose(passive.price[buys], bid[buys])
        assert (rec.fills["size"] == 1).all() and (rec.fills.fee == 0).all()
        assert rec.fills.queue_ahead.isna().all()


def test_the_analytic_fill_count_is_the_number_of_filled_quotes():
    env = make_env("analytic", 16)
    policy = FixedSpread(0.3, 0.0, action_map=env.action_map)
    batch = rollout(env, policy, 5)
    env.reset(seed=5)
    count = np.zeros(16, np.int64)
    for _ in range(ANALYTIC.n_steps):
        _, _, _, _, info = env.step(policy.act(env.observe()))
        count += info["fill_bid"].astype(int) + info["fill_ask"].astype(int)
    np.testing.assert_array_equal(batch.fills, count)


def test_the_order_book_spread_is_in_ticks_and_fills_are_counted_per_event():
    batch, _ = run("lob", half_spread=1.5, skew=0.0)
    # quotes floor(mid - 1.5) and ceil(mid + 1.5) around a mid on the half-tick grid: 3 or 4 ticks
    assert np.all((batch.spread >= 3.0 - 1e-9) & (batch.spread <= 4.0 + 1e-9))
    rec = batch.record
    assert rec is not None
    # liquidation at the end walks the book: taker rows, one per price level
    assert (rec.fills.taker == 1).any() and rec.fills[rec.fills.taker == 1].queue_ahead.isna().all()


def test_same_seed_same_numbers_in_the_order_book():
    a, _ = run("lob", seed=11, n=8)
    b, _ = run("lob", seed=11, n=8)
    c, _ = run("lob", seed=12, n=8)
    np.testing.assert_array_equal(a.reward, b.reward)
    assert a.record is not None and b.record is not None
    assert a.record.fills.equals(b.record.fills)
    assert not np.array_equal(a.reward, c.reward)


@settings(max_examples=6, deadline=None)
@given(half_spread=st.floats(0.05, 3.0), skew=st.floats(0.0, 0.8), seed=st.integers(0, 2**16))
def test_order_book_inventory_is_conserved_by_the_recorded_fills(half_spread, skew, seed):
    batch, _ = run("lob", half_spread, skew, seed, n=4)
    rec = batch.record
    assert rec is not None
    traded = np.bincount(rec.fills.episode, rec.fills.side * rec.fills["size"], minlength=4)
    np.testing.assert_allclose(traded, rec.inventory[:, -1] - rec.inventory[:, 0])
    assert np.all(np.abs(rec.inventory) <= LOB.q_max)


def test_an_unknown_info_layout_is_reported_with_the_expected_keys():
    with pytest.raises(KeyError, match="fill_bid.*n_fills"):
        step_info_adapter({"dpnl": np.zeros(2)})

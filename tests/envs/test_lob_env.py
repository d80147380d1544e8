"""The order-book market's gymnasium faces: API, reproducibility, autoreset, baselines."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector.vector_env import AutoresetMode
from pydantic import ValidationError

import envs
from agents.base import DepthPolicy
from agents.baselines import GLFT, AvellanedaStoikov
from calibration.params import TOKYO_CST
from envs.layout import OBSERVATION_KEYS
from envs.lob.book import I_INV, I_MKT_EXEC, I_N_TRADES
from envs.lob.config import LOBMarketConfig
from envs.lob.env import LOBMarketEnv, LOBMarketVectorEnv

LOB_ID = envs.LOB_MARKET_ID  # registered when envs is imported


def run_vector(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    out, rewards = [obs], []
    for a in actions:
        obs, r, *_ = env.step(a)
        out.append(obs)
        rewards.append(r)
    return out, np.array(rewards)


def test_check_env_passes_on_the_single_market():
    env = gymnasium.make(LOB_ID, n_steps=20, T=20.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(env.unwrapped)


def test_make_and_make_vec_build_the_two_faces():
    env = gymnasium.make(LOB_ID, n_steps=10, T=5.0)
    assert isinstance(env.unwrapped, LOBMarketEnv) and env.unwrapped.config.T == 5.0
    venv = gymnasium.make_vec(
        LOB_ID, num_envs=5, vectorization_mode="vector_entry_point", n_steps=10
    )
    assert isinstance(venv.unwrapped, LOBMarketVectorEnv)
    obs, _ = venv.reset(seed=0)
    for key in OBSERVATION_KEYS:
        assert obs[key].shape == (5, 1) and obs[key].dtype == np.float32
    assert obs["book"].shape == (5, TOKYO_CST.n_levels, 2, 2)
    assert obs["orders"].shape == (5, 2, 3)
    assert obs["trades"].shape == (5, 8, 3) and not obs["trades"].any()  # none before a step
    assert venv.single_observation_space.contains({k: v[0] for k, v in obs.items()})
    obs, *_ = venv.step(np.zeros((5, 2), np.float32))
    assert venv.single_observation_space.contains({k: v[0] for k, v in obs.items()})


def test_recent_trades_are_the_interval_s_market_orders():
    """With no feed latency the ``trades`` rows are the market orders' fills of the last dt:
    their lots add up to the others' executed lots of the step (when fewer than 8 trades)."""
    n = 64
    env = LOBMarketVectorEnv(num_envs=n, n_steps=40, T=8.0, depth_min=1.0, depth_max=4.0)
    obs, _ = env.reset(seed=4)
    core = env.core
    checked = 0
    for _ in range(40):
        exec0, count0 = core.ist[:, I_MKT_EXEC].copy(), core.ist[:, I_N_TRADES].copy()
        obs, *_ = env.step(np.zeros((n, 2), np.float32))
        trades = obs["trades"]
        live = trades[:, :, 2] > 0
        assert np.all(trades[:, :, 2] <= 0.2 + 1e-6) and np.all(trades[~live] == 0)
        assert np.all(np.diff(trades[:, :, 2], axis=1)[live[:, 1:]] >= 0)  # newest first
        new = core.ist[:, I_N_TRADES] - count0
        few = new < 8
        np.testing.assert_array_equal(live.sum(axis=1)[few], new[few])
        np.testing.assert_array_equal(
            np.abs(trades[few, :, 0]).sum(axis=1), (core.ist[:, I_MKT_EXEC] - exec0)[few]
        )
        checked += int(new[few].sum())
    assert checked > 50


def test_bad_parameters_name_the_field():
    with pytest.raises(ValidationError, match="depth_max"):
        LOBMarketEnv(depth_max=12.0)
    with pytest.raises(ValidationError, match="entry_latency"):
        LOBMarketEnv(entry_latency=2.0, T=10.0, n_steps=10)
    with pytest.raises(ValidationError, match="Extra inputs"):
        LOBMarketConfig(sigma=1.0)  # type: ignore[call-arg]


def test_book_observation_is_consistent():
    env = LOBMarketVectorEnv(num_envs=16, n_steps=30, T=30.0)
    env.reset(seed=4)
    rng = np.random.default_rng(4)
    checked = 0
    for _ in range(30):
        obs, *_ = env.step(rng.uniform(-1, 1, (16, 2)).astype(np.float32))
        book = obs["book"]
        best_bid, best_ask = book[:, 0, 0, 0], book[:, 0, 1, 0]
        assert np.all(best_bid < best_ask)
        assert np.all(np.diff(book[:, :, 0, 0], axis=1) == -1)  # bid prices step down
        assert np.all(np.diff(book[:, :, 1, 0], axis=1) == 1)
        assert np.all(book[..., 1] >= 0)
        # Without own orders the mid is the book's; with them it is the others' (it may lie
        # outside the agent's own quotes when the agent alone makes the inside market).
        alone = obs["orders"][:, :, 1].sum(axis=1) == 0
        np.testing.assert_array_equal(obs["mid"][alone, 0], 0.5 * (best_bid + best_ask)[alone])
        checked += alone.sum()
    assert checked > 0


def test_same_seed_same_paths_and_different_seed_different_paths():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (40, 8, 2)).astype(np.float32)
    env = LOBMarketVectorEnv(num_envs=8, n_steps=40, T=40.0)
    obs1, r1 = run_vector(env, 123, actions)
    obs2, r2 = run_vector(env, 123, actions)
    _, r3 = run_vector(env, 124, actions)
    np.testing.assert_array_equal(r1, r2)
    for a, b in zip(obs1, obs2, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(r1, r3)


def test_parallel_stepping_gives_the_same_paths():
    rng = np.random.default_rng(5)
    actions = rng.uniform(-1, 1, (20, 16, 2)).astype(np.float32)
    obs1, r1 = run_vector(LOBMarketVectorEnv(num_envs=16, n_steps=20, T=20.0), 3, actions)
    obs2, r2 = run_vector(
        LOBMarketVectorEnv(num_envs=16, n_steps=20, T=20.0, parallel=True), 3, actions
    )
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(obs1[-1]["book"], obs2[-1]["book"])


def test_single_market_reproduces_the_batched_market_of_size_one():
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (30, 1, 2)).astype(np.float32)
    _, r_vec = run_vector(LOBMarketVectorEnv(num_envs=1, n_steps=30, T=30.0), 7, actions)
    env = LOBMarketEnv(n_steps=30, T=30.0)
    env.reset(seed=7)
    r_single = [env.step(a[0])[1] for a in actions]
    np.testing.assert_array_equal(r_vec[:, 0], r_single)


def test_rewards_add_up_to_the_value_change_minus_penalties():
    env = LOBMarketVectorEnv(
        num_envs=16, n_steps=25, T=25.0, phi=0.01, alpha=0.1, taker_fee_bps=1.0, maker_fee_bps=-0.5
    )
    obs, _ = env.reset(seed=2)
    value0 = obs["cash"][:, 0] + obs["inventory"][:, 0] * obs["mid"][:, 0]
    rng = np.random.default_rng(2)
    total, penalty = np.zeros(16), np.zeros(16)
    for _ in range(25):
        _, r, term, _, info = env.step(rng.uniform(-1, 0.5, (16, 2)).astype(np.float32))
        total += r
        penalty += info["inventory_penalty"]
    assert term.all()
    np.testing.assert_allclose(total, info["value"] - value0 - penalty, atol=1e-6)


def test_next_step_and_same_step_autoreset():
    env = LOBMarketVectorEnv(num_envs=3, n_steps=2, T=2.0)
    env.reset(seed=0)
    a = np.zeros((3, 2), np.float32)
    env.step(a)
    _, _, term, trunc, _ = env.step(a)
    assert term.all() and not trunc.any()
    obs, r, term, _, _ = env.step(a)
    np.testing.assert_array_equal(r, 0.0)
    np.testing.assert_allclose(obs["time_left"], 2.0)
    assert not term.any()
    env = LOBMarketVectorEnv(num_envs=3, n_steps=2, T=2.0, autoreset_mode="same_step")
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    env.reset(seed=0)
    env.step(a)
    obs, _, term, _, info = env.step(a)
    assert term.all() and info["_final_obs"].all()
    np.testing.assert_allclose(info["final_obs"]["time_left"], 0.0)
    np.testing.assert_allclose(obs["time_left"], 2.0)


def test_stepping_an_ended_single_market_asks_for_reset():
    env = LOBMarketEnv(n_steps=1, T=1.0)
    env.reset(seed=0)
    *_, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert terminated and isinstance(info["fills"], list)
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(np.zeros(2, np.float32))


@pytest.mark.parametrize("policy_kind", ["avellaneda_stoikov", "glft"])
def test_baselines_run_with_the_fill_curve_of_the_market_params(policy_kind):
    """AS and GLFT take A, k (1/tick) from MarketParams.fill_curve and sigma from
    mid_volatility (ticks/sqrt(s)); their depths are in ticks, the market's action unit."""
    cfg = LOBMarketConfig(n_steps=60, T=60.0, q_max=5, phi=0.001, depth_min=-1.0, depth_max=6.0)
    market = cfg.market
    env = LOBMarketVectorEnv(num_envs=32, config=cfg)
    policy: DepthPolicy
    if policy_kind == "glft":
        policy = GLFT(
            market.mid_volatility,
            market.fill_curve.A,
            market.fill_curve.k,
            0.1,
            cfg.T,
            cfg.q_max,
            action_map=env.action_map,
        )
    else:
        policy = AvellanedaStoikov(
            0.1, market.mid_volatility, market.fill_curve.k, cfg.T, action_map=env.action_map
        )
    obs, _ = env.reset(seed=3)
    n_fills = 0
    for _ in range(cfg.n_steps):
        mid = obs["mid"][:, 0].astype(np.float64)
        depth_b, depth_a = policy.depths(obs["time_left"][:, 0], np.rint(obs["inventory"][:, 0]))
        action = policy.act(obs)
        obs, r, term, _, info = env.step(action)
        assert np.all(np.isfinite(r))
        # The quoted prices are the policy's depths (clipped to the action range) from the mid.
        db = np.clip(depth_b, cfg.depth_min, cfg.depth_max)
        live = np.isfinite(depth_b)
        expected = np.floor(mid - db + 1e-9)
        np.testing.assert_allclose(info["bid_price"][live], expected[live], atol=1.0)
        assert np.all(np.abs(env.core.ist[:, I_INV]) <= cfg.q_max)
        n_fills += int(info["n_fills"].sum())
        del depth_a
    assert term.all() and n_fills > 100

"""The analytic market: gymnasium API, reproducibility, accounting invariants, fill law."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector.vector_env import AutoresetMode
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

import envs
from configs.schema import AnalyticMarketConfig
from envs.analytic import AnalyticMarketEnv, AnalyticMarketVectorEnv


def run_vector(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    rewards = []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append(obs)
        rewards.append(r)
    return out, np.array(rewards)


def test_check_env_passes_on_the_single_market():
    env = gymnasium.make(envs.ANALYTIC_MARKET_ID, n_steps=20)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(env.unwrapped)


def test_make_and_make_vec_build_the_two_faces_with_parameters():
    env = gymnasium.make(envs.ANALYTIC_MARKET_ID, sigma=0.5, n_steps=10)
    assert isinstance(env.unwrapped, AnalyticMarketEnv)
    assert env.unwrapped.config.sigma == 0.5
    venv = gymnasium.make_vec(
        envs.ANALYTIC_MARKET_ID, num_envs=7, vectorization_mode="vector_entry_point", sigma=0.5
    )
    assert isinstance(venv.unwrapped, AnalyticMarketVectorEnv)
    assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert obs["inventory"].shape == (7, 1)
    assert obs["inventory"].dtype == np.float32
    assert venv.single_observation_space.contains({k: v[0] for k, v in obs.items()})


def test_bad_parameters_name_the_field():
    with pytest.raises(ValidationError, match="sigma"):
        gymnasium.make(envs.ANALYTIC_MARKET_ID, sigma=-1.0)
    with pytest.raises(ValidationError, match="Extra inputs|extra"):
        AnalyticMarketEnv(sigmaa=1.0)
    with pytest.raises(ValidationError, match="depth_max"):
        AnalyticMarketEnv(depth_min=2.0, depth_max=1.0)


def test_same_seed_same_paths_and_different_seed_different_paths():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (50, 16, 2)).astype(np.float32)
    env = AnalyticMarketVectorEnv(num_envs=16, n_steps=50)
    obs1, r1 = run_vector(env, 123, actions)
    obs2, r2 = run_vector(env, 123, actions)
    obs3, r3 = run_vector(env, 124, actions)
    np.testing.assert_array_equal(r1, r2)
    for a, b in zip(obs1, obs2, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(r1, r3)


def test_single_market_reproduces_the_batched_market_of_size_one():
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (30, 1, 2)).astype(np.float32)
    venv = AnalyticMarketVectorEnv(num_envs=1, n_steps=30)
    _, r_vec = run_vector(venv, 7, actions)
    env = AnalyticMarketEnv(n_steps=30)
    env.reset(seed=7)
    r_single = [env.step(a[0])[1] for a in actions]
    np.testing.assert_array_equal(r_vec[:, 0], r_single)


def test_policies_see_common_random_numbers():
    """The mid path does not depend on the actions: two policies, one seed, one mid path."""
    env = AnalyticMarketVectorEnv(num_envs=8, n_steps=25)
    lo = np.full((25, 8, 2), -0.5, np.float32)
    hi = np.full((25, 8, 2), 0.9, np.float32)
    obs_lo, _ = run_vector(env, 5, lo)
    obs_hi, _ = run_vector(env, 5, hi)
    for a, b in zip(obs_lo, obs_hi, strict=True):
        np.testing.assert_array_equal(a["mid"], b["mid"])
    pairs = zip(obs_lo, obs_hi, strict=True)
    differ = [not np.array_equal(a["inventory"], b["inventory"]) for a, b in pairs]
    assert any(differ)


def test_next_step_autoreset_returns_the_reset_observation_with_zero_reward():
    env = AnalyticMarketVectorEnv(num_envs=4, n_steps=3, s0=50.0)
    env.reset(seed=0)
    a = np.zeros((4, 2), np.float32)
    for _ in range(2):
        _, _, term, _, _ = env.step(a)
        assert not term.any()
    _, _, term, trunc, _ = env.step(a)
    assert term.all() and not trunc.any()
    obs, r, term, trunc, _ = env.step(a)
    assert not term.any()
    np.testing.assert_array_equal(r, 0.0)
    np.testing.assert_allclose(obs["mid"], 50.0)
    np.testing.assert_allclose(obs["time_left"], 1.0)


def test_same_step_autoreset_puts_the_last_observation_in_info():
    env = AnalyticMarketVectorEnv(num_envs=4, n_steps=2, autoreset_mode="same_step", s0=50.0)
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    env.reset(seed=0)
    a = np.zeros((4, 2), np.float32)
    env.step(a)
    obs, _, term, _, info = env.step(a)
    assert term.all() and info["_final_obs"].all()
    np.testing.assert_allclose(info["final_obs"]["time_left"], 0.0)
    np.testing.assert_allclose(obs["time_left"], 1.0)
    np.testing.assert_allclose(obs["mid"], 50.0)


def test_stepping_an_ended_single_market_asks_for_reset():
    env = AnalyticMarketEnv(n_steps=1)
    env.reset(seed=0)
    *_, terminated, _, _ = env.step(np.zeros(2, np.float32))
    assert terminated
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(np.zeros(2, np.float32))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    q_max=st.integers(1, 4),
    phi=st.floats(0, 2),
    alpha=st.floats(0, 2),
    exact=st.booleans(),
    binary=st.booleans(),
    n_steps=st.integers(1, 40),
)
def test_accounting_identities_hold_for_random_actions(
    seed, q_max, phi, alpha, exact, binary, n_steps
):
    """Cash moves only by fills at quoted prices; rewards add up to the value change."""
    cfg = AnalyticMarketConfig(
        n_steps=n_steps, q_max=q_max, phi=phi, alpha=alpha, A=300.0, sigma=1.0,
        fill_probability="exact" if exact else "clipped",
        increments="binary" if binary else "gaussian",
    )  # fmt: skip
    n = 8
    env = AnalyticMarketVectorEnv(num_envs=n, config=cfg)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    core = env.core
    total_reward = np.zeros(n)
    total_penalty = np.zeros(n)
    for step in range(n_steps):
        mid0, cash0, q0 = core.mid.copy(), core.cash.copy(), core.inventory.copy()
        action = rng.uniform(-1.2, 1.2, (n, 2)).astype(np.float32)
        obs, r, term, trunc, info = env.step(action)
        db, da = info["bid_depth"], info["ask_depth"]
        expected_cash = (
            cash0 - info["fill_bid"] * (mid0 - db) + info["fill_ask"] * (mid0 + da)
        )
        np.testing.assert_allclose(core.cash, expected_cash, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(core.inventory, q0 + info["fill_bid"] - info["fill_ask"])
        assert np.all(np.abs(core.inventory) <= q_max)
        assert not np.any(info["fill_bid"] & (q0 >= q_max))
        assert not np.any(info["fill_ask"] & (q0 <= -q_max))
        if binary:
            np.testing.assert_allclose(np.abs(core.mid - mid0), np.sqrt(cfg.dt), rtol=1e-9)
        np.testing.assert_array_equal(term, step == n_steps - 1)
        total_reward += r
        total_penalty += info["inventory_penalty"]
    value = core.cash + core.inventory * core.mid
    np.testing.assert_allclose(total_reward, value - total_penalty, atol=1e-8)
    # The terminal penalty is part of the penalty, on the last step only.
    assert np.all(total_penalty >= alpha * core.inventory**2 - 1e-12)


@pytest.mark.parametrize("mode", ["clipped", "exact"])
def test_fill_frequency_matches_the_exponential_fill_law(mode):
    """Empirical fill rate of a constant quote vs A exp(-k delta) dt (binomial 5-sigma band)."""
    A, k, n_steps, depth = 140.0, 1.5, 200, 0.4
    cfg = AnalyticMarketConfig(
        A=A, k=k, n_steps=n_steps, fill_probability=mode, depth_min=0.0, depth_max=0.8, q_max=10**6
    )
    n = 4000
    env = AnalyticMarketVectorEnv(num_envs=n, config=cfg)
    env.reset(seed=11)
    action = env.action_map.to_action(np.full(n, depth), np.full(n, depth))
    fills = 0
    for _ in range(20):
        _, _, _, _, info = env.step(action)
        fills += info["fill_bid"].sum() + info["fill_ask"].sum()
    lam_dt = A * np.exp(-k * depth) * cfg.dt
    p = min(lam_dt, 1.0) if mode == "clipped" else -np.expm1(-lam_dt)
    trials = 20 * n * 2
    assert abs(fills / trials - p) < 5 * np.sqrt(p * (1 - p) / trials)


def test_gaussian_mid_increments_have_the_model_variance():
    cfg = AnalyticMarketConfig(sigma=2.0, drift=0.0, n_steps=100)
    env = AnalyticMarketVectorEnv(num_envs=20000, config=cfg)
    obs, _ = env.reset(seed=3)
    s0 = obs["mid"].astype(np.float64)
    obs, *_ = env.step(np.zeros((20000, 2), np.float32))
    inc = obs["mid"].astype(np.float64) - s0
    # Chi-square test of the variance sigma^2 dt at the 1e-4 level.
    n = inc.size
    chi2 = (n - 1) * inc.var(ddof=1) / (cfg.sigma**2 * cfg.dt)
    assert stats.chi2.sf(chi2, n - 1) > 1e-4 and stats.chi2.cdf(chi2, n - 1) > 1e-4


def test_kill_switch_ends_the_episode_on_drawdown():
    cfg = AnalyticMarketConfig(sigma=5.0, n_steps=500, max_drawdown=1.0, A=1000.0)
    env = AnalyticMarketVectorEnv(num_envs=64, config=cfg)
    env.reset(seed=2)
    ended_early = np.zeros(64, np.bool_)
    # Always buy (deep ask, tight bid): inventory grows and the PnL swings with the mid.
    action = env.action_map.to_action(np.full(64, -1.0), np.full(64, 5.0))
    for t in range(cfg.n_steps):
        _, _, term, _, _ = env.step(action)
        ended_early |= term & (t < cfg.n_steps - 1)
        if term.any():
            break
    assert ended_early.any()


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_a_restored_state_continues_exactly(mode):
    """A checkpointed market resumes bit for bit, across episode ends and autoresets."""
    rng = np.random.default_rng(4)
    actions = rng.uniform(-1, 1, (25, 6, 2)).astype(np.float32)
    env = AnalyticMarketVectorEnv(num_envs=6, n_steps=7, autoreset_mode=mode)
    env.reset(seed=99)
    for a in actions[:10]:
        env.step(a)
    saved = env.state_dict()
    tail = [env.step(a) for a in actions[10:]]
    other = AnalyticMarketVectorEnv(num_envs=6, n_steps=7, autoreset_mode=mode)
    other.load_state_dict(saved)
    for (obs, r, term, _, _), a in zip(tail, actions[10:], strict=True):
        obs2, r2, term2, _, _ = other.step(a)
        np.testing.assert_array_equal(r, r2)
        np.testing.assert_array_equal(term, term2)
        np.testing.assert_array_equal(obs["mid"], obs2["mid"])
    with pytest.raises(ValueError, match="cannot load"):
        AnalyticMarketVectorEnv(num_envs=5, n_steps=7).load_state_dict(saved)


def test_exploring_starts_cover_the_inventory_range_and_the_horizon():
    cfg = AnalyticMarketConfig(n_steps=20, q_max=3, q0=1, q0_range=5, random_start=True)
    env = AnalyticMarketVectorEnv(num_envs=20_000, config=cfg)
    obs, _ = env.reset(seed=4)
    q = obs["inventory"].ravel()
    levels, counts = np.unique(q, return_counts=True)
    # q0 +- 5 within +-q_max: -3 .. 3, each about equally often (uniform over 7 values)
    assert levels.tolist() == list(range(-3, 4))
    assert stats.chisquare(counts).pvalue > 1e-3
    steps = np.rint((cfg.T - obs["time_left"].ravel()) / cfg.dt)
    assert steps.min() == 0 and steps.max() == cfg.n_steps - 1
    assert np.unique(steps).size == cfg.n_steps
    again, _ = env.reset(seed=4)
    np.testing.assert_array_equal(again["inventory"], obs["inventory"])
    np.testing.assert_array_equal(again["time_left"], obs["time_left"])


def test_exploring_starts_leave_the_mid_and_fill_streams_of_a_seed_unchanged():
    plain = AnalyticMarketVectorEnv(num_envs=64, config=AnalyticMarketConfig(n_steps=5))
    exploring = AnalyticMarketVectorEnv(
        num_envs=64, config=AnalyticMarketConfig(n_steps=5, q0_range=4)
    )
    plain.reset(seed=9)
    exploring.reset(seed=9)
    action = np.zeros((64, 2), np.float32)
    for _ in range(5):
        a, *_, info_a = plain.step(action)
        b, *_, info_b = exploring.step(action)
        np.testing.assert_array_equal(a["mid"], b["mid"])
        np.testing.assert_array_equal(info_a["fill_bid"], info_b["fill_bid"])

"""The Cartea-Jaimungal optimum earns its value h(0, 0) in the analytic market.

This ties the market's reward (dPnL minus the running and terminal inventory penalties)
to the closed-form value function: if either were wrong, the Monte Carlo mean would miss.
The market is discrete in time, with at most one fill per side per step. With the default
fill probability ``lambda dt`` (clipped) the expected number of fills per step is the
model's, and the value is met on the coarse grid of the RL setting (100 steps). With
``1 - exp(-lambda dt)`` (``exact``) a fraction ~lambda dt / 2 of the fills is lost and the
mean reward misses h(0, 0) by about 1.7%: the second test shows that the check can fail.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.baselines import CarteaJaimungal, FixedSpread
from configs.schema import AnalyticMarketConfig
from envs.analytic import AnalyticMarketVectorEnv
from evaluation.rollout import rollout

# The setting of configs/cj_sac.yaml (issue "The learning half"), on a fine time grid.
CJ: dict[str, Any] = dict(A=10.0, k=1.0, sigma=0.1, phi=0.5, alpha=0.001, T=1.0, q_max=25)


def market(n_steps: int, fill_probability: str = "clipped") -> AnalyticMarketConfig:
    return AnalyticMarketConfig(
        **CJ, n_steps=n_steps, fill_probability=fill_probability, depth_min=-5.0, depth_max=10.0
    )


def test_cartea_jaimungal_mean_reward_equals_its_value_within_monte_carlo_error():
    cfg = market(100)
    env = AnalyticMarketVectorEnv(num_envs=100_000, config=cfg)
    policy = CarteaJaimungal(**CJ, action_map=env.action_map)
    batch = rollout(env, policy, seed=2024)
    h00 = float(policy.value(0.0, 0))
    stderr = batch.reward.std(ddof=1) / np.sqrt(batch.reward.size)
    assert stderr < 0.002 * abs(h00), "the test must be able to resolve a 0.2% error"
    assert abs(batch.reward.mean() - h00) < 4 * stderr, (batch.reward.mean(), h00, stderr)


def test_at_least_one_arrival_fill_probability_misses_the_value():
    """The same check has the power to fail: 1 - exp(-lambda dt) loses about 1.7% of h(0, 0)."""
    cfg = market(100, "exact")
    env = AnalyticMarketVectorEnv(num_envs=100_000, config=cfg)
    policy = CarteaJaimungal(**CJ, action_map=env.action_map)
    batch = rollout(env, policy, seed=2024)
    h00 = float(policy.value(0.0, 0))
    stderr = batch.reward.std(ddof=1) / np.sqrt(batch.reward.size)
    assert batch.reward.mean() < h00 - 4 * stderr


@pytest.mark.parametrize("half_spread", [0.5, 1.0, 2.0])
def test_no_fixed_spread_beats_the_optimum(half_spread):
    cfg = market(500)
    env = AnalyticMarketVectorEnv(num_envs=5_000, config=cfg)
    optimum = rollout(env, CarteaJaimungal(**CJ, action_map=env.action_map), seed=7)
    fixed = rollout(env, FixedSpread(half_spread, 0.1, action_map=env.action_map), seed=7)
    diff = optimum.reward - fixed.reward  # common random numbers: a paired comparison
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(diff.size)

"""The optimality ratio J / h(0, q0), plain and with the optimum's episodes as control variate."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import FixedSpread
from configs.schema import AnalyticMarketConfig
from envs.analytic import AnalyticMarketVectorEnv
from evaluation.exact import ExactAnalyticMarket
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.summary import optimal_policy, optimal_value, optimality, optimum_mean

CJ_SETTING = AnalyticMarketConfig(
    T=1.0, n_steps=100, sigma=0.1, A=10.0, k=1.0, q_max=10, phi=0.5, alpha=0.001,
    depth_min=-2.0, depth_max=4.0,
)  # fmt: skip


def _batch(reward: np.ndarray) -> EpisodeBatch:
    z = np.zeros_like(reward)
    return EpisodeBatch(reward, z, z, z, z.astype(np.int64), z, z.astype(np.int64))


def test_control_variate_is_the_optimum_mean_plus_the_paired_difference():
    policy = _batch(np.array([5.0, 7.0, 6.0, 8.0]))
    optimum = _batch(np.array([6.0, 7.5, 6.5, 8.0]))
    h = 7.0
    out = optimality(policy, h, optimum, optimum_expected=7.2)
    # paired differences -1, -0.5, -0.5, 0: mean -0.5, std (ddof 1) sqrt(1/6)
    assert out["optimality_ratio"] == pytest.approx((7.2 - 0.5) / 7.0)
    assert out["optimality_ratio_stderr"] == pytest.approx(np.sqrt(1 / 6) / 2 / 7.0)
    plain = optimality(policy, h)
    assert plain["optimality_ratio"] == pytest.approx(6.5 / 7.0)
    with pytest.raises(ValueError, match="same seeds"):
        optimality(policy, h, _batch(np.ones(3)), 7.2)
    with pytest.raises(ValueError, match="exact expected reward"):
        optimality(policy, h, optimum)


def test_on_common_paths_the_control_variate_is_far_tighter_and_unbiased():
    env = AnalyticMarketVectorEnv(num_envs=4000, config=CJ_SETTING)
    optimum = optimal_policy(CJ_SETTING, env.action_map)
    assert optimum is not None
    h = optimal_value(CJ_SETTING)
    assert h is not None
    expected = optimum_mean(CJ_SETTING, optimum)
    assert expected is not None
    # the closed-form optimum earns more than h in the discrete market: using h as its mean
    # would bias every ratio by this much (0.0038)
    assert expected / h - 1 > 0.003
    fixed = FixedSpread(1.0, 0.2, action_map=env.action_map)
    exact = ExactAnalyticMarket(CJ_SETTING).policy_value(fixed, env.action_map) / h
    batch, reference = rollout(env, fixed, seed=3), rollout(env, optimum, seed=3)
    cv, plain = optimality(batch, h, reference, expected), optimality(batch, h)
    assert cv["optimality_ratio_stderr"] < plain["optimality_ratio_stderr"] / 2
    assert abs(cv["optimality_ratio"] - exact) < 4 * cv["optimality_ratio_stderr"]
    assert abs(plain["optimality_ratio"] - exact) < 4 * plain["optimality_ratio_stderr"]
    # the optimum scored against itself is its exact mean
    assert optimality(reference, h, reference, expected)["optimality_ratio"] == pytest.approx(
        expected / h
    )

"""Exact values by backward induction (evaluation.exact) against the simulated market and the
continuous-time optimum."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import ObservationBatch, Policy
from agents.baselines import CarteaJaimungal, FixedSpread
from configs.schema import AnalyticMarketConfig, StressScenario
from envs.analytic import AnalyticMarketVectorEnv
from envs.layout import MID, DepthActionMap
from evaluation.exact import ExactAnalyticMarket, PolicyTable
from evaluation.rollout import rollout

# configs/cj_sac.yaml's market
CJ_MARKET = AnalyticMarketConfig(
    T=1.0, n_steps=100, sigma=0.1, A=10.0, k=1.0, q_max=10, phi=0.5, alpha=0.001,
    depth_min=-2.0, depth_max=4.0,
)  # fmt: skip
CJ_PARAMS: dict[str, Any] = dict(sigma=0.1, A=10.0, k=1.0, phi=0.5, alpha=0.001, T=1.0, q_max=10)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"fill_probability": "exact"},
        # a drift, a tight inventory bound that binds, a start away from zero, a short grid
        {"drift": 0.5, "q_max": 3, "q0": 1, "n_steps": 40, "A": 30.0},
        {"q0_range": 2, "random_start": True},
    ],
    ids=["clipped", "exact-law", "drift-bound", "random-starts"],
)
def test_the_exact_value_is_the_simulated_mean_within_monte_carlo_error(changes):
    market = CJ_MARKET.model_copy(update=changes)
    env = AnalyticMarketVectorEnv(num_envs=40_000, config=market)
    policy = FixedSpread(0.8, 0.3, action_map=env.action_map)
    rewards = rollout(env, policy, seed=11).reward
    exact = ExactAnalyticMarket(market).policy_value(policy, env.action_map)
    stderr = rewards.std(ddof=1) / np.sqrt(rewards.size)
    assert abs(rewards.mean() - exact) < 4 * stderr


def test_the_discrete_optimum_beats_the_closed_form_quotes_and_tends_to_h():
    """CJ's closed-form quotes are optimal in continuous time: in the discrete market they
    earn a little less than the backward induction's optimum, and the optimum approaches
    h(0, 0) as dt shrinks (first order in dt)."""
    h = float(CarteaJaimungal(**CJ_PARAMS).value(0.0, 0))
    gaps = []
    for n_steps in (100, 400):
        market = CJ_MARKET.model_copy(update={"n_steps": n_steps})
        exact = ExactAnalyticMarket(market)
        optimum, _ = exact.optimum()
        amap = DepthActionMap(market.depth_min, market.depth_max)
        cj = exact.policy_value(CarteaJaimungal(**CJ_PARAMS, action_map=amap), amap)
        assert cj <= optimum.start + 1e-9
        assert optimum.start - cj < 1e-3 * h  # the closed form is nearly optimal already
        gaps.append(optimum.start - h)
    assert 0 < gaps[1] < gaps[0] / 3


@settings(max_examples=20, deadline=None)
@given(
    shift=st.floats(-0.5, 0.5),
    skew=st.floats(-0.3, 0.3),
    seed=st.integers(0, 2**16),
    exact_law=st.booleans(),
)
def test_no_policy_beats_the_optimum_anywhere(shift, skew, seed, exact_law):
    market = CJ_MARKET.model_copy(
        update={"fill_probability": "exact" if exact_law else "clipped", "n_steps": 12}
    )
    exact = ExactAnalyticMarket(market)
    optimum, table = exact.optimum()
    noise = np.random.default_rng(seed).normal(0.0, 0.2, (2, *table.bid.shape))
    other = PolicyTable(
        bid=np.clip(table.bid + shift + skew * exact.q + noise[0], -2.0, 4.0),
        ask=np.clip(table.ask + shift - skew * exact.q + noise[1], -2.0, 4.0),
    )
    values = exact.evaluate(other).values
    assert np.all(values <= optimum.values + 1e-9)
    # and the optimum evaluated as a policy is its own value
    np.testing.assert_allclose(exact.evaluate(table).values, optimum.values, atol=1e-12)


def test_occupancy_is_a_distribution_that_matches_the_simulated_inventory():
    market = CJ_MARKET
    env = AnalyticMarketVectorEnv(num_envs=20_000, config=market)
    policy = FixedSpread(1.0, 0.1, action_map=env.action_map)
    exact = ExactAnalyticMarket(market)
    occupancy = exact.occupancy(exact.policy_table(policy, env.action_map))
    np.testing.assert_allclose(occupancy.sum(axis=1), 1.0, atol=1e-12)
    final = rollout(env, policy, seed=5).final_inventory
    simulated = np.array([(final == q).mean() for q in exact.q])
    stderr = np.sqrt(occupancy[-1] * (1 - occupancy[-1]) / final.size)
    assert np.all(np.abs(simulated - occupancy[-1]) < 4 * stderr + 1e-4)


class _MidSkew(Policy):
    """Quotes that move with the mid: not a policy of (time, inventory)."""

    def __init__(self, action_map: DepthActionMap) -> None:
        self.action_map = action_map

    def act(self, observation: ObservationBatch) -> np.ndarray:
        depth = 1.0 + 0.01 * (np.asarray(observation[MID], np.float64).reshape(-1) - 100.0)
        return self.action_map.to_action(depth, depth)


def test_refuses_what_it_cannot_compute():
    amap = DepthActionMap(CJ_MARKET.depth_min, CJ_MARKET.depth_max)
    with pytest.raises(ValueError, match="policy of \\(time, inventory\\)"):
        ExactAnalyticMarket(CJ_MARKET).policy_value(_MidSkew(amap), amap)
    with pytest.raises(ValueError, match="kill switch"):
        ExactAnalyticMarket(CJ_MARKET.model_copy(update={"max_drawdown": 1.0}))
    spike = StressScenario.model_validate({
        "name": "spike", "markets": ["analytic"],
        "window": {"start": 0.4, "end": 0.6, "unit": "fraction"},
        "perturbations": {"volatility": {"factor": 2.0}},
    })  # fmt: skip
    stressed = CJ_MARKET.model_copy(update={"stress": spike})
    with pytest.raises(ValueError, match="stress scenario"):
        ExactAnalyticMarket(stressed)

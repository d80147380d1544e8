"""One rule for the actions of every market: finite numbers of shape (N, 2), clipped to [-1, 1];
NaN, infinity, other shapes and non-numbers are errors that name what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from configs.schema import AnalyticMarketConfig, LOBMarketConfig, ReplayMarket
from envs.layout import checked_actions
from experiments.config import make_vector_env

MARKETS: dict[str, AnalyticMarketConfig | LOBMarketConfig | ReplayMarket] = {
    "analytic": AnalyticMarketConfig(n_steps=20),
    "lob": LOBMarketConfig(n_steps=5),
    "replay": ReplayMarket(n_steps=5),
}


@pytest.fixture(scope="module", params=sorted(MARKETS))
def market(request):
    return request.param, make_vector_env(MARKETS[request.param], 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused_naming_market_and_side(market, bad):
    _, env = market
    env.reset(seed=0)
    action = np.zeros((3, 2))
    action[2, 1] = bad
    with pytest.raises(ValueError, match=rf"market 2, ask, is {bad}: actions must be finite"):
        env.step(action)


def test_wrong_shape_and_non_numbers_are_clear_errors(market):
    _, env = market
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*got \(2, 2\)"):
        env.step(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="actions must be numbers"):
        env.step(np.full((3, 2), "wide"))


def test_values_beyond_the_box_act_as_its_edges(market):
    """Clipping is the action map's: 7 quotes where 1 does, -3 where -1 does."""
    _, env = market
    env.reset(seed=5)
    wide = env.step(np.array([[7.0, -3.0]] * 3))
    env.reset(seed=5)
    edge = env.step(np.array([[1.0, -1.0]] * 3))
    np.testing.assert_array_equal(wide[1], edge[1])  # rewards
    for key in edge[0]:
        np.testing.assert_array_equal(wide[0][key], edge[0][key])


def test_checked_actions_keeps_finite_values_exactly():
    a = np.array([[0.25, -1.5]], np.float32)
    out = checked_actions(a, 1)
    assert out.dtype == np.float64 and out.tolist() == [[0.25, -1.5]]

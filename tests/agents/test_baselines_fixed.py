"""FixedSpread, and DepthPolicy.act for every baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.baselines import (
    GLFT,
    AvellanedaStoikov,
    AvellanedaStoikovInfinite,
    CarteaJaimungal,
    FixedSpread,
    SymmetricSpread,
)
from envs.layout import DepthActionMap


@given(half=st.floats(0, 10), skew=st.floats(0, 2), q=st.integers(-50, 50))
def test_fixed_spread_formula(half: float, skew: float, q: int) -> None:
    bid, ask = FixedSpread(half, skew).quotes(q)
    assert bid == pytest.approx(half + skew * q, abs=1e-12)
    assert ask == pytest.approx(half - skew * q, abs=1e-12)
    assert bid + ask == pytest.approx(2 * half, abs=1e-9)  # the spread ignores inventory


def test_fixed_spread_skews_against_inventory() -> None:
    policy = FixedSpread(0.5, 0.1)
    bid, ask = policy.quotes(np.array([-2, 0, 2]))
    assert np.all(np.diff(bid) > 0) and np.all(np.diff(ask) < 0)  # long: buy less, sell more


def test_fixed_spread_depths_broadcast() -> None:
    policy = FixedSpread(1.0, 0.25)
    bid, ask = policy.depths(np.full((3, 1), 0.7), np.arange(4.0)[None, :])
    assert bid.shape == ask.shape == (3, 4)
    np.testing.assert_allclose(bid[2], 1.0 + 0.25 * np.arange(4))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"half_spread": -0.1, "skew": 0.0}, "half_spread"),
        ({"half_spread": float("nan"), "skew": 0.0}, "half_spread"),
        ({"half_spread": "1", "skew": 0.0}, "half_spread"),
        ({"half_spread": 1.0, "skew": -1.0}, "skew"),
        ({"half_spread": 1.0, "skew": float("inf")}, "skew"),
        ({"half_spread": 1.0, "skew": True}, "skew"),
    ],
)
def test_fixed_spread_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        FixedSpread(**kwargs)


# -------------------------------------------------------------------------------------------------
# DepthPolicy.act, for every baseline

ACTION_MAP = DepthActionMap(depth_min=-1.0, depth_max=4.0)
Q_MAX = 5
T = 2.0


def _as() -> AvellanedaStoikov:
    return AvellanedaStoikov(gamma=0.1, sigma=2.0, k=1.5, T=T, action_map=ACTION_MAP)


POLICIES = {
    "fixed": lambda: FixedSpread(0.8, 0.3, action_map=ACTION_MAP),
    "as": _as,
    "as_infinite": lambda: AvellanedaStoikovInfinite(
        gamma=0.1, sigma=2.0, k=1.5, omega=2.0, q_max=Q_MAX, action_map=ACTION_MAP),
    "symmetric": lambda: SymmetricSpread.matching(_as()),
    "symmetric_constant": lambda: SymmetricSpread(1.2, action_map=ACTION_MAP),
    "glft": lambda: GLFT(sigma=2.0, A=140.0, k=1.5, gamma=0.1, T=T, q_max=Q_MAX,
                         action_map=ACTION_MAP),
    "cj": lambda: CarteaJaimungal(sigma=2.0, A=140.0, k=1.5, phi=0.3, alpha=0.5, T=T,
                                  q_max=Q_MAX, action_map=ACTION_MAP),
}


@pytest.mark.parametrize("make", POLICIES.values(), ids=POLICIES.keys())
def test_act_maps_depths_to_actions(make) -> None:
    policy = make()
    rng = np.random.default_rng(0)
    n = 64
    inventory = rng.integers(-Q_MAX, Q_MAX + 1, size=(n, 1)).astype(np.float32)
    time_left = rng.uniform(0.0, T, size=(n, 1)).astype(np.float64)
    action = policy.act({"inventory": inventory, "time_left": time_left, "cash": np.zeros((n, 1))})

    assert action.dtype == np.float32 and action.shape == (n, 2)
    assert np.all(action >= -1.0) and np.all(action <= 1.0)
    bid, ask = policy.depths(time_left.reshape(-1), inventory.reshape(-1).astype(np.float64))
    depths = np.stack([bid, ask], axis=-1)
    mapped = ACTION_MAP.to_depths(action)
    inside = (depths >= ACTION_MAP.depth_min) & (depths <= ACTION_MAP.depth_max)
    assert inside.any()
    # float32 actions: depth resolution ~ width * 2^-24
    np.testing.assert_allclose(mapped[inside], depths[inside], atol=1e-6 * ACTION_MAP.width)
    # out of range (including inf at the inventory bound) saturates at the nearest end
    np.testing.assert_array_equal(action[depths > ACTION_MAP.depth_max], 1.0)
    np.testing.assert_array_equal(action[depths < ACTION_MAP.depth_min], -1.0)


def test_act_without_action_map_raises() -> None:
    with pytest.raises(ValueError, match="action map"):
        FixedSpread(1.0, 0.0).act({"inventory": np.zeros((2, 1)), "time_left": np.ones((2, 1))})


TIMED: dict[str, Any] = {key: POLICIES[key]() for key in ("as", "glft", "cj")}


@settings(max_examples=30, deadline=None)
@given(q=st.integers(-Q_MAX, Q_MAX), time_left=st.floats(0.0, T))
def test_depths_agree_with_quotes_at_elapsed_time(q: int, time_left: float) -> None:
    for policy in TIMED.values():
        np.testing.assert_array_equal(policy.depths(time_left, q), policy.quotes(T - time_left, q))

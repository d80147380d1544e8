"""Every policy kind of the config schema builds from its config and acts in either market."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import Policy
from agents.baselines import GLFT, CarteaJaimungal, GLFTAsymptotic
from agents.factory import make_policy, model_parameters
from calibration.params import TOKYO_CST, FillCurveParams
from configs.schema import (
    AnalyticMarketConfig,
    CarteaJaimungalConfig,
    GLFTConfig,
    LOBMarketConfig,
    PolicyConfig,
)
from envs.analytic import AnalyticMarketVectorEnv
from envs.layout import DepthActionMap
from envs.lob.env import LOBMarketVectorEnv
from experiments.config import CONFIG_DIR, load_config

POLICY_CLASSES = typing.get_args(typing.get_args(PolicyConfig)[0])
EXAMPLES = {
    "fixed_spread": {"half_spread": 0.7, "skew": 0.05},
    "avellaneda_stoikov": {"gamma": 0.1},
    "avellaneda_stoikov_infinite": {"gamma": 0.1, "omega": 500.0},
    "symmetric": {"gamma": 0.1},
    "glft": {"gamma": 0.1},
    "cartea_jaimungal": {},
}


def test_examples_cover_every_policy_kind():
    kinds = {cls.model_fields["kind"].default for cls in POLICY_CLASSES}
    assert kinds == set(EXAMPLES)


@pytest.mark.parametrize("cls", POLICY_CLASSES, ids=lambda c: c.__name__)
def test_policy_builds_and_acts(cls):
    cfg = cls(**EXAMPLES[cls.model_fields["kind"].default])
    market = AnalyticMarketConfig(q_max=5, n_steps=10, phi=0.01)
    env = AnalyticMarketVectorEnv(num_envs=32, config=market)
    policy = make_policy(cfg, market, env.action_map)
    assert isinstance(policy, Policy) and policy.name == cfg.kind
    obs, _ = env.reset(seed=0)
    for _ in range(market.n_steps):
        action = policy.act(obs)
        assert action.shape == (32, 2) and action.dtype == np.float32
        assert np.all(np.abs(action) <= 1.0)
        obs, *_ = env.step(action)


def test_policies_read_model_parameters_from_the_market():
    market = AnalyticMarketConfig(sigma=0.7, A=33.0, k=2.5, T=3.0, q_max=4, phi=0.2, alpha=0.3)
    env = AnalyticMarketVectorEnv(num_envs=1, config=market)
    demo = load_config(CONFIG_DIR / "demo.yaml")
    for cfg in demo.policies:
        policy = make_policy(cfg, market, env.action_map)
        shared = ["sigma", "A", "k", "T", "q_max"]
        if cfg.kind == "cartea_jaimungal":  # its penalties default to the market's
            shared += ["phi", "alpha"]
        for name in shared:
            if hasattr(policy, name):
                assert getattr(policy, name) == getattr(market, name), (cfg.kind, name)


# ----------------------------------------------------------------------- the order-book market
LOB_MARKET = LOBMarketConfig(T=20.0, n_steps=20, q_max=4, phi=0.01)


@pytest.mark.parametrize("cls", POLICY_CLASSES, ids=lambda c: c.__name__)
def test_policy_builds_and_acts_in_the_order_book(cls):
    cfg = cls(**EXAMPLES[cls.model_fields["kind"].default])
    env = LOBMarketVectorEnv(num_envs=8, config=LOB_MARKET)
    policy = make_policy(cfg, LOB_MARKET, env.action_map)
    assert isinstance(policy, Policy) and policy.name == cfg.kind
    obs, _ = env.reset(seed=0)
    for _ in range(LOB_MARKET.n_steps):
        action = policy.act(obs)
        assert action.shape == (8, 2) and action.dtype == np.float32
        assert np.all(np.abs(action) <= 1.0)
        obs, *_ = env.step(action)


def glft_depth_at_zero(A, k, sigma, gamma, q_max, time_left):
    """GLFT 2013 Theorem 1 at q = 0, from its Proposition 2 with a dense matrix exponential."""
    q = np.arange(-q_max, q_max + 1)
    eta = A * (1 + gamma / k) ** (-(1 + k / gamma))
    M = np.diag(0.5 * k * gamma * sigma**2 * q**2.0) - eta * (
        np.eye(q.size, k=1) + np.eye(q.size, k=-1)
    )
    v = scipy.linalg.expm(-M * time_left) @ np.ones(q.size)
    return np.log(v[q_max] / v[q_max + 1]) / k + np.log1p(gamma / k) / gamma


@settings(max_examples=15, deadline=None)
@given(A=st.floats(0.2, 5.0), k=st.floats(0.3, 3.0), gamma=st.floats(0.01, 0.5))
def test_glft_in_the_order_book_quotes_the_glft_depth_of_the_fill_curve(A, k, gamma):
    flow = TOKYO_CST.model_copy(update={"fill_curve": FillCurveParams(A=A, k=k)})
    market = LOBMarketConfig(market=flow, T=60.0, n_steps=60, q_max=5)
    action_map = DepthActionMap(market.depth_min, market.depth_max)
    exact = make_policy(GLFTConfig(gamma=gamma), market, action_map)
    assert isinstance(exact, GLFT)
    bid, ask = exact.depths(np.array([30.0]), np.array([0.0]))
    expected = glft_depth_at_zero(A, k, flow.mid_volatility, gamma, 5, 30.0)
    np.testing.assert_allclose(bid, expected, rtol=1e-7)
    np.testing.assert_allclose(ask, expected, rtol=1e-7)  # symmetric at q = 0
    asymptotic = make_policy(GLFTConfig(gamma=gamma, asymptotic=True), market, action_map)
    assert isinstance(asymptotic, GLFTAsymptotic)
    bid, _ = asymptotic.depths(np.array([30.0]), np.array([0.0]))
    # GLFT 2013 section 4 at q = 0:
    # 1/gamma ln(1 + gamma/k) + 1/2 sqrt(sigma^2 gamma / (2 k A) (1 + gamma/k)^(1 + k/gamma))
    sigma = flow.mid_volatility
    closed = np.log1p(gamma / k) / gamma + 0.5 * np.sqrt(
        sigma**2 * gamma / (2 * k * A) * (1 + gamma / k) ** (1 + k / gamma)
    )
    np.testing.assert_allclose(bid, closed, rtol=1e-12)


def test_order_book_model_parameters_come_from_the_order_flow_summaries():
    flow = TOKYO_CST.model_copy(update={"tick_size": 0.5, "lot_size": 100.0})
    market = LOBMarketConfig(market=flow, T=30.0, n_steps=30, q_max=7, phi=2.0, alpha=5.0)
    m = model_parameters(market)
    assert (m.A, m.k, m.sigma) == (flow.fill_curve.A, flow.fill_curve.k, flow.mid_volatility)
    assert (m.T, m.q_max) == (30.0, 7)
    assert m.phi == pytest.approx(2.0 / 50.0) and m.alpha == pytest.approx(5.0 / 50.0)
    action_map = DepthActionMap(market.depth_min, market.depth_max)
    cj = make_policy(CarteaJaimungalConfig(), market, action_map)
    assert isinstance(cj, CarteaJaimungal)
    assert (cj.phi, cj.alpha, cj.A, cj.k) == (m.phi, m.alpha, m.A, m.k)
    explicit = make_policy(CarteaJaimungalConfig(phi=1.0), market, action_map)
    assert isinstance(explicit, CarteaJaimungal)
    assert explicit.phi == pytest.approx(1.0 / 50.0)


def test_exact_grid_policies_refuse_orders_larger_than_one_lot():
    market = LOBMarketConfig(order_size=2)
    action_map = DepthActionMap(market.depth_min, market.depth_max)
    for cfg in (GLFTConfig(gamma=0.1), CarteaJaimungalConfig()):
        with pytest.raises(ValueError, match="order_size"):
            make_policy(cfg, market, action_map)
    assert make_policy(GLFTConfig(gamma=0.1, asymptotic=True), market, action_map).name

"""Every policy kind of the config schema builds from its config and acts in the market."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from agents.base import Policy
from agents.factory import make_policy
from configs.schema import AnalyticMarketConfig, PolicyConfig
from envs.analytic import AnalyticMarketVectorEnv
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

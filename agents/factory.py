"""Build a :class:`~agents.base.Policy` from its config and the market it trades in.

Model parameters the policies share with the market (sigma, A, k, T, q_max) are read from
the market's config, never copied into the policy's: one source for each number.
"""

from __future__ import annotations

from agents.base import Policy
from agents.baselines import (
    GLFT,
    AvellanedaStoikov,
    AvellanedaStoikovInfinite,
    CarteaJaimungal,
    FixedSpread,
    GLFTAsymptotic,
    SymmetricSpread,
)
from configs.schema import (
    AnalyticMarketConfig,
    AvellanedaStoikovConfig,
    AvellanedaStoikovInfiniteConfig,
    CarteaJaimungalConfig,
    FixedSpreadConfig,
    GLFTConfig,
    PolicyConfig,
    SymmetricSpreadConfig,
    policy_label,
)
from envs.layout import DepthActionMap


def make_policy(
    config: PolicyConfig, market: AnalyticMarketConfig, action_map: DepthActionMap
) -> Policy:
    """The policy ``config`` describes, for ``market``, acting through ``action_map``."""
    m = market
    policy: Policy
    if isinstance(config, FixedSpreadConfig):
        policy = FixedSpread(config.half_spread, config.skew, action_map=action_map)
    elif isinstance(config, AvellanedaStoikovConfig):
        policy = AvellanedaStoikov(config.gamma, m.sigma, m.k, m.T, action_map=action_map)
    elif isinstance(config, AvellanedaStoikovInfiniteConfig):
        policy = AvellanedaStoikovInfinite(
            config.gamma, m.sigma, m.k, config.omega, m.q_max, action_map=action_map
        )
    elif isinstance(config, SymmetricSpreadConfig):
        reference = AvellanedaStoikov(config.gamma, m.sigma, m.k, m.T)
        policy = SymmetricSpread.matching(reference, action_map=action_map)
    elif isinstance(config, GLFTConfig):
        glft_class = GLFTAsymptotic if config.asymptotic else GLFT
        policy = glft_class(m.sigma, m.A, m.k, config.gamma, m.T, m.q_max, action_map=action_map)
    elif isinstance(config, CarteaJaimungalConfig):
        phi = m.phi if config.phi is None else config.phi
        alpha = m.alpha if config.alpha is None else config.alpha
        policy = CarteaJaimungal(m.sigma, m.A, m.k, phi, alpha, m.T, m.q_max, action_map=action_map)
    else:  # pragma: no cover - the config union and this function are kept in step by tests
        raise TypeError(f"no policy for config {type(config).__name__}")
    policy.name = policy_label(config)
    return policy

"""Small realistic order flows (calibration.realistic.RealisticFlowParams) for the tests: a few
fine ticks per coarse tick so the widest spread fits a small book window."""

from __future__ import annotations

from typing import Any

import numpy as np

from calibration.params import TOKYO_CST, MarketParams
from calibration.spread_model import BEST_EVENT_TYPES


def realistic_flow(
    *,
    grid: int = 1,
    n_buckets: int = 3,
    baseline: tuple[float, ...] = (0.4, 0.4, 1.0, 1.0, 0.8, 0.8),
    decays: tuple[float, ...] = (50.0, 3.0, 0.2),
    self_excite: float = 0.25,
    cross_sign: float = 0.05,
    stay: float = 0.6,
    noise_sd: float = 0.3,
    increments: tuple[float, ...] = (0.8, -0.1, -0.05),
) -> dict[str, Any]:
    """Plain RealisticFlowParams: market orders excite their own sign (``self_excite`` split
    over the kernels) and, weakly, the other (``cross_sign``); the bucket stays with probability
    ``stay`` and otherwise moves one step, up after MOs and cancellations, down after limit
    orders."""
    M, K, D = len(decays), n_buckets, len(BEST_EVENT_TYPES)
    alpha = np.zeros((M, D, D))
    for k in range(M):
        for j in range(D):
            alpha[k, j, j] = self_excite / M
        alpha[k, 0, 1] = alpha[k, 1, 0] = cross_sign / M
    trans = np.zeros((D, K, K))
    for e in range(D):
        up = e in (0, 1, 4, 5)
        for b in range(K):
            target = min(b + 1, K - 1) if up else max(b - 1, 0)
            trans[e, b, b] += stay
            trans[e, b, target] += 1.0 - stay
    bins = [[0, 0], [1, 1], [2, 3]]
    return {
        "tick_size": 0.01,
        "lot_size": 1.0,
        "hawkes": {
            "event_types": list(BEST_EVENT_TYPES),
            "baseline": list(baseline),
            "decays": list(decays),
            "branching": alpha.tolist(),
        },
        "spread_multipliers": [[1.0] * K for _ in range(D)],
        "market_order_hawkes": {
            "event_types": ["market_buy", "market_sell"],
            "baseline": [0.4, 0.4],
            "decays": [5.0],
            "branching": [[[0.3, 0.05], [0.05, 0.3]]],
        },
        "spread": {
            "grid_ticks": grid,
            "n_buckets": K,
            "time_share": [1.0 / K] * K,
            "mean_spread": float(grid * (K + 1) / 2),
            "spread_quantiles": [float(grid), float(grid * 2), float(grid * K)],
            "covariates": ["const"],
            "transition_coefs": [[0.0]],
            "widen_jump_probs": [[1.0] + [0.0] * (K - 2 - b) for b in range(K - 1)] + [[]],
            "transition_probs": trans.tolist(),
            "narrow_probs": [[1.0] + [0.0] * b for b in range(K)],
            "placement_categories": ["inside", "at_best", "deeper"],
            "placement_probs": [[0.2, 0.6, 0.2]] * K,
            "revealed_queue_probs": [0.3, 0.3, 0.2, 0.2],
            "depletion_gap": float(grid),
            "inside_fraction_probs": [0.1] * 10,
        },
        "impact": {
            "lag_bins": bins,
            "increments": list(increments),
            "propagator_lags": [1, 2, 4],
            "propagator": [0.8, 0.7, 0.6],
            "gamma0": 0.8,
            "beta": 0.2,
            "response_horizons": [1.0, 10.0, 60.0],
            "response": [0.5, 0.5, 0.5],
            "half_spread": 1.0,
            "noise_sd": noise_sd,
        },
        "sizes": {"limit": [0.5, 0.3, 0.2], "cancel": [0.7, 0.3], "market": [0.6, 0.3, 0.1]},
    }


def realistic_market(n_levels: int = 6, **kwargs: Any) -> MarketParams:
    """A MarketParams running :func:`realistic_flow` (the baselines' summaries from Tokyo)."""
    return MarketParams.from_dict(
        {
            **TOKYO_CST.to_dict(),
            "n_levels": n_levels,
            "model": "realistic",
            "limit_rates": [],
            "cancel_rates": [],
            "market_rate": 0.0,
            "realistic": realistic_flow(**kwargs),
        }
    )

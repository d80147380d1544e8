"""Spread as a state (calibration/spread_model.py): the widening logit's recovery from known
coefficients, the design, the bucket rule and the classification of best-level events."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from calibration.spread_model import (
    BEST_EVENT_TYPES,
    WIDENING_TYPES,
    SpreadParams,
    best_events,
    choose_grid,
    covariate_names,
    design,
    fit_widening_logit,
    simulate_spread_chain,
)

K = 4
TRUE_COEFS = np.array([-0.3, -0.7, -1.4, -0.2, -0.15, -0.3, -0.6])  # covariate_names(4)


def simulate_widening(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    bucket = rng.integers(1, K, n)
    etype = rng.choice(np.array(WIDENING_TYPES), n)
    imb = rng.uniform(-1, 1, n)
    eta = design(bucket, etype, imb, K) @ TRUE_COEFS
    rise = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return bucket, rise, etype, imb


def test_widening_logit_recovers_known_coefficients_within_three_se():
    bucket, rise, etype, imb = simulate_widening(20_000, np.random.default_rng(4))
    coef, se, converged, _, _ = fit_widening_logit(bucket, rise, etype, imb, K)
    assert converged
    z = (coef[:, 0] - TRUE_COEFS) / se[:, 0]
    assert np.all(np.abs(z) < 3), z
    assert (z**2).sum() < stats.chi2.ppf(0.999, z.size), z


def test_design_matches_covariate_names():
    names = covariate_names(K)
    assert names[0] == "const" and names[-1] == "touched_imbalance"
    X = design(np.array([1, 3]), np.array([0, 5]), np.array([0.5, -0.2]), K)
    assert X.shape == (2, len(names))
    np.testing.assert_array_equal(X[0], [1, 0, 0, 0, 0, 0, 0.5])
    np.testing.assert_array_equal(X[1], [1, 0, 1, 0, 0, 1, -0.2])


def test_widening_probs_sum_to_one_and_spread_the_rise_over_jumps():
    params = SpreadParams(
        grid_ticks=14,
        n_buckets=K,
        time_share=[0.1, 0.5, 0.3, 0.1],
        mean_spread=27.0,
        spread_quantiles=[14, 25, 42],
        covariates=covariate_names(K),
        transition_coefs=[[c] for c in TRUE_COEFS],
        widen_jump_probs=[[0.8, 0.15, 0.05], [0.9, 0.1], [1.0], []],
        narrow_probs=[[1.0], [0.5, 0.5], [0.5, 0.3, 0.2], [0.4, 0.3, 0.2, 0.1]],
        transition_probs=np.tile(np.eye(K), (6, 1, 1)).tolist(),
        placement_categories=["inside", "at_best", "deeper"],
        placement_probs=[[0.1, 0.2, 0.7]] * K,
        revealed_queue_probs=[0.5, 0.5],
        depletion_gap=3.0,
        inside_fraction_probs=[0.1] * 10,
    )
    p = params.widening_probs(1, 0, 0.0)
    rise = 1 / (1 + np.exp(0.3))
    np.testing.assert_allclose(p, [1 - rise, 0.8 * rise, 0.15 * rise, 0.05 * rise])
    np.testing.assert_allclose(params.widening_probs(K, 4, 0.3), [0, 0, 0, 1])
    np.testing.assert_array_equal(
        params.bucket(np.array([1, 14, 15, 28, 29, 200])), [1, 1, 2, 2, 3, 4]
    )


def test_grid_from_the_spread_law():
    assert choose_grid(np.array([1, 1, 1, 2, 3] * 10)) == 1
    assert choose_grid(np.arange(10, 60)) == 15


class _Sample:
    """The fields of a FlowSample that best_events reads."""

    def __init__(self) -> None:
        # one book row: bid 100 (5 lots), ask 110 (2 lots)
        self.bid_px = np.array([[100.0]])
        self.ask_px = np.array([[110.0]])
        self.bid_sz = np.array([[5.0]])
        self.ask_sz = np.array([[2.0]])
        # trade buy, trade sell, add bid inside, add bid behind, add ask at best, cancel bid
        # at best, cancel ask behind
        self.kind = np.array([2, 2, 0, 0, 0, 1, 1])
        self.aggressor = np.array([1, -1, 0, 0, 0, 0, 0])
        self.side = np.array([-1, 1, 1, 1, -1, 1, -1])
        self.price = np.array([110, 100, 104, 99, 110, 100, 112])
        self.prev = np.zeros(7, dtype=np.int64)
        self.t = np.arange(7.0)


def test_best_events_classification():
    from data import schema

    assert (schema.ADD, schema.CANCEL, schema.TRADE) == (0, 1, 2)
    ev = best_events(_Sample())  # type: ignore[arg-type]
    np.testing.assert_array_equal(ev.index, [0, 1, 2, 4, 5])
    names = [BEST_EVENT_TYPES[k] for k in ev.type]
    assert names == ["market_buy", "market_sell", "limit_bid", "limit_ask", "cancel_bid"]
    np.testing.assert_allclose(ev.spread, 10.0)
    # touched imbalance: buy touches the ask (2 vs 5), sell the bid (5 vs 2)
    assert ev.imbalance[0] == pytest.approx(-3 / 7)
    assert ev.imbalance[1] == pytest.approx(3 / 7)


def _chain_params(coef_const: float, narrow: float) -> SpreadParams:
    """Rise with probability ``sigmoid(coef_const)``; a limit order drops the bucket to 1 with
    probability ``narrow``, else keeps it."""
    coefs = np.zeros(len(covariate_names(K)))
    coefs[0] = coef_const
    return SpreadParams(
        grid_ticks=1,
        n_buckets=K,
        time_share=[0.25] * K,
        mean_spread=2.0,
        spread_quantiles=[1, 2, 3],
        covariates=covariate_names(K),
        transition_coefs=[[c] for c in coefs],
        widen_jump_probs=[[1.0, 0.0, 0.0], [1.0, 0.0], [1.0], []],
        narrow_probs=[[1.0]]
        + [[1.0 - narrow] + [0.0] * (b - 2) + [narrow] for b in range(2, K + 1)],
        transition_probs=np.tile(np.eye(K), (6, 1, 1)).tolist(),
        revealed_queue_probs=[1.0],
        depletion_gap=1.0,
        placement_categories=["inside", "at_best", "deeper"],
        placement_probs=[[0.5, 0.5, 0.0]] * K,
        inside_fraction_probs=[0.1] * 10,
    )


def test_spread_chain_follows_its_rules():
    rng = np.random.default_rng(0)
    widen = np.zeros(6, dtype=np.int64)  # market buys
    limit = np.full(6, 2)  # limit bids
    imb = np.zeros(6)
    # certain rise, one bucket a step, capped at K
    up = simulate_spread_chain(_chain_params(50.0, 0.0), widen, imb, 1, rng)
    np.testing.assert_array_equal(up, [1, 2, 3, 4, 4, 4])
    # never rises; limit orders never narrow: the bucket stays
    types, imb2 = np.r_[widen, limit], np.r_[imb, imb]
    flat = simulate_spread_chain(_chain_params(-50.0, 0.0), types, imb2, 3, rng)
    assert set(flat) == {3}
    # limit orders always narrow to bucket 1, and bucket 1 stays
    down = simulate_spread_chain(_chain_params(-50.0, 1.0), limit, imb, 4, rng)
    np.testing.assert_array_equal(down, [4, 1, 1, 1, 1, 1])

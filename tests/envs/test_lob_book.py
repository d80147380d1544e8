"""The order-book market's parameters, its event kernel, and the CST 2010 validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError
from scipy import linalg, stats

from calibration.params import TOKYO_CST, MarketParams
from envs.lob.book import (
    ASK,
    BID,
    I_ADDED,
    I_CANCELLED,
    I_DROPPED,
    I_EVENTS,
    I_PASSIVE_OTHERS,
    OrderBooks,
)
from envs.lob.validation import (
    prob_mid_up_first,
    simulate_prob_mid_up_first,
    stationary_queue_distribution,
)

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------- parameters
def test_shipped_yaml_and_the_python_constant_agree():
    data = yaml.safe_load((ROOT / "configs/markets/cst_default.yaml").read_text())
    assert MarketParams.from_dict(data) == TOKYO_CST
    assert TOKYO_CST.limit_rates[:5] == [1.85, 1.51, 1.09, 0.88, 0.77]
    assert TOKYO_CST.cancel_rates[:5] == [0.71, 0.81, 0.68, 0.56, 0.47]
    assert TOKYO_CST.market_rate == 0.94


def test_params_round_trip_and_reject_bad_input():
    assert MarketParams.from_dict(TOKYO_CST.to_dict()) == TOKYO_CST
    bad = TOKYO_CST.to_dict()
    bad["limit_rates"] = bad["limit_rates"][:4]
    with pytest.raises(ValidationError, match="limit_rates"):
        MarketParams.from_dict(bad)
    extra = {**TOKYO_CST.to_dict(), "lambda": 1.0}
    with pytest.raises(ValidationError, match="Extra inputs"):
        MarketParams.from_dict(extra)
    with pytest.raises(ValidationError, match="size_probs"):
        MarketParams.from_dict({**TOKYO_CST.to_dict(), "size_distribution": "discrete"})


# ------------------------------------------------------------------------- the kernel
def run_books(params=TOKYO_CST, n=64, seed=0, until=50.0, parallel=False):
    books = OrderBooks(params, n)
    books.seed(seed)
    books.reset()
    initial = books.book.sum(axis=(1, 2)).copy()
    books.simulate(until=until, parallel=parallel)
    return books, initial


@pytest.mark.parametrize(
    "params",
    [
        TOKYO_CST,
        MarketParams.from_dict(
            {**TOKYO_CST.to_dict(), "size_distribution": "geometric", "size_mean": 2.5}
        ),
        MarketParams.from_dict(
            {**TOKYO_CST.to_dict(), "size_distribution": "discrete", "size_probs": [0.5, 0.3, 0.2]}
        ),
    ],
    ids=["unit", "geometric", "discrete"],
)
def test_book_invariants_and_volume_conservation(params):
    books, initial = run_books(params, n=128)
    assert np.all(books.book >= 0)
    assert np.all(books.ask_px > books.bid_px)
    assert np.all(books.ask_px - books.bid_px <= params.n_levels)
    ist = books.ist
    np.testing.assert_array_equal(
        books.book.sum(axis=(1, 2)),
        initial + ist[:, I_ADDED] - ist[:, I_CANCELLED] - ist[:, I_DROPPED]
        - ist[:, I_PASSIVE_OTHERS],
    )  # fmt: skip
    assert np.all(books.time == 50.0)
    # Best queues are non-empty unless a whole side of the window is empty.
    s = books.ask_px - books.bid_px
    idx = np.arange(books.num_books)
    for side in (ASK, BID):
        at_best = books.book[idx, side, s - 1]
        empty_side = books.book[:, side].sum(axis=1) == 0
        assert np.all((at_best > 0) | empty_side)


def test_same_seed_same_books_serial_or_parallel_and_other_seed_differs():
    a, _ = run_books(seed=3)
    b, _ = run_books(seed=3, parallel=True)
    c, _ = run_books(seed=4)
    np.testing.assert_array_equal(a.book, b.book)
    np.testing.assert_array_equal(a.ist, b.ist)
    assert not np.array_equal(a.ist[:, I_EVENTS], c.ist[:, I_EVENTS])


def test_a_book_path_does_not_depend_on_the_number_of_books():
    small, _ = run_books(n=3, seed=9)
    large, _ = run_books(n=40, seed=9)
    np.testing.assert_array_equal(small.ist, large.ist[:3])


def test_event_rate_matches_the_gillespie_total_rate():
    """A frozen book (no market orders, no cancellations at the best, huge best queues) has a
    known stationary total rate: 2 sum lambda + sum_i theta(i) E[n_i] over levels i >= 2."""
    lam = np.asarray(TOKYO_CST.limit_rates)
    theta = np.asarray(TOKYO_CST.cancel_rates)
    params = MarketParams.from_dict(
        {**TOKYO_CST.to_dict(), "market_rate": 0.0, "cancel_rates": [1e-12, *theta[1:]],
         "initial_book": [1000, *[round(x) for x in (lam / theta)[1:]]]}
    )  # fmt: skip
    books, _ = run_books(params, n=400, until=30.0)
    # E[n_i] = lambda(i)/theta(i) in the stationary state, so each level's cancels balance its
    # arrivals: the expected total is 2 (sum lambda + sum_{i>=2} lambda(i)) per unit time.
    rate = 2.0 * (lam.sum() + lam[1:].sum())
    n_events = books.ist[:, I_EVENTS].sum()
    expected = rate * 30.0 * 400
    assert abs(n_events - expected) < 5.0 * np.sqrt(expected) + 0.01 * expected


def test_queue_away_from_a_frozen_best_has_the_birth_death_stationary_law():
    """With the best quotes frozen (no market orders, no cancellations at distance 1, large
    best queues), the queue at distance i >= 2 is exactly the CST 2010 birth-death queue:
    Poisson(lambda(i)/theta(i)). Levels start empty; after t = 25 >> 1/theta they are
    stationary. Chi-square goodness of fit at the 1e-3 level."""
    theta = list(TOKYO_CST.cancel_rates)
    params = MarketParams.from_dict(
        {
            **TOKYO_CST.to_dict(),
            "market_rate": 0.0,
            "cancel_rates": [1e-12, *theta[1:]],
            "initial_book": [1000] + [0] * (TOKYO_CST.n_levels - 1),
        }
    )
    books, _ = run_books(params, n=4000, until=25.0, seed=5)
    assert np.all(books.ask_px - books.bid_px == 1)
    for level in (2, 4):
        sizes = books.book[:, BID, level - 1]
        pi = stationary_queue_distribution(params, level)
        k_max = 5
        observed = np.array([*(np.sum(sizes == k) for k in range(k_max)), np.sum(sizes >= k_max)])
        expected = np.array([*pi[:k_max], pi[k_max:].sum()]) * sizes.size
        chi2 = np.sum((observed - expected) ** 2 / expected)
        assert stats.chi2.sf(chi2, k_max) > 1e-3, (level, observed, expected)


# ---------------------------------------------------------------- P(mid up first), exact
def first_passage_prob_up(a, b, params, cap=40):
    """Independent check: the best queues are independent birth-death chains until one empties,
    so P(up) = int_0^inf f_a(t) S_b(t) dt with f, S the first-passage density and survival of
    0. Spectral solution: the generator is reversible, hence symmetrizable."""
    lam, theta, mu = params.limit_rates[0], params.cancel_rates[0], params.market_rate
    n = np.arange(1, cap + 1)
    death = theta * n + mu
    birth = np.where(n < cap, lam, 0.0)
    q = np.diag(-(death + birth)) + np.diag(birth[:-1], 1) + np.diag(death[1:], -1)
    # detailed balance weights pi_n ~ prod birth/death; Q = D^-1/2 S D^1/2 with S symmetric
    log_pi = np.concatenate([[0.0], np.cumsum(np.log(birth[:-1]) - np.log(death[1:]))])
    d_half = np.exp(0.5 * log_pi)
    s = (d_half[:, None] * q) / d_half[None, :]
    s = 0.5 * (s + s.T)
    w, v = linalg.eigh(s)
    left = v / d_half[:, None]  # rows x: e^{Qt} = sum_k left[x,k] e^{w_k t} right[k,:]
    right = v.T * d_half[None, :]
    exit_ = np.zeros(cap)
    exit_[0] = death[0]
    ones = np.ones(cap)
    alpha = left[a - 1] * (right @ exit_)  # f_a(t) = sum_k alpha_k e^{w_k t}
    beta = left[b - 1] * (right @ ones)  # S_b(t) = sum_l beta_l e^{w_l t}
    return float(np.sum(alpha[:, None] * beta[None, :] / -(w[:, None] + w[None, :])))


@pytest.mark.parametrize(("a", "b"), [(1, 1), (1, 2), (2, 1), (3, 3), (1, 5), (4, 2), (7, 3)])
def test_exact_probability_agrees_with_an_independent_spectral_computation(a, b):
    exact = prob_mid_up_first(a, b, TOKYO_CST)
    assert exact == pytest.approx(first_passage_prob_up(a, b, TOKYO_CST), abs=1e-9)
    assert exact == pytest.approx(prob_mid_up_first(a, b, TOKYO_CST, cap=200), abs=1e-12)


def test_exact_probability_is_symmetric_and_monotone():
    for a in range(1, 6):
        for b in range(1, 6):
            up = prob_mid_up_first(a, b, TOKYO_CST)
            assert up == pytest.approx(1.0 - prob_mid_up_first(b, a, TOKYO_CST), abs=1e-10)
            assert up < prob_mid_up_first(a, b + 1, TOKYO_CST)
    assert prob_mid_up_first(1, 1, TOKYO_CST) == pytest.approx(0.5, abs=1e-12)


CASES = [(1, 1, 1), (1, 2, 1), (3, 1, 1), (2, 5, 1), (4, 4, 1), (1, 3, 2)]


@pytest.mark.parametrize(("a", "b", "spread"), CASES)
def test_simulated_probability_matches_the_exact_one(a, b, spread):
    """The full book kernel vs the birth-death computation, within 4 binomial standard errors."""
    exact = prob_mid_up_first(a, b, TOKYO_CST, spread=spread)
    est = simulate_prob_mid_up_first(a, b, TOKYO_CST, 20_000, seed=100 * a + b, spread=spread)
    se = np.sqrt(exact * (1 - exact) / est.n)
    print(f"a={a} b={b} spread={spread}: exact {exact:.4f}  simulated {est.p:.4f} +- {se:.4f}")
    assert abs(est.p - exact) < 4 * se


def test_the_comparison_can_fail_on_a_wrong_model():
    """The test above has power: a book with another market-order rate is rejected."""
    exact = prob_mid_up_first(1, 3, TOKYO_CST)
    other = MarketParams.from_dict({**TOKYO_CST.to_dict(), "market_rate": 3.0})
    est = simulate_prob_mid_up_first(1, 3, other, n_paths=20_000, seed=1)
    assert abs(est.p - exact) > 4 * np.sqrt(exact * (1 - exact) / est.n)


def test_exact_probability_rejects_what_it_does_not_model():
    with pytest.raises(ValueError, match="unit"):
        prob_mid_up_first(
            1,
            1,
            MarketParams.from_dict(
                {**TOKYO_CST.to_dict(), "size_distribution": "geometric", "size_mean": 2.0}
            ),
        )
    with pytest.raises(ValueError, match="spread"):
        prob_mid_up_first(1, 1, TOKYO_CST, spread=TOKYO_CST.n_levels + 1)
    with pytest.raises(ValueError, match=">= 1"):
        prob_mid_up_first(0, 1, TOKYO_CST)


def test_the_baseline_summaries_in_tokyo_cst_match_a_fresh_simulation():
    """fill_curve and mid_volatility of TOKYO_CST are simulation estimates: re-estimate them
    with other seeds (a few seconds)."""
    from envs.lob.validation import estimate_fill_curve, estimate_mid_volatility

    sigma = estimate_mid_volatility(TOKYO_CST, n_books=1000, seed=11)
    A, k, _ = estimate_fill_curve(TOKYO_CST, np.array([0.5, 1.5, 2.5, 3.5]), n_books=256, seed=12)
    assert sigma == pytest.approx(TOKYO_CST.mid_volatility, rel=0.05)
    assert A == pytest.approx(TOKYO_CST.fill_curve.A, rel=0.1)
    assert k == pytest.approx(TOKYO_CST.fill_curve.k, rel=0.1)

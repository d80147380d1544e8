"""Cartea & Jaimungal (2015): risk-neutral market making with a running inventory penalty."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from agents.baselines import CarteaJaimungal

# A market in the spirit of CJP 2015 ch. 10 (arrivals ~1/s, k = 100 per $, 5-minute horizon).
BOOK: dict[str, Any] = {"sigma": 0.01, "A": 1.0, "k": 100.0, "phi": 2e-4, "alpha": 1e-3, "T": 300.0}
BOOK_POLICY = CarteaJaimungal(**BOOK, q_max=10)
SMALL: dict[str, Any] = {"sigma": 2.0, "A": 140.0, "k": 1.5, "phi": 0.4, "alpha": 0.3, "T": 1.0}
SMALL_POLICY = CarteaJaimungal(**SMALL, q_max=5)


def _all_q(policy: CarteaJaimungal) -> np.ndarray:
    return np.arange(-policy.q_max, policy.q_max + 1)


def _brute_force_h(policy: CarteaJaimungal, t: float) -> np.ndarray:
    """h = (1/k) ln(expm(Amat (T - t)) z) with Amat and z as in CJP 2015 section 10.2."""
    q = _all_q(policy)
    n = q.size
    amat = (np.diag(-policy.phi * policy.k * q**2.0)
            + policy.A * math.exp(-1) * (np.eye(n, k=1) + np.eye(n, k=-1)))
    z = np.exp(-policy.alpha * policy.k * q**2.0)
    return np.log(scipy.linalg.expm(amat * (policy.T - t)) @ z) / policy.k


@pytest.mark.parametrize("t", [0.0, 0.2, 0.77, 1.0])
def test_matches_brute_force_matrix_exponential(t: float) -> None:
    policy = SMALL_POLICY
    q = _all_q(policy)
    h = _brute_force_h(policy, t)
    np.testing.assert_allclose(policy.value(t, q), h, rtol=0, atol=1e-11)
    bid, ask = policy.quotes(t, q)
    np.testing.assert_allclose(bid[:-1], 1 / policy.k - h[1:] + h[:-1], atol=1e-11)
    np.testing.assert_allclose(ask[1:], 1 / policy.k - h[:-1] + h[1:], atol=1e-11)
    assert np.isinf(bid[-1]) and np.isinf(ask[0])


def _hjb_residual(policy: CarteaJaimungal, t: float, q: int) -> tuple[float, float]:
    """dh/dt - phi q^2 + sum_sides sup_delta A e^(-k delta) (delta + h(t, q -+ 1) - h(t, q)).

    Returns the residual and the size of its largest term. The sups are found numerically and their
    maximizers checked against the policy's depths; dh/dt by central differences with a step small
    against the time left (h varies on that scale near T).
    """
    step = 1e-4 * min(t, policy.T - t)
    dh_dt = float(policy.value(t + step, q) - policy.value(t - step, q)) / (2 * step)
    terms = [dh_dt, -policy.phi * q**2]
    h_q = float(policy.value(t, q))
    bid, ask = policy.quotes(t, q)
    for neighbour, depth in ((q - 1, ask), (q + 1, bid)):
        if abs(neighbour) > policy.q_max:
            assert np.isinf(depth)  # that side is closed at the inventory bound
            continue
        jump = float(policy.value(t, neighbour)) - h_q

        def gain(delta: float, jump: float = jump) -> float:
            return policy.A * math.exp(-policy.k * delta) * (delta + jump)

        centre = 1 / policy.k - jump
        best = minimize_scalar(lambda d, g=gain: -g(d), method="bounded",
                               bounds=(centre - 20 / policy.k, centre + 20 / policy.k),
                               options={"xatol": 1e-12 / policy.k})
        assert best.x == pytest.approx(float(depth), abs=1e-6 / policy.k)
        terms.append(gain(best.x))
    return sum(terms), max(abs(x) for x in terms)


@pytest.mark.parametrize("q", [-5, -2, 0, 3, 5])
@pytest.mark.parametrize("t", [0.1, 0.6, 0.999])
def test_value_solves_the_hjb(t: float, q: int) -> None:
    residual, scale = _hjb_residual(SMALL_POLICY, t, q)
    assert abs(residual) < 1e-6 * scale


@pytest.mark.parametrize("q", [-10, -4, 0, 7])
def test_value_solves_the_hjb_book_parameters(q: int) -> None:
    residual, scale = _hjb_residual(BOOK_POLICY, 120.0, q)
    assert abs(residual) < 1e-6 * scale


def test_terminal_condition() -> None:
    policy = BOOK_POLICY
    q = _all_q(policy)
    np.testing.assert_allclose(policy.value(policy.T, q), -policy.alpha * q**2, atol=1e-15)
    bid, ask = policy.quotes(policy.T, q)
    # delta_-(T, q) = 1/k + alpha (1 + 2q), delta_+(T, q) = 1/k + alpha (1 - 2q)
    np.testing.assert_allclose(bid[:-1], 1 / policy.k + policy.alpha * (1 + 2 * q[:-1]), atol=1e-14)
    np.testing.assert_allclose(ask[1:], 1 / policy.k + policy.alpha * (1 - 2 * q[1:]), atol=1e-14)


def test_no_penalty_limit() -> None:
    """phi = alpha = 0, bound far away: h(0, 0) = 2 A e^-1 T / k and both depths 1/k."""
    policy = CarteaJaimungal(sigma=0.01, A=1.0, k=2.0, phi=0.0, alpha=0.0, T=1.0, q_max=30)
    assert float(policy.value(0.0, 0)) == pytest.approx(2 * math.exp(-1) * 1.0 / 2.0, rel=1e-12)
    bid, ask = policy.quotes(np.linspace(0, 1, 5)[:, None], np.arange(-10, 11)[None, :])
    np.testing.assert_allclose(bid, 0.5, rtol=1e-12)
    np.testing.assert_allclose(ask, 0.5, rtol=1e-12)
    # near the bound the missing side lowers h, so the agent quotes wider away from it
    bid, ask = policy.quotes(0.0, 29)
    assert bid > 0.5 + 1e-6


@settings(max_examples=60, deadline=None)
@given(t=st.floats(0.0, BOOK["T"]), q=st.integers(-10, 10))
def test_quotes_symmetric_in_inventory(t: float, q: int) -> None:
    bid, ask = BOOK_POLICY.quotes(t, q)
    mirror_bid, mirror_ask = BOOK_POLICY.quotes(t, -q)
    assert bid == mirror_ask and ask == mirror_bid  # exact: omega is even by construction


@pytest.mark.parametrize("policy", [BOOK_POLICY, SMALL_POLICY])
def test_depths_monotone_in_inventory(policy: CarteaJaimungal) -> None:
    q = _all_q(policy)
    for t in np.linspace(0.0, policy.T, 6):
        bid, ask = policy.quotes(t, q)
        # long: bid deeper (buy less), ask closer (sell more)
        assert np.all(np.diff(bid[:-1]) > 0) and np.all(np.diff(ask[1:]) < 0)
        # h(t, .) is concave in q, which is the same statement
        assert np.all(np.diff(policy.value(t, q), 2) < 0)


def test_huge_terminal_penalty_stays_exact() -> None:
    """z_Q = exp(-alpha k Q^2) = e^-40000 underflows; the log-domain solution does not."""
    policy = CarteaJaimungal(sigma=1.0, A=5.0, k=10.0, phi=0.01, alpha=10.0, T=1.0, q_max=20)
    grid = _all_q(policy)
    with np.errstate(all="ignore"):
        assert not np.all(np.isfinite(_brute_force_h(policy, policy.T)))
    np.testing.assert_allclose(policy.value(policy.T, grid), -policy.alpha * grid**2, rtol=1e-15)
    for t in (0.0, 0.5, 0.999, 1.0):
        bid, ask = policy.quotes(t, grid)
        assert np.all(np.isfinite(bid[:-1])) and np.all(np.isfinite(ask[1:]))
        assert np.all(np.diff(bid[:-1]) > 0)
    # Near T the tails matter (terms ~1e6); at q = 0 there every term is ~1e-7 and the finite
    # difference would only measure h's absolute rounding, so q = 0 is checked at t = 0.5.
    for t, inventories in ((0.5, (-20, -7, 0, 15)), (0.999999, (-20, -7, 15))):
        for q in inventories:
            residual, scale = _hjb_residual(policy, t, q)
            assert abs(residual) < 1e-6 * scale


def test_sigma_does_not_enter() -> None:
    other = CarteaJaimungal(**(SMALL | {"sigma": 50.0}), q_max=5)
    q = _all_q(SMALL_POLICY)
    np.testing.assert_array_equal(other.quotes(0.3, q), SMALL_POLICY.quotes(0.3, q))


def test_depths_and_value_broadcast() -> None:
    policy = SMALL_POLICY
    bid, ask = policy.depths(np.array([[1.0], [0.25]]), np.array([[-5.0, 0.0, 5.0]]))
    assert bid.shape == ask.shape == (2, 3)
    assert np.isinf(bid[:, 2]).all() and np.isinf(ask[:, 0]).all()
    np.testing.assert_array_equal(bid[1], policy.quotes(0.75, [-5, 0, 5])[0])
    assert policy.value(np.array([0.0, 0.5]), 0).shape == (2,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma": 0.0}, "sigma must be a finite number > 0"),
        ({"A": float("inf")}, "A must be a finite number > 0"),
        ({"k": -1.0}, "k must be a finite number > 0"),
        ({"phi": -1e-3}, "phi must be a finite number >= 0"),
        ({"alpha": float("nan")}, "alpha must be a finite number >= 0"),
        ({"T": 0.0}, "T must be a finite number > 0"),
        ({"q_max": -2}, "q_max must be an integer >= 1"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CarteaJaimungal(**(SMALL | {"q_max": 3} | kwargs))


def test_rejects_bad_states() -> None:
    with pytest.raises(ValueError, match="q_max"):
        SMALL_POLICY.value(0.0, -6)
    with pytest.raises(ValueError, match="t must lie in"):
        SMALL_POLICY.quotes(-0.01, 0)

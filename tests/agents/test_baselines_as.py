"""Avellaneda-Stoikov (2008): finite horizon, infinite horizon, and the symmetric benchmark."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import brentq

from agents.baselines import AvellanedaStoikov, AvellanedaStoikovInfinite, SymmetricSpread

# AS 2008 section 3.3 simulation parameters: s = 100, T = 1, sigma = 2, dt = 0.005, k = 1.5, A =
# 140.
SIGMA, K, T, DT = 2.0, 1.5, 1.0, 0.005

# AS 2008 Tables 1-3 (published version): average spread of the inventory strategy (the symmetric
# strategy uses the same spread) for gamma = 0.1, 0.01, 1.
PUBLISHED_AVERAGE_SPREAD = {0.1: 1.49, 0.01: 1.35, 1.0: 3.02}


@pytest.mark.parametrize(("gamma", "published"), PUBLISHED_AVERAGE_SPREAD.items())
def test_average_spread_matches_published_tables(gamma: float, published: float) -> None:
    policy = AvellanedaStoikov(gamma, SIGMA, K, T)
    # Time grid of the paper's simulation, both ends included (the exact time average over [0, T]
    # of the spread, linear in t). The grid 0, ..., 0.995 without t = T gives 3.03 for gamma = 1.
    t = np.linspace(0.0, T, round(T / DT) + 1)
    assert round(float(policy.spread(t).mean()), 2) == published
    exact_average = gamma * SIGMA**2 * T / 2 + 2 / gamma * math.log(1 + gamma / K)
    assert float(policy.spread(t).mean()) == pytest.approx(exact_average, rel=1e-12)
    assert round(policy.average_spread(), 2) == published
    # the symmetric benchmark quotes the average spread at every time, centred on the mid
    symmetric = SymmetricSpread.matching(policy)
    bid, ask = symmetric.depths(T - t, np.full_like(t, 3.0))
    np.testing.assert_allclose(bid + ask, exact_average, rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(gamma=st.floats(1e-3, 2.0), t=st.floats(0.0, T), q=st.integers(-20, 20))
def test_quotes_are_spread_around_reservation_price(gamma: float, t: float, q: int) -> None:
    policy = AvellanedaStoikov(gamma, SIGMA, K, T)
    bid, ask = policy.quotes(t, q)
    tau = T - t
    # AS 2008 (3.17)-(3.18)
    assert bid + ask == pytest.approx(gamma * SIGMA**2 * tau + 2 / gamma * math.log1p(gamma / K))
    assert (ask - bid) / 2 == pytest.approx(-q * gamma * SIGMA**2 * tau, abs=1e-9)
    # equivalently each quote sits (1/gamma) ln(1 + gamma/k) beyond the frozen-inventory reservation
    # bid / ask price (2.6)-(2.7), by the optimality conditions (3.6)-(3.7)
    r_bid = (-1 - 2 * q) * gamma * SIGMA**2 * tau / 2
    r_ask = (1 - 2 * q) * gamma * SIGMA**2 * tau / 2
    assert bid == pytest.approx(-r_bid + math.log1p(gamma / K) / gamma, abs=1e-9)
    assert ask == pytest.approx(r_ask + math.log1p(gamma / K) / gamma, abs=1e-9)


@given(t=st.floats(0.0, T * 0.999), q=st.integers(-30, 29))
def test_reservation_price_decreases_with_inventory(t: float, q: int) -> None:
    policy = AvellanedaStoikov(0.1, SIGMA, K, T)
    assert policy.reservation_offset(t, q + 1) < policy.reservation_offset(t, q)
    assert policy.reservation_offset(t, 0) == 0.0


def test_finite_horizon_limits_and_broadcasting() -> None:
    policy = AvellanedaStoikov(0.1, SIGMA, K, T)
    # at t = T the inventory no longer matters: both quotes at (1/gamma) ln(1 + gamma/k)
    bid, ask = policy.quotes(T, np.array([-5, 0, 5]))
    np.testing.assert_allclose(bid, 10 * math.log1p(0.1 / K))
    np.testing.assert_allclose(ask, bid)
    assert np.all(np.diff(policy.spread(np.linspace(0, T, 11))) < 0)
    bid, ask = policy.quotes(np.linspace(0, T, 4)[:, None], np.arange(-2, 3)[None, :])
    assert bid.shape == ask.shape == (4, 5)
    bid, ask = policy.depths(np.array([1.0, 0.0]), np.array([2.0, 2.0]))
    np.testing.assert_allclose((ask - bid) / 2, [-2 * 0.1 * SIGMA**2 * 1.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("t", [-0.1, T + 0.1, float("nan")])
def test_finite_horizon_rejects_time_outside_horizon(t: float) -> None:
    with pytest.raises(ValueError, match="t must lie in"):
        AvellanedaStoikov(0.1, SIGMA, K, T).quotes(t, 0)
    with pytest.raises(ValueError, match="time_left must lie in"):
        AvellanedaStoikov(0.1, SIGMA, K, T).depths(np.array([t]), np.array([0.0]))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"gamma": 0.0}, "gamma"),
        ({"sigma": -1.0}, "sigma"),
        ({"k": float("inf")}, "k"),
        ({"T": 0.0}, "T"),
        ({"T": None}, "T"),
    ],
)
def test_finite_horizon_rejects_bad_arguments(kwargs: dict, name: str) -> None:
    args = {"gamma": 0.1, "sigma": SIGMA, "k": K, "T": T} | kwargs
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number > 0"):
        AvellanedaStoikov(**args)


# -------------------------------------------------------------------------------------------------
# Infinite horizon (AS 2008 section 2.3)

GAMMA, Q_MAX = 0.1, 10
OMEGA = 1.5 * AvellanedaStoikovInfinite.natural_omega(GAMMA, SIGMA, Q_MAX)


def _stationary_value(q: int, x: float, omega: float) -> float:
    """AS 2008 section 2.3 objective at s = 0, by quadrature in time (Gaussian S_t)."""
    rate = omega - 0.5 * (GAMMA * q * SIGMA) ** 2
    integral, _ = quad(lambda t: math.exp(-rate * t), 0.0, math.inf, epsabs=0, epsrel=1e-13)
    return -math.exp(-GAMMA * x) * integral


@pytest.mark.parametrize("q", [-Q_MAX + 1, -3, 0, 1, 4, Q_MAX - 1])
def test_infinite_horizon_prices_solve_indifference(q: int) -> None:
    """Reservation prices solve AS 2008 Definition 1 ((2.4)-(2.5)) for the section 2.3 objective."""
    policy = AvellanedaStoikovInfinite(GAMMA, SIGMA, K, OMEGA, Q_MAX)
    base = _stationary_value(q, 0.0, OMEGA)
    r_bid = brentq(lambda r: _stationary_value(q + 1, -r, OMEGA) - base, -50, 50, xtol=1e-14)
    r_ask = brentq(lambda r: _stationary_value(q - 1, r, OMEGA) - base, -50, 50, xtol=1e-14)
    bid_offset, ask_offset = policy.reservation_offsets(q)
    assert bid_offset == pytest.approx(r_bid, abs=1e-9)
    assert ask_offset == pytest.approx(r_ask, abs=1e-9)


def _printed(q: np.ndarray, omega: float) -> tuple[np.ndarray, np.ndarray]:
    """The two formulas as printed in AS 2008 section 2.3: (r_b - s, r_a - s)."""
    g2s2 = (GAMMA * SIGMA) ** 2
    den = 2 * omega - g2s2 * q**2
    return (np.log(1 + (-1 - 2 * q) * g2s2 / den) / GAMMA,
            np.log(1 + (1 - 2 * q) * g2s2 / den) / GAMMA)


def test_infinite_horizon_against_printed_formulas() -> None:
    q = np.arange(-Q_MAX + 1, Q_MAX)
    bid, ask = AvellanedaStoikovInfinite(GAMMA, SIGMA, K, OMEGA, Q_MAX).reservation_offsets(q)
    printed_bid, printed_ask = _printed(q.astype(float), OMEGA)
    np.testing.assert_allclose(bid, printed_bid, rtol=1e-12)  # the bid formula is exact
    # The printed ask only agrees to first order in gamma^2 sigma^2 / omega: the gap falls ~4x per
    # doubling of omega (a typo-level difference would not; a wrong formula would not either).
    gaps = []
    for omega in (10 * OMEGA, 20 * OMEGA):
        ask = AvellanedaStoikovInfinite(GAMMA, SIGMA, K, omega, Q_MAX).reservation_offsets(q)[1]
        gaps.append(np.max(np.abs(ask - _printed(q.astype(float), omega)[1])))
    assert gaps[0] > 0 and 3.5 < gaps[0] / gaps[1] < 4.5


def test_infinite_horizon_matches_finite_horizon_for_large_omega() -> None:
    """To first order omega acts as 1 / (T - t): r_b - s -> (-1 - 2q) gamma sigma^2 / (2 omega)."""
    q = np.arange(-Q_MAX + 1, Q_MAX)
    for scale, tol in ((1e3, 1e-2), (1e5, 1e-4)):
        omega = scale * OMEGA
        bid, ask = AvellanedaStoikovInfinite(GAMMA, SIGMA, K, omega, Q_MAX).reservation_offsets(q)
        frozen = GAMMA * SIGMA**2 / (2 * omega)
        np.testing.assert_allclose(bid, (-1 - 2 * q) * frozen, rtol=tol)
        np.testing.assert_allclose(ask, (1 - 2 * q) * frozen, rtol=tol)


@given(q=st.integers(-Q_MAX, Q_MAX))
def test_infinite_horizon_symmetry_and_bounds(q: int) -> None:
    policy = AvellanedaStoikovInfinite(GAMMA, SIGMA, K, OMEGA, Q_MAX)
    bid, ask = policy.quotes(q)
    mirror_bid, mirror_ask = policy.quotes(-q)
    assert bid == pytest.approx(mirror_ask, rel=1e-12) or bid == mirror_ask == np.inf
    assert np.isinf(bid) == (q == Q_MAX)
    assert np.isinf(ask) == (q == -Q_MAX)
    if q == 0:
        assert bid == pytest.approx(ask, rel=1e-12)


def test_infinite_horizon_quotes_monotone_and_natural_omega() -> None:
    q = np.arange(-Q_MAX, Q_MAX + 1)
    natural = AvellanedaStoikovInfinite.natural_omega(GAMMA, SIGMA, Q_MAX)
    for omega in (natural, OMEGA):
        bid, ask = AvellanedaStoikovInfinite(GAMMA, SIGMA, K, omega, Q_MAX).quotes(q)
        assert np.all(np.isfinite(bid[:-1])) and np.all(np.isfinite(ask[1:]))
        assert np.all(np.diff(bid[:-1]) > 0) and np.all(np.diff(ask[1:]) < 0)
        arrival = math.log1p(GAMMA / K) / GAMMA
        assert bid[Q_MAX] == pytest.approx(ask[Q_MAX]) and bid[Q_MAX] > arrival
    # the natural choice makes the reservation bid at q_max -inf (AS 2008: the prices are bounded
    # only inside the inventory bound)
    policy = AvellanedaStoikovInfinite(GAMMA, SIGMA, K, natural, Q_MAX)
    bid_offset, ask_offset = policy.reservation_offsets(np.array([Q_MAX, -Q_MAX]))
    assert bid_offset[0] == -np.inf and ask_offset[1] == np.inf
    bid, ask = policy.depths(np.zeros((2, 1)), np.array([[Q_MAX, 0, -Q_MAX]]))
    assert bid.shape == (2, 3) and np.isinf(bid[:, 0]).all() and np.isinf(ask[:, 2]).all()


def test_infinite_horizon_validation() -> None:
    natural = AvellanedaStoikovInfinite.natural_omega(GAMMA, SIGMA, Q_MAX)
    with pytest.raises(ValueError, match="omega must be >="):
        AvellanedaStoikovInfinite(GAMMA, SIGMA, K, 0.99 * natural, Q_MAX)
    # the natural choice itself, computed another way (rounding), is accepted
    AvellanedaStoikovInfinite(GAMMA, SIGMA, K, (GAMMA * SIGMA * (Q_MAX + 1)) ** 2 / 2, Q_MAX)
    bad_bounds: tuple[Any, ...] = (0, 2.0, True, -3)
    for q_max in bad_bounds:
        with pytest.raises(ValueError, match="q_max must be an integer >= 1"):
            AvellanedaStoikovInfinite(GAMMA, SIGMA, K, OMEGA, q_max)
    with pytest.raises(ValueError, match="omega must be a finite number > 0"):
        AvellanedaStoikovInfinite(GAMMA, SIGMA, K, -1.0, Q_MAX)
    policy = AvellanedaStoikovInfinite(GAMMA, SIGMA, K, OMEGA, Q_MAX)
    with pytest.raises(ValueError, match="q_max"):
        policy.quotes(Q_MAX + 1)
    with pytest.raises(ValueError, match="integer"):
        policy.quotes(0.5)


# -------------------------------------------------------------------------------------------------
# Symmetric benchmark


@given(t=st.floats(0.0, T), q=st.integers(-50, 50))
def test_symmetric_matching_is_centred_on_mid(t: float, q: int) -> None:
    inventory_policy = AvellanedaStoikov(0.1, SIGMA, K, T)
    constant = SymmetricSpread.matching(inventory_policy)
    bid, ask = constant.depths(np.array([T - t]), np.array([float(q)]))
    assert bid[0] == ask[0]
    assert bid[0] + ask[0] == pytest.approx(inventory_policy.average_spread())
    varying = SymmetricSpread.matching(inventory_policy, time_varying=True)
    bid, ask = varying.depths(np.array([T - t]), np.array([float(q)]))
    assert bid[0] == ask[0]
    assert bid[0] + ask[0] == pytest.approx(inventory_policy.spread(t))
    assert varying.total_spread(T - t) == pytest.approx(inventory_policy.spread(t))


def test_symmetric_constant_and_validation() -> None:
    bid, ask = SymmetricSpread(1.3).depths(np.linspace(0, 1, 3)[:, None], np.arange(-2, 3)[None])
    assert bid.shape == (3, 5)
    np.testing.assert_array_equal(bid, 0.65)
    np.testing.assert_array_equal(ask, 0.65)
    with pytest.raises(ValueError, match="spread"):
        SymmetricSpread(-1.0)
    with pytest.raises(ValueError, match="AvellanedaStoikov"):
        SymmetricSpread.matching(SymmetricSpread(1.0))  # type: ignore[arg-type]

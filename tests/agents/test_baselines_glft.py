"""Gueant, Lehalle & Fernandez-Tapia (2013): exact quotes under inventory bounds."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from agents.baselines import GLFT
from agents.baselines._common import _log_dot

# GLFT 2013 Figs. 1-3: sigma = 0.3 Tick s^-1/2, A = 0.9 s^-1, k = 0.3 Tick^-1, gamma = 0.01 Tick^-1,
# T = 600 s (the paper publishes these only as plots).
PAPER: dict[str, Any] = {"sigma": 0.3, "A": 0.9, "k": 0.3, "gamma": 0.01, "T": 600.0}
# AS 2008 section 3.3 market, with an inventory bound.
AS_MARKET: dict[str, Any] = {"sigma": 2.0, "A": 140.0, "k": 1.5, "gamma": 0.1, "T": 1.0}

PAPER_POLICY = GLFT(**PAPER, q_max=30)
SMALL_POLICY = GLFT(**AS_MARKET, q_max=6)


def _matrix(policy: GLFT) -> np.ndarray:
    """GLFT 2013 Proposition 2: diagonal alpha q^2, off-diagonals -eta, q = -Q..Q."""
    q = np.arange(-policy.q_max, policy.q_max + 1)
    n = q.size
    return np.diag(policy.alpha * q**2.0) - policy.eta * (np.eye(n, k=1) + np.eye(n, k=-1))


def _reference_log_v(policy: GLFT, tau: float) -> np.ndarray:
    """ln(exp(-M tau) 1) by the full uniformized Taylor series, summed in the log domain.

    An independent algorithm (one long positive series on the unfolded grid) for regimes where
    expm under- or overflows.
    """
    q = np.arange(-policy.q_max, policy.q_max + 1)
    c = policy.alpha * policy.q_max**2 + 2 * policy.eta
    log_n_diag, log_eta = np.log(c - policy.alpha * q**2.0), math.log(policy.eta)
    log_term = np.zeros(q.size)
    log_sum = log_term.copy()
    m = 0
    while True:
        m += 1
        nxt = log_n_diag + log_term
        nxt[:-1] = np.logaddexp(nxt[:-1], log_eta + log_term[1:])
        nxt[1:] = np.logaddexp(nxt[1:], log_eta + log_term[:-1])
        log_term = nxt + math.log(tau / m)
        log_sum = np.logaddexp(log_sum, log_term)
        if m > 2 * (c + 2 * policy.eta) * tau + 50 and np.max(log_term - log_sum) < -45:
            return log_sum - c * tau


def _quotes_from_log_v(policy: GLFT, log_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GLFT 2013 Theorem 1 on q = -Q..Q (inf on the closed sides)."""
    base = math.log1p(policy.gamma / policy.k) / policy.gamma
    bid = np.append((log_v[:-1] - log_v[1:]) / policy.k + base, np.inf)
    ask = np.insert((log_v[1:] - log_v[:-1]) / policy.k + base, 0, np.inf)
    return bid, ask


def _all_q(policy: GLFT) -> np.ndarray:
    return np.arange(-policy.q_max, policy.q_max + 1)


def test_parameters_of_proposition_1() -> None:
    p = SMALL_POLICY
    assert p.alpha == pytest.approx(1.5 * 0.1 * 4.0 / 2)
    assert p.eta == pytest.approx(140.0 * (1 + 0.1 / 1.5) ** (-(1 + 1.5 / 0.1)), rel=1e-13)


@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 0.93, 0.999, 1.0])
def test_matches_brute_force_matrix_exponential(t: float) -> None:
    policy = SMALL_POLICY
    v = scipy.linalg.expm(-_matrix(policy) * (policy.T - t)) @ np.ones(2 * policy.q_max + 1)
    np.testing.assert_allclose(policy.log_v(t), np.log(v), rtol=0, atol=1e-11)
    bid, ask = policy.quotes(t, _all_q(policy))
    ref_bid, ref_ask = _quotes_from_log_v(policy, np.log(v))
    np.testing.assert_allclose(bid, ref_bid, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ask, ref_ask, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("policy", "t"), [(SMALL_POLICY, 0.4), (PAPER_POLICY, 550.0),
                                           (PAPER_POLICY, 3.0)])
def test_v_solves_the_linear_odes(policy: GLFT, t: float) -> None:
    """GLFT 2013 Prop. 1: dv_q/dt = alpha q^2 v_q - eta (v_{q-1} + v_{q+1}), i.e. dv/dt = M v."""
    h = 1e-4 * policy.T
    log_v = policy.log_v(t)
    dlog_dt = (policy.log_v(t + h) - policy.log_v(t - h)) / (2 * h)
    v_ratio_down = np.exp(np.insert(log_v[:-1] - log_v[1:], 0, -np.inf))  # v_{q-1} / v_q
    v_ratio_up = np.exp(np.append(log_v[1:] - log_v[:-1], -np.inf))  # v_{q+1} / v_q
    rhs = policy.alpha * _all_q(policy) ** 2 - policy.eta * (v_ratio_down + v_ratio_up)
    np.testing.assert_allclose(dlog_dt, rhs, rtol=1e-6, atol=1e-8 * np.max(np.abs(rhs)))


@pytest.mark.parametrize("q", [-6, -3, 0, 1, 5, 6])
def test_quotes_maximize_the_hjb(q: int) -> None:
    """Theorem 1's quotes attain the sups in the HJB of GLFT 2013 section 3, which then holds.

    With u = -exp(-gamma (x + q s)) v_q^(-gamma/k), the HJB divided by exp(-gamma (x + q s))
    v_q^(-gamma/k) reads (gamma/k) d ln v_q/dt - sigma^2 gamma^2 q^2 / 2 + sum_sides sup_delta A
    e^(-k delta) (1 - e^(-gamma delta) (v_q / v_{q+-1})^(gamma/k)) = 0, the side being absent at the
    bound.
    """
    policy, t, h = SMALL_POLICY, 0.37, 1e-5
    log_v = policy.log_v(t)
    i = q + policy.q_max
    dlog_dt = (policy.log_v(t + h)[i] - policy.log_v(t - h)[i]) / (2 * h)
    residual = policy.gamma / policy.k * dlog_dt - 0.5 * (policy.sigma * policy.gamma * q) ** 2
    bid, ask = policy.quotes(t, q)
    for neighbour, quote in ((i + 1, bid), (i - 1, ask)):
        if not 0 <= neighbour <= 2 * policy.q_max:
            assert np.isinf(quote)
            continue
        ratio = math.exp(policy.gamma / policy.k * (log_v[i] - log_v[neighbour]))

        def gain(delta: float, ratio: float = ratio) -> float:
            fill_rate = policy.A * math.exp(-policy.k * delta)
            return fill_rate * (1 - math.exp(-policy.gamma * delta) * ratio)

        best = minimize_scalar(lambda d: -gain(d), bounds=(-5.0, 10.0), method="bounded",
                               options={"xatol": 1e-10})
        assert best.x == pytest.approx(float(quote), abs=1e-6)
        residual += gain(best.x)
    assert residual == pytest.approx(0.0, abs=1e-6 * policy.A)


@settings(max_examples=60, deadline=None)
@given(t=st.floats(0.0, PAPER["T"]), q=st.integers(-30, 30))
def test_quotes_symmetric_in_inventory(t: float, q: int) -> None:
    bid, ask = PAPER_POLICY.quotes(t, q)
    mirror_bid, mirror_ask = PAPER_POLICY.quotes(t, -q)
    assert bid == mirror_ask  # exact: v is even by construction, so no tolerance is needed
    assert ask == mirror_bid


@pytest.mark.parametrize("policy", [SMALL_POLICY, PAPER_POLICY])
def test_quotes_monotone_and_bounds(policy: GLFT) -> None:
    q = _all_q(policy)
    for t in np.linspace(0.0, policy.T, 7)[:-1]:
        bid, ask = policy.quotes(t, q)
        assert np.isinf(bid[-1]) and np.isinf(ask[0])
        assert np.all(np.isfinite(bid[:-1])) and np.all(np.isfinite(ask[1:]))
        # longer inventory: bid further from the mid, ask closer (GLFT 2013 Figs. 1-2)
        assert np.all(np.diff(bid[:-1]) > 0) and np.all(np.diff(ask[1:]) < 0)
    # at t = T, v = 1: both quotes equal (1/gamma) ln(1 + gamma/k) (Theorem 1)
    bid, ask = policy.quotes(policy.T, q)
    np.testing.assert_allclose(bid[:-1], policy.base_depth, rtol=1e-13)
    # broadcasting of t against q
    bid, ask = policy.quotes(np.array([[0.0], [policy.T / 2]]), q[None, :3])
    assert bid.shape == (2, 3)


def test_converges_to_stationary_limit() -> None:
    """GLFT 2013 Theorem 2: as T - t grows the quotes converge to those of the ground state f0."""
    policy = PAPER_POLICY
    q = _all_q(policy)
    stat_bid, stat_ask = policy.stationary_quotes(q)
    errors = []
    for tau in (10.0, 50.0, 200.0, 600.0):
        bid, ask = policy.quotes(policy.T - tau, q)
        errors.append(np.max(np.abs(bid[:-1] - stat_bid[:-1])))
    assert all(b < a for a, b in itertools.pairwise(errors))
    assert errors[-1] < 1e-6  # e^(-(lambda_2 - lambda_0) 600) ~ 1e-7 here
    # independent: f0 from a dense symmetric eigensolver (fine here, f0 spans only ~e^-9)
    eigenvalues, vectors = scipy.linalg.eigh(_matrix(policy))
    f0 = np.abs(vectors[:, 0])
    ref_bid, ref_ask = _quotes_from_log_v(policy, np.log(f0))
    np.testing.assert_allclose(stat_bid, ref_bid, rtol=0, atol=1e-9)
    np.testing.assert_allclose(stat_ask, ref_ask, rtol=0, atol=1e-9)
    assert np.all(np.diff(eigenvalues) > 0)


def test_very_long_horizon_is_stationary() -> None:
    policy = GLFT(**(PAPER | {"T": 1e6}), q_max=30)
    q = _all_q(policy)
    for t in (0.0, 5e5, 1e6 - 1e3):
        np.testing.assert_allclose(policy.quotes(t, q), policy.stationary_quotes(q), atol=1e-9)


# (sigma, A) of GLFT 2013 Figs. 1-3, Fig. 4 left and Fig. 4 right (k = 0.3, gamma = 0.01).
CLOSED_FORM_CASES = [(0.3, 0.9), (0.4, 0.9), (1.0, 0.2)]


def test_asymptotic_closed_form_close_for_small_inventory() -> None:
    """The closed form replaces the discrete ground state f0 by a Gaussian (continuum limit).

    Its error therefore scales with xi = sqrt(alpha / eta) (the Gaussian's width is xi^(-1/2) lots)
    and grows with |q| (GLFT 2013 section 4: 'very good for small values of the inventory'). We
    require it within 10% of the per-lot skew (1/k) xi for |q| <= 2; for these cases xi <= 0.15 and
    the observed error is <= 6%.
    """
    errors_at_one = []
    for sigma, a in CLOSED_FORM_CASES:
        policy = GLFT(sigma=sigma, A=a, k=0.3, gamma=0.01, T=600.0, q_max=30)
        xi = math.sqrt(policy.alpha / policy.eta)
        skew = xi / policy.k
        q = np.arange(-2, 3)
        exact = np.stack(policy.stationary_quotes(q))
        approx = np.stack(policy.asymptotic_quotes(q))
        assert np.max(np.abs(exact - approx)) < 0.1 * skew
        # the two forms printed in the paper agree: (1/(2k)) sqrt(alpha/eta) (2q + 1)
        np.testing.assert_allclose(approx[0], policy.base_depth + skew * (2 * q + 1) / 2)
        errors_at_one.append(abs(exact[0, 3] - approx[0, 3]) / skew)
    xis = [math.sqrt(GLFT(s, a, 0.3, 0.01, 600.0, 30).alpha / GLFT(s, a, 0.3, 0.01, 600.0, 30).eta)
           for s, a in CLOSED_FORM_CASES]
    order = np.argsort(xis)
    assert np.all(np.diff(np.asarray(errors_at_one)[order]) > 0)  # better as xi -> 0
    bid, ask = PAPER_POLICY.asymptotic_quotes(np.array([30, -30]))
    assert np.isinf(bid[0]) and np.isinf(ask[1])


@pytest.mark.parametrize(("q_max", "horizon", "taus"),
                         [(40, 1.0, (0.05, 0.3)), (60, 0.3, (0.3,))])
def test_extreme_range_stays_exact(q_max: int, horizon: float, taus: tuple[float, ...]) -> None:
    """v spans beyond the range of doubles (e^-850 and e^-1345 here): quotes stay finite and exact.

    A thin market (tiny eta) and a large bound make v_Q ~ exp(-alpha Q^2 (T - t)) tiny; expm
    underflows to 0 there. Reference: the full positive Taylor series in the log domain (an
    independent algorithm). The second case needs the exact fallback of the scaled products
    (without it the quotes are off by ~3e-4).
    """
    policy = GLFT(sigma=2.0, A=1e-6, k=1.5, gamma=2.0, T=horizon, q_max=q_max)
    q = _all_q(policy)
    with np.errstate(all="ignore"):
        naive = np.log(scipy.linalg.expm(-_matrix(policy) * taus[-1]) @ np.ones(q.size))
    assert not np.all(np.isfinite(naive))  # the regime the log-domain numerics are for
    for tau in taus:
        log_v = policy.log_v(policy.T - tau)
        reference = _reference_log_v(policy, tau)
        bid, ask = policy.quotes(policy.T - tau, q)
        ref_bid, ref_ask = _quotes_from_log_v(policy, reference)
        # the reference sums ~1e4 terms of log-size ~1e3: its own rounding is ~1e-9 on the quotes
        np.testing.assert_allclose(bid, ref_bid, rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(ask, ref_ask, rtol=1e-10, atol=1e-8)
        assert np.all(np.diff(bid[:-1]) > 0)
    assert np.max(log_v) - np.min(log_v) > 800


def test_log_domain_product_is_exact_far_below_the_scale() -> None:
    """_log_dot: BLAS on scaled exponentials, exact log-sum-exp where that would underflow."""
    rng = np.random.default_rng(3)
    log_a = rng.uniform(-3000.0, 0.0, size=(7, 9))
    log_b = rng.uniform(-3000.0, 0.0, size=(9, 5))
    log_a[0] = [0.0] + [-2000.0] * 8  # row max 0 but every product with b's column maxima tiny
    log_b[:, 0] = [-2000.0] + [0.0] * 8
    reference = logsumexp(log_a[:, :, None] + log_b[None, :, :], axis=1)
    np.testing.assert_allclose(_log_dot(log_a, log_b), reference, rtol=1e-13)
    assert _log_dot(log_a, log_b)[0, 0] == pytest.approx(-2000.0 + math.log(9.0), rel=1e-14)
    # a row's result does not depend on the other rows in the batch
    np.testing.assert_array_equal(_log_dot(log_a[:1], log_b)[0], _log_dot(log_a, log_b)[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma": 0.0}, "sigma must be a finite number > 0"),
        ({"A": -1.0}, "A must be a finite number > 0"),
        ({"k": float("nan")}, "k must be a finite number > 0"),
        ({"gamma": "0.1"}, "gamma must be a finite number > 0"),
        ({"T": -1.0}, "T must be a finite number > 0"),
        ({"q_max": 0}, "q_max must be an integer >= 1"),
        ({"q_max": 3.0}, "q_max must be an integer >= 1"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GLFT(**(AS_MARKET | {"q_max": 3} | kwargs))


def test_rejects_bad_states() -> None:
    with pytest.raises(ValueError, match="q_max"):
        SMALL_POLICY.quotes(0.0, 7)
    with pytest.raises(ValueError, match="integer"):
        SMALL_POLICY.quotes(0.0, 0.5)
    with pytest.raises(ValueError, match="t must lie in"):
        SMALL_POLICY.quotes(1.5, 0)
    with pytest.raises(ValueError, match="time_left must lie in"):
        SMALL_POLICY.depths(np.array([-0.5]), np.array([0.0]))


def test_cached_times_give_identical_quotes() -> None:
    fresh = GLFT(**AS_MARKET, q_max=6)
    t, q = np.array([0.25, 0.5, 0.25, 0.75])[:, None], _all_q(fresh)[None, :]
    first = fresh.quotes(t, q)
    again = fresh.quotes(t[::-1], q)  # all from the cache now
    np.testing.assert_array_equal(again[0], first[0][::-1])
    np.testing.assert_array_equal(first[0][0], first[0][2])
    np.testing.assert_array_equal(first[0], SMALL_POLICY.quotes(t, q)[0])

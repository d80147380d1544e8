"""The realistic order flow in the order book (docs/calibration.md#realistic-order-flow):
validation of its parameters, and long simulated runs against what the parameters imply.

The implied values are the market-order rate of the stationary Hawkes process, ``(I - G)^-1 mu``
(exact), and, for the sign autocorrelation at lag 1 and the mean spread, the calibration's own
simulator of the state-dependent process (:func:`calibration.hawkes.simulate_state_hawkes`, an
independent implementation with its own random numbers). Tolerances: about four standard errors
of the run lengths used here (the Hawkes clustering widens them beyond the iid ones).
"""

from __future__ import annotations

import numpy as np
import pytest
from realistic_flow import realistic_flow, realistic_market

from calibration.hawkes import sign_acf, simulate_state_hawkes
from calibration.params import TOKYO_CST, MarketParams
from calibration.realistic import RealisticFlowParams
from envs.lob.book import (
    I_ASK_PX,
    I_BID_PX,
    I_EVENTS,
    N_FSTATE,
    R_B,
    R_NMO,
    R_S,
    OrderBooks,
)

T_RUN = 4000.0
"""Length (s) of each long run."""

FLOW = {"n_buckets": 3, "grid": 2, "self_excite": 0.5, "cross_sign": 0.05, "stay": 0.5}


def run_kernel(market: MarketParams, duration: float, seed: int):
    """The event-by-event path of one book: market-order signs and the time-weighted mean
    spread (fine ticks), read after every event."""
    books = OrderBooks(market, 1)
    books.seed(seed)
    books.reset()
    rp = market.realistic_params
    M, H = len(rp.hawkes.decays), rp.impact.lag_bins[-1][1] + 2
    ring = N_FSTATE + R_S + 6 * M + len(rp.impact.lag_bins)  # the sign ring (envs.lob.book)
    signs, spread_time = [], 0.0
    n_mo = 0
    t = 0.0
    while t < duration:
        s = books.ask_px[0] - books.bid_px[0]
        books.simulate(until=duration, max_events=1)
        spread_time += s * (books.time[0] - t)
        t = books.time[0]
        n = int(books.fst[0, N_FSTATE + R_NMO])
        if n > n_mo:
            signs.append(books.fst[0, ring + (n - 1) % H])
            n_mo = n
    return np.asarray(signs), spread_time / duration, int(books.ist[0, I_EVENTS])


def reference_run(market: MarketParams, duration: float, seed: int):
    rp = market.realistic_params
    ts, ds, xs = simulate_state_hawkes(
        rp.hawkes,
        np.asarray(rp.spread_multipliers),
        np.asarray(rp.spread.transition_probs),
        duration,
        np.random.default_rng(seed),
        state0=int(np.argmax(rp.spread.time_share)),
    )
    mo = ds < 2
    signs = np.where(ds[mo] == 0, 1.0, -1.0)
    hold = np.diff(np.append(ts, duration))
    spread = (xs + 1) * rp.spread.grid_ticks
    first = ts[0] if ts.size else duration  # the modal bucket until the first event
    start = (int(np.argmax(rp.spread.time_share)) + 1) * rp.spread.grid_ticks
    return signs, float((spread * hold).sum() + start * first) / duration


@pytest.fixture(scope="module")
def runs():
    market = realistic_market(n_levels=8, **FLOW)
    return market, run_kernel(market, T_RUN, 7), reference_run(market, T_RUN, 11)


def test_market_order_rate_is_the_stationary_hawkes_rate(runs):
    market, (signs, _, _), _ = runs
    rates = market.realistic_params.hawkes.mean_rates
    implied = rates[0] + rates[1]
    # var of a Hawkes count ~ T mean / (1 - rho)^2: 5 SEs
    rho = market.realistic_params.hawkes.spectral_radius
    se = np.sqrt(T_RUN * implied) / (1 - rho) / T_RUN
    assert abs(signs.size / T_RUN - implied) < 5 * se


def test_sign_acf_and_mean_spread_match_the_implied_values(runs):
    market, (signs, mean_spread, _), (ref_signs, ref_spread) = runs
    acf = sign_acf(signs, (1,))[1]
    ref_acf = sign_acf(ref_signs, (1,))[1]
    assert ref_acf > 0.1  # the test flow has sign memory to reproduce
    assert abs(acf - ref_acf) < 0.04, (acf, ref_acf)
    # the spread starts in the modal bucket; over T_RUN the time average settles within 5%
    assert abs(mean_spread - ref_spread) < 0.05 * ref_spread, (mean_spread, ref_spread)


def test_the_spread_is_a_bucket_on_the_coarse_grid():
    market = realistic_market(n_levels=8, **FLOW)
    books = OrderBooks(market, 8)
    books.seed(3)
    books.reset()
    g = FLOW["grid"]
    for t in (1.0, 10.0, 50.0):
        books.simulate(until=t)
        s = books.ist[:, I_ASK_PX] - books.ist[:, I_BID_PX]
        b = books.fst[:, N_FSTATE + R_B]
        np.testing.assert_array_equal(s, b * g)
        assert np.all((b >= 1) & (b <= FLOW["n_buckets"]))


def test_a_seed_determines_the_path():
    market = realistic_market(n_levels=8, **FLOW)
    out = []
    for _ in range(2):
        books = OrderBooks(market, 4)
        books.seed(5)
        books.reset()
        books.simulate(until=30.0)
        out.append((books.book.copy(), books.ist.copy(), books.fst.copy()))
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)


def _market(**changes):
    flow = realistic_flow(n_buckets=3, grid=2)
    data = {**realistic_market(n_levels=8).to_dict(), "realistic": flow}
    for key, value in changes.items():
        data[key] = value
    return data


def test_bad_parameters_name_the_key():
    with pytest.raises(ValueError, match="n_levels = 5 must be >= realistic.spread"):
        MarketParams.from_dict(_market(n_levels=5))
    with pytest.raises(ValueError, match="realistic parameters are required"):
        MarketParams.from_dict(_market(realistic=None))
    flow = realistic_flow(n_buckets=3, grid=2)
    flow["spread_multipliers"] = [[1.0, 1.0]] * 6
    with pytest.raises(ValueError, match="realistic.spread_multipliers"):
        MarketParams.from_dict(_market(realistic=flow))
    flow = realistic_flow(n_buckets=3, grid=2)
    del flow["impact"]["noise_sd"]
    with pytest.raises(ValueError, match="realistic.impact.noise_sd"):
        MarketParams.from_dict(_market(realistic=flow))
    with pytest.raises(ValueError, match="only used with model 'realistic'"):
        MarketParams.from_dict({**TOKYO_CST.to_dict(), "realistic": realistic_flow()})
    RealisticFlowParams.model_validate(realistic_flow())  # the helper itself is valid

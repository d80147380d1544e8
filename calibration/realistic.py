"""The realistic order flow's calibration: clustered best-level events, the spread as a state and
price impact, in one :class:`RealisticFlowParams` with standard errors
(docs/calibration.md#realistic-order-flow).

Fits, on the :func:`calibration.sample.prepare` view of one dataset:

- ``hawkes`` and ``spread_multipliers``: the six best-level event types of
  :data:`calibration.spread_model.BEST_EVENT_TYPES` as a state-dependent multivariate Hawkes
  process with ``n_exponentials`` exponential kernels, the state being the spread bucket:
  ``lambda_i(t) = mu_i phi[i][b(t)] + excitation_i(t)``
  (:func:`calibration.hawkes.fit_state_hawkes`);
- ``market_order_hawkes``: market buys and sells alone (two types, ``mo_exponentials`` kernels),
  the order-sign model;
- ``spread``: coarse grid, spread law, widening logit, placement (:mod:`calibration.spread_model`);
- ``impact``: propagator, power-law kernel and response (:mod:`calibration.impact`);
- ``sizes``: order sizes per kind (:func:`calibration.empirical.size_distributions`).

:func:`check_realistic` simulates the fitted market-order process with the fitted propagator and
compares, data beside model: the sign ACF at lags 1, 10, 100, quantiles of the market-order
inter-arrival times, the response ``R(tau)`` at 1, 10, 60 s and the volatility signature (the
propagator's mid with its residual noise, changing at market orders only).

Units: seconds, fine ticks of ``tick_size``, lots of ``lot_size`` base units. Intraday
seasonality is not modelled (constant baselines): the slow kernels absorb part of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from calibration.calibrate import timed_step
from calibration.empirical import size_distributions
from calibration.hawkes import (
    HawkesFit,
    HawkesParams,
    StateHawkesFit,
    fit_hawkes,
    fit_state_hawkes,
    sign_acf,
    simulate_hawkes,
    simulate_state_hawkes,
)
from calibration.impact import (
    RESPONSE_HORIZONS,
    ImpactParams,
    fit_propagator,
    response_of_path,
    simulate_propagator_mid,
)
from calibration.sample import FlowSample, Reference, prepare
from calibration.spread_model import (
    BEST_EVENT_TYPES,
    SpreadParams,
    best_events,
    fit_spread_model,
)
from data.schema import TRADE, InstrumentSpec, MarketData

SIGN_LAGS: tuple[int, ...] = (1, 10, 100)
"""Lags (market orders) of the sign autocorrelation checks."""

GAP_QUANTILES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
"""Quantiles of the market-order inter-arrival times compared by :func:`check_realistic`."""

SIGNATURE_HORIZONS: tuple[float, ...] = (1.0, 10.0, 60.0, 300.0)
"""Horizons (s) of the volatility signature ``sqrt(mean(r_h^2) / h)`` in the checks."""

MIN_SHARE = 0.01
"""Smallest share of time of the last spread bucket; with less, ``n_buckets`` is lowered."""

MARKET_ORDER_TYPES: list[str] = ["market_buy", "market_sell"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class SizeLaws(_Strict):
    """Order sizes (lots, rounded up, capped at ``MAX_SIZE_TABLE``) per event kind
    (:func:`calibration.empirical.size_distributions`)."""

    limit: list[float] = Field(description="P(size = n lots), n = 1.., of limit orders.")
    cancel: list[float] = Field(description="P(size = n lots) of cancellations.")
    market: list[float] = Field(description="P(size = n lots) of market orders (merged).")


class RealisticFlowParams(_Strict):
    """Parameters of the realistic order flow (module docstring); the simulator's contract is in
    docs/calibration.md#realistic-order-flow."""

    tick_size: float = Field(gt=0, description="Price of one fine tick (quote currency).")
    lot_size: float = Field(gt=0, description="Base units (shares, coins) per lot.")
    hawkes: HawkesParams = Field(
        description="Hawkes part of the best-level events, types BEST_EVENT_TYPES."
    )
    spread_multipliers: list[list[float]] = Field(
        description="phi[i][b-1]: multiplier of the baseline mu_i of best-level type i while "
        "the spread is in bucket b (1 in the bucket where the spread spends most time)."
    )
    market_order_hawkes: HawkesParams = Field(
        description="Market buys and sells alone (the sign model), types market_buy, market_sell."
    )
    spread: SpreadParams = Field(description="Spread grid, law, widening logit and placement.")
    impact: ImpactParams = Field(description="Propagator and response of market orders.")
    sizes: SizeLaws = Field(description="Order sizes per event kind (lots).")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for YAML or MLflow."""
        return self.model_dump(mode="json")


@dataclass
class RealisticCalibration:
    """:class:`RealisticFlowParams`, ``std_errors`` (same nesting and keys), fit diagnostics,
    the data-vs-model checks, what preparation counted and the timings (s)."""

    params: RealisticFlowParams
    std_errors: dict[str, Any]
    diagnostics: dict[str, Any]
    checks: dict[str, Any]
    notes: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params.to_dict(),
            "std_errors": self.std_errors,
            "diagnostics": self.diagnostics,
            "checks": self.checks,
            "notes": self.notes,
            "timings_s": self.timings,
        }


def _hawkes_diagnostics(fit: HawkesFit) -> dict[str, Any]:
    return {
        "spectral_radius": fit.spectral_radius,
        "spectral_radius_se": fit.spectral_radius_se,
        "loglik": fit.loglik,
        "aic": fit.aic,
        "bic": fit.bic,
        "n_events": fit.n_events,
        "converged": fit.converged,
        "at_bound": fit.at_bound,
        "ks_rescaled": fit.ks_rescaled,
        "mean_rates": fit.params.mean_rates.tolist(),
    }


def _state_diagnostics(fit: StateHawkesFit) -> dict[str, Any]:
    return {
        "spectral_radius": fit.spectral_radius,
        "spectral_radius_se": fit.spectral_radius_se,
        "loglik": fit.loglik,
        "aic": fit.aic,
        "bic": fit.bic,
        "converged": fit.converged,
        "at_bound": fit.at_bound,
    }


def sample_duration(sample: FlowSample) -> float:
    """Length (s) of the sample's window, first event to last book row."""
    return float((sample.end_ns - sample.start_ns) * 1e-9)


def market_order_stream(sample: FlowSample) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and types (0 buy, 1 sell) of the sample's market orders."""
    mo = sample.kind == TRADE
    return sample.t[mo], (sample.aggressor[mo] < 0).astype(np.int64)


def check_realistic(
    params: RealisticFlowParams,
    sample: FlowSample,
    rng: np.random.Generator,
    *,
    n_paths: int = 3,
    burn_in: float = 600.0,
) -> dict[str, Any]:
    """Data beside model: sign ACF (lags :data:`SIGN_LAGS`), market-order inter-arrival
    quantiles (s), response ``R(tau)`` (ticks) and volatility signature (ticks / sqrt(s)). The
    model's are the mean (and SD) over ``n_paths`` simulations as long as the data of the
    state-dependent six-type ``hawkes`` (the generator), its market orders driving the binned
    propagator of ``impact`` with iid ``N(0, noise_sd^2)`` noise per market order; the sign ACF and
    inter-arrival quantiles of the two-type ``market_order_hawkes`` are reported beside. The
    six-type process is simulated jointly with its state, the spread bucket, which moves at each
    event by ``spread.transition_probs``; the time share of each bucket is compared with the
    data's (``spread.time_share``)."""
    T = sample_duration(sample)
    t, d = market_order_stream(sample)
    data_acf = sign_acf(np.where(d == 0, 1.0, -1.0), SIGN_LAGS)
    data_gaps = np.quantile(np.diff(t), GAP_QUANTILES).tolist()
    grids = [np.arange(0.0, T, h) for h in SIGNATURE_HORIZONS]
    data_vol = [
        _signature(sample.mid(sample.at(g)), h)
        for g, h in zip(grids, SIGNATURE_HORIZONS, strict=True)
    ]
    K = params.spread.n_buckets
    acf2, acf6, gaps, gaps2, resp, vol, shares = [], [], [], [], [], [], []
    for _ in range(n_paths):
        ts2, ds2 = simulate_hawkes(params.market_order_hawkes, T, rng, burn_in=burn_in)
        acf2.append([sign_acf(np.where(ds2 == 0, 1.0, -1.0), SIGN_LAGS)[k] for k in SIGN_LAGS])
        gaps2.append(np.quantile(np.diff(ts2), GAP_QUANTILES))
        ts6, ds6, xs6 = simulate_state_hawkes(
            params.hawkes,
            np.asarray(params.spread_multipliers),
            np.asarray(params.spread.transition_probs),
            T + burn_in,
            rng,
            state0=int(np.argmax(params.spread.time_share)),
        )
        keep = ts6 >= burn_in
        ts6, ds6, xs6 = ts6[keep] - burn_in, ds6[keep], xs6[keep]
        hold = np.diff(np.append(ts6, T))
        shares.append(np.bincount(xs6, weights=hold, minlength=K) / hold.sum())
        mo6 = ds6 < 2
        ts, eps = ts6[mo6], np.where(ds6[mo6] == 0, 1.0, -1.0)
        acf6.append([sign_acf(eps, SIGN_LAGS)[k] for k in SIGN_LAGS])
        gaps.append(np.quantile(np.diff(ts), GAP_QUANTILES))
        noise = rng.normal(0.0, params.impact.noise_sd, eps.size)
        m = simulate_propagator_mid(eps, params.impact, noise=noise)
        after = np.concatenate([m[1:], [m[-1] + params.impact.increments[0] * eps[-1]]])
        resp.append(response_of_path(ts, eps, m, ts, after, RESPONSE_HORIZONS))
        vol.append(
            [
                _signature(after[np.maximum(np.searchsorted(ts, g, side="right") - 1, 0)], h)
                for g, h in zip(grids, SIGNATURE_HORIZONS, strict=True)
            ]
        )

    def summary(x: list[Any]) -> dict[str, list[float]]:
        a = np.asarray(x, dtype=np.float64)
        return {"mean": a.mean(axis=0).tolist(), "sd": a.std(axis=0).tolist()}

    return {
        "sign_acf_lags": list(SIGN_LAGS),
        "sign_acf_data": [data_acf[k] for k in SIGN_LAGS],
        "sign_acf_model": summary(acf6),
        "sign_acf_market_order_hawkes": summary(acf2),
        "gap_quantiles": list(GAP_QUANTILES),
        "gap_data_s": data_gaps,
        "gap_model_s": summary(gaps),
        "gap_market_order_hawkes_s": summary(gaps2),
        "response_horizons_s": list(RESPONSE_HORIZONS),
        "response_data": params.impact.response,
        "response_model": summary(resp),
        "spread_share_data": params.spread.time_share,
        "spread_share_model": summary(shares),
        "signature_horizons_s": list(SIGNATURE_HORIZONS),
        "volatility_data": data_vol,
        "volatility_model": summary(vol),
        "n_paths": n_paths,
    }


def _signature(mid: np.ndarray, h: float) -> float:
    """``sqrt(mean(r_h^2) / h)`` (ticks / sqrt(s)) of a mid sampled every ``h`` seconds."""
    r = np.diff(mid)
    r = r[np.isfinite(r)]
    return float(np.sqrt(np.mean(r**2) / h)) if r.size else float("nan")


def calibrate_realistic_sample(
    sample: FlowSample,
    *,
    n_exponentials: int = 3,
    mo_exponentials: int = 3,
    n_buckets: int = 4,
    grid: int | None = None,
    max_lag: int = 128,
    check_paths: int = 3,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> RealisticCalibration:
    """Calibrate :class:`RealisticFlowParams` on a prepared sample (see
    :func:`calibrate_realistic` for the parameters)."""
    timings: dict[str, float] = {}
    step = partial(timed_step, timings=timings, progress=progress)

    T = sample_duration(sample)
    with step("hawkes_market_orders"):
        t, d = market_order_stream(sample)
        mo_fit = fit_hawkes(t, d, T, MARKET_ORDER_TYPES, n_exponentials=mo_exponentials)
    with step("spread"):
        spread_fit = fit_spread_model(sample, n_buckets=n_buckets, grid=grid)
        while spread_fit.params.n_buckets > 2 and spread_fit.params.time_share[-1] < MIN_SHARE:
            # a bucket the spread almost never reaches has no identifiable multipliers
            n_buckets = spread_fit.params.n_buckets - 1
            spread_fit = fit_spread_model(sample, n_buckets=n_buckets, grid=grid)
    with step("hawkes_best_level"):
        ev = best_events(sample)
        bucket = spread_fit.params.bucket(np.where(np.isfinite(ev.spread), ev.spread, np.inf))
        last = sample.bid_px.shape[0] - 1
        end_spread = sample.ask_px[last, 0] - sample.bid_px[last, 0]
        end_bucket = spread_fit.params.bucket(np.array([end_spread if end_spread > 0 else np.inf]))
        after = np.concatenate([bucket[1:], end_bucket]) - 1  # state after each event
        warm = mo_fit.params.decays if n_exponentials == mo_exponentials else None
        best_fit = fit_state_hawkes(
            ev.t,
            ev.type,
            after,
            int(bucket[0]) - 1,
            T,
            list(BEST_EVENT_TYPES),
            n_buckets,
            n_exponentials=n_exponentials,
            start_decays=warm,
            reference_state=int(np.argmax(spread_fit.params.time_share)),
        )
    with step("impact"):
        impact_fit = fit_propagator(sample, max_lag=max_lag)
    with step("sizes"):
        laws = size_distributions(sample)
        missing = {"limit", "cancel", "market"} - set(laws)
        if missing:
            raise ValueError(f"no {sorted(missing)} events kept: cannot fit their sizes")
    params = RealisticFlowParams(
        tick_size=sample.spec.tick_size,
        lot_size=sample.lot,
        hawkes=best_fit.params,
        spread_multipliers=best_fit.state_multipliers,
        market_order_hawkes=mo_fit.params,
        spread=spread_fit.params,
        impact=impact_fit.params,
        sizes=SizeLaws(
            limit=laws["limit"].probs, cancel=laws["cancel"].probs, market=laws["market"].probs
        ),
    )
    checks: dict[str, Any] = {}
    if check_paths > 0:
        with step("checks"):
            checks = check_realistic(
                params, sample, np.random.default_rng(seed), n_paths=check_paths
            )
    std_errors = {
        "hawkes": best_fit.std_errors,
        "spread_multipliers": best_fit.state_multipliers_se,
        "market_order_hawkes": mo_fit.std_errors,
        "spread": spread_fit.std_errors,
        "impact": impact_fit.std_errors,
        "sizes": {k: laws[k].probs_se for k in ("limit", "cancel", "market")},
    }
    diagnostics = {
        "hawkes": _state_diagnostics(best_fit),
        "market_order_hawkes": _hawkes_diagnostics(mo_fit),
        "spread": {
            "logit_converged": spread_fit.logit_converged,
            "logit_loglik": spread_fit.logit_llf,
            "logit_pseudo_r2": spread_fit.logit_pseudo_r2,
            "counts": spread_fit.counts,
        },
        "impact": {
            "power_law_chi2": impact_fit.chi2,
            "power_law_df": impact_fit.chi2_df,
            "n_market_orders": impact_fit.n_market_orders,
            "hac_lags": impact_fit.hac_lags,
        },
        "duration_s": T,
        "reference": sample.reference,
    }
    return RealisticCalibration(
        params=params,
        std_errors=std_errors,
        diagnostics=diagnostics,
        checks=checks,
        notes={k: int(v) for k, v in sample.notes.items()},
        timings=timings,
    )


def calibrate_realistic_frames(
    events: pd.DataFrame,
    book: pd.DataFrame,
    spec: InstrumentSpec,
    *,
    levels: int = 10,
    lot: float | None = None,
    reference: Reference = "auto",
    **kwargs: Any,
) -> RealisticCalibration:
    """:func:`calibrate_realistic` on canonical frames."""
    t0 = time.perf_counter()
    sample = prepare(events, book, spec, levels=levels, lot=lot, reference=reference)
    prep = time.perf_counter() - t0
    out = calibrate_realistic_sample(sample, **kwargs)
    out.timings = {"prepare": prep, **out.timings}
    return out


def calibrate_realistic(md: MarketData, **kwargs: Any) -> RealisticCalibration:
    """Calibrate the realistic order flow on one loaded dataset.

    :param md: a dataset from :mod:`data`.
    :param levels: ``lot``, ``reference``: as :func:`calibration.sample.prepare`.
    :param n_exponentials: kernels of the six-type best-level Hawkes process.
    :param mo_exponentials: kernels of the market-order (sign) Hawkes process.
    :param n_buckets: spread buckets ``K`` (lowered while the last one holds less than
        :data:`MIN_SHARE` of the time); ``grid``: coarse tick (fine ticks, default from the
        spread law).
    :param max_lag: longest lag (market orders) of the propagator.
    :param check_paths: simulated paths of :func:`check_realistic` (0: no checks).
    :param seed: seed of the checks' one random stream.
    :param progress: called with each fit's name as it starts.
    """
    return calibrate_realistic_frames(md.events, md.book, md.spec, **kwargs)

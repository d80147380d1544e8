"""Validation of a calibrated market: simulate it and compare its stylized facts with the data.

A calibration is validated by simulating the calibrated model and comparing stylized facts with
the data it was fitted on (docs/calibration.md#validation-against-the-data). The facts are
computed by ONE function, :func:`stylized_facts`, from canonical frames
(docs/data.md#canonical-schema), so the historical day and the simulated market
(:func:`envs.lob.events.simulate_events`) are measured the same way. The frames
are read through :func:`calibration.sample.prepare`, the view every fit uses: sizes in
calibration lots, hidden executions, snapshots and the simulator's ``synthetic`` rows left out,
the executions of one market order merged, halts excluded from the clock.

Facts (units: seconds, ticks, lots):

- spread distribution: ``ask_1 - bid_1`` (ticks) of the book in force every ``sample_dt``
  seconds (calendar-time sampling; one-sided books left out);
- best-queue sizes: ``bid_sz_1`` and ``ask_sz_1`` (lots) at the same times, both sides pooled;
- event rates by kind: limit orders, cancellations and market orders per second of open market,
  with the dispersion index of their counts in ``dispersion_bin``-second bins;
- mid volatility at several horizons ``h`` (the volatility signature): the realized variance of
  ``h``-second mid changes, ``sigma(h) = sqrt(mean(r_h^2) / h)`` ticks / sqrt(s), with
  Newey-West standard errors (:func:`calibration.volatility.realized_volatility`; Andersen,
  Bollerslev, Diebold & Labys 2003, eq. (4); Andersen, Bollerslev, Diebold & Labys 2000,
  "Great realizations", Risk 13, for the signature plot);
- trade-sign autocorrelation: the ACF at lags ``1..max_lag`` of the aggressor signs of market
  orders in event time (:func:`statsmodels.tsa.stattools.acf`) with Bartlett's standard errors;
  empirically positive and slowly decaying (Lillo & Farmer 2004; Bouchaud, Farmer & Lillo 2009);
- market-order inter-arrival times (s): mean, coefficient of variation, and their distribution;
- price impact of market orders (ticks): the mean of the aggressor's sign times the mid move
  from just before the order to ``h`` seconds after it (:func:`price_impact`).

:func:`fact_table` is the headline table: each fact of the data beside the model's with 95%
intervals (Newey-West / Bartlett where standard, else a block bootstrap over time blocks,
:func:`fact_draws`), the model/data ratio and a verdict (ratio within
:data:`RATIO_BAND`, sign autocorrelations within :data:`SIGN_ACF_TOLERANCE`, distances
reported). :func:`compare` keeps the two-sample tests: one row per fact with the two values, a
two-sample statistic, its p-value and a verdict whose criterion is stated in the row.
:func:`write_report` writes both tables (CSV, HTML), the figures (seaborn) and a Markdown + HTML
summary that says which facts the model does not reproduce.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats
from statsmodels.stats.rates import confint_poisson_2indep, test_poisson_2indep
from statsmodels.tsa.stattools import acf

from calibration.params import MarketParams
from calibration.sample import FlowSample, Reference, prepare
from calibration.volatility import realized_volatility
from data.schema import ADD, CANCEL, TRADE, InstrumentSpec
from envs.lob.events import simulate_events
from evaluation.reports import DPI, summary_page

HORIZONS: tuple[float, ...] = (1.0, 10.0, 60.0, 300.0)
"""Horizons (s) of the volatility signature."""

MAX_LAG = 100
"""Largest lag (market orders) of the trade-sign autocorrelation."""

SIGN_LAGS: tuple[int, ...] = (1, 10, 100)
"""Lags (market orders) of the trade-sign ACF in the fact table."""

IMPACT_HORIZONS: tuple[float, ...] = (1.0, 10.0, 60.0)
"""Horizons (s) of the price impact of market orders."""

QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
"""Quantiles of the spread distribution in the fact table."""

BLOCK_S = 300.0
"""Length (s) of the time blocks of the block bootstrap (Kuensch 1989; Politis & Romano 1994
for the idea of resampling whole blocks so that the dependence within a block is kept)."""

N_BOOT = 400
"""Bootstrap replicates of each market's facts."""

CONFIDENCE = 0.95
"""Level of the intervals of the fact table."""

RATIO_BAND: tuple[float, float] = (0.8, 1.25)
"""A fact's model / data ratio is reproduced inside this band."""

SIGN_ACF_TOLERANCE = 0.1
"""A trade-sign autocorrelation is reproduced within this absolute difference."""

KINDS: dict[str, int] = {"limit": ADD, "cancel": CANCEL, "market": TRADE}
"""Event kinds whose rates are compared (codes of :mod:`data.schema`; ``market``: whole market
orders)."""

KIND_LABELS: dict[str, str] = {
    "limit": "limit orders",
    "cancel": "cancellations",
    "market": "market orders",
}

RATE_MECHANISM: dict[str, str] = {
    "limit": "The model's limit orders arrive at the constant rates lambda(i) at distances "
    "1..L; a gap means the data's orders fall in or out of that window differently.",
    "cancel": "The model cancels each resting order at rate theta(i), so its cancellation rate "
    "follows the model's queue sizes (see the best-queue sizes), not the data's.",
    "market": "The model's market orders arrive at the constant rate mu per side.",
}
"""Why a CST market's rate of each kind can differ from the data's it was fitted on."""

ALPHA = 0.01
"""Level of every test of :func:`compare`; intervals are ``1 - ALPHA`` confidence intervals."""

TOLERANCE = 0.10
"""Relative tolerance of the ratio verdicts (rates, volatility): a ratio is reproduced when its
confidence interval reaches ``[1 / (1 + TOLERANCE), 1 + TOLERANCE]``."""

SOKAL_WINDOW = 5.0
"""``c`` of Sokal's automatic window for the integrated autocorrelation time."""

HALF_NS = 0.5e-9
"""Half a nanosecond (s): absorbs the rounding of ns time stamps converted to float seconds."""

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURED = "not measured"
"""Verdict of a fact one of the markets has too little data for (e.g. too few returns at a
horizon, no market order)."""


# --------------------------------------------------------------------------- facts


@dataclass
class StylizedFacts:
    """The facts of one market (module docstring); ``label`` names it in tables and figures,
    ``lot`` is the base units (shares, coins) of one lot.

    ``spread`` (ticks) and ``best_queue`` (lots, bid then ask) are samples on the
    ``sample_dt``-second grid; ``spread_tau`` and ``queue_tau`` their integrated autocorrelation
    times (in samples). ``counts[kind]`` events over ``duration`` seconds of open market,
    ``dispersion[kind]`` the variance / mean of the counts per ``dispersion_bin`` seconds;
    ``levels``: limit orders and cancellations beyond that distance are not counted (None: all).
    ``volatility``: index ``horizon_s``, columns ``sigma`` (ticks / sqrt(s)), ``se``, ``n``
    (returns). ``sign_acf[k]`` and ``sign_acf_se[k]``: ACF of market-order signs at lag ``k``
    (``k = 0..max_lag``) and Bartlett's standard error, NaN when there are too few orders.

    For the fact table (:func:`fact_table`): ``spread_t`` and ``queue_t`` are the times (s) of
    the samples, ``market_t`` the times of the market orders, ``interarrival`` the times
    between consecutive market orders (s), ``impact[i, j]`` the signed mid move after market
    order ``i`` at ``impact_horizons[j]`` seconds (ticks, sign of the aggressor: positive when
    the mid follows the trade; NaN past the end). ``estimates[name]`` is each fact of
    :data:`FACTS` and ``draws[name]`` its replicates: a block bootstrap over ``block_s``-second
    time blocks, or Normal draws from the analytic standard error (Newey-West volatility,
    Bartlett ACF).
    """

    label: str
    lot: float
    duration: float
    sample_dt: float
    spread: np.ndarray
    best_queue: np.ndarray
    spread_tau: float
    queue_tau: float
    counts: dict[str, int]
    dispersion: dict[str, float]
    dispersion_bin: float
    levels: int | None
    volatility: pd.DataFrame
    sign_acf: np.ndarray
    sign_acf_se: np.ndarray
    n_market_orders: int
    notes: dict[str, int] = field(default_factory=dict)
    spread_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    queue_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    market_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    interarrival: np.ndarray = field(default_factory=lambda: np.empty(0))
    impact_horizons: tuple[float, ...] = IMPACT_HORIZONS
    impact: np.ndarray = field(default_factory=lambda: np.empty((0, len(IMPACT_HORIZONS))))
    block_s: float = BLOCK_S
    estimates: dict[str, float] = field(default_factory=dict)
    draws: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def rates(self) -> dict[str, float]:
        """Events per second of open market, per kind."""
        return {k: c / self.duration for k, c in self.counts.items()}


def integrated_time(x: np.ndarray, c: float = SOKAL_WINDOW) -> float:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_{k=1}^{M} rho_k`` (in samples) with
    Sokal's automatic window, the smallest ``M >= c tau(M)`` (A. Sokal, "Monte Carlo methods in
    statistical mechanics: foundations and new algorithms", 1997, section 3; his ``tau_int`` is
    half of this ``tau``). ``n / tau`` is the effective sample size of a mean; an AR(1) with
    coefficient ``phi`` has ``tau = (1 + phi) / (1 - phi)``. 1 for a constant or too short
    series."""
    x = np.asarray(x, np.float64)
    if x.size < 3 or not np.ptp(x) > 0:
        return 1.0
    rho = acf(x, nlags=x.size - 1, fft=True)
    taus = 1.0 + 2.0 * np.cumsum(rho[1:])
    window = np.flatnonzero(np.arange(1, taus.size + 1) >= c * taus)
    tau = taus[window[0]] if window.size else taus[-1]
    return float(max(tau, 1.0))


def _grid_rows(sample: FlowSample, dt: float, with_times: bool = False) -> Any:
    """Book rows in force every ``dt`` seconds while the market is open (no halt); with
    ``with_times``, also the grid times (s) of those rows."""
    n = int(np.floor((sample.row_t[-1] - sample.row_t[0]) / dt)) + 1
    grid = sample.row_t[0] + dt * np.arange(n)
    rows = sample.at(grid + HALF_NS)  # a row starting exactly at a grid time is in force
    open_ = np.ones(n, dtype=bool)
    for h0, h1 in sample.halts:
        open_ &= ~((grid >= h0) & (grid < h1))
    keep = (rows >= 0) & open_
    out: np.ndarray = rows[keep]
    return (out, grid[keep]) if with_times else out


def price_impact(sample: FlowSample, market: np.ndarray, horizons: Sequence[float]) -> np.ndarray:
    """Signed mid move after each market order, ``(n, H)`` ticks:
    ``eps_i (mid(t_i + h) - mid(t_i-))``, ``eps_i`` the aggressor's sign (+1 buy), ``mid(t_i-)``
    the mid of the book just before the order and ``mid(t_i + h)`` the mid in force ``h`` seconds
    after it; NaN past the last book row or where a side is empty. Positive: the mid follows the
    trade (Bouchaud, Farmer & Lillo 2009, section 5.2, the response function R(h) in calendar
    time)."""
    t = sample.t[market]
    eps = sample.aggressor[market].astype(np.float64)
    before = sample.mid(sample.prev[market])
    out = np.full((t.size, len(horizons)), np.nan)
    for j, h in enumerate(horizons):
        later = t + float(h)
        rows = sample.at(later + HALF_NS)
        ok = later <= sample.row_t[-1]
        out[ok, j] = eps[ok] * (sample.mid(rows[ok]) - before[ok])
    return out


def _dispersion(t: np.ndarray, duration: float, width: float) -> float:
    """Variance / mean of the counts of events at times ``t`` (s since the start) in whole
    ``width``-second bins (the index of dispersion of a quasi-Poisson count; 1 for a Poisson
    process); 1 when there are fewer than two bins or no event."""
    n_bins = int(duration // width)
    if n_bins < 2 or t.size == 0:
        return 1.0
    whole = t[t < n_bins * width]  # the last, partial bin is left out
    counts = np.bincount((whole // width).astype(np.int64), minlength=n_bins)[:n_bins]
    mean = counts.mean()
    return float(counts.var(ddof=1) / mean) if mean > 0 else 1.0


def _sign_acf(signs: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """ACF of the signs at lags ``0..max_lag`` and Bartlett's standard errors (NaN if unusable)."""
    nan = np.full(max_lag + 1, np.nan)
    if signs.size < max_lag + 2 or not np.ptp(signs) > 0:
        return nan, nan.copy()
    rho, confint = acf(signs, nlags=max_lag, fft=True, alpha=0.05, result_object=False)
    se = (confint[:, 1] - rho) / stats.norm.ppf(0.975)
    return np.asarray(rho), np.asarray(se)


def stylized_facts(
    events: pd.DataFrame,
    book: pd.DataFrame,
    spec: InstrumentSpec,
    *,
    lot: float | None = None,
    levels: int | None = None,
    reference: Reference = "opposite",
    label: str = "data",
    sample_dt: float = 1.0,
    horizons: Sequence[float] = HORIZONS,
    max_lag: int = MAX_LAG,
    dispersion_bin: float = 60.0,
    impact_horizons: Sequence[float] = IMPACT_HORIZONS,
    block_s: float = BLOCK_S,
    n_boot: int = N_BOOT,
    seed: int | Sequence[int] = 0,
) -> StylizedFacts:
    """The stylized facts of one market from its canonical ``events`` and ``book`` frames.

    :param spec: the instrument (``spec.lot_size``: base units per feed lot).
    :param lot: base units per calibration lot (``MarketParams.lot_size``); ``None``: the median
        limit-order size (:func:`calibration.sample.default_lot`).
    :param levels: count only the limit orders and cancellations at distances ``1..levels``
        (the window a market of ``MarketParams.n_levels`` levels simulates; market orders always
        count); ``None``: every one.
    :param reference: how those distances are counted (:mod:`calibration.sample`; ``"auto"``:
        as the calibration does).
    :param label: the market's name in tables and figures.
    :param sample_dt: sampling interval (s) of the spread and the best queues.
    :param horizons: horizons (s) of the volatility signature; a horizon with fewer than 5
        returns gets NaN.
    :param max_lag: largest lag (market orders) of the trade-sign ACF.
    :param dispersion_bin: bin width (s) of the dispersion index of the event counts.
    :param impact_horizons: horizons (s) of the price impact of market orders.
    :param block_s: length (s) of the time blocks of the bootstrap; ``n_boot`` replicates drawn
        from ``numpy.random.default_rng(seed)`` (same frames and seed, same intervals). Two
        markets compared must use different seeds, so that their replicates are independent
        (:func:`simulated_facts` uses ``(seed, 1)``, the data ``0``).
    :raises ValueError: naming the frame or parameter that cannot be used.
    """
    if not sample_dt > 0:
        raise ValueError(f"sample_dt must be > 0 s, got {sample_dt}")
    if max_lag < 1:
        raise ValueError(f"max_lag must be >= 1, got {max_lag}")
    if not dispersion_bin > 0:
        raise ValueError(f"dispersion_bin must be > 0 s, got {dispersion_bin}")
    if levels is not None and levels < 1:
        raise ValueError(f"levels must be >= 1 or None, got {levels}")
    if not block_s > 0 or n_boot < 2:
        raise ValueError(f"block_s must be > 0 s and n_boot >= 2, got {block_s}, {n_boot}")
    if any(not h > 0 for h in impact_horizons):
        raise ValueError(f"impact_horizons must be > 0 s, got {list(impact_horizons)}")
    sample = prepare(events, book, spec, levels=levels or 1, lot=lot, reference=reference)
    duration = sample.duration
    if not duration > 0:
        raise ValueError(f"{label}: the market was never open (duration {duration} s)")

    rows, grid_t = _grid_rows(sample, sample_dt, with_times=True)
    bid, ask = sample.bid_px[rows, 0], sample.ask_px[rows, 0]
    two_sided = np.isfinite(bid) & np.isfinite(ask)
    spread = (ask - bid)[two_sided]
    queues = [
        sz[rows, 0][np.isfinite(px[rows, 0])]
        for px, sz in ((sample.bid_px, sample.bid_sz), (sample.ask_px, sample.ask_sz))
    ]
    best_queue = np.concatenate(queues)
    queue_t = np.concatenate(
        [grid_t[np.isfinite(px[rows, 0])] for px in (sample.bid_px, sample.ask_px)]
    )
    if spread.size == 0:
        raise ValueError(f"{label}: book: no two-sided book on the {sample_dt} s grid")

    counted = (sample.kind == TRADE) | (sample.dist > 0) if levels else np.ones_like(sample.t, bool)
    counts = {k: int(((sample.kind == code) & counted).sum()) for k, code in KINDS.items()}
    dispersion = {
        k: _dispersion(sample.t[(sample.kind == code) & counted], duration, dispersion_bin)
        for k, code in KINDS.items()
    }

    vol_rows = []
    for h in horizons:
        try:
            rv = realized_volatility(sample, dt=float(h))
            vol_rows.append((float(h), rv.sigma, rv.se, rv.n))
        except ValueError:  # too few returns at this horizon
            vol_rows.append((float(h), np.nan, np.nan, 0))
        except ZeroDivisionError:  # the mid never moved: sigma = 0 (its SE divides by sigma)
            vol_rows.append((float(h), 0.0, 0.0, 0))
    volatility = pd.DataFrame(vol_rows, columns=["horizon_s", "sigma", "se", "n"]).set_index(
        "horizon_s"
    )

    market = (sample.kind == TRADE) & (sample.aggressor != 0)
    signs = sample.aggressor[market].astype(np.float64)
    sign_acf, sign_acf_se = _sign_acf(signs, max_lag)
    market_t = sample.t[market]
    impact = price_impact(sample, market, impact_horizons)

    facts = StylizedFacts(
        label=label,
        lot=sample.lot,
        duration=duration,
        sample_dt=sample_dt,
        spread=spread,
        best_queue=best_queue,
        spread_tau=integrated_time(spread),
        queue_tau=max(integrated_time(q) for q in queues) if best_queue.size else 1.0,
        counts=counts,
        dispersion=dispersion,
        dispersion_bin=dispersion_bin,
        levels=levels,
        volatility=volatility,
        sign_acf=sign_acf,
        sign_acf_se=sign_acf_se,
        n_market_orders=int(signs.size),
        notes={k: int(v) for k, v in sample.notes.items()},
        spread_t=grid_t[two_sided] - sample.row_t[0],
        queue_t=queue_t - sample.row_t[0],
        market_t=market_t - sample.row_t[0],
        interarrival=np.diff(market_t),
        impact_horizons=tuple(float(h) for h in impact_horizons),
        impact=impact,
        block_s=float(block_s),
    )
    facts.estimates, facts.draws = fact_draws(facts, n_boot, np.random.default_rng(seed))
    return facts


def model_spec(params: MarketParams, symbol: str = "model") -> InstrumentSpec:
    """The instrument of a simulated market: prices in ticks, sizes in the market's lots."""
    return InstrumentSpec(
        symbol=symbol,
        tick_size=params.tick_size,
        lot_size=params.lot_size,
        price_scale=1.0,
        timezone="UTC",
    )


def simulated_facts(
    params: MarketParams,
    duration: float,
    seed: int,
    *,
    label: str = "model",
    sample_dt: float = 1.0,
    horizons: Sequence[float] = HORIZONS,
    max_lag: int = MAX_LAG,
    dispersion_bin: float = 60.0,
    impact_horizons: Sequence[float] = IMPACT_HORIZONS,
    block_s: float = BLOCK_S,
    n_boot: int = N_BOOT,
) -> StylizedFacts:
    """Simulate ``params`` (one book, no agent, :func:`envs.lob.events.simulate_events`) for
    ``duration`` seconds from ``seed`` and measure it with :func:`stylized_facts` (the other
    parameters are its own; every simulated order lies in the ``params.n_levels`` window, counted
    from the opposite best). Same seed, same facts."""
    events, book = simulate_events(params, duration, seed)
    return stylized_facts(
        events,
        book,
        model_spec(params),
        lot=params.lot_size,
        levels=params.n_levels,
        reference="opposite",
        label=label,
        sample_dt=sample_dt,
        horizons=horizons,
        max_lag=max_lag,
        dispersion_bin=dispersion_bin,
        impact_horizons=impact_horizons,
        block_s=block_s,
        n_boot=n_boot,
        seed=(seed, 1),  # bootstrap draws apart from the data's (seed 0)
    )


# --------------------------------------------------------------------------- fact table


@dataclass(frozen=True)
class Fact:
    """One row of the fact table: ``rule`` is ``"ratio"`` (model / data inside
    :data:`RATIO_BAND`), ``"difference"`` (``|model - data|`` within
    :data:`SIGN_ACF_TOLERANCE`) or ``"reported"`` (a distance between the two distributions,
    shown without a verdict); ``ci`` says how its intervals are computed."""

    description: str
    unit: str
    rule: str
    ci: str


def fact_registry(
    horizons: Sequence[float] = HORIZONS,
    impact_horizons: Sequence[float] = IMPACT_HORIZONS,
    lags: Sequence[int] = SIGN_LAGS,
) -> dict[str, Fact]:
    """The facts of the table, by name, in the order shown."""
    boot = "block bootstrap"
    facts = {
        "spread_mean": Fact("spread, mean", "ticks", "ratio", boot),
        **{
            f"spread_q{round(100 * q)}": Fact(f"spread, {q:.0%} quantile", "ticks", "ratio", boot)
            for q in QUANTILES
        },
        "spread_tv": Fact("spread distribution, TV distance", "-", "reported", boot),
        "queue_mean": Fact("best-queue size, mean", "lots", "ratio", boot),
        "queue_tv": Fact("best-queue size distribution, TV distance", "-", "reported", boot),
        **{
            f"volatility_{h:g}s": Fact(f"volatility signature at {h:g} s", "ticks/sqrt(s)",
                                       "ratio", "Newey-West")
            for h in horizons
        },
        **{
            f"sign_acf_lag{k}": Fact(f"trade-sign ACF at lag {k}", "-", "difference", "Bartlett")
            for k in lags
        },
        "interarrival_mean": Fact("market-order inter-arrival, mean", "s", "ratio", boot),
        "interarrival_cv": Fact("market-order inter-arrival, CV", "-", "ratio", boot),
        "interarrival_ks": Fact("market-order inter-arrival distribution, KS D", "-",
                                "reported", "KS p with effective sizes n / tau"),
        **{
            f"impact_{h:g}s": Fact(f"price impact of a market order at {h:g} s", "ticks",
                                   "ratio", boot)
            for h in impact_horizons
        },
    }  # fmt: skip
    return facts


def _block_layout(t: np.ndarray, block_s: float, n_blocks: int) -> tuple[np.ndarray, ...]:
    """Indices of ``t`` sorted by time block, and each block's start and count in that order."""
    b = np.clip((np.asarray(t, np.float64) // block_s).astype(np.int64), 0, n_blocks - 1)
    order = np.argsort(b, kind="stable")
    counts = np.bincount(b, minlength=n_blocks)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts


def _resample(layout: tuple[np.ndarray, ...], ids: np.ndarray) -> np.ndarray:
    """The indices of the samples in the blocks ``ids`` (with repetitions), block after block."""
    order, starts, counts = layout
    lengths = counts[ids]
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    first = np.repeat(starts[ids] - (np.cumsum(lengths) - lengths), lengths)
    out: np.ndarray = order[first + np.arange(total)]
    return out


def _sample_facts(
    spread: np.ndarray,
    queue: np.ndarray,
    interarrival: np.ndarray,
    impact: np.ndarray,
    impact_horizons: Sequence[float],
) -> dict[str, float]:
    """The bootstrapped facts of one (re)sample: the same definitions for the estimate and for
    every replicate."""
    nan = math.nan
    out: dict[str, float] = {"spread_mean": float(np.mean(spread)) if spread.size else nan}
    for q in QUANTILES:
        out[f"spread_q{round(100 * q)}"] = float(np.quantile(spread, q)) if spread.size else nan
    out["queue_mean"] = float(np.mean(queue)) if queue.size else nan
    if interarrival.size >= 2:
        mean = float(np.mean(interarrival))
        out["interarrival_mean"] = mean
        out["interarrival_cv"] = float(np.std(interarrival, ddof=1) / mean) if mean > 0 else nan
    else:
        out["interarrival_mean"] = out["interarrival_cv"] = nan
    for j, h in enumerate(impact_horizons):
        col = impact[:, j] if impact.size else np.empty(0)
        col = col[np.isfinite(col)]
        out[f"impact_{h:g}s"] = float(np.mean(col)) if col.size else nan
    return out


def fact_draws(
    f: StylizedFacts, n_boot: int, rng: np.random.Generator
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Estimates and replicates of every fact of :func:`fact_registry` but the distances
    (computed against the other market in :func:`fact_table`).

    Bootstrapped facts: ``n_boot`` resamples of ``ceil(duration / block_s)`` time blocks drawn
    with replacement, the same blocks for every series (spread and queue samples, market orders
    by their time; an inter-arrival time belongs to the block of the order that ends it).
    Volatility and trade-sign ACF: ``n_boot`` Normal draws around the estimate with the
    Newey-West / Bartlett standard error (the analytic interval, in a form the ratios and
    differences can combine)."""
    n_blocks = max(1, math.ceil(f.duration / f.block_s - 1e-9))
    series = (f.spread_t, f.queue_t, f.market_t[1:], f.market_t)
    layouts = [_block_layout(t, f.block_s, n_blocks) for t in series]
    values = (f.spread, f.best_queue, f.interarrival, f.impact)
    estimates = _sample_facts(*values, f.impact_horizons)
    reps: dict[str, list[float]] = {k: [] for k in estimates}
    for _ in range(n_boot if n_blocks >= 2 else 0):
        ids = rng.integers(0, n_blocks, n_blocks)
        s, q, ia, im = (v[_resample(lay, ids)] for v, lay in zip(values, layouts, strict=True))
        for name, v in _sample_facts(s, q, ia, im, f.impact_horizons).items():
            reps[name].append(v)
    draws = {
        k: np.asarray(v, np.float64) if v else np.full(n_boot, np.nan) for k, v in reps.items()
    }
    for h in f.volatility.index:
        sigma, se = _vol(f, h)
        estimates[f"volatility_{h:g}s"] = sigma
        draws[f"volatility_{h:g}s"] = sigma + se * rng.standard_normal(n_boot)
    for lag in range(1, f.sign_acf.size):
        rho, se = float(f.sign_acf[lag]), float(f.sign_acf_se[lag])
        estimates[f"sign_acf_lag{lag}"] = rho
        draws[f"sign_acf_lag{lag}"] = rho + se * rng.standard_normal(n_boot)
    return estimates, draws


def tv_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Total-variation distance ``1/2 sum_v |P(x = v) - P(y = v)|`` of two samples of a discrete
    variable (their empirical laws); 0 for the same law, 1 for disjoint supports."""
    if x.size == 0 or y.size == 0:
        return math.nan
    values, inverse = np.unique(np.concatenate([x, y]), return_inverse=True)
    p = np.bincount(inverse[: x.size], minlength=values.size) / x.size
    q = np.bincount(inverse[x.size :], minlength=values.size) / y.size
    return float(0.5 * np.abs(p - q).sum())


def _discrete_queue(q: np.ndarray) -> np.ndarray:
    """Queue sizes as whole lots (rounded up, as in the figures)."""
    return np.ceil(np.asarray(q, np.float64) - 1e-9)


def _tv_draws(
    data: StylizedFacts, model: StylizedFacts, attr: str, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of the TV distance, both markets resampled by time blocks."""
    out = np.full(n_boot, np.nan)
    t_attr = "spread_t" if attr == "spread" else "queue_t"
    prep = (lambda v: v) if attr == "spread" else _discrete_queue
    sides = []
    for f in (data, model):
        n_blocks = max(1, math.ceil(f.duration / f.block_s - 1e-9))
        sides.append((prep(getattr(f, attr)), _block_layout(getattr(f, t_attr), f.block_s,
                                                             n_blocks), n_blocks))  # fmt: skip
    if min(s[2] for s in sides) < 2:
        return out
    for b in range(n_boot):
        xs = [v[_resample(lay, rng.integers(0, n, n))] for v, lay, n in sides]
        out[b] = tv_distance(*xs)
    return out


FACT_COLUMNS = [
    "fact",
    "description",
    "unit",
    "data",
    "data_low",
    "data_high",
    "model",
    "model_low",
    "model_high",
    "statistic",
    "value",
    "value_low",
    "value_high",
    "p_value",
    "verdict",
    "gap",
    "rule",
]
"""Columns of :func:`fact_table`: each market's estimate with its ``CONFIDENCE`` interval, the
comparison (``statistic``: model/data, model - data, TV distance or KS D) with its interval,
the verdict and, when not reproduced, by how much (``gap``)."""

REPORTED = "reported"
"""Verdict of a distance shown without a target (TV, KS)."""


def ratio_verdict(ratio: float, band: tuple[float, float] = RATIO_BAND) -> tuple[str, str]:
    """Verdict and gap of a model / data ratio: reproduced inside ``band``; NaN: not measured."""
    if not np.isfinite(ratio):
        return NOT_MEASURED, ""
    lo, hi = band
    if lo <= ratio <= hi:
        return REPRODUCED, ""
    if ratio <= 0:
        return NOT_REPRODUCED, f"ratio {ratio:.3g}: opposite sign or zero (band {lo:g}-{hi:g})"
    side = f"{ratio / hi:.2f}x above" if ratio > hi else f"{lo / ratio:.2f}x below"
    return NOT_REPRODUCED, f"ratio {ratio:.3g}, {side} the band {lo:g}-{hi:g}"


def difference_verdict(diff: float, tolerance: float = SIGN_ACF_TOLERANCE) -> tuple[str, str]:
    """Verdict and gap of a model - data difference: reproduced when ``|diff| <= tolerance``."""
    if not np.isfinite(diff):
        return NOT_MEASURED, ""
    if abs(diff) <= tolerance + 1e-12:
        return REPRODUCED, ""
    return NOT_REPRODUCED, f"|model - data| = {abs(diff):.3g} > {tolerance:g}"


def _interval(x: np.ndarray, confidence: float) -> tuple[float, float]:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan, math.nan
    a = 100 * (1 - confidence) / 2
    return float(np.percentile(x, a)), float(np.percentile(x, 100 - a))


def fact_table(
    data: StylizedFacts,
    model: StylizedFacts,
    *,
    confidence: float = CONFIDENCE,
    band: tuple[float, float] = RATIO_BAND,
    tolerance: float = SIGN_ACF_TOLERANCE,
    lags: Sequence[int] = SIGN_LAGS,
    seed: int = 0,
) -> pd.DataFrame:
    """Data beside model, one row per fact of :func:`fact_registry` (columns
    :data:`FACT_COLUMNS`), with ``confidence`` intervals and a verdict:

    - ``ratio`` facts: reproduced when model / data lies in ``band`` (point estimate); its
      interval is the percentile interval of the ratio of independent replicates;
    - trade-sign ACF at ``lags``: reproduced when ``|model - data| <= tolerance``;
    - TV distances (spread in ticks, best queue in whole lots) and the KS distance of the
      inter-arrival times: reported, no verdict (KS p-value with effective sizes, :func:`ks_test`).

    Each market's interval comes from its replicates (:func:`fact_draws`: block bootstrap, or
    Normal draws from the Newey-West / Bartlett errors); a fact either market cannot measure is
    :data:`NOT_MEASURED`."""
    rng = np.random.default_rng(seed)
    registry = fact_registry([float(h) for h in data.volatility.index], data.impact_horizons, lags)
    rules = {
        "ratio": f"reproduced if model/data in [{band[0]:g}, {band[1]:g}]",
        "difference": f"reproduced if |model - data| <= {tolerance:g}",
        "reported": "reported (no target)",
    }
    rows = []
    for name, fact in registry.items():
        nan2 = (math.nan, math.nan)
        row: dict[str, object] = {"fact": name, "description": fact.description, "unit": fact.unit}
        p_value = math.nan
        if fact.rule == "reported":
            if name == "interarrival_ks":
                x, y = data.interarrival, model.interarrival
                if x.size >= 2 and y.size >= 2:
                    tau_x, tau_y = integrated_time(x), integrated_time(y)
                    value, p_value = ks_test(x, y, tau_x, tau_y)
                else:
                    value = math.nan
                ci = nan2
                dv = mv = (math.nan, *nan2)
                statistic = "KS D"
            else:
                attr = "spread" if name == "spread_tv" else "best_queue"
                prep = (lambda v: v) if attr == "spread" else _discrete_queue
                value = tv_distance(prep(getattr(data, attr)), prep(getattr(model, attr)))
                ci = _interval(_tv_draws(data, model, attr, len(next(iter(data.draws.values()))),
                                         rng), confidence)  # fmt: skip
                dv = (math.nan, *nan2)
                mv = (math.nan, *nan2)
                statistic = "TV distance"
            verdict, gap = (REPORTED if np.isfinite(value) else NOT_MEASURED), ""
        else:
            d, m = data.estimates.get(name, math.nan), model.estimates.get(name, math.nan)
            dd = data.draws.get(name, np.array([math.nan]))
            md = model.draws.get(name, np.array([math.nan]))
            dv = (d, *_interval(dd, confidence))
            mv = (m, *_interval(md, confidence))
            n = min(dd.size, md.size)
            with np.errstate(divide="ignore", invalid="ignore"):
                if fact.rule == "ratio":
                    statistic = "model/data"
                    value = m / d if np.isfinite(d) and d != 0 and np.isfinite(m) else math.nan
                    ci = _interval(md[:n] / dd[:n], confidence)
                    verdict, gap = ratio_verdict(value, band)
                else:
                    statistic = "model - data"
                    value = m - d
                    ci = _interval(md[:n] - dd[:n], confidence)
                    verdict, gap = difference_verdict(value, tolerance)
        row |= {
            "data": dv[0], "data_low": dv[1], "data_high": dv[2],
            "model": mv[0], "model_low": mv[1], "model_high": mv[2],
            "statistic": statistic, "value": value, "value_low": ci[0], "value_high": ci[1],
            "p_value": p_value, "verdict": verdict, "gap": gap, "rule": rules[fact.rule],
        }  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=FACT_COLUMNS)


def fact_metrics(table: pd.DataFrame, prefix: str = "calibration/facts") -> dict[str, float]:
    """The fact table as metrics ``<prefix>/<fact>/<column>`` (NaN left out) and the verdict as
    ``<prefix>/<fact>/reproduced`` (1 or 0; none for reported or unmeasured facts)."""
    out: dict[str, float] = {}
    cols = ("data", "data_low", "data_high", "model", "model_low", "model_high", "value",
            "value_low", "value_high", "p_value")  # fmt: skip
    for _, row in table.iterrows():
        for col in cols:
            v = float(row[col])
            if np.isfinite(v):
                out[f"{prefix}/{row['fact']}/{col}"] = v
        if row["verdict"] in (REPRODUCED, NOT_REPRODUCED):
            out[f"{prefix}/{row['fact']}/reproduced"] = float(row["verdict"] == REPRODUCED)
    return out


# --------------------------------------------------------------------------- comparison

COLUMNS = [
    "fact",
    "description",
    "unit",
    "data",
    "model",
    "statistic",
    "value",
    "p_value",
    "ci_low",
    "ci_high",
    "verdict",
    "criterion",
]
"""Columns of the :func:`compare` table. ``data`` / ``model``: the fact's summary in each market
(for distributions the mean); ``value``: the statistic; ``ci_low`` / ``ci_high``: its ``1 -
ALPHA`` confidence interval where it has one."""


def ks_test(
    x: np.ndarray, y: np.ndarray, tau_x: float = 1.0, tau_y: float = 1.0
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic ``D`` (:func:`scipy.stats.ks_2samp`) and its
    p-value with each sample's size divided by its integrated autocorrelation time.

    Samples of a time series on a fine grid are not independent; the asymptotic p-value is
    evaluated with the effective sizes ``n / tau`` (the correction of M. S. Weiss, "Modification
    of the Kolmogorov-Smirnov statistic for use with correlated data", JASA 73(364), 1978):
    ``p = kstwo.sf(D, round(m' n' / (m' + n')))``, the asymptotic method of ``ks_2samp``.
    """
    d = float(stats.ks_2samp(x, y).statistic)
    m_eff = x.size / max(tau_x, 1.0)
    n_eff = y.size / max(tau_y, 1.0)
    en = max(1, round(m_eff * n_eff / (m_eff + n_eff)))
    return d, float(stats.kstwo.sf(d, en))


def rate_ratio(
    count_model: float,
    time_model: float,
    count_data: float,
    time_data: float,
    phi_model: float = 1.0,
    phi_data: float = 1.0,
    alpha: float = ALPHA,
) -> tuple[float, float, float, float]:
    """Model / data rate ratio, its score test p-value (H0: ratio 1) and ``1 - alpha`` interval
    (:func:`statsmodels.stats.rates.test_poisson_2indep` and ``confint_poisson_2indep``, Gu, Ng,
    Tang & Schucany 2008). Over-dispersed counts (clustered order flow) are treated as
    quasi-Poisson (McCullagh & Nelder, "Generalized Linear Models", 1989, ch. 6): a count ``X``
    over ``T`` with dispersion ``phi >= 1`` enters as ``X / phi`` over ``T / phi`` (same rate,
    variance times ``phi``). Returns ``(ratio, p, low, high)``."""
    pm, pd_ = max(phi_model, 1.0), max(phi_data, 1.0)
    if count_data <= 0:
        return math.nan, math.nan, math.nan, math.nan
    args = (count_model / pm, time_model / pm, count_data / pd_, time_data / pd_)
    ratio = (count_model / time_model) / (count_data / time_data)
    p = float(test_poisson_2indep(*args, method="score", compare="ratio").pvalue)
    low, high = confint_poisson_2indep(*args, method="score", compare="ratio", alpha=alpha)
    return ratio, p, float(low), float(high)


def _ratio_passes(low: float, high: float, tol: float) -> bool:
    """The interval ``[low, high]`` of a ratio reaches ``[1 / (1 + tol), 1 + tol]``."""
    return bool(np.isfinite(low) and np.isfinite(high) and high >= 1 / (1 + tol) and low <= 1 + tol)


def _z_p(z: float) -> float:
    return float(2.0 * stats.norm.sf(abs(z))) if np.isfinite(z) else math.nan


def compare(
    data: StylizedFacts,
    model: StylizedFacts,
    *,
    alpha: float = ALPHA,
    tolerance: float = TOLERANCE,
) -> pd.DataFrame:
    """One row per fact (columns :data:`COLUMNS`), data against model, with a verdict:
    :data:`REPRODUCED`, :data:`NOT_REPRODUCED`, or :data:`NOT_MEASURED` when either market has
    too little data for the fact.

    Criteria (also written in each row's ``criterion``):

    - spread and best-queue distributions: two-sample KS (:func:`ks_test`, autocorrelation-
      adjusted p-value); reproduced when ``p >= alpha``;
    - event rates: model / data ratio with a quasi-Poisson interval (:func:`rate_ratio`);
      reproduced when the ``1 - alpha`` interval reaches ``[1 / (1 + tolerance), 1 + tolerance]``
      (the difference is not shown to exceed the tolerance);
    - volatility at each horizon: ratio of the realized volatilities, interval by the delta
      method on ``log sigma_model - log sigma_data`` with the Newey-West SEs; same criterion;
    - trade-sign ACF: at lag 1 ``z = (acf_model - acf_data) / sqrt(se_model^2 + se_data^2)``
      (Bartlett SEs), reproduced when ``p >= alpha``; over lags ``1..max_lag`` the largest
      ``|z|`` with a Bonferroni p-value ``min(1, max_lag * min_k p_k)``, same rule.
    """
    rows: list[dict[str, object]] = []

    def add(
        fact: str,
        description: str,
        unit: str,
        values: tuple[float, float],
        statistic: str,
        value: float,
        p_value: float,
        passed: bool,
        criterion: str,
        ci: tuple[float, float] = (math.nan, math.nan),
    ) -> None:
        verdict = REPRODUCED if passed else NOT_REPRODUCED
        if not (np.isfinite(values[0]) and np.isfinite(values[1])):
            verdict = NOT_MEASURED
        cells = (fact, description, unit, *values, statistic, value, p_value, *ci, verdict)
        rows.append(dict(zip(COLUMNS, (*cells, criterion), strict=True)))

    ks_crit = f"reproduced if KS p >= {alpha:g} (p with effective sizes n / tau)"
    distributions = {
        "spread": ("spread distribution (mean)", "ticks", "spread", "spread_tau"),
        "best_queue": ("best-queue size distribution (mean)", "lots", "best_queue", "queue_tau"),
    }
    for fact, (description, unit, attr, tau) in distributions.items():
        x, y = getattr(data, attr), getattr(model, attr)
        d, p = ks_test(x, y, getattr(data, tau), getattr(model, tau))
        means = (float(np.mean(x)), float(np.mean(y)))
        add(fact, description, unit, means, "KS D", d, p, p >= alpha, ks_crit)

    band = f"[{1 / (1 + tolerance):.3g}, {1 + tolerance:.3g}]"
    ratio_crit = f"reproduced if the {1 - alpha:.0%} CI of model/data reaches {band}"
    for kind in KINDS:
        ratio, p, low, high = rate_ratio(
            model.counts[kind],
            model.duration,
            data.counts[kind],
            data.duration,
            model.dispersion[kind],
            data.dispersion[kind],
            alpha,
        )
        rates = (data.rates[kind], model.rates[kind])
        passed = _ratio_passes(low, high, tolerance)
        criterion = ratio_crit + " (quasi-Poisson score CI)"
        add(
            f"rate_{kind}",
            f"rate of {KIND_LABELS[kind]}",
            "1/s",
            rates,
            "ratio model/data",
            ratio,
            p,
            passed,
            criterion,
            (low, high),
        )

    z_crit = float(stats.norm.ppf(1 - alpha / 2))
    for h in data.volatility.index.union(model.volatility.index):
        (sd, se_d), (sm, se_m) = _vol(data, h), _vol(model, h)
        ratio = sm / sd if sd > 0 else math.nan
        s_log = math.sqrt((se_d / sd) ** 2 + (se_m / sm) ** 2) if sd > 0 and sm > 0 else math.nan
        low, high = ratio * math.exp(-z_crit * s_log), ratio * math.exp(z_crit * s_log)
        p = _z_p(math.log(ratio) / s_log) if s_log > 0 else math.nan
        passed = _ratio_passes(low, high, tolerance)
        criterion = ratio_crit + " (delta method, Newey-West SEs)"
        add(
            f"volatility_{h:g}s",
            f"mid volatility at {h:g} s",
            "ticks/sqrt(s)",
            (sd, sm),
            "ratio model/data",
            ratio,
            p,
            passed,
            criterion,
            (low, high),
        )

    n_lag = min(data.sign_acf.size, model.sign_acf.size) - 1
    diff = model.sign_acf[1 : n_lag + 1] - data.sign_acf[1 : n_lag + 1]
    se = np.sqrt(model.sign_acf_se[1 : n_lag + 1] ** 2 + data.sign_acf_se[1 : n_lag + 1] ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = diff / se
    p1 = _z_p(float(z[0]))
    half = z_crit * float(se[0])
    lag1 = (float(data.sign_acf[1]), float(model.sign_acf[1]))
    criterion = f"reproduced if p >= {alpha:g} (Bartlett SEs); CI of model - data"
    add(
        "sign_acf_lag1",
        "trade-sign ACF at lag 1",
        "-",
        lag1,
        "z (model - data)",
        float(z[0]),
        p1,
        p1 >= alpha,
        criterion,
        (float(diff[0]) - half, float(diff[0]) + half),
    )
    finite = np.isfinite(z)
    zmax = float(np.max(np.abs(z[finite]))) if finite.any() else math.nan
    p_all = min(1.0, n_lag * _z_p(zmax)) if finite.any() else math.nan
    means = (
        float(np.mean(data.sign_acf[1 : n_lag + 1])),
        float(np.mean(model.sign_acf[1 : n_lag + 1])),
    )
    criterion = f"reproduced if the Bonferroni p over {n_lag} lags >= {alpha:g}"
    add(
        f"sign_acf_lags1_{n_lag}",
        f"trade-sign ACF at lags 1-{n_lag} (mean)",
        "-",
        means,
        "max |z| over lags",
        zmax,
        p_all,
        p_all >= alpha,
        criterion,
    )
    return pd.DataFrame(rows, columns=COLUMNS)


def _vol(facts: StylizedFacts, h: float) -> tuple[float, float]:
    if h not in facts.volatility.index:
        return math.nan, math.nan
    row = facts.volatility.loc[h]
    return float(row["sigma"]), float(row["se"])


def table_metrics(table: pd.DataFrame, prefix: str = "calibration") -> dict[str, float]:
    """The table's numbers as namespaced metrics ``<prefix>/<fact>/<column>``; the verdict as
    ``<prefix>/<fact>/reproduced`` (1 or 0). NaN entries are left out."""
    out: dict[str, float] = {}
    for _, row in table.iterrows():
        for col in ("data", "model", "value", "p_value", "ci_low", "ci_high"):
            v = float(row[col])
            if np.isfinite(v):
                out[f"{prefix}/{row['fact']}/{col}"] = v
        out[f"{prefix}/{row['fact']}/reproduced"] = float(row["verdict"] == REPRODUCED)
    return out


# --------------------------------------------------------------------------- figures


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _long(data: StylizedFacts, model: StylizedFacts, attr: str, name: str) -> pd.DataFrame:
    return pd.concat(
        [pd.DataFrame({name: getattr(f, attr), "market": f.label}) for f in (data, model)],
        ignore_index=True,
    )


def _discrete_hist(
    frame: pd.DataFrame, column: str, ax: plt.Axes, upper_quantile: float = 0.99
) -> float:
    """Overlaid probability histograms of an integer-valued column, one step line per market,
    cut at the larger of the markets' ``upper_quantile`` (the rest is counted in the title)."""
    hi = max(float(np.quantile(g[column], upper_quantile)) for _, g in frame.groupby("market"))
    hi = max(hi, 1.0)
    shown = frame[frame[column] <= hi]
    width = max(1.0, np.ceil(hi / 60.0))
    lo = float(np.floor(shown[column].min()))
    bins = np.arange(lo - 0.5, hi + width, width)
    sns.histplot(
        shown,
        x=column,
        hue="market",
        bins=bins,
        stat="probability",
        common_norm=False,
        element="step",
        fill=True,
        alpha=0.25,
        ax=ax,
    )
    sns.move_legend(ax, "upper right", frameon=False, title=None)
    return float((frame[column] > hi).mean())


def figure_spread(data: StylizedFacts, model: StylizedFacts, directory: Path) -> Path:
    """Overlaid spread histograms (ticks), probability per bin in calendar time."""
    frame = _long(data, model, "spread", "spread")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    cut = _discrete_hist(frame, "spread", ax)
    ax.set_xlabel("spread (ticks)")
    ax.set_ylabel(f"fraction of {data.sample_dt:g} s samples")
    ax.set_title(
        "Spread distribution"
        + (f" (cut at the 99th percentile; {cut:.1%} of samples beyond)" if cut > 0 else "")
    )
    return _save(fig, directory / "spread_distribution.png")


def figure_queues(data: StylizedFacts, model: StylizedFacts, directory: Path) -> Path:
    """Overlaid best-queue size histograms (lots), both sides pooled."""
    frame = _long(data, model, "best_queue", "queue")
    frame["queue"] = np.ceil(frame["queue"] - 1e-9)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    cut = _discrete_hist(frame, "queue", ax)
    ax.set_xlabel(
        f"size at the best bid and best ask (lots of {data.lot:g} base units, rounded up)"
    )
    ax.set_ylabel(f"fraction of {data.sample_dt:g} s samples")
    ax.set_title(
        "Best-queue sizes"
        + (f" (cut at the 99th percentile; {cut:.1%} of samples beyond)" if cut > 0 else "")
    )
    return _save(fig, directory / "best_queue_distribution.png")


def figure_rates(
    table: pd.DataFrame, data: StylizedFacts, model: StylizedFacts, directory: Path
) -> Path:
    """Event rates by kind (per second), data and model side by side."""
    frame = pd.DataFrame(
        [
            {"kind": KIND_LABELS[k], "market": f.label, "rate": f.rates[k]}
            for k in KINDS
            for f in (data, model)
        ]
    )
    fig, ax = plt.subplots(figsize=(9, 4.5))
    sns.barplot(frame, x="kind", y="rate", hue="market", ax=ax)
    for kind in KINDS:
        row = table[table["fact"] == f"rate_{kind}"].iloc[0]
        top = max(data.rates[kind], model.rates[kind])
        ax.annotate(
            f"ratio {row['value']:.2f}",
            (list(KINDS).index(kind), top),
            ha="center",
            va="bottom",
            fontsize="small",
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("")
    ax.set_ylabel("events per second")
    window = f", within {data.levels} levels" if data.levels else ""
    ax.set_title(f"Event rates by kind{window} (ratio = model / data)")
    ax.margins(y=0.15)
    sns.move_legend(ax, "upper right", frameon=False, title=None)
    return _save(fig, directory / "event_rates.png")


def figure_signature(data: StylizedFacts, model: StylizedFacts, directory: Path) -> Path:
    """Volatility signature: realized volatility (ticks / sqrt(s)) against the horizon, with
    ``1 - ALPHA`` intervals from the Newey-West SEs."""
    z = stats.norm.ppf(1 - ALPHA / 2)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = sns.color_palette("colorblind", 2)
    for colour, f in zip(colours, (data, model), strict=True):
        v = f.volatility.dropna()
        ax.errorbar(
            v.index,
            v["sigma"],
            yerr=z * v["se"],
            marker="o",
            capsize=4,
            color=colour,
            label=f.label,
        )
    ax.set_xscale("log")
    ax.set_xticks(list(data.volatility.index))
    ax.set_xticklabels([f"{h:g}" for h in data.volatility.index])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("horizon h (s, log scale)")
    ax.set_ylabel("sigma(h) (ticks / sqrt(s))")
    ax.set_title(f"Volatility signature: sqrt(mean(r_h^2) / h), {1 - ALPHA:.0%} intervals")
    ax.legend(frameon=False)
    return _save(fig, directory / "volatility_signature.png")


def figure_sign_acf(data: StylizedFacts, model: StylizedFacts, directory: Path) -> Path:
    """Trade-sign ACF against the lag (market orders), with Bartlett ``1 - ALPHA`` bands."""
    z = stats.norm.ppf(1 - ALPHA / 2)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = sns.color_palette("colorblind", 2)
    for k, (colour, f) in enumerate(zip(colours, (data, model), strict=True)):
        lags = np.arange(1, f.sign_acf.size)
        shift = (k - 0.5) * 0.15
        ax.errorbar(
            lags + shift,
            f.sign_acf[1:],
            yerr=z * f.sign_acf_se[1:],
            fmt="o",
            capsize=2,
            color=colour,
            label=f"{f.label} ({f.n_market_orders} market orders)",
        )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("lag (market orders)")
    ax.set_ylabel("autocorrelation of trade signs")
    ax.set_xscale("log")
    ax.set_title(f"Trade-sign autocorrelation, {1 - ALPHA:.0%} Bartlett intervals")
    ax.legend(frameon=False)
    return _save(fig, directory / "trade_sign_acf.png")


def figure_impact(data: StylizedFacts, model: StylizedFacts, directory: Path) -> Path:
    """Price impact of market orders (mean signed mid move, ticks) against the horizon, with the
    block-bootstrap ``CONFIDENCE`` intervals."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = sns.color_palette("colorblind", 2)
    for k, (colour, f) in enumerate(zip(colours, (data, model), strict=True)):
        hs = np.asarray(f.impact_horizons)
        keys = [f"impact_{h:g}s" for h in hs]
        mean = np.array([f.estimates.get(key, np.nan) for key in keys])
        ci = np.array([_interval(f.draws.get(key, np.array([np.nan])), CONFIDENCE) for key in keys])
        err = np.abs(np.vstack([mean - ci[:, 0], ci[:, 1] - mean]))
        ax.errorbar(
            hs * (1 + 0.04 * (k - 0.5)),
            mean,
            yerr=np.nan_to_num(err),
            marker="o",
            capsize=4,
            color=colour,
            label=f"{f.label} ({f.n_market_orders} orders)",
        )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xticks(list(data.impact_horizons))
    ax.set_xticklabels([f"{h:g}" for h in data.impact_horizons])
    ax.set_xlabel("horizon h (s, log scale)")
    ax.set_ylabel("mean of sign x (mid(t+h) - mid(t-)) (ticks)")
    ax.set_title(f"Price impact of market orders, {CONFIDENCE:.0%} block-bootstrap intervals")
    ax.legend(frameon=False)
    return _save(fig, directory / "price_impact.png")


def figure_interarrival(data: StylizedFacts, model: StylizedFacts, directory: Path) -> Path:
    """Empirical survival functions of the market-order inter-arrival times (log-log)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = sns.color_palette("colorblind", 2)
    for colour, f in zip(colours, (data, model), strict=True):
        x = np.sort(f.interarrival[f.interarrival > 0])
        if x.size:
            ax.step(
                x,
                1.0 - np.arange(x.size) / x.size,
                where="post",
                color=colour,
                label=f"{f.label} (mean {np.mean(f.interarrival):.3g} s)",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time between consecutive market orders (s)")
    ax.set_ylabel("P(inter-arrival > x)")
    ax.set_title("Market-order inter-arrival times (an exponential law is a Poisson flow)")
    ax.legend(frameon=False)
    return _save(fig, directory / "interarrival_times.png")


def figures(
    data: StylizedFacts, model: StylizedFacts, table: pd.DataFrame, directory: str | Path
) -> list[Path]:
    """Every figure of the report, written as PNGs into ``directory``."""
    d = Path(directory)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(seaborn|matplotlib|pandas)(\..*)?")
        return [
            figure_spread(data, model, d),
            figure_queues(data, model, d),
            figure_rates(table, data, model, d),
            figure_signature(data, model, d),
            figure_sign_acf(data, model, d),
            figure_impact(data, model, d),
            figure_interarrival(data, model, d),
        ]


# --------------------------------------------------------------------------- report text


def explain(
    table: pd.DataFrame, data: StylizedFacts, model: StylizedFacts, flow: str = "cst"
) -> list[str]:
    """Plain sentences on each fact the model does not reproduce, with the numbers and the
    mechanism behind the gap where the model explains it; then the facts not measured.

    :param flow: the simulated market's order flow (``MarketParams.model``). The mechanisms
        named are those of the Cont-Stoikov-Talreja and queue-reactive flows; for another flow
        (``realistic``) only the numbers are given.
    """
    out = []
    known = flow in ("cst", "queue_reactive")
    bad = table[table["verdict"] == NOT_REPRODUCED].set_index("fact")
    if "spread" in bad.index:
        md, mm = float(np.median(data.spread)), float(np.median(model.spread))
        one = float(np.mean(model.spread <= 1))
        text = (
            f"Spread: the data's median spread is {md:g} ticks (mean {np.mean(data.spread):.3g}), "
            f"the model's {mm:g} (mean {np.mean(model.spread):.3g}; one tick {one:.0%} of the "
            "time)."
        )
        if not known:
            pass
        elif np.mean(data.spread) > np.mean(model.spread):
            text += (
                " In the Cont-Stoikov-Talreja market limit orders arrive at distances 1..L from "
                "the OPPOSITE best, so a gap is refilled at the rate of the nearest levels: the "
                "model's spread stays near one tick and cannot hold a wide spread like the "
                "data's."
            )
        else:
            text += (
                " The model's best queues empty more often than the data's (a best queue that "
                "empties opens a gap until a limit order refills it), so its spread is wider."
            )
        out.append(text)
    if "best_queue" in bad.index:
        r = bad.loc["best_queue"]
        out.append(
            f"Best-queue sizes: mean {r['data']:.3g} lots in the data against {r['model']:.3g} in "
            f"the model (KS D = {r['value']:.2f})"
            + ("; the fitted rates give the stationary queue lambda / theta of a birth-death "
               "queue, not the data's size distribution." if known else ".")
        )  # fmt: skip
    for kind in KINDS:
        key = f"rate_{kind}"
        if key in bad.index:
            r = bad.loc[key]
            out.append(
                f"Rate of {KIND_LABELS[kind]}: {r['model']:.4g}/s in the model against "
                f"{r['data']:.4g}/s in the data (ratio {r['value']:.2f}, "
                f"{1 - ALPHA:.0%} CI {r['ci_low']:.2f}-{r['ci_high']:.2f})."
                + (" " + RATE_MECHANISM[kind] if known else "")
            )
    vols = [f for f in bad.index if f.startswith("volatility_")]
    if vols:
        parts = [
            f"{bad.loc[f, 'description'].split(' at ')[-1]}: ratio {bad.loc[f, 'value']:.2f}"
            for f in vols
        ]

        def shape(f: StylizedFacts) -> str:
            v = f.volatility["sigma"].dropna()
            return f"{v.iloc[-1] / v.iloc[0]:.2f}" if len(v) > 1 and v.iloc[0] > 0 else "-"

        h = data.volatility.index
        mechanism = (
            " The model's mid moves only when a best queue empties (Cont, Stoikov & Talreja "
            "2010), so its volatility follows from the fitted order flow and queue sizes and is "
            "not fitted to the data's."
            if known
            else ""
        )
        out.append(
            "Mid volatility (model / data) is off at " + "; ".join(parts) + "." + mechanism
            + f" Signature sigma({h[-1]:g} s) / sigma({h[0]:g} s): data {shape(data)}, "
            f"model {shape(model)} (below 1: mean reversion of the mid)."
        )
    acf_rows = [f for f in bad.index if f.startswith("sign_acf")]
    if acf_rows:
        lag = min(data.sign_acf.size - 1, 20)
        out.append(
            f"Trade-sign autocorrelation: {data.sign_acf[1]:.2f} at lag 1 and "
            f"{data.sign_acf[lag]:.2f} at lag {lag} in the data, {model.sign_acf[1]:.2f} and "
            f"{model.sign_acf[lag]:.2f} in the model."
            + (" The model draws the side of each market order independently, so its trade "
               "signs have no memory; the data's long memory (order splitting, Lillo & Farmer "
               "2004) is not in the model." if known else "")
        )  # fmt: skip
    missing = table[table["verdict"] == NOT_MEASURED]
    if len(missing):
        out.append(
            "Not measured (too little data in one of the markets): "
            + ", ".join(missing["description"])
            + "."
        )
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def overview(data: StylizedFacts, model: StylizedFacts) -> list[str]:
    """What was compared: each market's open time and event counts, the sampling and levels."""
    return [
        f"{f.label}: {f.duration:.0f} s {'simulated' if f is model else 'open'}, "
        + ", ".join(f"{f.counts[k]} {KIND_LABELS[k]}" for k in KINDS)
        for f in (data, model)
    ] + [
        f"Spread and best queues sampled every {data.sample_dt:g} s; the two-sample tests are at "
        f"level {ALPHA:g} with {1 - ALPHA:.0%} intervals, each row stating its criterion."
    ]


def fact_rule(data: StylizedFacts, confidence: float = CONFIDENCE) -> list[str]:
    """The verdict rule and the intervals of the fact table, as sentences."""
    return [
        f"Verdict per fact: the model/data ratio within [{RATIO_BAND[0]:g}, {RATIO_BAND[1]:g}] "
        f"(point estimates); trade-sign autocorrelations within {SIGN_ACF_TOLERANCE:g} "
        "absolute; TV and KS distances reported without a target.",
        f"{confidence:.0%} intervals: volatility from Newey-West standard errors, trade-sign ACF "
        f"from Bartlett's; every other fact from a block bootstrap over {data.block_s:g} s time "
        f"blocks ({len(next(iter(data.draws.values()), []))} replicates per market); the "
        "interval of a ratio or difference combines the two markets' independent replicates.",
        "Units: spread in ticks, queues in calibration lots "
        f"({data.lot:g} base units), times in seconds, price impact in ticks (mean of the "
        "aggressor's sign times the mid move from just before the order to h seconds after).",
    ]


def _fact_lines(facts: pd.DataFrame) -> list[str]:
    """One sentence per fact not reproduced, with the gap."""
    bad = facts[facts["verdict"] == NOT_REPRODUCED]
    return [
        f"{r['description']}: data {r['data']:.4g}, model {r['model']:.4g} {r['unit']} ({r['gap']})"
        for _, r in bad.iterrows()
    ]


def markdown_summary(
    table: pd.DataFrame,
    data: StylizedFacts,
    model: StylizedFacts,
    title: str,
    figure_paths: Sequence[Path],
    notes: Sequence[str] = (),
    facts: pd.DataFrame | None = None,
    extra: Mapping[str, pd.DataFrame | Sequence[str]] | None = None,
    flow: str = "cst",
) -> str:
    """The report's Markdown page: what was compared, the fact table with its verdicts, the
    extra sections (strategy fidelity), what is not reproduced, the two-sample tests."""
    bad = table[table["verdict"] == NOT_REPRODUCED]
    good = table[table["verdict"] == REPRODUCED]
    lines = [f"# {title}", ""]
    lines += [f"- {n}" for n in (*notes, *overview(data, model))]
    if facts is not None:
        n_bad = int((facts["verdict"] == NOT_REPRODUCED).sum())
        n_rule = int(facts["verdict"].isin([REPRODUCED, NOT_REPRODUCED]).sum())
        lines += ["", f"## Facts: data beside model ({n_bad} of {n_rule} not reproduced)", ""]
        lines += [f"- {s}" for s in (*fact_rule(data), *_fact_lines(facts))]
        lines += ["", facts.map(_fmt).to_markdown(index=False)]
    for name, body in (extra or {}).items():
        lines += ["", f"## {name}", ""]
        if isinstance(body, pd.DataFrame):
            lines.append(body.map(_fmt).to_markdown(index=False))
        else:
            lines += [f"- {b}" for b in body]
    lines += [
        "",
        f"## What the model does not reproduce ({len(bad)} of {len(table)} two-sample tests)",
        "",
    ]
    explained = explain(table, data, model, flow)
    lines += [f"- {s}" for s in explained] or ["- nothing: every fact passes."]
    lines += [
        "",
        f"## Reproduced ({len(good)} of {len(table)})",
        "",
        ", ".join(good["description"]) if len(good) else "none",
        "",
        "## Two-sample tests",
        "",
        table.map(_fmt).to_markdown(index=False),
        "",
        "## Figures",
        "",
        *(f"![{p.stem}]({p.name})" for p in figure_paths),
        "",
    ]
    return "\n".join(lines)


def write_report(
    data: StylizedFacts,
    model: StylizedFacts,
    directory: str | Path,
    *,
    title: str = "Calibration validation",
    notes: Sequence[str] = (),
    table: pd.DataFrame | None = None,
    facts: pd.DataFrame | None = None,
    extra: Mapping[str, pd.DataFrame | Sequence[str]] | None = None,
    extra_figures: Sequence[Path] = (),
    flow: str = "cst",
) -> dict[str, Path]:
    """Write the validation report into ``directory`` and return its files by role.

    ``facts.csv`` (the :func:`fact_table`, computed when not given), ``table.csv`` and
    ``table.html`` (the :func:`compare` two-sample tests), the PNG figures of :func:`figures`
    and ``extra_figures``, ``summary.md`` (:func:`markdown_summary`, figures beside it) and
    ``index.html`` (the same as one self-contained page). ``notes``: lines on the data and the
    model shown at the top; ``extra``: further sections by title (a table, also written as
    ``<slug>.csv``, or lines), shown after the facts.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    table = compare(data, model) if table is None else table
    facts = fact_table(data, model) if facts is None else facts
    facts.to_csv(d / "facts.csv", index=False)
    extra = dict(extra or {})
    for name, body in extra.items():
        if isinstance(body, pd.DataFrame):
            slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
            body.to_csv(d / f"{slug}.csv", index=False)
    paths: dict[str, Path] = {"table_csv": d / "table.csv", "table_html": d / "table.html"}
    table.to_csv(paths["table_csv"], index=False)
    paths["table_html"].write_text(
        table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0), encoding="utf-8"
    )
    paths["facts_csv"] = d / "facts.csv"
    figs = [*figures(data, model, table, d), *extra_figures]
    paths.update({p.stem: p for p in figs})
    md = markdown_summary(table, data, model, title, figs, notes, facts, extra, flow)
    paths["summary_md"] = d / "summary.md"
    paths["summary_md"].write_text(md, encoding="utf-8")
    n_bad = int((table["verdict"] == NOT_REPRODUCED).sum())
    n_facts_bad = int((facts["verdict"] == NOT_REPRODUCED).sum())
    sections: dict[str, Sequence[Path | pd.DataFrame | str]] = {
        "Data and model": [*notes, *overview(data, model)],
        f"Facts: data beside model ({n_facts_bad} not reproduced)": [
            *fact_rule(data),
            *_fact_lines(facts),
            facts.set_index("fact"),
        ],
    }
    for name, body in extra.items():
        sections[name] = [body] if isinstance(body, pd.DataFrame) else list(body)
    sections |= {
        f"What the model does not reproduce ({n_bad} of {len(table)} two-sample tests)": explain(
            table, data, model, flow
        )
        or ["Nothing: every fact passes its criterion."],
        "Two-sample tests": [table.set_index("fact")],
        "Figures": figs,
    }
    paths["index_html"] = summary_page(d, sections, title=title)
    return paths

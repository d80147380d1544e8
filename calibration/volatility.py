"""Volatility of the mid: realized variance and Markov-switching variance regimes (statsmodels).

Mid in ticks, time in seconds. The mid is sampled at the start of intervals of length ``dt``
(the book in force then; intervals that touch a halt or a one-sided book are dropped) and
``r_j`` are its changes over the intervals.

- Realized variance (Andersen, Bollerslev, Diebold & Labys 2003, eq. (4)): ``sigma^2 = mean(r^2) /
  dt`` (ticks^2 / s), as the intercept of an OLS of ``r^2 / dt`` on a constant with
  Newey-West (HAC) standard errors (serially correlated squared returns);
  ``sigma`` is ``mid_volatility`` and ``SE(sigma) = SE(sigma^2) / (2 sigma)`` (delta method).
- Regimes (Hamilton 1989; Kim & Nelson 1999, ch. 4): ``MarkovRegression(r, k_regimes,
  trend="c", switching_trend=False, switching_variance=True)`` on the returns over
  ``regime_dt`` seconds; regime variances (ticks^2 / s, ``sigma2_s / regime_dt``) and the
  transition matrix ``P[i, j] = P(s_{t+1} = j | s_t = i)`` with SEs, regimes sorted by variance.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from calibration.sample import FlowSample


def mid_returns(sample: FlowSample, dt: float) -> np.ndarray:
    """Changes of the mid (ticks) over consecutive intervals of ``dt`` seconds."""
    n = int(np.floor((sample.row_t[-1] - sample.row_t[0]) / dt)) + 1
    grid = sample.row_t[0] + dt * np.arange(n)
    rows = sample.at(grid)
    mid = sample.mid(rows)
    r = np.diff(mid)
    # an interval is valid if the market was open throughout
    bad = np.zeros(r.size, dtype=bool)
    for h0, h1 in sample.halts:
        bad |= (grid[1:] > h0) & (grid[:-1] < h1)
    out: np.ndarray = r[np.isfinite(r) & ~bad]
    return out


@dataclass
class RealizedVolatility:
    sigma: float  # ticks / sqrt(s)
    se: float
    dt: float
    n: int


def realized_volatility(sample: FlowSample, dt: float = 5.0) -> RealizedVolatility:
    r = mid_returns(sample, dt)
    if r.size < 5:
        raise ValueError(f"only {r.size} mid returns over {dt} s intervals: too little data")
    y = r**2 / dt
    lags = int(np.ceil(4 * (r.size / 100.0) ** (2.0 / 9.0)))  # Newey & West 1994 rule
    res = sm.OLS(y, np.ones_like(y)).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    var, var_se = float(res.params[0]), float(res.bse[0])
    sigma = float(np.sqrt(var))
    return RealizedVolatility(sigma, var_se / (2.0 * sigma), dt, int(r.size))


@dataclass
class VolatilityRegimes:
    """Markov-switching variance regimes, sorted by variance (regime 0 the calmest)."""

    variance: list[float]  # ticks^2 / s
    variance_se: list[float]
    transition: list[list[float]]  # [i][j] = P(next = j | now = i)
    transition_se: list[list[float]]
    expected_duration: list[float]  # s
    dt: float
    n: int
    converged: bool


REGIME_DTS: tuple[float, ...] = (60.0, 120.0, 300.0, 600.0, 900.0)
"""Candidate return intervals (s) of the regime model when none is given."""


def regime_interval(sample: FlowSample, max_zero_share: float = 0.25, min_n: int = 100) -> float:
    """The shortest of :data:`REGIME_DTS` whose returns are mostly non-zero.

    A tick-constrained mid (one-tick spread) does not move over most short intervals; the zero
    returns then form a zero-variance "regime" on which the Gaussian likelihood is unbounded.
    Returns the first interval with at most ``max_zero_share`` zero returns and at least
    ``min_n`` of them, else the longest interval with ``min_n`` returns (else the first).
    """
    usable = []
    for dt in REGIME_DTS:
        r = mid_returns(sample, dt)
        if r.size < min_n:
            break
        usable.append(dt)
        if (r == 0).mean() <= max_zero_share:
            return dt
    return usable[-1] if usable else REGIME_DTS[0]


def volatility_regimes(
    sample: FlowSample, dt: float | None = None, k_regimes: int = 2
) -> VolatilityRegimes:
    """Fit the regimes of the module docstring on ``dt``-second mid returns.

    :param dt: return interval (s); ``None``: :func:`regime_interval`.
    """
    if dt is None:
        dt = regime_interval(sample)
    r = mid_returns(sample, dt)
    if r.size < 20 * k_regimes:
        raise ValueError(f"only {r.size} returns over {dt} s: too few for {k_regimes} regimes")
    with warnings.catch_warnings():
        # statsmodels' start-parameter regressions divide by zero residual dof on some paths
        warnings.simplefilter("ignore")
        model = MarkovRegression(
            r, k_regimes=k_regimes, trend="c", switching_trend=False, switching_variance=True
        )
        res = model.fit(disp=False)
        names = list(model.param_names)
        params = dict(zip(names, np.asarray(res.params), strict=True))
        bse = dict(zip(names, np.asarray(res.bse), strict=True))
    s2 = np.array([params[f"sigma2[{i}]"] for i in range(k_regimes)])
    s2_se = np.array([bse[f"sigma2[{i}]"] for i in range(k_regimes)])
    # statsmodels names p[i->j] for j < k-1; the last column is 1 - the rest
    P = np.zeros((k_regimes, k_regimes))
    P_se = np.zeros((k_regimes, k_regimes))
    for i in range(k_regimes):
        for j in range(k_regimes - 1):
            P[i, j] = params[f"p[{i}->{j}]"]
            P_se[i, j] = bse[f"p[{i}->{j}]"]
        P[i, -1] = 1.0 - P[i, :-1].sum()
        P_se[i, -1] = np.sqrt((P_se[i, :-1] ** 2).sum())  # exact for two regimes
    order = np.argsort(s2)
    s2, s2_se = s2[order], s2_se[order]
    P, P_se = P[np.ix_(order, order)], P_se[np.ix_(order, order)]
    stay = np.clip(np.diag(P), 0.0, 1.0 - 1e-12)
    return VolatilityRegimes(
        variance=(s2 / dt).tolist(),
        variance_se=(s2_se / dt).tolist(),
        transition=P.tolist(),
        transition_se=P_se.tolist(),
        expected_duration=(dt / (1.0 - stay)).tolist(),
        dt=dt,
        n=int(r.size),
        converged=bool(res.mle_retvals.get("converged", True)) if res.mle_retvals else True,
    )

"""Price impact of market orders: the propagator in event time and the response in clock time.

Units: prices in ticks, time in seconds, market orders (MOs) counted in event time ``n``. Inputs
come from :func:`calibration.sample.prepare` (a MO is all executions with one time stamp and
aggressor; ``eps_n`` its aggressor sign, +1 buy; ``m_n`` the mid just BEFORE it).

- Propagator (Bouchaud, Gefen, Potters & Wyart 2004, "Fluctuations and response in financial
  markets", Quant. Finance 4(2), eq. (3); Eisler, Bouchaud & Kockelkoren 2012, "The price impact
  of order book events", Quant. Finance 12(9), section 3): ``m_n = sum_{n' < n} G(n - n')
  eps_{n'} + noise``, so that ``r_n = m_{n+1} - m_n = sum_{k >= 0} g_k eps_{n-k}`` with
  ``g_0 = G(1)`` and ``g_k = G(k+1) - G(k)``. The increments ``g_k`` are estimated by OLS of
  ``r_n`` on lagged signs summed over lag bins (``g`` constant within a bin: lags 0, 1, 2, 3-4,
  5-8, ..., up to ``max_lag``) with Newey-West (HAC) standard errors (statsmodels);
  ``G(l) = sum_{k < l} g_k`` with its covariance by the linear map.
- Power-law kernel: ``G(l) = Gamma_0 l^(-beta)`` (Bouchaud et al. 2004, eq. (9) with ``l_0 = 0``),
  fitted to the binned ``G`` by minimum distance, weighted by the inverse HAC covariance; SEs
  ``(J' V^-1 J)^-1``, and ``chi2 = min distance`` tests the power-law shape (``df = bins - 2``).
- Response (Bouchaud et al. 2004, eq. (2)): ``R(tau) = E[eps_n (m(t_n + tau) - m_n)]``, the mean
  signed mid move ``tau`` seconds after a MO, i.e. the adverse move a passive fill suffers; mean
  with Newey-West SE (overlapping windows, bandwidth the 99th percentile of MOs in a ``tau``
  window). ``half_spread``: the mean half spread before a MO, so that a passive fill's realized
  spread at ``tau`` is ``half_spread - R(tau)``.
- ``noise_sd``: the long-run SD of the regression's residual (ticks per MO; Bartlett weights over
  ``NOISE_LAGS`` lags, Newey & West 1987), the part of the mid's moves between MOs that the signs
  do not explain, net of its own reversal: iid noise of this SD added at each MO gives a
  propagator-driven mid the data's long-horizon variance on top of the impact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import optimize

from calibration.sample import FlowSample
from data.schema import TRADE

RESPONSE_HORIZONS: tuple[float, ...] = (1.0, 10.0, 60.0)
"""Horizons (s) of the response ``R(tau)``."""

NOISE_LAGS = 50
"""Bartlett bandwidth (MOs) of the residual's long-run SD ``noise_sd``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class ImpactParams(_Strict):
    """Propagator of market-order signs (event time) and the clock-time response.

    Prices in ticks of the instrument; ``l`` counts market orders.
    """

    lag_bins: list[list[int]] = Field(
        description="[b] = [first, last] lags k (MOs) sharing the increment g_b."
    )
    increments: list[float] = Field(
        description="g_b: mid change (ticks) between consecutive MOs per unit sign k MOs ago."
    )
    propagator_lags: list[int] = Field(description="l at which G(l) is reported (MOs).")
    propagator: list[float] = Field(
        description="G(l) = sum_{k<l} g_k: mid move (ticks) l MOs after one MO, others fixed."
    )
    gamma0: float = Field(description="Gamma_0 of G(l) = Gamma_0 l^-beta (ticks).")
    beta: float = Field(description="beta of G(l) = Gamma_0 l^-beta.")
    response_horizons: list[float] = Field(description="tau (s) of the response.")
    response: list[float] = Field(
        description="R(tau) = E[eps (mid(t + tau) - mid(t-))] (ticks) after a MO."
    )
    half_spread: float = Field(description="Mean half spread (ticks) just before a MO.")
    noise_sd: float = Field(
        description="Long-run SD (ticks per MO) of the regression residual eta_n: mid change "
        "between consecutive MOs not explained by the signs."
    )

    def kernel(self, lag: np.ndarray) -> np.ndarray:
        """The power-law ``G(l)`` (ticks) at lags ``l >= 1``."""
        out: np.ndarray = self.gamma0 * np.asarray(lag, dtype=np.float64) ** (-self.beta)
        return out


@dataclass
class ImpactFit:
    """:class:`ImpactParams` with ``std_errors`` (same keys), the minimum-distance ``chi2`` and
    its degrees of freedom, the number of MOs and the HAC bandwidth."""

    params: ImpactParams
    std_errors: dict[str, Any]
    chi2: float
    chi2_df: int
    n_market_orders: int
    hac_lags: int


def lag_bins(max_lag: int) -> list[tuple[int, int]]:
    """Lags 0, 1, 2, 3-4, 5-8, 9-16, ... up to ``max_lag`` (last bin cut there)."""
    bins = [(0, 0), (1, 1), (2, 2)]
    lo = 3
    while lo <= max_lag:
        hi = min(2 * lo - 2, max_lag)
        bins.append((lo, hi))
        lo = hi + 1
    return [b for b in bins if b[0] <= max_lag]


def market_orders(sample: FlowSample) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Times (s), signs (+1 buy), mid just before (ticks) and spread just before (ticks) of the
    market orders of ``sample`` with a two-sided book."""
    mo = np.flatnonzero(sample.kind == TRADE)
    rows = sample.prev[mo]
    mid = sample.mid(rows)
    spread = sample.ask_px[rows, 0] - sample.bid_px[rows, 0]
    ok = np.isfinite(mid)
    return sample.t[mo][ok], sample.aggressor[mo][ok].astype(np.float64), mid[ok], spread[ok]


def _hac_mean(x: np.ndarray, lags: int) -> tuple[float, float]:
    import statsmodels.api as sm

    res = sm.OLS(x, np.ones((x.size, 1))).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    return float(res.params[0]), float(res.bse[0])


def response(
    sample: FlowSample, horizons: tuple[float, ...] = RESPONSE_HORIZONS
) -> tuple[list[float], list[float], list[int]]:
    """``R(tau)`` (ticks), its Newey-West SE, and the number of MOs used, per horizon."""
    t, eps, mid0, _ = market_orders(sample)
    out, se, used = [], [], []
    end = sample.row_t[-1]
    for tau in horizons:
        ok = t + tau <= end
        mid1 = sample.mid(sample.at(t[ok] + tau))
        x = eps[ok] * (mid1 - mid0[ok])
        x = x[np.isfinite(x)]
        counts = np.searchsorted(t, t[ok] + tau, side="right") - np.arange(ok.sum()) - 1
        lags = int(min(max(1, np.quantile(counts, 0.99) if counts.size else 1), x.size // 4))
        m, s = _hac_mean(x, lags) if x.size > 10 else (float("nan"), float("nan"))
        out.append(m)
        se.append(s)
        used.append(int(x.size))
    return out, se, used


def response_of_path(
    t: np.ndarray,
    eps: np.ndarray,
    mid_before: np.ndarray,
    path_t: np.ndarray,
    path_mid: np.ndarray,
    horizons: tuple[float, ...] = RESPONSE_HORIZONS,
) -> list[float]:
    """``R(tau)`` for MOs at ``t`` with signs ``eps`` and a mid path ``(path_t, path_mid)``
    (piecewise constant, ``path_mid[k]`` in force from ``path_t[k]``): for simulated paths."""
    out = []
    for tau in horizons:
        ok = t + tau <= path_t[-1]
        idx = np.searchsorted(path_t, t[ok] + tau, side="right") - 1
        out.append(float(np.mean(eps[ok] * (path_mid[idx] - mid_before[ok]))))
    return out


def fit_propagator(
    sample: FlowSample,
    *,
    max_lag: int = 128,
    hac_lags: int | None = None,
    horizons: tuple[float, ...] = RESPONSE_HORIZONS,
) -> ImpactFit:
    """Propagator, power-law kernel and response of ``sample`` (module docstring).

    :param max_lag: longest lag (MOs) of the regression.
    :param hac_lags: Newey-West bandwidth of the regression (default ``ceil(4 (n/100)^(2/9))``,
        Newey & West 1994).
    """
    _, eps, mid, spread = market_orders(sample)
    return fit_propagator_arrays(
        eps,
        mid,
        max_lag=max_lag,
        hac_lags=hac_lags,
        spread=spread,
        sample=sample,
        horizons=horizons,
    )


def fit_propagator_arrays(
    eps: np.ndarray,
    mid: np.ndarray,
    *,
    max_lag: int = 128,
    hac_lags: int | None = None,
    noise_lags: int = NOISE_LAGS,
    spread: np.ndarray | None = None,
    sample: FlowSample | None = None,
    horizons: tuple[float, ...] = RESPONSE_HORIZONS,
) -> ImpactFit:
    """:func:`fit_propagator` on arrays: signs ``eps`` and the mid just before each MO (ticks);
    the response is left out (NaN) without a ``sample``."""
    import statsmodels.api as sm

    n = eps.size
    if n < 4 * max_lag:
        raise ValueError(f"need at least 4 max_lag = {4 * max_lag} market orders, got {n}")
    r = np.diff(mid)  # r_n = m_{n+1} - m_n, n = 0..N-2
    bins = lag_bins(max_lag)
    csum = np.concatenate([[0.0], np.cumsum(eps)])
    rows = np.arange(max_lag, n - 1)  # n with every lag available
    X = np.empty((rows.size, len(bins)))
    for b, (lo, hi) in enumerate(bins):
        # sum_{k=lo..hi} eps_{n-k} = csum[n-lo+1] - csum[n-hi]
        X[:, b] = csum[rows - lo + 1] - csum[rows - hi]
    y = r[rows]
    ok = np.isfinite(y)
    L = hac_lags if hac_lags is not None else int(np.ceil(4 * (ok.sum() / 100) ** (2 / 9)))
    res = sm.OLS(y[ok], X[ok]).fit(cov_type="HAC", cov_kwds={"maxlags": L})
    g, V = np.asarray(res.params), np.asarray(res.cov_params())
    # G(l) at l = last lag of each bin + 1: G = W g, W[b', b] = lags of bin b below l
    ells = np.array([hi + 1 for _, hi in bins])
    W = np.array([[max(0, min(hi, ell - 1) - lo + 1) for lo, hi in bins] for ell in ells], float)
    G, VG = W @ g, W @ V @ W.T
    # noise: long-run SD of the residual (Bartlett weights over noise_lags lags); its SE from the
    # kernel estimator's asymptotic variance, Var / sigma_LR^4 = 4 lags / (3 n) for Bartlett
    # weights (Andrews 1991, Econometrica 59(3), Proposition 1(b)), by the delta method
    e = np.asarray(res.resid)
    noise_sd = _long_run_sd(e, noise_lags)
    n_lags = min(noise_lags, e.size - 1)
    noise_se = float(noise_sd * np.sqrt(4.0 * n_lags / (3.0 * e.size)) / 2.0)
    gamma0, beta, cov_pl, chi2 = _power_law(ells, G, VG)
    if sample is not None:
        resp, resp_se, _ = response(sample, horizons)
    else:
        resp, resp_se = [float("nan")] * len(horizons), [float("nan")] * len(horizons)
    if spread is not None and np.isfinite(spread).any():
        hs = 0.5 * spread[np.isfinite(spread)]
        hs_mean, hs_se = _hac_mean(hs, L)
    else:
        hs_mean, hs_se = float("nan"), float("nan")
    params = ImpactParams(
        lag_bins=[[lo, hi] for lo, hi in bins],
        increments=g.tolist(),
        propagator_lags=ells.tolist(),
        propagator=G.tolist(),
        gamma0=gamma0,
        beta=beta,
        response_horizons=list(horizons),
        response=resp,
        half_spread=hs_mean,
        noise_sd=noise_sd,
    )
    std_errors = {
        "increments": np.sqrt(np.diag(V)).tolist(),
        "propagator": np.sqrt(np.diag(VG)).tolist(),
        "gamma0": float(np.sqrt(cov_pl[0, 0])),
        "beta": float(np.sqrt(cov_pl[1, 1])),
        "response": resp_se,
        "half_spread": hs_se,
        "noise_sd": noise_se,
    }
    return ImpactFit(params, std_errors, chi2, len(bins) - 2, int(n), L)


def _long_run_sd(e: np.ndarray, lags: int) -> float:
    """``sqrt(gamma_0 + 2 sum_{k<=lags} (1 - k / (lags + 1)) gamma_k)`` of a residual series
    (Newey & West 1987), floored at 0."""
    x = e - e.mean()
    n = x.size
    lags = min(lags, n - 1)
    gam = np.array([x[k:] @ x[: n - k] / n for k in range(lags + 1)])
    w = 1.0 - np.arange(1, lags + 1) / (lags + 1)
    return float(np.sqrt(max(gam[0] + 2.0 * (w @ gam[1:]), 0.0)))


def _power_law(
    ells: np.ndarray, G: np.ndarray, VG: np.ndarray
) -> tuple[float, float, np.ndarray, float]:
    """Minimum-distance fit of ``G(l) = Gamma_0 l^-beta``: estimate, covariance, chi2."""
    Linv = np.linalg.cholesky(np.linalg.inv(VG))  # V^-1 = Linv Linv'

    def resid(theta: np.ndarray) -> np.ndarray:
        out: np.ndarray = Linv.T @ (G - theta[0] * ells ** (-theta[1]))
        return out

    start = np.array([G[0], 0.3])
    sol = optimize.least_squares(resid, start, method="lm")
    J = sol.jac  # d resid / d theta = -Linv' d f / d theta
    cov = np.linalg.pinv(J.T @ J)
    return float(sol.x[0]), float(sol.x[1]), cov, float(2 * sol.cost)


def simulate_propagator_mid(
    eps: np.ndarray, params: ImpactParams, noise: np.ndarray | None = None
) -> np.ndarray:
    """Mid just before each MO (ticks, from 0) under the binned propagator of ``params``:
    ``m_{n+1} = m_n + sum_k g_k eps_{n-k} (+ noise_n)``, lags beyond the last bin ignored."""
    n = eps.size
    csum = np.concatenate([[0.0], np.cumsum(eps)])
    r = np.zeros(n - 1)
    idx = np.arange(n - 1)
    for (lo, hi), g in zip(params.lag_bins, params.increments, strict=True):
        a = np.clip(idx - lo + 1, 0, n)
        b = np.clip(idx - hi, 0, n)
        r += g * (csum[a] - csum[b])
    if noise is not None:
        r += noise[: n - 1]
    return np.concatenate([[0.0], np.cumsum(r)])

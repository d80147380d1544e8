"""Poisson GLMs of event counts with log-exposure offsets (statsmodels), the MLE of every rate.

For counts ``N_j ~ Poisson(rate_j E_j)`` with exposures ``E_j`` (time, or time x queue size) the
log-likelihood is that of a Poisson GLM with log link, design one indicator per cell and offset
``log E_j`` (Cont, Stoikov & Talreja 2010, section 2.2 estimate ``lambda``, ``theta``, ``mu`` as
such count / exposure ratios; Huang, Lehalle & Rosenbaum 2015, section 2.2, the queue-reactive
intensities the same way per queue size). The coefficient is ``log rate``; the rate's standard
error is the delta method ``rate x SE(log rate)``, i.e. ``sqrt(N) / E``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning


class Rates(NamedTuple):
    """Fitted rates per cell (per unit of exposure) and their standard errors, with the data.

    Cells with no exposure have rate and SE NaN. Cells with exposure but no event have rate 0 (the
    MLE on the boundary, where the GLM has no finite coefficient) and, as SE, ``1 / E``: the rate
    one event would have given, a scale of the uncertainty rather than a standard error.
    """

    rate: np.ndarray
    se: np.ndarray
    n_events: np.ndarray
    exposure: np.ndarray


def poisson_rates(count: np.ndarray, exposure: np.ndarray) -> Rates:
    """Rates ``count / exposure`` per cell by a Poisson GLM (one indicator per cell)."""
    count = np.asarray(count, dtype=np.float64)
    exposure = np.asarray(exposure, dtype=np.float64)
    if count.shape != exposure.shape:
        raise ValueError(f"count {count.shape} and exposure {exposure.shape} differ in shape")
    if (count < 0).any() or (exposure < 0).any():
        raise ValueError("counts and exposures must be >= 0")
    flat_c, flat_e = count.ravel(), exposure.ravel()
    rate = np.full(flat_c.size, np.nan)
    se = np.full(flat_c.size, np.nan)
    empty = (flat_e > 0) & (flat_c == 0)
    rate[empty] = 0.0
    se[empty] = 1.0 / flat_e[empty]
    fit_cells = np.flatnonzero((flat_e > 0) & (flat_c > 0))
    if fit_cells.size:
        design = np.eye(fit_cells.size)
        model = sm.GLM(
            flat_c[fit_cells],
            design,
            family=sm.families.Poisson(),
            offset=np.log(flat_e[fit_cells]),
        )
        with warnings.catch_warnings():
            # one indicator per cell is a saturated model: fitted = observed is expected here
            # (and its first weighted least squares step has no residual degree of freedom)
            warnings.simplefilter("ignore", PerfectSeparationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            # started at the closed-form MLE (log count / exposure): IRLS confirms it at once
            res = model.fit(start_params=np.log(flat_c[fit_cells] / flat_e[fit_cells]))
        beta = np.asarray(res.params)
        rate[fit_cells] = np.exp(beta)
        se[fit_cells] = rate[fit_cells] * np.asarray(res.bse)
    return Rates(rate.reshape(count.shape), se.reshape(count.shape), count, exposure)


class LogLinear(NamedTuple):
    """``rate(x) = A exp(-k x)`` fitted by a Poisson GLM on ``x``: values, SEs and covariance."""

    A: float
    k: float
    se_A: float
    se_k: float
    cov_log_A_k: float
    pearson_chi2_per_df: float


def poisson_log_linear(x: np.ndarray, count: np.ndarray, exposure: np.ndarray) -> LogLinear:
    """Fit ``log E[N] = log E + log A - k x`` (Poisson family, log link).

    Standard errors use the Pearson chi-square scale (quasi-Poisson): where the exponential law
    misfits the data, the SEs widen by ``sqrt(pearson_chi2_per_df)`` instead of understating the
    uncertainty.
    """
    x = np.asarray(x, dtype=np.float64)
    count = np.asarray(count, dtype=np.float64)
    exposure = np.asarray(exposure, dtype=np.float64)
    ok = exposure > 0
    if ok.sum() < 3:
        raise ValueError("need at least 3 cells with exposure to fit A exp(-k x)")
    design = sm.add_constant(x[ok], has_constant="add")
    model = sm.GLM(count[ok], design, family=sm.families.Poisson(), offset=np.log(exposure[ok]))
    res = model.fit(scale="X2")
    b0, b1 = (float(v) for v in res.params)
    cov = np.asarray(res.cov_params())
    A = float(np.exp(b0))
    return LogLinear(
        A=A,
        k=-b1,
        se_A=A * float(np.sqrt(cov[0, 0])),
        se_k=float(np.sqrt(cov[1, 1])),
        cov_log_A_k=-float(cov[0, 1]),
        pearson_chi2_per_df=float(res.pearson_chi2 / max(res.df_resid, 1.0)),
    )

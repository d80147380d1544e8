"""Multivariate Hawkes process with sum-of-exponential kernels: likelihood, MLE and simulator.

Units: time in seconds, rates per second. ``D`` event types, ``M`` exponentials. The intensity of
type ``i`` is (Hawkes 1971; the sum-of-exponentials kernel as in Bacry, Mastromatteo & Muzy 2015,
"Hawkes processes in finance", Market Microstructure and Liquidity 1(1), section 3):

``lambda_i(t) = mu_i + sum_m sum_j alpha[m, i, j] sum_{t^j_k < t} beta_m exp(-beta_m (t - t^j_k))``

- ``mu_i``: baseline rate (1/s);
- ``alpha[m, i, j]``: branching ratio of exponential ``m``: the expected number of type-``i``
  events one type-``j`` event triggers through it (the kernel integrates to ``alpha``);
- ``beta_m``: decay rate (1/s) of exponential ``m``, shared by every pair ``(i, j)``.

The branching matrix is ``G = sum_m alpha[m]``; the process is stationary iff its spectral radius
is below 1, and then the mean rates are ``(I - G)^-1 mu``.

The log-likelihood on ``[0, T]`` (Ogata 1978, "The asymptotic behaviour of maximum likelihood
estimators for stationary point processes", AISM 30; Ozaki 1979, AISM 31, eq. (3)) is
``sum_k log lambda_{d_k}(t_k) - sum_i Lambda_i(T)`` and is evaluated in O(n M D) by Ozaki's
recursion on ``S[m, j](t) = sum_{t^j_k < t} beta_m exp(-beta_m (t - t^j_k))``, with its gradient
in the same pass. Events with the same time stamp do not excite each other (only strictly earlier
events enter ``lambda``). The MLE is statsmodels' ``GenericLikelihoodModel`` (maximized by
L-BFGS-B with a diagonal preconditioner, ``mu, alpha >= 0``; ``beta`` enters as ``log beta``),
the standard errors the inverse observed information (the Jacobian of the analytic score, by
central differences); ``SE(beta) = beta SE(log beta)`` by the delta method.

The simulator is Ogata's (1981) thinning ("On Lewis' simulation method for point processes",
IEEE Trans. Inf. Theory 27(1), section 3): between events every kernel decreases, so the total
intensity just after the last event bounds it until the next candidate.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_EVENT_TYPES = 16
"""Largest ``D`` accepted (parameters grow as ``M D^2``)."""

AT_BOUND = 1e-8
"""A fitted ``mu`` or ``alpha`` at most this far above its bound is reported as at the bound."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class HawkesParams(_Strict):
    """A ``D``-variate Hawkes process with ``M`` exponential kernels (module docstring).

    Time unit: seconds. Stationarity (spectral radius of ``sum_m alpha[m]`` below 1) is checked.
    """

    event_types: list[str] = Field(description="Names of the D event types, in index order.")
    baseline: list[float] = Field(description="mu_i: baseline rate of type i (1/s), i = 0..D-1.")
    decays: list[float] = Field(description="beta_m: decay rate of exponential m (1/s).")
    branching: list[list[list[float]]] = Field(
        description="alpha[m][i][j]: expected type-i events triggered by one type-j event "
        "through exponential m (the kernel beta_m alpha exp(-beta_m t) integrates to alpha)."
    )

    @model_validator(mode="after")
    def _check(self) -> HawkesParams:
        D, M = len(self.event_types), len(self.decays)
        if not 1 <= D <= MAX_EVENT_TYPES:
            raise ValueError(f"event_types: need 1..{MAX_EVENT_TYPES} types, got {D}")
        if len(self.baseline) != D or any(not v >= 0 for v in self.baseline):
            raise ValueError(f"baseline must have {D} entries >= 0, got {self.baseline}")
        if not any(v > 0 for v in self.baseline):
            raise ValueError("baseline: at least one mu_i must be > 0")
        if M < 1 or any(not b > 0 for b in self.decays):
            raise ValueError(f"decays must be one or more rates > 0, got {self.decays}")
        a = np.asarray(self.branching, dtype=np.float64)
        if a.shape != (M, D, D) or not np.all(a >= 0):
            raise ValueError(f"branching must be (M, D, D) = ({M}, {D}, {D}) with entries >= 0")
        rho = self.spectral_radius
        if not rho < 1:
            raise ValueError(
                f"branching: spectral radius of sum_m alpha[m] is {rho:.4f} >= 1 (not stationary)"
            )
        return self

    @property
    def alpha(self) -> np.ndarray:
        """``(M, D, D)`` branching ratios."""
        return np.asarray(self.branching, dtype=np.float64)

    @property
    def branching_matrix(self) -> np.ndarray:
        """``G = sum_m alpha[m]``: ``G[i, j]`` type-i children per type-j event."""
        out: np.ndarray = self.alpha.sum(axis=0)
        return out

    @property
    def spectral_radius(self) -> float:
        """Spectral radius of the branching matrix (< 1: stationary)."""
        return float(np.max(np.abs(np.linalg.eigvals(self.branching_matrix))))

    @property
    def mean_rates(self) -> np.ndarray:
        """Stationary mean rate of each type, ``(I - G)^-1 mu`` (1/s)."""
        D = len(self.event_types)
        out: np.ndarray = np.linalg.solve(np.eye(D) - self.branching_matrix, self.baseline)
        return out


# ---------------------------------------------------------------------------------------------
# likelihood (numba)


@numba.njit(inline="always", cache=True)
def _intensity(base, alpha, S, i):
    """``base`` plus the excitation of type ``i``: sum over kernels m and types j of
    ``alpha[m, i, j] S[m, j]`` (summed onto ``base`` in that order)."""
    lam = base
    for m in range(alpha.shape[0]):
        for j in range(alpha.shape[1]):
            lam += alpha[m, i, j] * S[m, j]
    return lam


@numba.njit(inline="always", cache=True)
def _decay(S, beta, w):
    """Let every kernel's excitation decay over ``w``: ``S[m] *= exp(-beta[m] w)``."""
    for m in range(S.shape[0]):
        e = np.exp(-beta[m] * w)
        for j in range(S.shape[1]):
            S[m, j] *= e


@numba.njit(cache=True)
def _loglik(
    t: np.ndarray,
    d: np.ndarray,
    T: float,
    mu: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    grad: bool,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihood on ``[0, T]`` and its gradient in ``(mu, alpha, beta)``.

    ``S[m, j]``: sum over strictly earlier type-j events of ``beta_m exp(-beta_m age)``;
    ``U[m, j]``: the same terms times their ages (for d/d beta). Events sharing a time stamp are
    added to ``S`` only once time moves on (``pend``).
    """
    M, D = alpha.shape[0], alpha.shape[1]
    S = np.zeros((M, D))
    U = np.zeros((M, D))
    pend = np.zeros(D)
    g_mu = np.zeros(D)
    g_alpha = np.zeros((M, D, D))
    g_beta = np.zeros(M)
    inv_beta = 1.0 / beta
    ll = 0.0
    last = 0.0
    for k in range(t.size):
        dt = t[k] - last
        if dt > 0.0:
            for j in range(D):  # events at time ``last`` start to excite
                if pend[j] > 0.0:
                    for m in range(M):
                        S[m, j] += beta[m] * pend[j]
                    pend[j] = 0.0
            for m in range(M):
                e = np.exp(-beta[m] * dt)
                for j in range(D):
                    U[m, j] = e * (U[m, j] + dt * S[m, j])
                    S[m, j] = e * S[m, j]
            last = t[k]
        i = d[k]
        lam = _intensity(mu[i], alpha, S, i)
        if not lam > 0.0:
            return -np.inf, g_mu, g_alpha, g_beta
        ll += np.log(lam)
        if grad:
            inv = 1.0 / lam
            g_mu[i] += inv
            for m in range(M):
                acc = 0.0
                for j in range(D):
                    g_alpha[m, i, j] += S[m, j] * inv
                    acc += alpha[m, i, j] * (S[m, j] * inv_beta[m] - U[m, j])
                g_beta[m] += acc * inv
        pend[i] += 1.0
    # compensator: mu_i T + sum_j alpha[m, i, j] sum_{k in j} (1 - exp(-beta_m (T - t_k)))
    C = np.zeros((M, D))  # sum_{k in j} (1 - exp(-beta_m age_k))
    A = np.zeros((M, D))  # sum_{k in j} age_k exp(-beta_m age_k)
    for k in range(t.size):
        j = d[k]
        age = T - t[k]
        for m in range(M):
            e = np.exp(-beta[m] * age)
            C[m, j] += 1.0 - e
            A[m, j] += age * e
    for i in range(D):
        ll -= mu[i] * T
        if grad:
            g_mu[i] -= T
    for m in range(M):
        for i in range(D):
            for j in range(D):
                ll -= alpha[m, i, j] * C[m, j]
                if grad:
                    g_alpha[m, i, j] -= C[m, j]
                    g_beta[m] -= alpha[m, i, j] * A[m, j]
    return ll, g_mu, g_alpha, g_beta


@numba.njit(cache=True)
def _compensator_increments(
    t: np.ndarray, d: np.ndarray, mu: np.ndarray, alpha: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """``Lambda_{d_k}(t_k) - Lambda_{d_k}(t_prev)``, ``t_prev`` the previous type-``d_k`` event
    (0 for the first): Exp(1) under the model (time-rescaling theorem; Ogata 1988, JASA 83)."""
    M, D = alpha.shape[0], alpha.shape[1]
    S = np.zeros((M, D))
    pend = np.zeros(D)
    acc = np.zeros(D)  # compensator of each type since its last event
    out = np.empty(t.size)
    last = 0.0
    for k in range(t.size):
        dt = t[k] - last
        if dt > 0.0:
            for j in range(D):
                if pend[j] > 0.0:
                    for m in range(M):
                        S[m, j] += beta[m] * pend[j]
                    pend[j] = 0.0
            for i in range(D):
                acc[i] += mu[i] * dt
            for m in range(M):
                e = np.exp(-beta[m] * dt)
                for j in range(D):
                    # integral of S over the gap: S (1 - e) / beta
                    inc = S[m, j] * (1.0 - e) / beta[m]
                    for i in range(D):
                        acc[i] += alpha[m, i, j] * inc
                    S[m, j] *= e
            last = t[k]
        i = d[k]
        out[k] = acc[i]
        acc[i] = 0.0
        pend[i] += 1.0
    return out


@numba.njit(cache=True)
def _simulate(
    duration: float,
    mu: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    rng: np.random.Generator,
    max_events: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Ogata thinning on ``[0, duration]`` from an empty history; returns times, types and the
    number of events (``-1`` if ``max_events`` was reached)."""
    M, D = alpha.shape[0], alpha.shape[1]
    S = np.zeros((M, D))
    lam_i = np.zeros(D)
    times = np.empty(max_events)
    types = np.empty(max_events, dtype=np.int64)
    n = 0
    t = 0.0
    while True:
        bound = 0.0
        for i in range(D):
            bound += _intensity(mu[i], alpha, S, i)
        w = rng.exponential(1.0 / bound)
        t += w
        if t > duration:
            break
        _decay(S, beta, w)
        total = 0.0
        for i in range(D):
            lam = _intensity(mu[i], alpha, S, i)
            lam_i[i] = lam
            total += lam
        u = rng.random() * bound
        if u >= total:
            continue  # rejected candidate
        i = 0
        acc = lam_i[0]
        while acc <= u and i < D - 1:
            i += 1
            acc += lam_i[i]
        if n >= max_events:
            return times, types, -1
        times[n] = t
        types[n] = i
        n += 1
        for m in range(M):
            S[m, i] += beta[m]
    return times, types, n


def simulate_hawkes(
    params: HawkesParams,
    duration: float,
    rng: np.random.Generator,
    *,
    burn_in: float = 0.0,
    max_events: int = 50_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Event times (s, from 0) and types (``0..D-1``) of the process on ``[0, duration]``.

    :param burn_in: seconds simulated first and dropped, so the sample starts near stationarity.
    :param rng: the one random stream of this simulation.
    """
    times, types, n = _simulate(
        float(duration + burn_in),
        np.asarray(params.baseline, dtype=np.float64),
        params.alpha,
        np.asarray(params.decays, dtype=np.float64),
        rng,
        int(max_events),
    )
    if n < 0:
        raise ValueError(f"more than max_events = {max_events} events; shorten the duration")
    keep = times[:n] >= burn_in
    return times[:n][keep] - burn_in, types[:n][keep]


# ---------------------------------------------------------------------------------------------
# maximum likelihood (statsmodels)


def _unpack(params: np.ndarray, D: int, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mu, alpha, beta)`` from ``[mu (D), alpha (M D D), log beta (M)]``."""
    mu = params[:D]
    alpha = params[D : D + M * D * D].reshape(M, D, D)
    beta = np.exp(params[D + M * D * D :])
    return mu, alpha, beta


def param_names(event_types: list[str], M: int) -> list[str]:
    """Names of the fitted vector ``[mu, alpha, log beta]``."""
    names = [f"mu[{e}]" for e in event_types]
    names += [f"alpha{m}[{a}<-{b}]" for m in range(M) for a in event_types for b in event_types]
    names += [f"log_beta{m}" for m in range(M)]
    return names


def _likelihood_model() -> type:
    """The statsmodels model class (built on first use: statsmodels loads with the fit only)."""
    from statsmodels.base.model import GenericLikelihoodModel

    class HawkesLikelihood(GenericLikelihoodModel):
        """``GenericLikelihoodModel`` of :mod:`calibration.hawkes`; ``endog`` = event times."""

        def __init__(
            self, t: np.ndarray, d: np.ndarray, T: float, event_types: list[str], M: int
        ) -> None:
            self.t, self.d, self.T = t, d, float(T)
            self.D, self.M = len(event_types), M
            super().__init__(
                np.asarray(t, dtype=np.float64),
                extra_params_names=param_names(event_types, M),
            )
            self.df_model = float(len(self.exog_names))
            self.df_resid = float(t.size - len(self.exog_names))

        def _eval(self, params: np.ndarray) -> tuple[float, np.ndarray]:
            """Log-likelihood and score in one pass; the optimizer asks for both at each point,
            so the last point's values are kept."""
            p = np.asarray(params, dtype=np.float64)
            key = p.tobytes()
            if getattr(self, "_cache_key", None) != key:
                mu, alpha, beta = _unpack(p, self.D, self.M)
                ll, g_mu, g_alpha, g_beta = _loglik(self.t, self.d, self.T, mu, alpha, beta, True)
                self._cache_key = key
                self._cache = (ll, np.concatenate([g_mu, g_alpha.ravel(), g_beta * beta]))
            return self._cache

        def loglike(self, params: np.ndarray) -> float:
            ll = self._eval(params)[0]
            return ll if np.isfinite(ll) else -1e300

        def score(self, params: np.ndarray) -> np.ndarray:
            return self._eval(params)[1].copy()

        def hessian(self, params: np.ndarray) -> np.ndarray:
            """Jacobian of the analytic score by central differences, symmetrized."""
            p = np.asarray(params, dtype=np.float64)
            H = np.empty((p.size, p.size))
            for k in range(p.size):
                h = 1e-5 * max(abs(p[k]), 1e-3)
                up, dn = p.copy(), p.copy()
                up[k] += h
                dn[k] = max(dn[k] - h, 0.0) if k < p.size - self.M else dn[k] - h
                H[:, k] = (self.score(up) - self.score(dn)) / (up[k] - dn[k])
            out: np.ndarray = 0.5 * (H + H.T)
            return out

    return HawkesLikelihood


def _maximize(
    model: Any, x0: np.ndarray, bounds: Sequence[tuple[float | None, float | None]], maxiter: int
) -> tuple[Any, bool]:
    """Maximize ``model.loglike`` by L-BFGS-B on ``y = x / s``, ``s`` the inverse square root of
    the curvature of each coordinate at ``x0`` (a diagonal preconditioner: the scales of
    ``mu``, ``alpha``, ``log beta`` differ by orders of magnitude), then hand the optimum to
    statsmodels (``maxiter=0``) for the results object and its observed-information
    covariance. Returns the results and whether L-BFGS-B converged."""
    from scipy import optimize

    n = max(int(model.endog.shape[0]), 1)
    g0 = model.score(x0)
    curv = np.empty(x0.size)
    for k in range(x0.size):
        h = 1e-4 * max(abs(x0[k]), 1e-2)
        x = x0.copy()
        x[k] += h
        curv[k] = (model.score(x)[k] - g0[k]) / h
    s = 1.0 / np.sqrt(np.maximum(np.abs(curv), 1e-8))

    def objective(y: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g = model._eval(y * s)
        if not np.isfinite(ll):
            return 1e300, np.zeros_like(y)
        return -ll / n, -g * s / n

    ybounds = [
        (None if lo is None else lo / sk, None if hi is None else hi / sk)
        for (lo, hi), sk in zip(bounds, s, strict=True)
    ]
    opt = optimize.minimize(
        objective,
        x0 / s,
        jac=True,
        method="L-BFGS-B",
        bounds=ybounds,
        options={"maxiter": maxiter, "ftol": 1e7 * np.finfo(float).eps, "gtol": 1e-6},
    )
    x_opt = np.clip(
        opt.x * s,
        [lo if lo is not None else -np.inf for lo, _ in bounds],
        [hi if hi is not None else np.inf for _, hi in bounds],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(start_params=x_opt, method="lbfgs", maxiter=0, disp=0, bounds=bounds)
    return res, bool(opt.success)


def _sort_decays(p: np.ndarray, cov: np.ndarray, D: int, M: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitted vector ``[mu, alpha, log beta, ...]`` and its covariance with the exponentials
    reordered from the fastest decay to the slowest (the likelihood does not depend on their
    order)."""
    order = np.argsort(-p[D + M * D * D : D + M * D * D + M], kind="stable")
    idx = np.arange(p.size)
    a0 = D
    for new_m, old_m in enumerate(order):
        idx[a0 + new_m * D * D : a0 + (new_m + 1) * D * D] = np.arange(
            a0 + old_m * D * D, a0 + (old_m + 1) * D * D
        )
        idx[D + M * D * D + new_m] = D + M * D * D + old_m
    return p[idx], cov[np.ix_(idx, idx)]


def _spectral_radius_se(alpha: np.ndarray, cov: np.ndarray) -> float:
    """SE of the spectral radius of ``G = sum_m alpha[m]`` by the delta method through the
    Perron eigenvalue (``G >= 0``: ``d rho / d G = l r' / (l' r)``, left and right eigenvectors),
    ``cov`` the covariance of a vector whose entries ``D .. D + M D^2`` are ``alpha``; entries
    of ``alpha`` at their bound 0 are held fixed."""
    M, D = alpha.shape[0], alpha.shape[1]
    G = alpha.sum(axis=0)
    w, vr = np.linalg.eig(G)
    k = int(np.argmax(np.abs(w)))
    wl, vl = np.linalg.eig(G.T)
    kl = int(np.argmin(np.abs(wl - w[k])))
    r, left = np.real(vr[:, k]), np.real(vl[:, kl])
    dG = np.outer(left, r) / float(left @ r)
    jac = np.zeros(cov.shape[0])
    for m in range(M):
        # a branching ratio at its bound 0 is held there (its Wald variance is meaningless)
        jac[D + m * D * D : D + (m + 1) * D * D] = np.where(alpha[m] > AT_BOUND, dG, 0.0).ravel()
    used = jac != 0
    if not np.all(np.isfinite(cov[np.ix_(used, used)])):
        return float("nan")
    return float(np.sqrt(max(float(jac[used] @ cov[np.ix_(used, used)] @ jac[used]), 0.0)))


@dataclass
class HawkesFit:
    """A fitted Hawkes process: ``params`` and ``std_errors`` with the same keys (NaN where the
    observed information is singular), the spectral radius with its delta-method SE, the
    log-likelihood, AIC, BIC and the time-rescaling check (KS distance of the compensator
    increments from Exp(1), per type)."""

    params: HawkesParams
    std_errors: dict[str, Any]
    spectral_radius: float
    spectral_radius_se: float
    loglik: float
    aic: float
    bic: float
    n_events: list[int]
    duration: float
    converged: bool
    at_bound: list[str]
    ks_rescaled: list[float]


def start_values(t: np.ndarray, d: np.ndarray, T: float, D: int, M: int) -> np.ndarray:
    """Moment-based start: half of each type's rate as baseline, branching 0.5 spread evenly,
    decays at quantiles of the inter-event gaps (fast to slow)."""
    counts = np.bincount(d, minlength=D).astype(np.float64)
    mu = np.maximum(0.5 * counts / T, 1e-6)
    alpha = np.full((M, D, D), 0.5 / (M * D))
    gaps = np.diff(t)
    gaps = gaps[gaps > 0]
    if gaps.size >= 2:
        qs = np.quantile(gaps, np.linspace(0.2, 0.8, M)) if M > 1 else [np.median(gaps)]
        beta = 1.0 / np.maximum(np.asarray(qs), 1e-6)
    else:
        beta = np.logspace(0, -1, M)
    return np.concatenate([mu, alpha.ravel(), np.log(beta)])


def fit_hawkes(
    t: np.ndarray,
    d: np.ndarray,
    T: float,
    event_types: list[str],
    *,
    n_exponentials: int = 2,
    start: np.ndarray | None = None,
    start_decays: list[float] | None = None,
    maxiter: int = 2000,
) -> HawkesFit:
    """Maximum-likelihood fit of a ``D``-variate Hawkes process with ``n_exponentials`` kernels.

    :param t: event times (s, non-decreasing, in ``[0, T]``); :param d: types ``0..D-1``.
    :param T: end of the observation window (s).
    :param start: start vector ``[mu, alpha, log beta]`` (default :func:`start_values`).
    :param start_decays: start values of the ``M`` decays (1/s), e.g. a related fit's.
    :raises ValueError: on malformed input, or when the fit is not stationary.
    """
    t = np.ascontiguousarray(t, dtype=np.float64)
    d = np.ascontiguousarray(d, dtype=np.int64)
    D, M = len(event_types), int(n_exponentials)
    if t.size != d.size or t.size < 10:
        raise ValueError(f"need >= 10 events with one type each, got {t.size} and {d.size}")
    if np.any(np.diff(t) < 0) or t[0] < 0 or t[-1] > T:
        raise ValueError("event times must be non-decreasing and inside [0, T]")
    if d.min() < 0 or d.max() >= D:
        raise ValueError(f"event types must be in 0..{D - 1}")
    model = _likelihood_model()(t, d, T, event_types, M)
    x0 = start_values(t, d, T, D, M) if start is None else np.asarray(start, dtype=np.float64)
    if start_decays is not None:
        if len(start_decays) != M:
            raise ValueError(f"start_decays needs n_exponentials = {M} values")
        x0[-M:] = np.log(np.asarray(start_decays, dtype=np.float64))
    n_pos = D + M * D * D
    bounds: Sequence[tuple[float | None, float | None]] = (
        [(1e-10, None)] * D + [(0.0, None)] * (n_pos - D) + [(-12.0, 12.0)] * M
    )
    res, converged = _maximize(model, x0, bounds, maxiter)
    p = np.asarray(res.params, dtype=np.float64)
    try:
        cov = np.asarray(res.cov_params(), dtype=np.float64)
    except (np.linalg.LinAlgError, ValueError):
        cov = np.full((p.size, p.size), np.nan)
    p, cov = _sort_decays(p, cov, D, M)
    se = np.sqrt(np.where(np.diag(cov) >= 0, np.diag(cov), np.nan))
    mu, alpha, beta = _unpack(p, D, M)
    params = HawkesParams(
        event_types=list(event_types),
        baseline=mu.tolist(),
        decays=beta.tolist(),
        branching=alpha.tolist(),
    )
    se_mu, se_alpha, se_logb = _unpack_se(se, D, M)
    std_errors = {
        "baseline": se_mu.tolist(),
        "decays": (beta * se_logb).tolist(),
        "branching": se_alpha.tolist(),
    }
    rho_se = _spectral_radius_se(alpha, cov)
    ll = float(model.loglike(p))
    at_bound = [
        name
        for name, v, lo in zip(model.exog_names, p[:n_pos], [b[0] for b in bounds], strict=False)
        if v <= (lo or 0.0) + AT_BOUND
    ]
    resid = _compensator_increments(t, d, mu, alpha, beta)
    ks = [_ks_exp1(resid[d == i]) for i in range(D)]
    return HawkesFit(
        params=params,
        std_errors=std_errors,
        spectral_radius=params.spectral_radius,
        spectral_radius_se=rho_se,
        loglik=ll,
        aic=-2 * ll + 2 * p.size,
        bic=-2 * ll + np.log(t.size) * p.size,
        n_events=np.bincount(d, minlength=D).tolist(),
        duration=float(T),
        converged=converged,
        at_bound=at_bound,
        ks_rescaled=ks,
    )


def _unpack_se(se: np.ndarray, D: int, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return se[:D], se[D : D + M * D * D].reshape(M, D, D), se[D + M * D * D :]


def _ks_exp1(x: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of a sample from Exp(1) (NaN if empty)."""
    if x.size == 0:
        return float("nan")
    x = np.sort(x)
    cdf = 1.0 - np.exp(-x)
    n = x.size
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(0, n) / n)))


def sign_acf(signs: np.ndarray, lags: tuple[int, ...] = (1, 10, 100)) -> dict[int, float]:
    """Autocorrelation of a sign sequence at ``lags`` (event time; the sample ACF of
    statsmodels' ``acf``, mean-removed, biased normalization)."""
    from statsmodels.tsa.stattools import acf

    x = np.asarray(signs, dtype=np.float64)
    top = max(lags)
    if x.size < top + 2 or not np.ptp(x) > 0:
        return {k: float("nan") for k in lags}
    rho = acf(x, nlags=top, fft=True)
    return {k: float(rho[k]) for k in lags}


# ---------------------------------------------------------------------------------------------
# state-dependent variant: a multiplier per (type, state) of a discrete state that changes at events


@numba.njit(cache=True)
def _loglik_state(
    t: np.ndarray,
    d: np.ndarray,
    state: np.ndarray,
    state0: int,
    T: float,
    mu: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    phi: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihood of ``lambda_i(t) = mu_i phi[i, x(t)] + excitation_i(t)`` and its gradient
    in ``(mu, alpha, beta, phi)``; ``x(t)`` is ``state0`` before the first event and
    ``state[k]`` from event ``k`` to the next (events sharing a time stamp: the last one's)."""
    M, D = alpha.shape[0], alpha.shape[1]
    X = phi.shape[1]
    S = np.zeros((M, D))
    U = np.zeros((M, D))
    pend = np.zeros(D)
    g_mu = np.zeros(D)
    g_alpha = np.zeros((M, D, D))
    g_beta = np.zeros(M)
    g_phi = np.zeros((D, X))
    time_in = np.zeros(X)
    inv_beta = 1.0 / beta
    ll = 0.0
    last = 0.0
    x = state0
    for k in range(t.size):
        dt = t[k] - last
        if dt > 0.0:
            for j in range(D):
                if pend[j] > 0.0:
                    for m in range(M):
                        S[m, j] += beta[m] * pend[j]
                    pend[j] = 0.0
            time_in[x] += dt
            for m in range(M):
                e = np.exp(-beta[m] * dt)
                for j in range(D):
                    U[m, j] = e * (U[m, j] + dt * S[m, j])
                    S[m, j] = e * S[m, j]
            last = t[k]
        i = d[k]
        lam = _intensity(mu[i] * phi[i, x], alpha, S, i)
        if not lam > 0.0:
            return -np.inf, g_mu, g_alpha, g_beta, g_phi
        ll += np.log(lam)
        inv = 1.0 / lam
        g_mu[i] += phi[i, x] * inv
        g_phi[i, x] += mu[i] * inv
        for m in range(M):
            acc = 0.0
            for j in range(D):
                g_alpha[m, i, j] += S[m, j] * inv
                acc += alpha[m, i, j] * (S[m, j] * inv_beta[m] - U[m, j])
            g_beta[m] += acc * inv
        pend[i] += 1.0
        x = state[k]
    time_in[x] += T - last
    # compensator: sum_x mu_i phi[i, x] time_in[x] + excitation (as in _loglik)
    for i in range(D):
        for xx in range(X):
            ll -= mu[i] * phi[i, xx] * time_in[xx]
            g_mu[i] -= phi[i, xx] * time_in[xx]
            g_phi[i, xx] -= mu[i] * time_in[xx]
    C = np.zeros((M, D))
    A = np.zeros((M, D))
    for k in range(t.size):
        j = d[k]
        age = T - t[k]
        for m in range(M):
            e = np.exp(-beta[m] * age)
            C[m, j] += 1.0 - e
            A[m, j] += age * e
    for m in range(M):
        for i in range(D):
            for j in range(D):
                ll -= alpha[m, i, j] * C[m, j]
                g_alpha[m, i, j] -= C[m, j]
                g_beta[m] -= alpha[m, i, j] * A[m, j]
    return ll, g_mu, g_alpha, g_beta, g_phi


def state_param_names(event_types: list[str], M: int, n_states: int, ref: int = 0) -> list[str]:
    """Names of ``[mu, alpha, log beta, log phi[i, x] (x != ref)]``."""
    names = param_names(event_types, M)
    others = [x for x in range(n_states) if x != ref]
    names += [f"log_phi[{e},{x}]" for e in event_types for x in others]
    return names


def _unpack_state(
    params: np.ndarray, D: int, M: int, X: int, ref: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mu, alpha, beta = _unpack(params[: D + M * D * D + M], D, M)
    phi = np.ones((D, X))
    others = np.array([x for x in range(X) if x != ref], dtype=np.int64)
    phi[:, others] = np.exp(params[D + M * D * D + M :].reshape(D, X - 1))
    return mu, alpha, beta, phi


def _state_likelihood_model() -> type:
    from statsmodels.base.model import GenericLikelihoodModel

    class StateHawkesLikelihood(GenericLikelihoodModel):
        """``GenericLikelihoodModel`` of the state-dependent Hawkes process."""

        def __init__(
            self,
            t: np.ndarray,
            d: np.ndarray,
            state: np.ndarray,
            state0: int,
            T: float,
            event_types: list[str],
            M: int,
            n_states: int,
            ref: int,
        ) -> None:
            self.t, self.d, self.state, self.state0, self.T = t, d, state, int(state0), float(T)
            self.D, self.M, self.X, self.ref = len(event_types), M, n_states, ref
            self.others = np.array([x for x in range(n_states) if x != ref], dtype=np.int64)
            super().__init__(
                np.asarray(t, dtype=np.float64),
                extra_params_names=state_param_names(event_types, M, n_states, ref),
            )
            self.df_model = float(len(self.exog_names))
            self.df_resid = float(t.size - len(self.exog_names))

        def _eval(self, params: np.ndarray) -> tuple[float, np.ndarray]:
            p = np.asarray(params, dtype=np.float64)
            key = p.tobytes()
            if getattr(self, "_cache_key", None) != key:
                mu, alpha, beta, phi = _unpack_state(p, self.D, self.M, self.X, self.ref)
                ll, gm, ga, gb, gp = _loglik_state(
                    self.t, self.d, self.state, self.state0, self.T, mu, alpha, beta, phi
                )
                g_phi = (gp * phi)[:, self.others].ravel()  # d / d log phi
                grad = np.concatenate([gm, ga.ravel(), gb * beta, g_phi])
                self._cache_key = key
                self._cache = (ll, grad)
            return self._cache

        def loglike(self, params: np.ndarray) -> float:
            ll = self._eval(params)[0]
            return ll if np.isfinite(ll) else -1e300

        def score(self, params: np.ndarray) -> np.ndarray:
            return self._eval(params)[1].copy()

        def hessian(self, params: np.ndarray) -> np.ndarray:
            p = np.asarray(params, dtype=np.float64)
            n_pos = self.D + self.M * self.D * self.D
            H = np.empty((p.size, p.size))
            for k in range(p.size):
                h = 1e-5 * max(abs(p[k]), 1e-3)
                up, dn = p.copy(), p.copy()
                up[k] += h
                dn[k] = max(dn[k] - h, 0.0) if k < n_pos else dn[k] - h
                H[:, k] = (self.score(up) - self.score(dn)) / (up[k] - dn[k])
            out: np.ndarray = 0.5 * (H + H.T)
            return out

    return StateHawkesLikelihood


@dataclass
class StateHawkesFit:
    """A fitted state-dependent Hawkes process: the Hawkes part (``params``, ``std_errors``),
    the multipliers ``phi[i][x]`` (1 in the reference state) with SEs (delta method from
    ``log phi``), the spectral radius of ``G`` with its delta-method SE, log-likelihood, AIC,
    BIC, convergence, and the ``mu`` / ``alpha`` at their bound (their SEs are not Wald SEs)."""

    params: HawkesParams
    std_errors: dict[str, Any]
    state_multipliers: list[list[float]]
    state_multipliers_se: list[list[float]]
    spectral_radius: float
    spectral_radius_se: float
    loglik: float
    aic: float
    bic: float
    converged: bool
    at_bound: list[str]


def fit_state_hawkes(
    t: np.ndarray,
    d: np.ndarray,
    state: np.ndarray,
    state0: int,
    T: float,
    event_types: list[str],
    n_states: int,
    *,
    n_exponentials: int = 2,
    start: HawkesParams | None = None,
    start_decays: list[float] | None = None,
    reference_state: int = 0,
    maxiter: int = 2000,
) -> StateHawkesFit:
    """MLE of ``lambda_i(t) = mu_i phi[i, x(t)] + sum_m sum_j alpha[m,i,j] S_mj(t)``
    (a state-dependent Hawkes process in the sense of Morariu-Patrichi & Pakkanen 2022,
    "State-dependent Hawkes processes and their application to limit order book modelling",
    Quant. Finance 22(3), here with the state acting on the baseline only): ``x(t)`` in
    ``0..n_states-1`` is ``state0`` before the first event and ``state[k]`` after event ``k``;
    ``phi[i, reference_state] = 1``, so that ``mu`` is the baseline in the reference state.
    The state scales the baselines only (bounded by ``max phi``), so the process is stable when
    its Hawkes part is: spectral radius of ``G`` below 1 (:class:`HawkesParams` checks it)."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    d = np.ascontiguousarray(d, dtype=np.int64)
    state = np.ascontiguousarray(state, dtype=np.int64)
    D, M, X = len(event_types), int(n_exponentials), int(n_states)
    if not (t.size == d.size == state.size) or t.size < 10:
        raise ValueError("t, d and state must have one entry per event (>= 10 events)")
    if state.min() < 0 or state.max() >= X or not 0 <= state0 < X:
        raise ValueError(f"states must be in 0..{X - 1}")
    ref = int(reference_state)
    if not 0 <= ref < X:
        raise ValueError(f"reference_state must be in 0..{X - 1}")
    model = _state_likelihood_model()(t, d, state, state0, T, event_types, M, X, ref)
    if start is not None:
        x0 = np.concatenate(
            [start.baseline, start.alpha.ravel(), np.log(start.decays), np.zeros(D * (X - 1))]
        )
    else:
        x0 = np.concatenate([start_values(t, d, T, D, M), np.zeros(D * (X - 1))])
    if start_decays is not None:
        if len(start_decays) != M:
            raise ValueError(f"start_decays needs n_exponentials = {M} values")
        x0[D + M * D * D : D + M * D * D + M] = np.log(np.asarray(start_decays, dtype=float))
    n_pos = D + M * D * D
    bounds: Sequence[tuple[float | None, float | None]] = (
        [(1e-10, None)] * D
        + [(0.0, None)] * (n_pos - D)
        + [(-12.0, 12.0)] * M
        + [(-10.0, 10.0)] * (D * (X - 1))
    )
    res, converged = _maximize(model, x0, bounds, maxiter)
    p = np.asarray(res.params, dtype=np.float64)
    try:
        cov = np.asarray(res.cov_params(), dtype=np.float64)
    except (np.linalg.LinAlgError, ValueError):
        cov = np.full((p.size, p.size), np.nan)
    p, cov = _sort_decays(p, cov, D, M)
    se = np.sqrt(np.where(np.diag(cov) >= 0, np.diag(cov), np.nan))
    mu, alpha, beta, phi = _unpack_state(p, D, M, X, ref)
    k_h = n_pos + M
    se_mu, se_alpha, se_logb = _unpack_se(se[:k_h], D, M)
    phi_se = np.zeros((D, X))
    phi_se[:, model.others] = phi[:, model.others] * se[k_h:].reshape(D, X - 1)
    ll = float(model.loglike(p))
    return StateHawkesFit(
        params=HawkesParams(
            event_types=list(event_types),
            baseline=mu.tolist(),
            decays=beta.tolist(),
            branching=alpha.tolist(),
        ),
        std_errors={
            "baseline": se_mu.tolist(),
            "decays": (beta * se_logb).tolist(),
            "branching": se_alpha.tolist(),
        },
        state_multipliers=phi.tolist(),
        state_multipliers_se=phi_se.tolist(),
        spectral_radius=float(np.max(np.abs(np.linalg.eigvals(alpha.sum(axis=0))))),
        spectral_radius_se=_spectral_radius_se(alpha, cov),
        loglik=ll,
        aic=-2 * ll + 2 * p.size,
        bic=-2 * ll + np.log(t.size) * p.size,
        converged=converged,
        at_bound=[
            name
            for name, v, (lo, _) in zip(model.exog_names, p[:n_pos], bounds, strict=False)
            if v <= (lo or 0.0) + AT_BOUND
        ],
    )


@numba.njit(cache=True)
def _simulate_state(
    duration: float,
    mu: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    phi: np.ndarray,
    trans: np.ndarray,
    state0: int,
    rng: np.random.Generator,
    max_events: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Ogata thinning of ``lambda_i = mu_i phi[i, x] + excitation_i``; after an event of type
    ``i`` in state ``x`` the state becomes ``x'`` with probability ``trans[i, x, x']``.
    Returns times, types, the state after each event and the count (``-1``: ``max_events``
    reached)."""
    M, D = alpha.shape[0], alpha.shape[1]
    X = phi.shape[1]
    S = np.zeros((M, D))
    lam_i = np.zeros(D)
    times = np.empty(max_events)
    types = np.empty(max_events, dtype=np.int64)
    states = np.empty(max_events, dtype=np.int64)
    n = 0
    t = 0.0
    x = state0
    while True:
        bound = 0.0
        for i in range(D):
            bound += _intensity(mu[i], alpha, S, i) + mu[i] * (phi[i, x] - 1.0)
        w = rng.exponential(1.0 / bound)
        t += w
        if t > duration:
            break
        _decay(S, beta, w)
        total = 0.0
        for i in range(D):
            lam_i[i] = _intensity(mu[i], alpha, S, i) + mu[i] * (phi[i, x] - 1.0)
            total += lam_i[i]
        u = rng.random() * bound
        if u >= total:
            continue
        i = 0
        acc = lam_i[0]
        while acc <= u and i < D - 1:
            i += 1
            acc += lam_i[i]
        if n >= max_events:
            return times, types, states, -1
        v = rng.random()
        xn = 0
        cum = trans[i, x, 0]
        while cum <= v and xn < X - 1:
            xn += 1
            cum += trans[i, x, xn]
        x = xn
        times[n] = t
        types[n] = i
        states[n] = x
        n += 1
        for m in range(M):
            S[m, i] += beta[m]
    return times, types, states, n


def simulate_state_hawkes(
    params: HawkesParams,
    multipliers: np.ndarray,
    transitions: np.ndarray,
    duration: float,
    rng: np.random.Generator,
    *,
    state0: int = 0,
    max_events: int = 50_000_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times (s), types and the state after each event of the state-dependent process on
    ``[0, duration]``: intensities ``mu_i multipliers[i, x] + excitation_i``, state
    transitions ``transitions[i, x, x']`` at each type-``i`` event (rows sum to 1)."""
    phi = np.ascontiguousarray(multipliers, dtype=np.float64)
    trans = np.ascontiguousarray(transitions, dtype=np.float64)
    D = len(params.event_types)
    if phi.ndim != 2 or phi.shape[0] != D or trans.shape != (D, phi.shape[1], phi.shape[1]):
        raise ValueError("multipliers must be (D, X) and transitions (D, X, X)")
    if not np.allclose(trans.sum(axis=2), 1.0) or np.any(trans < 0):
        raise ValueError("transitions[i, x] must be probability vectors")
    times, types, states, n = _simulate_state(
        float(duration),
        np.asarray(params.baseline, dtype=np.float64),
        params.alpha,
        np.asarray(params.decays, dtype=np.float64),
        phi,
        trans,
        int(state0),
        rng,
        int(max_events),
    )
    if n < 0:
        raise ValueError(f"more than max_events = {max_events} events; shorten the duration")
    return times[:n], types[:n], states[:n]

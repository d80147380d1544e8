"""Shared pieces of the baselines: argument checks and the inventory-grid propagator.

The exact optima of Gueant, Lehalle & Fernandez-Tapia (2013) and of Cartea & Jaimungal (2015) both
reduce to one linear ODE system on the inventory grid ``q = -Q..Q`` (Q = ``q_max``),

    w(tau) = exp(-M tau) z,    M = diag(c q^2) - eta (S + S'),

with ``S`` the shift ``q -> q + 1`` restricted to the grid (no coupling leaves it), ``c >= 0``,
``eta > 0`` and ``z > 0`` even in ``q``; ``tau = T - t`` is the time left.
:class:`LogTridiagonalPropagator` computes ``log w(tau)``.

Why not an eigendecomposition of the symmetric ``M``: ``w`` spans many orders of magnitude across
the grid (``w_Q / w_0 ~ exp(-sqrt(c / eta) Q^2 / 2)``, below 1e-300 for realistic parameters), and
the quotes are ratios of neighbouring entries. An eigen-expansion ``sum_i exp(-lambda_i tau) u_i
(u_i . z)`` recovers the small entries only to an absolute accuracy of ~1e-16 of the largest, so the
quotes at large ``|q|`` are wrong (and ``log`` of a non-positive sum fails) as soon as the range
exceeds ~1e16. Instead everything here is positive arithmetic in the log domain, which keeps every
entry to full relative accuracy however small it is:

- ``-M = N - c_0 I`` with ``N >= 0`` entrywise, so ``exp(-M h) = exp(-c_0 h) exp(N h)`` and the
  Taylor series of ``exp(N h)`` has only non-negative terms (uniformization); it is summed in logs
  for one base step ``h = 1 / (max diag + 4 eta)``.
- ``exp(-M h 2^j)`` for ``j = 1..K`` by repeated squaring of positive matrices (log-sum-exp
  products).
- ``w(tau)``: write ``tau = n h + r`` (``0 <= r < h``), apply the remainder by the same positive
  Taylor series, then the propagators of the set bits of ``n``: ``O(K (Q+1)^2)`` per distinct
  ``tau``.

``M`` and ``z`` are even in ``q`` (``q -> -q``), so ``w`` is even and the work is done on ``q =
0..Q`` only (the folded matrix has coupling ``2 eta`` from ``q = 0`` to ``q = 1``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt
from scipy.special import logsumexp

TIME_TOLERANCE = 1e-9
"""Times this far (times max(1, T)) outside ``[0, T]`` are rounding and get clipped."""

_TAYLOR_CUTOFF = -40.0
"""A log-Taylor term this far below the running sum (e^-40 ~ 4e-18) no longer changes it."""

_CHUNK = 1 << 22
"""Largest number of elements of a temporary array in the exact log-sum-exp fallback."""

_CACHE_FLOATS = 1 << 21
"""Size of the per-``tau`` cache of :meth:`LogTridiagonalPropagator.log_solution` (floats)."""


# -------------------------------------------------------------------------------------------------
# Argument checks


def check_positive(name: str, value: object) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite number > 0."""
    x = _as_real(name, value, "a finite number > 0")
    if not x > 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return x


def check_nonnegative(name: str, value: object) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite number >= 0."""
    x = _as_real(name, value, "a finite number >= 0")
    if not x >= 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return x


def check_inventory_bound(name: str, value: object) -> int:
    """``value`` as an int, or ``ValueError`` unless it is an integer >= 1 (no bool, no float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _as_real(name: str, value: object, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return x


def elapsed_time(t: npt.ArrayLike, horizon: float, name: str = "t") -> np.ndarray:
    """Float64 array of elapsed times checked to lie in ``[0, horizon]`` (rounding clipped)."""
    t = np.asarray(t, dtype=np.float64)
    tol = TIME_TOLERANCE * max(1.0, horizon)
    if not np.all(np.isfinite(t)) or np.any(t < -tol) or np.any(t > horizon + tol):
        raise ValueError(f"{name} must lie in [0, T] = [0, {horizon}], got values in "
                         f"[{np.min(t, initial=np.inf)}, {np.max(t, initial=-np.inf)}]")
    return np.clip(t, 0.0, horizon)


def elapsed_from_time_left(time_left: npt.ArrayLike, horizon: float) -> np.ndarray:
    """Elapsed time ``T - time_left`` for time left checked to lie in ``[0, T]``."""
    return horizon - elapsed_time(time_left, horizon, name="time_left")


def finite_inventory(q: npt.ArrayLike) -> np.ndarray:
    """Float64 array of inventories, ``ValueError`` unless all finite."""
    q = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise ValueError("inventory must be finite")
    return q


def inventory_on_grid(q: npt.ArrayLike, q_max: int) -> np.ndarray:
    """Int64 array of inventories, ``ValueError`` unless integer-valued with ``|q| <= q_max``."""
    qf = finite_inventory(q)
    qi = np.rint(qf)
    if np.any(np.abs(qf - qi) > 1e-9):
        raise ValueError("inventory must be an integer number of lots")
    if np.any(np.abs(qi) > q_max):
        raise ValueError(f"inventory must satisfy |q| <= q_max = {q_max}, got max |q| = "
                         f"{np.max(np.abs(qi))}")
    return qi.astype(np.int64)


# -------------------------------------------------------------------------------------------------
# Log-domain positive linear algebra


_SCALED_FLOOR = -600.0
"""A scaled-BLAS log-product entry this far below its scale is recomputed exactly (see _log_dot)."""


def _log_dot(log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """``log(exp(log_a) @ exp(log_b))``, every entry to full relative accuracy.

    Fast path: scale the rows of ``a`` and the columns of ``b`` by their maxima and use BLAS. A term
    lost to underflow is below ``e^-708`` of its entry's scale, so an entry at least ``e^-600`` of
    its scale is exact to rounding; entries below that are recomputed with an exact log-sum-exp.
    Each row of ``a`` is multiplied on its own (stacked matmul), so a row's result does not depend
    on the other rows in the batch (a 2-D matmul's rounding depends on the batch size).
    """
    row_max = np.max(log_a, axis=1, keepdims=True)
    col_max = np.max(log_b, axis=0, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    col_max = np.where(np.isfinite(col_max), col_max, 0.0)
    with np.errstate(divide="ignore"):
        scaled = np.log(np.matmul(np.exp(log_a - row_max)[:, None, :], np.exp(log_b - col_max)))
    scaled = scaled[:, 0, :]
    rows, cols = np.nonzero(scaled < _SCALED_FLOOR)
    step = max(1, _CHUNK // log_a.shape[1])
    for i in range(0, rows.size, step):
        r, c = rows[i:i + step], cols[i:i + step]
        scaled[r, c] = logsumexp(log_a[r] + log_b[:, c].T - row_max[r] - col_max[0, c, None],
                                 axis=1)
    return scaled + row_max + col_max


class LogTridiagonalPropagator:
    """``log(exp(-M tau) z)`` for the inventory-grid matrix ``M = diag(c q^2) - eta (S + S')``.

    See the module docstring for the method and why it is used. All inputs are in the units of the
    model that builds ``M``; ``tau`` is in the same time unit as ``horizon``.

    :param curvature: ``c >= 0``, the diagonal is ``c q^2``.
    :param coupling: ``eta > 0``, minus the off-diagonal entries.
    :param q_max: the grid is ``q = -q_max..q_max``.
    :param log_z: ``log z``, shape ``(2 q_max + 1,)`` ordered ``q = -q_max..q_max``, even in ``q``.
    :param horizon: largest ``tau`` that will be asked for (sets the number of squarings).
    """

    def __init__(self, curvature: float, coupling: float, q_max: int, log_z: np.ndarray,
                 horizon: float) -> None:
        self.q_max = q_max
        log_z = np.asarray(log_z, dtype=np.float64)
        if log_z.shape != (2 * q_max + 1,) or not np.all(np.isfinite(log_z)):
            raise ValueError("log_z must be a finite array of shape (2 q_max + 1,)")
        if not np.allclose(log_z, log_z[::-1], rtol=1e-12, atol=1e-12):
            raise ValueError("log_z must be even in q (the folded grid assumes w_q = w_{-q})")
        self._log_z = log_z[q_max:].copy()  # folded: q = 0..Q
        self.horizon = float(horizon)
        # Simulations revisit the same times every episode: keep solutions per tau (bounded).
        self._cache: dict[float, np.ndarray] = {}
        self._cache_size = max(64, _CACHE_FLOATS // (q_max + 1))

        n = q_max + 1
        q = np.arange(n, dtype=np.float64)
        diag = curvature * q**2
        # -M = N - rate I with N >= 0 entrywise (uniformization): diag(N) = rate - c q^2 >= 2 eta.
        self._rate = diag[-1] + 2.0 * coupling
        self._log_n_diag = np.log(self._rate - diag)
        log_eta = math.log(coupling)
        self._log_n_up = np.full(n - 1, log_eta)  # N[j, j+1]
        self._log_n_up[0] = math.log(2.0 * coupling)  # folding: w_{-1} = w_1 both feed q = 0
        self._log_n_down = np.full(n - 1, log_eta)  # N[j, j-1], j >= 1
        # Base step: ||N h||_inf <= 1, so the Taylor terms fall like 1/m!.
        self.step = 1.0 / (diag[-1] + 4.0 * coupling)

        # log exp(-M h 2^j) = self._levels[j] + self._level_shift[j] (normalized, offset apart).
        self._n_steps_max = math.floor(self.horizon / self.step)
        if self._n_steps_max >= 2**62:
            raise ValueError("horizon too long for the model's time scale: T (max diag + 4 eta) "
                             f"= {self.horizon / self.step:.3g} must be < 2^62")
        n_levels = max(1, self._n_steps_max.bit_length())
        base = self._log_taylor(None, np.full(n, self.step))  # log exp(N h)
        self._levels: list[np.ndarray] = []
        self._level_shift: list[float] = []
        log_p, offset = base, -self._rate * self.step
        for j in range(n_levels):
            top = float(np.max(log_p))
            self._levels.append(log_p - top)
            self._level_shift.append(offset + top)
            if j + 1 < n_levels:
                log_p, offset = _log_dot(log_p - top, log_p - top), 2.0 * (offset + top)

    # -- Taylor series of exp(N r) in the log domain --------------------------------------------

    def _log_taylor(self, log_x: np.ndarray | None, r: np.ndarray) -> np.ndarray:
        """``log(exp(N r_i) exp(x_i))`` for the rows ``x_i`` of ``log_x``, or ``log exp(N r)``.

        Every term of the series is non-negative, so the sum is accurate entrywise. Each row stops
        at its own convergence, so its result does not depend on the other rows. With
        ``log_x=None`` the rows are those of the identity and ``N'`` is applied to them, which gives
        the rows of ``exp(N r)`` (``e_i' N^m = ((N')^m e_i)'``); ``r`` then has one entry per row.
        """
        n = self.q_max + 1
        if log_x is None:
            term = np.where(np.eye(n) > 0, 0.0, -np.inf)
            log_n = (self._log_n_diag, self._log_n_down, self._log_n_up)  # N': up and down swap
        else:
            term = np.array(log_x, dtype=np.float64, copy=True)
            log_n = (self._log_n_diag, self._log_n_up, self._log_n_down)
        total = term.copy()
        with np.errstate(divide="ignore"):
            log_r = np.log(r)[:, None]
        running = np.isfinite(log_r[:, 0])  # r = 0: nothing to add
        for m in range(1, 100_000):
            if not np.any(running):
                break
            prev = term
            term = log_n[0] + prev
            term[..., :-1] = np.logaddexp(term[..., :-1], log_n[1] + prev[..., 1:])
            term[..., 1:] = np.logaddexp(term[..., 1:], log_n[2] + prev[..., :-1])
            term += log_r - math.log(m)
            total[running] = np.logaddexp(total[running], term[running])
            if m >= n:  # every entry is reached after n - 1 steps
                running &= np.max(term - total, axis=1) >= _TAYLOR_CUTOFF
        else:  # pragma: no cover - ||N r|| <= 1 converges in ~n + 30 terms
            raise FloatingPointError("Taylor series of exp(N r) did not converge")
        return total

    # -- public ----------------------------------------------------------------------------------

    def log_solution(self, tau: npt.ArrayLike) -> np.ndarray:
        """``log w(tau)``, shape ``tau.shape + (2 q_max + 1,)``, last axis ``q = -q_max..q_max``."""
        tau = np.asarray(tau, dtype=np.float64)
        if not np.all(np.isfinite(tau)) or np.any(tau < 0) or np.any(tau > self.horizon):
            raise ValueError(f"tau must lie in [0, {self.horizon}]")
        uniq, inverse = np.unique(tau.reshape(-1), return_inverse=True)
        log_w = np.empty((uniq.size, self.q_max + 1))
        missing = []
        for i, value in enumerate(uniq.tolist()):
            cached = self._cache.get(value)
            if cached is None:
                missing.append(i)
            else:
                log_w[i] = cached
        if missing:
            log_w[missing] = self._log_solution_folded(uniq[missing])
            for i in missing:
                if len(self._cache) >= self._cache_size:
                    del self._cache[next(iter(self._cache))]  # oldest first
                self._cache[float(uniq[i])] = log_w[i].copy()
        full = np.concatenate([log_w[:, :0:-1], log_w], axis=1)  # unfold: q = -Q..Q
        return full[inverse].reshape((*tau.shape, 2 * self.q_max + 1))

    def _log_solution_folded(self, tau: np.ndarray) -> np.ndarray:
        """``log w(tau)`` on ``q = 0..Q`` for distinct ``tau`` (1-D) in ``[0, horizon]``."""
        n_steps = np.minimum(np.floor(tau / self.step), self._n_steps_max).astype(np.int64)
        remainder = np.maximum(tau - n_steps * self.step, 0.0)
        log_w = np.broadcast_to(self._log_z, (tau.size, self.q_max + 1))
        log_w = self._log_taylor(log_w, remainder) - self._rate * remainder[:, None]
        for j, (level, shift) in enumerate(zip(self._levels, self._level_shift, strict=True)):
            rows = ((n_steps >> j) & 1).astype(bool)
            if np.any(rows):
                log_w[rows] = _log_dot(log_w[rows], level.T) + shift
        return log_w

    def log_limit_shape(self, tol: float = 1e-13, max_doublings: int = 200) -> np.ndarray:
        """``lim_{tau -> inf} log w(tau) - log w_0(tau)``: the positive ground state of ``M``.

        Power iteration with squaring: ``x <- P x``, ``P <- P^2`` (``P = exp(-M h 2^j)``), until the
        differences ``log x_{q+1} - log x_q`` change by less than ``tol``. Shape ``(2 q_max + 1,)``.
        """
        log_p = self._levels[-1]
        x = self._log_z - self._log_z[0]
        for _ in range(max_doublings):
            x_new = _log_dot(x[None, :], log_p.T)[0]
            x_new -= x_new[0]
            log_p = _log_dot(log_p, log_p)
            log_p -= np.max(log_p)
            d_new = np.diff(x_new)
            if np.max(np.abs(d_new - np.diff(x))) < tol * (1.0 + np.max(np.abs(d_new))):
                x = x_new
                break
            x = x_new
        else:  # pragma: no cover - M has a spectral gap: geometric convergence in time
            raise FloatingPointError("ground state iteration did not converge")
        return np.concatenate([x[:0:-1], x])


def grid_neighbours(log_w: np.ndarray, q: np.ndarray, q_max: int) -> tuple[np.ndarray, ...]:
    """``(log w_q, log w_{q+1}, log w_{q-1})`` picked from ``log_w`` (last axis ``q = -Q..Q``).

    ``q`` must broadcast against ``log_w[..., 0]``; outside the grid the neighbour is ``nan``.
    """
    idx = np.asarray(q, dtype=np.int64) + q_max
    log_w, idx = np.broadcast_arrays(log_w, idx[..., None])
    idx = idx[..., :1]

    def pick(j: np.ndarray) -> np.ndarray:
        inside = (j >= 0) & (j <= 2 * q_max)
        value = np.take_along_axis(log_w, np.clip(j, 0, 2 * q_max), axis=-1)
        return np.where(inside, value, np.nan)[..., 0]

    return pick(idx), pick(idx + 1), pick(idx - 1)

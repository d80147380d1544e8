"""Risk-neutral market making with a running inventory penalty (Cartea & Jaimungal).

References: A. Cartea, S. Jaimungal, J. Penalva, "Algorithmic and High-Frequency Trading", Cambridge
University Press, 2015, section 10.2 (``omega(t) = exp(A (T - t)) z`` is their eq. (10.11)); A.
Cartea, S. Jaimungal, "Risk metrics and fine tuning of high-frequency trading strategies",
Mathematical Finance 25(3), 576-611, 2015.

Model: mid ``dS = sigma dW``; market orders arrive at Poisson rate ``A`` on each side and fill a
quote at depth ``delta`` with probability ``exp(-k delta)`` (fill intensity ``A exp(-k delta)``, as
in the other baselines); inventory ``|q| <= Q``. The agent maximizes

    E[X_T + q_T S_T - alpha q_T^2 - phi int_t^T q_s^2 ds].

Time ``t`` is elapsed time in ``[0, T]``; depths are in price units (bid at ``S - delta_minus``, ask
at ``S + delta_plus``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from agents.base import DepthPolicy
from agents.baselines._common import (
    LogTridiagonalPropagator,
    check_inventory_bound,
    check_nonnegative,
    check_positive,
    elapsed_from_time_left,
    elapsed_time,
    grid_neighbours,
    inventory_on_grid,
)
from envs.layout import DepthActionMap


class CarteaJaimungal(DepthPolicy):
    """Exact optimum of the running-penalty market-making problem (CJP 2015 section 10.2).

    The value function is ``H = x + q S + h(t, q)`` with, for ``q = -Q..Q``,

    - ``h(t, q) = (1/k) ln omega_q(t)``, ``omega(t) = exp(Amat (T - t)) z`` (CJP 2015 eq. (10.11),
      numbering as cited by mbt-gym; not checked against the book),
    - ``Amat`` tridiagonal: diagonal ``-phi k q^2``, off-diagonals ``A e^{-1}`` between neighbouring
      admissible inventories only, ``z_q = exp(-alpha k q^2)`` (so ``h(T, q) = -alpha q^2``);

    and the optimal depths (feedback form of the HJB's maximizers, CJP 2015 section 10.2) are

    - ask ``delta_plus(t, q) = 1/k - h(t, q-1) + h(t, q)`` for ``q > -Q``,
    - bid ``delta_minus(t, q) = 1/k - h(t, q+1) + h(t, q)`` for ``q < Q``;

    the closed side at ``|q| = Q`` has depth ``inf``. ``sigma`` does not enter the optimum (the
    objective is risk neutral; the running penalty ``phi`` plays the role of inventory risk) but is
    kept for a uniform interface. ``omega`` is computed in the log domain by
    :class:`~agents.baselines._common.LogTridiagonalPropagator`, the same numerics as
    :class:`~agents.baselines.glft.GLFT` (there ``M = -Amat``).

    :param sigma: volatility of the mid (price units / sqrt(time unit)); unused by the optimum.
    :param A: arrival rate of market orders on each side (1 / time unit).
    :param k: decay of the fill probability with depth (1 / price units).
    :param phi: running inventory penalty (price units / (lot^2 time unit)), >= 0.
    :param alpha: terminal inventory penalty (price units / lot^2), >= 0.
    :param T: horizon (time units).
    :param q_max: inventory bound ``Q`` (lots).
    :param action_map: the market's action map, needed by :meth:`act` only.
    """

    name = "cartea_jaimungal"

    def __init__(self, sigma: float, A: float, k: float, phi: float, alpha: float, T: float,
                 q_max: int, action_map: DepthActionMap | None = None) -> None:
        super().__init__(action_map)
        self.sigma = check_positive("sigma", sigma)
        self.A = check_positive("A", A)
        self.k = check_positive("k", k)
        self.phi = check_nonnegative("phi", phi)
        self.alpha = check_nonnegative("alpha", alpha)
        self.T = check_positive("T", T)
        self.q_max = check_inventory_bound("q_max", q_max)
        q = np.arange(-self.q_max, self.q_max + 1, dtype=np.float64)
        self._propagator = LogTridiagonalPropagator(
            curvature=self.phi * self.k, coupling=self.A * math.exp(-1.0), q_max=self.q_max,
            log_z=-self.alpha * self.k * q**2, horizon=self.T,
        )

    def _h(self, t: np.ndarray) -> np.ndarray:
        """``h(t, .)`` on the whole grid, shape ``t.shape + (2Q+1,)`` (``t`` already checked)."""
        return self._propagator.log_solution(self.T - t) / self.k

    def value(self, t: npt.ArrayLike, q: npt.ArrayLike) -> np.ndarray:
        """``h(t, q) = (1/k) ln omega_q(t)``, the part of the value function beyond ``x + q S``."""
        t, q = np.broadcast_arrays(elapsed_time(t, self.T), inventory_on_grid(q, self.q_max))
        return grid_neighbours(self._h(t), q, self.q_max)[0]

    def quotes(self, t: npt.ArrayLike, q: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(delta_minus, delta_plus)`` = (bid, ask) depths at time ``t`` and inventory ``q``."""
        t, q = np.broadcast_arrays(elapsed_time(t, self.T), inventory_on_grid(q, self.q_max))
        centre, above, below = grid_neighbours(self._h(t), q, self.q_max)
        bid = np.where(q < self.q_max, 1.0 / self.k - above + centre, np.inf)
        ask = np.where(q > -self.q_max, 1.0 / self.k - below + centre, np.inf)
        return bid, ask

    def depths(self, time_left: npt.ArrayLike,
               inventory: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        return self.quotes(elapsed_from_time_left(time_left, self.T), inventory)

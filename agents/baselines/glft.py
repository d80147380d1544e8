"""Exact optimal quotes of Gueant, Lehalle & Fernandez-Tapia (2013) under inventory bounds.

Reference: O. Gueant, C.-A. Lehalle, J. Fernandez-Tapia, "Dealing with the inventory risk: a
solution to the market making problem", Mathematics and Financial Economics 7(4), 477-507, 2013
(arXiv:1105.3115). The paper's results are cited by proposition and theorem number.

Model (GLFT 2013 section 2): mid ``dS = sigma dW``; a quote at depth ``delta`` is filled at Poisson
rate ``A exp(-k delta)``; inventory ``|q| <= Q`` (no bid at ``Q``, no ask at ``-Q``); the market
maker maximizes ``E[-exp(-gamma (X_T + q_T S_T))]``. Time ``t`` is elapsed time in ``[0, T]``;
depths are in price units (bid at ``S - delta_b``, ask at ``S + delta_a``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from agents.base import DepthPolicy
from agents.baselines._common import (
    LogTridiagonalPropagator,
    check_inventory_bound,
    check_positive,
    elapsed_from_time_left,
    elapsed_time,
    grid_neighbours,
    inventory_on_grid,
)
from envs.layout import DepthActionMap


class GLFT(DepthPolicy):
    """Exact finite-horizon quotes of GLFT 2013 (Proposition 2 and Theorem 1).

    With ``alpha = k gamma sigma^2 / 2`` and ``eta = A (1 + gamma/k)^(-(1 + k/gamma))`` (GLFT 2013
    Proposition 1), ``v(t) = exp(-M (T - t)) 1`` where ``M`` is the ``(2Q+1)``-square tridiagonal
    matrix with diagonal ``alpha q^2`` and off-diagonals ``-eta`` (Proposition 2), and (Theorem 1)

    - ``delta_b(t, q) = (1/k) ln(v_q(t) / v_{q+1}(t)) + (1/gamma) ln(1 + gamma/k)``, ``q < Q``,
    - ``delta_a(t, q) = (1/k) ln(v_q(t) / v_{q-1}(t)) + (1/gamma) ln(1 + gamma/k)``, ``q > -Q``;

    the closed side at ``|q| = Q`` has depth ``inf``. ``v`` is computed in the log domain by
    :class:`~agents.baselines._common.LogTridiagonalPropagator` (entries of ``v`` can be far below
    the smallest float for large ``Q`` or ``T``; the quotes stay exact).

    :param sigma: volatility of the mid (price units / sqrt(time unit)).
    :param A: fill intensity at zero depth (1 / time unit).
    :param k: decay of the fill intensity with depth (1 / price units).
    :param gamma: absolute risk aversion (1 / price units).
    :param T: horizon (time units).
    :param q_max: inventory bound ``Q`` (lots).
    :param action_map: the market's action map, needed by :meth:`act` only.
    """

    name = "glft"

    def __init__(self, sigma: float, A: float, k: float, gamma: float, T: float, q_max: int,
                 action_map: DepthActionMap | None = None) -> None:
        super().__init__(action_map)
        self.sigma = check_positive("sigma", sigma)
        self.A = check_positive("A", A)
        self.k = check_positive("k", k)
        self.gamma = check_positive("gamma", gamma)
        self.T = check_positive("T", T)
        self.q_max = check_inventory_bound("q_max", q_max)
        # GLFT 2013 Proposition 1.
        self.alpha = 0.5 * self.k * self.gamma * self.sigma**2
        self.eta = self.A * math.exp(-(1.0 + self.k / self.gamma) * math.log1p(self.gamma / self.k))
        # GLFT 2013 Theorem 1: the inventory-free part of each quote.
        self.base_depth = math.log1p(self.gamma / self.k) / self.gamma
        self._propagator = LogTridiagonalPropagator(
            curvature=self.alpha, coupling=self.eta, q_max=self.q_max,
            log_z=np.zeros(2 * self.q_max + 1), horizon=self.T,
        )
        self._stationary_log_v: np.ndarray | None = None

    def log_v(self, t: npt.ArrayLike) -> np.ndarray:
        """``ln v(t)`` (GLFT 2013 Prop. 2), shape ``t.shape + (2Q+1,)``, last axis ``q = -Q..Q``."""
        return self._propagator.log_solution(self.T - elapsed_time(t, self.T))

    def _quotes_from_log_v(self, log_v: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centre, above, below = grid_neighbours(log_v, q, self.q_max)
        bid = np.where(q < self.q_max, (centre - above) / self.k + self.base_depth, np.inf)
        ask = np.where(q > -self.q_max, (centre - below) / self.k + self.base_depth, np.inf)
        return bid, ask

    def quotes(self, t: npt.ArrayLike, q: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(delta_b, delta_a)`` at elapsed time ``t``, inventory ``q`` (GLFT 2013 Theorem 1)."""
        t, q = np.broadcast_arrays(elapsed_time(t, self.T), inventory_on_grid(q, self.q_max))
        return self._quotes_from_log_v(self.log_v(t), q)

    def stationary_quotes(self, q: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``lim_{T - t -> inf}`` of the exact quotes (GLFT 2013 Theorem 2).

        ``v`` is replaced by ``f0``, the positive eigenvector of the smallest eigenvalue of ``M``,
        computed in the log domain.
        """
        q = inventory_on_grid(q, self.q_max)
        if self._stationary_log_v is None:
            self._stationary_log_v = self._propagator.log_limit_shape()
        return self._quotes_from_log_v(self._stationary_log_v, q)

    def asymptotic_quotes(self, q: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form approximation of the stationary quotes (GLFT 2013 section 4, after Prop. 3).

        ``delta_b ~ (1/gamma) ln(1 + gamma/k) + (2q + 1)/2 sqrt(sigma^2 gamma / (2 k A)
        (1 + gamma/k)^(1 + k/gamma))`` and ``delta_a ~ ... - (2q - 1)/2 sqrt(...)``: the discrete
        ground state is replaced by a Gaussian, so it is an approximation, best for small ``|q|``.
        The closed side at ``|q| = Q`` has depth ``inf``, as for the exact quotes.
        """
        q = inventory_on_grid(q, self.q_max)
        skew = math.sqrt(self.sigma**2 * self.gamma / (2.0 * self.k * self.A)
                         * (1.0 + self.gamma / self.k) ** (1.0 + self.k / self.gamma))
        bid = np.where(q < self.q_max, self.base_depth + 0.5 * (2 * q + 1) * skew, np.inf)
        ask = np.where(q > -self.q_max, self.base_depth - 0.5 * (2 * q - 1) * skew, np.inf)
        return bid, ask

    def depths(self, time_left: npt.ArrayLike,
               inventory: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        return self.quotes(elapsed_from_time_left(time_left, self.T), inventory)


class GLFTAsymptotic(GLFT):
    """The closed-form asymptotic GLFT quotes (:meth:`GLFT.asymptotic_quotes`) as a policy.

    Time-independent; same parameters as :class:`GLFT`.
    """

    name = "glft_asymptotic"

    def depths(self, time_left: npt.ArrayLike,
               inventory: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        _, q = np.broadcast_arrays(np.asarray(time_left, np.float64),
                                   np.asarray(inventory, np.float64))
        return self.asymptotic_quotes(q)

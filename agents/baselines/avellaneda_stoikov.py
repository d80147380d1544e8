"""Avellaneda & Stoikov (2008) market-making quotes and the paper's symmetric benchmark.

Reference: M. Avellaneda, S. Stoikov, "High-frequency trading in a limit order book", Quantitative
Finance 8(3), 217-224, 2008. Equation numbers below are those of the paper's working-paper version
(sections 2-3, equations (2.x) and (3.x)); the published article numbers its equations differently.

Model (AS 2008 eqs. (2.1), (3.8)): mid ``dS = sigma dW``, a quote at depth ``delta`` is filled at
Poisson rate ``A exp(-k delta)``; the agent maximizes the CARA utility ``E[-exp(-gamma (X_T + q_T
S_T))]``. ``A`` does not enter the quotes below. Time ``t`` is elapsed time in ``[0, T]``; depths
are in price units (bid at ``S - bid_depth``, ask at ``S + ask_depth``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from agents.base import DepthPolicy
from agents.baselines._common import (
    check_inventory_bound,
    check_nonnegative,
    check_positive,
    elapsed_from_time_left,
    elapsed_time,
    finite_inventory,
    inventory_on_grid,
)
from envs.layout import DepthActionMap

_OMEGA_RTOL = 1e-12
"""``omega`` this close below the natural choice counts as equal to it (rounding)."""


def _order_arrival_half_spread(gamma: float, k: float) -> float:
    """``(1/gamma) ln(1 + gamma/k)``, AS 2008 eqs. (3.6)-(3.7) with ``A exp(-k delta)`` (3.8).

    The depth of each optimal quote beyond the corresponding reservation price.
    """
    return float(np.log1p(gamma / k) / gamma)


class AvellanedaStoikov(DepthPolicy):
    """Finite-horizon approximate optimum of AS 2008, section 3.2.

    - reservation price ``r = s - q gamma sigma^2 (T - t)`` (AS 2008 eq. (3.17)),
    - total spread ``gamma sigma^2 (T - t) + (2/gamma) ln(1 + gamma/k)`` (AS 2008 eq. (3.18)),
    - quotes symmetric around ``r``: ``bid_depth = s - r + spread/2``, ``ask_depth = r - s +
      spread/2``.

    No inventory bound: quotes are defined for every inventory.

    :param gamma: absolute risk aversion (1 / price units).
    :param sigma: volatility of the mid (price units / sqrt(time unit)).
    :param k: decay of the fill intensity with depth (1 / price units).
    :param T: horizon (time units).
    :param action_map: the market's action map, needed by :meth:`act` only.
    """

    name = "avellaneda_stoikov"

    def __init__(self, gamma: float, sigma: float, k: float, T: float,
                 action_map: DepthActionMap | None = None) -> None:
        super().__init__(action_map)
        self.gamma = check_positive("gamma", gamma)
        self.sigma = check_positive("sigma", sigma)
        self.k = check_positive("k", k)
        self.T = check_positive("T", T)
        self._arrival_term = _order_arrival_half_spread(self.gamma, self.k)

    def reservation_offset(self, t: npt.ArrayLike, q: npt.ArrayLike) -> np.ndarray:
        """``r - s = -q gamma sigma^2 (T - t)`` (AS 2008 eq. (3.17)), price units."""
        t, q = np.broadcast_arrays(elapsed_time(t, self.T), finite_inventory(q))
        return -q * self.gamma * self.sigma**2 * (self.T - t)

    def spread(self, t: npt.ArrayLike) -> np.ndarray:
        """Total spread ``gamma sigma^2 (T - t) + (2/gamma) ln(1 + gamma/k)`` (AS 2008 (3.18))."""
        t = elapsed_time(t, self.T)
        return self.gamma * self.sigma**2 * (self.T - t) + 2.0 * self._arrival_term

    def average_spread(self) -> float:
        """Time average of :meth:`spread` over ``[0, T]``: ``gamma sigma^2 T / 2 + (2/gamma)
        ln(1 + gamma/k)`` (the 'spread' column of AS 2008 Tables 1-3)."""
        return 0.5 * self.gamma * self.sigma**2 * self.T + 2.0 * self._arrival_term

    def quotes(self, t: npt.ArrayLike, q: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(bid_depth, ask_depth)``: the spread (3.18) centred on the reservation price (3.17)."""
        offset = self.reservation_offset(t, q)
        half = 0.5 * self.spread(t)
        return half - offset, half + offset

    def depths(self, time_left: npt.ArrayLike,
               inventory: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        return self.quotes(elapsed_from_time_left(time_left, self.T), inventory)


class AvellanedaStoikovInfinite(DepthPolicy):
    """Stationary quotes from the infinite-horizon objective of AS 2008, section 2.3.

    Objective ``E[int_0^inf -exp(-omega t) exp(-gamma (x + q S_t)) dt]``, whose value is
    ``-exp(-gamma (x + q s)) / (omega - gamma^2 sigma^2 q^2 / 2)``. The stationary reservation
    prices, defined by indifference as in AS 2008 Definition 1 (eqs. (2.4)-(2.5)), are

    - bid: ``r_b - s = (1/gamma) ln(1 + (-1 - 2q) gamma^2 sigma^2 / (2 omega - gamma^2 q^2
      sigma^2))`` (AS 2008 section 2.3, as printed);
    - ask: ``r_a(q) = r_b(q - 1)``, i.e.
      ``r_a - s = (1/gamma) ln((2 omega - gamma^2 q^2 sigma^2) / (2 omega - gamma^2 (q-1)^2
      sigma^2))``.

    The ask formula printed in section 2.3, ``(1/gamma) ln(1 + (1 - 2q) gamma^2 sigma^2 /
    (2 omega - gamma^2 q^2 sigma^2))``, agrees with this one only to first order in
    ``gamma^2 sigma^2 / omega``: it does not solve the indifference relation (2.5), breaks the
    ``q -> -q`` symmetry (quotes at ``q = 0`` would not be centred on the mid) and violates
    ``r_a(q) = r_b(q - 1)``, which follows from (3.4)-(3.5). The exact indifference price is used
    here.

    Each quote then sits ``(1/gamma) ln(1 + gamma/k)`` beyond its reservation price (AS 2008 eqs.
    (3.6)-(3.7) with exponential intensity (3.8)): ``bid_depth = s - r_b + (1/gamma) ln(1 +
    gamma/k)``, ``ask_depth = r_a - s + (1/gamma) ln(1 + gamma/k)``. No bid at ``q = q_max`` and no
    ask at ``q = -q_max`` (depth ``inf``).

    AS 2008 section 2.3 requires ``omega > gamma^2 sigma^2 q^2 / 2`` and suggests the natural choice
    ``omega = gamma^2 sigma^2 (q_max + 1)^2 / 2`` (see :meth:`natural_omega`), which keeps every
    posted quote finite for ``|q| <= q_max``. ``omega`` below that value raises ``ValueError``.

    :param gamma: absolute risk aversion (1 / price units).
    :param sigma: volatility of the mid (price units / sqrt(time unit)).
    :param k: decay of the fill intensity with depth (1 / price units).
    :param omega: discount rate of the objective (1 / time unit).
    :param q_max: inventory bound (lots).
    :param action_map: the market's action map, needed by :meth:`act` only.
    """

    name = "avellaneda_stoikov_infinite"

    def __init__(self, gamma: float, sigma: float, k: float, omega: float, q_max: int,
                 action_map: DepthActionMap | None = None) -> None:
        super().__init__(action_map)
        self.gamma = check_positive("gamma", gamma)
        self.sigma = check_positive("sigma", sigma)
        self.k = check_positive("k", k)
        self.omega = check_positive("omega", omega)
        self.q_max = check_inventory_bound("q_max", q_max)
        bound = self.natural_omega(self.gamma, self.sigma, self.q_max)
        if self.omega < bound * (1.0 - _OMEGA_RTOL):
            raise ValueError(
                f"omega must be >= gamma^2 sigma^2 (q_max + 1)^2 / 2 = {bound} "
                f"(AS 2008 section 2.3: omega bounds the inventory), got {omega!r}"
            )
        self.omega = max(self.omega, bound)  # equality up to rounding counts as the natural choice
        self._arrival_term = _order_arrival_half_spread(self.gamma, self.k)

    @staticmethod
    def natural_omega(gamma: float, sigma: float, q_max: int) -> float:
        """``gamma^2 sigma^2 (q_max + 1)^2 / 2``, the choice of AS 2008 section 2.3."""
        return 0.5 * gamma**2 * sigma**2 * (q_max + 1) ** 2

    def _log_denominator(self, q: np.ndarray) -> np.ndarray:
        """``ln(2 omega - gamma^2 sigma^2 q^2)``; ``-inf`` where it vanishes."""
        with np.errstate(divide="ignore"):
            return np.log(2.0 * self.omega - (self.gamma * self.sigma * q) ** 2)

    def reservation_offsets(self, q: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(r_b - s, r_a - s)`` in price units for inventories ``|q| <= q_max`` (section 2.3).

        With the natural ``omega``, ``r_b(q_max) = -inf`` and ``r_a(-q_max) = +inf``.
        """
        q = inventory_on_grid(q, self.q_max).astype(np.float64)
        log_d = self._log_denominator(q)
        bid = (self._log_denominator(q + 1.0) - log_d) / self.gamma
        ask = (log_d - self._log_denominator(q - 1.0)) / self.gamma
        return bid, ask

    def quotes(self, q: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(bid_depth, ask_depth)``; ``inf`` on the side closed by the inventory bound."""
        q = inventory_on_grid(q, self.q_max)
        bid_offset, ask_offset = self.reservation_offsets(q)
        bid = np.where(q >= self.q_max, np.inf, self._arrival_term - bid_offset)
        ask = np.where(q <= -self.q_max, np.inf, self._arrival_term + ask_offset)
        return bid, ask

    def depths(self, time_left: npt.ArrayLike,
               inventory: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        _, inventory = np.broadcast_arrays(np.asarray(time_left, np.float64),
                                           np.asarray(inventory, np.float64))
        return self.quotes(inventory)


class SymmetricSpread(DepthPolicy):
    """A spread centred on the mid, ignoring inventory: the 'symmetric strategy' of AS 2008 §3.3.

    ``bid_depth = ask_depth = spread / 2``, where the total ``spread`` is a constant or a function
    of the time left. :meth:`matching` builds the benchmark of AS 2008 section 3.3 (Tables 1-3):
    the inventory strategy's average spread, held constant and centred on the mid; ``matching(...,
    time_varying=True)`` quotes the inventory strategy's spread of each time instead.

    :param spread: total spread (price units, >= 0), or a callable ``time_left -> total spread``
        taking and returning arrays.
    :param action_map: the market's action map, needed by :meth:`act` only.
    """

    name = "symmetric_spread"

    def __init__(self, spread: float | Callable[[np.ndarray], np.ndarray],
                 action_map: DepthActionMap | None = None) -> None:
        super().__init__(action_map)
        if callable(spread):
            self._spread_fn: Callable[[np.ndarray], np.ndarray] = spread
        else:
            constant = check_nonnegative("spread", spread)
            self._spread_fn = lambda time_left: np.full(np.shape(time_left), constant)

    @classmethod
    def matching(cls, policy: AvellanedaStoikov, action_map: DepthActionMap | None = None,
                 time_varying: bool = False) -> SymmetricSpread:
        """The symmetric counterpart of ``policy``, centred on the mid.

        By default the paper's benchmark (AS 2008 section 3.3): the constant spread
        :meth:`AvellanedaStoikov.average_spread`. With ``time_varying`` the spread (3.18) of
        each time.
        """
        if not isinstance(policy, AvellanedaStoikov):
            raise ValueError(f"policy must be an AvellanedaStoikov instance, got {type(policy)!r}")
        action_map = action_map if action_map is not None else policy.action_map
        if not time_varying:
            return cls(policy.average_spread(), action_map=action_map)
        return cls(lambda time_left: policy.spread(policy.T - np.asarray(time_left, np.float64)),
                   action_map=action_map)

    def total_spread(self, time_left: npt.ArrayLike) -> np.ndarray:
        """Total spread (price units) at the given time left."""
        return np.asarray(self._spread_fn(np.asarray(time_left, np.float64)), np.float64)

    def depths(self, time_left: npt.ArrayLike,
               inventory: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        time_left, _ = np.broadcast_arrays(np.asarray(time_left, np.float64),
                                           finite_inventory(inventory))
        half = np.broadcast_to(0.5 * self.total_spread(time_left), time_left.shape)
        return half.copy(), half.copy()

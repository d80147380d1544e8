"""Fixed spread with a linear inventory skew: the simplest market-making baseline."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from agents.base import DepthPolicy
from agents.baselines._common import check_nonnegative, finite_inventory
from envs.layout import DepthActionMap


class FixedSpread(DepthPolicy):
    """Quote ``half_spread`` around the mid, shifted by ``skew`` per lot of inventory.

    ``bid_depth = half_spread + skew q`` and ``ask_depth = half_spread - skew q``: a long position
    (``q > 0``) moves both quotes down (less eager to buy, more eager to sell). The total spread is
    ``2 half_spread`` whatever the inventory; depths become negative for ``|q| > half_spread /
    skew``. No inventory bound is built in (the market enforces its own).

    :param half_spread: depth of each quote at zero inventory (price units, >= 0).
    :param skew: shift of both quotes per lot of inventory (price units per lot, >= 0).
    :param action_map: the market's action map, needed by :meth:`act` only.
    """

    name = "fixed_spread"

    def __init__(self, half_spread: float, skew: float,
                 action_map: DepthActionMap | None = None) -> None:
        super().__init__(action_map)
        self.half_spread = check_nonnegative("half_spread", half_spread)
        self.skew = check_nonnegative("skew", skew)

    def quotes(self, q: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask depths (price units) for inventories ``q`` (lots)."""
        q = finite_inventory(q)
        return self.half_spread + self.skew * q, self.half_spread - self.skew * q

    def depths(self, time_left: npt.ArrayLike,
               inventory: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        time_left, inventory = np.broadcast_arrays(np.asarray(time_left, np.float64),
                                                   np.asarray(inventory, np.float64))
        return self.quotes(inventory)

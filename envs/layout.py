"""The observation and action layout that the markets publish.

Agents and features depend on this module only, never on a market's internals
(docs/architecture.md#packages-and-imports). Every market returns a ``dict`` observation whose
keys include the ones below; batched observations carry a leading batch axis ``(N, 1)``.

Units:
    - ``inventory``: lots (signed; positive is long).
    - ``time_left``: time to the end of the episode, in the market's time unit
      (the horizon ``T`` is expressed in the same unit).
    - ``mid``: price units (currency for the analytic market, ticks for the order book).
    - ``cash``: currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

INVENTORY = "inventory"
TIME_LEFT = "time_left"
MID = "mid"
CASH = "cash"
OBSERVATION_KEYS = (INVENTORY, TIME_LEFT, MID, CASH)

BID, ASK = 0, 1
"""Indices of the bid and ask components of an action."""


@dataclass(frozen=True)
class DepthActionMap:
    """Affine map between the normalized action ``a`` in ``[-1, 1]^2`` and quote depths.

    ``depth = depth_min + (a + 1) / 2 * (depth_max - depth_min)``, one component for the
    bid and one for the ask. A depth is the distance of a quote from the mid, in price
    units, positive away from the mid (a negative depth quotes through the mid).

    :param depth_min: depth at ``a = -1`` (price units).
    :param depth_max: depth at ``a = +1`` (price units).
    """

    depth_min: float
    depth_max: float

    def __post_init__(self) -> None:
        if not self.depth_max > self.depth_min:
            raise ValueError(
                f"depth_max ({self.depth_max}) must be greater than depth_min ({self.depth_min})"
            )

    @property
    def width(self) -> float:
        return self.depth_max - self.depth_min

    def to_depths(self, action: np.ndarray) -> np.ndarray:
        """Depths ``(..., 2)`` for actions ``(..., 2)``; actions are clipped to ``[-1, 1]``."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        return self.depth_min + (a + 1.0) * (0.5 * self.width)

    def to_action(self, bid_depth: np.ndarray, ask_depth: np.ndarray) -> np.ndarray:
        """Float32 actions ``(N, 2)`` for depths; depths outside the range are clipped to it."""
        depths = np.stack(
            [np.asarray(bid_depth, np.float64), np.asarray(ask_depth, np.float64)], -1
        )
        a = 2.0 * (depths - self.depth_min) / self.width - 1.0
        return np.clip(a, -1.0, 1.0).astype(np.float32).reshape(-1, 2)


def checked_actions(action: Any, n: int) -> np.ndarray:
    """The actions of ``n`` markets as a float64 ``(n, 2)`` array, by one rule for every market.

    Each row is (bid, ask) in ``[-1, 1]``; values outside are clipped by the action map
    (:class:`DepthActionMap`). NaN and infinity are refused, not read as "no quote": a policy
    that produces them is broken, and a market that quietly skips or clips them would hide it.

    :raises ValueError: a shape other than ``(n, 2)``, values that are not numbers, or a NaN or
        infinite value (its market and side named).
    """
    try:
        array = np.asarray(action, np.float64)
    except (TypeError, ValueError):
        kind = getattr(np.asarray(action, object), "dtype", type(action))
        raise ValueError(f"actions must be numbers, got {kind} values") from None
    if array.shape != (n, 2):
        raise ValueError(f"actions must have shape ({n}, 2) (bid, ask per market), got "
                         f"{array.shape}")  # fmt: skip
    finite = np.isfinite(array)
    if not finite.all():
        m, side = np.argwhere(~finite)[0]
        raise ValueError(f"action of market {m}, {('bid', 'ask')[side]}, is {array[m, side]}: "
                         "actions must be finite numbers in [-1, 1]")  # fmt: skip
    return array

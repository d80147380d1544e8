"""The order-book market's gymnasium faces: one market, and N markets in one kernel.

The model is in :mod:`envs.lob.book` (Cont-Stoikov-Talreja 2010 order flow, the agent's FIFO
queue position) and :mod:`envs.lob.core` (quotes, latency, fees, limits, accounting).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.vector_env import AutoresetMode

from envs.batched import BatchedMarketEnv, SingleMarketEnv
from envs.layout import CASH, INVENTORY, MID, TIME_LEFT, DepthActionMap
from envs.lob.book import (
    FILL_AHEAD0,
    FILL_FEE,
    FILL_PRICE,
    FILL_SIDE,
    FILL_SIZE,
    FILL_TAKER,
    FILL_TIME,
    FILL_WAITED,
)
from envs.lob.config import LOBMarketConfig
from envs.lob.core import BOOK, N_OBS_TRADES, ORDERS, TRADES, LOBMarketCore

FILL_FIELDS = {
    "time": FILL_TIME,
    "price": FILL_PRICE,
    "size": FILL_SIZE,
    "side": FILL_SIDE,
    "taker": FILL_TAKER,
    "fee": FILL_FEE,
    "queue_ahead_at_entry": FILL_AHEAD0,
    "waited": FILL_WAITED,
}
"""Columns of ``info["fills"]`` in the vector env (last axis), by name."""


def observation_space(config: LOBMarketConfig) -> spaces.Dict:
    """The single-market observation space (float32)."""
    L = config.market.n_levels
    inf = np.float32(np.inf)
    return spaces.Dict(
        {
            INVENTORY: spaces.Box(-config.q_max, config.q_max, (1,), np.float32),
            TIME_LEFT: spaces.Box(0.0, config.T, (1,), np.float32),
            MID: spaces.Box(-inf, inf, (1,), np.float32),
            CASH: spaces.Box(-inf, inf, (1,), np.float32),
            BOOK: spaces.Box(0.0, inf, (L, 2, 2), np.float32),
            ORDERS: spaces.Box(0.0, inf, (2, 3), np.float32),
            TRADES: spaces.Box(-inf, inf, (N_OBS_TRADES, 3), np.float32),
        }
    )


def _fills_as_records(fills: np.ndarray, n: int) -> list[dict[str, float]]:
    return [{name: float(row[col]) for name, col in FILL_FIELDS.items()} for row in fills[:n]]


class LOBMarketEnv(SingleMarketEnv):
    """Market making in the event-driven order book (one market).

    ## Market
    The others' order flow is Cont-Stoikov-Talreja (2010) or the queue-reactive model of
    Huang, Lehalle & Rosenbaum (2015), by ``config.market.model``
    (:class:`calibration.params.MarketParams`); the agent's orders work the same in both.

    ## Action Space
    ``Box(-1, 1, (2,), float32)``: bid and ask depths in ticks from the mid, mapped affinely
    onto ``[depth_min, depth_max]`` (``self.action_map``); prices are rounded away from the mid
    to the tick grid; a depth below the half spread crosses and trades as a taker.

    ## Observation Space
    ``Dict`` of float32 boxes: ``inventory`` (lots), ``time_left`` (time units), ``mid``
    (ticks, the others' best quotes), ``cash`` (currency), ``book`` ``(L, 2, 2)``: level ``k``
    from each best, side (0 bid, 1 ask), (price in ticks, lots incl. the agent's), and
    ``orders`` ``(2, 3)``: the agent's bid and ask (price, remaining lots, lots ahead in the
    queue; zeros when none), and ``trades`` ``(8, 3)``: the market's last trades (market
    orders by others, one row per price level reached) in the ``dt`` before the book snapshot,
    most recent first: signed lots (+ buyer-, - seller-initiated), price minus the observed
    ``mid`` (ticks), age (time units); zeros where there is none. Book, mid and trades are
    ``feed_latency`` old, the agent's own state ``response_latency`` old.

    ## Rewards
    ``dPnL - phi (q_t^2 + q_{t+1}^2)/2 dt - [end] alpha q_T^2``, marked at the mid; ``dPnL``
    includes the fees. ``info``: ``dpnl``, ``inventory_penalty``, ``fees``, the quoted prices,
    ``fills`` (price, size, side +1 buy / -1 sell, taker flag, fee, queue ahead at entry, time
    waited, time), ``unliquidated``.

    ## Episode End
    ``terminated`` after ``n_steps`` decisions (the inventory is then liquidated against the
    book unless ``terminal = mark``) or when the kill switch fires. Never truncated.

    ## Arguments
    Keyword parameters of :class:`envs.lob.config.LOBMarketConfig`, or ``config=``.
    """

    core: LOBMarketCore

    def __init__(self, config: LOBMarketConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ValueError("pass either config= or keyword parameters, not both")
        self.config = config or LOBMarketConfig(**params)
        action_map = DepthActionMap(self.config.depth_min, self.config.depth_max)
        super().__init__(LOBMarketCore(self.config, 1), observation_space(self.config), action_map)

    def _unbatch_info(self, info: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {k: v[0] for k, v in info.items() if k != "fills"}
        out["fills"] = _fills_as_records(info["fills"][0], int(info["n_fills"][0]))
        return out


class LOBMarketVectorEnv(BatchedMarketEnv):
    """``num_envs`` order-book markets stepped together in one kernel call.

    The same model, spaces and rewards as :class:`LOBMarketEnv`, with a leading batch axis;
    ``info["fills"]`` is ``(N, F, 8)`` (columns :data:`FILL_FIELDS`) with ``info["n_fills"]``
    valid rows per market. Autoreset as :class:`envs.batched.BatchedMarketEnv` describes.

    :param num_envs: number of markets.
    :param autoreset_mode: ``"next_step"`` or ``"same_step"`` (or an ``AutoresetMode``).
    :param parallel: step the markets on all numba threads; identical results, other speed.
    """

    core: LOBMarketCore

    def __init__(
        self,
        num_envs: int = 1,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        config: LOBMarketConfig | None = None,
        parallel: bool = False,
        **params: Any,
    ) -> None:
        if config is not None and params:
            raise ValueError("pass either config= or keyword parameters, not both")
        self.config = config or LOBMarketConfig(**params)
        core = LOBMarketCore(self.config, num_envs, parallel=parallel)
        action_map = DepthActionMap(self.config.depth_min, self.config.depth_max)
        super().__init__(core, observation_space(self.config), action_map, num_envs,
                         autoreset_mode)  # fmt: skip

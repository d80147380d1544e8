"""The replay market's gymnasium faces: one replay, and N replays in one kernel call."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.vector_env import AutoresetMode

from envs.batched import BatchedMarketEnv, SingleMarketEnv
from envs.layout import CASH, INVENTORY, MID, TIME_LEFT, DepthActionMap
from envs.lob.core import BOOK, ORDERS
from envs.lob.env import FILL_FIELDS, _fills_as_records
from envs.replay.config import ReplayMarketConfig
from envs.replay.core import ReplayMarketCore
from envs.replay.tape import Tape


def observation_space(config: ReplayMarketConfig, levels: int) -> spaces.Dict:
    """The single-replay observation space (float32)."""
    inf = np.float32(np.inf)
    return spaces.Dict(
        {
            INVENTORY: spaces.Box(-config.q_max, config.q_max, (1,), np.float32),
            TIME_LEFT: spaces.Box(0.0, config.T, (1,), np.float32),
            MID: spaces.Box(-inf, inf, (1,), np.float32),
            CASH: spaces.Box(-inf, inf, (1,), np.float32),
            BOOK: spaces.Box(0.0, inf, (levels, 2, 2), np.float32),
            ORDERS: spaces.Box(0.0, inf, (2, 3), np.float32),
        }
    )


def _config(config: ReplayMarketConfig | None, params: dict[str, Any]) -> ReplayMarketConfig:
    if config is not None and params:
        raise ValueError("pass either config= or keyword parameters, not both")
    return config or ReplayMarketConfig(**params)


def _starts_option(options: dict[str, Any] | None) -> Any:
    if not options:
        return None
    unknown = set(options) - {"start"}
    if unknown:
        raise ValueError(f"reset options: unknown keys {sorted(unknown)}; expected 'start'")
    return options.get("start")


class ReplayMarketEnv(SingleMarketEnv):
    """Market making against a recorded day of order-book events (one replay).

    ## Action Space
    ``Box(-1, 1, (2,), float32)``: bid and ask depths in ticks from the mid, mapped affinely onto
    ``[depth_min, depth_max]``; prices are rounded away from the mid to the tick grid; a quote
    crossing the recorded book trades at once as a taker.

    ## Observation Space
    As ``mmrl/LOBMarket-v0``: ``inventory`` (lots), ``time_left`` (seconds), ``mid`` (ticks, the
    recorded book's), ``cash`` (currency), ``book`` ``(L, 2, 2)``: the recorded level ``k`` of
    each side (0 bid, 1 ask) as (price in ticks, others' lots; zeros when empty), and ``orders``
    ``(2, 3)``: the agent's bid and ask (price, remaining lots, lots ahead in the queue). The
    recorded levels are the non-empty prices (LOBSTER's and Binance's convention), not a tick
    grid, and do not include the agent's own orders.

    ## Rewards
    ``dPnL - phi (q_t^2 + q_{t+1}^2)/2 dt - [end] alpha q_T^2`` at the recorded mid, fees
    included; ``info`` as the order-book market plus ``events`` (events replayed this step).

    ## Episode End
    ``terminated`` after ``n_steps`` decisions (the inventory is liquidated against the recorded
    book unless ``terminal = mark``) or when the kill switch fires. Never truncated.

    ## Arguments
    Keyword parameters of :class:`envs.replay.config.ReplayMarketConfig`, or ``config=``;
    ``tape=`` replays an already built :class:`envs.replay.tape.Tape`. ``reset(options={"start":
    s})`` replays the window starting ``s`` seconds after the tape's first event.
    """

    core: ReplayMarketCore

    def __init__(
        self, config: ReplayMarketConfig | None = None, tape: Tape | None = None, **params: Any
    ) -> None:
        self.config = _config(config, params)
        core = ReplayMarketCore(self.config, 1, tape=tape)
        action_map = DepthActionMap(self.config.depth_min, self.config.depth_max)
        super().__init__(core, observation_space(self.config, core.L), action_map)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        start = _starts_option(options)
        if start is not None:
            self.core.set_starts(float(start))
        return super().reset(seed=seed, options=options)

    def _unbatch_info(self, info: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {k: v[0] for k, v in info.items() if k != "fills"}
        out["fills"] = _fills_as_records(info["fills"][0], int(info["n_fills"][0]))
        return out


class ReplayMarketVectorEnv(BatchedMarketEnv):
    """``num_envs`` replays stepped together in one kernel call (over different windows of one
    tape, or N agents on the same window: ``same_window``).

    Same spaces and rewards as :class:`ReplayMarketEnv` with a leading batch axis;
    ``info["fills"]`` is ``(N, F, 8)`` (columns :data:`envs.lob.env.FILL_FIELDS`).
    ``reset(options={"start": s})`` with a scalar or one start per replay (seconds).

    :param num_envs: number of replays.
    :param autoreset_mode: ``"next_step"`` or ``"same_step"`` (or an ``AutoresetMode``).
    :param parallel: step the replays on all numba threads; identical results, other speed.
    """

    core: ReplayMarketCore

    def __init__(
        self,
        num_envs: int = 1,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        config: ReplayMarketConfig | None = None,
        tape: Tape | None = None,
        parallel: bool = False,
        **params: Any,
    ) -> None:
        self.config = _config(config, params)
        core = ReplayMarketCore(self.config, num_envs, tape=tape, parallel=parallel)
        action_map = DepthActionMap(self.config.depth_min, self.config.depth_max)
        super().__init__(core, observation_space(self.config, core.L), action_map, num_envs,
                         autoreset_mode)  # fmt: skip

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        start = _starts_option(options)
        if start is not None:
            self.core.set_starts(np.asarray(start, np.float64))
        return super().reset(seed=seed, options=options)


__all__ = ["FILL_FIELDS", "ReplayMarketEnv", "ReplayMarketVectorEnv", "observation_space"]

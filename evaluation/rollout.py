"""Run a policy over a batch of episodes of a batched market and collect what happened.

Every policy is run from the same seed on the same batched market, so policies are
compared on common random numbers: the same mid paths and the same fill uniforms in the
analytic market, the same order-flow streams in the order book (there the agent's own
orders change the book, so paths share their random numbers, not their events).

The markets describe a step's fills and quotes differently in ``info``; a small adapter per
market (:class:`AnalyticStepInfo`, :class:`LOBStepInfo`, chosen by :func:`step_info_adapter`)
turns them into the same quantities, so one loop serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium
import numpy as np
import pandas as pd

from agents.base import Policy
from envs.layout import INVENTORY, MID, TIME_LEFT
from envs.lob.env import FILL_FIELDS

FILL_COLUMNS = ("episode", "step", "time", "price", "size", "side", "fee", "taker", "queue_ahead")
"""Columns of :attr:`StepRecord.fills`: one row per fill event."""


@dataclass
class StepRecord:
    """Per-step arrays of a batch of ``N`` episodes (``(N, n_steps + 1)``, column 0 at reset).

    Column ``t`` is the state at the ``t``-th decision. After an episode ends its last value
    is repeated (``EpisodeBatch.steps + 1`` columns of a row are its own).

    ``time``: time units since the episode's start; ``mid``: the mid the agent observed
    (price units: currency in the analytic market, ticks in the order book); ``pnl``:
    cumulative mark-to-market PnL (currency, fees included); ``inventory`` (lots); ``bid`` /
    ``ask``: the prices the agent quoted at decision ``t``, live until ``t + 1`` (price units;
    NaN in the last column). ``fills``: one row per fill event with :data:`FILL_COLUMNS`:
    ``episode`` (index in the batch), ``step`` (the decision during which it happened, from
    0), ``time`` (time units since the episode's start, in ``(time[step], time[step + 1]]``;
    the analytic market's fills are stamped at the end of their step, the model placing them
    only within it), ``price`` (price units), ``size`` (lots), ``side`` (+1 the agent bought,
    -1 it sold), ``fee`` (currency, negative = rebate), ``taker`` (1 when the agent's order
    took liquidity, 0 when it rested), ``queue_ahead`` (lots ahead of the order when it
    entered the book; NaN for a taker fill or where the market has no queue).
    """

    time: np.ndarray
    mid: np.ndarray
    pnl: np.ndarray
    inventory: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    fills: pd.DataFrame


@dataclass
class EpisodeBatch:
    """Per-episode results of a batch of ``N`` episodes (arrays of shape ``(N,)``).

    ``reward``: sum of rewards; ``pnl``: sum of mark-to-market PnL changes
    (``X_T + q_T S_T - q_0 S_0``, currency, fees included); ``penalty``: sum of inventory
    penalties; ``final_inventory``: ``q_T``; ``fills``: number of fill events (one per
    filled quote in the analytic market; one per trade of the agent's order at one price in
    the order book, taker fills and the final liquidation included); ``spread``: mean quoted
    spread (ask price - bid price, in the market's price unit: currency for the analytic
    market, ticks for the order book) over the episode's steps; ``steps``: decisions taken.
    ``paths`` (when recorded): ``(N, n_steps + 1)`` arrays ``pnl`` and ``inventory``.
    ``record`` (when asked): the per-step :class:`StepRecord`.
    """

    reward: np.ndarray
    pnl: np.ndarray
    penalty: np.ndarray
    final_inventory: np.ndarray
    fills: np.ndarray
    spread: np.ndarray
    steps: np.ndarray
    paths: dict[str, np.ndarray] = field(default_factory=dict)
    record: StepRecord | None = None

    def episode(self, i: int) -> EpisodeBatch:
        """Episode ``i`` as a batch of one, with its record and fills (a record is required)."""
        rec = self.record
        if rec is None:
            raise ValueError("episode(i) needs a batch rolled out with its step record")
        fills = rec.fills[rec.fills["episode"] == i].assign(episode=0).reset_index(drop=True)
        keys = ("time", "mid", "pnl", "inventory", "bid", "ask")
        one = StepRecord(**{k: getattr(rec, k)[i : i + 1] for k in keys}, fills=fills)
        pick = {
            k: getattr(self, k)[i : i + 1]
            for k in ("reward", "pnl", "penalty", "final_inventory", "fills", "spread", "steps")
        }
        return EpisodeBatch(**pick, record=one)


class StepInfo(Protocol):
    """What the rollout reads from a market's step ``info`` (arrays over the ``N`` markets)."""

    def fill_count(self, info: dict[str, Any]) -> np.ndarray:
        """Fill events during the step, ``(N,)`` int."""
        ...

    def quotes(self, info: dict[str, Any], mid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask prices of the step's quotes (price units), ``(N,)`` each; ``mid`` is the
        mid observed before the step."""
        ...

    def fill_rows(
        self, info: dict[str, Any], mid: np.ndarray, end: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        """The step's fills of the markets in ``mask`` as rows ``(episode, time, price, size,
        side, fee, taker, queue_ahead)``; ``mid`` is the mid observed before the step and
        ``end`` the elapsed time at its end."""
        ...


class AnalyticStepInfo:
    """The analytic market's ``info``: ``fill_bid`` / ``fill_ask`` flags and the quoted
    ``bid_depth`` / ``ask_depth``. Fills are unit, at ``mid -+ depth`` (the quotes rest
    around the mid the agent saw), without fees or queue; stamped at the step's end."""

    KEYS = ("fill_bid", "fill_ask", "bid_depth", "ask_depth")

    def fill_count(self, info: dict[str, Any]) -> np.ndarray:
        return np.asarray(info["fill_bid"], np.int64) + np.asarray(info["fill_ask"], np.int64)

    def quotes(self, info: dict[str, Any], mid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return mid - np.asarray(info["bid_depth"]), mid + np.asarray(info["ask_depth"])

    def fill_rows(
        self, info: dict[str, Any], mid: np.ndarray, end: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        rows = []
        for flag, depth, side in (("fill_bid", "bid_depth", 1.0), ("fill_ask", "ask_depth", -1.0)):
            (idx,) = np.nonzero(mask & np.asarray(info[flag], np.bool_))
            price = mid[idx] - side * np.asarray(info[depth])[idx]
            one, zero = np.ones(idx.size), np.zeros(idx.size)
            rows.append(
                np.column_stack([idx, end[idx], price, one, side * one, zero, zero, zero * np.nan])
            )
        return np.concatenate(rows)


class LOBStepInfo:
    """The order book's ``info``: ``n_fills`` and the fill log ``fills`` ``(N, F, 8)``
    (columns ``envs.lob.env.FILL_FIELDS``), and the quoted ``bid_price`` / ``ask_price``
    (ticks). ``n_fills`` counts every fill; the log keeps the first ``F`` of a step
    (``market.max_fills``), so the rows can be fewer than the count."""

    KEYS = ("n_fills", "fills", "bid_price", "ask_price")
    _COLUMNS = tuple(
        FILL_FIELDS[c]
        for c in ("time", "price", "size", "side", "fee", "taker", "queue_ahead_at_entry")
    )

    def fill_count(self, info: dict[str, Any]) -> np.ndarray:
        return np.asarray(info["n_fills"], np.int64)

    def quotes(self, info: dict[str, Any], mid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(info["bid_price"], np.float64), np.asarray(info["ask_price"], np.float64)

    def fill_rows(
        self, info: dict[str, Any], mid: np.ndarray, end: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        log = np.asarray(info["fills"])
        kept = np.minimum(np.asarray(info["n_fills"]), log.shape[1])
        env, slot = np.nonzero((np.arange(log.shape[1]) < kept[:, None]) & mask[:, None])
        rows = np.column_stack([env, log[env, slot][:, list(self._COLUMNS)]])
        rows[rows[:, 6] > 0, 7] = np.nan  # a taker order had no queue
        return rows


def step_info_adapter(info: dict[str, Any]) -> StepInfo:
    """The adapter for a market's step ``info``, recognized by its keys.

    :raises KeyError: naming the keys expected of each market when neither set is there.
    """
    for adapter in (LOBStepInfo(), AnalyticStepInfo()):
        if all(key in info for key in adapter.KEYS):
            return adapter
    raise KeyError(
        f"step info has keys {sorted(info)}; expected those of the analytic market "
        f"{list(AnalyticStepInfo.KEYS)} or of the order book {list(LOBStepInfo.KEYS)}"
    )


def _column(obs: dict[str, np.ndarray], key: str) -> np.ndarray:
    return np.asarray(obs[key], np.float64).reshape(-1)


def rollout(
    env: gymnasium.vector.VectorEnv,
    policy: Policy,
    seed: int,
    max_steps: int = 1_000_000,
    record_paths: bool = False,
    record_steps: bool = False,
) -> EpisodeBatch:
    """One episode in each of the ``env.num_envs`` markets, from ``env.reset(seed=seed)``.

    Markets whose episode ends early (kill switch) stop accumulating; the loop ends when
    every market has ended.

    :param env: a batched market (``next_step`` or ``same_step`` autoreset), analytic or
        order book.
    :param policy: the strategy.
    :param seed: seed of the reset (the common random numbers).
    :param max_steps: safety bound on the number of batched steps.
    :param record_paths: also keep the PnL and inventory path of every episode.
    :param record_steps: also keep the per-step :class:`StepRecord` (mid, PnL, inventory,
        every fill).
    """
    n = env.num_envs
    policy.reset()
    obs, _ = env.reset(seed=seed)
    alive = np.ones(n, np.bool_)
    reward = np.zeros(n)
    pnl = np.zeros(n)
    penalty = np.zeros(n)
    fills = np.zeros(n, np.int64)
    spread_sum = np.zeros(n)
    steps = np.zeros(n, np.int64)
    final_inventory = _column(obs, INVENTORY).copy()
    mid = _column(obs, MID).copy()
    start_time_left = _column(obs, TIME_LEFT).copy()
    elapsed = np.zeros(n)
    paths: dict[str, list[np.ndarray]] = {
        "time": [elapsed], "mid": [mid], "pnl": [pnl.copy()], "inventory": [final_inventory]
    }  # fmt: skip
    quotes: dict[str, list[np.ndarray]] = {"bid": [], "ask": []}
    fill_rows: list[np.ndarray] = []
    adapter: StepInfo | None = None
    for t in range(max_steps):
        action = policy.act(obs)
        obs, r, terminated, truncated, info = env.step(action)
        adapter = adapter or step_info_adapter(info)
        last_obs = info["final_obs"] if "final_obs" in info else obs
        bid, ask = adapter.quotes(info, mid)
        reward += np.where(alive, r, 0.0)
        pnl += np.where(alive, info["dpnl"], 0.0)
        penalty += np.where(alive, info["inventory_penalty"], 0.0)
        fills += np.where(alive, adapter.fill_count(info), 0)
        spread_sum += np.where(alive, ask - bid, 0.0)
        steps += alive
        end = np.where(alive, start_time_left - _column(last_obs, TIME_LEFT), elapsed)
        if record_steps:
            rows = adapter.fill_rows(info, mid, end, alive)
            fill_rows.append(np.insert(rows, 1, t, axis=1))
            quotes["bid"].append(np.where(alive, bid, np.nan))
            quotes["ask"].append(np.where(alive, ask, np.nan))
        final_inventory = np.where(alive, _column(last_obs, INVENTORY), final_inventory)
        mid = np.where(alive, _column(last_obs, MID), mid)
        elapsed = end
        if record_paths or record_steps:
            for key, value in (("time", elapsed), ("mid", mid), ("pnl", pnl.copy()),
                               ("inventory", final_inventory)):  # fmt: skip
                paths[key].append(value)
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    else:
        raise RuntimeError(f"episodes did not end within {max_steps} steps")
    arrays = {key: np.stack(values, 1) for key, values in paths.items()}
    record = None
    if record_steps:
        table = np.concatenate(fill_rows) if fill_rows else np.zeros((0, len(FILL_COLUMNS)))
        frame = pd.DataFrame(table, columns=list(FILL_COLUMNS))
        frame = frame.astype({"episode": np.int64, "step": np.int64})
        last = np.full((n, 1), np.nan)
        record = StepRecord(
            **arrays,
            bid=np.concatenate([np.stack(quotes["bid"], 1), last], 1),
            ask=np.concatenate([np.stack(quotes["ask"], 1), last], 1),
            fills=frame.sort_values(["episode", "step", "time"], kind="stable", ignore_index=True),
        )
    return EpisodeBatch(
        reward=reward,
        pnl=pnl,
        penalty=penalty,
        final_inventory=final_inventory,
        fills=fills,
        spread=spread_sum / np.maximum(steps, 1),
        steps=steps,
        paths={k: arrays[k] for k in ("pnl", "inventory")} if record_paths else {},
        record=record,
    )

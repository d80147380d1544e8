"""One registry of the exchange layer's named models, and the packing of their parameters.

docs/exchange.md#adding-a-model. Configs select a model by name; an unknown name is an error
that lists the registered ones (:func:`check_name`). Every kernel reads the code and parameters
that :func:`pack_exchange` writes into the ``X_*`` entries of the market's parameter vector.

- queue models (docs/exchange.md#queue-models): ``risk_averse``, ``prob``, ``prob_log``,
  ``exact`` and, in the simulated book, ``uniform``; the rule is :mod:`envs.exchange.queue`;
- latency models (docs/exchange.md#latency-models): ``constant``, ``exponential``,
  ``recorded`` (:mod:`envs.exchange.latency`);
- fee schedules (docs/exchange.md#fee-schedules): maker and taker fees in bps of notional
  (negative = rebate), set directly or from a preset of :data:`FEE_PRESETS`;
- risk controls (docs/exchange.md#risk-controls): the inventory cap and the drawdown kill switch.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.exchange.latency import LATENCY_CONSTANT, LATENCY_EXPONENTIAL, LATENCY_RECORDED
from envs.exchange.layout import (
    N_XPARAMS,
    X_ALPHA,
    X_DEPTH_MIN,
    X_DT,
    X_ENTRY_LAT,
    X_FEED_LAT,
    X_HALF_WIDTH,
    X_LAT_N,
    X_LAT_RANDOM,
    X_LAT_SERIES,
    X_LATENCY,
    X_LEVELS,
    X_LIQUIDATE,
    X_LOT,
    X_MAKER_BPS,
    X_MAX_DD,
    X_N_STEPS,
    X_ORDER_SIZE,
    X_PHI,
    X_Q_MAX,
    X_QUEUE,
    X_QUEUE_POWER,
    X_QUEUE_TABLE,
    X_QUEUE_TABLE_N,
    X_RESP_LAT,
    X_T,
    X_TAKER_BPS,
    X_TICK,
)
from envs.exchange.queue import (
    QUEUE_EXACT,
    QUEUE_PROB,
    QUEUE_PROB_LOG,
    QUEUE_RISK_AVERSE,
    QUEUE_TABLE,
)


@dataclass(frozen=True)
class NamedModel:
    """A model the configs select by name.

    :param name: the config value.
    :param code: what the kernels read (``X_QUEUE`` or ``X_LATENCY``).
    :param description: one line for error messages and the docs.
    :param markets: the market kinds it applies to.
    :param needs_order_ids: it needs an L3 feed (order ids).
    :param weight: a queue model given by its weight ``f(lots)`` (vectorized over a numpy
        array; code ``QUEUE_TABLE``): a decrease is ahead with probability
        ``f(ahead) / (f(ahead) + f(behind))``, ``f`` tabulated on ``0 .. table_size - 1``.
    :param table_size: lots covered by the table; a longer queue takes ``f(table_size - 1)``.
    """

    name: str
    code: int
    description: str
    markets: frozenset[str] = frozenset({"lob", "replay"})
    needs_order_ids: bool = False
    weight: Callable[[np.ndarray], np.ndarray] | None = None
    table_size: int = 4096


QUEUE_MODELS: dict[str, NamedModel] = {}
LATENCY_MODELS: dict[str, NamedModel] = {}


def register(registry: dict[str, NamedModel], model: NamedModel) -> NamedModel:
    """Add ``model`` to ``registry`` (a name is registered once)."""
    if model.name in registry:
        raise ValueError(f"model {model.name!r} is already registered")
    if model.weight is not None and model.code != QUEUE_TABLE:
        raise ValueError(f"queue model {model.name!r} has a weight: its code must be QUEUE_TABLE")
    registry[model.name] = model
    return model


def unregister(registry: dict[str, NamedModel], name: str) -> None:
    """Remove ``name`` from ``registry`` (tests that register a toy model clean up with it)."""
    del registry[name]


def check_name(registry: dict[str, NamedModel], kind: str, name: str, market: str) -> str:
    """``name`` when it is a registered model of ``kind`` for ``market``.

    :raises ValueError: listing the registered names for that market.
    """
    model = registry.get(name)
    if model is None or market not in model.markets:
        known = sorted(n for n, mdl in registry.items() if market in mdl.markets)
        raise ValueError(f"unknown {kind} {name!r} for the {market} market; registered: {known}")
    return name


# ---- queue models (docs/exchange.md#queue-models)
register(QUEUE_MODELS, NamedModel("risk_averse", QUEUE_RISK_AVERSE,
                                  "only trades advance the agent"))  # fmt: skip
register(QUEUE_MODELS, NamedModel("prob", QUEUE_PROB,
                                  "a decrease is ahead with probability f(a)/(f(a)+f(b)), "
                                  "f(x) = x^queue_power"))  # fmt: skip
register(QUEUE_MODELS, NamedModel("prob_log", QUEUE_PROB_LOG, "as prob with f(x) = log(1+x)"))
register(QUEUE_MODELS, NamedModel("exact", QUEUE_EXACT,
                                  "order ids (L3) say which orders were ahead; in the simulated "
                                  "book the uniform pick, its exact law"))  # fmt: skip
register(QUEUE_MODELS, NamedModel("uniform", QUEUE_EXACT,
                                  "the cancelled lot is a uniform pick over the queue",
                                  markets=frozenset({"lob"})))  # fmt: skip

# ---- latency models (docs/exchange.md#latency-models)
register(LATENCY_MODELS, NamedModel("constant", LATENCY_CONSTANT, "the configured values"))
register(LATENCY_MODELS, NamedModel("exponential", LATENCY_EXPONENTIAL,
                                    "exponential draws with the configured means"))  # fmt: skip
register(LATENCY_MODELS, NamedModel("recorded", LATENCY_RECORDED,
                                    "entry latencies from a recorded series "
                                    "(latency_series), in order or at random"))  # fmt: skip


# ---- fee schedules (docs/exchange.md#fee-schedules)
@dataclass(frozen=True)
class FeeSchedule:
    """Maker and taker fees in bps of notional (negative = rebate).

    :param source: where the numbers come from; presets are starting points that a config
        overrides with ``maker_fee_bps`` / ``taker_fee_bps``, not the venue's current prices.
    """

    name: str
    maker_bps: float
    taker_bps: float
    source: str


FEE_PRESETS: dict[str, FeeSchedule] = {
    f.name: f
    for f in (
        FeeSchedule("zero", 0.0, 0.0, "no fees"),
        FeeSchedule(
            "nasdaq_rebate", -0.2, 0.3,
            "preset: NASDAQ-style maker rebate $0.0020 and taker fee $0.0030 per share, in bps "
            "of a $100 share",
        ),
        FeeSchedule("binance_spot_vip0", 10.0, 10.0, "preset: Binance spot VIP 0, 0.10%/0.10%"),
        FeeSchedule("binance_spot_vip1", 9.0, 10.0, "preset: Binance spot VIP 1, 0.09%/0.10%"),
        FeeSchedule("binance_usdm_vip0", 2.0, 5.0, "preset: Binance USD-M VIP 0, 0.02%/0.05%"),
        FeeSchedule("binance_usdm_vip1", 1.6, 4.0, "preset: Binance USD-M VIP 1, 0.016%/0.04%"),
    )
}  # fmt: skip


def fee_preset(name: str) -> FeeSchedule:
    """The preset ``name``.

    :raises ValueError: listing the presets.
    """
    if name not in FEE_PRESETS:
        raise ValueError(f"unknown fee_schedule {name!r}; presets: {sorted(FEE_PRESETS)}")
    return FEE_PRESETS[name]


# ---- risk controls (docs/exchange.md#risk-controls)
RISK_CONTROLS = {
    "inventory_cap": "q_max: a quote that could take |inventory| beyond it is not sent",
    "drawdown_kill_switch": "max_drawdown: the episode ends (and liquidates) when the value falls "
    "this far below its running maximum",
}
"""The risk controls every market with a book applies, by name, with their config fields."""


def load_latency_series(path: str | Path) -> np.ndarray:
    """A recorded latency series (time units, one value per row): ``.npy`` or a CSV/text file
    of numbers (the first column; a header row is skipped).

    :raises ValueError: an empty series, or a negative or non-finite value (named).
    """
    path = Path(path)
    if path.suffix == ".npy":
        values = np.asarray(np.load(path), np.float64).ravel()
    else:
        rows = []
        with path.open(newline="") as fh:
            for k, row in enumerate(csv.reader(fh)):
                if not row or not row[0].strip():
                    continue
                try:
                    rows.append(float(row[0]))
                except ValueError:
                    if k == 0:
                        continue  # header
                    raise ValueError(f"{path}: row {k + 1} is not a number: {row[0]!r}") from None
        values = np.asarray(rows, np.float64)
    if values.size == 0:
        raise ValueError(f"{path}: the latency series is empty")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"{path}: latency {values[k]} at row {k} is not a finite value >= 0")
    return values


def pack_exchange(
    p: np.ndarray,
    config: Any,
    dt: float,
    n_steps: int,
    T: float,
    levels: int,
    tick: float,
    lot: float,
) -> np.ndarray:
    """Write the exchange's entries (``X_*``) of a market's parameter vector ``p`` (its first
    ``N_XPARAMS``) from an :class:`envs.agent_orders.AgentOrdersConfig`; a recorded latency
    series is appended (the returned vector is then longer than ``p``).

    :param dt, n_steps, T: decision interval, decisions per episode, horizon (time units).
    :param levels: levels per side in the observation. :param tick, lot: currency units.
    """
    c = config
    assert p.size >= N_XPARAMS
    p[X_TICK], p[X_LOT] = tick, lot
    p[X_MAKER_BPS], p[X_TAKER_BPS] = c.maker_fee_bps, c.taker_fee_bps
    queue = QUEUE_MODELS[c.queue_model]
    p[X_QUEUE], p[X_QUEUE_POWER] = queue.code, c.queue_power
    p[X_DEPTH_MIN] = c.depth_min
    p[X_HALF_WIDTH] = 0.5 * (c.depth_max - c.depth_min)
    p[X_DT], p[X_N_STEPS], p[X_T] = dt, n_steps, T
    p[X_Q_MAX], p[X_PHI], p[X_ALPHA] = c.q_max, c.phi, c.alpha
    p[X_MAX_DD] = c.max_drawdown or 0.0
    p[X_ORDER_SIZE] = c.order_size
    p[X_ENTRY_LAT] = c.entry_latency
    p[X_LATENCY] = LATENCY_MODELS[c.latency_distribution].code
    p[X_FEED_LAT], p[X_RESP_LAT] = c.feed_latency, c.response_latency
    p[X_LIQUIDATE] = c.terminal == "liquidate"
    p[X_LEVELS] = levels
    if c.latency_distribution == "recorded":
        series = load_latency_series(c.latency_series)
        p[X_LAT_SERIES], p[X_LAT_N] = p.size, series.size
        p[X_LAT_RANDOM] = c.latency_sampling == "random"
        p = np.concatenate([p, series])
    if queue.weight is not None:
        table = np.asarray(queue.weight(np.arange(queue.table_size, dtype=np.float64)), np.float64)
        if table.shape != (queue.table_size,) or not np.all(np.isfinite(table) & (table >= 0)):
            raise ValueError(f"queue model {queue.name!r}: its weight must give finite values "
                             f">= 0 on 0 .. {queue.table_size - 1} lots")  # fmt: skip
        p[X_QUEUE_TABLE], p[X_QUEUE_TABLE_N] = p.size, queue.table_size
        p = np.concatenate([p, table])
    return p

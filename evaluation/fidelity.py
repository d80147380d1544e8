"""Strategy fidelity: does a strategy earn in the calibrated market what it earns in the replay?

Each policy runs (a) in the replay of the recorded day (:mod:`envs.replay`, consecutive windows
through the backtest helpers of :mod:`experiments.backtest`) and (b) in the order-book market
calibrated on that day (``MarketParams``), with the same decision interval, window length,
latency, fees, quote range, inventory bound and order size. Per window (replay) or episode
(simulation), :func:`episode_row` measures:

- ``pnl_per_hour``: the episode's PnL (currency, fees and terminal liquidation included) / its
  length in hours;
- ``fill_rate``: quoted intervals with at least one passive fill
  (:func:`evaluation.metrics.fill_rate`);
- ``markout_<h>s_bps``: size-weighted mark-outs of the fills at ``h`` seconds, bps of the fill
  price, positive a gain for the agent (the realized spread of Huang & Stoll 1996;
  :func:`evaluation.metrics.markouts`);
- ``inventory_std``: standard deviation of the inventory over the decisions, in quotes
  (calibration lots);
- ``maker_volume_per_hour``: passively filled size per hour, in quotes (a partly filled quote
  counts its part; the fill rate counts any fill), and ``fills_per_hour`` (fill events).

The mean and Student-t interval across windows / episodes (:func:`evaluation.stats.mean_ci`)
summarize each market, and :func:`fidelity_verdicts` compares them:

- P&L per hour: the simulated mean inside the replay's interval, or within ``pnl_tolerance``
  (30%) of the replay mean when that interval is narrower than that;
- fill rate within ``fill_tolerance`` (25%) of the replay's (relative);
- mark-outs of the same sign at every horizon.

Units. The simulated market counts sizes in calibration lots (``MarketParams.lot_size`` base
units, GOOG: 100 shares), the replay in the feed's lots (LOBSTER: one share). One quote is
``order_size`` calibration lots in both: the replay's quotes are ``order_size x lot_ratio`` feed
lots (``lot_ratio = MarketParams.lot_size / feed lot``, GOOG 100) and its inventory bound is
scaled alike. The policies are built once, from the simulated market (model parameters in ticks
and calibration lots), and see the replay's inventory divided by ``lot_ratio``
(:class:`LotScaledPolicy`), so the same state gives the same quotes in both markets. Prices are
ticks, PnL currency in both; the simulated book starts at the data's median price (ticks), so
fees and mark-outs in bps are on the same notional.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from agents.base import ObservationBatch, Policy
from agents.factory import make_policy
from calibration.params import MarketParams
from configs.schema import (
    AvellanedaStoikovConfig,
    ExperimentConfig,
    FixedSpreadConfig,
    GLFTConfig,
    LOBMarketConfig,
    PolicyConfig,
    ReplayMarket,
    policy_label,
)
from envs.layout import INVENTORY
from evaluation.metrics import compute_metrics
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.session import session_record
from evaluation.stats import mean_ci

PASS = "pass"
FAIL = "fail"
UNMEASURED = "not measured"

NASDAQ_TAKE_PER_SHARE = 0.0030
NASDAQ_MAKE_PER_SHARE = -0.0020
"""NASDAQ's 2012 standard schedule (USD per share; negative: a rebate), as in
``configs/replay_goog.yaml``; converted to bps at the data's price for LOBSTER days."""

BINANCE_SPOT_BPS = 10.0
"""Binance spot regular tier (VIP 0, no BNB discount), maker and taker, bps (as in
``configs/replay_nexo.yaml``)."""

METRICS: dict[str, str] = {
    "pnl_per_hour": "P&L / h",
    "fill_rate": "fill rate",
    "markout_1s_bps": "mark-out 1 s (bps)",
    "markout_10s_bps": "mark-out 10 s (bps)",
    "markout_60s_bps": "mark-out 60 s (bps)",
    "inventory_std": "std q (quotes)",
    "maker_volume_per_hour": "filled quotes / h",
}
"""Per-episode metrics of the fidelity table, by key, with their column titles."""


def default_policies() -> list[PolicyConfig]:
    """GLFT, Avellaneda-Stoikov and the fixed spread with the parameters of
    ``configs/goog_sac.yaml`` (gamma per tick; half-spread and skew in ticks, per quote)."""
    return [
        GLFTConfig(kind="glft", gamma=0.01),
        AvellanedaStoikovConfig(kind="avellaneda_stoikov", gamma=0.001),
        FixedSpreadConfig(kind="fixed_spread", half_spread=1.0, skew=0.5),
    ]


class FidelityConfig(BaseModel):
    """The strategy-fidelity run: one setting per number both markets share."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    enabled: bool = Field(True, description="Run the strategy fidelity (False: facts only).")
    dt: float = Field(1.0, gt=0, description="Decision interval (s), both markets.")
    window_s: float = Field(
        1800.0, gt=0, description="Length of a replay window and of a simulated episode (s)."
    )
    windows: int | None = Field(
        None, ge=2, description="Replay windows from the first event (None: as many as fit)."
    )
    n_episodes: int = Field(64, ge=2, description="Simulated episodes (common random numbers).")
    order_size: int = Field(1, ge=1, description="Quote size in calibration lots, both markets.")
    q_max: int = Field(10, ge=1, description="Inventory bound in calibration lots, both markets.")
    depth_min: float = Field(0.0, description="Quote depth at action -1 (ticks), both markets.")
    depth_max: float | None = Field(
        None, description="Quote depth at action +1 (ticks); None: the market's n_levels - 1."
    )
    entry_latency: float = Field(0.0, ge=0, description="Decision to live orders (s).")
    maker_fee_bps: float | None = Field(
        None, description="Passive fee, bps (None: NASDAQ 2012 for LOBSTER, 10 for Binance)."
    )
    taker_fee_bps: float | None = Field(
        None, description="Aggressive fee, bps (None: NASDAQ 2012 for LOBSTER, 10 for Binance)."
    )
    replay_queue_model: Literal["exact", "risk_averse", "prob", "prob_log"] | None = Field(
        None, description="Replay queue model (None: exact with order ids, else prob)."
    )
    queue_power: float = Field(2.0, gt=0, description="Exponent of the prob queue model.")
    terminal: Literal["liquidate", "mark"] = Field(
        "liquidate", description="Inventory at the end of a window / episode."
    )
    policies: list[PolicyConfig] = Field(
        default_factory=default_policies, description="The strategies compared."
    )
    markout_horizons: list[float] = Field(
        default_factory=lambda: [1.0, 10.0, 60.0], description="Mark-out horizons (s)."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the intervals.")
    pnl_tolerance: float = Field(0.30, gt=0, description="Relative P&L band when the CI is narrow.")
    fill_tolerance: float = Field(0.25, gt=0, description="Relative fill-rate tolerance.")

    @property
    def n_steps(self) -> int:
        return max(1, round(self.window_s / self.dt))


@dataclass(frozen=True)
class Dataset:
    """The recorded day the replay reads: files, format, and what the fidelity run needs of it.

    :param paths: the data files (LOBSTER message file; or every file of a Binance capture).
    :param fmt: ``lobster`` or ``binance``; ``binance_market``: ``spot`` or ``usdm``.
    :param price_ticks: the day's median mid (ticks): the simulated book's starting price.
    :param tick_size: currency per tick; ``levels``: book levels replayed (<= 10).
    """

    paths: tuple[Path, ...]
    fmt: Literal["lobster", "binance"]
    binance_market: Literal["spot", "usdm"]
    price_ticks: float
    tick_size: float
    levels: int = 10

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], book: pd.DataFrame, tick_size: float
                   ) -> Dataset:  # fmt: skip
        """From the files given to ``--data`` and the loaded canonical book (prices in ticks)."""
        ps = tuple(Path(p).resolve() for p in paths)
        name = ps[0].name
        fmt: Literal["lobster", "binance"] = (
            "lobster" if ("_message_" in name or "_orderbook_" in name) else "binance"
        )
        market: Literal["spot", "usdm"] = "usdm" if name.startswith("usdm") else "spot"
        mid = 0.5 * (book["bid_px_1"].to_numpy(np.float64) + book["ask_px_1"].to_numpy(np.float64))
        levels = sum(1 for c in book.columns if c.startswith("bid_px_"))
        return cls(ps, fmt, market, float(np.nanmedian(mid)), tick_size, min(10, levels))


def fees_bps(cfg: FidelityConfig, data: Dataset) -> tuple[float, float]:
    """``(maker, taker)`` fees in bps of notional: the config's, else the venue's schedule
    (LOBSTER: NASDAQ 2012 per share at the day's median price; Binance spot: 10 bps)."""
    if data.fmt == "lobster":
        price = data.price_ticks * data.tick_size
        maker, taker = NASDAQ_MAKE_PER_SHARE / price * 1e4, NASDAQ_TAKE_PER_SHARE / price * 1e4
    else:
        maker = taker = BINANCE_SPOT_BPS
    return (
        maker if cfg.maker_fee_bps is None else cfg.maker_fee_bps,
        taker if cfg.taker_fee_bps is None else cfg.taker_fee_bps,
    )


def lot_ratio(params: MarketParams, feed_lot: float) -> int:
    """Feed lots per calibration lot (GOOG: 100 shares / 1 share).

    :raises ValueError: when it is not a whole number (one quote could not be the same size in
        both markets).
    """
    r = params.lot_size / feed_lot
    if not r >= 1 or abs(r - round(r)) > 1e-6 * r:
        raise ValueError(
            f"market lot_size ({params.lot_size:g}) is not a whole number of the feed's lots "
            f"({feed_lot:g}): a quote cannot be the same size in both markets"
        )
    return round(r)


def markets(
    cfg: FidelityConfig, params: MarketParams, data: Dataset, feed_lot: float
) -> tuple[LOBMarketConfig, ReplayMarket, int]:
    """The simulated and the replayed market of the comparison, and the lot ratio."""
    ratio = lot_ratio(params, feed_lot)
    maker, taker = fees_bps(cfg, data)
    depth_max = params.n_levels - 1 if cfg.depth_max is None else cfg.depth_max
    shared = dict(
        depth_min=cfg.depth_min,
        depth_max=depth_max,
        maker_fee_bps=maker,
        taker_fee_bps=taker,
        entry_latency=cfg.entry_latency,
        terminal=cfg.terminal,
        phi=0.0,
        alpha=0.0,
        q0=0,
    )
    sim = LOBMarketConfig(
        market=params,
        T=cfg.n_steps * cfg.dt,
        n_steps=cfg.n_steps,
        initial_price=max(100, math.floor(data.price_ticks - 0.5)),
        order_size=cfg.order_size,
        q_max=cfg.q_max,
        queue_model="exact",
        **shared,
    )
    queue = cfg.replay_queue_model or ("exact" if data.fmt == "lobster" else "prob")
    replay = ReplayMarket(
        path=str(data.paths[0]),
        extra_paths=[str(p) for p in data.paths[1:]],
        format=data.fmt,
        binance_market=data.binance_market,
        market_params=params,
        levels=data.levels,
        start=0.0,
        dt=cfg.dt,
        n_steps=cfg.n_steps,
        order_size=cfg.order_size * ratio,
        q_max=cfg.q_max * ratio,
        queue_model=queue,
        queue_power=cfg.queue_power,
        **shared,
    )
    return sim, replay, ratio


class LotScaledPolicy(Policy):
    """A policy built for calibration lots, acting in a market that counts feed lots: it sees
    the inventory divided by ``ratio`` (feed lots per calibration lot), everything else as is."""

    def __init__(self, policy: Policy, ratio: int) -> None:
        self.policy = policy
        self.ratio = ratio
        self.name = policy.name

    def act(self, observation: ObservationBatch) -> np.ndarray:
        obs = dict(observation)
        obs[INVENTORY] = np.asarray(observation[INVENTORY], np.float64) / self.ratio
        return self.policy.act(obs)

    def reset(self) -> None:
        self.policy.reset()


# ------------------------------------------------------------------------------ metrics
def episode_row(
    batch: EpisodeBatch,
    i: int,
    start: float,
    dt: float,
    currency_per_tick: float,
    lots_per_quote: float,
    horizons: Sequence[float],
) -> dict[str, float]:
    """:data:`METRICS` of episode ``i`` (starting at ``start`` s on the market's clock).

    :param currency_per_tick: currency of one tick on one of the market's lots.
    :param lots_per_quote: the market's lots per calibration lot (1 simulated, the lot ratio
        replayed): the inventory is reported in calibration lots.
    """
    one = batch.episode(i)
    record = session_record(one, np.array([start]), dt, currency_per_tick)
    m = compute_metrics(record, 1.0, "equities", list(horizons))
    hours = float(batch.steps[i]) * dt / 3600.0
    out = {
        "pnl_per_hour": float(batch.pnl[i]) / hours,
        "fill_rate": float(m["fill_rate"]),
        "inventory_std": float(np.std(record.inventory / lots_per_quote)),
        "maker_volume_per_hour": float(
            record.fills.size[~record.fills.taker].sum() / lots_per_quote / hours
        ),
        "fills_per_hour": float(m["fills_per_hour"]),
    }
    for h in horizons:
        out[f"markout_{h:g}s_bps"] = float(m[f"markout_{h:g}s_bps"])
    return out


def summarize(frame: pd.DataFrame, confidence: float) -> dict[str, float]:
    """Mean, Student-t interval and count of each column across episodes (NaN left out)."""
    out: dict[str, float] = {}
    for k in frame.columns:
        x = frame[k].to_numpy(np.float64)
        x = x[np.isfinite(x)]
        if x.size >= 2:
            ci = mean_ci(x, confidence)
            out |= {f"{k}_mean": ci.mean, f"{k}_low": ci.low, f"{k}_high": ci.high}
        else:
            mean = float(x[0]) if x.size else math.nan
            out |= {f"{k}_mean": mean, f"{k}_low": math.nan, f"{k}_high": math.nan}
        out[f"{k}_n"] = float(x.size)
    return out


@dataclass
class FidelityRun:
    """Both markets' per-episode metrics (``episodes``: one row per market, policy, episode),
    their summary (``summary``: one row per market and policy), the verdicts, and timings."""

    episodes: pd.DataFrame
    summary: pd.DataFrame
    verdicts: pd.DataFrame
    sim: LOBMarketConfig
    replay: ReplayMarket
    ratio: int
    n_windows: int
    n_episodes: int
    seconds: dict[str, float]


def run_fidelity(
    cfg: FidelityConfig,
    params: MarketParams,
    data: Dataset,
    seed: int,
    progress: bool = False,
) -> FidelityRun:
    """Run every policy of ``cfg`` in the replay's windows and in ``cfg.n_episodes`` simulated
    episodes (seed ``seed``, common random numbers across policies), and compare them."""
    from envs.replay.env import ReplayMarketVectorEnv
    from envs.replay.tape import load_tape
    from experiments.backtest import replay_policy
    from experiments.config import make_vector_env

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    tape = load_tape(list(data.paths), data.fmt, data.binance_market, None, data.levels)
    sim, replay, ratio = markets(cfg, params, data, tape.spec.lot_size)
    n_fit = math.floor(tape.duration / replay.T + 1e-9)
    n_windows = min(cfg.windows or n_fit, n_fit)
    if n_windows < 2:
        raise ValueError(
            f"fidelity.window_s: {n_windows} window(s) of {replay.T:g} s fit in the "
            f"{tape.duration:.0f} s of data; at least 2 are needed for an interval"
        )
    starts = replay.T * np.arange(n_windows)
    sim_env = make_vector_env(sim, cfg.n_episodes)
    rep_env = make_vector_env(replay, n_windows)
    assert isinstance(rep_env, ReplayMarketVectorEnv)
    seconds["setup"] = time.perf_counter() - t0
    # the backtest helper reads only the market of an experiment config
    rcfg = ExperimentConfig.model_construct(name="fidelity", market=replay)
    rows = []
    sim_cpt = params.tick_size * params.lot_size
    rep_cpt = tape.spec.tick_size * tape.spec.lot_size
    for pc in cfg.policies:
        label = policy_label(pc)
        policy = make_policy(pc, sim, sim_env.action_map)
        t0 = time.perf_counter()
        batch = rollout(sim_env, policy, seed, record_steps=True)
        for i in range(cfg.n_episodes):
            row = episode_row(batch, i, 0.0, sim.dt, sim_cpt, 1.0, cfg.markout_horizons)
            rows.append({"market": "simulated", "policy": label, "episode": i, **row})
        seconds[f"simulated/{label}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        scaled = LotScaledPolicy(make_policy(pc, sim, rep_env.action_map), ratio)
        r = replay_policy(rep_env, scaled, starts, seed, rcfg, tape)
        for i, start in enumerate(starts):
            row = episode_row(r.batch, i, float(start), replay.dt, rep_cpt, float(ratio),
                              cfg.markout_horizons)  # fmt: skip
            rows.append({"market": "replay", "policy": label, "episode": i, **row})
        seconds[f"replay/{label}"] = time.perf_counter() - t0
    episodes = pd.DataFrame(rows)
    summary_rows = []
    for (market, label), g in episodes.groupby(["market", "policy"], sort=False):
        cols = g.drop(columns=["market", "policy", "episode"])
        summary_rows.append({"market": market, "policy": label,
                             **summarize(cols, cfg.confidence)})  # fmt: skip
    summary = pd.DataFrame(summary_rows)
    verdicts = fidelity_verdicts(summary, cfg.markout_horizons, cfg.pnl_tolerance,
                                 cfg.fill_tolerance)  # fmt: skip
    return FidelityRun(episodes, summary, verdicts, sim, replay, ratio, n_windows,
                       cfg.n_episodes, seconds)  # fmt: skip


# ------------------------------------------------------------------------------ verdicts
def pnl_verdict(
    sim: float, replay: float, low: float, high: float, tolerance: float = 0.30
) -> tuple[str, str]:
    """Simulated P&L per hour against the replay's mean and interval ``[low, high]``: pass
    inside the interval, or, when the interval is narrower than ``replay +- tolerance |replay|``,
    within that band. Returns the verdict and, on a fail, by how much."""
    if not (np.isfinite(sim) and np.isfinite(replay) and np.isfinite(low) and np.isfinite(high)):
        return UNMEASURED, ""
    if low <= sim <= high:
        return PASS, ""
    band = tolerance * abs(replay)
    narrow = (high - low) / 2.0 < band
    if narrow and abs(sim - replay) <= band:
        return PASS, ""
    lo, hi = (min(low, replay - band), max(high, replay + band)) if narrow else (low, high)
    miss = sim - hi if sim > hi else sim - lo
    return FAIL, f"sim {sim:.4g} outside [{lo:.4g}, {hi:.4g}] by {miss:+.4g}"


def fill_verdict(sim: float, replay: float, tolerance: float = 0.25) -> tuple[str, str]:
    """Fill rates: pass when ``|sim / replay - 1| <= tolerance``."""
    if not (np.isfinite(sim) and np.isfinite(replay)) or replay <= 0:
        return UNMEASURED, ""
    rel = sim / replay - 1.0
    if abs(rel) <= tolerance + 1e-12:
        return PASS, ""
    return FAIL, f"sim/replay = {sim / replay:.3g} ({rel:+.0%}, tolerance {tolerance:.0%})"


def markout_verdict(
    sim: Sequence[float], replay: Sequence[float], horizons: Sequence[float] | None = None
) -> tuple[str, str]:
    """Mark-outs: pass when every horizon's simulated and replayed means have the same sign
    (a zero or missing one is not measured); the gap names the horizons (s) that differ."""
    s, r = np.asarray(sim, np.float64), np.asarray(replay, np.float64)
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(r))) or np.any(s * r == 0):
        return UNMEASURED, ""
    if np.all(np.sign(s) == np.sign(r)):
        return PASS, ""
    h = list(horizons) if horizons is not None else list(range(1, s.size + 1))
    bad = np.flatnonzero(np.sign(s) != np.sign(r))
    return FAIL, "opposite sign at " + ", ".join(f"{h[b]:g} s" for b in bad)


def fidelity_verdicts(
    summary: pd.DataFrame,
    horizons: Sequence[float],
    pnl_tolerance: float = 0.30,
    fill_tolerance: float = 0.25,
) -> pd.DataFrame:
    """One row per policy: the three verdicts, their gaps, and ``verdict`` (pass when all
    pass; not measured when one is)."""
    rows = []
    for label in dict.fromkeys(summary["policy"]):
        s = summary[(summary["policy"] == label) & (summary["market"] == "simulated")]
        r = summary[(summary["policy"] == label) & (summary["market"] == "replay")]
        if s.empty or r.empty:
            continue
        s, r = s.iloc[0], r.iloc[0]
        pnl = pnl_verdict(s["pnl_per_hour_mean"], r["pnl_per_hour_mean"],
                          r["pnl_per_hour_low"], r["pnl_per_hour_high"], pnl_tolerance)  # fmt: skip
        fill = fill_verdict(s["fill_rate_mean"], r["fill_rate_mean"], fill_tolerance)
        keys = [f"markout_{h:g}s_bps_mean" for h in horizons]
        mark = markout_verdict([s[k] for k in keys], [r[k] for k in keys], horizons)
        verdicts = [pnl[0], fill[0], mark[0]]
        overall = FAIL if FAIL in verdicts else (UNMEASURED if UNMEASURED in verdicts else PASS)
        rows.append({"policy": label, "pnl": pnl[0], "pnl_gap": pnl[1], "fill_rate": fill[0],
                     "fill_gap": fill[1], "markouts": mark[0], "markout_gap": mark[1],
                     "verdict": overall})  # fmt: skip
    return pd.DataFrame(rows)


def fidelity_table(run: FidelityRun) -> pd.DataFrame:
    """The summary, replay beside simulation per policy: ``mean [low, high]`` cells."""
    rows = []
    for _, row in run.summary.iterrows():
        cells = {"policy": row["policy"], "market": row["market"]}
        for k, title in METRICS.items():
            mean, low, high = row[f"{k}_mean"], row[f"{k}_low"], row[f"{k}_high"]
            cells[title] = (
                "n/a"
                if not np.isfinite(mean)
                else (f"{mean:.3g} [{low:.3g}, {high:.3g}]" if np.isfinite(low) else f"{mean:.3g}")
            )
        rows.append(cells)
    frame = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(dict.fromkeys(frame["policy"]))}
    key = frame["policy"].map(order) * 2 + (frame["market"] == "simulated")
    return frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def fidelity_metrics(run: FidelityRun, prefix: str = "fidelity") -> dict[str, float]:
    """``<prefix>/<market>/<policy>/<metric>_{mean,low,high}`` and
    ``<prefix>/<policy>/pass`` (1 or 0) as metrics."""
    out: dict[str, float] = {}
    for _, row in run.summary.iterrows():
        for c in run.summary.columns:
            if c in ("market", "policy"):
                continue
            v = float(row[c])
            if np.isfinite(v):
                out[f"{prefix}/{row['market']}/{row['policy']}/{c}"] = v
    for _, row in run.verdicts.iterrows():
        out[f"{prefix}/{row['policy']}/pass"] = float(row["verdict"] == PASS)
    return out

"""The platform's results table: SAC against the baselines, simulated and replayed.

    python -m experiments.results --run-id SAC_RUN
    python -m experiments.results --set evaluation.n_paths=20 --replay-set backtest.windows=2

Reads top to bottom: configs, tracking preflight, policies, the two markets, per-episode metrics,
table, files, logging. Every policy of ``--config`` (default ``configs/goog_sac.yaml``; the SAC
policy of ``--run-id`` joins them) runs in

1. **simulated**: the config's market (the order book calibrated on the GOOG day),
   ``evaluation.n_paths`` episodes on common random numbers; each metric is computed per
   episode and reported as its mean and Student-t interval across the episodes;
2. **replay**: the recorded day of ``--replay-config`` (default ``configs/replay_goog.yaml``),
   its ``backtest.windows`` consecutive windows; each metric per window, mean and interval
   across the windows (so few windows give wide intervals). The replay keeps its own market
   but takes the quote range (``depth_min``, ``depth_max``) of ``--config``, so that every
   policy's actions, SAC's included, mean the same depths in both markets.

Per episode or window (:func:`evaluation.metrics.compute_metrics`, prices in currency: ticks x
tick size x lot size; returns dPnL / ``backtest.capital`` of each market's config, per
decision): annualized Sharpe and Sortino (``backtest.calendar``), maximum drawdown (currency),
99% expected shortfall of the per-decision returns (bps of capital), fill rate (quoted
intervals with a passive fill) and realized spread (mark-out at the largest
``backtest.markout_horizons``, bps). An episode whose metric is undefined (no fill for the
realized spread, no loss for the Sortino ratio) is left out of that metric's mean; the ``n``
columns of the CSV count the rest.

Writes ``<out>/results_table.md`` (markdown for the README) and ``<out>/results.csv``, and logs
both with the metrics (``results/<market>/<policy>/<metric>_{mean,low,high}``) to MLflow.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from agents.base import Policy
from configs.schema import ExperimentConfig, LOBMarketConfig, ReplayMarket, policy_label
from envs.replay.env import ReplayMarketVectorEnv
from envs.replay.tape import load_tape
from evaluation.metrics import compute_metrics
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.session import session_record
from evaluation.stats import mean_ci
from experiments.backtest import build_policy, replay_policy, window_starts
from experiments.config import (
    ConfigError,
    add_config_arguments,
    check_replay_data,
    job_tracker,
    load_config,
    make_vector_env,
    print_ui_command,
    to_yaml,
)
from experiments.evaluate import build_policies
from experiments.sac_model import load_sac_policy
from experiments.seeding import seed_everything, stream_seed
from tracking import TrackingError

DEFAULT_CONFIG = "configs/goog_sac.yaml"
DEFAULT_REPLAY = "configs/replay_goog.yaml"
DEFAULT_OUT = Path("outputs") / "results"

METRICS = {
    "sharpe": "Sharpe (ann.)",
    "sortino": "Sortino (ann.)",
    "max_drawdown": "max DD ($)",
    "es99": "ES 99% (bps C)",
    "fill_rate": "fill rate",
    "realized_spread_bps": "real. spread (bps)",
}
"""Columns of the table, by key of :func:`evaluation.metrics.compute_metrics`."""
SCALE = {"es99": 1e4}
"""Display scale of a metric (ES of returns in bps of the capital)."""
TABLE_COLUMNS = (
    "market",
    "policy",
    *(f"{k}_{s}" for k in METRICS for s in ("mean", "low", "high")),
)
"""Leading columns of ``results.csv`` (then the ``n_<metric>`` counts)."""


def per_episode_metrics(
    batch: EpisodeBatch,
    starts: np.ndarray,
    dt: float,
    currency_per_tick: float,
    cfg: ExperimentConfig,
) -> pd.DataFrame:
    """:data:`METRICS` of each episode (row ``i``: the episode starting at ``starts[i]``)."""
    bt = cfg.backtest
    rows = []
    for i, start in enumerate(starts):
        record = session_record(batch.episode(i), np.array([start]), dt, currency_per_tick)
        m = compute_metrics(record, bt.capital, bt.calendar, bt.markout_horizons)
        rows.append({k: m[k] * SCALE.get(k, 1.0) for k in METRICS})
    return pd.DataFrame(rows, dtype=np.float64)


def summarize(market: str, label: str, frame: pd.DataFrame, confidence: float) -> dict:
    """Mean and Student-t interval of each metric across episodes (undefined ones left out)."""
    row: dict[str, float | str] = {"market": market, "policy": label}
    for k in METRICS:
        x = frame[k].to_numpy()
        x = x[np.isfinite(x)]
        if x.size >= 2:
            ci = mean_ci(x, confidence)
            row |= {f"{k}_mean": ci.mean, f"{k}_low": ci.low, f"{k}_high": ci.high}
        else:
            row |= {f"{k}_mean": math.nan, f"{k}_low": math.nan, f"{k}_high": math.nan}
        row[f"n_{k}"] = float(x.size)
    return row


def lob_market(cfg: ExperimentConfig) -> LOBMarketConfig:
    """The config's market, which must be the order book.

    :raises ConfigError: naming ``market.kind`` otherwise.
    """
    if not isinstance(cfg.market, LOBMarketConfig):
        raise ConfigError(
            "market.kind: the results table runs the order book (kind: lob); "
            f"got kind {cfg.market.kind!r}"
        )
    return cfg.market


def simulated_rows(cfg: ExperimentConfig, policies: dict[str, Policy]) -> list[dict]:
    """Every policy in the config's (order-book) market, ``evaluation.n_paths`` episodes."""
    m = lob_market(cfg)
    env = make_vector_env(m, cfg.evaluation.n_paths)
    seed = stream_seed(cfg.seed, "evaluation")
    cpt = m.market.tick_size * m.market.lot_size
    starts = np.zeros(cfg.evaluation.n_paths)
    rows = []
    for label, policy in policies.items():
        batch = rollout(env, policy, seed, record_steps=True)
        frame = per_episode_metrics(batch, starts, m.dt, cpt, cfg)
        rows.append(summarize("simulated", label, frame, cfg.evaluation.confidence))
    return rows


def replay_config(replay: ExperimentConfig, cfg: ExperimentConfig) -> ExperimentConfig:
    """The replay config with the policies, quote range and tracking store of ``cfg`` (same
    actions, same depths in both markets)."""
    if not isinstance(replay.market, ReplayMarket):
        raise ConfigError(
            f"--replay-config: market.kind: expected replay, got {replay.market.kind!r}"
        )
    market = replay.market.model_copy(
        update={"depth_min": cfg.market.depth_min, "depth_max": cfg.market.depth_max}
    )
    return replay.model_copy(
        update={"market": market, "policies": cfg.policies, "tracking": cfg.tracking}
    )


def replay_rows(
    rcfg: ExperimentConfig, sac: Policy | None, workdir: Path
) -> tuple[list[dict], int]:
    """Every policy of ``rcfg`` (and ``sac`` when given) over the recorded day's windows; the
    rows and the number of windows."""
    m = rcfg.market
    assert isinstance(m, ReplayMarket)
    check_replay_data(m)
    tape = load_tape(m.data_paths(), m.format, m.binance_market, m.symbol, m.levels)
    starts = window_starts(rcfg, tape)
    env = make_vector_env(m, starts.size)
    assert isinstance(env, ReplayMarketVectorEnv)
    names = (["sac"] if sac is not None else []) + [policy_label(p) for p in rcfg.policies]
    seed = stream_seed(rcfg.seed, "evaluation")
    cpt = tape.spec.tick_size * tape.spec.lot_size
    rows = []
    for name in names:
        policy = (
            sac
            if name == "sac" and sac is not None
            else build_policy(name, rcfg, env.action_map, workdir, None)
        )
        r = replay_policy(env, policy, starts, seed, rcfg, tape)
        frame = per_episode_metrics(r.batch, starts, m.dt, cpt, rcfg)
        rows.append(summarize("replay", name, frame, rcfg.evaluation.confidence))
    return rows, int(starts.size)


def _cell(row: pd.Series, k: str) -> str:
    mean, low, high = row[f"{k}_mean"], row[f"{k}_low"], row[f"{k}_high"]
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]"


def markdown_table(frame: pd.DataFrame, caption: str) -> str:
    """The results as a markdown table: ``mean [low, high]`` per metric."""
    head = ["market", "policy", *METRICS.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in frame.iterrows():
        cells = [str(row["market"]), str(row["policy"]), *(_cell(row, k) for k in METRICS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + caption + "\n"


def rich_table(frame: pd.DataFrame, title: str, caption: str) -> Table:
    table = Table(title=title, caption=caption)
    for col in ("market", "policy"):
        table.add_column(col, no_wrap=True)
    for name in METRICS.values():
        table.add_column(name, justify="right")
    for _, row in frame.iterrows():
        table.add_row(str(row["market"]), str(row["policy"]), *(_cell(row, k) for k in METRICS))
    return table


def _shares(cfg: ExperimentConfig, rcfg: ExperimentConfig | None) -> str:
    m = lob_market(cfg)
    sim = f"{m.order_size * m.market.lot_size:g} shares simulated (the calibrated model's lot)"
    if rcfg is None:
        return sim
    assert isinstance(rcfg.market, ReplayMarket)
    return f"{sim}, {rcfg.market.order_size:g} share(s) in the replay (the recorded lot)"


def _capitals(cfg: ExperimentConfig, rcfg: ExperimentConfig | None) -> str:
    sim = f"${cfg.backtest.capital:,.0f} simulated"
    return sim if rcfg is None else f"{sim}, ${rcfg.backtest.capital:,.0f} replay"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, default=DEFAULT_CONFIG)
    parser.add_argument(
        "--replay-config",
        default=DEFAULT_REPLAY,
        help=f"the recorded day's config (default: {DEFAULT_REPLAY})",
    )
    parser.add_argument(
        "--replay-set",
        dest="replay_overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a replay config value",
    )
    parser.add_argument("--no-replay", action="store_true", help="the simulated market only")
    parser.add_argument("--run-id", help="also run the SAC policy of this training run")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"folder of results_table.md and results.csv (default: {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)

    try:
        cfg = load_config(args.config, args.overrides)
        lob_market(cfg)
        rcfg = None
        if not args.no_replay:
            rcfg = replay_config(load_config(args.replay_config, args.replay_overrides), cfg)
            assert isinstance(rcfg.market, ReplayMarket)
            check_replay_data(rcfg.market)
        tracker = job_tracker(cfg, args.config, "results")
    except (ConfigError, TrackingError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    seed_everything(cfg.seed)

    with tracker as run:
        run.log_params(cfg.model_dump(mode="json"))
        run.log_text(to_yaml(cfg), "config/resolved.yaml")
        workdir = Path(tempfile.mkdtemp(prefix="mmrl-results-"))
        env_for_maps = make_vector_env(cfg.market, 1)
        try:
            policies: dict[str, Policy] = build_policies(cfg, env_for_maps)
            if args.run_id:
                policies = {"sac": load_sac_policy(args.run_id, cfg, workdir)} | policies
        except (ValueError, ConfigError) as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            return 2
        if args.run_id:
            run.set_tags({"mmrl.trained_run": args.run_id})
        rows = simulated_rows(cfg, policies)
        windows = 0
        if rcfg is not None:
            run.log_text(to_yaml(rcfg), "config/replay_resolved.yaml")
            replay, windows = replay_rows(rcfg, policies.get("sac"), workdir)
            rows += replay
        shutil.rmtree(workdir, ignore_errors=True)
        frame = pd.DataFrame(rows)
        frame = frame[[*TABLE_COLUMNS, *(c for c in frame.columns if c not in TABLE_COLUMNS)]]

        conf = f"{cfg.evaluation.confidence:.0%}"
        caption = (
            f"Mean [{conf} Student-t CI] across {cfg.evaluation.n_paths} simulated episodes of "
            f"{cfg.market.T:g} s (`{args.config}`, common random numbers, seed {cfg.seed})"
            + (
                f" and across {windows} replayed windows of the recorded day "
                f"(`{args.replay_config}`; LOBSTER data)"
                if windows
                else ""
            )
            + f". One quote = {_shares(cfg, rcfg)}. Per episode: Sharpe and Sortino of "
            f"per-decision PnL / C (C = {_capitals(cfg, rcfg)}), annualized "
            f"({cfg.backtest.calendar} calendar); max drawdown in dollars; ES 99% of "
            "per-decision returns in bps of C; fill rate: quoted intervals with a passive fill; "
            f"realized spread: mark-out at {max(cfg.backtest.markout_horizons):g} s, bps."
        )
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        md = out / "results_table.md"
        md.write_text(markdown_table(frame, caption), encoding="utf-8")
        csv = out / "results.csv"
        frame.to_csv(csv, index=False)
        run.log_artifact(md, "reports")
        run.log_artifact(csv, "reports")
        for _, row in frame.iterrows():
            run.log_metrics(
                {
                    f"results/{row['market']}/{row['policy']}/{c}": float(row[c])
                    for c in frame.columns
                    if c not in ("market", "policy") and np.isfinite(row[c])
                }
            )
        console.print(rich_table(frame, f"{cfg.name}: results", caption))
        console.print(
            f"Wrote {md} and {csv}. Run {run.run_id} in experiment '{cfg.experiment_name}'.",
            highlight=False,
        )
    print_ui_command(console, cfg.tracking.uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Backtest policies over a real recorded day in the replay market, into MLflow.

    python -m experiments.backtest --config configs/replay_goog.yaml --policy glft
    python -m experiments.backtest --config configs/replay_goog.yaml --policy glft \\
        --policy fixed_spread --set backtest.windows=2
    python -m experiments.backtest --config configs/replay_nexo.yaml --policy sac --run-id RUN_ID

Reads top to bottom: config, recorded data, tracking preflight, windows, policies, replays,
metrics, table, figures, logging. The day is cut into ``backtest.windows`` consecutive episodes
of ``market.n_steps x market.dt`` seconds (docs/markets.md#replay: the recorded events
drive the book, the agent's orders never move it); every policy replays the same windows (a
common tape), all windows at once in one batched replay. A policy's metrics
(:func:`evaluation.metrics.compute_metrics`) are those of its windows laid end to end as one
trading session, with prices in currency per lot (ticks x tick size x lot size) so that cash,
fees and inventory PnL share one unit. Metric keys: ``backtest/<policy>/<metric>``.

Exit code 2, with a message naming the key or file, for a config that cannot run (bad key, a
missing data file, an unknown policy, ``sac`` without ``--run-id``).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from agents.base import Policy
from agents.factory import make_policy
from configs.schema import ExperimentConfig, ReplayMarket, policy_label
from envs.layout import DepthActionMap
from envs.replay.env import ReplayMarketVectorEnv
from envs.replay.tape import Tape, load_tape
from evaluation import reports
from evaluation.metrics import (
    TradingRecord,
    compute_metrics,
    episode_metrics,
    markouts,
)
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.session import session_record
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
from experiments.progress import progress as progress_bar
from experiments.seeding import seed_everything, stream_seed
from tracking import TrackingError

SAC = "sac"
"""``--policy`` name of the SAC policy of ``--run-id``."""

TABLE_COLUMNS = {
    "pnl": "PnL",
    "sharpe": "Sharpe (ann.)",
    "max_drawdown": "max DD",
    "es99": "ES99 (bps C)",
    "fill_rate": "fill rate",
    "realized_spread_bps": "real. spread bps",
    "inventory_abs_mean": "mean |q|",
    "volume": "volume",
}
"""Metrics of the results table, by key of :func:`evaluation.metrics.compute_metrics`."""


@dataclass
class Replay:
    """One policy's replay of the windows: its batch, its session record, its speed."""

    batch: EpisodeBatch
    record: TradingRecord
    seconds: float
    events: int


# ------------------------------------------------------------------------------ windows
def window_starts(cfg: ExperimentConfig, tape: Tape) -> np.ndarray:
    """Starts of the consecutive windows (seconds after the tape's first event).

    :raises ConfigError: naming ``backtest.windows`` when they do not fit in the tape.
    """
    m = _replay_market(cfg)
    start = m.start or 0.0
    room = tape.duration - start
    fit = math.floor(room / m.T + 1e-9)
    n = cfg.backtest.windows or fit
    if n < 1 or n > fit:
        raise ConfigError(
            f"backtest.windows: {n} windows of market.n_steps x market.dt = {m.T:g} s from "
            f"market.start = {start:g} s need {start + n * m.T:g} s, but the tape lasts "
            f"{tape.duration:.3f} s (at most {fit} windows)"
        )
    return start + m.T * np.arange(n)


def _replay_market(cfg: ExperimentConfig) -> ReplayMarket:
    if not isinstance(cfg.market, ReplayMarket):
        raise ConfigError(
            f"market.kind: the backtest replays a recorded day (kind: replay); got kind "
            f"{cfg.market.kind!r}"
        )
    return cfg.market


# ------------------------------------------------------------------------------ policies
def select_policies(cfg: ExperimentConfig, names: list[str], run_id: str | None) -> list[str]:
    """The policy labels to run: ``names`` (default: every policy of the config, and ``sac``
    with ``--run-id``), checked against the config.

    :raises ConfigError: an unknown label, or ``sac`` without ``--run-id``.
    """
    known = [policy_label(p) for p in cfg.policies]
    if not names:
        names = known + ([SAC] if run_id else [])
    for name in names:
        if name == SAC and not run_id:
            raise ConfigError("--policy sac: give the training run with --run-id RUN_ID")
        if name != SAC and name not in known:
            raise ConfigError(
                f"--policy {name}: not a policy of the config; its policies are {known}"
                + (" (and sac with --run-id)" if SAC not in known else "")
            )
    if not names:
        raise ConfigError("no policy to run: the config lists none and no --policy was given")
    return list(dict.fromkeys(names))


def build_policy(name: str, cfg: ExperimentConfig, env_map: DepthActionMap, workdir: Path,
                 run_id: str | None) -> Policy:  # fmt: skip
    """The baseline of the config labelled ``name``, or the SAC policy of ``run_id``."""
    if name == SAC:
        from experiments.sac_model import load_sac_policy  # TensorFlow only when needed

        assert run_id is not None
        return load_sac_policy(run_id, cfg, workdir)
    config = next(p for p in cfg.policies if policy_label(p) == name)
    return make_policy(config, _replay_market(cfg), env_map)


# ------------------------------------------------------------------------------ records
def replay_policy(
    env: ReplayMarketVectorEnv,
    policy: Policy,
    starts: np.ndarray,
    seed: int,
    cfg: ExperimentConfig,
    tape: Tape,
) -> Replay:
    """Replay the windows with ``policy`` (one batched rollout) and build its session record."""
    m = _replay_market(cfg)
    env.core.set_starts(starts)
    t0 = time.perf_counter()
    batch = rollout(env, policy, seed, record_steps=True)
    seconds = time.perf_counter() - t0
    events = int(env.core.events_replayed.sum())
    record = session_record(batch, starts, m.dt, tape.spec.tick_size * tape.spec.lot_size)
    return Replay(batch, record, seconds, events)


def policy_metrics(replay: Replay, cfg: ExperimentConfig) -> dict[str, float]:
    """Session metrics, across-window metrics (``episode_*``), and the replay's speed."""
    bt = cfg.backtest
    out = compute_metrics(replay.record, bt.capital, bt.calendar, bt.markout_horizons)
    if replay.batch.pnl.size >= 2:
        out |= episode_metrics(replay.batch.pnl)
    out["windows"] = float(replay.batch.pnl.size)
    out["fills"] = float(replay.record.fills.time.size)
    out["unliquidated_windows"] = float(np.sum(replay.batch.final_inventory != 0))
    out["seconds"] = replay.seconds
    out["events"] = float(replay.events)
    out["events_per_second"] = replay.events / replay.seconds if replay.seconds > 0 else math.nan
    return out


# ------------------------------------------------------------------------------ output
def results_frame(metrics: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per policy, one column per metric."""
    frame = pd.DataFrame(metrics).T
    frame.index.name = "policy"
    return frame


def results_table(metrics: dict[str, dict[str, float]], cfg: ExperimentConfig,
                  tape: Tape, n_windows: int) -> Table:  # fmt: skip
    m = _replay_market(cfg)
    table = Table(
        title=f"{cfg.name}: {tape.spec.symbol}, {n_windows} windows of {m.T:g} s "
        f"(dt {m.dt:g} s), seed {cfg.seed}"
    )
    table.caption = (
        f"PnL, max DD: currency. Sharpe of per-step PnL / C (C = {cfg.backtest.capital:g}), "
        f"annualized with the {cfg.backtest.calendar} calendar. ES99: historical, per step, bps "
        f"of C. Fill rate: quoted intervals with a passive fill. Realized spread: mark-out at "
        f"{max(cfg.backtest.markout_horizons):g} s, bps. |q|, volume: lots."
    )
    table.add_column("policy", no_wrap=True)
    for title in (*TABLE_COLUMNS.values(), "fills", "events/s"):
        table.add_column(title, justify="right", no_wrap=True)
    for label, row in metrics.items():
        cells = []
        for key in TABLE_COLUMNS:
            v = row[key] * (1e4 if key == "es99" else 1.0)
            cells.append(f"{v:.4g}" if key in ("pnl", "max_drawdown", "volume") else f"{v:.3f}")
        table.add_row(label, *cells, f"{row['fills']:.0f}", f"{row['events_per_second']:,.0f}")
    return table


def write_figures(replays: dict[str, Replay], cfg: ExperimentConfig, directory: Path) -> list[Path]:
    """PnL fan over the windows and mark-outs by horizon (:mod:`evaluation.reports`)."""
    m = _replay_market(cfg)
    paths = {}
    for label, r in replays.items():
        assert r.batch.record is not None
        paths[label] = r.batch.record.pnl
    grid = m.dt * np.arange(next(iter(paths.values())).shape[1])
    out = [reports.pnl_fan(paths, grid, directory)]
    marks = {
        label: markouts(r.record, cfg.backtest.markout_horizons) for label, r in replays.items()
    }
    if any(np.isfinite(v).any() for v in marks.values()):
        out.append(reports.markouts_by_horizon(marks, cfg.backtest.markout_horizons, directory))
    return out


def file_hashes(paths: list[Path]) -> dict[str, str]:
    """``mmrl.data.<file name>`` tags: the sha256 of each recorded file."""
    out = {}
    for p in paths:
        digest = hashlib.sha256()
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        out[f"mmrl.data.{p.name}"] = digest.hexdigest()
    return out


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument(
        "--policy",
        dest="policies",
        action="append",
        default=[],
        metavar="NAME",
        help="a policy label of the config, or 'sac' with --run-id (repeatable; default: all)",
    )
    parser.add_argument("--run-id", help="the training run whose SAC policy to replay")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)

    try:
        cfg = load_config(args.config, args.overrides)
        market = _replay_market(cfg)
        check_replay_data(market)
        names = select_policies(cfg, args.policies, args.run_id)
        tape = load_tape(market.data_paths(), market.format, market.binance_market,
                         market.symbol, market.levels)  # fmt: skip
        starts = window_starts(cfg, tape)
        tracker = job_tracker(cfg, args.config, "backtest", file_hashes(market.data_paths()))
    except (ConfigError, TrackingError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 2
    seed_everything(cfg.seed)
    seed = stream_seed(cfg.seed, "evaluation")

    with tracker as run:
        run.log_params(cfg.model_dump(mode="json"))
        run.log_text(to_yaml(cfg), "config/resolved.yaml")
        if market.market_params is not None:
            run.log_text(
                yaml.safe_dump(market.market_params.model_dump(mode="json"), sort_keys=False),
                "calibration/market_params.yaml",
            )
        if args.run_id:
            run.set_tags({"mmrl.trained_run": args.run_id})
        env = make_vector_env(market, starts.size)
        assert isinstance(env, ReplayMarketVectorEnv)
        workdir = Path(tempfile.mkdtemp(prefix="mmrl-backtest-"))
        try:
            policies = {n: build_policy(n, cfg, env.action_map, workdir, args.run_id)
                        for n in names}  # fmt: skip
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            return 2
        env.reset(seed=seed)  # compiles the replay kernel (numba) before any replay is timed
        env.step(np.zeros((starts.size, 2)))
        items = list(policies.items())
        desc = f"Replaying {starts.size} windows of {market.T:g} s"
        iterator = items if args.no_progress else progress_bar(items, desc=desc, unit="policy")
        replays = {label: replay_policy(env, p, starts, seed, cfg, tape) for label, p in iterator}
        metrics = {label: policy_metrics(r, cfg) for label, r in replays.items()}

        for label, row in metrics.items():
            run.log_metrics({f"backtest/{label}/{k}": v for k, v in row.items()})
        frame = results_frame(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "backtest.csv"
            frame.to_csv(csv)
            run.log_artifact(csv, "reports")
            windows = pd.DataFrame(
                {label: r.batch.pnl for label, r in replays.items()},
                index=pd.Index(starts, name="window_start_s"),
            )
            windows.to_csv(Path(tmp) / "window_pnl.csv")
            run.log_artifact(Path(tmp) / "window_pnl.csv", "reports")
            for path in write_figures(replays, cfg, Path(tmp) / "figures"):
                run.log_artifact(path, "figures")
        shutil.rmtree(workdir, ignore_errors=True)

        console.print(results_table(metrics, cfg, tape, starts.size))
        seconds = sum(r.seconds for r in replays.values())
        events = sum(r.events for r in replays.values())
        console.print(
            f"{len(replays)} policies x {starts.size} windows x {market.n_steps} steps: "
            f"{events:,} events replayed in {seconds:.1f} s ({events / max(seconds, 1e-9):,.0f} "
            f"events/s). Run {run.run_id} in experiment '{cfg.experiment_name}'.",
            highlight=False,
        )
    print_ui_command(console, cfg.tracking.uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())

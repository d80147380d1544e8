"""Evaluate every policy of a config in its market, on common random numbers, into MLflow.

    python -m experiments.evaluate --config configs/demo.yaml [--set evaluation.n_paths=200]

Reads top to bottom: config, tracking preflight, market, policies, rollouts, table,
figures, logging. Every policy runs from the same seed over ``evaluation.n_paths``
episodes of one batched market, so differences between policies are not noise in the
market's randomness.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from rich.console import Console
from rich.progress import track
from rich.table import Table

from agents.base import Policy
from agents.factory import make_policy
from configs.schema import ExperimentConfig, policy_label
from envs.analytic import AnalyticMarketVectorEnv
from evaluation import figures
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.stats import MeanCI
from evaluation.summary import flat_metrics, results_frame, summarize
from experiments.config import ConfigError, add_config_arguments, load_config, to_yaml
from experiments.seeding import seed_everything, stream_seed
from tracking import Tracker, TrackingError, ui_command

DEFAULT_CONFIG = "configs/demo.yaml"


def build_policies(cfg: ExperimentConfig, env: AnalyticMarketVectorEnv) -> dict[str, Policy]:
    return {policy_label(p): make_policy(p, cfg.market, env.action_map) for p in cfg.policies}


def run_policies(
    cfg: ExperimentConfig, policies: dict[str, Policy], progress: bool = True
) -> dict[str, EpisodeBatch]:
    """One batch of ``n_paths`` episodes per policy, all from the same evaluation seed."""
    env = AnalyticMarketVectorEnv(num_envs=cfg.evaluation.n_paths, config=cfg.market)
    seed = stream_seed(cfg.seed, "evaluation")
    items = list(policies.items())
    iterator = track(items, description="Evaluating policies") if progress else items
    return {label: rollout(env, policy, seed, record_paths=True) for label, policy in iterator}


def results_table(summaries: dict[str, dict], cfg: ExperimentConfig) -> Table:
    conf = f"{cfg.evaluation.confidence:.0%}"
    table = Table(
        title=f"{cfg.name}: {cfg.evaluation.n_paths} paths per policy, seed {cfg.seed} "
        f"(± = {conf} CI half-width)"
    )
    reference = next(iter(summaries))
    table.caption = (
        f"Δ reward: paired difference with {reference} on the same paths. PnL/std per episode, "
        "not annualized. q_T: inventory at the end. spread: mean quoted bid + ask depth."
    )
    table.add_column("policy", no_wrap=True)
    for col in ("reward", "Δ reward", "PnL", "std PnL", "PnL/std", "std q_T", "|q_T|", "fills",
                "spread"):  # fmt: skip
        table.add_column(col, justify="right", no_wrap=True)
    for label, s in summaries.items():
        reward, pnl, diff = s["reward"], s["pnl"], s.get("reward_vs_reference")
        assert isinstance(reward, MeanCI) and isinstance(pnl, MeanCI)
        table.add_row(
            label,
            f"{reward.mean:.2f} ± {reward.half_width:.2f}",
            f"{diff.mean:+.2f} ± {diff.half_width:.2f}" if isinstance(diff, MeanCI) else "",
            f"{pnl.mean:.2f} ± {pnl.half_width:.2f}",
            f"{s['pnl_std']:.2f}",
            f"{s['pnl_sharpe']:.2f}",
            f"{s['final_q_std']:.2f}",
            f"{s['abs_final_q']:.2f}",
            f"{s['fills']:.1f}",
            f"{s['spread']:.3f}",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, default=DEFAULT_CONFIG)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)

    try:
        cfg = load_config(args.config, args.overrides)
        tracker = Tracker(
            experiment=cfg.experiment_name,
            run_name=f"evaluate-{cfg.name}",
            tracking_uri=cfg.tracking.uri,
            tags={
                "mmrl.seed": str(cfg.seed),
                "mmrl.config": str(args.config),
                "mmrl.job": "evaluate",
            },
        )
    except (ConfigError, TrackingError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    seed_everything(cfg.seed)

    with tracker as run:
        run.log_params(cfg.model_dump(mode="json"))
        run.log_text(to_yaml(cfg), "config/resolved.yaml")

        env_for_maps = AnalyticMarketVectorEnv(num_envs=1, config=cfg.market)
        policies = build_policies(cfg, env_for_maps)
        start = time.perf_counter()
        batches = run_policies(cfg, policies, progress=not args.no_progress)
        elapsed = time.perf_counter() - start

        # Paired differences against the first policy of the config (same seeds, same paths).
        reference = next(iter(batches.values()))
        summaries = {
            label: summarize(b, cfg.evaluation.confidence, None if b is reference else reference)
            for label, b in batches.items()
        }
        for label, summary in summaries.items():
            run.log_metrics(flat_metrics(label, summary))
        run.log_metrics({"eval/seconds": elapsed})
        frame = results_frame(summaries)

        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "results.csv"
            frame.to_csv(csv)
            run.log_artifact(csv, "reports")
        m = cfg.market
        for name, fig in (
            ("pnl_distributions.png", figures.pnl_distributions(batches)),
            ("inventory_risk.png", figures.inventory_dispersion(batches, m.T)),
            ("quotes_vs_inventory.png",
             figures.quotes_against_inventory(policies, m.T / 2, min(m.q_max, 10))),
        ):  # fmt: skip
            run.log_figure(fig, f"figures/{name}")
            plt.close(fig)

        console.print(results_table(summaries, cfg))
        console.print(
            f"{len(policies)} policies x {cfg.evaluation.n_paths} paths x {m.n_steps} steps "
            f"in {elapsed:.1f} s. Run {run.run_id} in experiment '{cfg.experiment_name}'."
        )
    console.print("Browse every run, metric and figure in the MLflow UI:", highlight=False)
    console.print(f"  {ui_command(cfg.tracking.uri)}", highlight=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    pd.set_option("display.width", 160)
    sys.exit(main())

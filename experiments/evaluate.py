"""Evaluate every policy of a config in its market, on common random numbers, into MLflow.

    python -m experiments.evaluate --config configs/demo.yaml [--set evaluation.n_paths=200]
    python -m experiments.evaluate --config configs/cj_sac.yaml --run-id RUN_ID

Reads top to bottom: config, tracking preflight, market, policies, rollouts, table,
figures, logging. Every policy runs from the same seed over ``evaluation.n_paths``
episodes of one batched market, so differences between policies are not noise in the
market's randomness. With ``--run-id`` the SAC policy a training run exported
(``model/sac_policy``) joins the baselines, and the run's learning curve is plotted.
In the analytic market every policy is scored against the exact optimum of the market's
objective: the optimality ratio J / h(0, q0) of the Cartea-Jaimungal value function, with J
estimated against the optimum's own episodes on the same seeds (a control variate). The
order-book market (``market.kind: lob``) has no known optimum: there the policies are
compared with each other (paired differences on the same seeds).
"""

from __future__ import annotations

import argparse
import shutil
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
from envs.batched import BatchedMarketEnv
from evaluation import figures
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.stats import MeanCI
from evaluation.summary import (
    flat_metrics,
    optimal_policy,
    optimal_value,
    optimality,
    results_frame,
    summarize,
)
from experiments.config import (
    ConfigError,
    add_config_arguments,
    load_config,
    make_vector_env,
    to_yaml,
)
from experiments.sac_model import SavedPolicy
from experiments.seeding import seed_everything, stream_seed
from tracking import Tracker, TrackingError, download_artifacts, metric_history, ui_command

DEFAULT_CONFIG = "configs/demo.yaml"


def build_policies(cfg: ExperimentConfig, env: BatchedMarketEnv) -> dict[str, Policy]:
    return {policy_label(p): make_policy(p, cfg.market, env.action_map) for p in cfg.policies}


def run_policies(
    cfg: ExperimentConfig, policies: dict[str, Policy], progress: bool = True
) -> dict[str, EpisodeBatch]:
    """One batch of ``n_paths`` episodes per policy, all from the same evaluation seed."""
    env = make_vector_env(cfg.market, cfg.evaluation.n_paths)
    seed = stream_seed(cfg.seed, "evaluation")
    items = list(policies.items())
    iterator = track(items, description="Evaluating policies") if progress else items
    return {label: rollout(env, policy, seed, record_paths=True) for label, policy in iterator}


def load_sac_policy(run_id: str, cfg: ExperimentConfig, workdir: Path) -> Policy:
    """The SavedModel a training run logged under ``model/sac_policy``."""
    local = download_artifacts(run_id, "model/sac_policy", workdir, cfg.tracking.uri)
    policy = SavedPolicy(local)
    policy.name = "sac"
    return policy


def learning_curve(run_id: str, cfg: ExperimentConfig) -> plt.Figure | None:
    """Optimality ratio (analytic market) or mean evaluation reward (order book) of a training
    run against transitions."""
    points = metric_history(run_id, "train/optimality_ratio", cfg.tracking.uri)
    ratio = bool(points)
    if not ratio:
        points = metric_history(run_id, "train/eval_reward_mean", cfg.tracking.uri)
    if not points:
        return None
    steps, values = zip(*points, strict=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, values, marker="o")
    if ratio:
        ax.axhline(1.0, color="black", lw=0.8, ls="--", label="exact optimum")
        ax.legend()
    ax.set_xlabel("environment transitions")
    ax.set_ylabel("J(SAC) / h(0, q0)" if ratio else "mean episode reward (currency)")
    ax.set_title(f"Learning curve of run {run_id[:8]} (deterministic policy, validation seeds)")
    fig.tight_layout()
    return fig


def results_table(summaries: dict[str, dict], cfg: ExperimentConfig) -> Table:
    conf = f"{cfg.evaluation.confidence:.0%}"
    table = Table(
        title=f"{cfg.name}: {cfg.evaluation.n_paths} paths per policy, seed {cfg.seed} "
        f"(± = {conf} CI half-width)"
    )
    reference = next(
        (label for label, s in summaries.items() if "reward_vs_reference" not in s), ""
    )
    table.caption = (
        f"Δ reward: paired difference with {reference} on the same paths. PnL/std per episode, "
        "not annualized. q_T: inventory at the end. fills: fill events per episode. spread: "
        "mean quoted ask - bid (price units: ticks in the order book)."
    )
    with_optimum = all("optimality_ratio" in s for s in summaries.values())
    table.add_column("policy", no_wrap=True)
    for col in ("reward", "Δ reward", *(["J/h(0,0)"] if with_optimum else []), "PnL",
                "std PnL", "PnL/std", "std q_T", "|q_T|", "fills", "spread"):  # fmt: skip
        table.add_column(col, justify="right", no_wrap=True)
    for label, s in summaries.items():
        reward, pnl, diff = s["reward"], s["pnl"], s.get("reward_vs_reference")
        assert isinstance(reward, MeanCI) and isinstance(pnl, MeanCI)
        optimum = (
            [f"{s['optimality_ratio']:.4f} ± {s['optimality_ratio_stderr']:.4f}"]
            if with_optimum
            else []
        )
        table.add_row(
            label,
            f"{reward.mean:.2f} ± {reward.half_width:.2f}",
            f"{diff.mean:+.2f} ± {diff.half_width:.2f}" if isinstance(diff, MeanCI) else "",
            *optimum,
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
    parser.add_argument("--run-id", help="also evaluate the SAC policy of this training run")
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

        env_for_maps = make_vector_env(cfg.market, 1)
        try:
            policies = build_policies(cfg, env_for_maps)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            return 2
        workdir = Path(tempfile.mkdtemp(prefix="mmrl-eval-"))
        if args.run_id:
            run.set_tags({"mmrl.trained_run": args.run_id})
            policies = {"sac": load_sac_policy(args.run_id, cfg, workdir)} | policies
        if not policies:
            console.print("[red]error:[/red] no policy to evaluate: the config lists none "
                          "and no --run-id was given", highlight=False)  # fmt: skip
            return 2
        start = time.perf_counter()
        batches = run_policies(cfg, policies, progress=not args.no_progress)
        elapsed = time.perf_counter() - start

        # Paired differences against the first baseline of the config (same seeds, same
        # paths); the optimality ratio against the exact value of the market's objective,
        # where it is known (the analytic market).
        ref_label = policy_label(cfg.policies[0]) if cfg.policies else next(iter(batches))
        reference = batches[ref_label]
        h_opt = optimal_value(cfg.market)
        optimum = optimal_policy(cfg.market, env_for_maps.action_map)
        optimum_batch = None
        if optimum is not None:  # the control variate of the optimality ratios
            optimum_batch = run_policies(cfg, {"optimum": optimum}, progress=False)["optimum"]
        summaries: dict[str, dict[str, float | MeanCI]] = {}
        for label, b in batches.items():
            summaries[label] = summarize(
                b, cfg.evaluation.confidence, None if b is reference else reference
            )
            if h_opt is not None:
                summaries[label] |= optimality(b, h_opt, optimum_batch)
        if h_opt is not None:
            run.log_metrics({"eval/optimal_value": h_opt})
        for label, summary in summaries.items():
            run.log_metrics(flat_metrics(label, summary))
        run.log_metrics({"eval/seconds": elapsed})
        frame = results_frame(summaries)

        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "results.csv"
            frame.to_csv(csv)
            run.log_artifact(csv, "reports")
        m = cfg.market
        observation, _ = env_for_maps.reset(seed=stream_seed(cfg.seed, "evaluation"))
        for name, fig in (
            ("pnl_distributions.png", figures.pnl_distributions(batches)),
            ("inventory_risk.png", figures.inventory_dispersion(batches, m.T)),
            ("quotes_vs_inventory.png", figures.quotes_against_inventory(
                policies, env_for_maps.action_map, observation, m.T / 2, min(m.q_max - 1, 10))),
            ("learning_curve.png", learning_curve(args.run_id, cfg) if args.run_id else None),
        ):  # fmt: skip
            if fig is not None:
                run.log_figure(fig, f"figures/{name}")
                plt.close(fig)
        shutil.rmtree(workdir, ignore_errors=True)

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

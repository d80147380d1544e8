"""Stress-test every policy of a config on every stress scenario, on common random numbers.

    python -m experiments.stress_test --config configs/demo.yaml
    python -m experiments.stress_test --config configs/cj_sac.yaml --run-id RUN_ID \\
        --scenarios configs/stress/flash_crash.yaml configs/stress/toxic_flow.yaml

Reads top to bottom: config and scenarios, tracking preflight, policies, rollouts, table,
heatmap, logging. Each policy runs ``evaluation.n_paths`` episodes of one batched market
without a scenario (the ``baseline`` row) and under each scenario, all from the same seed
(the ``stress`` stream): the markets draw the same random numbers with and without a
scenario, so "scenario minus baseline" is a paired difference on the same paths. A scenario
that has no meaning in the config's market (latency in the analytic market), or whose
perturbations that market's kernel does not apply yet, is skipped with a message saying so.
Metrics go to MLflow as ``stress/<scenario>/<policy>/<metric>``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from agents.base import Policy
from configs.schema import AnalyticMarketConfig, ExperimentConfig, LOBMarketConfig, StressScenario
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.stats import MeanCI
from evaluation.stress import (
    BASELINE,
    flat_stress_metrics,
    skip_reason,
    stress_frame,
    stress_heatmap,
    stress_summary,
    stressed_market,
)
from experiments.config import (
    CONFIG_DIR,
    ConfigError,
    add_config_arguments,
    format_validation_error,
    job_tracker,
    load_config,
    make_vector_env,
    print_ui_command,
    to_yaml,
)
from experiments.evaluate import build_policies
from experiments.progress import progress as progress_bar
from experiments.sac_model import load_sac_policy
from experiments.seeding import seed_everything, stream_seed
from tracking import TrackingError

DEFAULT_CONFIG = "configs/demo.yaml"
STRESS_DIR = CONFIG_DIR / "stress"


def load_scenario(path: str | Path) -> StressScenario:
    """Read and validate one scenario YAML. Raises :class:`ConfigError` naming the file and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read scenario: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return StressScenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, str(path))) from None


def load_scenarios(paths: list[str] | None) -> list[StressScenario]:
    """The scenarios of ``paths`` (default: every ``configs/stress/*.yaml``), names unique."""
    files = [Path(p) for p in paths] if paths else sorted(STRESS_DIR.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{STRESS_DIR}: no scenario file (*.yaml)")
    scenarios = [load_scenario(f) for f in files]
    names = [s.name for s in scenarios]
    for name in names:
        if name == BASELINE or names.count(name) > 1:
            raise ConfigError(
                f"scenario name {name!r} is {'reserved' if name == BASELINE else 'repeated'} "
                f"(files: {', '.join(map(str, files))})"
            )
    return scenarios


def stress_table(
    summaries: dict[str, dict[str, dict[str, float | MeanCI]]], cfg: ExperimentConfig
) -> Table:
    conf = f"{cfg.evaluation.confidence:.0%}"
    table = Table(
        title=f"{cfg.name} under stress: {cfg.evaluation.n_paths} paths per cell, same seeds "
        f"(± = {conf} CI half-width)"
    )
    table.caption = (
        "Δ: paired difference with the same policy's baseline on the same paths. Per episode, "
        "currency: reward, PnL, max DD (mean maximum drawdown of the PnL path), ES99 (expected "
        "shortfall of episode PnL, loss > 0). |q|: mean |inventory| (lots). fills per episode."
    )
    table.add_column("scenario", no_wrap=True)
    table.add_column("policy", no_wrap=True)
    for col in ("reward", "Δ reward", "PnL", "Δ PnL", "max DD", "ES99", "|q|", "fills"):
        table.add_column(col, justify="right", no_wrap=True)

    def ci(value: float | MeanCI | None, sign: str = "") -> str:
        if not isinstance(value, MeanCI):
            return ""
        return f"{value.mean:{sign}.2f} ± {value.half_width:.2f}"

    for scenario, by_policy in summaries.items():
        for i, (label, s) in enumerate(by_policy.items()):
            table.add_row(
                scenario if i == 0 else "",
                label,
                ci(s["reward"]),
                ci(s.get("reward_vs_baseline"), "+"),
                ci(s["pnl"]),
                ci(s.get("pnl_vs_baseline"), "+"),
                f"{s['max_drawdown']:.2f}",
                f"{s['es99']:.2f}",
                f"{s['abs_inventory']:.2f}",
                f"{s['fills']:.1f}",
                end_section=i == len(by_policy) - 1,
            )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, default=DEFAULT_CONFIG)
    parser.add_argument(
        "--scenarios", nargs="+", metavar="YAML", help=f"scenario files (default: {STRESS_DIR}/*)"
    )
    parser.add_argument("--run-id", help="also stress the SAC policy of this training run")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)

    try:
        cfg = load_config(args.config, args.overrides)
        if not isinstance(cfg.market, AnalyticMarketConfig | LOBMarketConfig):
            raise ConfigError(
                f"{args.config}: market.kind = {cfg.market.kind!r}: stress scenarios act on "
                "the simulated markets (analytic, lob); a replay is history and cannot be stressed"
            )
        market = cfg.market
        scenarios = load_scenarios(args.scenarios)
        tracker = job_tracker(
            cfg, args.config, "stress", {"mmrl.scenarios": ",".join(s.name for s in scenarios)}
        )
    except (ConfigError, TrackingError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    seed_everything(cfg.seed)

    # Scenarios the market cannot run are reported, never dropped silently.
    skipped = {s.name: reason for s in scenarios if (reason := skip_reason(s, market))}
    for name, reason in skipped.items():
        console.print(f"[yellow]skipping[/yellow] {name}: {reason}", highlight=False)
    runnable = [s for s in scenarios if s.name not in skipped]

    with tracker as run:
        run.log_params(cfg.model_dump(mode="json"))
        run.log_text(to_yaml(cfg), "config/resolved.yaml")
        for s in scenarios:
            run.log_text(to_yaml(s), f"config/stress/{s.name}.yaml")
        if skipped:
            run.set_tags({"mmrl.skipped_scenarios": ",".join(skipped)})
            run.log_text("".join(f"{n}: {r}\n" for n, r in skipped.items()), "reports/skipped.txt")

        env_for_maps = make_vector_env(cfg.market, 1)
        try:
            policies: dict[str, Policy] = build_policies(cfg, env_for_maps)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            return 2
        workdir = Path(tempfile.mkdtemp(prefix="mmrl-stress-"))
        if args.run_id:
            run.set_tags({"mmrl.trained_run": args.run_id})
            policies = {"sac": load_sac_policy(args.run_id, cfg, workdir)} | policies
        if not policies:
            console.print("[red]error:[/red] no policy to stress: the config lists none "
                          "and no --run-id was given", highlight=False)  # fmt: skip
            return 2

        # Every (scenario, policy) cell from the same seed: common random numbers. The
        # policies are built from the unstressed market: they do not know the scenario.
        markets = {BASELINE: cfg.market} | {
            s.name: stressed_market(market, s) for s in runnable
        }
        seed = stream_seed(cfg.seed, "stress")
        cells = [(name, label) for name in markets for label in policies]
        batches: dict[str, dict[str, EpisodeBatch]] = {name: {} for name in markets}
        start = time.perf_counter()
        env, env_name = None, ""
        iterator = cells if args.no_progress else progress_bar(cells, desc="Stress cells")
        for name, label in iterator:
            if env is None or env_name != name:  # one batched market per scenario
                env, env_name = make_vector_env(markets[name], cfg.evaluation.n_paths), name
            batches[name][label] = rollout(env, policies[label], seed, record_paths=True)
        elapsed = time.perf_counter() - start

        summaries = {
            name: {
                label: stress_summary(
                    batch,
                    None if name == BASELINE else batches[BASELINE][label],
                    cfg.evaluation.confidence,
                )
                for label, batch in by_policy.items()
            }
            for name, by_policy in batches.items()
        }
        for name, by_policy in summaries.items():
            for label, summary in by_policy.items():
                run.log_metrics(flat_stress_metrics(name, label, summary))
        run.log_metrics({"stress/run/seconds": elapsed})
        frame = stress_frame(summaries)
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "stress_results.csv"
            frame.to_csv(csv)
            run.log_artifact(csv, "reports")
        if runnable:
            for value in ("reward_vs_baseline", "pnl_vs_baseline"):
                fig = stress_heatmap(frame, value, confidence=cfg.evaluation.confidence)
                run.log_figure(fig, f"figures/stress_{value.split('_')[0]}_heatmap.png")
                plt.close(fig)
        else:
            console.print("[yellow]no scenario runs on this market: no heatmap[/yellow]")
        shutil.rmtree(workdir, ignore_errors=True)

        console.print(stress_table(summaries, cfg))
        console.print(
            f"{len(policies)} policies x {len(markets)} markets (baseline + {len(runnable)} "
            f"scenarios) x {cfg.evaluation.n_paths} paths x {cfg.market.n_steps} steps in "
            f"{elapsed:.1f} s. Run {run.run_id} in experiment '{cfg.experiment_name}'."
        )
    print_ui_command(console, cfg.tracking.uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())

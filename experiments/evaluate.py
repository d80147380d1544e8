"""Evaluate every policy of a config in its market, on common random numbers, into MLflow.

    python -m experiments.evaluate --config configs/demo.yaml [--set evaluation.n_paths=200]
    python -m experiments.evaluate --config configs/cj_sac.yaml --run-id RUN_ID
    python -m experiments.evaluate --config configs/lob_sac.yaml --no-reports

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

The run's ``reports/`` artifact folder holds, per policy, a QuantStats tear sheet of its
episode returns, Riskfolio risk measures and plots of its inventory PnL, the seaborn figures
(PnL fan, inventory distribution, quotes against inventory, fill rate against queue position in
the order book, mark-outs) and ``reports/index.html``, a summary page linking them
(:func:`write_reports`; ``--no-reports`` skips them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from agents.base import ObservationBatch, Policy
from agents.factory import make_policy
from configs.schema import ExperimentConfig, policy_label
from envs.batched import BatchedMarketEnv
from evaluation import figures, reports
from evaluation.metrics import fill_rate_by_queue, markouts
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.session import session_record
from evaluation.stats import MeanCI
from evaluation.summary import (
    discrete_optimum,
    exact_ratios,
    flat_metrics,
    optimal_policy,
    optimal_value,
    optimality,
    optimum_mean,
    results_frame,
    summarize,
)
from experiments.config import (
    ConfigError,
    add_config_arguments,
    config_differences,
    job_tracker,
    load_config,
    make_vector_env,
    print_ui_command,
    to_yaml,
)
from experiments.progress import progress as progress_bar
from experiments.sac_model import load_sac_policy
from experiments.seeding import seed_everything, stream_seed
from tracking import TrackingError, load_run, metric_history, require_run

DEFAULT_CONFIG = "configs/demo.yaml"


def build_policies(cfg: ExperimentConfig, env: BatchedMarketEnv) -> dict[str, Policy]:
    return {policy_label(p): make_policy(p, cfg.market, env.action_map) for p in cfg.policies}


def run_policies(
    cfg: ExperimentConfig,
    policies: dict[str, Policy],
    progress: bool = True,
    record_steps: bool = False,
) -> dict[str, EpisodeBatch]:
    """One batch of ``n_paths`` episodes per policy, all from the same evaluation seed.

    With ``record_steps`` every batch keeps its per-step record (:class:`StepRecord`), and in
    the order book the queue ahead of the agent's resting orders at each decision
    (:class:`QueueObserver`, in ``batch.paths["queue_ahead"]`` / ``["resting"]``).
    """
    env = make_vector_env(cfg.market, cfg.evaluation.n_paths)
    seed = stream_seed(cfg.seed, "evaluation")
    items = list(policies.items())
    iterator = progress_bar(items, desc="Evaluating policies", unit="policy") if progress else items
    out = {}
    for label, policy in iterator:
        observer = QueueObserver(policy) if record_steps else None
        batch = rollout(env, observer or policy, seed, record_paths=True,
                        record_steps=record_steps)  # fmt: skip
        if observer is not None and observer.ahead:
            batch.paths["queue_ahead"] = np.stack(observer.ahead, 1)
            batch.paths["resting"] = np.stack(observer.resting, 1)
            batch.paths["order_price"] = np.stack(observer.price, 1)
        out[label] = batch
    return out


class QueueObserver(Policy):
    """A policy that also notes, at each decision, the agent's resting orders the order book
    shows it (observation ``orders`` ``(N, 2, 3)``: price in ticks, remaining lots, lots ahead
    in the queue; side 0 bid, 1 ask). Arrays ``(N, 2)`` per decision; nothing in markets
    without queues."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name
        self.ahead: list[np.ndarray] = []
        self.resting: list[np.ndarray] = []
        self.price: list[np.ndarray] = []

    def reset(self) -> None:
        self.policy.reset()
        self.ahead, self.resting, self.price = [], [], []

    def act(self, observation: ObservationBatch) -> np.ndarray:
        orders = observation.get("orders")
        if orders is not None:
            o = np.asarray(orders, np.float64)
            self.price.append(o[:, :, 0].copy())
            self.resting.append(o[:, :, 1] > 0)
            self.ahead.append(o[:, :, 2].copy())
        return self.policy.act(observation)


def check_same_market(run_id: str, cfg: ExperimentConfig) -> None:
    """Refuse to score a policy in a market other than the one it was trained in.

    :raises ConfigError: naming each ``market.*`` key in which the config differs from the
        training run's (``--any-market`` evaluates it anyway).
    """
    changed = config_differences(cfg, load_run(run_id, cfg.tracking.uri).params, ("market.",))
    if changed:
        raise ConfigError(
            f"--run-id {run_id}: the policy was trained in another market ({len(changed)} "
            f"key(s) differ: {'; '.join(changed[:8])}); use that run's config, or --any-market "
            "to evaluate it here anyway"
        )


def learning_curve(run_id: str, cfg: ExperimentConfig) -> plt.Figure | None:
    """Optimality ratio (analytic market) or mean evaluation reward (order book) of a training
    run against transitions: the validation estimate and, where it was logged, the exact
    ratio of the same policy (:mod:`evaluation.exact`)."""
    points = metric_history(run_id, "train/optimality_ratio", cfg.tracking.uri)
    ratio = bool(points)
    if not ratio:
        points = metric_history(run_id, "train/eval_reward_mean", cfg.tracking.uri)
    if not points:
        return None
    exact = metric_history(run_id, "train/exact_ratio", cfg.tracking.uri) if ratio else []
    steps, values = zip(*points, strict=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, values, marker="o", label="validation episodes (control variate)")
    if exact:
        ax.plot(*zip(*exact, strict=True), marker=".", label="exact (backward induction)")
    if ratio:
        h = optimal_value(cfg.market)
        discrete = discrete_optimum(cfg.market)
        if h is not None and discrete is not None:
            ax.axhline(discrete / h, color="black", lw=0.8, ls="--",
                       label="optimum of the discrete market")  # fmt: skip
        ax.axhline(0.99, color="grey", lw=0.8, ls=":", label="0.99")
        ax.legend()
    ax.set_xlabel("environment transitions")
    ax.set_ylabel("J(SAC) / h(0, q0)" if ratio else "mean episode reward (currency)")
    ax.set_title(f"Learning curve of run {run_id[:8]} (deterministic policy)")
    fig.tight_layout()
    return fig


MARKOUT_DECISIONS = (1, 5, 10, 60)
"""Mark-out horizons of the reports, in decisions (``x market.dt`` time units)."""
FIGURE_SAMPLE = 10_000
"""Steps (quotes against inventory) and fills (mark-outs) per policy drawn without replacement
(seeded) for the figures with bootstrap intervals; the inventory histogram draws ten times as
many steps."""


REPORT_EPISODES = 2000
"""Episodes per policy (the first ones, the same for every policy) behind the tear sheets and
the Riskfolio risk table; the results table uses every episode."""


def _sample(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Sorted indices of ``min(n, size)`` of ``n`` rows drawn without replacement."""
    return np.sort(rng.choice(n, size, replace=False)) if n > size else np.arange(n)


def inventory_pnl_paths(batch: EpisodeBatch) -> np.ndarray:
    """Inventory PnL of each episode, ``sum_t q_{t-1} (S_t - S_{t-1})`` (cash units, ``(N,)``;
    the mid-risk part of the PnL, :func:`evaluation.metrics.inventory_pnl`)."""
    rec = batch.record
    assert rec is not None
    return np.sum(rec.inventory[:, :-1] * np.diff(rec.mid, axis=1), axis=1)


def queue_fill_table(batch: EpisodeBatch) -> pd.DataFrame | None:
    """Fill probability within one decision of the agent's resting orders, by the queue ahead.

    A resting order seen at decision ``t`` (observation ``orders``) that the policy keeps (same
    price at ``t``: it keeps its queue place) is one trial, with the lots ahead of it at ``t``
    as its queue position; it succeeds when a passive fill on its side lands during step ``t``.
    The fills' ``queue_ahead`` is the queue at entry of filled orders only, so the trials use the
    queue seen at each decision instead. None in markets without queues or without trials.
    """
    rec = batch.record
    if rec is None or "queue_ahead" not in batch.paths:
        return None
    ahead, resting, price = (batch.paths[k] for k in ("queue_ahead", "resting", "order_price"))
    steps = ahead.shape[1]
    f = rec.fills[rec.fills["taker"] == 0]
    xs, hits = [], []
    for j, (quote, side) in enumerate(((rec.bid, 1.0), (rec.ask, -1.0))):
        kept = resting[:, :, j] & (price[:, :, j] == quote[:, :steps])
        filled = np.zeros(kept.shape, np.bool_)
        mine = f[(f["side"] == side) & (f["step"] < steps)]
        filled[mine["episode"].to_numpy(), mine["step"].to_numpy()] = True
        xs.append(ahead[:, :, j][kept])
        hits.append(filled[kept])
    x, hit = np.concatenate(xs), np.concatenate(hits)
    if x.size < 10:
        return None
    return fill_rate_by_queue(x, hit, bins=5)


def write_reports(cfg: ExperimentConfig, batches: dict[str, EpisodeBatch], directory: Path) -> Path:
    """Every report file of an evaluation into ``directory``; returns ``index.html``.

    Returns are PnL over ``backtest.capital`` (cash units of the market: currency in the
    analytic market, ticks x lots in the order book), one per episode, laid on consecutive
    business days (:mod:`evaluation.reports`). Per policy, over its first
    :data:`REPORT_EPISODES` episodes: a QuantStats tear sheet of the episode returns, and
    Riskfolio risk measures (CVaR, EVaR, CDaR, drawdowns; Rockafellar & Uryasev 2000,
    Ahmadi-Javid 2012, Chekhlov, Uryasev & Zabarankin 2005) of the episodes' inventory PnL
    (:func:`inventory_pnl_paths`) with their plots, in the same units. The seaborn figures
    come from the per-step records. Mark-outs at :data:`MARKOUT_DECISIONS` decisions after
    each fill, episodes laid end to end with a gap (a horizon past an episode's end uses its
    final mid).
    """
    m = cfg.market
    capital = cfg.backtest.capital
    units = "currency" if m.kind == "analytic" else "ticks x lots"
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([stream_seed(cfg.seed, "evaluation"), 1])  # quote sample
    sheets: list[Path | str] = []
    risk_pngs: list[Path | str] = []
    inventory_returns = {}
    for label, b in batches.items():
        rec = b.record
        assert rec is not None, "the rollout must record steps"
        first = slice(0, REPORT_EPISODES)
        sheets.append(reports.tear_sheet(
            pd.Series(b.pnl[first] / capital), d / f"{reports.slug(label)}_tear_sheet.html",
            title=f"{cfg.name}: {label}",
            parameters={"capital": capital, "episodes": b.pnl[first].size},
        ))  # fmt: skip
        inventory_returns[label] = x = inventory_pnl_paths(b)[first] / capital
        if np.ptp(x) > 0:  # no histogram of a constant
            risk_pngs += reports.risk_plots(
                pd.Series(x), d, label, capital=capital, cash_unit=units
            )
        else:
            risk_pngs.append(f"{label}: inventory PnL {x[0] * capital:g} in every episode.")
    risk = reports.risk_table(pd.DataFrame(inventory_returns))
    risk.to_csv(d / "inventory_pnl_risk.csv")

    grid = {label: b.record.time[int(np.argmax(b.steps))] for label, b in batches.items()
            if b.record is not None}  # fmt: skip
    longest = max(grid.values(), key=len)
    pnl = {label: b.record.pnl[:, : longest.size] for label, b in batches.items()
           if b.record is not None and b.record.pnl.shape[1] == longest.size}  # fmt: skip
    pngs = [reports.pnl_fan(pnl, longest, d, time_unit="time units")]
    inventory = {}
    for label, b in batches.items():
        assert b.record is not None
        q = b.record.inventory.ravel()
        inventory[label] = q[_sample(rng, q.size, 10 * FIGURE_SAMPLE)]
    pngs.append(reports.inventory_distribution(inventory, d))
    quotes = {}
    for label, b in batches.items():
        rec = b.record
        assert rec is not None
        frame = pd.DataFrame({
            "inventory": rec.inventory[:, :-1].ravel(),
            "bid_depth": (rec.mid - rec.bid)[:, :-1].ravel(),
            "ask_depth": (rec.ask - rec.mid)[:, :-1].ravel(),
        }).dropna()  # fmt: skip
        quotes[label] = frame.iloc[_sample(rng, len(frame), FIGURE_SAMPLE)]
    pngs.append(reports.quotes_against_inventory(quotes, d))
    queue = {label: t for label, b in batches.items() if (t := queue_fill_table(b)) is not None}
    if queue:
        pngs.append(reports.fill_rate_against_queue(queue, d))
    horizons = [k * m.dt for k in MARKOUT_DECISIONS if k * m.dt < m.T]
    marks = {}
    for label, b in batches.items():
        if b.record is None or b.record.fills.empty or not horizons:
            continue
        starts = (m.T + max(horizons)) * np.arange(b.pnl.size)
        fills = markouts(session_record(b, starts, m.dt, 1.0), horizons)
        marks[label] = fills[_sample(rng, len(fills), FIGURE_SAMPLE)]
    if any(np.isfinite(v).any() for v in marks.values()):
        pngs.append(reports.markouts_by_horizon(marks, horizons, d))

    return reports.summary_page(
        d,
        {
            "Tear sheets (QuantStats)": [
                f"One return per episode: episode PnL / {capital:g} ({units}); episodes laid "
                "on consecutive business days, uncompounded.",
                *sheets,
            ],
            "Risk of the inventory PnL (Riskfolio)": [
                "Inventory PnL per episode, sum q_(t-1) (S_t - S_(t-1)), over the capital "
                f"({capital:g} {units} per episode): risk measures at 95% (losses positive) "
                f"and figures in {reports.RISK_UNIT}, the cumulative return uncompounded (a "
                "running sum: episodes are independent, nothing is reinvested).",
                risk,
                *risk_pngs,
            ],
            "Figures": [
                f"{len(next(iter(batches.values())).pnl)} episodes per policy on common random "
                f"numbers (seed {cfg.seed}). At most {FIGURE_SAMPLE:,} steps (quotes against "
                f"inventory), {10 * FIGURE_SAMPLE:,} steps (inventory) and {FIGURE_SAMPLE:,} "
                "fills (mark-outs) drawn per policy. Fill rate against queue position (order "
                "book only): resting orders kept at a decision, by the lots ahead of them then, "
                f"filled within the next decision. Mark-outs at {list(MARKOUT_DECISIONS)} "
                "decisions.",
                *pngs,
            ],
        },
        title=f"{cfg.name}: evaluation report",
    )


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
    with_exact = with_optimum and any("exact_ratio" in s for s in summaries.values())
    if with_optimum:
        table.caption += (
            " J/h(0,0): expected reward over the continuous-time optimum h(0,0), estimated with "
            "the optimum's episodes as control variate (± standard error)"
            + ("; exact: computed by backward induction over (time, inventory)." if with_exact
               else ".")
        )
    table.add_column("policy", no_wrap=True)
    for col in ("reward", "Δ reward", *(["J/h(0,0)"] if with_optimum else []),
                *(["exact J/h"] if with_exact else []), "PnL",
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
            *([f"{s['exact_ratio']:.4f}" if "exact_ratio" in s else ""] if with_exact else []),
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
    parser.add_argument(
        "--any-market",
        action="store_true",
        help="evaluate the --run-id policy even in a market that differs from its training's",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--no-reports",
        action="store_true",
        help="skip the reports/ folder (tear sheets, risk tables, figures)",
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)

    try:
        cfg = load_config(args.config, args.overrides)
        tracker = job_tracker(cfg, args.config, "evaluate")
        if args.run_id:  # before the run starts: a wrong id is one line, not a failed run
            require_run(args.run_id, cfg.tracking.uri, artifact="model/sac_policy")
            if not args.any_market:
                check_same_market(args.run_id, cfg)
    except (ConfigError, TrackingError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
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
        with_reports = not args.no_reports
        batches = run_policies(cfg, policies, not args.no_progress, record_steps=with_reports)
        elapsed = time.perf_counter() - start

        # Paired differences against the first baseline of the config (same seeds, same
        # paths); the optimality ratio against the exact value of the market's objective,
        # where it is known (the analytic market).
        ref_label = policy_label(cfg.policies[0]) if cfg.policies else next(iter(batches))
        reference = batches[ref_label]
        h_opt = optimal_value(cfg.market)
        optimum = optimal_policy(cfg.market, env_for_maps.action_map)
        optimum_expected = optimum_mean(cfg.market, optimum)
        optimum_batch = None
        if optimum is not None and optimum_expected is not None:  # the control variate
            optimum_batch = run_policies(cfg, {"optimum": optimum}, progress=False)["optimum"]
        exact = exact_ratios(cfg.market, policies, env_for_maps.action_map)
        summaries: dict[str, dict[str, float | MeanCI]] = {}
        for label, b in batches.items():
            summaries[label] = summarize(
                b, cfg.evaluation.confidence, None if b is reference else reference
            )
            if h_opt is not None:
                summaries[label] |= optimality(b, h_opt, optimum_batch, optimum_expected)
            if label in exact:
                summaries[label]["exact_ratio"] = exact[label]
        if h_opt is not None:
            run.log_metrics({"eval/optimal_value": h_opt})
        discrete = discrete_optimum(cfg.market)
        if discrete is not None:
            run.log_metrics({"eval/discrete_optimal_value": discrete})
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
        if with_reports:
            start = time.perf_counter()
            write_reports(cfg, batches, workdir / "reports")
            run.log_artifacts(workdir / "reports", "reports")
            run.log_metrics({"eval/report_seconds": time.perf_counter() - start})
        shutil.rmtree(workdir, ignore_errors=True)

        console.print(results_table(summaries, cfg))
        console.print(
            f"{len(policies)} policies x {cfg.evaluation.n_paths} paths x {m.n_steps} steps "
            f"in {elapsed:.1f} s. Run {run.run_id} in experiment '{cfg.experiment_name}'."
        )
    print_ui_command(console, cfg.tracking.uri)
    return 0


if __name__ == "__main__":
    pd.set_option("display.width", 160)
    sys.exit(main())

"""Stress tests: which (scenario, market) pairs run, per-scenario summaries, table and heatmap.

A stress scenario (:class:`configs.schema.StressScenario`) changes market parameters inside a
time window. Every policy runs on the unstressed market (the ``baseline`` row) and on every
scenario from the same seed: the markets draw the same random numbers with and without a
scenario, so the change a scenario causes is measured as a paired difference on the same
paths (common random numbers), far tighter than the difference of two unpaired means.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from configs.schema import AnalyticMarketConfig, LOBMarketConfig, StressScenario
from envs.analytic import STRESS_PERTURBATIONS as ANALYTIC_PERTURBATIONS
from envs.lob.core import STRESS_PERTURBATIONS as LOB_PERTURBATIONS
from evaluation.metrics import expected_shortfall, max_drawdown
from evaluation.rollout import EpisodeBatch
from evaluation.stats import MeanCI, mean_ci
from evaluation.summary import flat_metrics, results_frame

BASELINE = "baseline"
"""Name of the unstressed run in tables and metric keys."""

IMPLEMENTED_PERTURBATIONS: dict[str, frozenset[str]] = {
    "analytic": ANALYTIC_PERTURBATIONS,
    "lob": LOB_PERTURBATIONS,
}
"""The perturbations each market's kernel applies (keys of ``StressPerturbations``)."""


def skip_reason(scenario: StressScenario, market: AnalyticMarketConfig | LOBMarketConfig) -> str:
    """Why ``scenario`` cannot run on ``market`` ("" when it can).

    A scenario runs where it declares a meaning (``scenario.markets``) and where the
    market's kernel applies every perturbation it sets.
    """
    kind = market.kind
    if kind not in scenario.markets:
        return (
            f"scenario {scenario.name!r} has no meaning in the {kind} market "
            f"(it declares markets {list(scenario.markets)})"
        )
    missing = sorted(set(scenario.perturbations.active()) - IMPLEMENTED_PERTURBATIONS[kind])
    if missing:
        return (
            f"the {kind} market does not apply the perturbation(s) {missing} of scenario "
            f"{scenario.name!r} yet"
        )
    return ""


def stressed_market(
    market: AnalyticMarketConfig | LOBMarketConfig, scenario: StressScenario
) -> AnalyticMarketConfig | LOBMarketConfig:
    """The market config with ``scenario`` acting in it (its ``stress`` field; validated).

    :raises ValueError: with :func:`skip_reason` when the scenario cannot run on ``market``.
    """
    if reason := skip_reason(scenario, market):
        raise ValueError(reason)
    return type(market).model_validate(market.model_dump() | {"stress": scenario.model_dump()})


def stress_summary(
    batch: EpisodeBatch, baseline: EpisodeBatch | None, confidence: float
) -> dict[str, float | MeanCI]:
    """Summary of one policy's episodes under one scenario.

    ``reward`` and ``pnl`` (currency per episode) with Student-t intervals; against the same
    policy's unstressed episodes from the same seed, the paired differences
    ``reward_vs_baseline`` and ``pnl_vs_baseline`` (absent for the baseline itself);
    ``max_drawdown``: mean over episodes of the maximum drawdown of the cumulative PnL path
    (:func:`evaluation.metrics.max_drawdown`, currency); ``es99``: historical Expected Shortfall
    at 99% of the episode PnLs (:func:`evaluation.metrics.expected_shortfall`, currency, a loss
    is positive); ``abs_inventory``: mean ``|q_t|`` over the decisions and episodes (lots);
    ``fills``: mean fills per episode.

    :param batch: episodes with recorded paths (``rollout(..., record_paths=True)``).
    :param baseline: the same policy's unstressed episodes on the same seeds, or None.
    """
    if "pnl" not in batch.paths or "inventory" not in batch.paths:
        raise ValueError("stress_summary needs recorded paths: rollout(..., record_paths=True)")
    paired: dict[str, float | MeanCI] = {}
    if baseline is not None:
        if baseline.reward.shape != batch.reward.shape:
            raise ValueError(
                f"a paired comparison needs the same episodes: {batch.reward.size} episodes "
                f"against a baseline of {baseline.reward.size}"
            )
        paired["reward_vs_baseline"] = mean_ci(batch.reward - baseline.reward, confidence)
        paired["pnl_vs_baseline"] = mean_ci(batch.pnl - baseline.pnl, confidence)
    return {
        "reward": mean_ci(batch.reward, confidence),
        "pnl": mean_ci(batch.pnl, confidence),
        **paired,
        "max_drawdown": float(np.mean([max_drawdown(path) for path in batch.paths["pnl"]])),
        "es99": expected_shortfall(batch.pnl, 0.99),
        "abs_inventory": float(np.abs(batch.paths["inventory"]).mean()),
        "fills": float(batch.fills.mean()),
    }


def flat_stress_metrics(
    scenario: str, policy: str, summary: Mapping[str, float | MeanCI]
) -> dict[str, float]:
    """Metric keys ``stress/<scenario>/<policy>/<name>`` (docs/architecture.md#tracking);
    intervals give ``_mean``, ``_stderr``, ``_ci_low``, ``_ci_high`` as
    :func:`evaluation.summary.flat_metrics`."""
    return {
        f"stress/{scenario}/{key.removeprefix('eval/')}": value
        for key, value in flat_metrics(policy, summary).items()
    }


def stress_frame(
    summaries: Mapping[str, Mapping[str, Mapping[str, float | MeanCI]]],
) -> pd.DataFrame:
    """One row per (scenario, policy), intervals expanded into mean / low / high columns.

    :param summaries: ``{scenario: {policy: summary}}`` with :data:`BASELINE` among the scenarios.
    """
    frames = {name: results_frame(by_policy) for name, by_policy in summaries.items()}
    return pd.concat(frames, names=["scenario"])


def stress_heatmap(
    frame: pd.DataFrame,
    value: str = "reward_vs_baseline",
    unit: str = "currency",
    confidence: float = 0.95,
) -> plt.Figure:
    """Heatmap scenario x policy of the paired change ``value`` (mean, annotated with its CI
    half-width), diverging around 0. The baseline row (no change by definition) is left out.

    :param frame: :func:`stress_frame` output.
    :param value: a paired-difference column stem (``reward_vs_baseline``, ``pnl_vs_baseline``).
    :param unit: unit of the values (colour bar label).
    :param confidence: level of the intervals in ``frame`` (title).
    """
    rows = frame.drop(index=BASELINE, level="scenario", errors="ignore")
    if rows.empty:
        raise ValueError("no stressed run to plot: every scenario was skipped")
    mean = rows[f"{value}_mean"].unstack("policy")
    half = (0.5 * (rows[f"{value}_ci_high"] - rows[f"{value}_ci_low"])).unstack("policy")
    policies = list(dict.fromkeys(rows.index.get_level_values("policy")))
    scenarios = list(dict.fromkeys(rows.index.get_level_values("scenario")))
    mean, half = mean.loc[scenarios, policies], half.loc[scenarios, policies]
    labels = mean.map(lambda v: f"{v:+.3g}") + "\n± " + half.map(lambda v: f"{v:.2g}")
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(policies), 1.2 + 0.8 * len(scenarios)))
    limit = float(np.nanmax(np.abs(mean.to_numpy()))) or 1.0
    sns.heatmap(
        mean, annot=labels, fmt="", cmap="RdBu", center=0.0, vmin=-limit, vmax=limit,
        linewidths=0.5, cbar_kws={"label": f"paired change in mean {value.split('_')[0]} "
                                           f"({unit})"}, ax=ax,
    )  # fmt: skip
    ax.set_xlabel("policy")
    ax.set_ylabel("scenario")
    ax.set_title(
        f"Stress: {value.replace('_', ' ')} (mean ± {confidence:.0%} CI half-width, same seeds)"
    )
    fig.tight_layout()
    return fig

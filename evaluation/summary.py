"""Per-policy summary of a batch of episodes: the figures the results table shows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from agents.baselines import CarteaJaimungal
from configs.schema import AnalyticMarketConfig
from evaluation.rollout import EpisodeBatch
from evaluation.stats import MeanCI, mean_ci

# column -> (attribute of EpisodeBatch, description)
INTERVAL_COLUMNS = {
    "reward": "mean episode reward (the objective: PnL minus inventory penalties)",
    "pnl": "mean mark-to-market PnL X_T + q_T S_T - q_0 S_0",
}


def summarize(
    batch: EpisodeBatch, confidence: float, reference: EpisodeBatch | None = None
) -> dict[str, float | MeanCI]:
    """Summary figures of one policy's episodes.

    ``reward`` and ``pnl`` come with Student-t intervals; ``pnl_std`` is the standard
    deviation of the episode PnL; ``pnl_sharpe`` the per-episode ratio mean / std (not
    annualized); ``final_q_mean`` / ``final_q_std`` / ``abs_final_q`` describe the
    inventory left at the end; ``fills`` is the mean number of fills per episode and
    ``spread`` the mean quoted spread (bid depth + ask depth, price units).

    With a ``reference`` batch run on the same seeds (common random numbers),
    ``reward_vs_reference`` is the paired difference ``reward - reference.reward`` with its
    interval: far narrower than the difference of two unpaired intervals.
    """
    pnl_std = float(batch.pnl.std(ddof=1))
    paired: dict[str, float | MeanCI] = {}
    if reference is not None:
        if reference.reward.shape != batch.reward.shape:
            raise ValueError("a paired comparison needs batches of the same episodes")
        paired["reward_vs_reference"] = mean_ci(batch.reward - reference.reward, confidence)
    return paired | {
        "reward": mean_ci(batch.reward, confidence),
        "pnl": mean_ci(batch.pnl, confidence),
        "pnl_std": pnl_std,
        "pnl_sharpe": float(batch.pnl.mean() / pnl_std) if pnl_std > 0 else float("nan"),
        "final_q_mean": float(batch.final_inventory.mean()),
        "final_q_std": float(batch.final_inventory.std(ddof=1)),
        "abs_final_q": float(np.abs(batch.final_inventory).mean()),
        "fills": float(batch.fills.mean()),
        "spread": float(batch.spread.mean()),
    }


def optimal_value(market: AnalyticMarketConfig) -> float:
    """``h(0, q0)``: the exact optimum of the market's objective (Cartea-Jaimungal value)."""
    m = market
    cj = CarteaJaimungal(m.sigma, m.A, m.k, m.phi, m.alpha, m.T, m.q_max)
    return float(cj.value(0.0, m.q0))


def optimality(batch: EpisodeBatch, optimal: float) -> dict[str, float | MeanCI]:
    """``optimality_ratio`` = mean reward / optimal value, and its standard error."""
    n = batch.reward.size
    return {
        "optimality_ratio": float(batch.reward.mean() / optimal),
        "optimality_ratio_stderr": float(batch.reward.std(ddof=1) / np.sqrt(n) / abs(optimal)),
    }


def flat_metrics(label: str, summary: Mapping[str, float | MeanCI]) -> dict[str, float]:
    """Metric keys ``eval/<label>/<name>``; an interval gives ``_mean``, ``_ci_low``, ``_ci_high``,
    ``_stderr``."""
    out: dict[str, float] = {}
    for name, value in summary.items():
        key = f"eval/{label}/{name}"
        if isinstance(value, MeanCI):
            out[f"{key}_mean"] = value.mean
            out[f"{key}_stderr"] = value.stderr
            out[f"{key}_ci_low"] = value.low
            out[f"{key}_ci_high"] = value.high
        else:
            out[key] = float(value)
    return out


def results_frame(summaries: Mapping[str, Mapping[str, float | MeanCI]]) -> pd.DataFrame:
    """One row per policy, intervals expanded into mean / low / high columns."""
    rows = []
    for label, summary in summaries.items():
        row: dict[str, object] = {"policy": label}
        for name, value in summary.items():
            if isinstance(value, MeanCI):
                row[f"{name}_mean"] = value.mean
                row[f"{name}_ci_low"] = value.low
                row[f"{name}_ci_high"] = value.high
            else:
                row[name] = value
        rows.append(row)
    return pd.DataFrame(rows).set_index("policy")

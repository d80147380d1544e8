"""Per-policy summary of a batch of episodes: the figures the results table shows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from agents.base import Policy
from agents.baselines import CarteaJaimungal
from configs.schema import AnalyticMarketConfig, LOBMarketConfig, ReplayMarket
from envs.layout import DepthActionMap
from evaluation.exact import ExactAnalyticMarket
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


def optimal_value(market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket) -> float | None:
    """``h(0, q0)``: the exact optimum of the market's objective (Cartea-Jaimungal 2015 value
    function), or None for the order book, whose optimum is not known (its fills come from queue
    dynamics, not from the ``A exp(-k delta)`` law the value assumes), and for a replayed day."""
    if not isinstance(market, AnalyticMarketConfig):
        return None
    m = market
    cj = CarteaJaimungal(m.sigma, m.A, m.k, m.phi, m.alpha, m.T, m.q_max)
    return float(cj.value(0.0, m.q0))


def optimal_policy(
    market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket, action_map: DepthActionMap
) -> CarteaJaimungal | None:
    """The exact optimum of the market's objective (whose value :func:`optimal_value` gives),
    acting through ``action_map``, or None where it is not known."""
    if not isinstance(market, AnalyticMarketConfig):
        return None
    m = market
    return CarteaJaimungal(m.sigma, m.A, m.k, m.phi, m.alpha, m.T, m.q_max, action_map=action_map)


def optimum_mean(
    market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket,
    optimum: CarteaJaimungal | None,
) -> float | None:
    """The optimum policy's exact expected episode reward in this (discrete-time) market, the
    mean the control variate of :func:`optimality` needs; None where it is not known (no
    optimum, a stress scenario, a kill switch).

    It is not ``h(0, q0)``: the market decides every ``dt``, so the continuous-time optimum's
    quotes earn a little more or less (``6.4049`` against ``h = 6.3806`` in
    ``configs/cj_sac.yaml``; :mod:`evaluation.exact`).
    """
    exact = _exact_market(market)
    if optimum is None or exact is None:
        return None
    if optimum.action_map is None:
        raise ValueError("the optimum policy needs its action map to be evaluated")
    return exact.policy_value(optimum, optimum.action_map)


def _exact_market(
    market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket,
) -> ExactAnalyticMarket | None:
    if not isinstance(market, AnalyticMarketConfig):
        return None
    try:
        return ExactAnalyticMarket(market)
    except ValueError:  # stress scenario or kill switch: simulation only
        return None


def discrete_optimum(market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket) -> float | None:
    """The best expected episode reward of the market as simulated (decisions every ``dt``),
    by backward induction (:meth:`ExactAnalyticMarket.optimum`); None where not computable."""
    exact = _exact_market(market)
    return None if exact is None else exact.optimum()[0].start


def exact_ratios(
    market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket,
    policies: Mapping[str, Policy],
    action_map: DepthActionMap,
) -> dict[str, float]:
    """``J / h(0, q0)`` with J the exact expected episode reward, for each policy that quotes
    as a function of time and inventory alone (:mod:`evaluation.exact`); policies that read
    anything else, and markets without a known optimum, are left out."""
    h = optimal_value(market)
    exact = _exact_market(market)
    if h is None or exact is None:
        return {}
    out = {}
    for label, policy in policies.items():
        try:
            out[label] = exact.policy_value(policy, action_map) / h
        except ValueError:
            continue
    return out


def optimality(
    batch: EpisodeBatch,
    optimal: float,
    optimum: EpisodeBatch | None = None,
    optimum_expected: float | None = None,
) -> dict[str, float]:
    """``optimality_ratio`` = J / h(0, q0) and its standard error.

    Without ``optimum``, J is the batch's mean reward. With ``optimum``, the episodes of the
    optimal policy on the same seeds, J is estimated as ``E[R*] + mean(R - R*)``: a control
    variate, unbiased because ``optimum_expected`` = ``E[R*]`` is known exactly
    (:func:`optimum_mean`), with the error of the paired difference, a fraction of the plain
    mean's (the two policies share the mid paths and fill draws).
    """
    n = batch.reward.size
    if optimum is None:
        mean, std = float(batch.reward.mean()), float(batch.reward.std(ddof=1))
    else:
        if optimum.reward.shape != batch.reward.shape:
            raise ValueError("the control variate needs the optimum's episodes on the same seeds")
        if optimum_expected is None:
            raise ValueError("the control variate needs the optimum's exact expected reward")
        diff = batch.reward - optimum.reward
        mean, std = optimum_expected + float(diff.mean()), float(diff.std(ddof=1))
    return {
        "optimality_ratio": mean / optimal,
        "optimality_ratio_stderr": std / np.sqrt(n) / abs(optimal),
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

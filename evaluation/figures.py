"""Seaborn figures of an evaluation: PnL distributions, inventory paths, quotes vs inventory."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from agents.base import DepthPolicy, Policy
from evaluation.rollout import EpisodeBatch


def pnl_distributions(batches: Mapping[str, EpisodeBatch]) -> plt.Figure:
    """Box plots of episode reward and PnL per policy (same seeds for every policy)."""
    frame = pd.concat(
        [
            pd.DataFrame({"policy": label, "reward": b.reward, "PnL": b.pnl})
            for label, b in batches.items()
        ]
    ).melt(id_vars="policy", var_name="measure", value_name="value")
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(batches) + 2))
    sns.boxplot(frame, x="value", y="policy", hue="measure", ax=ax, fliersize=1.5, orient="h")
    ax.set_title("Episode reward and PnL per policy (common random numbers)")
    ax.set_xlabel("price units")
    fig.tight_layout()
    return fig


def inventory_dispersion(batches: Mapping[str, EpisodeBatch], horizon: float) -> plt.Figure:
    """Standard deviation of the inventory across paths over the episode, one line per policy.

    Every policy starts flat and inventories spread as fills arrive; how far they spread is
    the inventory risk each policy takes.
    """
    frames = []
    for label, b in batches.items():
        inv = b.paths.get("inventory")
        if inv is None:
            continue
        t = np.linspace(0.0, horizon, inv.shape[1])
        frames.append(pd.DataFrame({"time": t, "std": inv.std(axis=0), "policy": label}))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    if frames:
        sns.lineplot(pd.concat(frames), x="time", y="std", hue="policy", ax=ax)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_ylabel("std of inventory across paths (lots)")
    ax.set_title("Inventory risk over the episode")
    fig.tight_layout()
    return fig


def quotes_against_inventory(
    policies: Mapping[str, Policy], time_left: float, q_max: int
) -> plt.Figure:
    """Bid and ask depth against inventory at a given time left, for depth-based policies."""
    q = np.arange(-q_max, q_max + 1, dtype=np.float64)
    rows = []
    for label, policy in policies.items():
        if not isinstance(policy, DepthPolicy):
            continue
        bid, ask = policy.depths(np.full(q.shape, time_left), q)
        for side, depth in (("bid", bid), ("ask", ask)):
            depth = np.where(np.isfinite(depth), depth, np.nan)
            rows.append(
                pd.DataFrame({"inventory": q, "depth": depth, "side": side, "policy": label})
            )
    fig, ax = plt.subplots(figsize=(10, 5))
    if rows:
        sns.lineplot(pd.concat(rows), x="inventory", y="depth", hue="policy", style="side", ax=ax)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(f"Quoted depth against inventory (time left {time_left:g})")
    ax.set_ylabel("depth from mid (price units)")
    fig.tight_layout()
    return fig

"""Seaborn figures of an evaluation: PnL distributions, inventory paths, quotes vs inventory."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from agents.base import Policy
from envs.layout import INVENTORY, TIME_LEFT, DepthActionMap
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
    ax.set_xlabel("currency")
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
    policies: Mapping[str, Policy],
    action_map: DepthActionMap,
    observation: Mapping[str, np.ndarray],
    time_left: float,
    q_range: int,
) -> plt.Figure:
    """Bid and ask depth each policy quotes against inventory, at a given time left.

    Depths come from each policy's actions on synthetic observations mapped through the
    market's action map: what the market receives, for learned and analytic policies alike.
    The observations are copies of the first market of ``observation`` (a batched observation
    of the market, e.g. at reset: its mid, cash, book...) with the inventory on a grid and the
    given time left.
    """
    q = np.arange(-q_range, q_range + 1, dtype=np.float32).reshape(-1, 1)
    obs = {
        key: np.repeat(np.asarray(value, np.float32)[:1], q.shape[0], axis=0)
        for key, value in observation.items()
    }
    obs[INVENTORY] = q.reshape((-1, *obs[INVENTORY].shape[1:]))
    obs[TIME_LEFT] = np.full_like(obs[TIME_LEFT], time_left)
    rows = []
    for label, policy in policies.items():
        depths = action_map.to_depths(policy.act(obs))
        for side, column in (("bid", 0), ("ask", 1)):
            frame = {"inventory": q[:, 0], "depth": depths[:, column], "side": side,
                     "policy": label}  # fmt: skip
            rows.append(pd.DataFrame(frame))
    fig, ax = plt.subplots(figsize=(10, 5))
    sns.lineplot(pd.concat(rows), x="inventory", y="depth", hue="policy", style="side", ax=ax)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(f"Quoted depth against inventory (time left {time_left:g})")
    ax.set_ylabel("depth from mid (price units: currency, or ticks in the order book)")
    fig.tight_layout()
    return fig

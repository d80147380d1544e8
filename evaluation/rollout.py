"""Run a policy over a batch of episodes of a batched market and collect what happened.

Every policy is run from the same seed on the same batched market, so policies are
compared on common random numbers: the same mid paths and the same fill uniforms
(the markets draw their random numbers independently of the actions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium
import numpy as np

from agents.base import Policy
from envs.layout import INVENTORY


@dataclass
class EpisodeBatch:
    """Per-episode results of a batch of ``N`` episodes (arrays of shape ``(N,)``).

    ``reward``: sum of rewards; ``pnl``: sum of mark-to-market PnL changes
    (``X_T + q_T S_T - q_0 S_0``); ``penalty``: sum of inventory penalties;
    ``final_inventory``: ``q_T``; ``fills``: number of fills; ``spread``: mean quoted
    spread ``bid_depth + ask_depth`` over the episode's steps; ``steps``: decisions taken.
    ``paths`` (when recorded): ``(N, n_steps + 1)`` arrays ``pnl`` and ``inventory``.
    """

    reward: np.ndarray
    pnl: np.ndarray
    penalty: np.ndarray
    final_inventory: np.ndarray
    fills: np.ndarray
    spread: np.ndarray
    steps: np.ndarray
    paths: dict[str, np.ndarray] = field(default_factory=dict)


def rollout(
    env: gymnasium.vector.VectorEnv,
    policy: Policy,
    seed: int,
    max_steps: int = 1_000_000,
    record_paths: bool = False,
) -> EpisodeBatch:
    """One episode in each of the ``env.num_envs`` markets, from ``env.reset(seed=seed)``.

    Markets whose episode ends early (kill switch) stop accumulating; the loop ends when
    every market has ended.

    :param env: a batched market (``next_step`` or ``same_step`` autoreset).
    :param policy: the strategy.
    :param seed: seed of the reset (the common random numbers).
    :param max_steps: safety bound on the number of batched steps.
    :param record_paths: also keep the PnL and inventory path of every episode.
    """
    n = env.num_envs
    policy.reset()
    obs, _ = env.reset(seed=seed)
    alive = np.ones(n, np.bool_)
    reward = np.zeros(n)
    pnl = np.zeros(n)
    penalty = np.zeros(n)
    fills = np.zeros(n, np.int64)
    spread_sum = np.zeros(n)
    steps = np.zeros(n, np.int64)
    final_inventory = np.asarray(obs[INVENTORY], np.float64).reshape(-1).copy()
    pnl_path: list[np.ndarray] = [np.zeros(n)]
    inv_path: list[np.ndarray] = [final_inventory.copy()]
    for _ in range(max_steps):
        action = policy.act(obs)
        obs, r, terminated, truncated, info = env.step(action)
        reward += np.where(alive, r, 0.0)
        pnl += np.where(alive, info["dpnl"], 0.0)
        penalty += np.where(alive, info["inventory_penalty"], 0.0)
        fills += alive & info["fill_bid"]
        fills += alive & info["fill_ask"]
        spread_sum += np.where(alive, info["bid_depth"] + info["ask_depth"], 0.0)
        steps += alive
        last_obs = info["final_obs"] if "final_obs" in info else obs
        final_inventory = np.where(
            alive, np.asarray(last_obs[INVENTORY], np.float64).reshape(-1), final_inventory
        )
        if record_paths:
            pnl_path.append(pnl.copy())
            inv_path.append(final_inventory.copy())
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    else:
        raise RuntimeError(f"episodes did not end within {max_steps} steps")
    paths = {}
    if record_paths:
        paths = {"pnl": np.stack(pnl_path, 1), "inventory": np.stack(inv_path, 1)}
    return EpisodeBatch(
        reward=reward,
        pnl=pnl,
        penalty=penalty,
        final_inventory=final_inventory,
        fills=fills,
        spread=spread_sum / np.maximum(steps, 1),
        steps=steps,
        paths=paths,
    )

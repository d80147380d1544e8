"""A numpy ring buffer of transitions, fed by a batched environment."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class Batch(NamedTuple):
    """A batch of transitions, every field float32 with a leading batch axis ``B``.

    ``terminated`` and ``truncated`` are kept apart: only termination cuts the bootstrap
    (:attr:`discount_mask`); a truncated transition (time limit) still bootstraps from
    ``next_obs``, which must be the true next observation, not the reset one.
    """

    obs: np.ndarray
    """``(B, obs_dim)`` observations."""
    action: np.ndarray
    """``(B, action_dim)`` actions taken, in ``[-1, 1]``."""
    reward: np.ndarray
    """``(B,)`` rewards."""
    next_obs: np.ndarray
    """``(B, obs_dim)`` observations after the action (before any autoreset)."""
    terminated: np.ndarray
    """``(B,)`` 1.0 where the episode ended in a terminal state (no value beyond), else 0.0."""
    truncated: np.ndarray
    """``(B,)`` 1.0 where the episode was cut short (time limit), else 0.0; informational only."""

    @property
    def discount_mask(self) -> np.ndarray:
        """``1 - terminated``: the factor on the bootstrapped next value."""
        return 1.0 - self.terminated


class ReplayBuffer:
    """A fixed-capacity ring buffer of float32 transitions with uniform sampling.

    The oldest transitions are overwritten once ``capacity`` is reached. Sampling draws
    indices (with replacement) from the buffer's own ``np.random.Generator``; its state is part
    of :meth:`state_dict`, so a restored buffer samples exactly what the original would have.

    :param capacity: maximum number of transitions kept.
    :param obs_dim: observation features.
    :param action_dim: action components.
    :param seed: seed of the sampling generator.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, seed: int | None = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs_dim = int(obs_dim)
        self.action_dim = int(action_dim)
        self.rng = np.random.default_rng(seed)
        self.obs = np.zeros((self.capacity, self.obs_dim), np.float32)
        self.action = np.zeros((self.capacity, self.action_dim), np.float32)
        self.reward = np.zeros((self.capacity,), np.float32)
        self.next_obs = np.zeros((self.capacity, self.obs_dim), np.float32)
        self.terminated = np.zeros((self.capacity,), np.float32)
        self.truncated = np.zeros((self.capacity,), np.float32)
        self.pos = 0
        """Index the next transition is written to."""
        self.size = 0
        """Number of transitions held."""

    _FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")

    def __len__(self) -> int:
        return self.size

    def add_batch(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Append ``N`` transitions, one per environment of a batched env step.

        :param obs: ``(N, obs_dim)``.
        :param action: ``(N, action_dim)``.
        :param reward: ``(N,)``.
        :param next_obs: ``(N, obs_dim)``, the true next observations (for an env that
            autoresets, the final observation of the finished episodes, not the reset one).
        :param terminated: ``(N,)`` bool or 0/1.
        :param truncated: ``(N,)`` bool or 0/1.
        """
        arrays = {
            "obs": np.asarray(obs, np.float32).reshape(-1, self.obs_dim),
            "action": np.asarray(action, np.float32).reshape(-1, self.action_dim),
            "reward": np.asarray(reward, np.float32).reshape(-1),
            "next_obs": np.asarray(next_obs, np.float32).reshape(-1, self.obs_dim),
            "terminated": np.asarray(terminated, np.float32).reshape(-1),
            "truncated": np.asarray(truncated, np.float32).reshape(-1),
        }
        n = arrays["obs"].shape[0]
        lengths = {k: v.shape[0] for k, v in arrays.items()}
        if set(lengths.values()) != {n}:
            raise ValueError(f"add_batch: inconsistent batch lengths {lengths}")
        if n > self.capacity:  # only the last `capacity` transitions survive
            arrays = {k: v[n - self.capacity :] for k, v in arrays.items()}
            self.pos = (self.pos + n - self.capacity) % self.capacity
            n = self.capacity
        idx = (self.pos + np.arange(n)) % self.capacity
        for k, v in arrays.items():
            getattr(self, k)[idx] = v
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.size, size=batch_size)
        return Batch(*(getattr(self, k)[idx] for k in self._FIELDS))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the buffer exactly: contents, position, size, RNG."""
        state: dict[str, Any] = {k: getattr(self, k)[: self.size].copy() for k in self._FIELDS}
        state.update(
            capacity=self.capacity,
            pos=self.pos,
            size=self.size,
            rng_state=self.rng.bit_generator.state,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from a buffer of the same capacity and dims."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"replay capacity mismatch: state has {state['capacity']}, buffer {self.capacity}"
            )
        size = int(state["size"])
        for k in self._FIELDS:
            dst = getattr(self, k)
            src = np.asarray(state[k], np.float32)
            if src.shape[1:] != dst.shape[1:] or src.shape[0] != size:
                raise ValueError(f"replay field {k}: shape {src.shape} does not fit {dst.shape}")
            dst[:] = 0.0
            dst[:size] = src
        self.pos = int(state["pos"])
        self.size = size
        self.rng.bit_generator.state = state["rng_state"]

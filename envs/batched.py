"""The batched face every market shares: a ``gymnasium.vector.VectorEnv`` over a market core.

A market core holds the state of ``N`` markets as arrays and exposes ``seed(seed)``,
``reset_state(mask)``, ``observe()``, ``step(actions, active) -> (obs, reward,
terminated, info)`` and ``state_dict()`` / ``load_state_dict(state)`` (everything the
future depends on, for checkpoints). This class adds what gymnasium asks of a vector env:
seeding through ``reset(seed=...)``, the declared autoreset mode, and ``final_obs``
reporting.

Autoreset: ``next_step`` (gymnasium's default: the step after an episode ends resets that
market and returns reward 0) or ``same_step`` (the ending step returns the reset
observation; the last observation is in ``info["final_obs"]``, a dict of batched arrays
valid where ``info["_final_obs"]`` is True).
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space
from gymnasium.vector.vector_env import AutoresetMode

from envs.layout import DepthActionMap

_MODE_NAMES = {"next_step": "NextStep", "same_step": "SameStep", "disabled": "Disabled"}


def autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    """``AutoresetMode`` from an enum, its value or its snake_case name; disabled is refused."""
    if isinstance(mode, AutoresetMode):
        value = mode.value
    elif mode in _MODE_NAMES:
        value = _MODE_NAMES[mode]
    elif mode in _MODE_NAMES.values():
        value = mode
    else:
        raise ValueError(f"autoreset_mode must be one of {sorted(_MODE_NAMES)}, got {mode!r}")
    if value == AutoresetMode.DISABLED.value:
        raise ValueError("autoreset_mode 'disabled' is not supported; use next_step or same_step")
    return AutoresetMode(value)


def _seed_core(
    core: MarketCore, seed: int | None, seeded: bool, np_random: np.random.Generator
) -> bool:
    """Seed the core's streams on ``reset(seed=...)``; the first reset without a seed derives
    them from gymnasium's generator; later ones continue the streams. Returns True."""
    if seed is not None:
        core.seed(seed)
    elif not seeded:
        core.seed(int(np_random.integers(2**63)))
    return True


class MarketCore(Protocol):
    """What :class:`BatchedMarketEnv` needs of a market core."""

    def seed(self, seed: int | None) -> None: ...

    def reset_state(self, mask: np.ndarray | None = None) -> None: ...

    def observe(self) -> dict[str, np.ndarray]: ...

    def step(
        self, action: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, Any]]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class BatchedMarketEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` markets of one core stepped together in one kernel call.

    :param core: the market core (state of all markets).
    :param single_observation_space: one market's observation space.
    :param action_map: the map from actions in ``[-1, 1]^2`` to quote depths.
    :param num_envs: number of markets.
    :param mode: ``"next_step"`` or ``"same_step"`` (or an ``AutoresetMode``).
    """

    def __init__(
        self,
        core: MarketCore,
        single_observation_space: spaces.Dict,
        action_map: DepthActionMap,
        num_envs: int,
        mode: str | AutoresetMode,
    ) -> None:
        self.core = core
        self.action_map = action_map
        self.num_envs = num_envs
        self.autoreset_mode = autoreset_mode(mode)
        self.metadata = {"render_modes": [], "autoreset_mode": self.autoreset_mode}
        self.single_action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.single_observation_space = single_observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._needs_reset = np.zeros(num_envs, np.bool_)
        self._seeded = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._seeded = _seed_core(self.core, seed, self._seeded, self.np_random)
        self.core.reset_state()
        self._needs_reset[:] = False
        return self.core.observe(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self.autoreset_mode is AutoresetMode.NEXT_STEP and self._needs_reset.any():
            restart = self._needs_reset.copy()
            self.core.reset_state(restart)
            obs, reward, terminated, core_info = self.core.step(actions, active=~restart)
        else:
            obs, reward, terminated, core_info = self.core.step(actions)
        info: dict[str, Any] = dict(core_info)
        truncated = np.zeros(self.num_envs, np.bool_)
        if self.autoreset_mode is AutoresetMode.SAME_STEP and terminated.any():
            info["final_obs"] = obs
            info["_final_obs"] = terminated.copy()
            self.core.reset_state(terminated)
            obs = self.core.observe()
        self._needs_reset = terminated.copy()
        return obs, reward, terminated, truncated, info

    def observe(self) -> dict[str, np.ndarray]:
        """The current batched observation (e.g. after ``load_state_dict``)."""
        return self.core.observe()

    def state_dict(self) -> dict[str, Any]:
        """The markets' state, generator states and pending autoresets (for checkpoints)."""
        return {"core": self.core.state_dict(), "needs_reset": self._needs_reset.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; stepping then continues exactly as it would have."""
        self.core.load_state_dict(state["core"])
        self._needs_reset = np.asarray(state["needs_reset"], np.bool_).copy()
        self._seeded = True


class SingleMarketEnv(gymnasium.Env):
    """The single-market face: a market core of size one, unbatched.

    ``reset(seed=...)`` seeds the core's streams (the first reset without a seed derives
    them from gymnasium's generator); stepping an ended episode raises ``ResetNeeded``.
    Subclasses build the config and the core, and may override :meth:`_unbatch_info`.

    :param core: a market core holding one market.
    :param observation_space: the market's observation space.
    :param action_map: the map from actions in ``[-1, 1]^2`` to quote depths.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's own convention

    def __init__(
        self, core: MarketCore, observation_space: spaces.Dict, action_map: DepthActionMap
    ) -> None:
        self.core = core
        self.action_map = action_map
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = observation_space
        self._seeded = False
        self._done = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._seeded = _seed_core(self.core, seed, self._seeded, self.np_random)
        self.core.reset_state()
        self._done = False
        return _unbatch(self.core.observe()), {}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._done:
            raise gymnasium.error.ResetNeeded(
                "step() called before reset() or after the episode ended; call reset() first"
            )
        obs, reward, terminated, info = self.core.step(np.reshape(action, (1, 2)))
        self._done = bool(terminated[0])
        return _unbatch(obs), float(reward[0]), self._done, False, self._unbatch_info(info)

    def _unbatch_info(self, info: dict[str, Any]) -> dict[str, Any]:
        """The one market's ``info`` from the core's batched one."""
        return {key: value[0] for key, value in info.items()}


def _unbatch(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: value[0] for key, value in obs.items()}

"""The one interface every strategy implements (docs/agents.md#policy-interface)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from envs.layout import INVENTORY, TIME_LEFT, DepthActionMap

ObservationBatch = Mapping[str, np.ndarray]


class Policy(ABC):
    """A strategy: a batch of observations in, a batch of actions out.

    ``act`` receives the market's dict observation with a leading batch axis ``(N, ...)``
    and returns float32 actions ``(N, action_dim)`` in the market's action space.
    """

    name: str = "policy"

    @abstractmethod
    def act(self, observation: ObservationBatch) -> np.ndarray:
        """Actions for a batch of observations."""

    def reset(self) -> None:  # noqa: B027 - stateless policies have nothing to forget
        """Forget any state carried between steps (none by default)."""


class DepthPolicy(Policy):
    """A policy defined by its quote depths as functions of time left and inventory.

    Subclasses implement :meth:`depths`; :meth:`act` reads ``time_left`` and ``inventory``
    from the observation and maps the depths to actions with the market's action map.

    :param action_map: the market's :class:`~envs.layout.DepthActionMap`
        (``env.unwrapped.action_map``); needed by :meth:`act`, not by :meth:`depths`.
    """

    def __init__(self, action_map: DepthActionMap | None = None) -> None:
        self.action_map = action_map

    @abstractmethod
    def depths(
        self, time_left: np.ndarray, inventory: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask depths (price units, distance from the mid) for arrays of states."""

    def act(self, observation: ObservationBatch) -> np.ndarray:
        time_left = np.asarray(observation[TIME_LEFT], np.float64).reshape(-1)
        inventory = np.rint(np.asarray(observation[INVENTORY], np.float64).reshape(-1))
        if self.action_map is None:
            raise ValueError(
                f"{type(self).__name__} has no action map: pass "
                "action_map=env.unwrapped.action_map "
                "to use it as a Policy"
            )
        bid, ask = self.depths(time_left, inventory)
        return self.action_map.to_action(bid, ask)

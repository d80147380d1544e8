"""The Python side of the exchange layer: the agent's arrays of ``N`` markets and the step call.

docs/exchange.md#state-bundles. :class:`ExchangeCore` allocates the agent's state
(:class:`envs.exchange.layout.Own`), checks actions, calls the feed's step kernel and builds the
``info`` every market with a book returns; a market's core (:class:`envs.lob.core.LOBMarketCore`,
:class:`envs.replay.core.ReplayMarketCore`) adds its feed bundle, its reset and its own state.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from envs.exchange.layout import (
    N_FILL_COLS,
    N_OUT,
    OUT_ASK_PX,
    OUT_BID_PX,
    OUT_DPNL,
    OUT_FEES,
    OUT_PENALTY,
    OUT_REWARD,
    OUT_UNLIQUIDATED,
    OUT_VALUE,
    Own,
    obs_size,
    split_obs,
)
from envs.layout import checked_actions


class ExchangeCore:
    """The agent's side of ``N`` markets: arrays, checkpoints and the step call.

    Subclasses set ``feed`` (their bundle) and call :meth:`_allocate` in ``__init__``; they may
    extend ``_STATE`` and override :meth:`_before_step` / :meth:`_step_info`.
    """

    _STATE: tuple[str, ...] = ("ist", "fst", "rng", "step_count", "nfill", "fills", "obs")
    """The arrays that hold everything the markets' future depends on (besides the feed's
    fixed data)."""

    num_envs: int
    L: int
    params: np.ndarray
    rng: np.ndarray
    feed: Any

    def _allocate(
        self,
        num_envs: int,
        n_int: int,
        n_float: int,
        max_fills: int,
        kernels: SimpleNamespace,
        parallel: bool,
    ) -> None:
        """The agent's arrays (``ist`` ``(N, n_int)``, ``fst`` ``(N, n_float)``, the fill log,
        decision counts, observations) and the feed's step kernel."""
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self._kernel = kernels.step_kernel_parallel if parallel else kernels.step_kernel
        self.ist = np.zeros((num_envs, n_int), np.int64)
        self.fst = np.zeros((num_envs, n_float))
        self.fills = np.zeros((num_envs, max_fills, N_FILL_COLS))
        self.nfill = np.zeros(num_envs, np.int64)
        self.step_count = np.zeros(num_envs, np.int64)
        self.obs = np.zeros((num_envs, obs_size(self.L)), np.float32)
        self._all = np.ones(num_envs, np.bool_)

    @property
    def own(self) -> Own:
        """The agent's arrays as the exchange layer's kernels take them (built again only when
        an array was replaced, e.g. the random streams by ``seed``)."""
        arrays = (self.ist, self.fst, self.rng, self.params, self.fills, self.nfill,
                  self.step_count, self.obs)  # fmt: skip
        own = self.__dict__.get("_own")
        if own is None or any(a is not b for a, b in zip(own, arrays, strict=True)):
            own = self._own = Own(*arrays)
        return own

    def order_args(self) -> tuple[Any, ...]:
        """``(feed, ist, fst, params, fills, nfill)``: the leading arguments of the layer's
        order functions (``place``, ``apply_quotes``, ...) for calling them on these markets."""
        return self.feed, self.ist, self.fst, self.params, self.fills, self.nfill

    def state_dict(self) -> dict[str, Any]:
        """Copies of the state arrays and random streams (for checkpoints)."""
        return {name: getattr(self, name).copy() for name in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same ``num_envs``, config and feed data)."""
        for name in self._STATE:
            target = getattr(self, name)
            if state[name].shape != target.shape:
                raise ValueError(f"state {name!r} of shape {state[name].shape} cannot load into "
                                 f"{target.shape} (another num_envs, config or feed)")  # fmt: skip
            target[...] = state[name]

    def observe(self) -> dict[str, np.ndarray]:
        """The batched observation (fresh float32 arrays with a leading batch axis)."""
        return split_obs(self.obs.copy(), self.L)

    def _before_step(self) -> Any:
        """What :meth:`_step_info` needs from before the kernel ran (nothing here)."""
        return None

    def _step_info(self, before: Any) -> dict[str, np.ndarray]:
        """The market's own ``info`` entries (none here)."""
        return {}

    def step(
        self, action: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance the markets selected by ``active`` (all when None) by one decision."""
        n = self.num_envs
        action = checked_actions(action, n)
        out = np.empty((N_OUT, n))
        done = np.empty(n, np.bool_)
        before = self._before_step()
        active = self._all if active is None else active
        self._kernel(action, self.feed, self.own, active, out, done)
        info = {
            "dpnl": out[OUT_DPNL],
            "inventory_penalty": out[OUT_PENALTY],
            "fees": out[OUT_FEES],
            "bid_price": out[OUT_BID_PX],
            "ask_price": out[OUT_ASK_PX],
            "unliquidated": out[OUT_UNLIQUIDATED],
            "value": out[OUT_VALUE],
            "n_fills": self.nfill.copy(),
            "fills": self.fills[:, : max(1, int(self.nfill.max(initial=0)))].copy(),
            **self._step_info(before),
        }
        return self.observe(), out[OUT_REWARD], done, info

"""Historical replay (docs/markets.md#replay): recorded events drive the book, the
agent's orders (queue position, latency, fees) are matched against them and never move it.

- :mod:`envs.replay.config`: :class:`ReplayMarketConfig` (``kind: replay``);
- :mod:`envs.replay.tape`: a LOBSTER (L3) or Binance (L2) day as the kernel's arrays;
- :mod:`envs.replay.core`: the agent's orders against the tape (one numba kernel for N replays);
- :mod:`envs.replay.env`: the gymnasium faces, ``mmrl/ReplayMarket-v0``.

The agent's orders are the exchange layer's (:mod:`envs.exchange`, docs/exchange.md); numba
checks a cached kernel against its own file only, so on import
:func:`envs.kernel_cache.drop_stale_kernel_cache` empties this package's numba cache when any
source of the kernels changed (:data:`envs.exchange.KERNEL_SOURCES`).
"""

from __future__ import annotations

from pathlib import Path

from envs.exchange import KERNEL_SOURCES
from envs.kernel_cache import drop_stale_kernel_cache

_ENVS = Path(__file__).resolve().parent.parent
drop_stale_kernel_cache(_ENVS / "replay", KERNEL_SOURCES, "replay_kernels.sha256")

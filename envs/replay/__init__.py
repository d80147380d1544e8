"""Historical replay (docs/markets.md#replay): recorded events drive the book, the
agent's orders (queue position, latency, fees) are matched against them and never move it.

- :mod:`envs.replay.config`: :class:`ReplayMarketConfig` (``kind: replay``);
- :mod:`envs.replay.tape`: a LOBSTER (L3) or Binance (L2) day as the kernel's arrays;
- :mod:`envs.replay.core`: the agent's orders against the tape (one numba kernel for N replays);
- :mod:`envs.replay.env`: the gymnasium faces, ``mmrl/ReplayMarket-v0``.

The step kernel inlines functions of :mod:`envs.lob.book` and :mod:`envs.lob.core`; numba checks
a cached kernel against its own file only, so on import
:func:`envs.kernel_cache.drop_stale_kernel_cache` empties this package's numba cache when any of
those sources changed (as :mod:`envs.lob` does).
"""

from __future__ import annotations

from pathlib import Path

from envs.kernel_cache import drop_stale_kernel_cache

_ENVS = Path(__file__).resolve().parent.parent
drop_stale_kernel_cache(
    _ENVS / "replay",
    [_ENVS / "replay" / "core.py", _ENVS / "lob" / "book.py", _ENVS / "lob" / "core.py"],
    "replay_kernels.sha256",
)

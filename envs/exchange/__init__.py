"""The exchange layer: the agent's orders in every market with a book (docs/exchange.md).

- :mod:`envs.exchange.layout`: the agent's named state, parameters, fills and observation;
- :mod:`envs.exchange.orders`: quotes to orders, fills, accounting, liquidation and the one
  step loop, compiled per feed (:func:`envs.exchange.orders.bind`);
- :mod:`envs.exchange.queue`, :mod:`envs.exchange.latency`: the queue and latency models;
- :mod:`envs.exchange.models`: the registry of named models (queue, latency, fee presets, risk
  controls) and the packing of their parameters;
- :mod:`envs.exchange.rng`: the kernels' per-market random streams.

The feeds (:mod:`envs.lob.core`, :mod:`envs.replay.core`) compile this package's generic
functions against their own; those kernels are cached beside :mod:`envs.exchange.orders`. numba
checks a cached kernel against its own source file only, so on import
:func:`envs.kernel_cache.drop_stale_kernel_cache` empties this package's cache when any source
the kernels are built from changed.
"""

from __future__ import annotations

from pathlib import Path

from envs.kernel_cache import drop_stale_kernel_cache

_ENVS = Path(__file__).resolve().parent.parent
KERNEL_SOURCES = [
    *sorted((_ENVS / "exchange").glob("*.py")),
    _ENVS / "lob" / "book.py",
    _ENVS / "lob" / "core.py",
    _ENVS / "replay" / "core.py",
]
"""Every file the order-book and replay kernels are compiled from."""
drop_stale_kernel_cache(_ENVS / "exchange", KERNEL_SOURCES, "exchange_kernels.sha256")

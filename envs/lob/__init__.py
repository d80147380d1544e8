"""The event-driven limit-order-book market (docs/markets.md#order-book).

- :mod:`envs.lob.book`: N books as numba arrays, their exact (Gillespie) simulation under the
  Cont-Stoikov-Talreja (2010) or the queue-reactive (Huang-Lehalle-Rosenbaum 2015) order flow,
  and the agent's resting orders (FIFO queue position, queue models);
- :mod:`envs.lob.events`: one simulated book's events and book frames in the canonical
  market-data schema (the kernel's event log);
- :mod:`envs.lob.validation`: exact model quantities against simulation;
- :mod:`envs.lob.core`: the book as a feed of the exchange layer (:mod:`envs.exchange`: the
  agent's quotes, latency, fees, limits and accounting; docs/exchange.md);
- :mod:`envs.lob.config` and :mod:`envs.lob.env`: the typed config and the gymnasium faces.

The kernels are compiled with ``numba.njit(cache=True)``. numba checks a cached kernel against
its own source file only, so a kernel of :mod:`envs.lob.core`, which inlines functions of
:mod:`envs.lob.book` and :mod:`envs.exchange`, would survive an edit of those with the old code.
:func:`envs.kernel_cache.drop_stale_kernel_cache` prevents that: on import it compares a hash
of every kernel source (:data:`envs.exchange.KERNEL_SOURCES`) with the one stored beside the
cache and empties this package's cache when they differ.
"""

from __future__ import annotations

from pathlib import Path

from envs.exchange import KERNEL_SOURCES
from envs.kernel_cache import drop_stale_kernel_cache

_HERE = Path(__file__).resolve().parent
drop_stale_kernel_cache(_HERE, KERNEL_SOURCES, "lob_kernels.sha256")

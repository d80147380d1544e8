"""The event-driven limit-order-book market (DESIGN.md section 4, ``lob``).

- :mod:`envs.lob.book`: N books as numba arrays, their exact (Gillespie) simulation under the
  Cont-Stoikov-Talreja (2010) or the queue-reactive (Huang-Lehalle-Rosenbaum 2015) order flow,
  and the agent's resting orders (FIFO queue position, queue models);
- :mod:`envs.lob.events`: one simulated book's events and book frames in the canonical
  market-data schema (the kernel's event log);
- :mod:`envs.lob.validation`: exact model quantities against simulation;
- :mod:`envs.lob.core`: the agent's quotes, latency, fees, limits and accounting (step kernel);
- :mod:`envs.lob.config` and :mod:`envs.lob.env`: the typed config and the gymnasium faces.

The kernels are compiled with ``numba.njit(cache=True)``. numba checks a cached kernel against
its own source file only, so the step kernel of :mod:`envs.lob.core`, which inlines functions of
:mod:`envs.lob.book`, would survive an edit of ``book.py`` with the old code.
:func:`_drop_stale_kernel_cache` prevents that: on import it compares a hash of both sources with
the one stored beside the cache and empties this package's cache when they differ.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_SOURCES = ("book.py", "core.py")


def _drop_stale_kernel_cache() -> None:
    """Empty ``envs/lob/__pycache__``'s numba files when ``book.py`` or ``core.py`` changed."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return  # a custom cache location is the user's to manage
    here = Path(__file__).resolve().parent
    cache = here / "__pycache__"
    try:
        digest = hashlib.sha256(b"".join((here / n).read_bytes() for n in _SOURCES)).hexdigest()
        stamp = cache / "lob_kernels.sha256"
        if stamp.is_file() and stamp.read_text() == digest:
            return
        for path in cache.glob("*.nb[ic]"):
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # read-only install: numba then cannot cache here either
        return


_drop_stale_kernel_cache()

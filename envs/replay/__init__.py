"""Historical replay (DESIGN.md section 4, ``replay``): recorded events drive the book, the
agent's orders (queue position, latency, fees) are matched against them and never move it.

- :mod:`envs.replay.config`: :class:`ReplayMarketConfig` (``kind: replay``);
- :mod:`envs.replay.tape`: a LOBSTER (L3) or Binance (L2) day as the kernel's arrays;
- :mod:`envs.replay.core`: the agent's orders against the tape (one numba kernel for N replays);
- :mod:`envs.replay.env`: the gymnasium faces, ``mmrl/ReplayMarket-v0``.

The step kernel inlines functions of :mod:`envs.lob.book` and :mod:`envs.lob.core`; numba checks
a cached kernel against its own file only, so on import :func:`_drop_stale_kernel_cache` empties
this package's numba cache when any of those sources changed (as :mod:`envs.lob` does).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_SOURCES = ("replay/core.py", "lob/book.py", "lob/core.py")


def _drop_stale_kernel_cache() -> None:
    """Empty ``envs/replay/__pycache__``'s numba files when a kernel source changed."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return  # a custom cache location is the user's to manage
    envs = Path(__file__).resolve().parent.parent
    cache = envs / "replay" / "__pycache__"
    try:
        digest = hashlib.sha256(b"".join((envs / n).read_bytes() for n in _SOURCES)).hexdigest()
        stamp = cache / "replay_kernels.sha256"
        if stamp.is_file() and stamp.read_text() == digest:
            return
        for path in cache.glob("*.nb[ic]"):
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # read-only install: numba then cannot cache here either
        return


_drop_stale_kernel_cache()

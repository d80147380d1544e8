"""Seeds: one root seed per run, one independent stream per purpose.

Streams are children of ``numpy.random.SeedSequence(seed)`` by position in
:data:`STREAMS`, so adding a stream at the end never changes the existing ones, and no
two purposes ever share a seed.
"""

from __future__ import annotations

import os
import random

import numpy as np

STREAMS = ("evaluation", "training_env", "agent", "replay", "stress", "validation")


def stream_seed(seed: int, stream: str) -> int:
    """A 32-bit seed for ``stream``, spawned from the root ``seed``."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; known: {STREAMS}")
    child = np.random.SeedSequence(seed, spawn_key=(STREAMS.index(stream),))
    return int(child.generate_state(1, np.uint32)[0])


def seed_everything(seed: int) -> None:
    """Seed the global generators third-party code may use (Python, NumPy's legacy one).

    The platform's own components never use them: they take their streams from
    :func:`stream_seed`.
    """
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(stream_seed(seed, "agent") % (2**32))  # noqa: NPY002 - for third-party code

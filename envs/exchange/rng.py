"""Random numbers inside the kernels: xoshiro256** (Blackman & Vigna, ACM TOMS 47(4), 2021).

``rng[m, :]`` uint64 is market ``m``'s own state, seeded from ``SeedSequence.spawn``. A
generator per market, advanced inside the kernel, keeps each market's path independent of ``N``,
of the iteration order and of threads (``prange``); a numpy ``Generator`` argument would be one
stream shared by all markets, and pre-drawn uniforms need a count that is not known in advance.
"""

from __future__ import annotations

import numba
import numpy as np

_INV_2_53 = 1.0 / 9007199254740992.0


@numba.njit(inline="always", cache=True)
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@numba.njit(inline="always", cache=True)
def next_u64(rng, m):
    s0, s1, s2, s3 = rng[m, 0], rng[m, 1], rng[m, 2], rng[m, 3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    rng[m, 0], rng[m, 1], rng[m, 2], rng[m, 3] = s0, s1, s2, s3
    return result


@numba.njit(inline="always", cache=True)
def uniform(rng, m):
    """A uniform double on [0, 1) (53 random bits)."""
    return np.float64(next_u64(rng, m) >> np.uint64(11)) * _INV_2_53


@numba.njit(inline="always", cache=True)
def exponential(rng, m):
    """A standard exponential by inversion."""
    return -np.log1p(-uniform(rng, m))


def seed_states(seed: int | np.random.SeedSequence | None, n: int) -> np.ndarray:
    """``(n, 4)`` uint64 xoshiro states, one per market, from ``SeedSequence(seed).spawn(n)``."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    states = np.stack([child.generate_state(4, np.uint64) for child in ss.spawn(n)])
    states[np.all(states == 0, axis=1), 0] = 1  # the all-zero state is xoshiro's fixed point
    return states

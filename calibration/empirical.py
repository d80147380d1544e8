"""Empirical laws without a parametric model: the spread's transition matrix and order sizes.

- Spread (docs/calibration.md#spread-and-sizes): the spread in ticks sampled every ``dt``
  seconds, binned (``bin_width`` ticks per state, the last state open-ended), and the counts of
  transitions
  between consecutive samples; ``P[i, j] = counts[i, j] / sum_j counts[i, j]`` is the MLE of a
  Markov chain's transition matrix (Anderson & Goodman 1957), with SE ``sqrt(P (1 - P) / n_i)``.
- Sizes: per event kind (limit, cancel, market order), the size in lots rounded UP to a whole
  lot (at least 1), capped at ``MAX_SIZE_TABLE`` lots (the cap holds the tail's mass): the
  multinomial MLE ``p_j = n_j / n`` with SE ``sqrt(p_j (1 - p_j) / n)``, the mean and its SE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.params import MAX_SIZE_TABLE
from calibration.sample import FlowSample
from data.schema import ADD, CANCEL, TRADE


@dataclass
class SpreadTransitions:
    states: list[str]  # e.g. "1", "2", ..., ">=8" or "1-7", "8-14", ...
    counts: list[list[int]]
    probs: list[list[float]]
    probs_se: list[list[float]]
    dt: float
    bin_width: int


def spread_transitions(
    sample: FlowSample, dt: float = 1.0, max_states: int = 12
) -> SpreadTransitions:
    n = int(np.floor((sample.row_t[-1] - sample.row_t[0]) / dt)) + 1
    rows = sample.at(sample.row_t[0] + dt * np.arange(n))
    open_ = sample.row_dt[rows] > 0
    spread = sample.ask_px[rows, 0] - sample.bid_px[rows, 0]
    ok = np.isfinite(spread) & open_ & (spread >= 1)
    med = float(np.median(spread[ok])) if ok.any() else 1.0
    width = max(1, int(np.ceil(2.0 * med / max_states)))
    state = np.minimum((np.where(ok, spread, 1) - 1) // width, max_states - 1).astype(np.int64)
    pair = ok[:-1] & ok[1:]
    K = max_states
    counts = np.bincount(state[:-1][pair] * K + state[1:][pair], minlength=K * K).reshape(K, K)
    used = np.flatnonzero((counts.sum(axis=1) + counts.sum(axis=0)) > 0)
    last = int(used.max()) + 1 if used.size else 1
    counts = counts[:last, :last]
    row = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        P = np.where(row > 0, counts / np.maximum(row, 1), 0.0)
        se = np.where(row > 0, np.sqrt(P * (1 - P) / np.maximum(row, 1)), 0.0)
    if width == 1:
        states = [str(s + 1) for s in range(last)]
    else:
        states = [f"{s * width + 1}-{(s + 1) * width}" for s in range(last)]
    if last == K:
        states[-1] = f">={(K - 1) * width + 1}"
    return SpreadTransitions(states, counts.tolist(), P.tolist(), se.tolist(), dt, width)


@dataclass
class SizeDistribution:
    probs: list[float]  # P(size = 1..len) lots
    probs_se: list[float]
    mean: float  # lots, of the capped and rounded sizes
    mean_se: float
    raw_mean: float  # lots, before rounding
    n: int


def size_distribution(sizes: np.ndarray) -> SizeDistribution:
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.size == 0:
        raise ValueError("no sizes to fit")
    lots = np.clip(np.ceil(sizes - 1e-9), 1, MAX_SIZE_TABLE).astype(np.int64)
    top = int(lots.max())
    counts = np.bincount(lots, minlength=top + 1)[1:]
    p = counts / sizes.size
    se = np.sqrt(p * (1 - p) / sizes.size)
    return SizeDistribution(
        probs=p.tolist(),
        probs_se=se.tolist(),
        mean=float(lots.mean()),
        mean_se=float(lots.std(ddof=1) / np.sqrt(lots.size)) if lots.size > 1 else 0.0,
        raw_mean=float(sizes.mean()),
        n=int(sizes.size),
    )


def size_distributions(sample: FlowSample) -> dict[str, SizeDistribution]:
    """Size laws of limit orders, cancellations and market orders (lots)."""
    out = {}
    for name, code in (("limit", ADD), ("cancel", CANCEL), ("market", TRADE)):
        s = sample.size[sample.kind == code]
        if s.size:
            out[name] = size_distribution(s)
    return out

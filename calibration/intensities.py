"""Order-flow intensities: Cont-Stoikov-Talreja (2010) by distance, Huang-Lehalle-Rosenbaum (2015)
by queue size. Poisson GLMs with log-exposure offsets (:mod:`calibration.glm`); time in seconds,
sizes in lots, distances as :mod:`calibration.sample` counts them.

CST 2010 (section 2.2): per distance ``i = 1..L``

- ``lambda(i)`` = limit orders at distance ``i`` (both sides) / ``2 T`` (a rate per side);
- ``theta(i)`` = cancellations at distance ``i`` / integral over time of the number of resting
  ORDERS at distance ``i`` (both sides), orders = lots / ``mean_size``, so that the simulated
  book's cancellation rate ``theta(i) n_i / m`` (``n_i`` lots) has the same expectation;
- ``mu`` = market orders (both sides) / ``2 T``.

Queue-reactive (HLR 2015, Model I of section 2.3.1, reference price of section 2.3.3): queues
are counted from the reference price ``p_ref``: ``Q_{+i}`` at ``p_ref + i - 1/2``, ``Q_{-i}`` at
``p_ref - i + 1/2``, ``p_ref`` being the mid when the spread is an odd number of ticks and, when
it is even, the one of ``mid +- 1/2`` nearer the previous ``p_ref`` (reference ``"opposite"``);
with reference ``"own"`` (wide spreads, :mod:`calibration.sample`) queue ``i`` is the level at
own-best distance ``i``. Queue ``i`` (``i = 1..levels``) is binned to ``n = ceil(size in lots)``
capped at ``max_queue`` (the last bin is ``n >= max_queue``); per ``(i, n)`` the limit and
cancellation intensities are counts / time spent in that state (the cancellation intensity is
the whole queue's), market orders per best-queue size ``n`` the same.

An even spread does not show ``p_ref``: after HLR's reference move (probability ``theta``) the
empty first queue is on the other side than the rule above assumes, so the rates of EMPTY first
queues (``n = 0``) are biased when ``theta > 0``; the rates at ``n >= 1`` are not affected.

``theta``: the share of best-queue depletions after which the queue is not refilled at its
price before that side's best changes again (the reference price moved). ``theta_reinit``:
``1 - b`` with ``b`` the OLS slope of the new best queue, one book update after such a move, on
the queue that stood behind the depleted one (``b = 1``: the book keeps its queues; ``b = 0``: it
is redrawn). Both are proxies of HLR's probabilities (section 2.3.3), not their estimators: on a
simulated queue-reactive market with ``theta = 0.6``, ``theta_reinit = 0.8`` they give about 0.34
and 0.88.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from calibration.glm import Rates, poisson_rates
from calibration.sample import FlowSample
from data.schema import ADD, CANCEL, TRADE


@dataclass
class CSTFit:
    """CST 2010 rates (per second) with standard errors and the counts behind them."""

    limit: Rates
    cancel: Rates
    market: Rates


def level_exposure(sample: FlowSample, per: float = 1.0) -> np.ndarray:
    """Integral over time of the lots resting at distance ``i = 1..L`` (both sides), / ``per``.

    Returns an array of length ``L`` (lot-seconds / ``per``).
    """
    L = sample.levels
    out = np.zeros(L + 1)
    for dist, size in ((sample.bid_dist, sample.bid_sz), (sample.ask_dist, sample.ask_sz)):
        w = np.where(np.isfinite(size), size, 0.0) * sample.row_dt[:, None]
        out += np.bincount(dist.ravel(), weights=w.ravel(), minlength=L + 1)[: L + 1]
    result: np.ndarray = out[1:] / per
    return result


def fit_cst(sample: FlowSample, mean_size: float = 1.0) -> CSTFit:
    """Fit ``lambda(i)``, ``theta(i)``, ``mu`` (CST 2010 section 2.2) by Poisson GLMs.

    :param mean_size: mean order size ``m`` (lots) of the market's size distribution.
    """
    L = sample.levels
    T2 = np.full(L, 2.0 * sample.duration)
    lim = np.bincount(sample.dist[sample.kind == ADD], minlength=L + 1)[1 : L + 1]
    can = np.bincount(sample.dist[sample.kind == CANCEL], minlength=L + 1)[1 : L + 1]
    n_mkt = np.array([(sample.kind == TRADE).sum()])
    return CSTFit(
        limit=poisson_rates(lim, T2),
        cancel=poisson_rates(can, level_exposure(sample, per=mean_size)),
        market=poisson_rates(n_mkt, np.array([2.0 * sample.duration])),
    )


@dataclass
class QueueReactiveFit:
    """HLR 2015 intensities per (level, queue size); rates per second (whole queue for cancels)."""

    max_queue: int
    limit: Rates  # (levels, max_queue + 1)
    cancel: Rates  # (levels, max_queue + 1)
    market: Rates  # (max_queue + 1,)
    theta: float
    theta_se: float
    theta_n: int
    theta_reinit: float
    theta_reinit_se: float
    theta_reinit_n: int


def _bins(size: np.ndarray, max_queue: int) -> np.ndarray:
    q = np.where(np.isfinite(size), size, 0.0)
    out: np.ndarray = np.minimum(np.ceil(q - 1e-9), max_queue).clip(0).astype(np.int64)
    return out


def _queue_at(dist: np.ndarray, size: np.ndarray, i: int) -> np.ndarray:
    out: np.ndarray = np.where(dist == i, np.where(np.isfinite(size), size, 0.0), 0.0).sum(axis=1)
    return out


def _reference_moves(sample: FlowSample) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Best-queue depletions: (not refilled, total) and, for the moves, the queue behind the
    depleted one and the new best queue one book update later (lots)."""
    moved = total = 0
    behind: list[np.ndarray] = []
    after: list[np.ndarray] = []
    for px, sz, sign in ((sample.bid_px, sample.bid_sz, 1), (sample.ask_px, sample.ask_sz, -1)):
        best = px[:, 0]
        ok = np.isfinite(best)
        change = np.flatnonzero(ok[1:] & ok[:-1] & (best[1:] != best[:-1])) + 1
        if change.size < 2:
            continue
        worse = sign * (best[change] - best[change - 1]) < 0  # the best queue was depleted
        nxt = np.r_[change[1:], -1]
        has_next = nxt >= 0
        dep = worse & has_next
        refilled = best[nxt[dep]] == best[change[dep] - 1]
        total += int(dep.sum())
        moved += int((~refilled).sum())
        rows = change[dep][~refilled]
        later = np.minimum(rows + 1, len(best) - 1)
        if sz.shape[1] > 1:
            behind.append(np.where(np.isfinite(sz[rows - 1, 1]), sz[rows - 1, 1], 0.0))
        else:  # a level-1 book does not show the queue behind the best
            behind.append(np.full(rows.size, np.nan))
        same_px = px[later, 0] == px[rows, 0]
        after.append(np.where(same_px, sz[later, 0], np.nan))
    b = np.concatenate(behind) if behind else np.empty(0)
    a = np.concatenate(after) if after else np.empty(0)
    keep = np.isfinite(a) & np.isfinite(b)
    return moved, total, b[keep], a[keep]


def reference_price(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """``p_ref`` (ticks, half-integer) per book row (module docstring); NaN before the first
    two-sided row."""
    mid = 0.5 * (bid + ask)
    odd = np.isfinite(mid) & ((ask - bid) % 2 == 1)
    last = pd.Series(np.where(odd, mid, np.nan)).ffill().to_numpy()
    last = np.where(np.isnan(last), mid - 0.5, last)  # no odd spread yet: pick the lower side
    # even spread: mid +- 1/2, whichever is nearer the last p_ref (ties: the lower)
    lo, hi = mid - 0.5, mid + 0.5
    even_ref = np.where(np.abs(hi - last) < np.abs(lo - last), hi, lo)
    out: np.ndarray = np.where(odd, mid, even_ref)
    return out


def _qr_distances(sample: FlowSample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Queue index of every displayed level (bid, ask; 0 outside) and of every event."""
    if sample.reference == "own":
        return sample.bid_dist, sample.ask_dist, sample.dist
    pref = reference_price(sample.bid_px[:, 0], sample.ask_px[:, 0])
    L = sample.levels

    def window(d: np.ndarray) -> np.ndarray:
        d = np.where(np.isfinite(d), d, 0.0)
        out: np.ndarray = np.where((d >= 1) & (d <= L), d, 0.0).astype(np.int64)
        return out

    bid = window(pref[:, None] + 0.5 - sample.bid_px)
    ask = window(sample.ask_px - pref[:, None] + 0.5)
    ev_ref = pref[sample.prev]
    ev = window(np.where(sample.side > 0, ev_ref + 0.5 - sample.price, sample.price - ev_ref + 0.5))
    return bid, ask, ev


def fit_queue_reactive(
    sample: FlowSample, levels: int = 2, max_queue: int = 10
) -> QueueReactiveFit:
    """Fit the queue-reactive intensities (HLR 2015) at distances ``1..levels``."""
    if not 1 <= levels <= sample.levels:
        raise ValueError(f"levels must be in 1..{sample.levels}, got {levels}")
    if max_queue < 1:
        raise ValueError(f"max_queue must be >= 1, got {max_queue}")
    K = max_queue + 1
    bid_dist, ask_dist, ev_dist = _qr_distances(sample)
    expo = np.zeros((levels, K))
    for dist, size in ((bid_dist, sample.bid_sz), (ask_dist, sample.ask_sz)):
        for i in range(1, levels + 1):
            n = _bins(_queue_at(dist, size, i), max_queue)
            expo[i - 1] += np.bincount(n, weights=sample.row_dt, minlength=K)[:K]
    best_expo = np.zeros(K)
    for size in (sample.bid_sz, sample.ask_sz):
        best_expo += np.bincount(_bins(size[:, 0], max_queue), weights=sample.row_dt, minlength=K)[
            :K
        ]
    ev_n = _bins(sample.queue, max_queue)
    lim = np.zeros((levels, K))
    can = np.zeros((levels, K))
    for i in range(1, levels + 1):
        at = ev_dist == i
        lim[i - 1] = np.bincount(ev_n[at & (sample.kind == ADD)], minlength=K)[:K]
        can[i - 1] = np.bincount(ev_n[at & (sample.kind == CANCEL)], minlength=K)[:K]
    mkt = np.bincount(ev_n[sample.kind == TRADE], minlength=K)[:K].astype(np.float64)
    cancel = poisson_rates(can, expo)
    cancel.rate[:, 0] = 0.0  # an empty queue has nothing to cancel
    cancel.se[:, 0] = 0.0

    moved, total, behind, after = _reference_moves(sample)
    theta = moved / total if total else float("nan")
    theta_se = float(np.sqrt(theta * (1 - theta) / total)) if total else float("nan")
    if behind.size >= 3 and np.ptp(behind) > 0:
        ols = sm.OLS(after, sm.add_constant(behind)).fit()
        slope, slope_se = float(ols.params[1]), float(ols.bse[1])
        reinit, reinit_se = float(np.clip(1.0 - slope, 0.0, 1.0)), slope_se
    else:
        reinit, reinit_se = float("nan"), float("nan")
    return QueueReactiveFit(
        max_queue=max_queue,
        limit=poisson_rates(lim, expo),
        cancel=cancel,
        market=poisson_rates(mkt, best_expo),
        theta=float(theta),
        theta_se=theta_se,
        theta_n=total,
        theta_reinit=reinit,
        theta_reinit_se=reinit_se,
        theta_reinit_n=int(behind.size),
    )

"""The order book of N markets as numba arrays, and its exact event-driven simulation.

Model: Cont, Stoikov & Talreja (2010), "A stochastic model for order book dynamics", Operations
Research 58(3) (CST 2010), section 1.2; parameters in :class:`calibration.params.MarketParams`.
Between two decisions the events are drawn exactly (Gillespie 1977): the waiting time to the next
event is exponential with the total rate ``R``, and the event is event ``e`` with probability
``rate_e / R``. Per side, with ``L`` levels counted from the opposite best:

- limit order at distance ``i`` from the opposite best: rate ``lambda(i)``, ``i = 1..L`` (an order
  inside the spread improves the quote);
- cancellation at distance ``i``: rate ``theta(i) n_i / m`` with ``n_i`` the others' volume in
  lots and ``m`` the mean order size (``theta(i)`` per resting order; ``m = 1`` for unit sizes);
- market order: rate ``mu``, executed against the best queue (walking levels if larger).

Or (``MarketParams.model = "queue_reactive"``) the queue-reactive order flow of Huang, Lehalle &
Rosenbaum (2015), "Simulating and analyzing order book data: the queue-reactive model", JASA
110(509), Model I: queue ``Q_{+-q}``, ``q = 1..K``, at ``p_ref -+ (q - 1/2)`` ticks gains an
order at rate ``lambda^L_q(n)`` and loses one at rate ``lambda^C_q(n)`` (``n`` its lots, the
agent's included); each side's best queue receives market orders at rate ``lambda^M(n)``; when
an event empties ``Q_{+-1}``, ``p_ref`` moves with probability theta and the book is redrawn
with probability theta_reinit (section 2.3.3; :func:`qr_depleted`). The book arrays are the same
(distance from the opposite best); ``ist[m, I_REF]`` carries the reference price.

:func:`advance` can also record every change of the others' book (the event log read by
:mod:`envs.lob.events`) and keep the last market trades (the env's ``trades`` observation).

Layout (per market ``m``; named indices below; units):

- ``book[m, side, i - 1]`` int64, lots resting by OTHER participants at distance ``i`` ticks from
  the opposite best: ``side = BID`` at price ``ask_px - i``, ``side = ASK`` at ``bid_px + i``.
  The window moves with the quotes (arrays are shifted when a best price changes); volume that
  drifts beyond ``L`` is dropped (counted in ``I_DROPPED``), levels that enter it start empty.
- ``ist[m, I_*]`` int64: the agent's columns first (its order per side: price, remaining lots,
  lots ahead in the queue, lots ahead at entry; its inventory; :mod:`envs.exchange.layout`),
  then the book's: best prices ``I_ASK_PX``, ``I_BID_PX`` (ticks; they include the agent's
  orders; a side with no volume in the window has its best at distance ``L``) and event counters
  (lots) used by the conservation checks.
- ``fst[m, F_*]`` float64: the agent's columns (time, cash, fees paid, running peak value, the
  entry time of each agent order; :mod:`envs.exchange.layout`).
- ``rng[m, :]`` uint64: the market's own xoshiro256** state (:mod:`envs.exchange.rng`).
- ``p`` float64: the exchange's parameters first (``X_*``: tick and lot, fees, queue model),
  then the order flow's (``P_*``).

The agent's resting orders are part of this book, because the market's events fill them: FIFO at
their price (a market order consumes the queue ahead, then the agent, then the rest); the queue
model (docs/exchange.md#queue-models, :func:`envs.exchange.queue.ahead_first`) decides how much
of a cancellation by others was ahead of the agent, and the fills are settled by the exchange
layer (:func:`envs.exchange.orders.passive_fill`). In this synthetic market each resting unit
order is cancelled at the same rate, so the cancelled one is uniform over the queue: ``exact``
here is ``prob`` with ``n = 1``.
"""

from __future__ import annotations

import numba
import numpy as np

from envs.exchange.layout import (
    ASK,
    BID,
    F_CASH,
    F_FEES,
    F_PEAK,
    F_T0,
    F_TIME,
    FILL_AHEAD0,
    FILL_FEE,
    FILL_PRICE,
    FILL_SIDE,
    FILL_SIZE,
    FILL_TAKER,
    FILL_TIME,
    FILL_WAITED,
    I_AHEAD,
    I_AHEAD0,
    I_APX,
    I_AREM,
    I_INV,
    I_MAKER,
    I_TAKER,
    N_FILL_COLS,
    N_OWN_F,
    N_OWN_I,
    N_XPARAMS,
    X_LEVELS,
    X_LOT,
    X_MAKER_BPS,
    X_QUEUE,
    X_QUEUE_POWER,
    X_TAKER_BPS,
    X_TICK,
)
from envs.exchange.orders import passive_fill, record_fill
from envs.exchange.queue import (
    QUEUE_EXACT,
    QUEUE_PROB,
    QUEUE_PROB_LOG,
    QUEUE_RISK_AVERSE,
    cancel_from_ahead,
)
from envs.exchange.rng import exponential, next_u64, seed_states, uniform
from envs.kernel_cache import renamed

__all__ = [  # noqa: RUF022 - the agent's names this module re-exports for the book's users
    "F_CASH", "F_FEES", "F_PEAK", "F_T0", "FILL_AHEAD0", "FILL_FEE", "FILL_PRICE", "FILL_SIDE",
    "FILL_SIZE", "FILL_TAKER", "FILL_TIME", "FILL_WAITED", "I_AHEAD0", "I_INV", "N_FILL_COLS",
    "QUEUE_EXACT", "QUEUE_PROB", "QUEUE_PROB_LOG", "QUEUE_RISK_AVERSE", "X_TAKER_BPS",
    "next_u64", "record_fill", "seed_states",
]  # fmt: skip

# ---- ist columns (int64): the agent's (envs.exchange.layout), then the book's
I_AGENT_MAKER = I_MAKER  # lots the agent traded passively
I_AGENT_TAKER = I_TAKER  # lots the agent traded aggressively
(I_ASK_PX, I_BID_PX, I_EVENTS, I_ADDED, I_CANCELLED, I_DROPPED, I_MKT_EXEC, I_PASSIVE_OTHERS,
 I_MID_MOVES, I_REF, I_QR_K, I_N_TRADES) = range(N_OWN_I, N_OWN_I + 12)  # fmt: skip
# I_ASK_PX, I_BID_PX: best prices (ticks); I_EVENTS: market events simulated; I_ADDED,
# I_CANCELLED: lots added / cancelled by others; I_DROPPED: lots dropped at the window's edge;
# I_MKT_EXEC: lots executed by others' market orders; I_PASSIVE_OTHERS: others' resting lots
# consumed by trades; I_MID_MOVES: changes of the book's mid (queue-reactive: also of the
# reference price); I_REF: queue-reactive price of Q_{+1} (ticks; p_ref is half a tick below);
# I_QR_K: queue-reactive queues per side (0 for CST: fix_best's fallback is then L);
# I_N_TRADES: market-order trades written to the trade ring so far
N_ISTATE = N_OWN_I + 12

# ---- trade ring columns (float64): the market's last trades, one row per price level reached
TRADE_TIME, TRADE_PRICE, TRADE_SIGNED_SIZE = 0, 1, 2  # time units, ticks, lots (+ buy, - sell)
N_TRADE_COLS = 3

# ---- fst columns (float64): the agent's (envs.exchange.layout)
N_FSTATE = N_OWN_F

# ---- size distributions
SIZE_UNIT, SIZE_GEOMETRIC, SIZE_DISCRETE = 0, 1, 2

# ---- parameter vector (float64): the exchange's (X_*, envs.exchange.layout), then the book's
P_L = X_LEVELS
P_QUEUE_MODEL, P_QUEUE_POWER = X_QUEUE, X_QUEUE_POWER
P_MAKER_BPS, P_TAKER_BPS, P_TICK, P_LOT = X_MAKER_BPS, X_TAKER_BPS, X_TICK, X_LOT
(P_MU, P_SIZE_KIND, P_SIZE_LOGQ, P_MEAN_SIZE, P_N_SIZES, P_LAMBDA_SUM, P_MODEL, P_QR_K,
 P_QR_MAXQ) = range(N_XPARAMS, N_XPARAMS + 9)  # fmt: skip
# P_MODEL: order flow; P_QR_K, P_QR_MAXQ: queue-reactive queues and max size
P_LAMBDA = N_XPARAMS + 9  # 64 entries: lambda(1..L)
P_THETA = P_LAMBDA + 64  # 64 entries: theta(1..L)
P_SIZE_CDF = P_THETA + 64  # 32 entries: P(size <= j), j = 1..
# multipliers of the order flow (1 in the calibrated market; a stress scenario changes them):
# every rate (the clock runs faster), and the market orders hitting each side (+ side)
P_RATE_SCALE = P_SIZE_CDF + 32
P_MKT_SCALE = P_RATE_SCALE + 1  # + side: BID = sell market orders, ASK = buy market orders
P_ENV = P_RATE_SCALE + 4  # first entry free for the env's own parameters
N_PARAMS = P_ENV + 32
# queue-reactive block after the fixed part: theta, theta_reinit, CDF length, (free), then the
# tables lambda^L (K x (maxq+1)), lambda^C (K x (maxq+1)), lambda^M (maxq+1), invariant CDFs
P_QR = N_PARAMS

# ---- order-flow models
MODEL_CST, MODEL_QR, MODEL_RL = 0, 1, 2
# the realistic flow's block after the fixed part (:func:`_pack_realistic`)
P_RL = N_PARAMS

# ---- kernel stop reasons (STOP_LOG: the event log has no room for another event)
STOP_TIME, STOP_EVENTS, STOP_MID, STOP_LOG = 0, 1, 2, 3

# ---- event log columns (float64), one row per book change, written by ``advance`` when the log
# has rows (shape (N, rows, log_width(L))); kinds are the codes of data.schema.EVENT_KINDS
(LOG_TIME, LOG_KIND, LOG_SIDE, LOG_PRICE, LOG_SIZE, LOG_AGGRESSOR, LOG_SYNTHETIC, LOG_ASK_PX,
 LOG_BID_PX) = range(9)  # fmt: skip
LOG_BOOK = 9  # + side * L + (i - 1): lots at distance i from the opposite best, after the row
KIND_ADD, KIND_CANCEL, KIND_TRADE, KIND_SNAPSHOT = 0, 1, 2, 3


def log_width(L: int) -> int:
    """Columns of an event-log row for ``L`` levels per side."""
    return LOG_BOOK + 2 * L


def log_rows_per_event(L: int) -> int:
    """Most log rows one market event can write: trades at every level, lots dropped at every
    level of the other side, and a full redraw (one snapshot row per level)."""
    return 4 * L + 4


def no_event_log(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty event log for ``n`` markets (``advance`` then records nothing)."""
    return np.zeros((n, 0, LOG_BOOK)), np.zeros(n, np.int64)


def no_trade_ring(n: int) -> np.ndarray:
    """An empty trade ring for ``n`` markets (``advance`` then keeps no trades)."""
    return np.zeros((n, 0, N_TRADE_COLS))


@numba.njit(inline="always", cache=True)
def draw_size(rng, m, p):
    """An order size (lots) from the market's size distribution."""
    kind = p[P_SIZE_KIND]
    if kind == SIZE_UNIT:
        return 1
    u = uniform(rng, m)
    if kind == SIZE_GEOMETRIC:
        # P(size = j) = (1 - q) q^(j-1): inversion, log q stored in P_SIZE_LOGQ.
        if p[P_SIZE_LOGQ] == 0.0:
            return 1
        return 1 + int(np.floor(np.log1p(-u) / p[P_SIZE_LOGQ]))
    n = int(p[P_N_SIZES])
    for j in range(n):
        if u < p[P_SIZE_CDF + j]:
            return j + 1
    return n


@numba.njit(cache=True)
def poisson(rng, m, mean):
    """A Poisson(mean) draw by inversion (means of a few units here)."""
    u = uniform(rng, m)
    k = 0
    prob = np.exp(-mean)
    cdf = prob
    while u >= cdf and k < 10_000:
        k += 1
        prob *= mean / k
        cdf += prob
    return k


# --------------------------------------------------------------------------------------
# Book primitives (one market). ``side`` is BID or ASK; ``other = 1 - side``.


@numba.njit(inline="always", cache=True)
def spread(ist, m):
    return ist[m, I_ASK_PX] - ist[m, I_BID_PX]


@numba.njit(inline="always", cache=True)
def agent_level(ist, m, side):
    """Distance (ticks) of the agent's live order on ``side`` from the opposite best, or 0."""
    if ist[m, I_AREM + side] <= 0:
        return 0
    if side == BID:
        return ist[m, I_ASK_PX] - ist[m, I_APX + BID]
    return ist[m, I_APX + ASK] - ist[m, I_BID_PX]


@numba.njit(inline="always", cache=True)
def level_total(book, ist, m, side, i):
    """Lots at distance ``i`` on ``side``, the agent's included."""
    v = book[m, side, i - 1]
    if agent_level(ist, m, side) == i:
        v += ist[m, I_AREM + side]
    return v


@numba.njit(cache=True)
def clamp_agent_queue(book, ist, m, side, L):
    """After volume left the window: the queue ahead cannot exceed what rests at the price."""
    i = agent_level(ist, m, side)
    if ist[m, I_AREM + side] <= 0:
        return
    if i < 1 or i > L:
        ist[m, I_AHEAD + side] = 0
    elif ist[m, I_AHEAD + side] > book[m, side, i - 1]:
        ist[m, I_AHEAD + side] = book[m, side, i - 1]


@numba.njit(cache=True)
def shift_side(book, ist, m, side, d, L):
    """Re-index ``side`` after its reference (the opposite best) moved ``d`` ticks away (d > 0)
    or ``-d`` ticks closer (d < 0): ``new[j] = old[j - d]``; volume leaving the window is dropped.
    """
    if d > 0:
        dropped = 0
        for j in range(L - d, L):
            if j >= 0:
                dropped += book[m, side, j]
        for j in range(L - 1, -1, -1):
            book[m, side, j] = book[m, side, j - d] if j - d >= 0 else 0
        ist[m, I_DROPPED] += dropped
    elif d < 0:
        e = -d
        dropped = 0
        for j in range(min(e, L)):
            dropped += book[m, side, j]
        for j in range(L):
            book[m, side, j] = book[m, side, j + e] if j + e < L else 0
        ist[m, I_DROPPED] += dropped
    clamp_agent_queue(book, ist, m, side, L)


@numba.njit(cache=True)
def fix_best(book, ist, m, side, L):
    """Move ``side``'s best outward to its first non-empty level. With none in the window the
    best goes to distance ``L`` (CST) or, queue-reactive, just beyond its last queue (so that the
    other side's queues stay inside the window)."""
    s = spread(ist, m)
    j = L
    k = ist[m, I_QR_K]
    if k > 0:
        if side == BID:
            j = ist[m, I_ASK_PX] - (ist[m, I_REF] - k - 1)
        else:
            j = ist[m, I_REF] + k - ist[m, I_BID_PX]
        j = max(1, min(L, j))
    for i in range(s, L + 1):
        if level_total(book, ist, m, side, i) > 0:
            j = i
            break
    d = j - s
    if d != 0:
        if side == BID:
            ist[m, I_BID_PX] = ist[m, I_ASK_PX] - j
        else:
            ist[m, I_ASK_PX] = ist[m, I_BID_PX] + j
        shift_side(book, ist, m, 1 - side, d, L)
        ist[m, I_MID_MOVES] += 1


@numba.njit(cache=True)
def improve_best(book, ist, m, side, i, L):
    """A quote arrived at distance ``i`` inside the spread: it becomes ``side``'s best."""
    s = spread(ist, m)
    if i < s:
        if side == BID:
            ist[m, I_BID_PX] = ist[m, I_ASK_PX] - i
        else:
            ist[m, I_ASK_PX] = ist[m, I_BID_PX] + i
        shift_side(book, ist, m, 1 - side, i - s, L)
        ist[m, I_MID_MOVES] += 1


@numba.njit(cache=True)
def execute_market(book, ist, fst, p, fills, nfill, m, side, size, L):
    """A market order of ``size`` lots against ``side`` (BID: a sell hitting the bids), FIFO at
    each level (the queue ahead, then the agent, then the rest), walking levels. Returns the lots
    executed (the rest finds no volume in the window and lapses)."""
    left = size
    while left > 0:
        s = spread(ist, m)
        others = book[m, side, s - 1]
        agent_here = agent_level(ist, m, side) == s
        if others == 0 and not agent_here:
            break
        if agent_here:
            x = min(left, ist[m, I_AHEAD + side])
            ist[m, I_AHEAD + side] -= x
            book[m, side, s - 1] -= x
            ist[m, I_PASSIVE_OTHERS] += x
            left -= x
            f = min(left, ist[m, I_AREM + side])
            if f > 0:
                passive_fill(ist, fst, p, fills, nfill, m, side, f, fst[m, F_TIME])
                left -= f
        y = min(left, book[m, side, s - 1])
        book[m, side, s - 1] -= y
        ist[m, I_PASSIVE_OTHERS] += y
        left -= y
        if level_total(book, ist, m, side, s) == 0:
            fix_best(book, ist, m, side, L)
    done = size - left
    ist[m, I_MKT_EXEC] += done
    return done


@numba.njit(cache=True)
def cancel(book, ist, fst, rng, p, m, side, i, L):
    """Others cancel at distance ``i`` on ``side``; the queue model moves the agent's place."""
    vol = book[m, side, i - 1]
    size = min(draw_size(rng, m, p), vol)
    if size <= 0:
        return
    if agent_level(ist, m, side) == i:
        a = ist[m, I_AHEAD + side]
        ist[m, I_AHEAD + side] = a - cancel_from_ahead(rng, m, p, a, vol - a, size)
    book[m, side, i - 1] = vol - size
    ist[m, I_CANCELLED] += size
    if i == spread(ist, m) and level_total(book, ist, m, side, i) == 0:
        fix_best(book, ist, m, side, L)


@numba.njit(cache=True)
def limit_arrival(book, ist, rng, p, m, side, i, L):
    """Others post a limit order at distance ``i`` from the opposite best on ``side``."""
    size = draw_size(rng, m, p)
    book[m, side, i - 1] += size
    ist[m, I_ADDED] += size
    improve_best(book, ist, m, side, i, L)


@numba.njit(cache=True)
def log_row(evlog, nlog, book, ist, fst, m, kind, side, px, size, aggressor, synthetic, L):
    """Append one row to market ``m``'s event log with the book as it is now (caller checks
    room). ``side`` is BID or ASK; ``aggressor`` +1 buy, -1 sell, 0 none; ``synthetic`` 1.0 for
    a change made by the simulator, not by an order."""
    k = nlog[m]
    row = evlog[m, k]
    row[LOG_TIME] = fst[m, F_TIME]
    row[LOG_KIND] = kind
    row[LOG_SIDE] = 1.0 if side == BID else -1.0
    row[LOG_PRICE] = px
    row[LOG_SIZE] = size
    row[LOG_AGGRESSOR] = aggressor
    row[LOG_SYNTHETIC] = synthetic
    row[LOG_ASK_PX] = ist[m, I_ASK_PX]
    row[LOG_BID_PX] = ist[m, I_BID_PX]
    for sd in range(2):
        for j in range(L):
            row[LOG_BOOK + sd * L + j] = book[m, sd, j]
    nlog[m] = k + 1


@numba.njit(cache=True)
def level_price(ist, m, side, i):
    """Price (ticks) of distance ``i`` from the opposite best on ``side``."""
    return ist[m, I_ASK_PX] - i if side == BID else ist[m, I_BID_PX] + i


@numba.njit(cache=True)
def log_change(
    evlog, nlog, book, ist, fst, m, kind, side, px, size, aggressor, synthetic, other, ref, L
):
    """Log an event on ``side`` and the lots the other side dropped at its window's edge meanwhile
    (``other``: that side's lots before the event, ``ref``: its reference price then). The
    dropped lots are ``cancel`` rows flagged synthetic: the window, not an order, removed them.
    """
    log_row(evlog, nlog, book, ist, fst, m, kind, side, px, size, aggressor, synthetic, L)
    o = 1 - side
    new_ref = ist[m, I_ASK_PX] if o == BID else ist[m, I_BID_PX]
    if new_ref == ref:
        return
    for j in range(L):
        v = other[j]
        if v <= 0:
            continue
        price = ref - (j + 1) if o == BID else ref + (j + 1)
        dist = new_ref - price if o == BID else price - new_ref
        if dist < 1 or dist > L:
            log_row(evlog, nlog, book, ist, fst, m, KIND_CANCEL, o, price, v, 0, 1.0, L)


@numba.njit(cache=True)
def save_side(book, ist, m, side, out):
    """Copy ``side``'s lots into ``out``; return its reference price (the opposite best)."""
    for j in range(out.size):
        out[j] = book[m, side, j]
    return ist[m, I_ASK_PX] if side == BID else ist[m, I_BID_PX]


# --------------------------------------------------------------------------------------
# Queue-reactive order flow (Huang, Lehalle & Rosenbaum 2015, Model I and section 2.3.3). The
# reference price is kept as ``ist[m, I_REF]``, the price of ``Q_{+1}`` (ticks): ``Q_{+q}`` is at
# ``I_REF + q - 1`` and ``Q_{-q}`` at ``I_REF - q``, so ``p_ref = I_REF - 1/2`` tick.


@numba.njit(inline="always", cache=True)
def qr_offsets(p):
    """Offsets of the limit, cancel, market and invariant-CDF tables in ``p``."""
    K = int(p[P_QR_K])
    w = int(p[P_QR_MAXQ]) + 1
    lim = P_QR + 4
    can = lim + K * w
    mkt = can + K * w
    cdf = mkt + w
    return lim, can, mkt, cdf, w


@numba.njit(inline="always", cache=True)
def qr_price(ist, m, side, q):
    """Price (ticks) of queue ``q`` of ``side`` around the reference price."""
    return ist[m, I_REF] - q if side == BID else ist[m, I_REF] + q - 1


@numba.njit(inline="always", cache=True)
def price_level(ist, m, side, px):
    """Distance (ticks) of price ``px`` on ``side`` from the opposite best."""
    return ist[m, I_ASK_PX] - px if side == BID else px - ist[m, I_BID_PX]


@numba.njit(cache=True)
def qr_draw_queue(rng, m, p, q):
    """A queue size (lots) from queue ``q``'s invariant law (inversion of its stored CDF)."""
    cdf = qr_offsets(p)[3]
    n = int(p[P_QR + 2])
    base = cdf + (q - 1) * n
    u = uniform(rng, m)
    for k in range(n):
        if u < p[base + k]:
            return k
    return n - 1


@numba.njit(cache=True)
def qr_rates(book, ist, p, m, L, rates):
    """Fill ``rates`` (per side: limit and cancel rate of each queue, then the market-order
    rate) and return their sum. A queue outside the window, or at or beyond the opposite best
    (the agent's quote can sit there), gets no events while it is there."""
    K = int(p[P_QR_K])
    maxq = int(p[P_QR_MAXQ])
    lim, can, mkt, _, w = qr_offsets(p)
    total = 0.0
    s = spread(ist, m)
    for side in range(2):
        base = side * (2 * K + 1)
        for q in range(1, K + 1):
            j = price_level(ist, m, side, qr_price(ist, m, side, q))
            rl = 0.0
            rc = 0.0
            if 1 <= j <= L:
                n = min(level_total(book, ist, m, side, j), maxq)
                rl = p[lim + (q - 1) * w + n]
                if book[m, side, j - 1] > 0:
                    rc = p[can + (q - 1) * w + n]
            rates[base + 2 * (q - 1)] = rl
            rates[base + 2 * (q - 1) + 1] = rc
            total += rl + rc
        n_best = min(level_total(book, ist, m, side, s), maxq) if s <= L else 0
        rm = p[mkt + n_best] * p[P_MKT_SCALE + side] if n_best > 0 else 0.0
        rates[base + 2 * K] = rm
        total += rm
    return total


@numba.njit(cache=True)
def qr_queue_total(book, ist, p, m, side, q, L):
    """Lots (the agent's included) in queue ``q`` of ``side``; 0 outside the window."""
    j = price_level(ist, m, side, qr_price(ist, m, side, q))
    if 1 <= j <= L:
        return level_total(book, ist, m, side, j)
    return 0


@numba.njit(cache=True)
def qr_insert(book, ist, fst, m, side, px, lots, L, evlog, nlog, other, logging):
    """Others' ``lots`` appear at price ``px`` (a queue drawn by the model); outside the window
    they are not kept."""
    j = price_level(ist, m, side, px)
    if lots <= 0 or j < 1 or j > L:
        return
    ref = save_side(book, ist, m, 1 - side, other) if logging else 0
    book[m, side, j - 1] += lots
    ist[m, I_ADDED] += lots
    improve_best(book, ist, m, side, j, L)
    if logging:
        log_change(evlog, nlog, book, ist, fst, m, KIND_ADD, side, px, lots, 0, 1.0, other, ref, L)


@numba.njit(cache=True)
def qr_remove(book, ist, fst, m, side, px, L, evlog, nlog, other, logging):
    """The others' lots at price ``px`` leave the model (their queue left the reference grid)."""
    j = price_level(ist, m, side, px)
    if j < 1 or j > L or book[m, side, j - 1] <= 0:
        return
    ref = save_side(book, ist, m, 1 - side, other) if logging else 0
    lots = book[m, side, j - 1]
    book[m, side, j - 1] = 0
    ist[m, I_DROPPED] += lots
    clamp_agent_queue(book, ist, m, side, L)
    if j == spread(ist, m) and level_total(book, ist, m, side, j) == 0:
        fix_best(book, ist, m, side, L)
    if logging:
        log_change(
            evlog, nlog, book, ist, fst, m, KIND_CANCEL, side, px, lots, 0, 1.0, other, ref, L
        )


@numba.njit(cache=True)
def qr_redraw(book, ist, fst, rng, p, m, L, evlog, nlog, logging):
    """The others' book is redrawn from its invariant law around the reference price: each
    queue independently (HLR 2015 Model I); nothing rests outside the queues."""
    K = int(p[P_QR_K])
    for side in range(2):
        for j in range(L):
            ist[m, I_DROPPED] += book[m, side, j]
            book[m, side, j] = 0
        clamp_agent_queue(book, ist, m, side, L)
    fix_best(book, ist, m, BID, L)
    fix_best(book, ist, m, ASK, L)
    for q in range(1, K + 1):
        for side in range(2):
            lots = qr_draw_queue(rng, m, p, q)
            j = price_level(ist, m, side, qr_price(ist, m, side, q))
            if lots > 0 and 1 <= j <= L:
                book[m, side, j - 1] += lots
                ist[m, I_ADDED] += lots
                improve_best(book, ist, m, side, j, L)
    if logging:
        for side in range(2):
            for j in range(1, L + 1):
                v = book[m, side, j - 1]
                if v > 0:
                    log_row(
                        evlog,
                        nlog,
                        book,
                        ist,
                        fst,
                        m,
                        KIND_SNAPSHOT,
                        side,
                        level_price(ist, m, side, j),
                        v,
                        0,
                        1.0,
                        L,
                    )


@numba.njit(cache=True)
def qr_depleted(book, ist, fst, rng, p, m, side, L, evlog, nlog, other, logging):
    """``Q_{+1}`` (``side = ASK``) or ``Q_{-1}`` (BID) was just emptied: with probability theta
    the reference price moves one tick that way; the emptied queue becomes the other side's
    first, the queue leaving the grid is removed and the one entering it drawn from its
    invariant law, or, with probability theta_reinit, the whole book is redrawn (HLR 2015
    section 2.3.3)."""
    if not uniform(rng, m) < p[P_QR]:
        return
    K = int(p[P_QR_K])
    step = 1 if side == ASK else -1
    ref_old = ist[m, I_REF]
    ist[m, I_REF] = ref_old + step
    ist[m, I_MID_MOVES] += 1
    if uniform(rng, m) < p[P_QR + 1]:
        qr_redraw(book, ist, fst, rng, p, m, L, evlog, nlog, logging)
        return
    # the far queue of the side away from the move leaves the grid
    far = 1 - side
    qr_remove(
        book,
        ist,
        fst,
        m,
        far,
        ref_old - K if far == BID else ref_old + K - 1,
        L,
        evlog,
        nlog,
        other,
        logging,
    )
    # a side without volume re-anchors its best to the moved grid (fix_best's fallback)
    fix_best(book, ist, m, BID, L)
    fix_best(book, ist, m, ASK, L)
    lots = qr_draw_queue(rng, m, p, K)
    qr_insert(
        book, ist, fst, m, side, qr_price(ist, m, side, K), lots, L, evlog, nlog, other, logging
    )


# --------------------------------------------------------------------------------------
# Events shared by the two order flows (one market), each logged when ``logging``.


@numba.njit(cache=True)
def do_limit(book, ist, fst, rng, p, m, side, i, L, evlog, nlog, other, logging):
    """A limit order of others at distance ``i`` from the opposite best on ``side``."""
    ref = 0
    n0 = 0
    if logging:
        ref = save_side(book, ist, m, 1 - side, other)
        n0 = book[m, side, i - 1]
    limit_arrival(book, ist, rng, p, m, side, i, L)
    if logging:
        log_change(
            evlog,
            nlog,
            book,
            ist,
            fst,
            m,
            KIND_ADD,
            side,
            level_price(ist, m, side, i),
            book[m, side, i - 1] - n0,
            0,
            0.0,
            other,
            ref,
            L,
        )


@numba.njit(cache=True)
def do_cancel(book, ist, fst, rng, p, m, side, i, L, evlog, nlog, other, logging):
    """A cancellation by others at distance ``i`` on ``side``."""
    ref = 0
    n0 = 0
    px = 0
    if logging:
        ref = save_side(book, ist, m, 1 - side, other)
        n0 = book[m, side, i - 1]
        px = level_price(ist, m, side, i)
    cancel(book, ist, fst, rng, p, m, side, i, L)
    if logging:
        log_change(
            evlog,
            nlog,
            book,
            ist,
            fst,
            m,
            KIND_CANCEL,
            side,
            px,
            n0 - book[m, side, i - 1],
            0,
            0.0,
            other,
            ref,
            L,
        )


@numba.njit(cache=True)
def keep_trade(trades, ist, fst, m, px, signed_size):
    """Write a trade to market ``m``'s ring (``trades[m]``, rows reused oldest first)."""
    size = trades.shape[1]
    if size == 0:
        return
    k = ist[m, I_N_TRADES] % size
    trades[m, k, TRADE_TIME] = fst[m, F_TIME]
    trades[m, k, TRADE_PRICE] = px
    trades[m, k, TRADE_SIGNED_SIZE] = signed_size
    ist[m, I_N_TRADES] += 1


@numba.njit(cache=True)
def do_market(
    book, ist, fst, rng, p, fills, nfill, m, side, L, evlog, nlog, other, logging, trades
):
    """A market order of others against ``side`` (ASK: a buy), one price level at a time
    (FIFO within it, as :func:`execute_market`); the part the window cannot fill lapses. Each
    level's trade goes to the trade ring ``trades`` (when it has rows)."""
    left = draw_size(rng, m, p)
    ref = 0
    while left > 0:
        s = spread(ist, m)
        here = level_total(book, ist, m, side, s) if s <= L else 0
        if here <= 0:
            break
        px = level_price(ist, m, side, s)
        if logging:
            ref = save_side(book, ist, m, 1 - side, other)
        done = execute_market(book, ist, fst, p, fills, nfill, m, side, min(left, here), L)
        left -= done
        keep_trade(trades, ist, fst, m, px, done if side == ASK else -done)
        if logging:
            log_change(
                evlog,
                nlog,
                book,
                ist,
                fst,
                m,
                KIND_TRADE,
                side,
                px,
                done,
                1 if side == ASK else -1,
                0.0,
                other,
                ref,
                L,
            )


@numba.njit(cache=True)
def advance(
    book, ist, fst, rng, p, fills, nfill, m, t_end, max_events, stop_on_mid, evlog, nlog, trades
):
    """Simulate market ``m`` until time ``t_end``, ``max_events`` more events, or (when
    ``stop_on_mid``) the first change of the mid. Returns the STOP_* reason.

    Stopping at ``t_end`` discards the pending waiting time; that is exact because the rates are
    constant between events and the exponential law is memoryless.

    The order flow is CST 2010 or, when ``p[P_MODEL]`` is MODEL_QR, the queue-reactive model
    (HLR 2015; :func:`qr_rates`, :func:`qr_depleted`); the agent's orders are handled alike.
    ``p[P_MKT_SCALE + side]`` multiplies the rate of the market orders hitting ``side`` and
    ``p[P_RATE_SCALE]`` every rate (1 and 1 in the calibrated market; a stress scenario sets
    them, :mod:`envs.lob.core`). The total rate scaling divides the waiting times only: the
    event picked by a uniform is the same, and the same random numbers are drawn per event.

    When ``evlog`` has rows (``(N, rows, log_width(L))``, :func:`no_event_log` otherwise), every
    change of the others' book is appended to ``evlog[m]`` (``nlog[m]`` rows used): limit orders
    (``add``), cancellations (``cancel``), one ``trade`` row per price level a market order
    reaches, each with the book after it; lots dropped at the window's edge and queues the
    queue-reactive model removes or draws are flagged synthetic, and its redraws are written as
    ``snapshot`` rows. The simulation stops (STOP_LOG) before an event that might not fit; the
    caller empties the log and calls again (exact, as for ``t_end``).

    ``trades`` ``(N, R, N_TRADE_COLS)`` keeps each market's last ``R`` market-order trades
    (:func:`keep_trade`; :func:`no_trade_ring` for none).
    """
    if p[P_MODEL] == MODEL_RL:
        return advance_rl(
            book,
            ist,
            fst,
            rng,
            p,
            fills,
            nfill,
            m,
            t_end,
            max_events,
            stop_on_mid,
            evlog,
            nlog,
            trades,
        )
    if p[P_MODEL] == MODEL_QR:
        return advance_qr(
            book,
            ist,
            fst,
            rng,
            p,
            fills,
            nfill,
            m,
            t_end,
            max_events,
            stop_on_mid,
            evlog,
            nlog,
            trades,
        )
    return advance_cst(
        book, ist, fst, rng, p, fills, nfill, m, t_end, max_events, stop_on_mid, evlog, nlog, trades
    )


@numba.njit(cache=True)
def advance_cst(
    book, ist, fst, rng, p, fills, nfill, m, t_end, max_events, stop_on_mid, evlog, nlog, trades
):
    """:func:`advance` for the CST 2010 order flow."""
    L = int(p[P_L])
    mu_bid = p[P_MU] * p[P_MKT_SCALE + BID]  # sell market orders, against the bids
    mu_ask = p[P_MU] * p[P_MKT_SCALE + ASK]
    rate_scale = p[P_RATE_SCALE]
    lam_sum = p[P_LAMBDA_SUM]
    inv_mean = 1.0 / p[P_MEAN_SIZE]
    n_events = 0
    mid0 = ist[m, I_ASK_PX] + ist[m, I_BID_PX]
    logging = evlog.shape[1] > 0
    other = np.empty(L, np.int64) if logging else book[m, 0, :0]  # no allocation unless logging
    room = 4 * L + 4  # log_rows_per_event(L)
    while n_events < max_events:
        if logging and nlog[m] + room > evlog.shape[1]:
            return STOP_LOG
        c_bid = 0.0
        c_ask = 0.0
        for j in range(L):
            th = p[P_THETA + j]
            c_bid += th * book[m, BID, j]
            c_ask += th * book[m, ASK, j]
        c_bid *= inv_mean
        c_ask *= inv_mean
        total = 2.0 * lam_sum + (mu_ask + mu_bid) + c_bid + c_ask
        t = fst[m, F_TIME] + exponential(rng, m) / (total * rate_scale)
        if t >= t_end:
            fst[m, F_TIME] = t_end
            return STOP_TIME
        fst[m, F_TIME] = t
        n_events += 1
        ist[m, I_EVENTS] += 1
        x = uniform(rng, m) * total
        if x < 2.0 * lam_sum:
            side = BID if x < lam_sum else ASK
            x -= side * lam_sum
            i = L
            acc = 0.0
            for j in range(L):
                acc += p[P_LAMBDA + j]
                if x < acc:
                    i = j + 1
                    break
            if logging:
                do_limit(book, ist, fst, rng, p, m, side, i, L, evlog, nlog, other, logging)
            else:
                limit_arrival(book, ist, rng, p, m, side, i, L)
        else:
            x -= 2.0 * lam_sum
            if x < mu_ask + mu_bid:
                # a market buy (x < mu_ask) executes against the asks, a sell against the bids
                side = ASK if x < mu_ask else BID
                if logging or trades.shape[1] > 0:
                    do_market(
                        book,
                        ist,
                        fst,
                        rng,
                        p,
                        fills,
                        nfill,
                        m,
                        side,
                        L,
                        evlog,
                        nlog,
                        other,
                        logging,
                        trades,
                    )
                else:
                    execute_market(
                        book, ist, fst, p, fills, nfill, m, side, draw_size(rng, m, p), L
                    )
            else:
                x -= mu_ask + mu_bid
                side = BID if x < c_bid else ASK
                if side == ASK:
                    x -= c_bid
                x /= inv_mean
                i = 0
                acc = 0.0
                last = 0
                for j in range(L):
                    v = book[m, side, j]
                    if v > 0:
                        last = j + 1
                        acc += p[P_THETA + j] * v
                        if x < acc:
                            i = j + 1
                            break
                if i == 0:
                    i = last  # rounding at the top of the cumulative sum
                if i > 0:
                    if logging:
                        do_cancel(
                            book, ist, fst, rng, p, m, side, i, L, evlog, nlog, other, logging
                        )
                    else:
                        cancel(book, ist, fst, rng, p, m, side, i, L)
        if stop_on_mid and ist[m, I_ASK_PX] + ist[m, I_BID_PX] != mid0:
            return STOP_MID
    return STOP_EVENTS


@numba.njit(cache=True)
def advance_qr(
    book, ist, fst, rng, p, fills, nfill, m, t_end, max_events, stop_on_mid, evlog, nlog, trades
):
    """:func:`advance` for the queue-reactive order flow (HLR 2015)."""
    L = int(p[P_L])
    K = int(p[P_QR_K])
    rates = np.empty(2 * (2 * K + 1))
    n_events = 0
    mid0 = ist[m, I_ASK_PX] + ist[m, I_BID_PX]
    logging = evlog.shape[1] > 0
    other = np.empty(L, np.int64) if logging else book[m, 0, :0]  # no allocation unless logging
    room = 4 * L + 4  # log_rows_per_event(L)
    while n_events < max_events:
        if logging and nlog[m] + room > evlog.shape[1]:
            return STOP_LOG
        total = qr_rates(book, ist, p, m, L, rates)
        if not total > 0.0:
            fst[m, F_TIME] = t_end  # nothing can happen any more
            return STOP_TIME
        t = fst[m, F_TIME] + exponential(rng, m) / (total * p[P_RATE_SCALE])
        if t >= t_end:
            fst[m, F_TIME] = t_end
            return STOP_TIME
        fst[m, F_TIME] = t
        n_events += 1
        ist[m, I_EVENTS] += 1
        x = uniform(rng, m) * total
        # pick the (side, queue, kind) or (side, market) entry of ``rates``
        k = rates.size - 1
        acc = 0.0
        for r in range(rates.size):
            acc += rates[r]
            if x < acc:
                k = r
                break
        while rates[k] <= 0.0:  # rounding at the top of the cumulative sum
            k -= 1
        side = k // (2 * K + 1)
        r = k - side * (2 * K + 1)
        ask1 = qr_queue_total(book, ist, p, m, ASK, 1, L)
        bid1 = qr_queue_total(book, ist, p, m, BID, 1, L)
        if r == 2 * K:
            do_market(
                book,
                ist,
                fst,
                rng,
                p,
                fills,
                nfill,
                m,
                side,
                L,
                evlog,
                nlog,
                other,
                logging,
                trades,
            )
        else:
            q = r // 2 + 1
            j = price_level(ist, m, side, qr_price(ist, m, side, q))
            if r % 2 == 0:
                do_limit(book, ist, fst, rng, p, m, side, j, L, evlog, nlog, other, logging)
            else:
                do_cancel(book, ist, fst, rng, p, m, side, j, L, evlog, nlog, other, logging)
        if r % 2 == 1 or r == 2 * K:
            if side == ASK and ask1 > 0 and qr_queue_total(book, ist, p, m, ASK, 1, L) == 0:
                qr_depleted(book, ist, fst, rng, p, m, ASK, L, evlog, nlog, other, logging)
            elif side == BID and bid1 > 0 and qr_queue_total(book, ist, p, m, BID, 1, L) == 0:
                qr_depleted(book, ist, fst, rng, p, m, BID, L, evlog, nlog, other, logging)
        if stop_on_mid and ist[m, I_ASK_PX] + ist[m, I_BID_PX] != mid0:
            return STOP_MID
    return STOP_EVENTS


# --------------------------------------------------------------------------------------
# Realistic order flow (docs/calibration.md#realistic-order-flow): six best-level event types
# under a Hawkes process with exponential kernels and spread-bucket baselines, simulated by
# Ogata's thinning; the spread is a bucket on a coarse grid, the others' quotes are set by a
# reference price ``x`` (moved by the propagator of market-order signs plus noise) and the
# bucket: ``bid = round(x - b g / 2)``, ``ask = bid + b g``. The book keeps the others' two best
# queues only. Parameters: a block at ``P_RL`` (:func:`_pack_realistic`); state: float columns
# of ``fst`` after the agent's (``N_FSTATE + R_*``, :func:`fstate_width`).

RL_HEADER = 24
(RL_M, RL_K, RL_G, RL_NBINS, RL_H, RL_NOISE, RL_MODAL, RL_MU, RL_PHI, RL_ALPHA, RL_BETA,
 RL_TRANS, RL_INC, RL_BINS, RL_LIM, RL_NLIM, RL_CAN, RL_NCAN, RL_MKT, RL_NMKT, RL_REV,
 RL_NREV) = range(22)  # fmt: skip
# offsets (from P_RL) of the header entries; the RL_MU.. entries hold absolute offsets in p
R_X, R_B, R_NMO = 0, 1, 2  # reference price (ticks), bucket 1..K, market orders so far
R_S = 3  # + m * 6 + i: excitation of type i by kernel m, Z[m][i] = sum_j alpha[m][i][j] S[m][j]
# then, after the 6 M excitations: the propagator's running sum of signs per lag bin (n_bins),
# then the ring of the last H = last lag + 2 market-order signs
N_RL_TYPES = 6
(RL_MARKET_BUY, RL_MARKET_SELL, RL_LIMIT_BID, RL_LIMIT_ASK, RL_CANCEL_BID,
 RL_CANCEL_ASK) = range(6)  # fmt: skip


def fstate_width(p: np.ndarray) -> int:
    """Float state columns of a market with packed parameters ``p``: the agent's, plus the
    realistic flow's state (reference price, bucket, count, excitations, sign ring)."""
    if p[P_MODEL] != MODEL_RL:
        return N_FSTATE
    M, H = int(p[P_RL + RL_M]), int(p[P_RL + RL_H])
    return N_FSTATE + R_S + N_RL_TYPES * M + int(p[P_RL + RL_NBINS]) + H


@numba.njit(inline="always", cache=True)
def rl_draw(rng, m, p, off, n):
    """A size 1..n from the CDF ``p[off : off + n]``."""
    u = uniform(rng, m)
    for j in range(n):
        if u < p[off + j]:
            return j + 1
    return n


@numba.njit(inline="always", cache=True)
def rl_quotes(fst, p, m):
    """The others' best bid and ask (ticks) from the reference price and the bucket."""
    s = int(fst[m, N_FSTATE + R_B]) * int(p[P_RL + RL_G])
    bid = int(np.floor(fst[m, N_FSTATE + R_X] - 0.5 * s + 0.5))
    return bid, bid + s


@numba.njit(inline="always", cache=True)
def rl_queue(book, ist, m, side, px, L):
    """The others' lots at price ``px`` on ``side`` (0 outside the window)."""
    i = ist[m, I_ASK_PX] - px if side == BID else px - ist[m, I_BID_PX]
    if i < 1 or i > L:
        return 0
    return book[m, side, i - 1]


@numba.njit(inline="always", cache=True)
def rl_intensities(fst, p, m, lam):
    """``lambda_i`` of the six types (market orders times their stress factors); their sum."""
    M, K = int(p[P_RL + RL_M]), int(p[P_RL + RL_K])
    mu, phi = int(p[P_RL + RL_MU]), int(p[P_RL + RL_PHI])
    b = int(fst[m, N_FSTATE + R_B])
    total = 0.0
    for i in range(N_RL_TYPES):
        v = p[mu + i] * p[phi + i * K + b - 1]
        for k in range(M):
            v += fst[m, N_FSTATE + R_S + k * N_RL_TYPES + i]
        if i == RL_MARKET_BUY:
            v *= p[P_MKT_SCALE + ASK]
        elif i == RL_MARKET_SELL:
            v *= p[P_MKT_SCALE + BID]
        lam[i] = v
        total += v
    return total


@numba.njit(inline="always", cache=True)
def rl_decay(fst, p, m, dt):
    M = int(p[P_RL + RL_M])
    beta = int(p[P_RL + RL_BETA])
    for k in range(M):
        f = np.exp(-p[beta + k] * dt)
        for j in range(N_RL_TYPES):
            fst[m, N_FSTATE + R_S + k * N_RL_TYPES + j] *= f


@numba.njit(inline="always", cache=True)
def rl_take(book, ist, fst, p, fills, nfill, m, side, op, take, L, trades):
    """A market order takes ``take`` lots from ``side``: the agent's order priced better than
    the others' best ``op`` first, then FIFO at ``op`` (the queue ahead, the agent, the rest).
    Returns the others' lots left at ``op``."""
    sign = 1 if side == ASK else -1
    rem = ist[m, I_AREM + side]
    apx = ist[m, I_APX + side]
    left = take
    if rem > 0 and (apx < op if side == ASK else apx > op) and left > 0:
        f = min(left, rem)
        passive_fill(ist, fst, p, fills, nfill, m, side, f, fst[m, F_TIME])
        ist[m, I_MKT_EXEC] += f
        keep_trade(trades, ist, fst, m, apx, sign * f)
        left -= f
    q = rl_queue(book, ist, m, side, op, L)
    others = 0
    agent = 0
    if ist[m, I_AREM + side] > 0 and apx == op and left > 0:
        x = min(left, ist[m, I_AHEAD + side])
        ist[m, I_AHEAD + side] -= x
        q -= x
        others += x
        left -= x
        agent = min(left, ist[m, I_AREM + side])
        if agent > 0:
            passive_fill(ist, fst, p, fills, nfill, m, side, agent, fst[m, F_TIME])
            left -= agent
    y = min(left, q)
    q -= y
    others += y
    ist[m, I_PASSIVE_OTHERS] += others
    ist[m, I_MKT_EXEC] += others + agent
    if others + agent > 0:
        keep_trade(trades, ist, fst, m, op, sign * (others + agent))
    return q


@numba.njit(inline="always", cache=True)
def rl_rebuild(book, ist, fst, p, fills, nfill, m, L, old, qb, qa, fresh, trades):
    """Lay the others' queues ``qb``, ``qa`` at the quotes of the current reference price and
    bucket, and the agent's orders around them: an order the new quotes cross was traded
    through (filled in full at its price); one at the others' best keeps its place if that
    price and queue stayed (``fresh[side]`` 0 and ``old[side]`` the same price), else it has
    the whole queue ahead; one inside the spread or behind the best has none ahead."""
    ob, oa = rl_quotes(fst, p, m)
    for side in range(2):
        rem = ist[m, I_AREM + side]
        if rem <= 0:
            continue
        px = ist[m, I_APX + side]
        if (side == BID and px >= oa) or (side == ASK and px <= ob):
            passive_fill(ist, fst, p, fills, nfill, m, side, rem, fst[m, F_TIME])
            ist[m, I_MKT_EXEC] += rem
            keep_trade(trades, ist, fst, m, px, rem if side == ASK else -rem)
            ist[m, I_AHEAD + side] = 0
    best_bid, best_ask = ob, oa
    if ist[m, I_AREM + BID] > 0:
        best_bid = max(ob, ist[m, I_APX + BID])
    if ist[m, I_AREM + ASK] > 0:
        best_ask = min(oa, ist[m, I_APX + ASK])
    if best_ask + best_bid != ist[m, I_ASK_PX] + ist[m, I_BID_PX]:
        ist[m, I_MID_MOVES] += 1
    for side in range(2):  # the others' lots rest at their two best prices only
        op = old[side]
        i = ist[m, I_ASK_PX] - op if side == BID else op - ist[m, I_BID_PX]
        if 1 <= i <= L:
            book[m, side, i - 1] = 0
    ist[m, I_BID_PX] = best_bid
    ist[m, I_ASK_PX] = best_ask
    book[m, BID, best_ask - ob - 1] = qb
    book[m, ASK, oa - best_bid - 1] = qa
    for side in range(2):
        if ist[m, I_AREM + side] <= 0:
            continue
        op = ob if side == BID else oa
        q = qb if side == BID else qa
        if ist[m, I_APX + side] != op:
            ist[m, I_AHEAD + side] = 0
        elif fresh[side] or old[side] != op:
            ist[m, I_AHEAD + side] = q
        else:
            ist[m, I_AHEAD + side] = min(ist[m, I_AHEAD + side], q)


@numba.njit(inline="always", cache=True)
def rl_normal(rng, m):
    """A standard normal (Box-Muller, one of the pair)."""
    u1 = uniform(rng, m)
    u2 = uniform(rng, m)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


@numba.njit(inline="always", cache=True)
def rl_event(book, ist, fst, rng, p, fills, nfill, m, e, b_new, L, trades, old, fresh):
    """Apply best-level event ``e`` with the new bucket ``b_new`` (the rules of
    docs/calibration.md#realistic-order-flow). Returns the event's own lots (traded, added or
    cancelled; redrawn queues not included)."""
    b = int(fst[m, N_FSTATE + R_B])
    lots = 0
    ob, oa = rl_quotes(fst, p, m)
    old[BID], old[ASK] = ob, oa
    fresh[BID], fresh[ASK] = 0, 0
    qb = rl_queue(book, ist, m, BID, ob, L)
    qa = rl_queue(book, ist, m, ASK, oa, L)
    off_rev, n_rev = int(p[P_RL + RL_REV]), int(p[P_RL + RL_NREV])
    if e == RL_MARKET_BUY or e == RL_MARKET_SELL:
        side = ASK if e == RL_MARKET_BUY else BID
        op = oa if side == ASK else ob
        q = qa if side == ASK else qb
        size = rl_draw(rng, m, p, int(p[P_RL + RL_MKT]), int(p[P_RL + RL_NMKT]))
        ahead_of_others = 0
        rem = ist[m, I_AREM + side]
        if rem > 0:
            apx = ist[m, I_APX + side]
            if apx == op or (apx < op if side == ASK else apx > op):
                ahead_of_others = rem
        if b_new > b:
            take = q + ahead_of_others
        else:
            take = min(size, ahead_of_others + q)
        exec0 = ist[m, I_MKT_EXEC]
        q = rl_take(book, ist, fst, p, fills, nfill, m, side, op, take, L, trades)
        lots = ist[m, I_MKT_EXEC] - exec0
        if b_new > b:
            ist[m, I_DROPPED] += q
            q = rl_draw(rng, m, p, off_rev, n_rev)
            ist[m, I_ADDED] += q
            fresh[side] = 1
        elif q == 0:  # the spread stays: one lot stays at the quote (behind the agent's order)
            q = 1
            ist[m, I_ADDED] += 1
        if side == ASK:
            qa = q
        else:
            qb = q
        # the propagator: this order is k = 0
        H = int(p[P_RL + RL_H])
        nbins = int(p[P_RL + RL_NBINS])
        sums = N_FSTATE + R_S + N_RL_TYPES * int(p[P_RL + RL_M])
        ring = sums + nbins
        n = int(fst[m, N_FSTATE + R_NMO])
        fst[m, ring + n % H] = 1.0 if side == ASK else -1.0
        n += 1
        fst[m, N_FSTATE + R_NMO] = n
        inc, bins = int(p[P_RL + RL_INC]), int(p[P_RL + RL_BINS])
        dx = 0.0
        for r in range(nbins):  # every past order is one lag older: slide each bin's sum
            lo, hi = int(p[bins + 2 * r]), int(p[bins + 2 * r + 1])
            if lo < n:
                fst[m, sums + r] += fst[m, ring + (n - 1 - lo) % H]
            if hi + 1 < n:
                fst[m, sums + r] -= fst[m, ring + (n - 2 - hi) % H]
            dx += p[inc + r] * fst[m, sums + r]
        noise = p[P_RL + RL_NOISE]
        if noise > 0.0:
            dx += noise * rl_normal(rng, m)
        fst[m, N_FSTATE + R_X] += dx
    elif e == RL_LIMIT_BID or e == RL_LIMIT_ASK:
        side = BID if e == RL_LIMIT_BID else ASK
        size = rl_draw(rng, m, p, int(p[P_RL + RL_LIM]), int(p[P_RL + RL_NLIM]))
        q = qb if side == BID else qa
        if b_new < b:  # the order is the new best queue; the old one is now behind it
            ist[m, I_DROPPED] += q
            q = size
            fresh[side] = 1
        else:
            q += size
        ist[m, I_ADDED] += size
        lots = size
        if side == BID:
            qb = q
        else:
            qa = q
    else:
        side = BID if e == RL_CANCEL_BID else ASK
        size = rl_draw(rng, m, p, int(p[P_RL + RL_CAN]), int(p[P_RL + RL_NCAN]))
        q = qb if side == BID else qa
        op = ob if side == BID else oa
        c = min(size, q) if b_new > b else min(size, q - 1)
        if c > 0:
            if ist[m, I_AREM + side] > 0 and ist[m, I_APX + side] == op:
                a = ist[m, I_AHEAD + side]
                ist[m, I_AHEAD + side] = a - cancel_from_ahead(rng, m, p, a, q - a, c)
            q -= c
            ist[m, I_CANCELLED] += c
            lots = c
        if b_new > b:
            ist[m, I_DROPPED] += q
            q = rl_draw(rng, m, p, off_rev, n_rev)
            ist[m, I_ADDED] += q
            fresh[side] = 1
        if side == BID:
            qb = q
        else:
            qa = q
    fst[m, N_FSTATE + R_B] = b_new
    # a queue the agent's own trades emptied is revealed again
    if qb <= 0:
        qb = rl_draw(rng, m, p, off_rev, n_rev)
        ist[m, I_ADDED] += qb
        fresh[BID] = 1
    if qa <= 0:
        qa = rl_draw(rng, m, p, off_rev, n_rev)
        ist[m, I_ADDED] += qa
        fresh[ASK] = 1
    rl_rebuild(book, ist, fst, p, fills, nfill, m, L, old, qb, qa, fresh, trades)
    return lots


@numba.njit(cache=True)
def rl_log(evlog, nlog, book, ist, fst, p, m, e, lots, old, fresh, L):
    """Log event ``e`` (``lots`` its own lots; ``old`` the others' quotes before it): a market
    order is a ``trade`` row at the touched quote (none when it traded nothing), a limit order
    an ``add`` at its side's quote after it, a cancellation a ``cancel`` at the quote it left;
    then, when the quotes moved or a queue was replaced, ``snapshot`` rows (synthetic) of both
    best queues, as a queue-reactive redraw is written."""
    ob, oa = rl_quotes(fst, p, m)
    if e == RL_MARKET_BUY or e == RL_MARKET_SELL:
        side = ASK if e == RL_MARKET_BUY else BID
        if lots > 0:
            log_row(evlog, nlog, book, ist, fst, m, KIND_TRADE, side, old[side], lots,
                    1 if side == ASK else -1, 0.0, L)  # fmt: skip
    elif e == RL_LIMIT_BID or e == RL_LIMIT_ASK:
        side = BID if e == RL_LIMIT_BID else ASK
        log_row(evlog, nlog, book, ist, fst, m, KIND_ADD, side, ob if side == BID else oa, lots,
                0, 0.0, L)  # fmt: skip
    elif lots > 0:
        side = BID if e == RL_CANCEL_BID else ASK
        log_row(evlog, nlog, book, ist, fst, m, KIND_CANCEL, side, old[side], lots, 0, 0.0, L)
    if ob != old[BID] or oa != old[ASK] or fresh[BID] or fresh[ASK]:
        for side in range(2):
            px = ob if side == BID else oa
            q = rl_queue(book, ist, m, side, px, L)
            if q > 0:
                log_row(evlog, nlog, book, ist, fst, m, KIND_SNAPSHOT, side, px, q, 0, 1.0, L)


@numba.njit(cache=True)
def advance_rl(
    book, ist, fst, rng, p, fills, nfill, m, t_end, max_events, stop_on_mid, evlog, nlog, trades
):
    """:func:`advance` for the realistic order flow: Ogata's (1981) thinning with the bound
    ``sum_i lambda_i`` (the intensities only decay between events); a proposal beyond
    ``t_end`` decays the excitations to ``t_end`` and stops (exact: given ``S`` the process
    is memoryless). ``p[P_RATE_SCALE]`` runs the clock faster (the intensities and the decays
    in scaled time), ``p[P_MKT_SCALE + side]`` multiplies the market orders hitting ``side``.
    The event log (:func:`rl_log`) gets the event's row and, when the others' quotes moved or a
    queue was replaced, synthetic snapshot rows of the two best queues."""
    L = int(p[P_L])
    K = int(p[P_RL + RL_K])
    trans = int(p[P_RL + RL_TRANS])
    rate = p[P_RATE_SCALE]
    lam = np.empty(N_RL_TYPES)
    old = np.zeros(2, np.int64)
    fresh = np.zeros(2, np.int64)
    n_events = 0
    mid0 = ist[m, I_ASK_PX] + ist[m, I_BID_PX]
    logging = evlog.shape[1] > 0
    total = rl_intensities(fst, p, m, lam)
    while n_events < max_events:
        if logging and nlog[m] + 4 > evlog.shape[1]:
            return STOP_LOG
        if not total > 0.0:
            fst[m, F_TIME] = t_end
            return STOP_TIME
        w = exponential(rng, m) / total  # scaled time
        t = fst[m, F_TIME]
        if t + w / rate >= t_end:
            rl_decay(fst, p, m, (t_end - t) * rate)
            fst[m, F_TIME] = t_end
            return STOP_TIME
        rl_decay(fst, p, m, w)
        fst[m, F_TIME] = t + w / rate
        u = uniform(rng, m) * total
        now = rl_intensities(fst, p, m, lam)
        if u >= now:
            total = now  # the next bound: the intensities at the current time
            continue  # rejected: no event
        e = N_RL_TYPES - 1
        acc = 0.0
        for i in range(N_RL_TYPES):
            acc += lam[i]
            if u < acc:
                e = i
                break
        while lam[e] <= 0.0:  # rounding at the top of the cumulative sum
            e -= 1
        n_events += 1
        ist[m, I_EVENTS] += 1
        b = int(fst[m, N_FSTATE + R_B])
        b_new = rl_draw(rng, m, p, trans + (e * K + b - 1) * K, K)
        lots = rl_event(book, ist, fst, rng, p, fills, nfill, m, e, b_new, L, trades, old, fresh)
        if logging:
            rl_log(evlog, nlog, book, ist, fst, p, m, e, lots, old, fresh, L)
        M = int(p[P_RL + RL_M])
        beta, alpha = int(p[P_RL + RL_BETA]), int(p[P_RL + RL_ALPHA])
        for k in range(M):  # S[k][e] += beta_k, so Z[k][i] += alpha[k][i][e] beta_k
            for i in range(N_RL_TYPES):
                fst[m, N_FSTATE + R_S + k * N_RL_TYPES + i] += (
                    p[alpha + (k * N_RL_TYPES + i) * N_RL_TYPES + e] * p[beta + k]
                )
        total = rl_intensities(fst, p, m, lam)
        if stop_on_mid and ist[m, I_ASK_PX] + ist[m, I_BID_PX] != mid0:
            return STOP_MID
    return STOP_EVENTS


@numba.njit(cache=True)
def rl_init(book, ist, fst, rng, p, m, px0):
    """A fresh realistic book: the modal bucket, best bid ``px0``, the best queues drawn from
    the revealed-queue law, no excitation and no past market order."""
    K = int(p[P_RL + RL_MODAL]) + 1
    g = int(p[P_RL + RL_G])
    for j in range(N_FSTATE, fst.shape[1]):
        fst[m, j] = 0.0
    s = K * g
    fst[m, N_FSTATE + R_B] = K
    fst[m, N_FSTATE + R_X] = px0 + 0.5 * s
    ist[m, I_BID_PX] = px0
    ist[m, I_ASK_PX] = px0 + s
    off_rev, n_rev = int(p[P_RL + RL_REV]), int(p[P_RL + RL_NREV])
    for side in range(2):
        book[m, side, s - 1] = rl_draw(rng, m, p, off_rev, n_rev)


def _simulate_impl(
    book, ist, fst, rng, p, until, max_events, stop_on_mid, fills, nfill, stops, evlog, nlog, trades
):
    for m in numba.prange(book.shape[0]):
        stops[m] = advance(
            book,
            ist,
            fst,
            rng,
            p,
            fills,
            nfill,
            m,
            until[m],
            max_events,
            stop_on_mid,
            evlog,
            nlog,
            trades,
        )


simulate = numba.njit(cache=True, nogil=True)(_simulate_impl)
simulate.__doc__ = """Advance every market ``m`` until ``until[m]``, ``max_events`` events or
(``stop_on_mid``) its first mid change, logging its events to ``evlog`` when that has rows; write
the stop reason to ``stops[m]``. Serial."""
simulate_parallel = numba.njit(cache=True, nogil=True, parallel=True)(
    renamed(_simulate_impl, "_parallel")
)
simulate_parallel.__doc__ = "As :func:`simulate`, markets spread over threads with ``prange``."


@numba.njit(cache=True)
def init_books(book, ist, fst, rng, p, initial, stationary, px0, mask):
    """Fill the masked markets' books: spread one tick, bid at ``px0``; level ``i`` of each side
    holds ``initial[i-1]`` lots or (``stationary``) a Poisson(lambda(i)/theta(i)) draw (CST) or
    a draw from queue ``i``'s invariant law (queue-reactive, ``i <= K``; the reference price
    is then the mid, ``Q_{+1}`` at the best ask)."""
    L = int(p[P_L])
    qr = p[P_MODEL] == MODEL_QR
    K = int(p[P_QR_K])
    for m in range(book.shape[0]):
        if not mask[m]:
            continue
        ist[m, :] = 0
        fst[m, :] = 0.0
        if p[P_MODEL] == MODEL_RL:
            book[m, :, :] = 0
            rl_init(book, ist, fst, rng, p, m, px0)
            continue
        ist[m, I_BID_PX] = px0
        ist[m, I_ASK_PX] = px0 + 1
        if qr:
            ist[m, I_REF] = px0 + 1
            ist[m, I_QR_K] = K
        for side in range(2):
            for j in range(L):
                if stationary and qr:
                    book[m, side, j] = qr_draw_queue(rng, m, p, j + 1) if j < K else 0
                elif stationary:
                    book[m, side, j] = poisson(rng, m, p[P_LAMBDA + j] / p[P_THETA + j])
                else:
                    book[m, side, j] = initial[j]
        fix_best(book, ist, m, BID, L)
        fix_best(book, ist, m, ASK, L)
        ist[m, I_MID_MOVES] = 0
        ist[m, I_DROPPED] = 0  # the initial book is the normalized one


def _pack_queue_reactive(qr) -> np.ndarray:
    """The fixed part (zeros) followed by the queue-reactive block (P_QR)."""
    K, w = qr.n_queues, qr.max_queue + 1
    cdfs = [np.cumsum(qr.invariant_distribution(q)) for q in range(1, K + 1)]
    n_cdf = max(c.size for c in cdfs)
    p = np.zeros(N_PARAMS + 4 + 2 * K * w + w + K * n_cdf)
    p[P_MODEL] = MODEL_QR
    p[P_QR_K] = K
    p[P_QR_MAXQ] = qr.max_queue
    p[P_QR], p[P_QR + 1], p[P_QR + 2] = qr.theta, qr.theta_reinit, n_cdf
    lim, can, mkt, cdf, _ = qr_offsets(p)
    p[lim:can] = np.asarray(qr.limit_rates, np.float64).ravel()
    p[can:mkt] = np.asarray(qr.cancel_rates, np.float64).ravel()
    p[mkt:cdf] = qr.market_rates
    for q, c in enumerate(cdfs):
        row = np.ones(n_cdf)
        row[: c.size] = c
        row[c.size - 1 :] = 1.0
        p[cdf + q * n_cdf : cdf + (q + 1) * n_cdf] = row
    return p


def _pack_realistic(rp) -> np.ndarray:
    """The fixed part (zeros) followed by the realistic flow's block (P_RL): header, then
    baselines, multipliers, branching, decays, cumulative bucket transitions, propagator
    increments and lag bins, and the CDFs of the limit, cancel, market and revealed-queue
    sizes."""
    h = rp.hawkes
    M, K = len(h.decays), rp.spread.n_buckets
    bins = np.asarray(rp.impact.lag_bins, np.float64).reshape(-1, 2)
    trans = np.cumsum(np.asarray(rp.spread.transition_probs, np.float64), axis=2)
    trans[:, :, -1] = 1.0

    def cdf(probs):
        c = np.cumsum(np.asarray(probs, np.float64))
        c[-1] = 1.0
        return c

    parts = [
        ("mu", np.asarray(h.baseline, np.float64)),
        ("phi", np.asarray(rp.spread_multipliers, np.float64).ravel()),
        ("alpha", np.asarray(h.branching, np.float64).ravel()),
        ("beta", np.asarray(h.decays, np.float64)),
        ("trans", trans.ravel()),
        ("inc", np.asarray(rp.impact.increments, np.float64)),
        ("bins", bins.ravel()),
        ("lim", cdf(rp.sizes.limit)),
        ("can", cdf(rp.sizes.cancel)),
        ("mkt", cdf(rp.sizes.market)),
        ("rev", cdf(rp.spread.revealed_queue_probs)),
    ]
    size = N_PARAMS + RL_HEADER + sum(a.size for _, a in parts)
    p = np.zeros(size)
    p[P_MODEL] = MODEL_RL
    head = P_RL
    p[head + RL_M], p[head + RL_K], p[head + RL_G] = M, K, rp.spread.grid_ticks
    p[head + RL_NBINS] = bins.shape[0]
    p[head + RL_H] = int(bins[:, 1].max()) + 2  # the sign leaving the last bin stays readable
    p[head + RL_NOISE] = rp.impact.noise_sd
    p[head + RL_MODAL] = int(np.argmax(rp.spread.time_share))
    slots = {"mu": RL_MU, "phi": RL_PHI, "alpha": RL_ALPHA, "beta": RL_BETA, "trans": RL_TRANS,
             "inc": RL_INC, "bins": RL_BINS, "lim": RL_LIM, "can": RL_CAN, "mkt": RL_MKT,
             "rev": RL_REV}  # fmt: skip
    counts = {"lim": RL_NLIM, "can": RL_NCAN, "mkt": RL_NMKT, "rev": RL_NREV}
    off = P_RL + RL_HEADER
    for name, a in parts:
        p[head + slots[name]] = off
        if name in counts:
            p[head + counts[name]] = a.size
        p[off : off + a.size] = a
        off += a.size
    return p


def pack_params(
    market,
    queue_model: int = QUEUE_RISK_AVERSE,
    queue_power: float = 2.0,
    maker_bps: float = 0.0,
    taker_bps: float = 0.0,
) -> np.ndarray:
    """The kernel's float64 parameter vector (P_* indices) for a ``MarketParams``."""
    qr = market.queue_reactive if market.model == "queue_reactive" else None
    if market.model == "realistic":
        p = _pack_realistic(market.realistic_params)
    else:
        p = np.zeros(N_PARAMS) if qr is None else _pack_queue_reactive(qr)
    L = market.n_levels
    p[P_L] = L
    if qr is None and market.model != "realistic":
        p[P_MODEL] = MODEL_CST
        p[P_MU] = market.market_rate
        p[P_LAMBDA : P_LAMBDA + L] = market.limit_rates
        p[P_THETA : P_THETA + L] = market.cancel_rates
        p[P_LAMBDA_SUM] = float(np.sum(market.limit_rates))
    kind = {"unit": SIZE_UNIT, "geometric": SIZE_GEOMETRIC, "discrete": SIZE_DISCRETE}
    p[P_SIZE_KIND] = kind[market.size_distribution]
    p[P_MEAN_SIZE] = market.mean_size
    if market.size_distribution == "geometric":
        p[P_SIZE_LOGQ] = np.log1p(-1.0 / market.size_mean) if market.size_mean > 1 else 0.0
    if market.size_probs is not None:
        cdf = np.cumsum(market.size_probs)
        cdf[-1] = 1.0
        p[P_SIZE_CDF : P_SIZE_CDF + cdf.size] = cdf
        p[P_N_SIZES] = cdf.size
    p[P_QUEUE_MODEL] = queue_model
    p[P_QUEUE_POWER] = queue_power
    p[P_MAKER_BPS] = maker_bps
    p[P_TAKER_BPS] = taker_bps
    p[P_TICK] = market.tick_size
    p[P_LOT] = market.lot_size
    p[P_RATE_SCALE] = 1.0
    p[P_MKT_SCALE + BID] = p[P_MKT_SCALE + ASK] = 1.0
    return p


class OrderBooks:
    """``N`` independent CST 2010 books with their agent-order slots, as named arrays.

    A thin holder around the kernel's arrays (see the module docstring for the layout and units);
    :meth:`simulate` runs the market alone (no agent orders unless placed by the env).

    :param market: the order-flow model.
    :param num_books: ``N``.
    :param params: a packed parameter vector (:func:`pack_params`); default: no fees, risk-averse.
    :param max_fills: rows of the per-market fill log between two reads.
    """

    def __init__(
        self, market, num_books: int, params: np.ndarray | None = None, max_fills: int = 64
    ) -> None:
        if num_books < 1:
            raise ValueError(f"num_books must be >= 1, got {num_books}")
        self.market = market
        self.num_books = num_books
        self.L = market.n_levels
        self.params = pack_params(market) if params is None else params
        self.book = np.zeros((num_books, 2, self.L), np.int64)
        self.ist = np.zeros((num_books, N_ISTATE), np.int64)
        self.fst = np.zeros((num_books, fstate_width(self.params)))
        self.fills = np.zeros((num_books, max_fills, N_FILL_COLS))
        self.nfill = np.zeros(num_books, np.int64)
        self.stops = np.zeros(num_books, np.int64)
        self.rng = seed_states(None, num_books)
        self._no_log = no_event_log(num_books)
        self._no_trades = no_trade_ring(num_books)

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """One xoshiro stream per book from ``SeedSequence(seed).spawn(N)``."""
        self.rng = seed_states(seed, self.num_books)

    def reset(self, px0: int = 10_000, mask: np.ndarray | None = None) -> None:
        """Initial books (``MarketParams.initial_book``) with the best bid at ``px0`` ticks."""
        init = self.market.initial_book
        stationary = init == "stationary"
        initial = np.zeros(self.L, np.int64) if stationary else np.asarray(init, np.int64)
        sel = np.ones(self.num_books, np.bool_) if mask is None else np.asarray(mask, np.bool_)
        init_books(
            self.book, self.ist, self.fst, self.rng, self.params, initial, stationary, px0, sel
        )

    def simulate(
        self,
        until: float | np.ndarray = np.inf,
        max_events: int = 2**62,
        stop_on_mid_move: bool = False,
        parallel: bool = False,
        event_log: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Advance every book; returns the stop reasons (STOP_*).

        :param event_log: ``(evlog, nlog)`` to record the events in (see :func:`advance`);
            :mod:`envs.lob.events` reads it.
        """
        until_arr = np.broadcast_to(np.asarray(until, np.float64), (self.num_books,)).copy()
        kernel = simulate_parallel if parallel else simulate
        evlog, nlog = event_log if event_log is not None else self._no_log
        kernel(
            self.book,
            self.ist,
            self.fst,
            self.rng,
            self.params,
            until_arr,
            max_events,
            stop_on_mid_move,
            self.fills,
            self.nfill,
            self.stops,
            evlog,
            nlog,
            self._no_trades,
        )
        return self.stops

    @property
    def ask_px(self) -> np.ndarray:
        return self.ist[:, I_ASK_PX]

    @property
    def bid_px(self) -> np.ndarray:
        return self.ist[:, I_BID_PX]

    @property
    def time(self) -> np.ndarray:
        return self.fst[:, F_TIME]

    def best_queues(self) -> tuple[np.ndarray, np.ndarray]:
        """Lots at the best ask and best bid (the agent's included)."""
        s = self.ask_px - self.bid_px
        idx = np.arange(self.num_books)
        a = self.book[idx, ASK, s - 1].copy()
        b = self.book[idx, BID, s - 1].copy()
        for side, arr in ((ASK, a), (BID, b)):
            here = (self.ist[:, I_AREM + side] > 0) & (
                np.where(
                    side == BID,
                    self.ask_px - self.ist[:, I_APX + BID],
                    self.ist[:, I_APX + ASK] - self.bid_px,
                )
                == s
            )
            arr += np.where(here, self.ist[:, I_AREM + side], 0)
        return a, b

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

Layout (per market ``m``; named indices below; units):

- ``book[m, side, i - 1]`` int64, lots resting by OTHER participants at distance ``i`` ticks from
  the opposite best: ``side = BID`` at price ``ask_px - i``, ``side = ASK`` at ``bid_px + i``.
  The window moves with the quotes (arrays are shifted when a best price changes); volume that
  drifts beyond ``L`` is dropped (counted in ``I_DROPPED``), levels that enter it start empty.
- ``ist[m, I_*]`` int64: best prices ``I_ASK_PX``, ``I_BID_PX`` (ticks; they include the agent's
  orders; a side with no volume in the window has its best at distance ``L``), the agent's order
  per side (price, remaining lots, lots ahead in the queue, lots ahead at entry), its inventory
  (lots) and event counters (lots) used by the conservation checks.
- ``fst[m, F_*]`` float64: time, cash (currency), fees paid (currency), running peak value, the
  entry time of each agent order (time units).
- ``rng[m, :]`` uint64: the market's own xoshiro256** state (Blackman & Vigna 2021), seeded from
  ``SeedSequence.spawn``. A generator per market, advanced inside the kernel, keeps each market's
  path independent of ``N``, of the iteration order and of threads (``prange``); a numpy
  ``Generator`` argument would be one stream shared by all markets, and pre-drawn uniforms need a
  count that is not known in advance.

The agent's orders (DESIGN.md section 4) live here too, because the market's events fill them:
FIFO at their price (a market order consumes the queue ahead, then the agent, then the rest), and
a queue model decides how much of a cancellation by others was ahead of the agent:
``QUEUE_RISK_AVERSE`` (never ahead while there is volume behind), ``QUEUE_PROB`` with
``f(x) = x^n`` and ``QUEUE_PROB_LOG`` with ``f(x) = log(1 + x)`` (ahead with probability
``f(ahead) / (f(ahead) + f(behind))``, as in hftbacktest's ``ProbQueueModel``), and
``QUEUE_EXACT``: the cancelled lots' position is known. In this synthetic market each resting unit
order is cancelled at the same rate, so the cancelled one is uniform over the queue: exactly
``QUEUE_PROB`` with ``n = 1``; a replay with order ids calls :func:`cancel_ahead_exact` instead.
"""

from __future__ import annotations

import numba
import numpy as np

BID, ASK = 0, 1

# ---- ist columns (int64)
I_ASK_PX, I_BID_PX = 0, 1
I_APX = 2  # + side: agent order price (ticks)
I_AREM = 4  # + side: agent order remaining lots (0 = no order)
I_AHEAD = 6  # + side: lots ahead of the agent's order
I_AHEAD0 = 8  # + side: lots ahead at entry
I_INV = 10  # agent inventory (lots)
I_EVENTS = 11  # market events simulated
I_ADDED = 12  # lots added by others' limit orders
I_CANCELLED = 13  # lots cancelled by others
I_DROPPED = 14  # lots dropped at the window's edge
I_MKT_EXEC = 15  # lots executed by others' market orders
I_PASSIVE_OTHERS = 16  # others' resting lots consumed by trades
I_AGENT_MAKER = 17  # lots the agent traded passively
I_AGENT_TAKER = 18  # lots the agent traded aggressively
I_MID_MOVES = 19  # changes of the book's mid
N_ISTATE = 20

# ---- fst columns (float64)
F_TIME, F_CASH, F_FEES, F_PEAK = 0, 1, 2, 3
F_T0 = 4  # + side: entry time of the agent's order
N_FSTATE = 6

# ---- fill log columns (float64), one row per agent fill
(FILL_TIME, FILL_PRICE, FILL_SIZE, FILL_SIDE, FILL_TAKER, FILL_FEE, FILL_AHEAD0,
 FILL_WAITED) = range(8)  # fmt: skip
N_FILL_COLS = 8

# ---- queue models
QUEUE_RISK_AVERSE, QUEUE_PROB, QUEUE_PROB_LOG, QUEUE_EXACT = 0, 1, 2, 3

# ---- size distributions
SIZE_UNIT, SIZE_GEOMETRIC, SIZE_DISCRETE = 0, 1, 2

# ---- parameter vector (float64)
P_L, P_MU, P_SIZE_KIND, P_SIZE_LOGQ, P_MEAN_SIZE, P_N_SIZES = 0, 1, 2, 3, 4, 5
P_QUEUE_MODEL, P_QUEUE_POWER, P_MAKER_BPS, P_TAKER_BPS, P_TICK, P_LOT = 6, 7, 8, 9, 10, 11
P_LAMBDA_SUM = 12
P_LAMBDA = 16  # 64 entries: lambda(1..L)
P_THETA = P_LAMBDA + 64  # 64 entries: theta(1..L)
P_SIZE_CDF = P_THETA + 64  # 32 entries: P(size <= j), j = 1..
P_ENV = P_SIZE_CDF + 32  # first entry free for the env's own parameters
N_PARAMS = P_ENV + 32

# ---- kernel stop reasons
STOP_TIME, STOP_EVENTS, STOP_MID = 0, 1, 2

_INV_2_53 = 1.0 / 9007199254740992.0


# --------------------------------------------------------------------------------------
# Random numbers: xoshiro256** (Blackman & Vigna, ACM TOMS 47(4), 2021), one state per market.


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
    """Move ``side``'s best outward to its first non-empty level (distance ``L`` if none)."""
    s = spread(ist, m)
    j = L
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
def record_fill(fills, nfill, m, t, px, size, side, taker, fee, ahead0, waited):
    """Append an agent fill to market ``m``'s log (kept if the log has room; always counted)."""
    k = nfill[m]
    if k < fills.shape[1]:
        fills[m, k, FILL_TIME] = t
        fills[m, k, FILL_PRICE] = px
        fills[m, k, FILL_SIZE] = size
        fills[m, k, FILL_SIDE] = 1.0 if side == BID else -1.0
        fills[m, k, FILL_TAKER] = taker
        fills[m, k, FILL_FEE] = fee
        fills[m, k, FILL_AHEAD0] = ahead0
        fills[m, k, FILL_WAITED] = waited
    nfill[m] = k + 1


@numba.njit(cache=True)
def settle(ist, fst, p, m, side, px, size):
    """Cash and inventory of an agent trade of ``size`` lots at ``px`` ticks (``side`` = the
    agent's order side: BID buys). Returns the fee (currency, bps of notional; < 0 = rebate)."""
    notional = px * p[P_TICK] * p[P_LOT] * size
    if side == BID:
        fst[m, F_CASH] -= notional
        ist[m, I_INV] += size
    else:
        fst[m, F_CASH] += notional
        ist[m, I_INV] -= size
    return notional


@numba.njit(cache=True)
def agent_passive_fill(ist, fst, p, fills, nfill, m, side, size):
    """The agent's resting order on ``side`` trades ``size`` lots at its price (maker)."""
    px = ist[m, I_APX + side]
    notional = settle(ist, fst, p, m, side, px, size)
    fee = p[P_MAKER_BPS] * 1e-4 * notional
    fst[m, F_CASH] -= fee
    fst[m, F_FEES] += fee
    ist[m, I_AREM + side] -= size
    ist[m, I_AGENT_MAKER] += size
    t = fst[m, F_TIME]
    record_fill(fills, nfill, m, t, px, size, side, 0.0, fee, ist[m, I_AHEAD0 + side],
                t - fst[m, F_T0 + side])


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
                agent_passive_fill(ist, fst, p, fills, nfill, m, side, f)
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
def cancel_ahead_exact(ahead, cancelled_ahead):
    """Exact queue tracking (L3 replay): the feed says ``cancelled_ahead`` lots were ahead."""
    return max(ahead - cancelled_ahead, 0)


@numba.njit(cache=True)
def cancel(book, ist, fst, rng, p, m, side, i, L):
    """Others cancel at distance ``i`` on ``side``; the queue model moves the agent's place."""
    vol = book[m, side, i - 1]
    size = min(draw_size(rng, m, p), vol)
    if size <= 0:
        return
    if agent_level(ist, m, side) == i:
        a = ist[m, I_AHEAD + side]
        b = vol - a
        model = p[P_QUEUE_MODEL]
        ahead_first = False
        if model != QUEUE_RISK_AVERSE and a > 0:
            if b <= 0:
                ahead_first = True
            else:
                if model == QUEUE_PROB_LOG:
                    fa, fb = np.log1p(a), np.log1p(b)
                else:  # QUEUE_PROB, QUEUE_EXACT (uniform pick: n = 1)
                    n = p[P_QUEUE_POWER] if model == QUEUE_PROB else 1.0
                    fa, fb = float(a) ** n, float(b) ** n
                ahead_first = uniform(rng, m) * (fa + fb) < fa
        if ahead_first:
            from_a = min(size, a)
        else:
            from_a = max(size - b, 0)
        ist[m, I_AHEAD + side] = a - from_a
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
def advance(book, ist, fst, rng, p, fills, nfill, m, t_end, max_events, stop_on_mid):
    """Simulate market ``m`` until time ``t_end``, ``max_events`` more events, or (when
    ``stop_on_mid``) the first change of the mid. Returns the STOP_* reason.

    Stopping at ``t_end`` discards the pending waiting time; that is exact because the rates are
    constant between events and the exponential law is memoryless.
    """
    L = int(p[P_L])
    mu = p[P_MU]
    lam_sum = p[P_LAMBDA_SUM]
    inv_mean = 1.0 / p[P_MEAN_SIZE]
    n_events = 0
    mid0 = ist[m, I_ASK_PX] + ist[m, I_BID_PX]
    while n_events < max_events:
        c_bid = 0.0
        c_ask = 0.0
        for j in range(L):
            th = p[P_THETA + j]
            c_bid += th * book[m, BID, j]
            c_ask += th * book[m, ASK, j]
        c_bid *= inv_mean
        c_ask *= inv_mean
        total = 2.0 * lam_sum + 2.0 * mu + c_bid + c_ask
        t = fst[m, F_TIME] + exponential(rng, m) / total
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
            limit_arrival(book, ist, rng, p, m, side, i, L)
        else:
            x -= 2.0 * lam_sum
            if x < 2.0 * mu:
                # a market buy (x < mu) executes against the asks, a sell against the bids
                side = ASK if x < mu else BID
                execute_market(book, ist, fst, p, fills, nfill, m, side, draw_size(rng, m, p), L)
            else:
                x -= 2.0 * mu
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
                    cancel(book, ist, fst, rng, p, m, side, i, L)
        if stop_on_mid and ist[m, I_ASK_PX] + ist[m, I_BID_PX] != mid0:
            return STOP_MID
    return STOP_EVENTS


def _simulate_impl(book, ist, fst, rng, p, until, max_events, stop_on_mid, fills, nfill, stops):
    for m in numba.prange(book.shape[0]):
        stops[m] = advance(book, ist, fst, rng, p, fills, nfill, m, until[m], max_events,
                           stop_on_mid)


simulate = numba.njit(cache=True, nogil=True)(_simulate_impl)
simulate.__doc__ = """Advance every market ``m`` until ``until[m]``, ``max_events`` events or
(``stop_on_mid``) its first mid change; write the stop reason to ``stops[m]``. Serial."""
simulate_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_simulate_impl)
simulate_parallel.__doc__ = "As :func:`simulate`, markets spread over threads with ``prange``."


@numba.njit(cache=True)
def init_books(book, ist, fst, rng, p, initial, stationary, px0, mask):
    """Fill the masked markets' books: spread one tick, bid at ``px0``; level ``i`` of each side
    holds ``initial[i-1]`` lots or (``stationary``) a Poisson(lambda(i)/theta(i)) draw."""
    L = int(p[P_L])
    for m in range(book.shape[0]):
        if not mask[m]:
            continue
        ist[m, :] = 0
        fst[m, :] = 0.0
        ist[m, I_BID_PX] = px0
        ist[m, I_ASK_PX] = px0 + 1
        for side in range(2):
            for j in range(L):
                if stationary:
                    book[m, side, j] = poisson(rng, m, p[P_LAMBDA + j] / p[P_THETA + j])
                else:
                    book[m, side, j] = initial[j]
        fix_best(book, ist, m, BID, L)
        fix_best(book, ist, m, ASK, L)
        ist[m, I_MID_MOVES] = 0
        ist[m, I_DROPPED] = 0  # the initial book is the normalized one


def pack_params(market, queue_model: int = QUEUE_RISK_AVERSE, queue_power: float = 2.0,
                maker_bps: float = 0.0, taker_bps: float = 0.0) -> np.ndarray:
    """The kernel's float64 parameter vector (P_* indices) for a ``MarketParams``."""
    p = np.zeros(N_PARAMS)
    L = market.n_levels
    p[P_L] = L
    p[P_MU] = market.market_rate
    p[P_LAMBDA:P_LAMBDA + L] = market.limit_rates
    p[P_THETA:P_THETA + L] = market.cancel_rates
    p[P_LAMBDA_SUM] = float(np.sum(market.limit_rates))
    kind = {"unit": SIZE_UNIT, "geometric": SIZE_GEOMETRIC, "discrete": SIZE_DISCRETE}
    p[P_SIZE_KIND] = kind[market.size_distribution]
    p[P_MEAN_SIZE] = market.mean_size
    if market.size_distribution == "geometric":
        p[P_SIZE_LOGQ] = np.log1p(-1.0 / market.size_mean) if market.size_mean > 1 else 0.0
    if market.size_probs is not None:
        cdf = np.cumsum(market.size_probs)
        cdf[-1] = 1.0
        p[P_SIZE_CDF:P_SIZE_CDF + cdf.size] = cdf
        p[P_N_SIZES] = cdf.size
    p[P_QUEUE_MODEL] = queue_model
    p[P_QUEUE_POWER] = queue_power
    p[P_MAKER_BPS] = maker_bps
    p[P_TAKER_BPS] = taker_bps
    p[P_TICK] = market.tick_size
    p[P_LOT] = market.lot_size
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

    def __init__(self, market, num_books: int, params: np.ndarray | None = None,
                 max_fills: int = 64) -> None:
        if num_books < 1:
            raise ValueError(f"num_books must be >= 1, got {num_books}")
        self.market = market
        self.num_books = num_books
        self.L = market.n_levels
        self.params = pack_params(market) if params is None else params
        self.book = np.zeros((num_books, 2, self.L), np.int64)
        self.ist = np.zeros((num_books, N_ISTATE), np.int64)
        self.fst = np.zeros((num_books, N_FSTATE))
        self.fills = np.zeros((num_books, max_fills, N_FILL_COLS))
        self.nfill = np.zeros(num_books, np.int64)
        self.stops = np.zeros(num_books, np.int64)
        self.rng = seed_states(None, num_books)

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """One xoshiro stream per book from ``SeedSequence(seed).spawn(N)``."""
        self.rng = seed_states(seed, self.num_books)

    def reset(self, px0: int = 10_000, mask: np.ndarray | None = None) -> None:
        """Initial books (``MarketParams.initial_book``) with the best bid at ``px0`` ticks."""
        init = self.market.initial_book
        stationary = init == "stationary"
        initial = np.zeros(self.L, np.int64) if stationary else np.asarray(init, np.int64)
        sel = np.ones(self.num_books, np.bool_) if mask is None else np.asarray(mask, np.bool_)
        init_books(self.book, self.ist, self.fst, self.rng, self.params, initial, stationary,
                   px0, sel)

    def simulate(self, until: float | np.ndarray = np.inf, max_events: int = 2**62,
                 stop_on_mid_move: bool = False, parallel: bool = False) -> np.ndarray:
        """Advance every book; returns the stop reasons (STOP_*)."""
        until_arr = np.broadcast_to(np.asarray(until, np.float64), (self.num_books,)).copy()
        kernel = simulate_parallel if parallel else simulate
        kernel(self.book, self.ist, self.fst, self.rng, self.params, until_arr, max_events,
               stop_on_mid_move, self.fills, self.nfill, self.stops)
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
                np.where(side == BID, self.ask_px - self.ist[:, I_APX + BID],
                         self.ist[:, I_APX + ASK] - self.bid_px) == s)
            arr += np.where(here, self.ist[:, I_AREM + side], 0)
        return a, b

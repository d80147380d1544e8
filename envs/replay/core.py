"""The agent's orders against recorded events: one numba kernel steps ``N`` replays by one decision.

The recorded events (:mod:`envs.replay.tape`) drive the book; the agent's orders never move it
(DESIGN.md section 4, ``replay``). Conventions are the order-book simulator's
(:mod:`envs.lob.core`): the same action map, quote rounding, entry/feed/response latencies,
queue keeping for an unchanged quote, maker/taker fees in bps, ``q_max``, kill switch,
liquidation, reward, observation layout and ``info`` keys.

One decision advances the replay by ``dt`` seconds of event time:

1. prices from the mid last observed: ``floor(mid - depth_bid)`` and ``ceil(mid + depth_ask)``
   (an ask at or below the bid moves one tick above it);
2. events up to ``t + entry_latency`` are replayed against the old orders; then the new quotes go
   live: an unchanged price keeps its order and queue place, a changed one is cancelled and
   re-posted at the back of the queue; a quote that could take ``|inventory|`` beyond ``q_max``
   is not sent; a quote crossing the recorded book trades at once against its displayed levels
   (walking them, taker fee) and its remainder lapses (the recorded book is not depleted, so it
   would still cross);
3. the events to the end of the interval are replayed; each can fill the agent's resting orders
   (maker fee), at the agent's price:

   - queue ahead at entry: the others' lots displayed at the agent's price (everything already
     there is ahead; 0 at a price inside the spread or an empty price between levels; a price
     beyond the displayed depth is unknown, taken as 0 and counted in ``deep_entries``);
   - ``exact`` (LOBSTER order ids): an order is ahead iff it was resting at entry
     (``added_at < entry event``); its cancel or execution reduces the queue ahead by its size;
   - ``risk_averse`` / ``prob`` / ``prob_log`` (L2): a decrease of the level is ahead with
     probability ``f(ahead) / (f(ahead) + f(behind))`` (never for risk_averse), as in
     :func:`envs.lob.book.cancel`; a trade at the price reduces the queue ahead and, on a feed
     whose depth diffs echo the trades (Binance), the next decreases of the level by the traded
     size are not counted again (hftbacktest's ``ProbQueueModel`` does the same with its
     ``cum_trade_qty``);
   - a visible trade at the agent's price by an order not ahead consumes the queue ahead, then
     fills the agent; a trade printing through the agent's price (a resting bid executed below
     the agent's bid) fills it; an order arriving on the other side at or through the agent's
     price trades with it; a hidden execution fills the agent only through its price;
4. at the end (or when the kill switch fires) the orders are cancelled and the inventory is
   liquidated against the recorded book (``terminal = liquidate``); whatever its displayed depth
   cannot absorb stays marked at the mid and is reported (``unliquidated``).

Reward (as the simulator, Cartea & Jaimungal 2015)::

    reward = dPnL - phi (q_t^2 + q_{t+dt}^2) / 2 dt - [end] alpha q_T^2

with ``dPnL`` the change of ``cash + q mid tick lot`` at the recorded book's mid, fees included.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from data.schema import ADD, CANCEL, SNAPSHOT, TRADE
from envs.kernel_cache import renamed
from envs.lob.book import BID, N_FILL_COLS, exponential, record_fill, seed_states, uniform
from envs.lob.core import O_BOOK, O_CASH, O_INV, O_MID, O_TIME, obs_size, split_obs
from envs.replay.config import ReplayMarketConfig
from envs.replay.tape import Tape

# ---- ist columns (int64); "+ side" columns hold the bid at +0 and the ask at +1
I_CUR = 0  # next event to replay
I_INV = 1  # inventory (lots)
I_APX = 2  # + side: agent order price (ticks)
I_AREM = 4  # + side: remaining lots (0 = no order)
I_AHEAD = 6  # + side: lots ahead in the queue
I_AHEAD0 = 8  # + side: lots ahead at entry
I_LVL = 10  # + side: others' lots at the agent's price
I_CUMTR = 12  # + side: traded lots at the price whose depth-diff echo is still to come (L2)
I_ENTRY = 14  # + side: index of the first event after the order went live
I_EVENTS = 16  # events replayed
I_MAKER = 17  # lots traded passively
I_TAKER = 18  # lots traded aggressively
I_DEEP = 19  # orders placed beyond the displayed depth (queue ahead unknown, taken as 0)
N_IST = 20

# ---- fst columns (float64)
F_TIME, F_CASH, F_FEES, F_PEAK = 0, 1, 2, 3
F_T0 = 4  # + side: entry time of the agent's order (seconds)
F_OBS_MID = 6  # mid last observed (ticks)
F_START = 7  # window start (seconds since the tape's first event)
F_MID = 8  # last valid mid (used while one side of the book is empty)
N_FST = 9

# ---- parameters (float64)
(P_TICK, P_LOT, P_MAKER_BPS, P_TAKER_BPS, P_QUEUE, P_QUEUE_POWER, P_TRADES_MOVE, P_DEPTH_MIN,
 P_HALF_WIDTH, P_DT, P_N_STEPS, P_T, P_Q_MAX, P_PHI, P_ALPHA, P_MAX_DD, P_ORDER_SIZE,
 P_ENTRY_LAT, P_LAT_EXP, P_FEED_LAT, P_RESP_LAT, P_LIQUIDATE, P_L) = range(23)  # fmt: skip
N_PARAMS = 23

QUEUE_EXACT, QUEUE_RISK_AVERSE, QUEUE_PROB, QUEUE_PROB_LOG = 0, 1, 2, 3
QUEUE_CODES = {
    "exact": QUEUE_EXACT,
    "risk_averse": QUEUE_RISK_AVERSE,
    "prob": QUEUE_PROB,
    "prob_log": QUEUE_PROB_LOG,
}

# rows of the float64 output (as envs.lob.core)
(OUT_REWARD, OUT_DPNL, OUT_PENALTY, OUT_FEES, OUT_BID_PX, OUT_ASK_PX, OUT_UNLIQUIDATED,
 OUT_VALUE, OUT_EVENTS) = range(9)  # fmt: skip
N_OUT = 9


# --------------------------------------------------------------------------------------
# Book reads (the recorded book after event ``cur - 1``)


@numba.njit(cache=True)
def book_mid(bpx, bsz, r, fallback):
    """Mid (ticks) of recorded row ``r``; ``fallback`` when a side is empty."""
    if bsz[r, 0, 0] > 0 and bsz[r, 1, 0] > 0:
        return 0.5 * (bpx[r, 0, 0] + bpx[r, 1, 0])
    return fallback


@numba.njit(cache=True)
def level_size(bpx, bsz, r, side, px, L):
    """Others' lots at ``px`` on ``side`` in row ``r``; ``-1`` if beyond the displayed depth."""
    for k in range(L):
        if bsz[r, side, k] <= 0:
            return 0  # the side ends before px: nothing rests there
        lp = bpx[r, side, k]
        if lp == px:
            return bsz[r, side, k]
        if (side == BID and lp < px) or (side != BID and lp > px):
            return 0  # px lies between displayed levels (or inside the spread)
    return -1


@numba.njit(cache=True)
def current_row(row, ist, m):
    return row[ist[m, I_CUR] - 1]


# --------------------------------------------------------------------------------------
# Agent trades


@numba.njit(cache=True)
def settle(ist, fst, p, m, side, px, size, fee_bps):
    """Cash and inventory of an agent trade (``side`` BID buys); returns the fee (currency)."""
    notional = px * p[P_TICK] * p[P_LOT] * size
    if side == BID:
        fst[m, F_CASH] -= notional
        ist[m, I_INV] += size
    else:
        fst[m, F_CASH] += notional
        ist[m, I_INV] -= size
    fee = fee_bps * 1e-4 * notional
    fst[m, F_CASH] -= fee
    fst[m, F_FEES] += fee
    return fee


@numba.njit(cache=True)
def passive_fill(ist, fst, p, fills, nfill, m, side, size, t):
    """The agent's resting order on ``side`` trades ``size`` lots at its price (maker)."""
    if size <= 0:
        return
    px = ist[m, I_APX + side]
    fee = settle(ist, fst, p, m, side, px, size, p[P_MAKER_BPS])
    ist[m, I_AREM + side] -= size
    ist[m, I_MAKER] += size
    record_fill(fills, nfill, m, t, px, size, side, 0.0, fee, ist[m, I_AHEAD0 + side],
                t - fst[m, F_T0 + side])  # fmt: skip


@numba.njit(cache=True)
def take(bpx, bsz, r, ist, fst, p, fills, nfill, m, side, px, size, L):
    """A marketable order on ``side`` (BID buys) with limit ``px`` walks the recorded levels of
    the other side at or better than ``px`` (taker fee). Returns the lots left."""
    opp = 1 - side
    left = size
    for k in range(L):
        if left <= 0 or bsz[r, opp, k] <= 0:
            break
        lp = bpx[r, opp, k]
        if (side == BID and lp > px) or (side != BID and lp < px):
            break
        x = min(left, bsz[r, opp, k])
        fee = settle(ist, fst, p, m, side, lp, x, p[P_TAKER_BPS])
        ist[m, I_TAKER] += x
        record_fill(fills, nfill, m, fst[m, F_TIME], lp, x, side, 1.0, fee, 0.0, 0.0)
        left -= x
    return left


@numba.njit(cache=True)
def place(bpx, bsz, r, ist, fst, p, fills, nfill, m, side, px, size, L):
    """Send a limit order: a crossing one trades at once and its remainder lapses; otherwise it
    joins the back of the queue at ``px``."""
    opp = 1 - side
    if bsz[r, opp, 0] > 0:
        best = bpx[r, opp, 0]
        if (side == BID and px >= best) or (side != BID and px <= best):
            take(bpx, bsz, r, ist, fst, p, fills, nfill, m, side, px, size, L)
            return
    lvl = level_size(bpx, bsz, r, side, px, L)
    if lvl < 0:
        ist[m, I_DEEP] += 1
        lvl = 0
    ist[m, I_APX + side] = px
    ist[m, I_AREM + side] = size
    ist[m, I_AHEAD + side] = lvl
    ist[m, I_AHEAD0 + side] = lvl
    ist[m, I_LVL + side] = lvl
    ist[m, I_CUMTR + side] = 0
    ist[m, I_ENTRY + side] = ist[m, I_CUR]
    fst[m, F_T0 + side] = fst[m, F_TIME]


@numba.njit(cache=True)
def cancel_agent(ist, m, side):
    ist[m, I_AREM + side] = 0
    ist[m, I_AHEAD + side] = 0


@numba.njit(cache=True)
def apply_quotes(bpx, bsz, r, ist, fst, p, fills, nfill, m, target_bid, target_ask, L):
    """Make the agent's live orders those of the targets (as :func:`envs.lob.core.apply_quotes`)."""
    size = int(p[P_ORDER_SIZE])
    q_max = p[P_Q_MAX]
    inv = ist[m, I_INV]
    send = np.zeros(2, np.bool_)
    for side in range(2):
        tgt = target_bid if side == BID else target_ask
        rem = ist[m, I_AREM + side]
        allowed = (inv + size <= q_max) if side == BID else (inv - size >= -q_max)
        if rem > 0:
            keep = (
                allowed
                and ist[m, I_APX + side] == tgt
                and ((inv + rem <= q_max) if side == BID else (inv - rem >= -q_max))
            )
            if keep:
                continue
            cancel_agent(ist, m, side)
        send[side] = allowed
    for side in range(2):
        if send[side]:
            tgt = target_bid if side == BID else target_ask
            place(bpx, bsz, r, ist, fst, p, fills, nfill, m, side, tgt, size, L)


@numba.njit(cache=True)
def liquidate(bpx, bsz, r, ist, fst, p, fills, nfill, m, L):
    """Cancel the orders and trade the inventory away against the recorded book (taker)."""
    cancel_agent(ist, m, 0)
    cancel_agent(ist, m, 1)
    inv = ist[m, I_INV]
    if inv > 0:
        take(bpx, bsz, r, ist, fst, p, fills, nfill, m, 1, -(2**62), inv, L)
    elif inv < 0:
        take(bpx, bsz, r, ist, fst, p, fills, nfill, m, BID, 2**62, -inv, L)


# --------------------------------------------------------------------------------------
# Replaying events against the agent's orders


@numba.njit(cache=True)
def ahead_first(rng, m, p, a, b):
    """Whether a decrease of the level is taken from the queue ahead first (queue model)."""
    model = p[P_QUEUE]
    if model == QUEUE_RISK_AVERSE or a <= 0:
        return False
    if b <= 0:
        return True
    if model == QUEUE_PROB_LOG:
        fa, fb = np.log1p(a), np.log1p(b)
    else:
        n = p[P_QUEUE_POWER]
        fa, fb = float(a) ** n, float(b) ** n
    return uniform(rng, m) * (fa + fb) < fa


@numba.njit(cache=True)
def on_event(e, kind, eside, price, size, added_at, hidden, t, ist, fst, p, rng, fills, nfill,
             m, s):  # fmt: skip
    """Event ``e``'s effect on the agent's live order on side ``s`` (see the module docstring)."""
    P = ist[m, I_APX + s]
    k = kind[e]
    es = eside[e]
    x = price[e]
    z = size[e]
    if k == ADD:
        if es == s:
            if x == P:
                ist[m, I_LVL + s] += z
        elif (s == BID and x <= P) or (s != BID and x >= P):
            passive_fill(ist, fst, p, fills, nfill, m, s, min(z, ist[m, I_AREM + s]), t[e])
    elif k == TRADE:
        if es != s:
            return
        if (s == BID and x < P) or (s != BID and x > P):
            ist[m, I_AHEAD + s] = 0
            passive_fill(ist, fst, p, fills, nfill, m, s, min(z, ist[m, I_AREM + s]), t[e])
        elif x == P and not hidden[e]:
            ahead = ist[m, I_AHEAD + s]
            if p[P_QUEUE] == QUEUE_EXACT and added_at[e] < ist[m, I_ENTRY + s]:
                ist[m, I_AHEAD + s] = max(ahead - z, 0)  # an order that was ahead traded
                left = 0
            else:
                a = min(z, ahead)
                ist[m, I_AHEAD + s] = ahead - a
                left = z - a
                if p[P_TRADES_MOVE] == 0:
                    ist[m, I_CUMTR + s] += z
            passive_fill(ist, fst, p, fills, nfill, m, s, min(left, ist[m, I_AREM + s]), t[e])
            if p[P_TRADES_MOVE] != 0:
                lvl = max(ist[m, I_LVL + s] - z, 0)
                ist[m, I_LVL + s] = lvl
                ist[m, I_AHEAD + s] = min(ist[m, I_AHEAD + s], lvl)
    elif k == CANCEL:
        if es != s or x != P:
            return
        lvl0 = ist[m, I_LVL + s]
        a = ist[m, I_AHEAD + s]
        if p[P_QUEUE] == QUEUE_EXACT:
            if added_at[e] < ist[m, I_ENTRY + s]:
                a = max(a - z, 0)
        else:
            echo = min(z, ist[m, I_CUMTR + s])
            ist[m, I_CUMTR + s] -= echo
            chg = z - echo
            if chg > 0:
                b = max(lvl0 - echo - a, 0)
                if ahead_first(rng, m, p, a, b):
                    a -= min(chg, a)
                else:
                    a -= min(max(chg - b, 0), a)
        lvl = max(lvl0 - z, 0)
        ist[m, I_LVL + s] = lvl
        ist[m, I_AHEAD + s] = min(a, lvl)
    elif k == SNAPSHOT:
        if es == s and x == P:
            ist[m, I_LVL + s] = z
            ist[m, I_AHEAD + s] = min(ist[m, I_AHEAD + s], z)


@numba.njit(cache=True)
def replay_until(t, kind, eside, price, size, added_at, hidden, ist, fst, p, rng, fills, nfill,
                 m, t_next):  # fmt: skip
    """Replay the events with time ``<= t_next`` against market ``m``'s orders."""
    cur = ist[m, I_CUR]
    n = t.shape[0]
    start = cur
    while cur < n and t[cur] <= t_next:
        if ist[m, I_AREM] > 0:
            on_event(cur, kind, eside, price, size, added_at, hidden, t, ist, fst, p, rng, fills,
                     nfill, m, 0)  # fmt: skip
        if ist[m, I_AREM + 1] > 0:
            on_event(cur, kind, eside, price, size, added_at, hidden, t, ist, fst, p, rng, fills,
                     nfill, m, 1)  # fmt: skip
        cur += 1
    ist[m, I_CUR] = cur
    ist[m, I_EVENTS] += cur - start
    fst[m, F_TIME] = t_next


# --------------------------------------------------------------------------------------
# Observations and the step


@numba.njit(cache=True)
def snapshot_market(bpx, bsz, r, fst, m, L, obs):
    """Write the recorded book (level k of each side: price, others' lots) and the mid."""
    for k in range(L):
        for side in range(2):
            base = O_BOOK + 4 * k + 2 * side
            obs[m, base] = bpx[r, side, k]
            obs[m, base + 1] = bsz[r, side, k]
    mid = book_mid(bpx, bsz, r, fst[m, F_MID])
    fst[m, F_MID] = mid
    obs[m, O_MID] = mid


@numba.njit(cache=True)
def snapshot_own(ist, fst, m, L, obs):
    """Write inventory, cash and the agent's orders (price, remaining lots, lots ahead)."""
    obs[m, O_INV] = ist[m, I_INV]
    obs[m, O_CASH] = fst[m, F_CASH]
    base = O_BOOK + 4 * L
    for side in range(2):
        live = ist[m, I_AREM + side] > 0
        obs[m, base + 3 * side] = ist[m, I_APX + side] if live else 0
        obs[m, base + 3 * side + 1] = ist[m, I_AREM + side] if live else 0
        obs[m, base + 3 * side + 2] = ist[m, I_AHEAD + side] if live else 0


@numba.njit(cache=True)
def value(bpx, bsz, row, ist, fst, p, m):
    mid = book_mid(bpx, bsz, current_row(row, ist, m), fst[m, F_MID])
    fst[m, F_MID] = mid
    return fst[m, F_CASH] + ist[m, I_INV] * mid * p[P_TICK] * p[P_LOT]


def _step_impl(action, t, kind, eside, price, size, added_at, hidden, row, bpx, bsz, ist, fst,
               rng, p, step, active, out, done, obs, fills, nfill):  # fmt: skip
    """Advance each active replay by one decision (see the module docstring).

    :param action: (N, 2) normalized actions.   :param t ... row: the tape (:mod:`.tape`).
    :param bpx, bsz: (R, 2, L) recorded book.   :param ist: (N, N_IST) int64.
    :param fst: (N, N_FST) float64.             :param rng: (N, 4) uint64 streams.
    :param p: packed parameters (P_*).          :param step: (N,) decisions taken.
    :param active: (N,) bool.                   :param out: (N_OUT, N) float64.
    :param done: (N,) bool.                     :param obs: (N, obs_size(L)) float32.
    :param fills, nfill: the fill log (reset here).
    """
    L = int(p[P_L])
    dt = p[P_DT]
    for m in numba.prange(ist.shape[0]):
        nfill[m] = 0
        if not active[m]:
            for j in range(N_OUT):
                out[j, m] = 0.0
            done[m] = False
            continue
        t0 = fst[m, F_TIME]
        t_end = fst[m, F_START] + (step[m] + 1) * dt
        q0 = ist[m, I_INV]
        fees0 = fst[m, F_FEES]
        ev0 = ist[m, I_EVENTS]
        value0 = value(bpx, bsz, row, ist, fst, p, m)
        a_b = min(max(action[m, 0], -1.0), 1.0)
        a_a = min(max(action[m, 1], -1.0), 1.0)
        depth_b = p[P_DEPTH_MIN] + (a_b + 1.0) * p[P_HALF_WIDTH]
        depth_a = p[P_DEPTH_MIN] + (a_a + 1.0) * p[P_HALF_WIDTH]
        mid_seen = fst[m, F_OBS_MID]
        px_b = int(np.floor(mid_seen - depth_b + 1e-9))
        px_a = int(np.ceil(mid_seen + depth_a - 1e-9))
        if px_a <= px_b:
            px_a = px_b + 1
        lat, resp, feed = p[P_ENTRY_LAT], p[P_RESP_LAT], p[P_FEED_LAT]
        if p[P_LAT_EXP] > 0:
            lat = lat * exponential(rng, m) if lat > 0 else 0.0
            resp = min(resp * exponential(rng, m), dt) if resp > 0 else 0.0
            feed = min(feed * exponential(rng, m), dt) if feed > 0 else 0.0
        t_entry = min(t0 + lat, t_end)
        t_resp = t_end - resp
        t_feed = t_end - feed
        placed = False
        resp_done = False
        feed_done = False
        while True:
            t_next = t_end
            if not placed:
                t_next = min(t_next, t_entry)
            if not resp_done:
                t_next = min(t_next, t_resp)
            if not feed_done:
                t_next = min(t_next, t_feed)
            replay_until(t, kind, eside, price, size, added_at, hidden, ist, fst, p, rng, fills,
                         nfill, m, t_next)  # fmt: skip
            r = current_row(row, ist, m)
            if not placed and t_entry <= t_next:
                apply_quotes(bpx, bsz, r, ist, fst, p, fills, nfill, m, px_b, px_a, L)
                placed = True
            if not resp_done and t_resp <= t_next:
                snapshot_own(ist, fst, m, L, obs)
                resp_done = True
            if not feed_done and t_feed <= t_next:
                snapshot_market(bpx, bsz, r, fst, m, L, obs)
                fst[m, F_OBS_MID] = obs[m, O_MID]
                feed_done = True
            if placed and resp_done and feed_done and t_next >= t_end:
                break
        k = step[m] + 1
        step[m] = k
        finished = k >= p[P_N_STEPS]
        value1 = value(bpx, bsz, row, ist, fst, p, m)
        peak = max(fst[m, F_PEAK], value1)
        fst[m, F_PEAK] = peak
        if p[P_MAX_DD] > 0.0 and peak - value1 >= p[P_MAX_DD]:
            finished = True
        unliquidated = 0.0
        if finished:
            r = current_row(row, ist, m)
            if p[P_LIQUIDATE] > 0:
                liquidate(bpx, bsz, r, ist, fst, p, fills, nfill, m, L)
                unliquidated = float(ist[m, I_INV])
            else:
                cancel_agent(ist, m, 0)
                cancel_agent(ist, m, 1)
            value1 = value(bpx, bsz, row, ist, fst, p, m)
            snapshot_own(ist, fst, m, L, obs)
            snapshot_market(bpx, bsz, r, fst, m, L, obs)
        q1 = ist[m, I_INV]
        pen = p[P_PHI] * 0.5 * (q0 * q0 + q1 * q1) * dt
        if finished:
            pen += p[P_ALPHA] * q1 * q1
        out[OUT_REWARD, m] = value1 - value0 - pen
        out[OUT_DPNL, m] = value1 - value0
        out[OUT_PENALTY, m] = pen
        out[OUT_FEES, m] = fst[m, F_FEES] - fees0
        out[OUT_BID_PX, m] = px_b
        out[OUT_ASK_PX, m] = px_a
        out[OUT_UNLIQUIDATED, m] = unliquidated
        out[OUT_VALUE, m] = value1
        out[OUT_EVENTS, m] = ist[m, I_EVENTS] - ev0
        done[m] = finished
        obs[m, O_TIME] = p[P_T] - k * dt


step_kernel = numba.njit(cache=True, nogil=True)(_step_impl)
step_kernel_parallel = numba.njit(cache=True, nogil=True, parallel=True)(
    renamed(_step_impl, "_parallel")
)
"""The step kernel with the replays spread over threads (``prange``); same results."""


@numba.njit(cache=True)
def reset_kernel(t, row, bpx, bsz, ist, fst, p, starts, q0, mask, obs):
    """Put the masked replays at their window start: the book after every event at or before
    ``starts[m]`` (seconds), the agent flat (``q0`` lots, no orders)."""
    L = int(p[P_L])
    for m in range(ist.shape[0]):
        if not mask[m]:
            continue
        ist[m, :] = 0
        fst[m, :] = 0.0
        cur = np.searchsorted(t, starts[m], side="right")
        ist[m, I_CUR] = max(cur, 1)
        ist[m, I_INV] = q0
        fst[m, F_START] = starts[m]
        fst[m, F_TIME] = starts[m]
        r = current_row(row, ist, m)
        fst[m, F_MID] = 0.5 * (bpx[r, 0, 0] + bpx[r, 1, 0])
        snapshot_market(bpx, bsz, r, fst, m, L, obs)
        mid = obs[m, O_MID]
        fst[m, F_OBS_MID] = mid
        fst[m, F_PEAK] = q0 * mid * p[P_TICK] * p[P_LOT]
        snapshot_own(ist, fst, m, L, obs)
        obs[m, O_TIME] = p[P_T]


def pack_params(config: ReplayMarketConfig, tape: Tape) -> np.ndarray:
    """The kernel's parameter vector (P_*) for a config and its tape."""
    c = config
    p = np.zeros(N_PARAMS)
    p[P_TICK], p[P_LOT] = tape.spec.tick_size, tape.spec.lot_size
    p[P_MAKER_BPS], p[P_TAKER_BPS] = c.maker_fee_bps, c.taker_fee_bps
    p[P_QUEUE], p[P_QUEUE_POWER] = QUEUE_CODES[c.queue_model], c.queue_power
    p[P_TRADES_MOVE] = tape.trades_move_book
    p[P_DEPTH_MIN] = c.depth_min
    p[P_HALF_WIDTH] = 0.5 * (c.depth_max - c.depth_min)
    p[P_DT], p[P_N_STEPS], p[P_T] = c.dt, c.n_steps, c.T
    p[P_Q_MAX], p[P_PHI], p[P_ALPHA] = c.q_max, c.phi, c.alpha
    p[P_MAX_DD] = c.max_drawdown or 0.0
    p[P_ORDER_SIZE] = c.order_size
    p[P_ENTRY_LAT] = c.entry_latency
    p[P_LAT_EXP] = c.latency_distribution == "exponential"
    p[P_FEED_LAT], p[P_RESP_LAT] = c.feed_latency, c.response_latency
    p[P_LIQUIDATE] = c.terminal == "liquidate"
    p[P_L] = tape.levels
    return p


class ReplayMarketCore:
    """State of ``N`` replays of one tape with one agent each (arrays, one kernel).

    Layout and units: the ``I_*`` / ``F_*`` columns above, ``step_count`` (decisions taken).
    Window starts: ``config.start`` for all, or (``start = None``) drawn uniformly in
    ``[0, tape duration - T]`` at each reset from the core's own generator (one draw for all
    when ``same_window``), or given for the next reset by :meth:`set_starts`.

    :param config: validated replay parameters.
    :param tape: the recorded day (default: loaded from ``config``).
    :param num_envs: number of replays ``N``.
    :param parallel: step the replays on all numba threads; same results, other speed.
    :raises ValueError: ``queue_model = exact`` on a feed without order ids, a window longer
        than the tape, or fewer displayed levels than ``config.levels``.
    """

    def __init__(
        self,
        config: ReplayMarketConfig,
        num_envs: int,
        tape: Tape | None = None,
        parallel: bool = False,
    ) -> None:
        from envs.replay.tape import load_tape

        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if tape is None:
            tape = load_tape(config.data_paths(), config.format, config.binance_market,
                             config.symbol, config.levels)  # fmt: skip
        if config.queue_model == "exact" and not tape.has_order_ids:
            raise ValueError(
                "queue_model 'exact' needs order ids (LOBSTER); this feed is L2: use "
                "'risk_averse', 'prob' or 'prob_log'"
            )
        if config.T > tape.duration:
            raise ValueError(
                f"the window (n_steps x dt = {config.T} s) is longer than the tape "
                f"({tape.duration:.3f} s)"
            )
        if config.start is not None and config.start + config.T > tape.duration:
            raise ValueError(
                f"start + n_steps x dt = {config.start + config.T} s is past the tape's end "
                f"({tape.duration:.3f} s after its first event)"
            )
        self.config = config
        self.tape = tape
        self.num_envs = num_envs
        self.L = L = tape.levels
        self._kernel = step_kernel_parallel if parallel else step_kernel
        self.params = pack_params(config, tape)
        self.ist = np.zeros((num_envs, N_IST), np.int64)
        self.fst = np.zeros((num_envs, N_FST))
        self.fills = np.zeros((num_envs, config.max_fills, N_FILL_COLS))
        self.nfill = np.zeros(num_envs, np.int64)
        self.step_count = np.zeros(num_envs, np.int64)
        self.obs = np.zeros((num_envs, obs_size(L)), np.float32)
        self._all = np.ones(num_envs, np.bool_)
        self._pending: np.ndarray | None = None
        self.seed(None)
        self.reset_state()

    def seed(self, seed: int | None) -> None:
        """One xoshiro256** stream per replay (queue model, latencies) and one generator for the
        windows, all from ``SeedSequence(seed)``."""
        ss = np.random.SeedSequence(seed)
        streams, windows = ss.spawn(2)
        self.rng = seed_states(streams, self.num_envs)
        self._window_rng = np.random.default_rng(windows)

    _STATE = ("ist", "fst", "rng", "step_count", "nfill", "fills", "obs")
    """The arrays that hold everything the replays' future depends on (besides the tape)."""

    def state_dict(self) -> dict[str, Any]:
        """Copies of the state arrays, random streams and pending window starts."""
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in self._STATE}
        state["window_rng"] = self._window_rng.bit_generator.state
        state["pending"] = None if self._pending is None else self._pending.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same ``num_envs``, config and tape)."""
        for name in self._STATE:
            target = getattr(self, name)
            if state[name].shape != target.shape:
                raise ValueError(f"state {name!r} of shape {state[name].shape} cannot load into "
                                 f"{target.shape} (another num_envs, config or tape)")  # fmt: skip
            target[...] = state[name]
        self._window_rng.bit_generator.state = state["window_rng"]
        self._pending = state["pending"]

    def set_starts(self, starts: float | np.ndarray) -> None:
        """Window starts (seconds after the tape's first event) for the next reset."""
        arr = np.broadcast_to(np.asarray(starts, np.float64), (self.num_envs,)).copy()
        late = arr + self.config.T > self.tape.duration
        if np.any(arr < 0) or np.any(late):
            raise ValueError(
                f"window starts must be in [0, {self.tape.duration - self.config.T:.3f}] s "
                f"(tape {self.tape.duration:.3f} s, window {self.config.T} s), got {arr}"
            )
        self._pending = arr

    def _starts(self, sel: np.ndarray) -> np.ndarray:
        if self._pending is not None:
            starts, self._pending = self._pending, None
            return starts
        if self.config.start is not None:
            return np.full(self.num_envs, self.config.start)
        hi = self.tape.duration - self.config.T
        if self.config.same_window:
            return np.full(self.num_envs, self._window_rng.uniform(0.0, hi))
        draws = np.zeros(self.num_envs)
        draws[sel] = self._window_rng.uniform(0.0, hi, int(sel.sum()))
        return draws

    def reset_state(self, mask: np.ndarray | None = None) -> None:
        """Start the replays selected by ``mask`` (all when None) at their window start."""
        sel = self._all if mask is None else np.asarray(mask, np.bool_)
        tp = self.tape
        reset_kernel(tp.t, tp.row, tp.book_px, tp.book_sz, self.ist, self.fst, self.params,
                     self._starts(sel), self.config.q0, sel, self.obs)  # fmt: skip
        self.step_count[sel] = 0
        self.nfill[sel] = 0

    def observe(self) -> dict[str, np.ndarray]:
        """The batched observation (fresh float32 arrays with a leading batch axis)."""
        return split_obs(self.obs.copy(), self.L)

    @property
    def window_starts(self) -> np.ndarray:
        """Each replay's window start (seconds after the tape's first event)."""
        return self.fst[:, F_START].copy()

    @property
    def deep_entries(self) -> np.ndarray:
        """Orders placed beyond the displayed depth since the last reset (queue ahead unknown,
        taken as 0), per replay."""
        return self.ist[:, I_DEEP].copy()

    @property
    def events_replayed(self) -> np.ndarray:
        """Events replayed per market since its last reset."""
        return self.ist[:, I_EVENTS].copy()

    def step(
        self, action: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance the replays selected by ``active`` (all when None) by one decision."""
        n = self.num_envs
        action = np.asarray(action, np.float64)
        if action.shape != (n, 2):
            raise ValueError(f"action must have shape ({n}, 2), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError("actions must be finite")
        out = np.empty((N_OUT, n))
        done = np.empty(n, np.bool_)
        tp = self.tape
        self._kernel(action, tp.t, tp.kind, tp.side, tp.price, tp.size, tp.added_at, tp.hidden,
                     tp.row, tp.book_px, tp.book_sz, self.ist, self.fst, self.rng, self.params,
                     self.step_count, self._all if active is None else active, out, done,
                     self.obs, self.fills, self.nfill)  # fmt: skip
        info = {
            "dpnl": out[OUT_DPNL],
            "inventory_penalty": out[OUT_PENALTY],
            "fees": out[OUT_FEES],
            "bid_price": out[OUT_BID_PX],
            "ask_price": out[OUT_ASK_PX],
            "unliquidated": out[OUT_UNLIQUIDATED],
            "value": out[OUT_VALUE],
            "events": out[OUT_EVENTS].astype(np.int64),
            "n_fills": self.nfill.copy(),
            "fills": self.fills[:, : max(1, int(self.nfill.max(initial=0)))].copy(),
        }
        return self.observe(), out[OUT_REWARD], done, info

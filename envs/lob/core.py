"""The agent's side of the order-book market: quotes, latency, marketable orders, accounting.

One numba kernel steps ``N`` markets by one decision (DESIGN.md section 4, "The agent's orders"):

1. the action gives bid and ask depths (ticks) from the mid the agent last observed; prices are
   ``floor(mid - depth_bid)`` and ``ceil(mid + depth_ask)`` (never more aggressive than asked;
   an ask at or below the bid is moved to one tick above it);
2. the market runs for the entry latency with the old orders, then the new quotes go live: an
   unchanged price keeps its order and queue place, a changed one is cancelled and re-posted at
   the back of the queue; a quote that could take ``|inventory|`` beyond ``q_max`` is not sent
   (a resting one is cancelled); a quote crossing the book executes at once against it, walking
   levels (taker fee), and its remainder rests;
3. the market runs to the end of the interval; its market orders fill the agent's resting
   orders in FIFO order (:mod:`envs.lob.book`), at the maker fee;
4. at the end (or when the kill switch fires) the orders are cancelled and the inventory is
   liquidated with a marketable order (``terminal = liquidate``); whatever the simulated window
   cannot absorb stays marked at the mid and is reported.

Observations are snapshots taken during the interval: the book, mid and recent trades (the
market orders' fills of the ``dt`` before the snapshot, :func:`snapshot_trades`)
``feed_latency`` before its end, the agent's own state ``response_latency`` before it.
Latencies are constant, or exponential with those means (entry capped at the interval's end,
feed and response at ``dt``).
The mid used for the action and for marking is the mid of the OTHER participants' best quotes
(the agent's own quotes excluded, so quoting inside the spread does not drag the reference along).

A stress scenario (``config.stress``, DESIGN.md section 7) changes the order-flow rates, shifts
the book or changes the latencies inside its window, read per step from a schedule computed once
(:func:`stress_schedule`); it draws no extra random number, so stressed and unstressed runs from
the same seed are paired and identical before the window.

Reward (all terms in ``info``; as the analytic market, Cartea & Jaimungal 2015)::

    reward = dPnL - phi (q_t^2 + q_{t+dt}^2) / 2 dt - [end] alpha q_T^2

``dPnL`` is the change of ``cash + q mid tick lot`` and already contains the fees paid
(``info["fees"]``), so they are not subtracted twice.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from calibration.params import MarketParams
from configs.schema import StressScenario
from envs.kernel_cache import renamed
from envs.lob.book import (
    ASK,
    BID,
    F_CASH,
    F_FEES,
    F_PEAK,
    F_T0,
    F_TIME,
    I_AGENT_TAKER,
    I_AHEAD,
    I_AHEAD0,
    I_APX,
    I_AREM,
    I_ASK_PX,
    I_BID_PX,
    I_INV,
    I_MID_MOVES,
    I_MKT_EXEC,
    I_N_TRADES,
    I_PASSIVE_OTHERS,
    I_QR_K,
    I_REF,
    N_FILL_COLS,
    N_FSTATE,
    N_ISTATE,
    N_TRADE_COLS,
    P_ENV,
    P_L,
    P_LOT,
    P_MKT_SCALE,
    P_RATE_SCALE,
    P_TAKER_BPS,
    P_TICK,
    QUEUE_EXACT,
    QUEUE_PROB,
    QUEUE_PROB_LOG,
    QUEUE_RISK_AVERSE,
    TRADE_PRICE,
    TRADE_SIGNED_SIZE,
    TRADE_TIME,
    advance,
    agent_level,
    agent_passive_fill,
    exponential,
    fix_best,
    improve_best,
    init_books,
    keep_trade,
    level_total,
    no_event_log,
    pack_params,
    record_fill,
    seed_states,
    settle,
    spread,
)
from envs.lob.config import LOBMarketConfig

# env parameters, after the market's in the packed vector
(E_DEPTH_MIN, E_HALF_WIDTH, E_DT, E_N_STEPS, E_Q_MAX, E_PHI, E_ALPHA, E_MAX_DD, E_T,
 E_ORDER_SIZE, E_ENTRY_LAT, E_LAT_EXP, E_FEED_LAT, E_RESP_LAT, E_LIQUIDATE, E_STRESS) = (
    P_ENV + k for k in range(16))  # fmt: skip
# E_STRESS: 0 without a stress scenario, else the offset in the packed vector of its
# (len(STRESS_ROWS), n_steps) schedule (row-major, one column per step), after everything else

# rows of the stress schedule (:func:`stress_schedule`)
(S_RATE, S_MKT_BID, S_MKT_ASK, S_JUMP, S_ENTRY_LAT, S_FEED_LAT, S_RESP_LAT) = range(7)  # fmt: skip
STRESS_ROWS = ("rate_factor", "bid_market_factor", "ask_market_factor", "jump_ticks",
               "entry_latency", "feed_latency", "response_latency")  # fmt: skip
STRESS_PERTURBATIONS = frozenset({"volatility", "fill_intensity", "jump", "latency"})
"""The perturbations of :class:`configs.schema.StressPerturbations` this market applies."""

# extra float state columns kept by the env (after the book's)
F_OBS_MID = N_FSTATE  # the mid the agent last observed (ticks)
N_ENV_FSTATE = N_FSTATE + 1

# rows of the float64 output
(OUT_REWARD, OUT_DPNL, OUT_PENALTY, OUT_FEES, OUT_BID_PX, OUT_ASK_PX, OUT_UNLIQUIDATED,
 OUT_VALUE) = range(8)  # fmt: skip
N_OUT = 8

# observation vector: [inventory, time_left, mid, cash, book (L, 2, 2), orders (2, 3)]
O_INV, O_TIME, O_MID, O_CASH, O_BOOK = 0, 1, 2, 3, 4


def obs_size(L: int) -> int:
    return O_BOOK + 4 * L + 6


N_OBS_TRADES = 8
"""Market trades in the observation (the most recent first)."""
(T_SIGNED_SIZE, T_OFFSET, T_AGE) = range(3)  # fmt: skip
"""Columns of the ``trades`` observation: lots (+ buyer-initiated, - seller-initiated), price
minus the observed mid (ticks), age at the book snapshot (time units)."""


_QUEUE_CODES = {
    "risk_averse": QUEUE_RISK_AVERSE,
    "prob": QUEUE_PROB,
    "prob_log": QUEUE_PROB_LOG,
    "exact": QUEUE_EXACT,
    "uniform": QUEUE_EXACT,
}


# --------------------------------------------------------------------------------------
# Agent primitives (one market)


@numba.njit(cache=True)
def others_mid(book, ist, m, L):
    """Mid (ticks) of the others' best quotes; a side without others' volume in the window uses
    the book's best (the agent's order or the window's edge)."""
    s = spread(ist, m)
    bid = ist[m, I_BID_PX]
    for i in range(s, L + 1):
        if book[m, BID, i - 1] > 0:
            bid = ist[m, I_ASK_PX] - i
            break
    ask = ist[m, I_ASK_PX]
    for i in range(s, L + 1):
        if book[m, ASK, i - 1] > 0:
            ask = ist[m, I_BID_PX] + i
            break
    if ask <= bid:  # the others' quotes straddle the agent's: use the book's own
        return 0.5 * (ist[m, I_ASK_PX] + ist[m, I_BID_PX])
    return 0.5 * (ask + bid)


@numba.njit(cache=True)
def cancel_agent(book, ist, m, side, L):
    """Withdraw the agent's order on ``side`` (no-op without one)."""
    if ist[m, I_AREM + side] <= 0:
        return
    i = agent_level(ist, m, side)
    ist[m, I_AREM + side] = 0
    ist[m, I_AHEAD + side] = 0
    if i == spread(ist, m) and level_total(book, ist, m, side, i) == 0:
        fix_best(book, ist, m, side, L)


@numba.njit(cache=True)
def take(book, ist, fst, p, fills, nfill, m, side, px, size, L):
    """The agent's marketable order on ``side`` (BID buys) with limit ``px`` (ticks) executes
    against the opposite side, walking levels while they are at or better than ``px``, at the
    taker fee. Returns the lots left (they rest or lapse; see callers)."""
    opp = 1 - side
    left = size
    while left > 0:
        best = ist[m, I_ASK_PX] if side == BID else ist[m, I_BID_PX]
        if (side == BID and best > px) or (side == ASK and best < px):
            break
        s = spread(ist, m)
        avail = book[m, opp, s - 1]
        if avail <= 0:
            break  # the window holds no volume there (the agent's own order is never crossed)
        x = min(left, avail)
        book[m, opp, s - 1] -= x
        ist[m, I_PASSIVE_OTHERS] += x
        ist[m, I_AGENT_TAKER] += x
        notional = settle(ist, fst, p, m, side, best, x)
        fee = p[P_TAKER_BPS] * 1e-4 * notional
        fst[m, F_CASH] -= fee
        fst[m, F_FEES] += fee
        record_fill(fills, nfill, m, fst[m, F_TIME], best, x, side, 1.0, fee, 0.0, 0.0)
        left -= x
        if level_total(book, ist, m, opp, s) == 0:
            fix_best(book, ist, m, opp, L)
    return left


@numba.njit(cache=True)
def place(book, ist, fst, p, fills, nfill, m, side, px, size, L):
    """Send a limit order: the crossing part trades at once, the rest joins the back of the
    queue at ``px`` (everything already there is ahead of it)."""
    left = take(book, ist, fst, p, fills, nfill, m, side, px, size, L)
    if left <= 0:
        return
    if (side == BID and px >= ist[m, I_ASK_PX]) or (side == ASK and px <= ist[m, I_BID_PX]):
        return  # the window's liquidity ran out below the limit: the remainder lapses
    ist[m, I_APX + side] = px
    ist[m, I_AREM + side] = left
    i = agent_level(ist, m, side)
    ahead = book[m, side, i - 1] if 1 <= i <= L else 0
    ist[m, I_AHEAD + side] = ahead
    ist[m, I_AHEAD0 + side] = ahead
    fst[m, F_T0 + side] = fst[m, F_TIME]
    if 1 <= i < spread(ist, m):
        improve_best(book, ist, m, side, i, L)


@numba.njit(cache=True)
def apply_quotes(book, ist, fst, p, fills, nfill, m, target_bid, target_ask, L):
    """Make the agent's live orders those of the targets (0 = no quote on that side)."""
    size = int(p[E_ORDER_SIZE])
    q_max = p[E_Q_MAX]
    inv = ist[m, I_INV]
    targets = (target_bid, target_ask)
    send = np.zeros(2, np.bool_)
    for side in range(2):
        tgt = targets[side]
        rem = ist[m, I_AREM + side]
        allowed = tgt != 0 and ((inv + size <= q_max) if side == BID else (inv - size >= -q_max))
        if rem > 0:
            keep = (
                allowed
                and ist[m, I_APX + side] == tgt
                and ((inv + rem <= q_max) if side == BID else (inv - rem >= -q_max))
            )
            if keep:
                continue
            cancel_agent(book, ist, m, side, L)
        send[side] = allowed
    for side in range(2):
        if send[side]:
            place(book, ist, fst, p, fills, nfill, m, side, targets[side], size, L)


@numba.njit(cache=True)
def liquidate(book, ist, fst, p, fills, nfill, m, L):
    """Cancel the agent's orders and trade the inventory away against the book (taker)."""
    cancel_agent(book, ist, m, BID, L)
    cancel_agent(book, ist, m, ASK, L)
    inv = ist[m, I_INV]
    if inv > 0:
        take(book, ist, fst, p, fills, nfill, m, ASK, -(2**62), inv, L)
    elif inv < 0:
        take(book, ist, fst, p, fills, nfill, m, BID, 2**62, -inv, L)


@numba.njit(cache=True)
def jump_book(book, ist, fst, p, fills, nfill, m, d, L, trades):
    """Shift the others' whole book by ``d`` ticks at once (a flash crash for ``d < 0``).

    The queues keep their sizes and their distances from the opposite best (the arrays are
    relative); the best prices (and the queue-reactive reference price) move by ``d``. The
    agent's orders stay at their prices: one the shifted book crosses (a bid at or above the new
    best ask, an ask at or below the new best bid) was traded through by the sweep and fills in
    full at its price (maker fee; counted as others' market-order lots and kept in the trade
    ring); the other rests at its price behind the lots now there (its entry time kept).
    No random number is drawn.
    """
    px = np.zeros(2, np.int64)
    rem = np.zeros(2, np.int64)
    t0 = np.zeros(2)
    for side in range(2):
        rem[side] = ist[m, I_AREM + side]
        px[side] = ist[m, I_APX + side]
        t0[side] = fst[m, F_T0 + side]
        ahead0 = ist[m, I_AHEAD0 + side]
        cancel_agent(book, ist, m, side, L)
        ist[m, I_AHEAD0 + side] = ahead0
    ist[m, I_ASK_PX] += d
    ist[m, I_BID_PX] += d
    if ist[m, I_QR_K] > 0:
        ist[m, I_REF] += d
    ist[m, I_MID_MOVES] += 1
    for side in range(2):
        if rem[side] <= 0:
            continue
        crossed = px[side] >= ist[m, I_ASK_PX] if side == BID else px[side] <= ist[m, I_BID_PX]
        if crossed:
            ist[m, I_APX + side] = px[side]
            ist[m, I_AREM + side] = rem[side]
            ist[m, I_AHEAD + side] = 0
            fst[m, F_T0 + side] = t0[side]
            agent_passive_fill(ist, fst, p, fills, nfill, m, side, rem[side])
            ist[m, I_MKT_EXEC] += rem[side]
            keep_trade(trades, ist, fst, m, px[side], rem[side] if side == ASK else -rem[side])
        else:
            ahead0 = ist[m, I_AHEAD0 + side]
            place(book, ist, fst, p, fills, nfill, m, side, px[side], rem[side], L)
            fst[m, F_T0 + side] = t0[side]
            ist[m, I_AHEAD0 + side] = ahead0


@numba.njit(cache=True)
def snapshot_market(book, ist, m, L, obs):
    """Write the book (levels from each best: price, lots incl. the agent's) and the mid."""
    s = spread(ist, m)
    for k in range(L):
        i = s + k
        for side in range(2):
            base = O_BOOK + 4 * k + 2 * side
            px = ist[m, I_BID_PX] - k if side == BID else ist[m, I_ASK_PX] + k
            obs[m, base] = px
            obs[m, base + 1] = level_total(book, ist, m, side, i) if i <= L else 0
    obs[m, O_MID] = others_mid(book, ist, m, L)


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
def snapshot_trades(trades, ist, fst, m, mid, window, tobs):
    """Write the market's trades of the last ``window`` time units, most recent first, as
    (signed lots, price - ``mid`` in ticks, age); rows without a trade are zeros."""
    ring = trades.shape[1]
    count = ist[m, I_N_TRADES]
    now = fst[m, F_TIME]
    for k in range(tobs.shape[1]):
        for c in range(3):
            tobs[m, k, c] = 0.0
    k = 0
    for back in range(min(count, ring)):
        if k >= tobs.shape[1]:
            break
        row = (count - 1 - back) % ring
        age = now - trades[m, row, TRADE_TIME]
        if age > window:
            break
        tobs[m, k, T_SIGNED_SIZE] = trades[m, row, TRADE_SIGNED_SIZE]
        tobs[m, k, T_OFFSET] = trades[m, row, TRADE_PRICE] - mid
        tobs[m, k, T_AGE] = age
        k += 1


@numba.njit(cache=True)
def value(book, ist, fst, p, m, L):
    return fst[m, F_CASH] + ist[m, I_INV] * others_mid(book, ist, m, L) * p[P_TICK] * p[P_LOT]


def _step_impl(
    action,
    book,
    ist,
    fst,
    rng,
    p,
    step,
    active,
    out,
    done,
    obs,
    fills,
    nfill,
    evlog,
    nlog,
    trades,
    tobs,
):
    """Advance each active market by one decision (see the module docstring).

    :param action: (N, 2) normalized actions.   :param book: (N, 2, L) int64 others' lots.
    :param ist: (N, N_ISTATE) int64.            :param fst: (N, N_ENV_FSTATE) float64.
    :param rng: (N, 4) uint64 streams.          :param p: packed parameters (P_*, E_*).
    :param step: (N,) int64 decisions taken.    :param active: (N,) bool, markets to step.
    :param out: (N_OUT, N) float64 outputs.     :param done: (N,) bool terminated.
    :param obs: (N, obs_size(L)) float32.       :param fills, nfill: the fill log (reset here).
    :param evlog, nlog: the market's event log (:func:`envs.lob.book.advance`; empty: none).
    :param trades: (N, N_OBS_TRADES, 3) trade ring. :param tobs: (N, N_OBS_TRADES, 3) float32.
    """
    L = int(p[P_L])
    dt = p[E_DT]
    stress = int(p[E_STRESS])
    n_steps = int(p[E_N_STEPS])
    for m in numba.prange(book.shape[0]):
        nfill[m] = 0
        if not active[m]:
            for r in range(N_OUT):
                out[r, m] = 0.0
            done[m] = False
            continue
        t0 = fst[m, F_TIME]
        t_end = (step[m] + 1) * dt
        q0 = ist[m, I_INV]
        fees0 = fst[m, F_FEES]
        value0 = value(book, ist, fst, p, m, L)
        # 1. prices from the last observed mid
        a_b = min(max(action[m, 0], -1.0), 1.0)
        a_a = min(max(action[m, 1], -1.0), 1.0)
        depth_b = p[E_DEPTH_MIN] + (a_b + 1.0) * p[E_HALF_WIDTH]
        depth_a = p[E_DEPTH_MIN] + (a_a + 1.0) * p[E_HALF_WIDTH]
        mid_seen = fst[m, F_OBS_MID]
        px_b = int(np.floor(mid_seen - depth_b + 1e-9))
        px_a = int(np.ceil(mid_seen + depth_a - 1e-9))
        if px_a <= px_b:
            px_a = px_b + 1
        # 2. milestones: orders live (entry), own-state snapshot, market snapshot
        lat, resp, feed = p[E_ENTRY_LAT], p[E_RESP_LAT], p[E_FEED_LAT]
        pm = p  # the order flow's parameters for this step
        if stress > 0 and step[m] < n_steps:  # this step's column of the stress schedule
            col = stress + step[m]
            lat = p[col + S_ENTRY_LAT * n_steps]
            feed = p[col + S_FEED_LAT * n_steps]
            resp = p[col + S_RESP_LAT * n_steps]
            jump = int(p[col + S_JUMP * n_steps])
            if jump != 0:
                jump_book(book, ist, fst, p, fills, nfill, m, jump, L, trades)
            rate = p[col + S_RATE * n_steps]
            mkt_bid = p[col + S_MKT_BID * n_steps]
            mkt_ask = p[col + S_MKT_ASK * n_steps]
            if rate != 1.0 or mkt_bid != 1.0 or mkt_ask != 1.0:
                pm = p[:stress].copy()
                pm[P_RATE_SCALE] = rate
                pm[P_MKT_SCALE + BID] = mkt_bid
                pm[P_MKT_SCALE + ASK] = mkt_ask
        if p[E_LAT_EXP] > 0:  # exponential latencies with these means, capped at dt
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
            advance(
                book, ist, fst, rng, pm, fills, nfill, m, t_next, 2**62, False, evlog, nlog, trades
            )
            if not placed and t_entry <= t_next:
                apply_quotes(book, ist, fst, p, fills, nfill, m, px_b, px_a, L)
                placed = True
            if not resp_done and t_resp <= t_next:
                snapshot_own(ist, fst, m, L, obs)
                resp_done = True
            if not feed_done and t_feed <= t_next:
                snapshot_market(book, ist, m, L, obs)
                snapshot_trades(trades, ist, fst, m, obs[m, O_MID], dt, tobs)
                fst[m, F_OBS_MID] = obs[m, O_MID]
                feed_done = True
            if placed and resp_done and feed_done and t_next >= t_end:
                break
        t = step[m] + 1
        step[m] = t
        finished = t >= p[E_N_STEPS]
        value1 = value(book, ist, fst, p, m, L)
        peak = max(fst[m, F_PEAK], value1)
        fst[m, F_PEAK] = peak
        if p[E_MAX_DD] > 0.0 and peak - value1 >= p[E_MAX_DD]:
            finished = True
        unliquidated = 0.0
        if finished:
            if p[E_LIQUIDATE] > 0:
                liquidate(book, ist, fst, p, fills, nfill, m, L)
                unliquidated = float(ist[m, I_INV])
            else:
                cancel_agent(book, ist, m, BID, L)
                cancel_agent(book, ist, m, ASK, L)
            value1 = value(book, ist, fst, p, m, L)
            snapshot_own(ist, fst, m, L, obs)
            snapshot_market(book, ist, m, L, obs)
            snapshot_trades(trades, ist, fst, m, obs[m, O_MID], dt, tobs)
        q1 = ist[m, I_INV]
        pen = p[E_PHI] * 0.5 * (q0 * q0 + q1 * q1) * dt
        if finished:
            pen += p[E_ALPHA] * q1 * q1
        out[OUT_REWARD, m] = value1 - value0 - pen
        out[OUT_DPNL, m] = value1 - value0
        out[OUT_PENALTY, m] = pen
        out[OUT_FEES, m] = fst[m, F_FEES] - fees0
        out[OUT_BID_PX, m] = px_b
        out[OUT_ASK_PX, m] = px_a
        out[OUT_UNLIQUIDATED, m] = unliquidated
        out[OUT_VALUE, m] = value1
        done[m] = finished
        obs[m, O_TIME] = p[E_T] - t * dt


step_kernel = numba.njit(cache=True, nogil=True)(_step_impl)
step_kernel_parallel = numba.njit(cache=True, nogil=True, parallel=True)(
    renamed(_step_impl, "_parallel")
)
"""The step kernel with the markets spread over threads (``prange``); same results."""


@numba.njit(cache=True)
def reset_kernel(book, ist, fst, rng, p, initial, stationary, px0, q0, mask, obs, tobs):
    """Initial books for the masked markets, the agent flat (``q0`` lots, no orders)."""
    L = int(p[P_L])
    init_books(book, ist, fst, rng, p, initial, stationary, px0, mask)
    for m in range(book.shape[0]):
        if not mask[m]:
            continue
        ist[m, I_INV] = q0
        mid = others_mid(book, ist, m, L)
        fst[m, F_OBS_MID] = mid
        fst[m, F_PEAK] = q0 * mid * p[P_TICK] * p[P_LOT]
        snapshot_market(book, ist, m, L, obs)
        snapshot_own(ist, fst, m, L, obs)
        obs[m, O_TIME] = p[E_T]
        tobs[m, :, :] = 0.0


def stress_schedule(scenario: StressScenario, config: LOBMarketConfig) -> np.ndarray:
    """Per-step parameters of a scenario: a ``(len(STRESS_ROWS), n_steps)`` float64 array.

    Column ``t`` applies to the step from decision ``t`` to ``t + 1``; outside the window
    (:meth:`configs.schema.StressWindow.steps`) the rows hold the calibrated market (factors 1,
    no jump, the configured latencies). Inside:

    - ``volatility`` (factor ``f``): every order-flow rate times ``f^2`` (``rate_factor``). In
      the CST / queue-reactive book the mid moves only through events, and over a horizon long
      against the inter-event times its variance grows like the number of events (Cont & de
      Larrard 2013, "Price dynamics in a Markovian limit order market", SIAM J. Financial Math.
      4, Theorem 1: sigma^2 proportional to the event rate), so a clock running ``f^2`` faster
      is the honest analogue of ``sigma -> f sigma``, not an exact scaling over a short window
      (the book's shape still starts from the unstressed one);
    - ``fill_intensity`` (factor, side): the rate of the market orders hitting the agent's side
      (sell market orders hit the bid) times the factor (``bid_market_factor``,
      ``ask_market_factor``);
    - ``jump`` (``jump_ticks``): the whole book shifted by ``size`` ticks at the start of the
      window's first step and, with ``revert``, back at the start of its last step (so the
      decisions strictly inside the window see the displaced mid, as in the analytic market);
      the agent's resting orders keep their prices (:func:`jump_book`: a crash trades through
      the bids). ``unit: price`` reads ``size`` in ticks (a whole number); ``unit: sigma`` in
      standard deviations of the mid over the horizon, ``market.mid_volatility * sqrt(T)``
      ticks (rounded to the nearest tick), which is the analytic market's unit when ``T = 1``;
    - ``latency`` (factor, add): the entry, feed and response latencies ``x factor + add``.
      With constant latencies each must stay below ``dt`` (the model's constraint).

    :raises ValueError: naming the scenario, when it declares no meaning in the order book,
        sets a perturbation this market does not apply, its window holds no step (or a
        reverting jump a single step), a jump is not a whole number of ticks or rounds to 0, or
        a stressed constant latency reaches ``dt``.
    """
    where = f"stress scenario {scenario.name!r}"
    if "lob" not in scenario.markets:
        raise ValueError(f"{where}: declares markets {scenario.markets}, not 'lob'")
    shocks = scenario.perturbations.active()
    unknown = sorted(set(shocks) - STRESS_PERTURBATIONS)
    if unknown:
        raise ValueError(f"{where}: perturbations {unknown} are not applied by the lob market")
    try:
        first, stop = scenario.window.steps(config.n_steps, config.T)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    sched = np.ones((len(STRESS_ROWS), config.n_steps))
    sched[S_JUMP] = 0.0
    sched[S_ENTRY_LAT] = config.entry_latency
    sched[S_FEED_LAT] = config.feed_latency
    sched[S_RESP_LAT] = config.response_latency
    win = slice(first, stop)
    pert = scenario.perturbations
    if pert.volatility is not None:
        sched[S_RATE, win] = pert.volatility.factor**2
    if pert.fill_intensity is not None:
        f = pert.fill_intensity
        rows = {"both": [S_MKT_BID, S_MKT_ASK], "bid": [S_MKT_BID], "ask": [S_MKT_ASK]}[f.side]
        sched[rows, win] = f.factor
    if pert.jump is not None:
        jump = pert.jump
        if jump.revert and stop - first < 2:
            raise ValueError(f"{where}: a reverting jump needs a window of at least 2 steps")
        if jump.unit == "sigma":
            ticks = round(jump.size * config.market.mid_volatility * math.sqrt(config.T))
            if ticks == 0:
                raise ValueError(
                    f"{where}: jump.size = {jump.size} sigma is "
                    f"{jump.size * config.market.mid_volatility * math.sqrt(config.T):.3g} "
                    f"ticks (market.mid_volatility {config.market.mid_volatility} ticks/sqrt(time)"
                    f" x sqrt(T = {config.T})): rounds to no tick"
                )
        else:
            if jump.size != round(jump.size) or jump.size == 0:
                raise ValueError(
                    f"{where}: jump.size = {jump.size} with unit 'price' is a shift of the book "
                    "in ticks: expected a non-zero whole number"
                )
            ticks = round(jump.size)
        sched[S_JUMP, first] += ticks
        if jump.revert:
            sched[S_JUMP, stop - 1] -= ticks
    if pert.latency is not None:
        lat = pert.latency
        for row, name in ((S_ENTRY_LAT, "entry_latency"), (S_FEED_LAT, "feed_latency"),
                          (S_RESP_LAT, "response_latency")):  # fmt: skip
            value = getattr(config, name) * lat.factor + lat.add
            if config.latency_distribution == "constant" and value >= config.dt:
                raise ValueError(
                    f"{where}: latency makes {name} {getattr(config, name)} x {lat.factor} + "
                    f"{lat.add} = {value:.6g} inside the window; constant latencies must stay "
                    f"< dt ({config.dt}): lower latency.factor / latency.add or {name}"
                )
            sched[row, win] = value
    return sched


def pack_env_params(config: LOBMarketConfig) -> np.ndarray:
    """The packed parameter vector: the market's (:func:`pack_params`), the env's (E_*) and,
    with ``config.stress``, its schedule (:func:`stress_schedule`) appended at ``E_STRESS``."""
    c = config
    p = pack_params(
        c.market, _QUEUE_CODES[c.queue_model], c.queue_power, c.maker_fee_bps, c.taker_fee_bps
    )
    p[E_DEPTH_MIN] = c.depth_min
    p[E_HALF_WIDTH] = 0.5 * (c.depth_max - c.depth_min)
    p[E_DT], p[E_N_STEPS], p[E_T] = c.dt, c.n_steps, c.T
    p[E_Q_MAX], p[E_PHI], p[E_ALPHA] = c.q_max, c.phi, c.alpha
    p[E_MAX_DD] = c.max_drawdown or 0.0
    p[E_ORDER_SIZE] = c.order_size
    p[E_ENTRY_LAT] = c.entry_latency
    p[E_LAT_EXP] = c.latency_distribution == "exponential"
    p[E_FEED_LAT], p[E_RESP_LAT] = c.feed_latency, c.response_latency
    p[E_LIQUIDATE] = c.terminal == "liquidate"
    if c.stress is not None:
        p[E_STRESS] = p.size
        p = np.concatenate([p, stress_schedule(c.stress, c).ravel()])
    return p


class LOBMarketCore:
    """State and dynamics of ``N`` order-book markets with one agent each (arrays, one kernel).

    Layouts and units: :mod:`envs.lob.book` (``book``, ``ist``, ``fst``, ``rng``) plus
    ``fst[:, F_OBS_MID]`` (the mid last observed, ticks) and ``step_count`` (decisions taken).

    ``stress_schedule``: the per-step parameters of ``config.stress`` (:func:`stress_schedule`,
    rows :data:`STRESS_ROWS`), None without a scenario. A scenario draws no extra random number
    (with exponential latencies, a latency the scenario makes positive from 0 is drawn), so
    before its window a stressed market follows the unstressed one from the same seed exactly.

    :param config: validated market and agent parameters.
    :param num_envs: number of markets ``N``.
    :param parallel: step the markets on all numba threads (``prange``); the results are the
        same (one random stream per market), only the speed differs.
    """

    def __init__(self, config: LOBMarketConfig, num_envs: int, parallel: bool = False) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.market: MarketParams = config.market
        self.num_envs = num_envs
        self._kernel = step_kernel_parallel if parallel else step_kernel
        self.L = L = config.market.n_levels
        self.params = pack_env_params(config)
        self.stress_schedule: np.ndarray | None = None
        if config.stress is not None:
            off = int(self.params[E_STRESS])
            self.stress_schedule = self.params[off:].reshape(len(STRESS_ROWS), config.n_steps)
        self.book = np.zeros((num_envs, 2, L), np.int64)
        self.ist = np.zeros((num_envs, N_ISTATE), np.int64)
        self.fst = np.zeros((num_envs, N_ENV_FSTATE))
        self.fills = np.zeros((num_envs, config.max_fills, N_FILL_COLS))
        self.nfill = np.zeros(num_envs, np.int64)
        self.step_count = np.zeros(num_envs, np.int64)
        self.obs = np.zeros((num_envs, obs_size(L)), np.float32)
        self.trades = np.zeros((num_envs, N_OBS_TRADES, N_TRADE_COLS))
        self.trades_obs = np.zeros((num_envs, N_OBS_TRADES, 3), np.float32)
        self._all = np.ones(num_envs, np.bool_)
        self._no_log = no_event_log(num_envs)
        init = config.market.initial_book
        self._stationary = init == "stationary"
        self._initial = np.zeros(L, np.int64) if self._stationary else np.asarray(init, np.int64)
        self.seed(None)
        self.reset_state()

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """One xoshiro256** stream per market from ``SeedSequence(seed).spawn(N)``."""
        self.rng = seed_states(seed, self.num_envs)

    _STATE = ("book", "ist", "fst", "rng", "step_count", "nfill", "fills", "obs", "trades",
              "trades_obs")  # fmt: skip
    """The arrays that hold everything the markets' future depends on."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays and random streams (for checkpoints)."""
        return {name: getattr(self, name).copy() for name in self._STATE}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` (same ``num_envs`` and config)."""
        for name in self._STATE:
            target = getattr(self, name)
            if state[name].shape != target.shape:
                raise ValueError(f"state {name!r} of shape {state[name].shape} cannot load into "
                                 f"{target.shape} (another num_envs or config)")  # fmt: skip
            target[...] = state[name]

    def reset_state(self, mask: np.ndarray | None = None) -> None:
        """Fresh books and a flat agent for the markets selected by ``mask`` (all when None)."""
        sel = self._all if mask is None else np.asarray(mask, np.bool_)
        reset_kernel(
            self.book,
            self.ist,
            self.fst,
            self.rng,
            self.params,
            self._initial,
            self._stationary,
            self.config.initial_price,
            self.config.q0,
            sel,
            self.obs,
            self.trades_obs,
        )
        self.step_count[sel] = 0
        self.nfill[sel] = 0

    def observe(self) -> dict[str, np.ndarray]:
        """The batched observation (fresh float32 arrays with a leading batch axis)."""
        return {**split_obs(self.obs.copy(), self.L), TRADES: self.trades_obs.copy()}

    def step(
        self, action: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Advance the markets selected by ``active`` (all when None) by one decision."""
        n = self.num_envs
        action = np.asarray(action, np.float64)
        if action.shape != (n, 2):
            raise ValueError(f"action must have shape ({n}, 2), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError("actions must be finite")
        out = np.empty((N_OUT, n))
        done = np.empty(n, np.bool_)
        self._kernel(
            action,
            self.book,
            self.ist,
            self.fst,
            self.rng,
            self.params,
            self.step_count,
            self._all if active is None else active,
            out,
            done,
            self.obs,
            self.fills,
            self.nfill,
            *self._no_log,
            self.trades,
            self.trades_obs,
        )
        info = {
            "dpnl": out[OUT_DPNL],
            "inventory_penalty": out[OUT_PENALTY],
            "fees": out[OUT_FEES],
            "bid_price": out[OUT_BID_PX],
            "ask_price": out[OUT_ASK_PX],
            "unliquidated": out[OUT_UNLIQUIDATED],
            "value": out[OUT_VALUE],
            "n_fills": self.nfill.copy(),
            "fills": self.fills[:, : max(1, int(self.nfill.max(initial=0)))].copy(),
        }
        return self.observe(), out[OUT_REWARD], done, info


BOOK = "book"
ORDERS = "orders"
TRADES = "trades"


def split_obs(flat: np.ndarray, L: int) -> dict[str, np.ndarray]:
    """The Dict observation from the kernel's flat rows ``(N, obs_size(L))``."""
    n = flat.shape[0]
    return {
        "inventory": flat[:, O_INV : O_INV + 1],
        "time_left": flat[:, O_TIME : O_TIME + 1],
        "mid": flat[:, O_MID : O_MID + 1],
        "cash": flat[:, O_CASH : O_CASH + 1],
        BOOK: flat[:, O_BOOK : O_BOOK + 4 * L].reshape(n, L, 2, 2),
        ORDERS: flat[:, O_BOOK + 4 * L :].reshape(n, 2, 3),
    }

"""The agent's orders in a market with a book: quotes to orders, fills, accounting, the step.

docs/exchange.md#orders-and-queue-position. Written once for every market; a market (the
simulated order book, the replay) is a *feed*: a bundle of its arrays and nine small numba
functions (the ``feed_*`` stubs below say what each does). :func:`bind` compiles this module's
generic functions against one feed's functions, so the step kernel of each market is this
module's :func:`step_loop` with the feed's functions called directly (no dispatch at run time).

One decision (``step_loop``), per market ``m``:

1. the action gives bid and ask depths (ticks) from the mid the agent last observed; prices are
   ``floor(mid - depth_bid)`` and ``ceil(mid + depth_ask)`` (never more aggressive than asked;
   an ask at or below the bid moves one tick above it);
2. the feed runs for the entry latency with the old orders, then the new quotes go live
   (:func:`apply_quotes`): an unchanged price keeps its order and queue place, a changed one is
   cancelled and re-posted at the back of the queue; a quote that could take ``|inventory|``
   beyond ``q_max`` is not sent (a resting one is cancelled); a quote crossing the book trades
   at once against it, walking levels at the taker fee (:func:`take`), and its remainder rests
   unless the book still crosses it;
3. the feed runs to the end of the interval, filling the resting orders (maker fee,
   :func:`passive_fill`); the agent's own state is observed ``response_latency`` and the market
   ``feed_latency`` before the end (docs/exchange.md#latency-models);
4. the kill switch and the end (docs/exchange.md#risk-controls): the orders are cancelled and
   the inventory liquidated with a marketable order (``X_LIQUIDATE``) or kept marked at the mid;
   what the book cannot absorb stays marked and is reported
   (docs/exchange.md#accounting-and-liquidation).

Reward (Cartea & Jaimungal 2015, running and terminal inventory penalties)::

    reward = dPnL - phi (q_t^2 + q_{t+dt}^2) / 2 dt - [end] alpha q_T^2

``dPnL`` is the change of ``cash + q mid tick lot`` and already contains the fees.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType, SimpleNamespace
from typing import Any

import numba
import numpy as np

from envs.exchange.latency import draw_latencies
from envs.exchange.layout import (
    BID,
    F_CASH,
    F_FEES,
    F_OBS_MID,
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
    N_OUT,
    O_BOOK,
    O_CASH,
    O_INV,
    O_MID,
    O_TIME,
    OUT_ASK_PX,
    OUT_BID_PX,
    OUT_DPNL,
    OUT_FEES,
    OUT_PENALTY,
    OUT_REWARD,
    OUT_UNLIQUIDATED,
    OUT_VALUE,
    X_ALPHA,
    X_DEPTH_MIN,
    X_DT,
    X_HALF_WIDTH,
    X_LEVELS,
    X_LIQUIDATE,
    X_LOT,
    X_MAKER_BPS,
    X_MAX_DD,
    X_N_STEPS,
    X_ORDER_SIZE,
    X_PHI,
    X_Q_MAX,
    X_T,
    X_TAKER_BPS,
    X_TICK,
)

# --------------------------------------------------------------------------------------
# Accounting (no feed needed)


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
def settle(ist, fst, p, m, side, px, size, fee_bps):
    """Cash, inventory and fee of an agent trade of ``size`` lots at ``px`` ticks (``side`` =
    the agent's order side: BID buys). Returns the fee (currency, ``fee_bps`` of notional;
    negative = rebate; docs/exchange.md#fee-schedules)."""
    notional = px * p[X_TICK] * p[X_LOT] * size
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
    """The agent's resting order on ``side`` trades ``size`` lots at its price at time ``t``
    (maker fee)."""
    if size <= 0:
        return
    px = ist[m, I_APX + side]
    fee = settle(ist, fst, p, m, side, px, size, p[X_MAKER_BPS])
    ist[m, I_AREM + side] -= size
    ist[m, I_MAKER] += size
    record_fill(fills, nfill, m, t, px, size, side, 0.0, fee, ist[m, I_AHEAD0 + side],
                t - fst[m, F_T0 + side])  # fmt: skip


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
def start_episode(ist, fst, p, m, q0, mid, obs):
    """The agent of market ``m`` starts flat with ``q0`` lots and no order, having seen ``mid``
    (ticks): inventory, observed mid, value peak, own-state observation and time left."""
    ist[m, I_INV] = q0
    fst[m, F_OBS_MID] = mid
    fst[m, F_PEAK] = q0 * mid * p[X_TICK] * p[X_LOT]
    snapshot_own(ist, fst, m, int(p[X_LEVELS]), obs)
    obs[m, O_TIME] = p[X_T]


@numba.njit(cache=True)
def quote_prices(action, fst, p, m):
    """Bid and ask prices (ticks) of market ``m``'s action from the mid it last observed."""
    a_b = min(max(action[m, 0], -1.0), 1.0)
    a_a = min(max(action[m, 1], -1.0), 1.0)
    depth_b = p[X_DEPTH_MIN] + (a_b + 1.0) * p[X_HALF_WIDTH]
    depth_a = p[X_DEPTH_MIN] + (a_a + 1.0) * p[X_HALF_WIDTH]
    mid_seen = fst[m, F_OBS_MID]
    px_b = int(np.floor(mid_seen - depth_b + 1e-9))
    px_a = int(np.ceil(mid_seen + depth_a - 1e-9))
    if px_a <= px_b:
        px_a = px_b + 1
    return px_b, px_a


# --------------------------------------------------------------------------------------
# The feed's functions (docs/exchange.md#orders-and-queue-position). Stubs: :func:`bind`
# replaces them with a market's numba functions before compiling the generic code below.
# Inside the kernel the agent's arrays travel as arguments, unpacked from the ``Own`` bundle
# once per call of the step kernel: reading a bundle's field costs a reference-count update
# (docs/exchange.md#state-bundles).


def feed_begin(feed, ist, fst, p, fills, nfill, m, k):  # pragma: no cover - interface
    """Start decision ``k`` of market ``m``: return ``(t_end, entry, response, feed latency,
    p)`` with the parameter vector the market's events use during the step."""
    raise NotImplementedError


def feed_advance(feed, ist, fst, rng, p, fills, nfill, m, t_next):  # pragma: no cover
    """Run market ``m``'s events up to time ``t_next`` against the agent's resting orders."""
    raise NotImplementedError


def feed_level(feed, ist, m, side, k):  # pragma: no cover - interface
    """``(price, others' lots)`` of the ``k``-th level a marketable order meets on ``side``;
    lots 0 when there is none."""
    raise NotImplementedError


def feed_consume(feed, ist, p, m, side, k, lots):  # pragma: no cover - interface
    """The agent took ``lots`` at that level; return the next level's ``k``."""
    raise NotImplementedError


def feed_crosses(feed, ist, m, side, px):  # pragma: no cover - interface
    """Whether an order at ``px`` on ``side`` would still trade with the book."""
    raise NotImplementedError


def feed_join(feed, ist, p, m, side, px):  # pragma: no cover - interface
    """The agent's order now rests at ``px`` (price and lots set): return the lots ahead."""
    raise NotImplementedError


def feed_cancel(feed, ist, p, m, side):  # pragma: no cover - interface
    """Withdraw the agent's order on ``side`` (no-op without one)."""
    raise NotImplementedError


def feed_snapshot(feed, ist, fst, p, obs, m):  # pragma: no cover - interface
    """Write the market's part of the observation (book, mid, ...) for market ``m``."""
    raise NotImplementedError


def feed_mid(feed, ist, fst, p, m):  # pragma: no cover - interface
    """The mid (ticks) at which the inventory is marked."""
    raise NotImplementedError


FEED_FUNCTIONS = ("feed_begin", "feed_advance", "feed_level", "feed_consume", "feed_crosses",
                  "feed_join", "feed_cancel", "feed_snapshot", "feed_mid")  # fmt: skip


# --------------------------------------------------------------------------------------
# Generic order handling (compiled per feed by :func:`bind`)


def take(feed, ist, fst, p, fills, nfill, m, side, px, size):
    """The agent's marketable order on ``side`` (BID buys) with limit ``px`` (ticks) walks the
    other side's levels at or better than ``px``, at the taker fee. Returns the lots left."""
    opp = 1 - side
    left = size
    k = 0
    while left > 0:
        lp, avail = feed_level(feed, ist, m, opp, k)
        if avail <= 0:
            break
        if (side == BID and lp > px) or (side != BID and lp < px):
            break
        x = min(left, avail)
        k = feed_consume(feed, ist, p, m, opp, k, x)
        ist[m, I_TAKER] += x
        fee = settle(ist, fst, p, m, side, lp, x, p[X_TAKER_BPS])
        record_fill(fills, nfill, m, fst[m, F_TIME], lp, x, side, 1.0, fee, 0.0, 0.0)
        left -= x
    return left


def place(feed, ist, fst, p, fills, nfill, m, side, px, size):
    """Send a limit order: the crossing part trades at once (:func:`take`); the rest joins the
    back of the queue at ``px`` (everything already there is ahead of it), or lapses when the
    book's displayed liquidity ran out before the limit."""
    left = take(feed, ist, fst, p, fills, nfill, m, side, px, size)
    if left <= 0 or feed_crosses(feed, ist, m, side, px):
        return
    ist[m, I_APX + side] = px
    ist[m, I_AREM + side] = left
    ahead = feed_join(feed, ist, p, m, side, px)
    ist[m, I_AHEAD + side] = ahead
    ist[m, I_AHEAD0 + side] = ahead
    fst[m, F_T0 + side] = fst[m, F_TIME]


def apply_quotes(feed, ist, fst, p, fills, nfill, m, target_bid, target_ask):
    """Make the agent's live orders those of the targets (0 = no quote on that side), within
    the inventory cap ``q_max`` (docs/exchange.md#risk-controls)."""
    size = int(p[X_ORDER_SIZE])
    q_max = p[X_Q_MAX]
    inv = ist[m, I_INV]
    send_bid = False
    send_ask = False
    for side in range(2):
        tgt = target_bid if side == BID else target_ask
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
            feed_cancel(feed, ist, p, m, side)
        if side == BID:
            send_bid = allowed
        else:
            send_ask = allowed
    if send_bid:
        place(feed, ist, fst, p, fills, nfill, m, BID, target_bid, size)
    if send_ask:
        place(feed, ist, fst, p, fills, nfill, m, 1 - BID, target_ask, size)


def liquidate(feed, ist, fst, p, fills, nfill, m):
    """Cancel the agent's orders and trade the inventory away against the book (taker)."""
    feed_cancel(feed, ist, p, m, 0)
    feed_cancel(feed, ist, p, m, 1)
    inv = ist[m, I_INV]
    if inv > 0:
        take(feed, ist, fst, p, fills, nfill, m, 1 - BID, -(2**62), inv)
    elif inv < 0:
        take(feed, ist, fst, p, fills, nfill, m, BID, 2**62, -inv)


def value(feed, ist, fst, p, m):
    """Mark-to-market value (currency): cash plus the inventory at the feed's mid."""
    return fst[m, F_CASH] + ist[m, I_INV] * feed_mid(feed, ist, fst, p, m) * p[X_TICK] * p[X_LOT]


def step_loop(action, feed, own, active, out, done):
    """Advance each active market by one decision (see the module docstring).

    :param action: (N, 2) normalized actions.  :param feed: the market's bundle.
    :param own: the agent's bundle (:class:`envs.exchange.layout.Own`).
    :param active: (N,) bool, markets to step. :param out: (N_OUT, N) float64 outputs (OUT_*).
    :param done: (N,) bool, terminated (end of the episode or kill switch).
    """
    ist, fst, rng, p, fills, nfill, step, obs = own
    L = int(p[X_LEVELS])
    dt = p[X_DT]
    for m in numba.prange(ist.shape[0]):
        nfill[m] = 0
        if not active[m]:
            for r in range(N_OUT):
                out[r, m] = 0.0
            done[m] = False
            continue
        t0 = fst[m, F_TIME]
        q0 = ist[m, I_INV]
        fees0 = fst[m, F_FEES]
        value0 = value(feed, ist, fst, p, m)
        px_b, px_a = quote_prices(action, fst, p, m)
        t_end, lat, resp, feed_lat, pm = feed_begin(feed, ist, fst, p, fills, nfill, m, step[m])
        lat, resp, feed_lat = draw_latencies(ist, rng, p, m, lat, resp, feed_lat, dt)
        t_entry = min(t0 + lat, t_end)
        t_resp = t_end - resp
        t_feed = t_end - feed_lat
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
            feed_advance(feed, ist, fst, rng, pm, fills, nfill, m, t_next)
            if not placed and t_entry <= t_next:
                apply_quotes(feed, ist, fst, p, fills, nfill, m, px_b, px_a)
                placed = True
            if not resp_done and t_resp <= t_next:
                snapshot_own(ist, fst, m, L, obs)
                resp_done = True
            if not feed_done and t_feed <= t_next:
                feed_snapshot(feed, ist, fst, p, obs, m)
                fst[m, F_OBS_MID] = obs[m, O_MID]
                feed_done = True
            if placed and resp_done and feed_done and t_next >= t_end:
                break
        k = step[m] + 1
        step[m] = k
        finished = k >= p[X_N_STEPS]
        value1 = value(feed, ist, fst, p, m)
        peak = max(fst[m, F_PEAK], value1)
        fst[m, F_PEAK] = peak
        if p[X_MAX_DD] > 0.0 and peak - value1 >= p[X_MAX_DD]:
            finished = True
        unliquidated = 0.0
        if finished:
            if p[X_LIQUIDATE] > 0:
                liquidate(feed, ist, fst, p, fills, nfill, m)
                unliquidated = float(ist[m, I_INV])
            else:
                feed_cancel(feed, ist, p, m, 0)
                feed_cancel(feed, ist, p, m, 1)
            value1 = value(feed, ist, fst, p, m)
            snapshot_own(ist, fst, m, L, obs)
            feed_snapshot(feed, ist, fst, p, obs, m)
        q1 = ist[m, I_INV]
        pen = p[X_PHI] * 0.5 * (q0 * q0 + q1 * q1) * dt
        if finished:
            pen += p[X_ALPHA] * q1 * q1
        out[OUT_REWARD, m] = value1 - value0 - pen
        out[OUT_DPNL, m] = value1 - value0
        out[OUT_PENALTY, m] = pen
        out[OUT_FEES, m] = fst[m, F_FEES] - fees0
        out[OUT_BID_PX, m] = px_b
        out[OUT_ASK_PX, m] = px_a
        out[OUT_UNLIQUIDATED, m] = unliquidated
        out[OUT_VALUE, m] = value1
        done[m] = finished
        obs[m, O_TIME] = p[X_T] - k * dt


GENERIC = (take, place, apply_quotes, liquidate, value)


def bind(suffix: str, functions: dict[str, Callable[..., Any]]) -> SimpleNamespace:
    """This module's generic functions compiled against one feed.

    :param suffix: the market's name; the copies are named ``<name>_<suffix>`` so that each
        market's kernels have their own numba cache files (``cache=True`` keys them by name).
    :param functions: a namespace (a module's ``globals()``) holding the feed's numba functions
        as ``<suffix>_<role>`` for each ``feed_<role>`` of :data:`FEED_FUNCTIONS`.
    :return: ``take``, ``place``, ``apply_quotes``, ``liquidate``, ``value`` (numba functions
        callable from the feed's other kernels), ``step_kernel`` and ``step_kernel_parallel``
        (the markets spread over threads with ``prange``; same results).
    :raises ValueError: naming the feed functions that are missing.
    """
    names = {role: suffix + role.removeprefix("feed") for role in FEED_FUNCTIONS}
    missing = sorted(name for name in names.values() if name not in functions)
    if missing:
        raise ValueError(f"bind({suffix!r}): missing feed functions {missing}")
    namespace = dict(globals())
    namespace.update({role: functions[name] for role, name in names.items()})

    def copy(fn: FunctionType, name: str, **flags: Any) -> Any:
        clone = FunctionType(fn.__code__, namespace, name, fn.__defaults__, fn.__closure__)
        clone.__qualname__ = name
        clone.__module__ = fn.__module__
        clone.__doc__ = fn.__doc__
        return numba.njit(cache=True, **flags)(clone)

    bound = {fn.__name__: copy(fn, f"{fn.__name__}_{suffix}") for fn in GENERIC}  # type: ignore[arg-type]
    namespace.update(bound)
    bound["step_kernel"] = copy(step_loop, f"step_loop_{suffix}", nogil=True)  # type: ignore[arg-type]
    bound["step_kernel_parallel"] = copy(
        step_loop,  # type: ignore[arg-type]
        f"step_loop_{suffix}_parallel",
        nogil=True,
        parallel=True,
    )
    return SimpleNamespace(**bound)

"""Named state of the agent's orders, the same in every market with a book.

docs/exchange.md#state-bundles. Each market keeps its state in three arrays per market ``m``:
``ist[m]`` (int64), ``fst[m]`` (float64) and the packed parameters ``p`` (float64). The exchange
owns the first block of each (the columns below, defined here once); a market appends its own
columns after ``N_OWN_I``, ``N_OWN_F`` and ``N_XPARAMS``. The kernels receive these arrays in
two named bundles (:class:`Own`, and the market's feed bundle), not as positional lists.

"+ side" columns hold the bid at ``+ BID`` and the ask at ``+ ASK``. Units: prices in ticks,
sizes in lots, times in the market's time unit (seconds for replays), money in currency.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BID, ASK = 0, 1

# ---- ist: the agent's int64 state (columns 0 .. N_OWN_I - 1 of every market's ist)
I_INV = 0  # inventory (lots)
I_APX = 1  # + side: price of the agent's order (ticks)
I_AREM = 3  # + side: its remaining lots (0 = no order)
I_AHEAD = 5  # + side: lots ahead of it in the queue
I_AHEAD0 = 7  # + side: lots ahead at entry
I_LVL = 9  # + side: others' lots at its price (feeds that report level changes)
I_CUMTR = 11  # + side: traded lots whose depth-diff echo is still to come (L2 feeds)
I_ENTRY = 13  # + side: the feed's position when the order went live (L3 order ids)
I_MAKER = 15  # lots traded passively
I_TAKER = 16  # lots traded aggressively
I_DEEP = 17  # orders placed beyond the displayed depth (queue ahead unknown, taken as 0)
I_LAT_DRAWS = 18  # entries of a recorded latency series used so far
N_OWN_I = 19

# ---- fst: the agent's float64 state (columns 0 .. N_OWN_F - 1 of every market's fst)
F_TIME = 0  # the market's clock
F_CASH = 1  # currency
F_FEES = 2  # fees paid (currency; rebates negative)
F_PEAK = 3  # running maximum of the mark-to-market value (kill switch)
F_T0 = 4  # + side: entry time of the agent's order
F_OBS_MID = 6  # the mid the agent last observed (ticks)
N_OWN_F = 7

# ---- p: the exchange's parameters (entries 0 .. N_XPARAMS - 1 of every market's vector)
(X_TICK, X_LOT, X_MAKER_BPS, X_TAKER_BPS, X_QUEUE, X_QUEUE_POWER, X_DEPTH_MIN, X_HALF_WIDTH,
 X_DT, X_N_STEPS, X_T, X_Q_MAX, X_PHI, X_ALPHA, X_MAX_DD, X_ORDER_SIZE, X_ENTRY_LAT, X_LATENCY,
 X_FEED_LAT, X_RESP_LAT, X_LIQUIDATE, X_LEVELS, X_LAT_SERIES, X_LAT_N, X_LAT_RANDOM,
 X_QUEUE_TABLE, X_QUEUE_TABLE_N) = range(27)  # fmt: skip
N_XPARAMS = 27
"""Currency per tick per lot (``X_TICK``, ``X_LOT``); fees in bps of notional; the queue model
code and its power; the action's depth map (ticks); ``dt``, decisions per episode, horizon;
``q_max`` (lots), reward penalties, kill-switch drawdown (currency, 0 = off), quote size;
latency model code and means; 1 to liquidate at the end; levels per side in the observation;
a recorded latency series (offset in ``p``, length, 1 for random sampling); a registered queue
model's weight table ``f(0), f(1), ...`` (offset in ``p``, length)."""

# ---- fill log columns (float64), one row per agent fill
(FILL_TIME, FILL_PRICE, FILL_SIZE, FILL_SIDE, FILL_TAKER, FILL_FEE, FILL_AHEAD0,
 FILL_WAITED) = range(8)  # fmt: skip
N_FILL_COLS = 8

# ---- rows of the step kernel's float64 output
(OUT_REWARD, OUT_DPNL, OUT_PENALTY, OUT_FEES, OUT_BID_PX, OUT_ASK_PX, OUT_UNLIQUIDATED,
 OUT_VALUE) = range(8)  # fmt: skip
N_OUT = 8

# ---- flat observation row: [inventory, time_left, mid, cash, book (L, 2, 2), orders (2, 3)]
O_INV, O_TIME, O_MID, O_CASH, O_BOOK = 0, 1, 2, 3, 4
BOOK = "book"
ORDERS = "orders"


def obs_size(L: int) -> int:
    """Length of a flat observation row for ``L`` levels per side."""
    return O_BOOK + 4 * L + 6


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


class Own(NamedTuple):
    """The agent's side of ``N`` markets, as the kernels receive it.

    :param ist: ``(N, n_int)`` int64, the ``I_*`` columns first.
    :param fst: ``(N, n_float)`` float64, the ``F_*`` columns first.
    :param rng: ``(N, 4)`` uint64 xoshiro256** streams, one per market.
    :param p: packed parameters, the ``X_*`` entries first.
    :param fills: ``(N, max_fills, N_FILL_COLS)`` the fill log of the current decision.
    :param nfill: ``(N,)`` fills in the current decision (all counted, ``max_fills`` kept).
    :param step: ``(N,)`` decisions taken.
    :param obs: ``(N, obs_size(L))`` float32 flat observations.
    """

    ist: np.ndarray
    fst: np.ndarray
    rng: np.ndarray
    p: np.ndarray
    fills: np.ndarray
    nfill: np.ndarray
    step: np.ndarray
    obs: np.ndarray

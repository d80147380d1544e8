"""The simulated market's own events, in the canonical market-data schema
(docs/data.md#canonical-schema).

:func:`simulate_events` runs one order book with no agent, with the event kernel of the env
(:func:`envs.lob.book.advance` and its event log), and returns the two canonical frames a loader
returns for real data, so that calibration and its validation read simulated and historical
markets the same way:

- ``events``: ``ts`` (int64 ns; the model's time unit is taken as seconds and the run starts at
  0, i.e. 1970-01-01 UTC), ``kind``, ``side`` (+1 bid / -1 ask; for a trade the resting side),
  ``price`` (int64 ticks), ``size`` (float lots), ``order_id`` (-1: the model has no order ids),
  ``aggressor`` (+1 buy / -1 sell for trades, 0 otherwise), then one extra column
  ``synthetic``:

  * the run opens with ``snapshot`` rows, one per non-empty level of the initial book (absolute
    sizes; as for the Binance loader, a replay clears the book at a snapshot's first row);
    a queue-reactive redraw of the book (Huang, Lehalle & Rosenbaum 2015, section 2.3) is
    written the same way;
  * ``add`` and ``cancel`` rows are the model's limit orders and cancellations;
  * a market order is one ``trade`` row per price level it reaches;
  * ``synthetic`` is True on rows no order caused: ``cancel`` rows of lots that left the
    simulated window (``L`` levels counted from the opposite best) when the quotes moved, and,
    queue-reactive, the queue leaving the reference grid (``cancel``) and the one entering it
    drawn from its invariant law (``add``) when the reference price moves, and the redraws
    (``snapshot``). Leave them out when counting order flow; keep them to rebuild the book.

- ``book``: the book after each event row, ``ts, bid_px_1..L, bid_sz_1..L, ask_px_1..L,
  ask_sz_1..L`` with level 1 the best and level ``k`` the ``k``-th non-empty price level inside
  the window (price ``NaN`` and size 0 beyond the last one), ``L = n_levels``. Rows sharing a
  ``ts`` are parts of one market event (a market order walking levels, the lots it pushed out of
  the window, a redraw); the last of them is the book once the event is complete.

Both frames pass :func:`data.schema.validate_events` and :func:`data.schema.validate_book`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from calibration.params import MarketParams
from data.schema import make_book, make_events
from envs.lob.book import (
    ASK,
    BID,
    KIND_SNAPSHOT,
    LOG_AGGRESSOR,
    LOG_ASK_PX,
    LOG_BID_PX,
    LOG_BOOK,
    LOG_KIND,
    LOG_PRICE,
    LOG_SIDE,
    LOG_SIZE,
    LOG_SYNTHETIC,
    LOG_TIME,
    STOP_LOG,
    OrderBooks,
    log_rows_per_event,
    log_width,
)

NS_PER_TIME_UNIT = 1_000_000_000
"""Nanoseconds per model time unit (the time unit is taken as one second)."""


def _initial_rows(books: OrderBooks) -> np.ndarray:
    """Snapshot rows (raw log layout) of book 0's current non-empty levels, best first."""
    L = books.L
    rows = []
    ask_px, bid_px = int(books.ask_px[0]), int(books.bid_px[0])
    for side, sign in ((BID, 1.0), (ASK, -1.0)):
        for i in range(1, L + 1):
            lots = books.book[0, side, i - 1]
            if lots <= 0:
                continue
            row = np.zeros(log_width(L))
            row[LOG_TIME] = books.time[0]
            row[LOG_KIND] = KIND_SNAPSHOT
            row[LOG_SIDE] = sign
            row[LOG_PRICE] = ask_px - i if side == BID else bid_px + i
            row[LOG_SIZE] = lots
            rows.append(row)
    block = np.array(rows).reshape(-1, log_width(L))
    block[:, LOG_ASK_PX] = ask_px
    block[:, LOG_BID_PX] = bid_px
    block[:, LOG_BOOK:] = books.book[0].reshape(-1)
    return block


def _canonical_side(lots: np.ndarray, px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compact each row's non-empty levels to the front (best first); NaN prices beyond."""
    empty = lots <= 0
    order = np.argsort(empty, axis=1, kind="stable")
    lots_c = np.take_along_axis(lots, order, axis=1).astype(np.float64)
    px_c = np.take_along_axis(px, order, axis=1).astype(np.float64)
    px_c[lots_c <= 0] = np.nan
    return px_c, lots_c


def log_to_frames(rows: np.ndarray, L: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The canonical ``events`` and ``book`` frames from raw event-log rows (``advance``)."""
    ts = np.rint(rows[:, LOG_TIME] * NS_PER_TIME_UNIT).astype(np.int64)
    n = rows.shape[0]
    events = make_events(
        ts=ts,
        kind=rows[:, LOG_KIND].astype(np.int8),
        side=rows[:, LOG_SIDE].astype(np.int8),
        price=rows[:, LOG_PRICE].astype(np.int64),
        size=rows[:, LOG_SIZE],
        order_id=np.full(n, -1, np.int64),
        aggressor=rows[:, LOG_AGGRESSOR].astype(np.int8),
        extra={"synthetic": rows[:, LOG_SYNTHETIC] > 0},
    )
    dist = np.arange(1, L + 1)
    bid_lots = rows[:, LOG_BOOK : LOG_BOOK + L]
    ask_lots = rows[:, LOG_BOOK + L : LOG_BOOK + 2 * L]
    bid_px, bid_sz = _canonical_side(bid_lots, rows[:, LOG_ASK_PX, None] - dist)
    ask_px, ask_sz = _canonical_side(ask_lots, rows[:, LOG_BID_PX, None] + dist)
    book = make_book(ts, bid_px, bid_sz, ask_px, ask_sz)
    return events, book


def simulate_events(
    params: MarketParams,
    duration: float,
    seed: int,
    *,
    initial_price: int = 10_000,
    log_rows: int = 1 << 16,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate one book of ``params`` (no agent) for ``duration`` time units and return its
    ``(events, book)`` frames (module docstring).

    The book starts from ``params.initial_book`` with the best bid at ``initial_price`` ticks and
    evolves by the kernel of :mod:`envs.lob.book` (Cont, Stoikov & Talreja 2010, or the
    queue-reactive model of Huang, Lehalle & Rosenbaum 2015, by ``params.model``); the same seed
    gives the same frames.

    :param params: the order-flow model.
    :param duration: time units to simulate (> 0).
    :param seed: seed of the book's random stream.
    :param initial_price: best bid at the start (ticks).
    :param log_rows: rows of the kernel's event buffer, emptied as it fills (memory only).
    """
    if not duration > 0:
        raise ValueError(f"duration must be > 0, got {duration}")
    L = params.n_levels
    if log_rows < 2 * log_rows_per_event(L):
        raise ValueError(f"log_rows must be >= {2 * log_rows_per_event(L)}, got {log_rows}")
    books = OrderBooks(params, 1)
    books.seed(seed)
    books.reset(px0=initial_price)
    evlog = np.zeros((1, log_rows, log_width(L)))
    nlog = np.zeros(1, np.int64)
    chunks = [_initial_rows(books)]
    while True:
        stops = books.simulate(until=float(duration), event_log=(evlog, nlog))
        chunks.append(evlog[0, : nlog[0]].copy())
        nlog[0] = 0
        if stops[0] != STOP_LOG:
            break
    return log_to_frames(np.concatenate(chunks), L)

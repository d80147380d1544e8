"""The canonical frames of one dataset turned into what every fit needs: :class:`FlowSample`.

Units (hold in every module of ``calibration/``): time in seconds since the first event, prices in
ticks of ``InstrumentSpec.tick_size``, sizes in calibration lots of ``lot`` base units (shares for
LOBSTER, coins for Binance; by default the median limit-order size, so that queues are small
integers).

Distances. A price level on one side is at distance ``i`` (``i = 1..L``) according to
``reference``:

- ``"opposite"``: ticks from the OPPOSITE best quote, as Cont, Stoikov & Talreja (2010, section
  1.2) count them (a bid at ``ask - i``, an ask at ``bid + i``). With a one-tick spread, ``i = 1``
  is the best queue. A limit order inside the spread has ``i < spread`` and improves the quote.
- ``"own"``: ``1 +`` ticks behind the SAME side's best (a bid at ``bid - (i - 1)``). This is the
  opposite-best distance the level would have if the spread were one tick: the book is mapped onto
  the one-tick-spread market that CST (2010) model. A limit order that improves the quote (inside
  the spread) is counted at ``i = 1`` (it becomes the best queue; such orders are counted in
  ``notes['improving_limit_orders']``). Used for wide-spread books such as GOOG on 2012-06-21
  (median spread 28 ticks), where almost no order rests within ten ticks of the opposite best, so
  opposite-best rates at ``i = 1..10`` would describe spread improvements only.
- ``"auto"``: ``"opposite"`` when the time-weighted median spread is at most 2 ticks, else
  ``"own"``.

Every event is located in the book just BEFORE it (LOBSTER's book row ``i`` is the book after
message ``i``; for other feeds the last book row strictly earlier than the event). The book is
piecewise constant between its rows, which gives the exposures (time integrals of queue sizes).

Data treatment:

- LOBSTER hidden executions (``hidden`` column, type 5) execute against non-displayed orders: they
  are not market orders against the visible queues and are left out of the order flow (counted in
  ``notes``). A LOBSTER halt (type 7, price -1) stops the clock until the next halt message
  (resume, price 0 or 1): no exposure accrues and no event counts while halted.
- Market orders: executions with the same time stamp and aggressor side are one market order
  (LOBSTER writes one execution per resting order hit; Binance one trade per maker order, whose
  local receive times differ: there the exchange time ``exch_ts`` is the time stamp compared).
- L2 diff feeds (Binance; no order ids): the diff stream reports an execution as a decrease of
  the level, which the loader writes as a ``cancel``; each trade's size is taken off the next
  decreases at its side and price, and only what remains is a cancellation (reconciled volume
  in ``notes``).
- ``snapshot`` rows (book resets) are not order flow; nor are the rows flagged
  ``synthetic`` by simulated markets (e.g. lots that left the simulated window: no order removed
  them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from data.schema import ADD, CANCEL, TRADE, InstrumentSpec, book_arrays

Reference = Literal["opposite", "own", "auto"]

NS = 1e-9  # seconds per nanosecond


@dataclass
class FlowSample:
    """Events and book of one dataset in calibration units.

    Event arrays (one entry per kept order-flow event, in time order): ``t`` (s), ``kind``
    (``ADD``, ``CANCEL`` or ``TRADE`` codes of :mod:`data.schema`; trades are whole market orders),
    ``side`` (+1 bid, -1 ask: the side of the resting order), ``price`` (ticks), ``size`` (lots),
    ``dist`` (distance ``i`` of the event's level before it, 0 if it has none), ``queue`` (lots
    resting at the event's price before it), ``prev`` (the book row just before it).

    Book arrays (one row per book state, in time order): ``row_t`` (s), ``row_dt`` (s the state
    lasted, 0 while halted), ``bid_px``, ``ask_px`` (ticks, NaN empty), ``bid_sz``, ``ask_sz``
    (lots), ``bid_dist``, ``ask_dist`` (distance of each displayed level, 0 if outside 1..L).
    ``halts``: ``(start, end)`` of trading halts (s).
    """

    t: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    dist: np.ndarray
    queue: np.ndarray
    aggressor: np.ndarray
    prev: np.ndarray
    row_t: np.ndarray
    row_dt: np.ndarray
    bid_px: np.ndarray
    ask_px: np.ndarray
    bid_sz: np.ndarray
    ask_sz: np.ndarray
    bid_dist: np.ndarray
    ask_dist: np.ndarray
    levels: int
    reference: Literal["opposite", "own"]
    lot: float
    spec: InstrumentSpec
    start_ns: int
    end_ns: int
    halts: list[tuple[float, float]] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)

    @property
    def duration(self) -> float:
        """Time the market was open (s), halts excluded."""
        return float(self.row_dt.sum())

    def at(self, times: np.ndarray) -> np.ndarray:
        """Book row in force at each time (s); -1 before the first row."""
        idx: np.ndarray = np.searchsorted(self.row_t, times, side="right") - 1
        return idx

    def mid(self, rows: np.ndarray) -> np.ndarray:
        """Mid price (ticks) of book rows (NaN when a side is empty)."""
        out: np.ndarray = 0.5 * (self.bid_px[rows, 0] + self.ask_px[rows, 0])
        return out


def median_spread(book: pd.DataFrame) -> float:
    """Time-weighted median spread (ticks) of a canonical book frame."""
    ts = book["ts"].to_numpy()
    spread = (book["ask_px_1"] - book["bid_px_1"]).to_numpy(dtype=np.float64)
    dt = np.diff(ts, append=ts[-1]).astype(np.float64)
    ok = np.isfinite(spread) & (dt > 0)
    if not ok.any():
        ok = np.isfinite(spread)
        dt = np.ones_like(dt)
    order = np.argsort(spread[ok])
    cum = np.cumsum(dt[ok][order])
    return float(spread[ok][order][np.searchsorted(cum, 0.5 * cum[-1])])


def default_lot(events: pd.DataFrame, spec: InstrumentSpec) -> float:
    """The median limit-order size in base units (shares, coins): one calibration lot."""
    adds = events.loc[events["kind"] == "add", "size"].to_numpy(dtype=np.float64)
    if adds.size == 0:
        raise ValueError("events: no 'add' rows, cannot choose a lot size (pass lot=)")
    return float(np.median(adds)) * spec.lot_size


def _halted(events: pd.DataFrame) -> list[tuple[int, int]]:
    """``(start_ns, end_ns)`` of trading halts (LOBSTER type 7: price -1 halts, 0/1 resume)."""
    halts = events.loc[events["kind"] == "halt", ["ts", "price"]].to_numpy()
    out: list[tuple[int, int]] = []
    start: int | None = None
    for ts, price in halts:
        if price == -1 and start is None:
            start = int(ts)
        elif price != -1 and start is not None:
            out.append((start, int(ts)))
            start = None
    if start is not None:
        out.append((start, int(events["ts"].iloc[-1])))
    return out


def _distances(
    own_px: np.ndarray, opp_best: np.ndarray, sign: int, reference: str, levels: int
) -> np.ndarray:
    """Distance ``1..levels`` of each level of one side (0 outside the window or empty).

    ``own_px``: (n, K) prices of the side's levels, ``opp_best``: (n,) opposite best; ``sign`` +1
    for bids, -1 for asks.
    """
    if reference == "opposite":
        d = sign * (opp_best[:, None] - own_px)
    else:
        d = 1.0 + sign * (own_px[:, :1] - own_px)
    d = np.where(np.isfinite(d), d, 0.0)
    d = np.where((d >= 1) & (d <= levels), d, 0.0)
    out: np.ndarray = d.astype(np.int64)
    return out


def _reconcile_l2_trades(
    kind: np.ndarray, side: np.ndarray, price: np.ndarray, size: np.ndarray, notes: Counter[str]
) -> np.ndarray:
    """Cancel sizes of an L2 feed with the executed volume taken off (see module docstring)."""
    size = size.copy()
    pending: dict[tuple[int, int], float] = {}
    idx = np.flatnonzero((kind == TRADE) | (kind == CANCEL))
    reconciled = 0.0
    for j, k, s, p, q in zip(
        idx,
        kind[idx].tolist(),
        side[idx].tolist(),
        price[idx].tolist(),
        size[idx].tolist(),
        strict=True,
    ):
        key = (s, p)
        if k == TRADE:
            pending[key] = pending.get(key, 0.0) + q
            continue
        owed = pending.get(key, 0.0)
        if owed > 0.0:
            take = min(owed, q)
            size[j] = q - take
            reconciled += take
            if owed - take > 0.0:
                pending[key] = owed - take
            else:
                del pending[key]
    notes["l2_cancel_volume_reconciled_with_trades_lots"] += round(reconciled)
    return size


def prepare(
    events: pd.DataFrame,
    book: pd.DataFrame,
    spec: InstrumentSpec,
    *,
    levels: int = 10,
    lot: float | None = None,
    reference: Reference = "auto",
    l2_diffs: bool | None = None,
) -> FlowSample:
    """Build a :class:`FlowSample` from canonical ``events`` and ``book`` frames
    (docs/data.md#canonical-schema).

    :param levels: ``L``, distances ``1..L`` fitted per side.
    :param lot: base units per calibration lot; ``None``: :func:`default_lot`.
    :param reference: how distances are counted (module docstring).
    :param l2_diffs: the ``cancel`` rows are level decreases of an L2 diff stream, which include
        executions (reconciled with the trades, module docstring); ``None``: when the frame has
        the Binance loader's ``update_id`` column and no order ids.
    :raises ValueError: naming the frame and column when the input cannot be used.
    """
    for name, frame, col in (("events", events, "kind"), ("book", book, "bid_px_1")):
        if col not in frame.columns:
            raise ValueError(f"{name}: missing column {col!r} (expected the canonical schema)")
    if len(book) < 2 or len(events) < 2:
        raise ValueError(f"need at least 2 events and 2 book rows, got {len(events)}, {len(book)}")
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    notes: Counter[str] = Counter()
    lot = default_lot(events, spec) if lot is None else float(lot)
    if not lot > 0:
        raise ValueError(f"lot must be > 0 base units, got {lot}")
    scale = spec.lot_size / lot  # feed lots -> calibration lots
    if reference == "auto":
        reference = "opposite" if median_spread(book) <= 2 else "own"
    if reference not in ("opposite", "own"):
        raise ValueError(f"reference must be 'opposite', 'own' or 'auto', not {reference!r}")

    ev_ts = events["ts"].to_numpy(dtype=np.int64)
    bk_ts = book["ts"].to_numpy(dtype=np.int64)
    start_ns = int(min(ev_ts[0], bk_ts[0]))
    end_ns = int(max(ev_ts[-1], bk_ts[-1]))

    # book rows and how long each lasted (halts excluded)
    bid_px, bid_sz, ask_px, ask_sz = book_arrays(book)
    bid_sz = bid_sz * scale
    ask_sz = ask_sz * scale
    row_dt = np.diff(bk_ts, append=end_ns).astype(np.float64) * NS
    halts = _halted(events)
    halted_ev = np.zeros(len(events), dtype=bool)
    for h0, h1 in halts:
        row_dt[(bk_ts >= h0) & (bk_ts < h1)] = 0.0
        halted_ev |= (ev_ts >= h0) & (ev_ts < h1)
    notes["halts"] += len(halts)

    # the book just before each event
    aligned = len(book) == len(events) and np.array_equal(bk_ts, ev_ts)
    if aligned:
        prev = np.arange(len(events)) - 1
    else:
        prev = np.searchsorted(bk_ts, ev_ts, side="left") - 1

    kind = events["kind"].cat.codes.to_numpy().astype(np.int64)
    side = events["side"].to_numpy().astype(np.int64)
    price = events["price"].to_numpy().astype(np.int64)
    size = events["size"].to_numpy(dtype=np.float64)
    aggressor = events["aggressor"].to_numpy().astype(np.int64)
    if l2_diffs is None:
        l2_diffs = "update_id" in events.columns and bool((events["order_id"] == -1).all())
    if l2_diffs:
        size = _reconcile_l2_trades(kind, side, price, size, notes)
    keep = (prev >= 0) & ~halted_ev & np.isin(kind, (ADD, CANCEL, TRADE)) & (size > 0)
    if "hidden" in events.columns:
        hidden = events["hidden"].to_numpy(dtype=bool)
        notes["hidden_executions_excluded"] += int((hidden & (kind == TRADE)).sum())
        keep &= ~hidden
    if "synthetic" in events.columns:  # simulated books: rows no order caused
        synthetic = events["synthetic"].to_numpy(dtype=bool)
        notes["synthetic_rows_excluded"] += int(synthetic.sum())
        keep &= ~synthetic
    notes["events_before_first_book_row"] += int((prev < 0).sum())

    idx = np.flatnonzero(keep)
    kind, side, price, size = kind[idx], side[idx], price[idx], size[idx] * scale
    aggressor, ts, prev = aggressor[idx], ev_ts[idx], prev[idx]

    # market orders: executions with one time stamp and aggressor are one order
    is_trade = kind == TRADE
    new_order = np.ones(idx.size, dtype=bool)
    # an L2 feed's trades of one taker order share the exchange time, not the receive time
    key = ts
    if "exch_ts" in events.columns:
        exch = events["exch_ts"].to_numpy(dtype=np.int64)[idx]
        key = np.where(exch >= 0, exch, ts)
    same = (key[1:] == key[:-1]) & (aggressor[1:] == aggressor[:-1]) & is_trade[:-1] & is_trade[1:]
    new_order[1:] = ~same
    first = ~is_trade | new_order
    group = np.cumsum(first) - 1
    total = np.bincount(group, weights=size)
    notes["executions_merged_into_market_orders"] += int((~first).sum())
    kind, side, price, aggressor, ts, prev = (
        a[first] for a in (kind, side, price, aggressor, ts, prev)
    )
    size = total[group[first]]
    # a market order's price is where it started: the best of the side it hit
    bb, ba = bid_px[prev, 0], ask_px[prev, 0]

    sign = np.where(side > 0, 1, -1)
    if reference == "opposite":
        opp = np.where(side > 0, ba, bb)
        dist_f = sign * (opp - price)
    else:
        own = np.where(side > 0, bb, ba)
        dist_f = 1.0 + sign * (own - price)
        improving = (kind == ADD) & np.isfinite(dist_f) & (dist_f < 1)
        notes["improving_limit_orders"] += int(improving.sum())
        dist_f = np.where(improving, 1.0, dist_f)
    dist_f = np.where(kind == TRADE, np.where(reference == "opposite", np.nan, 1.0), dist_f)
    if reference == "opposite":
        spread_now = ba - bb
        dist_f = np.where(kind == TRADE, spread_now, dist_f)
    dist_f = np.where(np.isfinite(dist_f), dist_f, 0.0)
    dist = np.where((dist_f >= 1) & (dist_f <= levels), dist_f, 0.0).astype(np.int64)

    own_px = np.where(side[:, None] > 0, bid_px[prev], ask_px[prev])
    own_sz = np.where(side[:, None] > 0, bid_sz[prev], ask_sz[prev])
    queue = np.where(own_px == price[:, None].astype(np.float64), own_sz, 0.0).sum(axis=1)
    queue = np.where(kind == TRADE, own_sz[:, 0], queue)

    bid_dist = _distances(bid_px, ask_px[:, 0], 1, reference, levels)
    ask_dist = _distances(ask_px, bid_px[:, 0], -1, reference, levels)
    return FlowSample(
        t=(ts - start_ns) * NS,
        kind=kind,
        side=side,
        price=price,
        size=size,
        dist=dist,
        queue=queue,
        aggressor=aggressor,
        prev=prev,
        row_t=(bk_ts - start_ns) * NS,
        row_dt=row_dt,
        bid_px=bid_px,
        ask_px=ask_px,
        bid_sz=bid_sz,
        ask_sz=ask_sz,
        bid_dist=bid_dist,
        ask_dist=ask_dist,
        levels=levels,
        reference=reference,
        lot=lot,
        spec=spec,
        start_ns=start_ns,
        end_ns=end_ns,
        halts=[((h0 - start_ns) * NS, (h1 - start_ns) * NS) for h0, h1 in halts],
        notes=notes,
    )

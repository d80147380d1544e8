"""A recorded day as the flat arrays the replay kernel reads (the "tape").

Built from the canonical ``events`` and ``book`` frames of :mod:`data`
(docs/data.md#canonical-schema):

- ``t`` float64 seconds since the tape's first event (``ts`` is ns UTC in the frames);
- ``kind`` int8 (``data.schema`` codes ADD, CANCEL, TRADE, SNAPSHOT, HALT), ``side`` int8
  (0 bid, 1 ask: for a trade the resting order's side), ``price`` int64 ticks, ``size`` int64 lots;
- ``added_at`` int64: for an event naming a LOBSTER order id, the index of the event that added
  that order (``-1`` when it was added before the tape starts or the feed has no ids), so that
  "was this order resting when the agent's order went live at event ``c``" is ``added_at < c``;
- ``hidden`` bool: an execution against hidden liquidity (LOBSTER type 5, no visible book change);
- ``row`` int64: the ``book`` row valid just after each event;
- ``book_px`` / ``book_sz`` ``(R, 2, L)`` int64: per book row, side (0 bid, 1 ask) and level from
  the best, price in ticks and others' lots (0 / 0 for an empty level).

``trades_move_book`` is True for LOBSTER (a visible execution removes volume from the book) and
False for Binance L2 (the depth diffs that follow carry a trade's effect, see
:mod:`data.binance`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from data.schema import ADD, HALT, InstrumentSpec, book_arrays, book_levels

NO_ORDER = -1


@dataclass(frozen=True)
class Tape:
    """A recorded market as arrays (layout in the module docstring).

    :param spec: the instrument's units (tick and lot sizes).
    :param has_order_ids: True when events carry order ids (exact queue tracking possible).
    :param trades_move_book: True when a trade event itself removes volume from the book.
    :param ts0: ns UTC of ``t = 0``.
    """

    t: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    added_at: np.ndarray
    hidden: np.ndarray
    row: np.ndarray
    book_px: np.ndarray
    book_sz: np.ndarray
    spec: InstrumentSpec
    has_order_ids: bool
    trades_move_book: bool
    ts0: int

    @property
    def n_events(self) -> int:
        return int(self.t.size)

    @property
    def levels(self) -> int:
        return int(self.book_px.shape[2])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last event."""
        return float(self.t[-1]) if self.t.size else 0.0

    def scales(self, horizon: float) -> tuple[float, float]:
        """Natural scales of the tape for feature normalization (``features.MarketScales``).

        :param horizon: the episode length (seconds).
        :return: ``(price_scale, depth_scale)``: the standard deviation (ticks) of the mid's
            change over ``horizon``, sampled on a grid of that step over the tape (rows with an
            empty side skipped), and the mean others' lots of a non-empty displayed level.
        """
        if horizon <= 0:
            raise ValueError(f"horizon must be > 0 seconds, got {horizon}")
        grid = np.arange(0.0, self.duration + 1e-12, horizon)
        rows = self.row[np.searchsorted(self.t, grid, side="right") - 1]
        both = (self.book_sz[rows, 0, 0] > 0) & (self.book_sz[rows, 1, 0] > 0)
        mid = 0.5 * (self.book_px[rows, 0, 0] + self.book_px[rows, 1, 0])[both]
        price = float(np.std(np.diff(mid))) if mid.size > 2 else 0.0
        sizes = self.book_sz[self.book_sz > 0]
        return price, float(sizes.mean()) if sizes.size else 0.0

    @classmethod
    def from_frames(
        cls,
        events: pd.DataFrame,
        book: pd.DataFrame,
        spec: InstrumentSpec,
        *,
        trades_move_book: bool,
        levels: int | None = None,
    ) -> Tape:
        """The tape of canonical frames.

        ``book`` is either aligned row for row with ``events`` (LOBSTER: row i is the book after
        event i) or a sparser stream of snapshots (Binance: after each diff message); in the
        second case each event reads the last book row at or before its time. Events before the
        first book row are dropped (no book to quote against).

        :param levels: keep this many levels (default all of the frame's).
        :raises ValueError: empty frames, too many levels, or events out of time order.
        """
        if len(events) < 2 or len(book) < 1:
            raise ValueError(
                f"a replay needs at least 2 events and 1 book row, got {len(events)} and "
                f"{len(book)}"
            )
        L_file = book_levels(book)
        L = L_file if levels is None else int(levels)
        if not 1 <= L <= L_file:
            raise ValueError(f"levels={levels} but the book has {L_file} levels")
        ts = events["ts"].to_numpy(np.int64)
        if np.any(np.diff(ts) < 0):
            raise ValueError("events must be sorted by ts")
        book_ts = book["ts"].to_numpy(np.int64)
        if len(book) == len(events) and np.array_equal(book_ts, ts):
            row = np.arange(len(events), dtype=np.int64)
        else:
            row = np.searchsorted(book_ts, ts, side="right").astype(np.int64) - 1
        keep = row >= 0
        first = int(np.argmax(keep)) if keep.any() else len(events)
        if first >= len(events) - 1:
            raise ValueError("no events after the first book row")
        sl = slice(first, None)
        bid_px, bid_sz, ask_px, ask_sz = book_arrays(book)
        px = np.zeros((len(book), 2, L), np.int64)
        sz = np.zeros((len(book), 2, L), np.int64)
        for s, (p, q) in enumerate(((bid_px, bid_sz), (ask_px, ask_sz))):
            p, q = p[:, :L], q[:, :L]
            empty = np.isnan(p) | (q <= 0)
            px[:, s] = np.where(empty, 0, np.nan_to_num(p)).astype(np.int64)
            sz[:, s] = np.where(empty, 0, np.rint(np.nan_to_num(q))).astype(np.int64)
        kind = events["kind"].cat.codes.to_numpy(np.int8)[sl]
        side = np.where(events["side"].to_numpy()[sl] == -1, 1, 0).astype(np.int8)
        oid = events["order_id"].to_numpy(np.int64)[sl]
        has_ids = bool(np.any(oid != NO_ORDER))
        hidden = (
            events["hidden"].to_numpy(bool)[sl] if "hidden" in events else np.zeros(kind.size, bool)
        )
        ts_kept = ts[sl]
        return cls(
            t=(ts_kept - ts_kept[0]).astype(np.float64) * 1e-9,
            kind=kind,
            side=side,
            price=events["price"].to_numpy(np.int64)[sl],
            size=np.rint(events["size"].to_numpy(np.float64)[sl]).astype(np.int64),
            added_at=_added_at(kind, oid, hidden) if has_ids else np.full(kind.size, -1, np.int64),
            hidden=hidden,
            row=row[sl],
            book_px=px,
            book_sz=sz,
            spec=spec,
            has_order_ids=has_ids,
            trades_move_book=trades_move_book,
            ts0=int(ts_kept[0]),
        )


def _added_at(kind: np.ndarray, oid: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Per event, the index of the ``add`` event of its order id (``-1`` if none before it)."""
    n = kind.size
    out = np.full(n, -1, np.int64)
    is_add = kind == ADD
    named = (oid != NO_ORDER) & ~hidden & (kind != HALT)
    frame = pd.DataFrame({"oid": oid, "idx": np.arange(n), "add": is_add})
    adds = frame[is_add].drop_duplicates("oid", keep="first").set_index("oid")["idx"]
    ref = pd.Series(oid[named]).map(adds)
    idx = ref.to_numpy(dtype=np.float64)
    pos = np.flatnonzero(named)
    ok = ~np.isnan(idx)
    out[pos[ok]] = idx[ok].astype(np.int64)
    out[pos[ok][out[pos[ok]] > pos[ok]]] = -1  # an id reused later does not count as earlier
    out[is_add] = np.arange(n)[is_add]
    return out


@lru_cache(maxsize=4)
def _load_cached(
    paths: tuple[str, ...], fmt: str, market: str, symbol: str | None, levels: int
) -> Tape:
    if fmt == "lobster":
        from data.lobster import load_lobster

        md = load_lobster(paths[0])
        return Tape.from_frames(md.events, md.book, md.spec, trades_move_book=True, levels=levels)
    from data.binance import load_binance

    md = load_binance(list(paths), market=market, symbol=symbol, strict=False,  # type: ignore[arg-type]
                      levels=levels)  # fmt: skip
    return Tape.from_frames(md.events, md.book, md.spec, trades_move_book=False, levels=levels)


def load_tape(
    paths: list[Path], fmt: str, market: str = "spot", symbol: str | None = None, levels: int = 10
) -> Tape:
    """Load and convert a recorded day (cached per process: N envs share one tape).

    :raises FileNotFoundError: a path that does not exist (named).
    """
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"replay data file not found: {p}")
    return _load_cached(tuple(str(p) for p in paths), fmt, market, symbol, levels)

"""The canonical market-data frames (docs/data.md#canonical-schema) and the checks every
loader runs on them.

Units are stated where values enter and hold everywhere after:

- time ``ts``: int64 nanoseconds since the Unix epoch, UTC;
- prices: ticks of ``InstrumentSpec.tick_size`` (int64 in ``events``; float64 in ``book`` so that an
  empty level can be ``NaN``);
- sizes: float64 lots of ``InstrumentSpec.lot_size`` (an empty book level has size 0).

``events`` (one row per order-book event, sorted by ``ts``):

=============  =======  ===================================================================
column         dtype    meaning
=============  =======  ===================================================================
``ts``         int64    event time, ns UTC
``kind``       category ``add``, ``cancel``, ``trade``, ``snapshot``, ``halt``
``side``       int8     +1 bid, -1 ask (for a trade: the side of the resting order); 0 for a halt
``price``      int64    ticks
``size``       float64  lots (for add/cancel/trade the quantity added/removed/traded; for
                        ``snapshot`` the absolute size of the level)
``order_id``   int64    the feed's order id, -1 where the feed has none (L2 feeds)
``aggressor``  int8     +1 buyer-initiated, -1 seller-initiated, 0 not a trade
=============  =======  ===================================================================

Loaders may add columns after these (e.g. ``hidden`` for LOBSTER, ``exch_ts`` for Binance); the
canonical ones always come first, in this order.

``book`` (snapshots aligned to events or resampled): ``ts``, ``bid_px_1..L``, ``bid_sz_1..L``,
``ask_px_1..L``, ``ask_sz_1..L``; level 1 is the best. Extra columns may follow.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.errors import DataError

log = logging.getLogger(__name__)

EVENT_KINDS: tuple[str, ...] = ("add", "cancel", "trade", "snapshot", "halt")
"""Event kinds, in the order of their categorical codes."""
ADD, CANCEL, TRADE, SNAPSHOT, HALT = range(len(EVENT_KINDS))
KIND_DTYPE = pd.CategoricalDtype(list(EVENT_KINDS), ordered=False)

BID, ASK = 1, -1
NO_ORDER_ID = -1

EVENT_COLUMNS: tuple[str, ...] = ("ts", "kind", "side", "price", "size", "order_id", "aggressor")
EVENT_DTYPES: dict[str, object] = {
    "ts": np.dtype(np.int64),
    "kind": KIND_DTYPE,
    "side": np.dtype(np.int8),
    "price": np.dtype(np.int64),
    "size": np.dtype(np.float64),
    "order_id": np.dtype(np.int64),
    "aggressor": np.dtype(np.int8),
}


def book_columns(levels: int) -> list[str]:
    """``ts, bid_px_1..L, bid_sz_1..L, ask_px_1..L, ask_sz_1..L`` for ``L = levels``."""
    cols = ["ts"]
    for name in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        cols += [f"{name}_{k}" for k in range(1, levels + 1)]
    return cols


def book_levels(book: pd.DataFrame) -> int:
    """Number of levels per side of a canonical book frame."""
    return sum(1 for c in book.columns if c.startswith("bid_px_"))


def book_arrays(book: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(bid_px, bid_sz, ask_px, ask_sz)`` as ``(n, L)`` float64 arrays (prices in ticks, NaN
    empty)."""
    levels = book_levels(book)
    out = []
    for name in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        cols = [f"{name}_{k}" for k in range(1, levels + 1)]
        out.append(book[cols].to_numpy(dtype=np.float64))
    return out[0], out[1], out[2], out[3]


def make_events(
    ts: np.ndarray,
    kind: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    order_id: np.ndarray,
    aggressor: np.ndarray,
    extra: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Build an ``events`` frame from column arrays; ``kind`` holds codes into ``EVENT_KINDS``."""
    cols: dict[str, object] = {
        "ts": np.asarray(ts, dtype=np.int64),
        "kind": pd.Categorical.from_codes(np.asarray(kind, dtype=np.int8), dtype=KIND_DTYPE),
        "side": np.asarray(side, dtype=np.int8),
        "price": np.asarray(price, dtype=np.int64),
        "size": np.asarray(size, dtype=np.float64),
        "order_id": np.asarray(order_id, dtype=np.int64),
        "aggressor": np.asarray(aggressor, dtype=np.int8),
    }
    for name, values in (extra or {}).items():
        cols[name] = values
    return pd.DataFrame(cols)


def make_book(
    ts: np.ndarray,
    bid_px: np.ndarray,
    bid_sz: np.ndarray,
    ask_px: np.ndarray,
    ask_sz: np.ndarray,
    extra: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Build a ``book`` frame from ``(n, L)`` arrays (prices in ticks with NaN for empty levels)."""
    levels = bid_px.shape[1]
    cols: dict[str, np.ndarray] = {"ts": np.asarray(ts, dtype=np.int64)}
    for name, arr in (
        ("bid_px", bid_px),
        ("bid_sz", bid_sz),
        ("ask_px", ask_px),
        ("ask_sz", ask_sz),
    ):
        arr = np.asarray(arr, dtype=np.float64)
        for k in range(levels):
            cols[f"{name}_{k + 1}"] = arr[:, k]
    for name, values in (extra or {}).items():
        cols[name] = values
    return pd.DataFrame(cols)


@dataclass(frozen=True)
class InstrumentSpec:
    """What one unit of each column means for an instrument.

    :param symbol: the feed's symbol (``GOOG``, ``BTCUSDT``).
    :param tick_size: price of one tick in the quote currency (LOBSTER: 0.01 USD).
    :param lot_size: quantity of one lot in the base unit (LOBSTER: 1 share; Binance: the quantity
        step).
    :param price_scale: raw feed price units per unit of quote currency (LOBSTER: 10000, prices are
        dollars x 10000; Binance: 1, prices arrive as decimal strings in quote currency).
    :param timezone: the venue's local time zone (IANA name); ``ts`` itself is always UTC.
    """

    symbol: str
    tick_size: float
    lot_size: float
    price_scale: float
    timezone: str

    def __post_init__(self) -> None:
        if not (self.tick_size > 0 and self.lot_size > 0 and self.price_scale > 0):
            raise ValueError(f"tick_size, lot_size and price_scale must be positive: {self}")


@dataclass(frozen=True)
class SourceFile:
    """One input file and the SHA-256 of its bytes as stored (compressed if gzip)."""

    path: str
    sha256: str


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def source_file(path: str | Path) -> SourceFile:
    return SourceFile(str(path), sha256_file(path))


GZIP_MAGIC = b"\x1f\x8b"


def read_complete_lines(
    path: str | Path, *, strict: bool, report: ValidationReport, chunk: int = 1 << 20
) -> bytes:
    """The text of a data file (gunzipped when it starts with the gzip magic), as bytes.

    A gzip file cut short (no end-of-stream marker, or a corrupt block) is a defect: under
    ``strict`` a ``DataError`` naming the file and its last complete line (1-based, of the
    decompressed text); otherwise everything up to that line is kept, the partial line after it is
    dropped, and the truncation is counted once as ``truncated_gzip``.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        if fh.read(2) != GZIP_MAGIC:
            fh.seek(0)
            return fh.read()
        fh.seek(0)
        parts: list[bytes] = []
        d = zlib.decompressobj(wbits=31)
        fresh = True  # d has been given no input yet
        complete = True
        while block := fh.read(chunk):
            try:
                while True:  # a file may hold several gzip members one after the other
                    parts.append(d.decompress(block))
                    fresh = False
                    if not (d.eof and d.unused_data):
                        break
                    block, d, fresh = d.unused_data, zlib.decompressobj(wbits=31), True
            except zlib.error:
                complete = False
                break
            if d.eof:  # the next block (if any) starts a new member
                d, fresh = zlib.decompressobj(wbits=31), True
        else:
            complete = fresh
    data = b"".join(parts)
    if complete:
        return data
    cut = data.rfind(b"\n") + 1
    n_lines = data.count(b"\n", 0, cut)
    if strict:
        raise DataError(
            path,
            n_lines or None,
            "gzip stream",
            "a complete gzip file (it is cut off after this line, the last complete one)"
            if n_lines
            else "a complete gzip file (it is cut off before its first complete line)",
        )
    report.drop("truncated_gzip", 1, [f"{path.name}:{n_lines + 1} (cut off)"])
    return data[:cut]


@dataclass
class ValidationReport:
    """Counts of rows dropped and values repaired by reason, with a few example locations each.

    ``dropped`` and ``repaired`` are defects of the data; ``notes`` counts conversions that are not
    defects but lose or bend information (e.g. sub-tick prices rounded to a tick).
    """

    dropped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 5

    def _example(self, reason: str, where: Sequence[str]) -> None:
        ex = self.examples.setdefault(reason, [])
        ex.extend(where[: max(0, self.max_examples - len(ex))])

    def drop(self, reason: str, n: int = 1, where: Sequence[str] = ()) -> None:
        if n:
            self.dropped[reason] += int(n)
            self._example(reason, where)

    def repair(self, reason: str, n: int = 1, where: Sequence[str] = ()) -> None:
        if n:
            self.repaired[reason] += int(n)
            self._example(reason, where)

    def note(self, reason: str, n: int = 1, where: Sequence[str] = ()) -> None:
        if n:
            self.notes[reason] += int(n)
            self._example(reason, where)

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def n_repaired(self) -> int:
        return sum(self.repaired.values())

    @property
    def clean(self) -> bool:
        """No row dropped and nothing repaired."""
        return not self.dropped and not self.repaired

    def __str__(self) -> str:
        parts = []
        for title, counts in (
            ("dropped", self.dropped),
            ("repaired", self.repaired),
            ("notes", self.notes),
        ):
            if counts:
                items = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                parts.append(f"{title}: {items}")
        return "; ".join(parts) if parts else "clean"

    def log(self, logger: logging.Logger = log, what: str = "") -> None:
        level = logging.INFO if self.clean else logging.WARNING
        logger.log(level, "validation%s: %s", f" of {what}" if what else "", self)


@dataclass
class MarketData:
    """A loaded dataset: canonical ``events`` and ``book``, what they mean and where they came from.

    :param events: canonical events frame (see module docstring).
    :param book: canonical book frame (see module docstring).
    :param spec: the instrument's units.
    :param sources: the input files with their SHA-256.
    :param report: what validation dropped or repaired.
    :param quotes: optional best bid/offer stream as published by the venue (Binance
        ``bookTicker``): ``ts, exch_ts, update_id, bid_px, bid_sz, ask_px, ask_sz`` (ticks, lots).
    """

    events: pd.DataFrame
    book: pd.DataFrame
    spec: InstrumentSpec
    sources: tuple[SourceFile, ...]
    report: ValidationReport
    quotes: pd.DataFrame | None = None

    @property
    def levels(self) -> int:
        return book_levels(self.book)


@dataclass(frozen=True)
class RowSource:
    """Where each row of a frame comes from, to name it in a ``DataError``.

    :param paths: the input files.
    :param file_index: per row, the index into ``paths``.
    :param line: per row, the 1-based line number in that file.
    :param fields: canonical column -> the name of that field in the file, for messages.
    """

    paths: tuple[str, ...]
    file_index: np.ndarray
    line: np.ndarray
    fields: Mapping[str, str] = field(default_factory=dict)

    def subset(self, rows: np.ndarray) -> RowSource:
        """The source of ``frame.iloc[rows]``."""
        return RowSource(self.paths, self.file_index[rows], self.line[rows], self.fields)

    def where(self, row: int) -> tuple[str, int]:
        return self.paths[int(self.file_index[row])], int(self.line[row])

    def field_name(self, column: str) -> str:
        return self.fields.get(column, column)

    def describe(self, rows: np.ndarray, limit: int = 5) -> list[str]:
        out = []
        for r in rows[:limit]:
            path, line = self.where(int(r))
            out.append(f"{Path(path).name}:{line}")
        return out


def _fail_or_drop(
    checks: list[tuple[str, str, str, np.ndarray, np.ndarray]],
    n: int,
    *,
    strict: bool,
    report: ValidationReport,
    source: RowSource | None,
    what: str,
) -> np.ndarray:
    """Apply a list of ``(reason, column, expected, bad_mask, values)`` checks.

    Under ``strict`` raise a ``DataError`` for the first bad row (lowest row index; the first check
    in list order on ties); otherwise return the keep-mask, counting each dropped row once under the
    first reason that flagged it.
    """
    keep = np.ones(n, dtype=bool)
    if strict:
        first: tuple[int, int] | None = None
        for j, (_, _, _, bad, _) in enumerate(checks):
            idx = np.flatnonzero(bad)
            if idx.size and (first is None or idx[0] < first[0]):
                first = (int(idx[0]), j)
        if first is not None:
            row, j = first
            reason, column, expected, _, values = checks[j]
            value = values[row]
            got = value.item() if isinstance(value, np.generic) else value
            if source is not None:
                path, line = source.where(row)
                raise DataError(path, line, source.field_name(column), expected, got)
            raise DataError(what, row + 1, column, expected, got)
        return keep
    for reason, _, _, bad, _ in checks:
        newly = bad & keep
        rows = np.flatnonzero(newly)
        if rows.size:
            where = source.describe(rows) if source is not None else [f"row {r}" for r in rows[:5]]
            report.drop(reason, rows.size, where)
            keep &= ~newly
    return keep


def time_backwards(ts: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Rows whose time is earlier than the latest time of the (kept) rows before them."""
    ts = np.asarray(ts, dtype=np.int64)
    if keep is None:
        keep = np.ones(ts.size, dtype=bool)
    masked = np.where(keep, ts, np.iinfo(np.int64).min)
    prev_max = np.maximum.accumulate(masked)
    prev_max = np.concatenate(([np.iinfo(np.int64).min], prev_max[:-1]))
    return keep & (ts < prev_max)


def _checked_rows(ts: np.ndarray, checks: list[Any], **kwargs: Any) -> np.ndarray:
    """Rows kept after the field ``checks``, then after the time-order check on what is left
    (each failure raises or is dropped and counted by :func:`_fail_or_drop`)."""
    n = ts.size
    keep = _fail_or_drop(checks, n, **kwargs)
    back = time_backwards(ts, keep)
    ordered = _fail_or_drop(
        [("time_backwards", "ts", "a time >= the previous row's", back, ts)], n, **kwargs
    )
    result: np.ndarray = keep & ordered
    return result


def validate_events(
    events: pd.DataFrame,
    *,
    strict: bool = True,
    report: ValidationReport | None = None,
    source: RowSource | None = None,
    what: str = "events",
) -> np.ndarray:
    """Check an ``events`` frame; return the mask of rows to keep.

    Checks: known kind, side +1/-1 (0 allowed only for halts), aggressor in {-1, 0, +1} and non-zero
    exactly for trades, size >= 0, time non-decreasing (a row earlier than the latest kept row
    before it is the bad one). ``strict`` raises ``DataError`` naming file, line and field of the
    first bad row; otherwise bad rows are counted in ``report`` and left out of the returned mask.
    """
    report = report if report is not None else ValidationReport()
    codes = events["kind"].cat.codes.to_numpy()
    side = events["side"].to_numpy()
    agg = events["aggressor"].to_numpy()
    size = events["size"].to_numpy(dtype=np.float64)
    is_halt = codes == HALT
    is_trade = codes == TRADE
    checks: list[tuple[str, str, str, np.ndarray, np.ndarray]] = [
        ("unknown_kind", "kind", f"one of {EVENT_KINDS}", codes < 0, events["kind"].to_numpy()),
        ("bad_side", "side", "+1 (bid) or -1 (ask)", ~is_halt & (side != 1) & (side != -1), side),
        (
            "bad_aggressor",
            "aggressor",
            "+1/-1 for a trade, 0 otherwise",
            np.where(is_trade, (agg != 1) & (agg != -1), agg != 0),
            agg,
        ),
        ("negative_size", "size", "a size >= 0", ~(size >= 0), size),
    ]
    return _checked_rows(events["ts"].to_numpy(), checks, strict=strict, report=report,
                         source=source, what=what)  # fmt: skip


def validate_book(
    book: pd.DataFrame,
    *,
    strict: bool = True,
    report: ValidationReport | None = None,
    source: RowSource | None = None,
    what: str = "book",
) -> np.ndarray:
    """Check a ``book`` frame; return the mask of rows to keep.

    Checks: sizes >= 0, a non-empty level has a size > 0 and an empty one size 0, prices strictly
    better toward level 1 on each side, not crossed or locked (``bid_px_1 < ask_px_1`` when both
    exist), time non-decreasing. ``strict`` raises ``DataError`` for the first bad row; otherwise
    bad rows are counted in ``report`` and left out of the returned mask.
    """
    report = report if report is not None else ValidationReport()
    n = len(book)
    bid_px, bid_sz, ask_px, ask_sz = book_arrays(book)
    levels = bid_px.shape[1]
    checks: list[tuple[str, str, str, np.ndarray, np.ndarray]] = []

    def first_col(bad2d: np.ndarray, name: str) -> tuple[np.ndarray, str]:
        # the column named in an error: the first bad level of the first bad row
        rows = np.asarray(bad2d.any(axis=1), dtype=bool)
        if rows.any():
            r = int(np.argmax(rows))
            return rows, f"{name}_{int(np.argmax(bad2d[r])) + 1}"
        return rows, f"{name}_1"

    for side_name, px, sz in (("bid", bid_px, bid_sz), ("ask", ask_px, ask_sz)):
        rows, col = first_col(~(sz >= 0), f"{side_name}_sz")
        checks.append(("negative_size", col, "a size >= 0", rows, book[col].to_numpy()))
        empty = np.isnan(px)
        rows, col = first_col(empty & (sz != 0) | ~empty & (sz == 0), f"{side_name}_sz")
        checks.append(
            (
                "empty_level_size",
                col,
                "size > 0 at a priced level, 0 at an empty one",
                rows,
                book[col].to_numpy(),
            ),
        )
        if levels > 1:
            step = np.diff(px, axis=1)
            bad = (step >= 0) if side_name == "bid" else (step <= 0)
            bad |= np.isnan(px[:, :-1]) & ~np.isnan(px[:, 1:])  # a gap before a priced level
            rows, col = first_col(
                np.concatenate([np.zeros((n, 1), bool), bad], axis=1), f"{side_name}_px"
            )
            order = "decreasing" if side_name == "bid" else "increasing"
            checks.append(
                (
                    "level_order",
                    col,
                    f"{side_name} prices strictly {order} from level 1",
                    rows,
                    book[col].to_numpy(),
                ),
            )
    crossed = bid_px[:, 0] >= ask_px[:, 0]  # NaN compares False: a one-sided book is not crossed
    checks.append(
        (
            "crossed_book",
            "bid_px_1",
            "bid_px_1 < ask_px_1 (book not crossed or locked)",
            crossed,
            book["bid_px_1"].to_numpy(),
        )
    )
    return _checked_rows(book["ts"].to_numpy(), checks, strict=strict, report=report,
                         source=source, what=what)  # fmt: skip

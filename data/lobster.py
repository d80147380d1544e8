"""LOBSTER message + orderbook files -> canonical ``events`` and ``book`` (docs/data.md#lobster).

Format (``LOBSTER_SampleFiles_ReadMe.txt``): no header; the message file has 6 columns ``time``
(seconds after midnight, local exchange time, up to ns decimals), ``type`` (1 submit, 2 partial
cancel, 3 delete, 4 visible execution, 5 hidden execution, 7 halt), ``order_id``, ``size`` (shares),
``price`` (dollars x 10000), ``direction`` (+1 buy limit order, -1 sell limit order); the orderbook
file has ``4 L`` columns ``ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ask_px_2, ...`` and row i is the
book AFTER message i. Empty levels are ``9999999999`` (ask) / ``-9999999999`` (bid) with size 0.

Conversions:

- ``ts``: the file name's date at midnight in US/Eastern (``zoneinfo``) + the seconds, as ns UTC.
  The seconds are wall-clock time after local midnight; the UTC offset in force at 12:00 local that
  day is used, exact for every time after 03:00 local (sessions are 09:30-16:00).
- prices: ticks of $0.01 = 100 raw units (``price_scale = 10000``). Hidden executions (type 5) may
  trade at sub-penny prices (midpoint executions); their price is rounded to the tick on the resting
  order's far side (down for a resting bid, up for a resting ask) and the count is reported as a
  note.
- sizes: lots of one share. Orderbook prices are float64 ticks with ``NaN`` for empty levels.
- events: 1 -> ``add``; 2, 3 -> ``cancel``; 4, 5 -> ``trade`` (``side`` = the resting order's
  direction, ``aggressor = -direction``; ``hidden`` is True for 5); 7 -> ``halt`` (``side`` 0,
  ``size`` 0, ``price`` holds LOBSTER's code: -1 halt, 0 quoting, 1 resume). Extra columns:
  ``hidden`` (bool) and ``msg_type`` (LOBSTER's type, int8, e.g. to tell a partial cancel from a
  delete).

Validation (``strict=True`` raises ``DataError`` naming file, 1-based line and field;
``strict=False`` drops the (message, orderbook) row pair and counts it once in
``MarketData.report``): wrong column counts, non-numeric or empty fields, blank lines, unknown type
or direction, negative or non-positive sizes, non-positive prices, visible prices off the tick grid,
time going backwards (a row earlier than the latest kept row before it), and on the orderbook
negative sizes, misordered levels and crossed or locked rows. Files of different row counts are an
error (strict) or cut to the shorter (counted).

Speed: clean files are parsed by pandas' C parser with explicit dtypes and checked with vectorized
numpy; only a file the C parser rejects is re-read line by line to find and name the bad lines.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from data.errors import DataError
from data.schema import (
    ADD,
    CANCEL,
    HALT,
    TRADE,
    InstrumentSpec,
    MarketData,
    RowSource,
    ValidationReport,
    _fail_or_drop,
    book_arrays,
    make_book,
    make_events,
    source_file,
    validate_book,
    validate_events,
)

log = logging.getLogger(__name__)

TIMEZONE = "America/New_York"
PRICE_SCALE = 10_000  # raw price units per dollar
TICK_SIZE = 0.01  # dollars
RAW_PER_TICK = 100  # raw price units per tick
EMPTY_ASK, EMPTY_BID = 9_999_999_999, -9_999_999_999

MESSAGE_FIELDS = ("time", "type", "order_id", "size", "price", "direction")
_MESSAGE_INT = (False, True, True, True, True, True)

FILE_NAME = re.compile(
    r"^(?P<symbol>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<what>message|orderbook)_(?P<levels>\d+)\.csv(?:\.gz)?$"
)


def parse_file_name(path: str | Path) -> dict[str, object]:
    """Symbol, date, start/end (ms after midnight) and level count from a LOBSTER file name."""
    m = FILE_NAME.match(Path(path).name)
    if m is None:
        raise DataError(
            path,
            None,
            "file name",
            "TICKER_YYYY-MM-DD_START_END_message|orderbook_LEVEL.csv[.gz] "
            "(the date is needed for time)",
        )
    return {
        "symbol": m["symbol"],
        "date": date.fromisoformat(m["date"]),
        "start_ms": int(m["start"]),
        "end_ms": int(m["end"]),
        "what": m["what"],
        "levels": int(m["levels"]),
    }


def session_midnight_ns(day: date, tz: str = TIMEZONE) -> int:
    """Local midnight of ``day`` as ns UTC, using the UTC offset in force at 12:00 local that
    day."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz))
    offset = noon.utcoffset()
    assert offset is not None
    naive_epoch = (datetime(day.year, day.month, day.day) - datetime(1970, 1, 1)).total_seconds()
    return round(naive_epoch - offset.total_seconds()) * 1_000_000_000


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="ascii", errors="replace")
    return open(path, encoding="ascii", errors="replace")


def _read_fast(path: Path, ncols: int, is_int: tuple[bool, ...]) -> list[np.ndarray] | None:
    """C-parser read of a clean numeric CSV; ``None`` if anything is off (then read slowly)."""
    dtype = {j: (np.int64 if is_int[j] else np.float64) for j in range(ncols)}
    try:
        df = pd.read_csv(
            path,
            header=None,
            dtype=dtype,
            engine="c",
            skip_blank_lines=False,
            compression="infer",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    if df.shape[1] != ncols:
        return None
    cols = [df[j].to_numpy() for j in range(ncols)]
    if any(not is_int[j] and np.isnan(cols[j]).any() for j in range(ncols)):
        return None
    return cols


def _read_slow(
    path: Path,
    names: tuple[str, ...],
    is_int: tuple[bool, ...],
    *,
    strict: bool,
    report: ValidationReport,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Find and name the bad lines of a file the fast read rejected; return the good rows.

    Field counts are checked per line (``str.count``), the fields of well-formed lines are checked
    column by column on strings (vectorized), and the good lines are parsed again by the C parser.
    Returns the columns and the 1-based line numbers of the rows kept.
    """
    ncols = len(names)
    with _open_text(path) as fh:
        lines = fh.read().splitlines()
    n = len(lines)
    counts = np.fromiter((ln.count(",") + 1 if ln else 0 for ln in lines), np.int64, n)
    bad_field = np.full(n, -1, np.int64)  # -1 fine, ncols: wrong field count, j: bad field j
    bad_field[counts != ncols] = ncols
    well = np.flatnonzero(counts == ncols)
    if well.size:
        text = "\n".join(lines[i] for i in well)
        df = pd.read_csv(
            io.StringIO(text), header=None, names=list(range(ncols)), dtype=str,
            na_filter=False, quoting=csv.QUOTE_NONE, skip_blank_lines=False,
        )  # fmt: skip
        bad = np.zeros((well.size, ncols), bool)
        for j in range(ncols):
            col = df[j]
            if is_int[j]:
                bad[:, j] = ~col.str.fullmatch(r"[-+]?\d+").to_numpy(dtype=bool)
            else:
                num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
                bad[:, j] = ~np.isfinite(num)
        rows = bad.any(axis=1)
        bad_field[well[rows]] = bad[rows].argmax(axis=1)
    flagged = np.flatnonzero(bad_field >= 0)
    if strict and flagged.size:
        i = int(flagged[0])
        j = int(bad_field[i])
        if j == ncols:
            raise DataError(
                path, i + 1, "columns", f"{ncols} comma-separated fields ({', '.join(names)})",
                int(counts[i]),
            )  # fmt: skip
        value = lines[i].split(",")[j]
        raise DataError(path, i + 1, names[j], "an integer" if is_int[j] else "a number", value)
    for reason, mask in (
        ("wrong_column_count", bad_field == ncols),
        ("non_numeric", (bad_field >= 0) & (bad_field < ncols)),
    ):
        idx = np.flatnonzero(mask)
        report.drop(reason, idx.size, [f"{path.name}:{i + 1}" for i in idx[:5]])
    keep = np.flatnonzero(bad_field < 0)
    dtype = {j: (np.int64 if is_int[j] else np.float64) for j in range(ncols)}
    clean = pd.read_csv(
        io.StringIO("\n".join(lines[i] for i in keep)), header=None, names=list(range(ncols)),
        dtype=dtype, engine="c", quoting=csv.QUOTE_NONE,
    ) if keep.size else pd.DataFrame({j: np.empty(0, dtype[j]) for j in range(ncols)})  # fmt: skip
    return [clean[j].to_numpy() for j in range(ncols)], keep + 1


def _read_numeric_csv(
    path: Path,
    names: tuple[str, ...],
    is_int: tuple[bool, ...],
    *,
    strict: bool,
    report: ValidationReport,
) -> tuple[list[np.ndarray], np.ndarray]:
    cols = _read_fast(path, len(names), is_int)
    if cols is not None:
        return cols, np.arange(1, cols[0].size + 1, dtype=np.int64)
    return _read_slow(path, names, is_int, strict=strict, report=report)


def _book_field_names(levels: int) -> dict[str, str]:
    out = {"ts": "time (message file)"}
    for k in range(1, levels + 1):
        base = 4 * (k - 1)
        for name, off in (("ask_px", 0), ("ask_sz", 1), ("bid_px", 2), ("bid_sz", 3)):
            out[f"{name}_{k}"] = f"{name}_{k} (column {base + off + 1})"
    return out


def load_lobster(
    message_path: str | Path,
    orderbook_path: str | Path | None = None,
    *,
    strict: bool = True,
    levels: int | None = None,
) -> MarketData:
    """Load a LOBSTER message file and its orderbook file into the canonical schema.

    :param message_path: ``TICKER_DATE_START_END_message_L.csv[.gz]``; the name gives symbol, date,
        L.
    :param orderbook_path: the orderbook file; ``None`` looks for the sibling ``..._orderbook_L``
        file (if there is none, ``book`` is empty and a note is reported).
    :param strict: raise ``DataError`` at the first bad row (file, 1-based line, field); if False
        drop bad (message, orderbook) row pairs and count them by reason in ``report``.
    :param levels: keep only the first ``levels`` levels of the book (default: all in the file).
    :return: ``MarketData`` with ``events`` (one per message, in file order) and ``book`` (row i =
        the book after event i) aligned row for row, ``spec`` in ticks of $0.01 and lots of one
        share.
    """
    message_path = Path(message_path)
    meta = parse_file_name(message_path)
    file_levels = int(meta["levels"])  # type: ignore[call-overload]
    if orderbook_path is None:
        sibling = message_path.with_name(message_path.name.replace("_message_", "_orderbook_"))
        orderbook_path = sibling if sibling.exists() else None
    ob_path = Path(orderbook_path) if orderbook_path is not None else None
    report = ValidationReport()

    msg_cols, msg_lines = _read_numeric_csv(
        message_path,
        MESSAGE_FIELDS,
        _MESSAGE_INT,
        strict=strict,
        report=report,
    )
    if ob_path is not None:
        ob_first = _peek_field_count(ob_path)
        if ob_first % 4 != 0 or ob_first == 0:
            raise DataError(
                ob_path,
                1,
                "columns",
                "4 x levels fields (ask_px, ask_sz, bid_px, bid_sz, ...)",
                ob_first,
            )
        file_levels = ob_first // 4
        ob_names = tuple(
            f"{n}_{k}"
            for k in range(1, file_levels + 1)
            for n in ("ask_px", "ask_sz", "bid_px", "bid_sz")
        )
        ob_cols, ob_lines = _read_numeric_csv(
            ob_path,
            ob_names,
            (True,) * len(ob_names),
            strict=strict,
            report=report,
        )
    L = file_levels if levels is None else int(levels)
    if not 1 <= L <= file_levels:
        raise ValueError(f"levels={levels} but the files have {file_levels} levels")

    # align (message line i) <-> (orderbook line i); rows dropped while parsing one file drop the
    # pair
    if ob_path is not None:
        n_msg_lines = int(msg_lines[-1]) if msg_lines.size else 0
        n_ob_lines = int(ob_lines[-1]) if ob_lines.size else 0
        if n_msg_lines != n_ob_lines:
            if strict:
                raise DataError(
                    ob_path,
                    min(n_msg_lines, n_ob_lines) + 1,
                    "rows",
                    f"as many rows as the message file {message_path.name} ({n_msg_lines})",
                    n_ob_lines,
                )
            report.drop("row_count_mismatch", abs(n_msg_lines - n_ob_lines))
        common, im, ib = np.intersect1d(
            msg_lines, ob_lines, assume_unique=True, return_indices=True
        )
        unmatched = msg_lines.size + ob_lines.size - 2 * common.size
        if unmatched and not strict:
            report.note("row_dropped_with_its_counterpart", unmatched)
        msg_cols = [c[im] for c in msg_cols]
        ob_cols = [c[ib] for c in ob_cols]
        msg_lines = common
    time_s, mtype, order_id, size, price_raw, direction = msg_cols
    n = time_s.size

    # --- message-level checks (the raw fields) ---
    msg_source = RowSource(
        (str(message_path),),
        np.zeros(n, np.int64),
        msg_lines,
        {"ts": "time", "side": "direction", "size": "size", "price": "price", "kind": "type"},
    )
    is_visible = (mtype >= 1) & (mtype <= 4)
    is_order = is_visible | (mtype == 5)
    checks = [
        (
            "unknown_type",
            "kind",
            "a type in {1, 2, 3, 4, 5, 7}",
            ~np.isin(mtype, (1, 2, 3, 4, 5, 7)),
            mtype,
        ),
        (
            "bad_direction",
            "side",
            "+1 (buy) or -1 (sell)",
            (direction != 1) & (direction != -1),
            direction,
        ),
        ("negative_size", "size", "a size > 0", is_order & ~(size > 0) | ~(size >= 0), size),
        ("bad_price", "price", "a price > 0", is_order & ~(price_raw > 0), price_raw),
        (
            "off_tick_price",
            "price",
            f"a multiple of {RAW_PER_TICK} (one tick of ${TICK_SIZE})",
            is_visible & (price_raw % RAW_PER_TICK != 0),
            price_raw,
        ),
    ]
    keep = _fail_or_drop(
        checks, n, strict=strict, report=report, source=msg_source, what=str(message_path)
    )

    # --- conversions ---
    day = meta["date"]
    assert isinstance(day, date)
    ts = session_midnight_ns(day) + np.rint(time_s * 1e9).astype(np.int64)
    kind = np.full(n, ADD, np.int8)
    kind[(mtype == 2) | (mtype == 3)] = CANCEL
    kind[(mtype == 4) | (mtype == 5)] = TRADE
    kind[mtype == 7] = HALT
    is_trade = kind == TRADE
    is_halt = mtype == 7
    hidden = mtype == 5
    side = np.where(is_halt, 0, direction).astype(np.int8)
    aggressor = np.where(is_trade, -direction, 0).astype(np.int8)
    # ticks: floor for a resting bid, ceil for a resting ask (only sub-penny hidden executions
    # differ)
    floor_t = np.floor_divide(price_raw, RAW_PER_TICK)
    ceil_t = -np.floor_divide(-price_raw, RAW_PER_TICK)
    price = np.where(is_halt, price_raw, np.where(direction > 0, floor_t, ceil_t))
    subtick = hidden & (price_raw % RAW_PER_TICK != 0) & keep
    report.note(
        "hidden_subtick_price_rounded",
        int(subtick.sum()),
        msg_source.describe(np.flatnonzero(subtick)),
    )
    events = make_events(
        ts,
        kind,
        side,
        price,
        size.astype(np.float64),
        order_id,
        aggressor,
        extra={"hidden": hidden, "msg_type": mtype.astype(np.int8)},
    )
    kept = np.flatnonzero(keep)
    keep_e = validate_events(
        events.iloc[kept],
        strict=strict,
        report=report,
        source=msg_source.subset(kept),
        what=str(message_path),
    )
    keep[kept[~keep_e]] = False

    # --- the book ---
    if ob_path is not None:
        book = _book_frame(ts, ob_cols, file_levels, L)
        book_source = RowSource(
            (str(ob_path),), np.zeros(n, np.int64), msg_lines, _book_field_names(L)
        )
        kept = np.flatnonzero(keep)
        keep_b = validate_book(
            book.iloc[kept],
            strict=strict,
            report=report,
            source=book_source.subset(kept),
            what=str(ob_path),
        )
        keep[kept[~keep_b]] = False
    else:
        book = _book_frame(ts[:0], [np.empty(0, np.int64)] * (4 * L), L, L)
        report.note("no_orderbook_file")

    if not keep.all():
        events = events.loc[keep].reset_index(drop=True)
        if len(book):
            book = book.loc[keep].reset_index(drop=True)
    sources = (source_file(message_path),) + (
        (source_file(ob_path),) if ob_path is not None else ()
    )
    spec = InstrumentSpec(
        symbol=str(meta["symbol"]),
        tick_size=TICK_SIZE,
        lot_size=1.0,
        price_scale=PRICE_SCALE,
        timezone=TIMEZONE,
    )
    report.log(log, message_path.name)
    return MarketData(events=events, book=book, spec=spec, sources=sources, report=report)


def _peek_field_count(path: Path) -> int:
    with _open_text(path) as fh:
        first = fh.readline().rstrip("\r\n")
    return len(first.split(",")) if first else 0


def _book_frame(
    ts: np.ndarray, ob_cols: list[np.ndarray], file_levels: int, levels: int
) -> pd.DataFrame:
    n = ts.size

    def side(offset: int, empty: int) -> tuple[np.ndarray, np.ndarray]:
        px = np.empty((n, levels), np.float64)
        sz = np.empty((n, levels), np.float64)
        for k in range(levels):
            raw = ob_cols[4 * k + offset]
            px[:, k] = np.where(raw == empty, np.nan, raw / RAW_PER_TICK)
            sz[:, k] = ob_cols[4 * k + offset + 1]
        return px, sz

    ask_px, ask_sz = side(0, EMPTY_ASK)
    bid_px, bid_sz = side(2, EMPTY_BID)
    return make_book(ts, bid_px, bid_sz, ask_px, ask_sz)


def check_book_consistency(md: MarketData) -> dict[str, np.ndarray]:
    """Rows whose book differs from the previous row by something other than their message's effect.

    For each visible event (add/cancel/visible trade) whose price lies inside the displayed levels
    both before and after, the size at that price must change by exactly ``+size`` (add) or
    ``-size``; the other side of the book must not change. Hidden executions and halts must leave
    the book unchanged. Returns ``{"size_delta": rows, "other_side": rows, "unchanged": rows,
    "checked": rows}`` (indices).
    """
    ev, book = md.events, md.book
    bid_px, bid_sz, ask_px, ask_sz = book_arrays(book)
    side = ev["side"].to_numpy()
    price = ev["price"].to_numpy().astype(np.float64)
    size = ev["size"].to_numpy()
    mtype = ev["msg_type"].to_numpy()
    is_bid = (side[1:] == 1)[:, None]  # row i's side, applied to rows i-1 and i alike
    px0, px1 = np.where(is_bid, bid_px[:-1], ask_px[:-1]), np.where(is_bid, bid_px[1:], ask_px[1:])
    sz0, sz1 = np.where(is_bid, bid_sz[:-1], ask_sz[:-1]), np.where(is_bid, bid_sz[1:], ask_sz[1:])
    opx0, opx1 = (
        np.where(is_bid, ask_px[:-1], bid_px[:-1]),
        np.where(is_bid, ask_px[1:], bid_px[1:]),
    )
    osz0, osz1 = (
        np.where(is_bid, ask_sz[:-1], bid_sz[:-1]),
        np.where(is_bid, ask_sz[1:], bid_sz[1:]),
    )
    p = price[1:, None]
    before = np.where(px0 == p, sz0, 0.0).sum(axis=1)
    after = np.where(px1 == p, sz1, 0.0).sum(axis=1)

    def inside(levels_px: np.ndarray, bid: np.ndarray) -> np.ndarray:
        full = ~np.isnan(levels_px).any(axis=1)
        last = levels_px[:, -1]
        within = np.where(bid, price[1:] >= last, price[1:] <= last)
        return ~full | within

    bid1 = side[1:] == 1
    ok_window = inside(px0, bid1) & inside(px1, bid1)
    visible = (mtype[1:] >= 1) & (mtype[1:] <= 4)
    expected = np.where(mtype[1:] == 1, size[1:], -size[1:])
    checked = visible & ok_window
    bad_delta = checked & (after - before != expected)

    def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)

    other_changed = visible & ~(same(opx0, opx1) & same(osz0, osz1))
    frozen = (mtype[1:] == 5) | (mtype[1:] == 7)
    all_same = (
        same(bid_px[:-1], bid_px[1:])
        & same(bid_sz[:-1], bid_sz[1:])
        & same(ask_px[:-1], ask_px[1:])
        & same(ask_sz[:-1], ask_sz[1:])
    )
    return {
        "size_delta": np.flatnonzero(bad_delta) + 1,
        "other_side": np.flatnonzero(other_changed) + 1,
        "unchanged": np.flatnonzero(frozen & ~all_same) + 1,
        "checked": np.flatnonzero(checked) + 1,
    }

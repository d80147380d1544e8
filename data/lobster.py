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
``MarketData.report``): wrong column counts, non-numeric, infinite or empty fields, blank lines,
unknown type or direction, non-positive sizes or prices, visible prices off the tick grid, a time
outside [0, 86400) s, time going backwards (a row earlier than the latest kept row before it), an
add whose order id is still live, a visible line repeated in both files, and on the orderbook
negative sizes, misordered levels and crossed or locked rows. A gzip file cut short is an error
(strict) or read up to its last complete line (counted).

Every row is checked against the previous orderbook row (:func:`_transition_check`: the message
must explain the book's change). A message that does not is dropped with its row. When the two
files fall out of step (a line missing or extra in one of them) the loader finds the offset at which
they agree again (a run of ``RUN_ROWS`` consistent rows, ``MAX_SHIFT`` lines at most) and drops the
lines in between, counted as unmatched message or orderbook lines; if they never agree again the
rest is dropped. Under ``strict`` the first such row is the error.

Speed: clean files are parsed by pandas' C parser with explicit dtypes and checked with vectorized
numpy (the book check too: one pass over all rows, repeated at another offset only after a
mismatch); only a file the C parser rejects is re-read line by line to find and name the bad
lines.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
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
    read_complete_lines,
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
SECONDS_PER_DAY = 86_400

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


def _read_fast(raw: bytes, ncols: int, is_int: tuple[bool, ...]) -> list[np.ndarray] | None:
    """C-parser read of a clean numeric CSV; ``None`` if anything is off (then read slowly)."""
    dtype = {j: (np.int64 if is_int[j] else np.float64) for j in range(ncols)}
    try:
        df = pd.read_csv(
            io.BytesIO(raw), header=None, dtype=dtype, engine="c", skip_blank_lines=False
        )
    except (ValueError, pd.errors.ParserError):
        return None
    if df.shape[1] != ncols:
        return None
    cols = [df[j].to_numpy() for j in range(ncols)]
    if any(not is_int[j] and not np.isfinite(cols[j]).all() for j in range(ncols)):
        return None  # NaN, inf: named by the slow read
    return cols


def _read_slow(
    path: Path,
    raw: bytes,
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
    lines = raw.decode("ascii", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    n = len(lines)
    counts = np.fromiter((ln.count(",") + 1 if ln else 0 for ln in lines), np.int64, n)
    bad_field = np.full(n, -1, np.int64)  # -1 fine, ncols: wrong field count, j: bad field j
    bad_field[counts != ncols] = ncols
    well = np.flatnonzero(counts == ncols)
    infinite = np.zeros(n, bool)  # a field is inf or -inf ("inf", "1e999")
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
                infinite[well[np.isinf(num)]] = True
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
        raise DataError(
            path, i + 1, names[j], "an integer" if is_int[j] else "a finite number", value
        )
    for reason, mask in (
        ("wrong_column_count", bad_field == ncols),
        ("non_finite_number", (bad_field >= 0) & (bad_field < ncols) & infinite),
        ("non_numeric", (bad_field >= 0) & (bad_field < ncols) & ~infinite),
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
    raw: bytes,
    names: tuple[str, ...],
    is_int: tuple[bool, ...],
    *,
    strict: bool,
    report: ValidationReport,
) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Columns, 1-based line numbers of the rows kept, and the number of lines in the file."""
    n_lines = raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)
    cols = _read_fast(raw, len(names), is_int)
    if cols is not None and cols[0].size == n_lines:
        return cols, np.arange(1, cols[0].size + 1, dtype=np.int64), n_lines
    cols, lines = _read_slow(path, raw, names, is_int, strict=strict, report=report)
    return cols, lines, n_lines


def _book_field_names(levels: int) -> dict[str, str]:
    out = {"ts": "time (message file)"}
    for k in range(1, levels + 1):
        base = 4 * (k - 1)
        for name, off in (("ask_px", 0), ("ask_sz", 1), ("bid_px", 2), ("bid_sz", 3)):
            out[f"{name}_{k}"] = f"{name}_{k} (column {base + off + 1})"
    return out


def _message_checks(
    time_s: np.ndarray,
    mtype: np.ndarray,
    size: np.ndarray,
    price_raw: np.ndarray,
    direction: np.ndarray,
) -> list[tuple[str, str, str, np.ndarray, np.ndarray]]:
    """The checks of the raw message fields, as ``(reason, column, expected, bad, values)``."""
    is_visible = (mtype >= 1) & (mtype <= 4)
    is_order = is_visible | (mtype == 5)
    return [
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
        (
            "bad_time",
            "ts",
            f"seconds after midnight, finite and in [0, {SECONDS_PER_DAY})",
            ~((time_s >= 0) & (time_s < SECONDS_PER_DAY)),
            time_s,
        ),
    ]


def _reused_order_id(
    mtype: np.ndarray, order_id: np.ndarray, size: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Adds whose order id is still live: added before (among ``rows``) and not yet deleted or
    fully executed. Returns the bad mask over all rows and, per row, the row of the live add."""
    n = mtype.size
    bad = np.zeros(n, bool)
    first = np.full(n, -1, np.int64)
    rows = rows[(mtype[rows] >= 1) & (mtype[rows] <= 4)]
    if not rows.size:
        return bad, first
    order = np.lexsort((rows, order_id[rows]))
    r = rows[order]
    oid, t = order_id[r], mtype[r]
    signed = np.where(t == 1, size[r], -size[r]).astype(np.float64)
    new_group = np.ones(r.size, bool)
    new_group[1:] = oid[1:] != oid[:-1]
    before = np.cumsum(signed) - signed  # running total before each row, over all groups
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(r.size), 0))
    live_before = before - before[group_start]  # this order's remaining size before the row
    is_add = t == 1
    add_pos = np.where(is_add, np.arange(r.size), -1)
    last_add = np.maximum.accumulate(add_pos)  # the latest add at or before, in any group
    prev_add = np.concatenate(([-1], last_add[:-1]))
    has_add = (prev_add >= group_start) & ~new_group
    flagged = is_add & has_add & (live_before > 0)
    bad[r[flagged]] = True
    first[r[flagged]] = r[prev_add[flagged]]
    return bad, first


# ------------------------------------------------------------------- message <-> book alignment
RUN_ROWS = 12  # a resynchronization needs this many rows in a row without a mismatch ...
RUN_CHECKED = 4  # ... of which at least this many are checked against the book
MAX_SHIFT = 3  # lines one file may be ahead of the other
SEARCH_ROWS = 2000  # rows searched for the files to agree again


def _rows_equal(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> np.ndarray:
    """Per row: the ``(n, L)`` arrays of ``a`` equal those of ``b`` (NaN equal to NaN)."""
    out = np.ones(a[0].shape[0], bool)
    for x, y in zip(a, b, strict=True):
        out &= ((x == y) | (np.isnan(x) & np.isnan(y))).all(axis=1)
    return out


def _transition_check(
    prev: tuple[np.ndarray, ...],
    cur: tuple[np.ndarray, ...],
    side: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    mtype: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Does each message explain the change from the book ``prev`` to the book ``cur``?

    ``prev``/``cur`` are ``(bid_px, bid_sz, ask_px, ask_sz)`` arrays ``(n, L)`` (ticks, NaN empty);
    the message fields are ``(n,)`` (price in ticks). A visible message (types 1-4) whose price lies
    inside the displayed levels before and after must change the size at that price by ``+size``
    (add) or ``-size``; its other side must not change. Hidden executions and halts leave the book
    unchanged. Returns the masks ``(size_delta, other_side, unchanged, checked)``.
    """
    bid_px0, bid_sz0, ask_px0, ask_sz0 = prev
    bid_px1, bid_sz1, ask_px1, ask_sz1 = cur
    bid = side == 1
    is_bid = bid[:, None]
    px0, px1 = np.where(is_bid, bid_px0, ask_px0), np.where(is_bid, bid_px1, ask_px1)
    sz0, sz1 = np.where(is_bid, bid_sz0, ask_sz0), np.where(is_bid, bid_sz1, ask_sz1)
    p = price[:, None]
    before = np.where(px0 == p, sz0, 0.0).sum(axis=1)
    after = np.where(px1 == p, sz1, 0.0).sum(axis=1)

    def inside(levels_px: np.ndarray) -> np.ndarray:
        full = ~np.isnan(levels_px[:, -1])  # levels fill from level 1: the last is priced
        last = levels_px[:, -1]
        return ~full | np.where(bid, price >= last, price <= last)

    visible = (mtype >= 1) & (mtype <= 4)
    checked = visible & inside(px0) & inside(px1)
    expected = np.where(mtype == 1, size, -size)
    bad_delta = checked & (after - before != expected)
    bid_same, ask_same = _rows_equal(prev[:2], cur[:2]), _rows_equal(prev[2:], cur[2:])
    other_changed = visible & ~np.where(bid, ask_same, bid_same)
    changed = ((mtype == 5) | (mtype == 7)) & ~(bid_same & ask_same)
    return bad_delta, other_changed, changed, checked


@dataclass
class _State:
    """Consistency of every message line with the book lines ``d`` further on."""

    bad: np.ndarray  # int8: 0 fine or not checkable, 1 size, 2 other side, 3 book changed
    checked: np.ndarray  # bool
    bad_cum: np.ndarray  # prefix sums (length n + 1)
    checked_cum: np.ndarray


@dataclass
class _Problem:
    kind: str  # "mismatch", "shift", "out_of_step"
    msg_index: int  # 0-based message line
    book_index: int  # 0-based orderbook line (the book after the message)
    bad: int
    agree_msg: int = -1  # where the files agree again (0-based message and book lines)
    agree_book: int = -1


class _Aligner:
    """Pairs message lines with orderbook lines, resynchronizing after a missing or extra line.

    Works in line space: ``msg`` holds the message fields by 0-based line (zeros where a line did
    not parse), ``m_ok`` the lines whose fields are valid; ``book`` the orderbook arrays by line and
    ``b_ok`` the valid orderbook lines. A pair (message i, book j) is checked against book j - 1.
    """

    def __init__(
        self,
        msg: dict[str, np.ndarray],
        m_ok: np.ndarray,
        m_dup: np.ndarray,
        book: tuple[np.ndarray, ...],
        b_ok: np.ndarray,
    ) -> None:
        self.msg, self.m_ok, self.m_dup, self.book, self.b_ok = msg, m_ok, m_dup, book, b_ok
        self.nm, self.nb = m_ok.size, b_ok.size
        self._states: dict[int, _State] = {}

    def state(self, d: int) -> _State:
        if d in self._states:
            return self._states[d]
        mi = np.arange(self.nm)
        bj = mi + d
        valid = (bj >= 1) & (bj < self.nb)
        idx = np.flatnonzero(valid)
        cur_j, m = bj[idx], mi[idx]
        ok = self.m_ok[m] & self.b_ok[cur_j] & self.b_ok[cur_j - 1]
        idx, cur_j, m = idx[ok], cur_j[ok], m[ok]
        if cur_j.size and cur_j[-1] - cur_j[0] + 1 == cur_j.size:  # contiguous: views
            lo, hi = int(cur_j[0]), int(cur_j[-1]) + 1
            prev = tuple(a[lo - 1 : hi - 1] for a in self.book)
            cur = tuple(a[lo:hi] for a in self.book)
        else:
            prev = tuple(a[cur_j - 1] for a in self.book)
            cur = tuple(a[cur_j] for a in self.book)
        delta, other, changed, checked = _transition_check(
            prev, cur, self.msg["direction"][m], self.msg["price"][m] / RAW_PER_TICK,
            self.msg["size"][m].astype(np.float64), self.msg["type"][m],
        )  # fmt: skip
        # a line copied in both files: named by the duplicate check on the pairs, not here
        dup = self.m_dup[m]
        if dup.any():
            rows = np.flatnonzero(dup)
            dup[rows] = _rows_equal(tuple(a[rows] for a in prev), tuple(a[rows] for a in cur))
        kind = np.where(delta, 1, np.where(other, 2, np.where(changed, 3, 0))).astype(np.int8)
        kind[dup] = 0
        bad = np.zeros(self.nm, np.int8)
        chk = np.zeros(self.nm, bool)
        bad[idx] = kind
        frozen = (self.msg["type"][m] == 5) | (self.msg["type"][m] == 7)
        chk[idx] = (checked | frozen) & ~dup
        st = _State(
            bad,
            chk,
            np.concatenate(([0], np.cumsum(bad > 0))),
            np.concatenate(([0], np.cumsum(chk))),
        )
        self._states[d] = st
        return st

    def _run_start(self, d: int, lo: int) -> int | None:
        """The first message line >= ``lo`` that starts a run of consistent rows at offset
        ``d``."""
        hi = min(self.nm, self.nb - d)
        if lo >= hi:
            return None
        st = self.state(d)
        i = np.arange(lo, min(hi, lo + SEARCH_ROWS))
        end = np.minimum(i + RUN_ROWS, hi)
        n_bad = st.bad_cum[end] - st.bad_cum[i]
        n_chk = st.checked_cum[end] - st.checked_cum[i]
        good = (n_bad == 0) & (n_chk >= np.minimum(RUN_CHECKED, (end - i + 2) // 3))
        hit = np.flatnonzero(good)
        return int(i[hit[0]]) if hit.size else None

    def align(self) -> tuple[np.ndarray, np.ndarray, list[_Problem], tuple[int, int]]:
        """Pairs ``(message lines, orderbook lines)`` (0-based), the problems found in file order,
        and the last message and orderbook lines consumed."""
        out_m: list[np.ndarray] = []
        out_b: list[np.ndarray] = []
        problems: list[_Problem] = []
        pos, d = 0, 0
        last_m, last_b = -1, -1

        def emit(rows: np.ndarray, d: int) -> None:
            nonlocal last_m, last_b
            out_m.append(rows)
            out_b.append(rows + d)
            if rows.size:
                last_m, last_b = int(rows[-1]), int(rows[-1]) + d

        while True:
            hi = min(self.nm, self.nb - d)
            if pos >= hi:
                break
            st = self.state(d)
            nz = np.flatnonzero(st.bad[pos:hi])
            if not nz.size:
                emit(np.arange(pos, hi), d)
                break
            i0 = pos + int(nz[0])
            emit(np.arange(pos, i0), d)
            last_m, last_b = i0 - 1, i0 - 1 + d  # consumed, emitted or not
            best: tuple[int, int] | None = None
            for dd in [d] + [d + s * k for k in range(1, MAX_SHIFT + 1) for s in (-1, 1)]:
                # a new offset starts where its book lines are not used yet
                i1 = self._run_start(dd, i0 + 1 if dd == d else max(i0, i0 + d - dd))
                if i1 is not None and (best is None or i1 < best[1]):
                    best = (dd, i1)
            if best is None:  # the files never agree again: stop here
                problems.append(_Problem("out_of_step", i0, i0 + d, int(st.bad[i0])))
                break
            dd, i1 = best
            if dd == d:  # messages that do not match their book change, at the same offset
                rows = np.arange(i0, i1)
                bad = st.bad[rows] > 0
                problems += [
                    _Problem("mismatch", int(r), int(r) + d, int(st.bad[r])) for r in rows[bad]
                ]
                emit(rows[~bad], d)
                last_m, last_b = i1 - 1, i1 - 1 + d
                pos = i1
                continue
            # one file is ahead: the pair before the run is its base (the book its first row
            # is checked against) unless that book line is already used
            base = i1 - 1
            start = base if base >= i0 and base + dd > last_b else i1
            problems.append(_Problem("shift", i0, i0 + d, int(st.bad[i0]), start, start + dd))
            last_m, last_b = start - 1, start - 1 + dd  # the lines before are dropped
            if start == base:  # its own check fails: its previous book line is the lost one
                emit(np.array([base]), dd)
            d, pos = dd, i1
        return (
            np.concatenate(out_m) if out_m else np.empty(0, np.int64),
            np.concatenate(out_b) if out_b else np.empty(0, np.int64),
            problems,
            (last_m, last_b),
        )


def _mismatch_error(
    p: _Problem, msg: dict[str, np.ndarray], message_path: Path, ob_path: Path
) -> DataError:
    i, j = p.msg_index, p.book_index
    lines = f"orderbook lines {j} and {j + 1} ({ob_path.name})"
    if p.kind == "shift":
        behind = p.agree_book - p.agree_msg < j - i
        cause = (
            "a line missing from the orderbook file or extra in the message file"
            if behind
            else "a line missing from the message file or extra in the orderbook file"
        )
        return DataError(
            ob_path, j + 1, "rows",
            f"orderbook line {j + 1} to be the book after message line {i + 1}; the files agree "
            f"again from message line {p.agree_msg + 1} = orderbook line {p.agree_book + 1} "
            f"({cause})",
        )  # fmt: skip
    tail = "" if p.kind == "mismatch" else "; the files do not agree again after it"
    if p.bad == 1:
        return DataError(
            message_path, i + 1, "size",
            f"the size change at its price on its side between {lines}{tail}",
            int(msg["size"][i]),
        )  # fmt: skip
    if p.bad == 2:
        return DataError(
            message_path, i + 1, "direction",
            f"the side that changes between {lines} (the other side changes too){tail}",
            int(msg["direction"][i]),
        )  # fmt: skip
    return DataError(
        message_path, i + 1, "type",
        f"a type that changes the book, since {lines} differ (types 5 and 7 change nothing)"
        f"{tail}",
        int(msg["type"][i]),
    )  # fmt: skip


def _line_space(cols: list[np.ndarray], lines: np.ndarray, n: int) -> list[np.ndarray]:
    """The columns by 0-based line of the file (zeros where a line did not parse)."""
    if lines.size == n:  # every line parsed (``lines`` is 1..n): the columns as they are
        return cols
    out = []
    for c in cols:
        full = np.zeros(n, c.dtype)
        full[lines - 1] = c
        out.append(full)
    return out


def _book_sides(
    ob_cols: list[np.ndarray], levels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(bid_px, bid_sz, ask_px, ask_sz)`` of orderbook columns, ``(n, levels)`` (ticks, NaN
    empty)."""
    n = ob_cols[0].size if ob_cols else 0

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
    return bid_px, bid_sz, ask_px, ask_sz


@dataclass
class _BookLines:
    """The orderbook file by 0-based line: ``(bid_px, bid_sz, ask_px, ask_sz)`` (all levels) and
    whether each line passed ``validate_book``."""

    sides: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    ok: np.ndarray


def _align_files(
    message_path: Path,
    ob_path: Path,
    msg_cols: list[np.ndarray],
    msg_lines: np.ndarray,
    n_msg: int,
    ob_cols: list[np.ndarray],
    ob_lines: np.ndarray,
    n_ob: int,
    file_levels: int,
    *,
    strict: bool,
    report: ValidationReport,
) -> tuple[np.ndarray, np.ndarray, DataError | None, int, _BookLines]:
    """Pair the rows of the two files: indices into ``msg_cols`` and ``ob_cols``.

    Every pair is checked: the message must explain the change from the previous orderbook line
    (:func:`_transition_check`). A message that does not is dropped with its orderbook line
    (``message_does_not_match_book``); when the files fall out of step (a line missing or extra in
    one of them), the lines until they agree again are dropped (``unmatched_message_line``,
    ``unmatched_orderbook_line``); when they never agree again the rest is dropped
    (``out_of_step_to_end``). Under ``strict`` the first of these is returned as a ``DataError``
    with the 0-based message line it concerns, to be raised unless an earlier line is bad. Also
    returns the orderbook arrays and their validity by line, to be reused.
    """
    fields = dict(zip(MESSAGE_FIELDS, _line_space(msg_cols, msg_lines, n_msg), strict=True))
    m_present = np.zeros(n_msg, bool)
    m_present[msg_lines - 1] = True
    checks = _message_checks(
        fields["time"], fields["type"], fields["size"], fields["price"], fields["direction"]
    )
    m_ok = m_present.copy()
    for _, _, _, bad, _ in checks:
        m_ok &= ~bad
    m_dup = np.zeros(n_msg, bool)
    if n_msg > 1:
        same = m_present[1:] & m_present[:-1]
        for c in fields.values():
            same &= c[1:] == c[:-1]
        m_dup[1:] = same
        m_dup &= (fields["type"] >= 1) & (fields["type"] <= 4)
    book_cols = _line_space(ob_cols, ob_lines, n_ob)
    book = _book_sides(book_cols, file_levels)
    b_present = np.zeros(n_ob, bool)
    b_present[ob_lines - 1] = True
    b_ok = b_present.copy()
    idx = np.flatnonzero(b_present)
    bid_px, bid_sz, ask_px, ask_sz = (a[idx] for a in book)
    b_ok[idx] = validate_book(
        make_book(np.zeros(idx.size, np.int64), bid_px, bid_sz, ask_px, ask_sz),
        strict=False,
        report=ValidationReport(),
    )
    m_idx, b_idx, problems, (last_m, last_b) = _Aligner(fields, m_ok, m_dup, book, b_ok).align()

    first: DataError | None = None
    if problems:
        first = _mismatch_error(problems[0], fields, message_path, ob_path)
    mism = [p for p in problems if p.kind == "mismatch"]
    report.drop("message_does_not_match_book", len(mism),
                [f"{message_path.name}:{p.msg_index + 1}" for p in mism])  # fmt: skip
    for p in problems:
        if p.kind == "shift":  # the lines from the first row out of step to where they agree
            lost_m = np.arange(p.msg_index, p.agree_msg)
            lost_b = np.arange(p.book_index, p.agree_book)
            lost_m, lost_b = lost_m[m_present[lost_m]], lost_b[b_present[lost_b]]
            report.drop("unmatched_message_line", lost_m.size,
                        [f"{message_path.name}:{i + 1}" for i in lost_m])  # fmt: skip
            report.drop("unmatched_orderbook_line", lost_b.size,
                        [f"{ob_path.name}:{j + 1}" for j in lost_b])  # fmt: skip
    if problems and problems[-1].kind == "out_of_step":
        p = problems[-1]
        rest = int(m_present[p.msg_index :].sum()) + int(b_present[p.book_index :].sum())
        report.drop("out_of_step_to_end", rest, [f"{message_path.name}:{p.msg_index + 1}"])
    elif (left_m := n_msg - 1 - last_m) + (left_b := n_ob - 1 - last_b):
        if strict and first is None:
            first = DataError(
                ob_path,
                last_b + 2,
                "rows",
                f"as many rows as the message file {message_path.name} ({n_msg})",
                n_ob,
            )
        report.drop("row_count_mismatch", left_m + left_b)
    # pairs whose other line did not parse (that line is counted where it was read)
    both = m_present[m_idx] & b_present[b_idx]
    if not strict:
        report.note("row_dropped_with_its_counterpart", int((~both).sum()))
    m_idx, b_idx = m_idx[both], b_idx[both]
    # line -> index into the parsed columns
    m_pos = np.full(n_msg, -1, np.int64)
    m_pos[msg_lines - 1] = np.arange(msg_lines.size)
    b_pos = np.full(n_ob, -1, np.int64)
    b_pos[ob_lines - 1] = np.arange(ob_lines.size)
    first_line = problems[0].msg_index if problems else n_msg
    return m_pos[m_idx], b_pos[b_idx], first, first_line, _BookLines(book, b_ok)


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

    msg_raw = read_complete_lines(message_path, strict=strict, report=report)
    msg_cols, msg_lines, n_msg = _read_numeric_csv(
        message_path, msg_raw, MESSAGE_FIELDS, _MESSAGE_INT, strict=strict, report=report
    )
    align_error: DataError | None = None
    align_line = 0
    if ob_path is not None:
        ob_raw = read_complete_lines(ob_path, strict=strict, report=report)
        first_line = ob_raw[: ob_raw.find(b"\n") if b"\n" in ob_raw else len(ob_raw)].strip()
        ob_first = len(first_line.split(b",")) if first_line else 0
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
        ob_cols, ob_lines, n_ob = _read_numeric_csv(
            ob_path, ob_raw, ob_names, (True,) * len(ob_names), strict=strict, report=report
        )
    L = file_levels if levels is None else int(levels)
    if not 1 <= L <= file_levels:
        raise ValueError(f"levels={levels} but the files have {file_levels} levels")

    if ob_path is not None:
        im, ib, align_error, align_line, book_lines = _align_files(
            message_path, ob_path, msg_cols, msg_lines, n_msg, ob_cols, ob_lines, n_ob,
            file_levels, strict=strict, report=report,
        )  # fmt: skip
        msg_cols = [c[im] for c in msg_cols]
        ob_cols = [c[ib] for c in ob_cols]
        msg_lines, ob_lines = msg_lines[im], ob_lines[ib]
    time_s, mtype, order_id, size, price_raw, direction = msg_cols
    n = time_s.size

    # --- message-level checks (the raw fields) ---
    msg_source = RowSource(
        (str(message_path),),
        np.zeros(n, np.int64),
        msg_lines,
        {"ts": "time", "side": "direction", "size": "size", "price": "price", "kind": "type"},
    )
    checks = _message_checks(time_s, mtype, size, price_raw, direction)
    field_bad = np.zeros(n, bool)
    for _, _, _, bad, _ in checks:
        field_bad |= bad
    # order-level checks: a line copied in both files, an add reusing a live order id
    dup = np.zeros(n, bool)
    if n > 1 and ob_path is not None:
        dup[1:] = (msg_lines[1:] == msg_lines[:-1] + 1) & (ob_lines[1:] == ob_lines[:-1] + 1)
        for c in msg_cols + ob_cols:
            dup[1:] &= c[1:] == c[:-1]
        # identical hidden executions (type 5) in a row are common and change no book: legitimate
        dup &= (mtype >= 1) & (mtype <= 4)
    reused, live_row = _reused_order_id(mtype, order_id, size, np.flatnonzero(~field_bad & ~dup))
    if strict and align_error is not None:
        # the alignment's error is raised here unless a message line before it is bad
        ts_prev = np.where(field_bad, -np.inf, time_s)
        back = time_s < np.concatenate(([-np.inf], np.maximum.accumulate(ts_prev)[:-1]))
        if not ((field_bad | back | dup | reused) & (msg_lines <= align_line)).any():
            raise align_error
    keep = _fail_or_drop(
        checks, n, strict=strict, report=report, source=msg_source, what=str(message_path)
    )
    dup_got = np.zeros(n, object)
    dup_got[dup] = [f"a copy of line {ln - 1}" for ln in msg_lines[dup]]
    reused_got = np.zeros(n, object)
    reused_got[reused] = [
        f"order id {order_id[r]}, added at line {msg_lines[live_row[r]]}"
        for r in np.flatnonzero(reused)
    ]
    keep &= _fail_or_drop(
        [
            (
                "duplicate_line",
                "line",
                "a line that is not a copy of the previous one (both files repeat their line)",
                dup & keep,
                dup_got,
            ),
            (
                "reused_order_id",
                "order_id",
                "the id of no live order (not added before, or deleted or fully executed since)",
                reused & keep,
                reused_got,
            ),
        ],
        n, strict=strict, report=report, source=msg_source, what=str(message_path),
    )  # fmt: skip

    # --- conversions ---
    day = meta["date"]
    assert isinstance(day, date)
    t_ns = np.where(keep, time_s, 0.0)  # a bad time (inf, negative) is dropped; never cast it
    ts = session_midnight_ns(day) + np.rint(t_ns * 1e9).astype(np.int64)
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
        rows = ob_lines - 1
        identity = rows.size == book_lines.ok.size  # every orderbook line, in order
        bid_px, bid_sz, ask_px, ask_sz = (a if identity else a[rows] for a in book_lines.sides)
        book = make_book(ts, bid_px[:, :L], bid_sz[:, :L], ask_px[:, :L], ask_sz[:, :L])
        book_source = RowSource(
            (str(ob_path),), np.zeros(n, np.int64), ob_lines, _book_field_names(L)
        )
        # validate_book passed these rows on all levels in the alignment pass: only the others
        # are checked again (its time check holds: a book row has its message's checked time)
        kept = np.flatnonzero(keep & ~book_lines.ok[rows] if L == file_levels else keep)
        keep_b = validate_book(
            book.iloc[kept],
            strict=strict,
            report=report,
            source=book_source.subset(kept),
            what=str(ob_path),
        )
        keep[kept[~keep_b]] = False
    else:
        empty = np.empty((0, L))
        book = make_book(ts[:0], empty, empty, empty, empty)
        report.note("no_orderbook_file")
    if strict and align_error is not None:
        raise align_error  # no earlier line was bad

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


def check_book_consistency(md: MarketData) -> dict[str, np.ndarray]:
    """Rows whose book differs from the previous row by something other than their message's effect.

    For each visible event (add/cancel/visible trade) whose price lies inside the displayed levels
    both before and after, the size at that price must change by exactly ``+size`` (add) or
    ``-size``; the other side of the book must not change. Hidden executions and halts must leave
    the book unchanged. Returns ``{"size_delta": rows, "other_side": rows, "unchanged": rows,
    "checked": rows}`` (indices). ``load_lobster`` runs the same check on every row
    (:func:`_transition_check`).
    """
    ev = md.events
    arrays = book_arrays(md.book)
    delta, other, changed, checked = _transition_check(
        tuple(a[:-1] for a in arrays),
        tuple(a[1:] for a in arrays),
        ev["side"].to_numpy()[1:],
        ev["price"].to_numpy().astype(np.float64)[1:],
        ev["size"].to_numpy()[1:],
        ev["msg_type"].to_numpy()[1:],
    )
    return {
        "size_delta": np.flatnonzero(delta) + 1,
        "other_side": np.flatnonzero(other) + 1,
        "unchanged": np.flatnonzero(changed) + 1,
        "checked": np.flatnonzero(checked) + 1,
    }

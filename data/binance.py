"""Binance raw websocket captures -> canonical ``events`` and ``book``
(docs/data.md#binance-raw-feeds).

A capture is one or more gzip (or plain) text files, one message per line: ``<local receive
timestamp> <JSON as received>``. Messages: a REST depth snapshot (``lastUpdateId``, ``bids``,
``asks``; no ``stream`` key), ``<sym>@depth@100ms`` / ``@depth@0ms`` diffs (``U`` first and ``u``
final update id, ``pu`` the previous ``u`` on futures, ``b``/``a`` lists of ``[price, qty]`` where
qty is the new absolute level size and ``"0"`` removes the level), ``<sym>@trade`` (``p``, ``q``,
``T`` trade time ms, ``m`` buyer is maker, i.e. a SELL aggressor) and ``<sym>@bookTicker`` (``u``,
``b``, ``B``, ``a``, ``A``).

Book build (Binance's documented procedure): diffs received before a snapshot are buffered; at the
snapshot those with ``u <= lastUpdateId`` are dropped and the rest applied in order. Continuity: on
spot ``U == previous u + 1`` (the first diff after a snapshot must have
``U <= lastUpdateId + 1 <= u``); on USD-M futures ``pu == previous u`` (the first:
``U <= lastUpdateId <= u``). A gap raises ``DataError`` (file, line, field ``U``/``pu``) under
``strict``; otherwise it is counted (``update_id_gap``: one per gap), the book is dropped and
rebuilt from the next snapshot (the diffs in between, whose events are lost, are counted as
``diff_while_unsynced``). With no later snapshot but a later ``bookTicker`` (and ``repair``), the
gap is bridged (``update_id_gap_bridged_by_bookTicker``, a repair): the diffs are applied through
it (their sizes are absolute, so every level they touch is right again) and after each diff the
best levels are made to agree with the latest bookTicker the book has reached: a better level that
no diff set since the ticker is removed, the ticker's level set to its size (each counted, each an
event with ``pruned`` True). With neither, the rest of the depth stream is counted as
``diff_after_gap_without_snapshot`` (trades are still kept). A snapshot older than a book that is in
sync is ignored (noted). See ``on_gap`` for other policies.

Bad messages (``strict`` raises naming file, line and field; otherwise dropped and counted): a
price or quantity that is not a finite decimal, a trade whose ``m`` is not a JSON boolean or whose
trade id ``t`` was seen before (``duplicate_trade``), a bookTicker with a missing field, a gzip
file cut short (read up to its last complete line, ``truncated_gzip``).

Units and time:

- ``ts`` is the local receive time in ns UTC. Its unit in the file is detected from its magnitude
  (< 1e11 s, < 1e14 ms, < 1e17 us, else ns: the epoch in 2001-2286 in each unit) per file, and
  every line must agree. ``exch_ts`` (extra column, ns, -1 where absent) is the exchange time: ``T``
  for trades and futures depth (transaction time), else ``E`` (event time).
- prices in ticks: ``tick_size`` from a table of known instruments (spot BTCUSDT 0.01, USD-M BTCUSDT
  0.1, spot NEXOUSDT 0.001) or, for others, inferred as ``10**-d`` where ``d`` is the largest number
  of significant decimals (trailing zeros stripped) among the capture's first prices; a price off
  that grid is a ``DataError``. Sizes in lots of ``lot_size``, inferred the same way from quantities
  (the finest step seen, so every size is a whole number of lots).

Output:

- ``events``: the snapshot as ``snapshot`` rows (one per level, absolute size; a replay clears the
  book at a snapshot's first row); every level change of a diff as ``add`` (size grew, ``size`` =
  the increase) or ``cancel`` (size shrank or removed, ``size`` = the decrease) with
  ``order_id = -1`` (L2 feed); trades as ``trade`` with ``side`` = resting side (``m`` true -> bid)
  and ``aggressor = -side``. Extra columns: ``exch_ts``, ``update_id`` (``u`` of the diff,
  ``lastUpdateId`` of the snapshot, the trade id for trades) and ``pruned`` (True for an event the
  loader wrote as a repair, not in the stream).
- ``book``: one row after every snapshot and after every applied diff message (so on every change of
  the book, at the diff granularity; a diff that changes nothing still gets a row), top ``levels``
  per side, with extra columns ``exch_ts`` and ``update_id``. Trades do not move the book: the diffs
  carry their effect.
- ``quotes``: the ``bookTicker`` stream (``ts, exch_ts, update_id, bid_px, bid_sz,
  ask_px, ask_sz``).

Crossed books (the stale-level defect of the spot BTCUSDT 2024-08-08/09 capture). After each diff
the book is checked: ``best bid >= best ask`` is a crossed (or locked) state. ``strict`` raises
``DataError`` at the first one (file, line of the diff). Otherwise only what later data confirms
stale is pruned, one level at a time: every level keeps the update id that last set it, and a best
level is stale when a ``bookTicker`` (an independent stream of the true best bid/offer) at an
update id at or after that one shows a better price than the ticker's best on its side (the latest
such ticker the book has reached, else the first one after; ``prune_confirmed_by_bookTicker``).
If the ticker shows one of the two levels and cannot judge the other, the other is pruned
(``prune_not_confirmed_by_bookTicker``); if it cannot judge either (no ticker), the older level's
side is pruned through the other side's best (the diff stream never rests a crossed book, so the
level it touched last is current); if it shows both, the state is left
(``crossed_state_unresolved``). Each pruned level is counted (``stale_bid_level_pruned``,
``stale_ask_level_pruned``) and written as a ``cancel`` with ``pruned`` True. ``repair=False``
leaves the stale levels in place and only counts the crossed states. Crossed rows left are dropped
by the final ``validate_book`` (``crossed_book``), so that ``book`` never holds a crossed row.

On the sample data: the spot BTCUSDT 2024-08-08/09 capture loaded by the procedure above never
crosses. Its first diff after the snapshot arrives BEFORE the snapshot (line 6,
``U=50093239208 u=50093239224`` around ``lastUpdateId=50093239218`` of line 8) and removes the bid
at 61820.99; a collector that drops it (``use_diffs_before_snapshot=False``) fails the first-diff
rule at line 10, and if it applies the stream through that gap (``on_gap="continue"``) the bid at
61820.99 stays stale and crosses the asks from line 9368 on: 5617 crossed states without repair, 1
crossed state and 1 pruned bid level (confirmed by bookTicker) with repair.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from data.errors import DataError
from data.schema import (
    ADD,
    CANCEL,
    SNAPSHOT,
    TRADE,
    InstrumentSpec,
    MarketData,
    RowSource,
    ValidationReport,
    make_book,
    make_events,
    read_complete_lines,
    source_file,
    validate_book,
    validate_events,
)

log = logging.getLogger(__name__)

Market = Literal["spot", "usdm"]

KNOWN_TICKS: dict[tuple[str, str], float] = {
    ("spot", "BTCUSDT"): 0.01,
    ("usdm", "BTCUSDT"): 0.1,
    ("spot", "NEXOUSDT"): 0.001,
}
"""Price ticks of instruments we have data for (Binance exchangeInfo PRICE_FILTER at capture
time)."""

_INFER_MESSAGES = 2000  # messages with prices scanned to infer tick and lot sizes


def timestamp_unit_factor(value: int) -> int:
    """ns per unit of an epoch timestamp, from its magnitude (s, ms, us or ns)."""
    if value < 10**11:
        return 1_000_000_000
    if value < 10**14:
        return 1_000_000
    if value < 10**17:
        return 1_000
    return 1


def _decimals(text: str) -> int:
    _, _, frac = text.partition(".")
    return len(frac.rstrip("0"))


@dataclass
class _Record:
    file: int
    line: int
    ts: int  # ns
    msg: dict[str, Any]
    stream: str  # "snapshot", "depth", "trade", "bookTicker", or the raw stream name
    parsed: Any = None  # a bookTicker's parsed fields (or its DataError), once parsed


def _read_records(
    paths: Sequence[Path],
    *,
    strict: bool,
    report: ValidationReport,
) -> Iterator[_Record]:
    last_ts = None
    for fi, path in enumerate(paths):
        factor = None
        text_bytes = read_complete_lines(path, strict=strict, report=report)
        for lineno, raw in enumerate(text_bytes.decode("utf-8", errors="replace").split("\n"), 1):
            text = raw.strip()
            if not text:
                continue
            stamp, _, body = text.partition(" ")
            try:
                local = int(stamp)
            except ValueError:
                if strict:
                    raise DataError(
                        path, lineno, "local timestamp", "an integer epoch timestamp", stamp
                    ) from None
                report.drop("bad_local_timestamp", 1, [f"{path.name}:{lineno}"])
                continue
            f = timestamp_unit_factor(local)
            if factor is None:
                factor = f
            elif f != factor:
                unit = {1: "ns", 1000: "us", 10**6: "ms", 10**9: "s"}[factor]
                if strict:
                    raise DataError(
                        path,
                        lineno,
                        "local timestamp",
                        f"the file's unit ({unit}, from its first line)",
                        local,
                    )
                report.drop("timestamp_unit_changed", 1, [f"{path.name}:{lineno}"])
                continue
            try:
                msg = json.loads(body)
                if not isinstance(msg, dict):
                    raise ValueError("not an object")
            except ValueError:
                if strict:
                    raise DataError(
                        path, lineno, "JSON", "a JSON object after the timestamp", body[:60]
                    ) from None
                report.drop("bad_json", 1, [f"{path.name}:{lineno}"])
                continue
            ts = local * factor
            if last_ts is not None and ts < last_ts:
                if strict:
                    raise DataError(
                        path,
                        lineno,
                        "local timestamp",
                        f"a time >= the previous line's ({last_ts} ns)",
                        ts,
                    )
                report.drop("time_backwards", 1, [f"{path.name}:{lineno}"])
                continue
            last_ts = ts
            if "stream" in msg:
                name = str(msg["stream"])
                data = msg.get("data")
                if not isinstance(data, dict):
                    if strict:
                        raise DataError(path, lineno, "data", "a JSON object", data)
                    report.drop("bad_json", 1, [f"{path.name}:{lineno}"])
                    continue
                kind = name.split("@", 1)[1] if "@" in name else name
                if kind.startswith("depth"):
                    kind = "depth"
                yield _Record(fi, lineno, ts, data, kind)
            elif "lastUpdateId" in msg:
                yield _Record(fi, lineno, ts, msg, "snapshot")
            else:
                report.note("unknown_message_ignored", 1, [f"{path.name}:{lineno}"])


@dataclass
class _Side:
    """One side of an L2 book: level size (lots) and the update id that last set it, by price
    (ticks).

    ``prices`` is kept sorted ascending; the best is the last for bids and the first for asks.
    """

    is_bid: bool
    size: dict[int, float] = field(default_factory=dict)
    age: dict[int, int] = field(default_factory=dict)
    prices: list[int] = field(default_factory=list)
    gone: dict[int, int] = field(default_factory=dict)  # update id that removed a level

    def set(self, px: int, sz: float, uid: int) -> float:
        """Set the level's absolute size (0 removes it); return the previous size."""
        old = self.size.get(px, 0.0)
        if sz == 0.0:
            if old:
                del self.size[px]
                del self.age[px]
                self.gone[px] = uid
                i = bisect.bisect_left(self.prices, px)
                del self.prices[i]
            return old
        if not old:
            bisect.insort(self.prices, px)
        self.size[px] = sz
        self.age[px] = uid
        return old

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def top(self, levels: int) -> tuple[list[int], list[float]]:
        pxs = self.prices[-levels:][::-1] if self.is_bid else self.prices[:levels]
        return pxs, [self.size[p] for p in pxs]

    def crossing(self, other_best: int) -> list[int]:
        """Prices of this side at or through ``other_best`` (the opposite side's best)."""
        if self.is_bid:
            return self.prices[bisect.bisect_left(self.prices, other_best) :]
        return self.prices[: bisect.bisect_right(self.prices, other_best)]

    def clear(self) -> None:
        self.size.clear()
        self.age.clear()
        self.prices.clear()
        self.gone.clear()


class _Units:
    def __init__(self, tick: float, lot: float) -> None:
        self.tick = tick
        self.lot = lot

    def price(self, text: str, where: tuple[Path, int], name: str) -> int:
        try:
            x = float(text) / self.tick
        except (TypeError, ValueError):
            raise DataError(where[0], where[1], name, "a decimal price string", text) from None
        if not math.isfinite(x):
            raise DataError(where[0], where[1], name, "a finite decimal price", text)
        t = round(x)
        if abs(x - t) > 1e-6 or t <= 0:
            raise DataError(
                where[0], where[1], name, f"a positive multiple of the tick {self.tick}", text
            )
        return t

    def size(self, text: str, where: tuple[Path, int], name: str) -> float:
        try:
            q = float(text)
        except (TypeError, ValueError):
            raise DataError(where[0], where[1], name, "a decimal quantity string", text) from None
        if not (q >= 0 and math.isfinite(q)):
            raise DataError(where[0], where[1], name, "a finite quantity >= 0", text)
        return round(q / self.lot, 6)


def _infer_units(
    records: list[_Record],
    market: str,
    symbol: str,
    tick_size: float | None,
    lot_size: float | None,
) -> tuple[float, float, str]:
    px_dec, qty_dec, seen = 0, 0, 0
    for r in records:
        m = r.msg
        pairs: list[Any] = []
        if r.stream == "snapshot":
            pairs = list(m.get("bids", []))[:200] + list(m.get("asks", []))[:200]
        elif r.stream == "depth":
            pairs = list(m.get("b", [])) + list(m.get("a", []))
        elif r.stream == "trade":
            pairs = [[m.get("p", "0"), m.get("q", "0")]]
        else:
            continue
        for p, q in pairs:
            px_dec = max(px_dec, _decimals(str(p)))
            qty_dec = max(qty_dec, _decimals(str(q)))
        seen += 1
        if seen >= _INFER_MESSAGES:
            break
    how = []
    if tick_size is None:
        known = KNOWN_TICKS.get((market, symbol))
        if known is not None:
            tick_size = known
            how.append("tick from the known-instrument table")
        else:
            tick_size = 10.0**-px_dec
            how.append(f"tick inferred from {px_dec} price decimals")
    if lot_size is None:
        lot_size = 10.0**-qty_dec
        how.append(f"lot inferred from {qty_dec} quantity decimals")
    return float(tick_size), float(lot_size), "; ".join(how)


def load_binance(
    paths: str | Path | Sequence[str | Path],
    *,
    market: Market = "spot",
    symbol: str | None = None,
    strict: bool = True,
    levels: int = 10,
    repair: bool = True,
    tick_size: float | None = None,
    lot_size: float | None = None,
    on_gap: Literal["raise", "resync", "continue"] | None = None,
    use_diffs_before_snapshot: bool = True,
) -> MarketData:
    """Load a Binance raw capture (one or more files of one capture, read in the order given).

    :param paths: the capture's files, in time order (e.g. the two files of a capture spanning
        midnight).
    :param market: ``"spot"`` (continuity ``U == previous u + 1``) or ``"usdm"`` (``pu == previous
        u``).
    :param symbol: keep only this symbol's streams (default: the symbol of the first stream
        message).
    :param strict: raise ``DataError`` (file, 1-based line, field) at the first bad line, update-id
        gap or crossed book; if False drop/repair and count in ``report``.
    :param levels: book levels per side in ``book``.
    :param repair: with ``strict=False``, prune stale levels of a crossed book (see module
        docstring); ``False`` leaves crossed states in the book and only counts them.
    :param tick_size: override the tick (quote currency); default from ``KNOWN_TICKS`` or inferred.
    :param lot_size: override the lot (base units); default inferred from quantity decimals.
    :param on_gap: what an update-id gap does: ``"raise"`` a ``DataError`` (default when
        ``strict``), ``"resync"`` (default otherwise: drop the book until the next snapshot,
        counting the diffs lost; with no later snapshot, bridge the gap with the bookTicker stream
        when there is one, see the module docstring), or ``"continue"`` (apply the diffs through
        the gap, counted;
        levels whose removal was lost stay stale, and the crossed-book check and repair deal with
        those that cross).
    :param use_diffs_before_snapshot: apply the diffs received before the snapshot whose ``u`` is
        after ``lastUpdateId`` (Binance's procedure: buffer the stream, then fetch the snapshot).
        ``False`` discards them (counted), as a collector that reads only what follows the snapshot
        line would; on the spot BTCUSDT 2024-08-08 capture this loses the diff of line 6
        (U=50093239208, u=50093239224, straddling lastUpdateId=50093239218 of line 8) that removes
        the bid at 61820.99: the stale level of the data README. Kept for diagnosis and tests.
    """
    if market not in ("spot", "usdm"):
        raise ValueError(f"market must be 'spot' or 'usdm', not {market!r}")
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("no files given")
    report = ValidationReport()
    records = list(_read_records(files, strict=strict, report=report))

    if symbol is None:
        symbol = next((str(r.msg["s"]) for r in records if "s" in r.msg), None)
        if symbol is None:
            raise DataError(files[0], None, "s", "at least one stream message naming the symbol")
    symbol = symbol.upper()
    tick, lot, how = _infer_units(records, market, symbol, tick_size, lot_size)
    log.info("%s %s: tick %g, lot %g (%s)", market, symbol, tick, lot, how)
    units = _Units(tick, lot)
    if on_gap is None:
        on_gap = "raise" if strict else "resync"
    if on_gap not in ("raise", "resync", "continue"):
        raise ValueError(f"on_gap must be 'raise', 'resync' or 'continue', not {on_gap!r}")
    builder = _BookBuilder(
        files, market, levels, strict, repair, report, units, use_diffs_before_snapshot, on_gap
    )
    builder.index_tickers(records, symbol)
    for i, r in enumerate(records):
        if r.stream != "snapshot" and str(r.msg.get("s", symbol)).upper() != symbol:
            report.note("other_symbol_ignored", 1)
            continue
        builder.pos = i
        builder.feed(r)
    builder.finish()

    events, ev_source = builder.events_frame()
    book, book_source = builder.book_frame()
    keep = validate_events(events, strict=strict, report=report, source=ev_source)
    if not keep.all():
        events = events.loc[keep].reset_index(drop=True)
    keep_b = validate_book(book, strict=strict, report=report, source=book_source)
    if not keep_b.all():
        book = book.loc[keep_b].reset_index(drop=True)
    spec = InstrumentSpec(
        symbol=symbol, tick_size=tick, lot_size=lot, price_scale=1.0, timezone="UTC"
    )
    report.log(log, ", ".join(f.name for f in files))
    return MarketData(
        events=events,
        book=book,
        spec=spec,
        sources=tuple(source_file(f) for f in files),
        report=report,
        quotes=builder.quotes_frame(),
    )


def _parse_ticker(
    m: dict[str, Any], where: tuple[Path, int], units: _Units
) -> tuple[int, float, int, float] | DataError:
    """``(bid_px, bid_sz, ask_px, ask_sz)`` of a bookTicker message, or the ``DataError`` that
    names its bad or missing field."""
    for key in ("b", "B", "a", "A"):
        if key not in m:
            return DataError(where[0], where[1], key, "a bookTicker field (b, B, a, A)")
    try:
        return (
            units.price(m["b"], where, "b"),
            units.size(m["B"], where, "B"),
            units.price(m["a"], where, "a"),
            units.size(m["A"], where, "A"),
        )
    except DataError as exc:
        return exc


class _BookBuilder:
    """Applies snapshot and diffs in order, with continuity checks, crossed-book repair and
    output."""

    def __init__(
        self,
        files: list[Path],
        market: str,
        levels: int,
        strict: bool,
        repair: bool,
        report: ValidationReport,
        units: _Units,
        use_diffs_before_snapshot: bool,
        on_gap: str,
    ) -> None:
        self.files, self.market, self.levels = files, market, levels
        self.use_diffs_before_snapshot, self.on_gap = use_diffs_before_snapshot, on_gap
        self.strict, self.repair, self.report, self.units = strict, repair, report, units
        self.bids, self.asks = _Side(True), _Side(False)
        self.synced = False
        self.last_u: int | None = None  # u of the last applied diff, or the snapshot's lastUpdateId
        self.first_after_snapshot = False
        self.pending: list[_Record] = []  # diffs waiting for a snapshot
        self.ever_synced = False
        # outputs, as columns
        self.ev: dict[str, list[Any]] = {
            k: []
            for k in (
                "ts",
                "kind",
                "side",
                "price",
                "size",
                "aggressor",
                "exch_ts",
                "update_id",
                "pruned",
                "file",
                "line",
            )
        }
        self.bk_ts: list[int] = []
        self.bk_rows: list[tuple[list[int], list[float], list[int], list[float]]] = []
        self.bk_meta: dict[str, list[int]] = {
            "exch_ts": [],
            "update_id": [],
            "file": [],
            "line": [],
        }
        self.quotes: dict[str, list[Any]] = {
            k: [] for k in ("ts", "exch_ts", "update_id", "bid_px", "bid_sz", "ask_px", "ask_sz")
        }
        self.crossed_states = 0
        self.trade_ids: dict[int, _Record] = {}  # trade id -> its first record
        # position of the record being fed, and of the last snapshot / bookTicker record
        self.pos, self.last_snapshot_pos, self.last_ticker_pos = 0, -1, -1
        self.bridging = False  # past an update-id gap bridged by the bookTicker stream
        self.bridged_ticker = -1  # the last ticker the book was reconciled with
        # every valid bookTicker of the capture by update id (to judge crossed levels)
        self.ticker_u = np.empty(0, np.int64)
        self.ticker_bid = np.empty(0, np.int64)
        self.ticker_ask = np.empty(0, np.int64)
        self.ticker_bid_sz = np.empty(0, np.float64)
        self.ticker_ask_sz = np.empty(0, np.float64)

    def index_tickers(self, records: list[_Record], symbol: str) -> None:
        """Note where the last snapshot and bookTicker are, and every ticker's best prices."""
        rows = []
        for i, r in enumerate(records):
            if r.stream == "snapshot":
                self.last_snapshot_pos = i
            elif r.stream == "bookTicker" and str(r.msg.get("s", symbol)).upper() == symbol:
                self.last_ticker_pos = i
                row = r.parsed = _parse_ticker(r.msg, self.where(r), self.units)
                uid = r.msg.get("u")
                if not isinstance(row, DataError) and isinstance(uid, int) and uid >= 0:
                    rows.append((uid, row[0], row[2], row[1], row[3]))
        if rows:
            rows.sort()
            self.ticker_u = np.array([x[0] for x in rows], np.int64)
            self.ticker_bid = np.array([x[1] for x in rows], np.int64)
            self.ticker_ask = np.array([x[2] for x in rows], np.int64)
            self.ticker_bid_sz = np.array([x[3] for x in rows], np.float64)
            self.ticker_ask_sz = np.array([x[4] for x in rows], np.float64)

    # ----- input -----
    def where(self, r: _Record) -> tuple[Path, int]:
        return self.files[r.file], r.line

    def loc(self, r: _Record) -> str:
        return f"{self.files[r.file].name}:{r.line}"

    def feed(self, r: _Record) -> None:
        if r.stream == "snapshot":
            self.on_snapshot(r)
        elif r.stream == "depth":
            self.on_diff(r, r.ts)
        elif r.stream == "trade":
            self.on_trade(r)
        elif r.stream == "bookTicker":
            self.on_ticker(r)
        else:
            self.report.note(f"stream_{r.stream}_ignored", 1)

    def _exch(self, m: dict[str, Any], keys: tuple[str, ...]) -> int:
        for k in keys:
            if k in m:
                return int(m[k]) * 1_000_000
        return -1

    def _event(
        self,
        r: _Record,
        ts: int,
        kind: int,
        side: int,
        price: int,
        size: float,
        agg: int,
        exch: int,
        uid: int,
        pruned: bool = False,
    ) -> None:
        ev = self.ev
        ev["pruned"].append(pruned)
        ev["ts"].append(ts)
        ev["kind"].append(kind)
        ev["side"].append(side)
        ev["price"].append(price)
        ev["size"].append(size)
        ev["aggressor"].append(agg)
        ev["exch_ts"].append(exch)
        ev["update_id"].append(uid)
        ev["file"].append(r.file)
        ev["line"].append(r.line)

    def on_trade(self, r: _Record) -> None:
        m = r.msg
        w = self.where(r)
        try:
            for key in ("p", "q", "m"):
                if key not in m:
                    raise DataError(w[0], w[1], key, "a trade field")
            px = self.units.price(m["p"], w, "p")
            sz = self.units.size(m["q"], w, "q")
            if not isinstance(m["m"], bool):  # "false" as a string would flip the side
                raise DataError(
                    w[0], w[1], "m", "a JSON boolean (true: the buyer is the maker)", m["m"]
                )
            tid = m.get("t", -1)
            if isinstance(tid, bool) or not isinstance(tid, int):
                raise DataError(w[0], w[1], "t", "an integer trade id", tid)
        except DataError:
            if self.strict:
                raise
            self.report.drop("bad_trade", 1, [self.loc(r)])
            return
        if tid >= 0:
            first = self.trade_ids.setdefault(tid, r)
            if first is not r:
                if self.strict:
                    raise DataError(
                        w[0], w[1], "t",
                        f"a trade id not seen before (trade {tid} is at {self.loc(first)})", tid,
                    )  # fmt: skip
                self.report.drop("duplicate_trade", 1, [self.loc(r)])
                return
        resting = 1 if m["m"] else -1  # buyer is maker: the resting order is a bid
        self._event(r, r.ts, TRADE, resting, px, sz, -resting, self._exch(m, ("T", "E")), tid)

    def on_ticker(self, r: _Record) -> None:
        row = r.parsed if r.parsed is not None else _parse_ticker(r.msg, self.where(r), self.units)
        if isinstance(row, DataError):
            if self.strict:
                raise row
            self.report.drop("bad_bookTicker", 1, [self.loc(r)])
            return
        q = self.quotes
        q["ts"].append(r.ts)
        q["exch_ts"].append(self._exch(r.msg, ("T", "E")))
        uid = int(r.msg.get("u", -1))
        q["update_id"].append(uid)
        for k, v in zip(("bid_px", "bid_sz", "ask_px", "ask_sz"), row, strict=True):
            q[k].append(v)

    def on_snapshot(self, r: _Record) -> None:
        m = r.msg
        w = self.where(r)
        try:
            uid = int(m["lastUpdateId"])
            bids = [
                (self.units.price(p, w, "bids"), self.units.size(q, w, "bids"))
                for p, q in m["bids"]
            ]
            asks = [
                (self.units.price(p, w, "asks"), self.units.size(q, w, "asks"))
                for p, q in m["asks"]
            ]
        except (DataError, KeyError, TypeError, ValueError, OverflowError) as exc:
            if self.strict:
                if isinstance(exc, DataError):
                    raise
                raise DataError(w[0], w[1], "bids/asks", "a snapshot [[price, qty], ...]") from exc
            self.report.drop("bad_snapshot", 1, [self.loc(r)])
            return
        if self.synced and self.last_u is not None and uid <= self.last_u:
            # the book built from continuous diffs is already newer than this snapshot
            self.report.note("older_snapshot_ignored", 1, [self.loc(r)])
            return
        resync = self.ever_synced and not self.synced
        self.bids.clear()
        self.asks.clear()
        exch = self._exch(m, ("T", "E"))
        for side, levels, sign in ((self.bids, bids, 1), (self.asks, asks, -1)):
            for px, sz in levels:
                if sz > 0:
                    side.set(px, sz, uid)
                    self._event(r, r.ts, SNAPSHOT, sign, px, sz, 0, exch, uid)
        if resync:
            self.report.note("resynced_from_snapshot", 1, [self.loc(r)])
        self.synced = True
        self.ever_synced = True
        self.last_u = uid
        self.first_after_snapshot = True
        self._check_crossed(r, "bids", r.ts, exch, uid)
        self._book_row(r, r.ts, exch, uid)
        pending, self.pending = self.pending, []
        stale = [d for d in pending if int(d.msg.get("u", -1)) <= uid]
        if resync:  # diffs after a gap: the snapshot holds their effect, their events are lost
            self.report.drop("diff_while_unsynced", len(stale), [self.loc(d) for d in stale])
        else:
            self.report.note(
                "diff_before_snapshot_already_in_it", len(stale), [self.loc(d) for d in stale]
            )
        later = [d for d in pending if int(d.msg.get("u", -1)) > uid]
        if not self.use_diffs_before_snapshot:
            self.report.drop(
                "diff_before_snapshot_discarded", len(later), [self.loc(d) for d in later]
            )
            return
        self.report.note("diff_before_snapshot_applied", len(later), [self.loc(d) for d in later])
        for d in later:
            self.on_diff(d, r.ts)  # applied now: their ts is the snapshot's arrival

    def on_diff(self, r: _Record, ts: int) -> None:
        m = r.msg
        w = self.where(r)
        try:
            U, u = int(m["U"]), int(m["u"])
            pu = int(m["pu"]) if self.market == "usdm" else None
        except (KeyError, TypeError, ValueError):
            key = next((k for k in ("U", "u", "pu") if k not in m), "U")
            if self.strict:
                raise DataError(w[0], w[1], key, "an integer update id") from None
            self.report.drop("bad_diff", 1, [self.loc(r)])
            return
        if not self.synced:
            self.pending.append(r)
            return
        assert self.last_u is not None
        last = self.last_u
        if u <= last:
            self.report.note("diff_already_in_book_dropped", 1, [self.loc(r)])
            return
        if self.first_after_snapshot:
            target = last + 1 if self.market == "spot" else last
            ok = U <= target <= u
            fld = "U"
            expected = f"U <= {target} <= u (the first diff after snapshot lastUpdateId={last})"
            got: object = f"U={U}, u={u}"
        elif self.market == "spot":
            ok = U == last + 1
            fld, expected, got = "U", f"U == previous u + 1 = {last + 1}", U
        else:
            ok = pu == last
            fld, expected, got = "pu", f"pu == previous u = {last}", pu
        if not ok and self.on_gap == "continue":
            # keep applying: a level whose removal was lost stays stale; the crossed-book check
            # catches the stale levels that end up crossing the other side
            self.report.note("update_id_gap_applied_through", 1, [self.loc(r)])
        elif not ok:
            if self.on_gap == "raise":
                raise DataError(w[0], w[1], fld, expected, got)
            if self.repair and self.last_snapshot_pos < self.pos < self.last_ticker_pos:
                # no snapshot to resync from, but a bookTicker stream to check the book against:
                # apply the diffs through the gap (their sizes are absolute, so every level they
                # touch is right again) and rebuild the best levels from each bookTicker
                self.report.repair("update_id_gap_bridged_by_bookTicker", 1, [self.loc(r)])
                self.bridging = True
            else:
                self.report.drop("update_id_gap", 1, [self.loc(r)])
                # drop the book and wait for the next snapshot; this diff waits with the others
                self.synced = False
                self.bids.clear()
                self.asks.clear()
                self.pending = [r]
                return
        self.first_after_snapshot = False
        exch = self._exch(m, ("T", "E"))
        try:
            changes = [
                (self.bids, 1, self.units.price(p, w, "b"), self.units.size(q, w, "b"))
                for p, q in m["b"]
            ] + [
                (self.asks, -1, self.units.price(p, w, "a"), self.units.size(q, w, "a"))
                for p, q in m["a"]
            ]
        except (DataError, KeyError, TypeError, ValueError, OverflowError) as exc:
            if self.strict:
                if isinstance(exc, DataError):
                    raise
                raise DataError(w[0], w[1], "b/a", "lists of [price, qty]") from exc
            self.report.drop("bad_diff", 1, [self.loc(r)])
            # the ids were continuous: skip its content but keep the chain
            self.last_u = u
            return
        for side, sign, px, sz in changes:
            old = side.set(px, sz, u)
            if sz > old:
                self._event(r, ts, ADD, sign, px, sz - old, 0, exch, u)
            elif sz < old:
                self._event(r, ts, CANCEL, sign, px, old - sz, 0, exch, u)
        self.last_u = u
        if self.bridging:
            self._rebuild_best_from_ticker(r, ts, exch)
        self._check_crossed(r, "b/a", ts, exch, u)
        self._book_row(r, ts, exch, u)

    def _rebuild_best_from_ticker(self, r: _Record, ts: int, exch: int) -> None:
        """After an update-id gap with no later snapshot: make the best levels agree with the
        latest bookTicker whose update id ``tu`` the book has reached (``tu <= last u``).

        Only what the ticker proves is changed: a level better than the ticker's best that no
        diff set after ``tu`` was not there (removed: its removal was lost); the ticker's best
        level, if no diff set or removed it after ``tu``, has the ticker's size (set or added:
        a lost change). Each change is an event with ``pruned`` True, counted as a repair.
        """
        assert self.last_u is not None
        j = int(np.searchsorted(self.ticker_u, self.last_u, side="right")) - 1
        if j < 0 or j == self.bridged_ticker:
            return
        self.bridged_ticker = j
        tu = int(self.ticker_u[j])
        for side, sign, px, sz in (
            (self.bids, 1, int(self.ticker_bid[j]), float(self.ticker_bid_sz[j])),
            (self.asks, -1, int(self.ticker_ask[j]), float(self.ticker_ask_sz[j])),
        ):
            name = "bid" if sign == 1 else "ask"
            while (best := side.best()) is not None and (best > px if sign == 1 else best < px):
                if side.age[best] > tu:
                    break  # set by a diff after the ticker: not contradicted
                old = side.set(best, 0.0, tu)
                self._event(r, ts, CANCEL, sign, best, old, 0, exch, tu, pruned=True)
                self.report.repair(f"stale_{name}_removed_by_bookTicker", 1, [self.loc(r)])
            old = side.size.get(px, 0.0)
            touched_after = side.age.get(px, side.gone.get(px, -1)) >= tu
            if old != sz and not touched_after:
                side.set(px, sz, tu)
                kind, delta = (ADD, sz - old) if sz > old else (CANCEL, old - sz)
                self._event(r, ts, kind, sign, px, delta, 0, exch, tu, pruned=True)
                self.report.repair(f"best_{name}_set_from_bookTicker", 1, [self.loc(r)])

    def _check_crossed(self, r: _Record, fld: str, ts: int, exch: int, uid: int) -> None:
        bb, ba = self.bids.best(), self.asks.best()
        if bb is None or ba is None or bb < ba:
            return
        self.crossed_states += 1
        if self.strict:
            w = self.where(r)
            raise DataError(
                w[0],
                w[1],
                fld,
                "a book not crossed or locked after applying this message",
                f"best bid {bb * self.units.tick:.10g} >= best ask {ba * self.units.tick:.10g}",
            )
        if not self.repair:
            self.report.note("crossed_state_left", 1, [self.loc(r)])
            return
        self.report.repair("crossed_state", 1, [self.loc(r)])
        # Of the two crossing best levels, prune the one the bookTicker shows is not there at an
        # update id at or after the one that set it (the latest such ticker up to the book's
        # state, else the first one after it), one level at a time. Without any ticker to judge
        # either, the older level's side is pruned through the other side's best (a diff stream
        # never rests a crossed book: the level the stream touched last is current).
        while (bb := self.bids.best()) is not None and (ba := self.asks.best()) is not None:
            if bb < ba:
                return
            bid_v = self._ticker_verdict(True, bb, self.bids.age[bb])
            ask_v = self._ticker_verdict(False, ba, self.asks.age[ba])
            if bid_v == "stale" or ask_v == "stale":
                side = self.bids if bid_v == "stale" else self.asks
                self._prune(r, side, [bb if side.is_bid else ba], ts, exch, uid, "confirmed")
                continue
            if bid_v is None and ask_v is None:
                bid_age, ask_age = self.bids.age[bb], self.asks.age[ba]
                bids_stale = bid_age <= ask_age
                stale, other_best = (self.bids, ba) if bids_stale else (self.asks, bb)
                self._prune(r, stale, list(stale.crossing(other_best)), ts, exch, uid, None)
                continue
            if bid_v is None or ask_v is None:  # one side is confirmed live: the other one
                side = self.bids if bid_v is None else self.asks
                self._prune(r, side, [bb if side.is_bid else ba], ts, exch, uid, "not_confirmed")
                continue
            # the ticker shows both levels: leave the crossed state to validate_book
            self.report.note("crossed_state_unresolved", 1, [self.loc(r)])
            return

    def _prune(
        self,
        r: _Record,
        side: _Side,
        prices: list[int],
        ts: int,
        exch: int,
        uid: int,
        how: str | None,
    ) -> None:
        name = "bid" if side.is_bid else "ask"
        sign = 1 if side.is_bid else -1
        for px in prices:
            old = side.set(px, 0.0, -1)
            # the removal the stream never sent, as a cancel, so that replaying events gives
            # this book
            self._event(r, ts, CANCEL, sign, px, old, 0, exch, uid, pruned=True)
            self.report.repair(f"stale_{name}_level_pruned", 1, [self.loc(r)])
            if how is not None:
                self.report.note(f"prune_{how}_by_bookTicker", 1)

    def _ticker_verdict(self, is_bid: bool, px: int, age: int) -> str | None:
        """``"stale"`` if a bookTicker at an update id >= ``age`` (the id that set the level)
        shows a better price than ``px`` on its side is not there, ``"live"`` if it does not
        contradict it, ``None`` without such a ticker."""
        tu = self.ticker_u
        if not tu.size or age < 0:
            return None
        assert self.last_u is not None
        j = int(np.searchsorted(tu, self.last_u, side="right")) - 1
        if j < 0 or tu[j] < age:  # no ticker between the level's update and now: look ahead
            j = int(np.searchsorted(tu, age, side="left"))
            if j >= tu.size:
                return None
        if is_bid:
            return "stale" if px > self.ticker_bid[j] else "live"
        return "stale" if px < self.ticker_ask[j] else "live"

    def _book_row(self, r: _Record, ts: int, exch: int, uid: int) -> None:
        bp, bs = self.bids.top(self.levels)
        ap, az = self.asks.top(self.levels)
        self.bk_ts.append(ts)
        self.bk_rows.append((bp, bs, ap, az))
        self.bk_meta["exch_ts"].append(exch)
        self.bk_meta["update_id"].append(uid)
        self.bk_meta["file"].append(r.file)
        self.bk_meta["line"].append(r.line)

    def finish(self) -> None:
        if self.pending:
            if not self.ever_synced:
                self.report.drop("diff_without_snapshot", len(self.pending))
            else:
                self.report.drop(
                    "diff_after_gap_without_snapshot",
                    len(self.pending),
                    [self.loc(d) for d in self.pending[:5]],
                )

    # ----- output -----
    def events_frame(self) -> tuple[pd.DataFrame, RowSource]:
        ev = self.ev
        events = make_events(
            np.array(ev["ts"], np.int64),
            np.array(ev["kind"], np.int8),
            np.array(ev["side"], np.int8),
            np.array(ev["price"], np.int64),
            np.array(ev["size"], np.float64),
            np.full(len(ev["ts"]), -1, np.int64),
            np.array(ev["aggressor"], np.int8),
            extra={
                "exch_ts": np.array(ev["exch_ts"], np.int64),
                "update_id": np.array(ev["update_id"], np.int64),
                "pruned": np.array(ev["pruned"], bool),
            },
        )
        source = RowSource(
            tuple(str(f) for f in self.files),
            np.array(ev["file"], np.int64),
            np.array(ev["line"], np.int64),
            {"ts": "local timestamp"},
        )
        return events, source

    def book_frame(self) -> tuple[pd.DataFrame, RowSource]:
        n, L = len(self.bk_ts), self.levels
        arrs = [np.full((n, L), np.nan) for _ in range(2)] + [np.zeros((n, L)) for _ in range(2)]
        bid_px, ask_px, bid_sz, ask_sz = arrs
        for i, (bp, bs, ap, az) in enumerate(self.bk_rows):
            bid_px[i, : len(bp)] = bp
            bid_sz[i, : len(bs)] = bs
            ask_px[i, : len(ap)] = ap
            ask_sz[i, : len(az)] = az
        book = make_book(
            np.array(self.bk_ts, np.int64),
            bid_px,
            bid_sz,
            ask_px,
            ask_sz,
            extra={
                "exch_ts": np.array(self.bk_meta["exch_ts"], np.int64),
                "update_id": np.array(self.bk_meta["update_id"], np.int64),
            },
        )
        source = RowSource(
            tuple(str(f) for f in self.files),
            np.array(self.bk_meta["file"], np.int64),
            np.array(self.bk_meta["line"], np.int64),
            {"ts": "local timestamp"},
        )
        return book, source

    def quotes_frame(self) -> pd.DataFrame:
        q = self.quotes
        return pd.DataFrame(
            {
                "ts": np.array(q["ts"], np.int64),
                "exch_ts": np.array(q["exch_ts"], np.int64),
                "update_id": np.array(q["update_id"], np.int64),
                "bid_px": np.array(q["bid_px"], np.int64),
                "bid_sz": np.array(q["bid_sz"], np.float64),
                "ask_px": np.array(q["ask_px"], np.int64),
                "ask_sz": np.array(q["ask_sz"], np.float64),
            }
        )

"""LOBSTER loader: synthetic files for every validation path, the sample GOOG/AAPL files for
facts."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data import DataError, check_book_consistency, load_lobster
from data.samples import SAMPLES_DIR
from data.schema import EVENT_COLUMNS, validate_book, validate_events


def lobster_file(name: str) -> Path:
    """A LOBSTER file of the project's samples (``data/samples/lobster``)."""
    return SAMPLES_DIR / "lobster" / name


GOOG = "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
AAPL_L1 = "AAPL_2012-06-21_34200000_57600000_message_1.csv.gz"
AAPL_TINY = "AAPL_first49s_L10/AAPL_2012-06-21_34200000_57600000_message_10.csv"

# ---------------------------------------------------------------- a tiny synthetic day (L = 1)
# time, type, order id, size, price, direction  ->  book after it: ask_px, ask_sz, bid_px, bid_sz
E = 9_999_999_999
ROWS = [
    ((34200.1, 1, 1, 100, 1000000, 1), (E, 0, 1000000, 100)),  # add bid 100 @ 100.00
    ((34200.2, 1, 2, 50, 1000100, -1), (1000100, 50, 1000000, 100)),  # add ask 50 @ 100.01
    ((34200.3, 1, 3, 20, 1000000, 1), (1000100, 50, 1000000, 120)),  # add bid 20
    ((34200.4, 3, 3, 20, 1000000, 1), (1000100, 50, 1000000, 100)),  # delete it
    ((34200.5, 4, 2, 10, 1000100, -1), (1000100, 40, 1000000, 100)),  # buy hits the ask
    ((34200.6, 5, 0, 5, 1000050, -1), (1000100, 40, 1000000, 100)),  # hidden midpoint execution
    ((34200.7, 1, 4, 30, 1000200, -1), (1000100, 40, 1000000, 100)),  # add ask deeper (not shown)
    ((34200.8, 2, 2, 15, 1000100, -1), (1000100, 25, 1000000, 100)),  # partial cancel
    ((34200.9, 3, 2, 25, 1000100, -1), (1000200, 30, 1000000, 100)),  # delete: level 2 moves up
]
NAME = "TEST_2012-06-21_34200000_57600000_{}_1.csv"


def fmt(values: tuple) -> str:
    return ",".join(str(v) for v in values)


def write_day(
    tmp_path: Path,
    msg_lines: list[str] | None = None,
    ob_lines: list[str] | None = None,
    gz: bool = False,
) -> tuple[Path, Path]:
    msg_lines = msg_lines if msg_lines is not None else [fmt(m) for m, _ in ROWS]
    ob_lines = ob_lines if ob_lines is not None else [fmt(b) for _, b in ROWS]
    paths = []
    for what, lines in (("message", msg_lines), ("orderbook", ob_lines)):
        path = tmp_path / (NAME.format(what) + (".gz" if gz else ""))
        text = "\n".join(lines) + "\n"
        if gz:
            with gzip.open(path, "wt") as fh:
                fh.write(text)
        else:
            path.write_text(text)
        paths.append(path)
    return paths[0], paths[1]


def edit(index: int, field: int, value: object) -> list[str]:
    """The synthetic message file with field ``field`` of row ``index`` (0-based) replaced."""
    lines: list[list[object]] = [list(m) for m, _ in ROWS]
    lines[index][field] = value
    return [fmt(tuple(x)) for x in lines]


# ---------------------------------------------------------------- synthetic: valid files


@pytest.mark.parametrize("gz", [False, True])
def test_synthetic_day_loads_into_the_canonical_schema(tmp_path, gz):
    msg, ob = write_day(tmp_path, gz=gz)
    md = load_lobster(msg)  # the orderbook file is found beside the message file
    ev, book = md.events, md.book
    assert tuple(ev.columns[: len(EVENT_COLUMNS)]) == EVENT_COLUMNS
    assert len(ev) == len(book) == len(ROWS)
    assert list(ev["kind"]) == [
        "add",
        "add",
        "add",
        "cancel",
        "trade",
        "trade",
        "add",
        "cancel",
        "cancel",
    ]
    assert ev["hidden"].tolist() == [False] * 5 + [True] + [False] * 3
    # 09:30 US/Eastern (EDT, UTC-4) on 2012-06-21 is 13:30 UTC
    assert pd.Timestamp(ev["ts"].iloc[0], tz="UTC") == pd.Timestamp(
        "2012-06-21 13:30:00.1", tz="UTC"
    )
    assert ev["ts"].iloc[1] - ev["ts"].iloc[0] == 100_000_000
    # a visible trade against a resting ask: resting side -1, buyer-initiated
    trade = ev.iloc[4]
    assert (trade["side"], trade["aggressor"], trade["price"], trade["order_id"]) == (
        -1,
        1,
        10001,
        2,
    )
    # the hidden midpoint execution at 100.005 against a resting ask rounds up to 100.01
    assert ev["price"].iloc[5] == 10001 and md.report.notes["hidden_subtick_price_rounded"] == 1
    assert np.isnan(book["ask_px_1"].iloc[0]) and book["ask_sz_1"].iloc[0] == 0
    assert book["bid_px_1"].iloc[-1] == 10000 and book["ask_px_1"].iloc[-1] == 10002
    assert md.spec.tick_size == 0.01 and md.spec.price_scale == 10_000
    assert md.spec.timezone == "America/New_York" and md.spec.symbol == "TEST"
    assert md.report.clean and len(md.sources) == 2 and len(md.sources[0].sha256) == 64
    bad = check_book_consistency(md)
    assert all(bad[k].size == 0 for k in ("size_delta", "other_side", "unchanged"))
    assert bad["checked"].size == 6  # every visible event but the first and the one beyond level 1


def test_message_only_load_has_an_empty_book(tmp_path):
    msg, ob = write_day(tmp_path)
    ob.unlink()
    md = load_lobster(msg)
    assert len(md.events) == len(ROWS) and len(md.book) == 0
    assert md.report.notes["no_orderbook_file"] == 1


def test_bad_file_name_is_an_error(tmp_path):
    path = tmp_path / "messages.csv"
    path.write_text(fmt(ROWS[0][0]) + "\n")
    with pytest.raises(DataError, match="file name"):
        load_lobster(path)


# ---------------------------------------------------------------- synthetic: bad rows

BAD_CASES = {
    # name: (message lines, 1-based line, field named, reason counted when not strict)
    "time_backwards": (edit(4, 0, 34200.25), 5, "time", "time_backwards"),
    "negative_size": (edit(2, 3, -20), 3, "size", "negative_size"),
    "non_numeric_price": (edit(3, 4, "abc"), 4, "price", "non_numeric"),
    "empty_field": (edit(6, 2, ""), 7, "order_id", "non_numeric"),
    "too_many_columns": (edit(5, 5, "-1,7"), 6, "columns", "wrong_column_count"),
    "too_few_columns": (
        [*edit(1, 5, "")[:1], "34200.2,1,2,50,1000100", *edit(1, 5, "")[2:]],
        2,
        "columns",
        "wrong_column_count",
    ),
    "unknown_type": (edit(7, 1, 6), 8, "type", "unknown_type"),
    "bad_direction": (edit(0, 5, 0), 1, "direction", "bad_direction"),
    "off_tick_price": (edit(6, 4, 1000250), 7, "price", "off_tick_price"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_message_row_raises_naming_file_line_and_field(tmp_path, case):
    lines, line, field, _ = BAD_CASES[case]
    msg, _ = write_day(tmp_path, msg_lines=lines)
    with pytest.raises(DataError) as info:
        load_lobster(msg)
    err = info.value
    assert (Path(err.path).name, err.line, err.field) == (msg.name, line, field)
    assert f"line {line}" in str(err) and msg.name in str(err) and repr(field) in str(err)


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_message_row_is_dropped_and_counted_when_not_strict(tmp_path, case):
    lines, line, _, reason = BAD_CASES[case]
    msg, _ = write_day(tmp_path, msg_lines=lines)
    md = load_lobster(msg, strict=False)
    assert md.report.dropped == {reason: 1}
    assert len(md.events) == len(md.book) == len(ROWS) - 1
    assert any(f":{line}" in w for w in md.report.examples[reason])
    keep = np.arange(len(ROWS)) != line - 1
    expected_ts = np.array([m[0] for m, _ in ROWS])[keep]
    if case != "time_backwards":  # there the edited time is the dropped one
        np.testing.assert_allclose(
            (md.events["ts"] % 86_400_000_000_000) / 1e9 - 4 * 3600, expected_ts
        )


def test_gzip_and_bad_row_lines_are_lines_of_the_decompressed_text(tmp_path):
    msg, _ = write_day(tmp_path, msg_lines=edit(3, 4, "abc"), gz=True)
    with pytest.raises(DataError) as info:
        load_lobster(msg)
    assert (info.value.line, info.value.field) == (4, "price")


def test_blank_line_is_reported_at_its_line(tmp_path):
    lines = [fmt(m) for m, _ in ROWS]
    lines.insert(2, "")
    msg, _ = write_day(tmp_path, msg_lines=lines, ob_lines=[fmt(b) for _, b in ROWS] + ["1,1,1,1"])
    with pytest.raises(DataError) as info:
        load_lobster(msg)
    assert (info.value.line, info.value.field) == (3, "columns")


def orderbook_with(index: int, values: tuple) -> list[str]:
    lines = [fmt(b) for _, b in ROWS]
    lines[index] = fmt(values)
    return lines


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ((1000000, 40, 1000000, 100), "bid_px_1 (column 3)", "crossed_book"),  # locked
        ((1000100, 40, 1000200, 100), "bid_px_1 (column 3)", "crossed_book"),  # crossed
        ((1000100, -40, 1000000, 100), "ask_sz_1 (column 2)", "negative_size"),
    ],
)
def test_bad_orderbook_row_names_the_orderbook_file(tmp_path, values, field, reason):
    msg, ob = write_day(tmp_path, ob_lines=orderbook_with(5, values))
    with pytest.raises(DataError) as info:
        load_lobster(msg)
    assert (Path(info.value.path).name, info.value.line, info.value.field) == (ob.name, 6, field)
    md = load_lobster(msg, strict=False)
    assert md.report.dropped == {reason: 1} and len(md.book) == len(ROWS) - 1


def test_row_count_mismatch(tmp_path):
    msg, ob = write_day(tmp_path, ob_lines=[fmt(b) for _, b in ROWS[:-1]])
    with pytest.raises(DataError) as info:
        load_lobster(msg)
    assert (Path(info.value.path).name, info.value.line, info.value.field) == (ob.name, 9, "rows")
    md = load_lobster(msg, strict=False)
    assert md.report.dropped["row_count_mismatch"] == 1 and len(md.events) == len(ROWS) - 1


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(len(ROWS))))
def test_a_shuffled_message_file_is_rejected(tmp_path_factory, order):
    """Any reordering of a file with strictly increasing times is caught at its first earlier
    row, or before it at the first row whose message does not explain its book change."""
    tmp_path = tmp_path_factory.mktemp("perm")
    rows = [ROWS[i] for i in order]
    msg, _ = write_day(tmp_path, [fmt(m) for m, _ in rows], [fmt(b) for _, b in rows])
    times = np.array([m[0] for m, _ in rows])
    if list(order) == sorted(order):
        load_lobster(msg)
        return
    first_bad = int(np.argmax(times < np.maximum.accumulate(times))) + 1
    with pytest.raises(DataError) as info:
        load_lobster(msg)
    err = info.value
    assert (err.line, err.field) == (first_bad, "time") or (
        err.line is not None and err.line <= first_bad and "orderbook line" in str(err)
    )


# ---------------------------------------------------------------- sample files


@pytest.mark.data
def test_aapl_tiny_fixture(tmp_path):
    path = lobster_file(AAPL_TINY)
    md = load_lobster(path)
    assert len(md.events) == len(md.book) == 999 and md.levels == 10
    assert md.report.clean
    bad = check_book_consistency(md)
    assert all(bad[k].size == 0 for k in ("size_delta", "other_side", "unchanged"))
    assert (md.events["msg_type"] == 5).sum() == md.events["hidden"].sum() == 61
    small = load_lobster(path, levels=3)
    assert small.levels == 3
    pd.testing.assert_frame_equal(
        small.book[["bid_px_3", "ask_sz_3"]], md.book[["bid_px_3", "ask_sz_3"]]
    )
    with pytest.raises(ValueError, match="levels"):
        load_lobster(path, levels=11)


@pytest.fixture(scope="module")
def goog():
    path = lobster_file(GOOG)
    t0 = time.perf_counter()
    md = load_lobster(path)
    return md, time.perf_counter() - t0


@pytest.mark.data
def test_goog_full_day_facts(goog):
    md, seconds = goog
    ev, book = md.events, md.book
    assert len(ev) == len(book) == 147_916 and md.levels == 10
    trades = ev["kind"] == "trade"
    assert trades.sum() == 11_678 and (trades & ev["hidden"]).sum() == 3_913
    assert np.all(np.diff(ev["ts"].to_numpy()) >= 0)
    assert not (book["bid_px_1"] >= book["ask_px_1"]).any()
    assert (book["ask_px_1"] - book["bid_px_1"]).median() == 28
    assert md.report.dropped == {} and md.report.repaired == {}
    assert md.report.notes == {"hidden_subtick_price_rounded": 50}
    # the canonical checks pass again on the output
    assert validate_events(ev).all() and validate_book(book).all()
    start, end = pd.Timestamp(ev["ts"].iloc[0], tz="UTC"), pd.Timestamp(ev["ts"].iloc[-1], tz="UTC")
    assert start.tz_convert("America/New_York").strftime("%H:%M") == "09:30"
    assert end.tz_convert("America/New_York").strftime("%H:%M") == "15:59"
    assert seconds < 5.0, f"GOOG full day loaded in {seconds:.2f} s (limit 5 s)"


@pytest.mark.data
def test_goog_every_book_row_is_its_message_applied_to_the_previous_row(goog):
    md, _ = goog
    bad = check_book_consistency(md)
    assert bad["size_delta"].size == 0, bad["size_delta"][:10]
    assert bad["other_side"].size == 0, bad["other_side"][:10]
    assert bad["unchanged"].size == 0, bad["unchanged"][:10]
    visible = int((md.events["msg_type"] <= 4).sum())
    assert (
        bad["checked"].size == visible - 1
    )  # every visible event after the first lies in 10 levels


@pytest.mark.data
def test_aapl_level1_full_day():
    md = load_lobster(lobster_file(AAPL_L1))
    assert len(md.events) == 118_497 and md.levels == 1
    bad = check_book_consistency(md)
    assert all(bad[k].size == 0 for k in ("size_delta", "other_side", "unchanged"))
    assert not (md.book["bid_px_1"] >= md.book["ask_px_1"]).any()

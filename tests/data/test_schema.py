"""The canonical frames, the shared validators and the error they raise."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data import DataError, InstrumentSpec, ValidationReport, book_columns
from data.schema import (
    ADD,
    CANCEL,
    EVENT_COLUMNS,
    HALT,
    TRADE,
    RowSource,
    make_book,
    make_events,
    validate_book,
    validate_events,
)


def events(
    ts=(1, 2, 3),
    kind=(ADD, TRADE, CANCEL),
    side=(1, -1, 1),
    size=(1.0, 2.0, 1.0),
    aggressor=(0, 1, 0),
):
    n = len(ts)
    return make_events(
        np.array(ts),
        np.array(kind),
        np.array(side),
        np.arange(n) + 100,
        np.array(size),
        np.full(n, -1),
        np.array(aggressor),
    )


def book(bid_px, ask_px, bid_sz=None, ask_sz=None, ts=None):
    bid_px, ask_px = np.array(bid_px, float), np.array(ask_px, float)
    bid_sz = np.where(np.isnan(bid_px), 0.0, 1.0) if bid_sz is None else np.array(bid_sz, float)
    ask_sz = np.where(np.isnan(ask_px), 0.0, 1.0) if ask_sz is None else np.array(ask_sz, float)
    ts = np.arange(len(bid_px)) if ts is None else np.array(ts)
    return make_book(ts, bid_px, bid_sz, ask_px, ask_sz)


def test_canonical_columns_and_dtypes():
    ev = events()
    assert tuple(ev.columns) == EVENT_COLUMNS
    assert [str(ev[c].dtype) for c in EVENT_COLUMNS] == [
        "int64",
        "category",
        "int8",
        "int64",
        "float64",
        "int64",
        "int8",
    ]
    assert list(ev["kind"].cat.categories) == ["add", "cancel", "trade", "snapshot", "halt"]
    assert book_columns(2) == [
        "ts",
        "bid_px_1",
        "bid_px_2",
        "bid_sz_1",
        "bid_sz_2",
        "ask_px_1",
        "ask_px_2",
        "ask_sz_1",
        "ask_sz_2",
    ]
    b = book([[10, 9]], [[11, 12]])
    assert list(b.columns) == book_columns(2)


def test_instrument_spec_is_frozen_and_checked():
    spec = InstrumentSpec("GOOG", 0.01, 1.0, 10_000, "America/New_York")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.tick_size = 0.02  # type: ignore[misc]
    with pytest.raises(ValueError):
        InstrumentSpec("X", 0.0, 1.0, 1.0, "UTC")


def test_data_error_message_names_file_line_field_and_expectation():
    err = DataError("/d/x.csv", 12, "price", "a number", "abc")
    assert str(err) == "/d/x.csv, line 12, field 'price': expected a number, got 'abc'"
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.line == 12


def test_valid_events_pass():
    assert validate_events(events()).all()
    halt = events(ts=(1,), kind=(HALT,), side=(0,), size=(0.0,), aggressor=(0,))
    assert validate_events(halt).all()


@pytest.mark.parametrize(
    ("kw", "row", "column", "reason"),
    [
        ({"ts": (1, 3, 2)}, 2, "ts", "time_backwards"),
        ({"size": (1.0, -2.0, 1.0)}, 1, "size", "negative_size"),
        ({"side": (1, 0, 1)}, 1, "side", "bad_side"),
        ({"aggressor": (0, 0, 0)}, 1, "aggressor", "bad_aggressor"),
        ({"aggressor": (1, 1, 0)}, 0, "aggressor", "bad_aggressor"),
    ],
)
def test_bad_events(kw, row, column, reason):
    ev = events(**kw)
    source = RowSource(("f.csv",), np.zeros(3, np.int64), np.array([5, 6, 7]), {"ts": "time"})
    with pytest.raises(DataError) as info:
        validate_events(ev, source=source)
    assert (info.value.path, info.value.line) == ("f.csv", 5 + row)
    assert info.value.field == source.field_name(column)
    report = ValidationReport()
    keep = validate_events(ev, strict=False, report=report, source=source)
    assert keep.tolist() == [i != row for i in range(3)]
    assert report.dropped == {reason: 1} and report.examples[reason] == [f"f.csv:{5 + row}"]


@pytest.mark.parametrize(
    ("frame", "row", "field", "reason"),
    [
        (book([[10, 9], [11, 9]], [[11, 12], [11, 12]]), 1, "bid_px_1", "crossed_book"),
        (book([[10, 9], [12, 9]], [[11, 12], [11, 12]]), 1, "bid_px_1", "crossed_book"),
        (book([[10, 9], [10, 11]], [[12, 13], [12, 13]]), 1, "bid_px_2", "level_order"),
        (book([[10, 9]], [[11, 12]], bid_sz=[[1, -1]]), 0, "bid_sz_2", "negative_size"),
        (book([[10, np.nan]], [[11, 12]], bid_sz=[[1, 3]]), 0, "bid_sz_2", "empty_level_size"),
        (book([[np.nan, 9]], [[11, 12]]), 0, "bid_px_2", "level_order"),
        (book([[10, 9], [10, 9]], [[11, 12], [11, 12]], ts=[5, 4]), 1, "ts", "time_backwards"),
    ],
)
def test_bad_book_rows(frame, row, field, reason):
    with pytest.raises(DataError) as info:
        validate_book(frame, what="book.csv")
    assert (info.value.line, info.value.field) == (row + 1, field)
    report = ValidationReport()
    keep = validate_book(frame, strict=False, report=report)
    assert not keep[row] and keep.sum() == len(frame) - 1 and report.dropped == {reason: 1}


def test_one_sided_and_empty_books_are_valid():
    assert validate_book(book([[np.nan, np.nan]], [[11, 12]])).all()
    assert validate_book(book([[np.nan]], [[np.nan]])).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=2, max_size=50))
def test_time_check_accepts_exactly_the_sorted_order(times):
    n = len(times)
    ev = events(
        ts=tuple(times), kind=(ADD,) * n, side=(1,) * n, size=(1.0,) * n, aggressor=(0,) * n
    )
    ok = bool(np.all(np.diff(times) >= 0))
    if ok:
        assert validate_events(ev).all()
    else:
        with pytest.raises(DataError, match="ts"):
            validate_events(ev)
    keep = validate_events(ev, strict=False)
    assert np.all(np.diff(np.array(times)[keep]) >= 0)  # what is kept is in order


def test_report_summary():
    r = ValidationReport()
    assert r.clean and str(r) == "clean"
    r.drop("time_backwards", 2, ["a:1", "a:2"])
    r.repair("crossed_state", 1)
    r.note("rounded", 3)
    assert not r.clean and r.n_dropped == 2 and r.n_repaired == 1
    assert str(r) == "dropped: time_backwards=2; repaired: crossed_state=1; notes: rounded=3"

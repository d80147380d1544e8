"""Binance raw-capture loader: synthetic captures for every rule, the sample captures for facts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data import DataError, load_binance
from data.binance import timestamp_unit_factor
from data.samples import SAMPLES_DIR
from data.schema import EVENT_COLUMNS, book_arrays, validate_book, validate_events


def capture(*names: str) -> list[Path]:
    """The project's sample Binance captures (``data/samples/binance_raw``)."""
    return [SAMPLES_DIR / "binance_raw" / n for n in names]


NEXO = ("spot_nexousdt_20240723.dat.gz", "spot_nexousdt_20240724.dat.gz")
BTC_SPOT = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")
BTC_USDM = ("usdm_btcusdt_20240718.gz", "usdm_btcusdt_20240719.gz")

# ---------------------------------------------------------------- synthetic captures
T0_US = 1_721_749_182_000_000  # 2024-07-23 15:39:42 UTC, in microseconds
SYM = "testusdt"


def snapshot(uid: int, bids: list, asks: list, **extra: object) -> dict:
    return {"lastUpdateId": uid, **extra, "bids": bids, "asks": asks}


def diff(U: int, u: int, b: list, a: list, E: int = 0, pu: int | None = None) -> dict:
    data: dict = {"e": "depthUpdate", "E": E, "s": SYM.upper(), "U": U, "u": u, "b": b, "a": a}
    if pu is not None:
        data["pu"] = pu
        data["T"] = E
    return {"stream": f"{SYM}@depth@100ms", "data": data}


def trade(p: str, q: str, m: bool, T: int = 0, t: int = 1) -> dict:
    data = {"e": "trade", "E": T, "s": SYM.upper(), "t": t, "p": p, "q": q, "T": T, "m": m}
    return {"stream": f"{SYM}@trade", "data": data}


def ticker(u: int, b: str, B: str, a: str, A: str) -> dict:
    data = {"u": u, "s": SYM.upper(), "b": b, "B": B, "a": a, "A": A}
    return {"stream": f"{SYM}@bookTicker", "data": data}


def write_capture(
    path: Path, messages: list[dict], unit: int = 1_000, gz: bool = True, t0_us: int = T0_US
) -> Path:
    """One line per message, ``<local time> <JSON>``; ``unit`` = ns per unit of the local time."""
    lines = []
    for i, msg in enumerate(messages):
        t_ns = (t0_us + 100_000 * i) * 1_000
        lines.append(f"{t_ns // unit} {json.dumps(msg)}")
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def base_messages() -> list[dict]:
    """A valid spot capture: buffered diffs, snapshot, diffs, trades, tickers."""
    return [
        diff(95, 99, [["1.00000000", "9.0"]], [], E=1),  # line 1: already in the snapshot
        diff(100, 101, [["0.99900000", "7.5"]], [], E=2),  # line 2: straddles lastUpdateId=100
        snapshot(100, [["1.000", "10.0"], ["0.999", "5.0"]], [["1.002", "3.0"], ["1.003", "4.0"]]),
        diff(102, 103, [["1.001", "2.0"]], [["1.003", "0.0"]], E=4),  # line 4
        trade("1.002", "1.0", False, T=5, t=7),  # line 5: buyer lifts the ask
        ticker(103, "1.001", "2.0", "1.002", "3.0"),
        diff(104, 104, [["1.001", "0.5"]], [["1.002", "2.0"]], E=7),  # line 7
        trade("1.001", "1.5", True, T=8, t=8),  # line 8: seller hits the bid
        diff(105, 106, [["1.001", "0"]], [["1.004", "1.0"]], E=9),  # line 9
    ]


def test_timestamp_unit_from_magnitude():
    t_ns = 1_723_161_253_937_085_768
    for unit, factor in (("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)):
        assert timestamp_unit_factor(t_ns // factor) == factor, unit


def test_spot_capture_into_the_canonical_schema(tmp_path):
    path = write_capture(tmp_path / "cap.gz", base_messages())
    md = load_binance(path, levels=3)
    ev, book = md.events, md.book
    assert tuple(ev.columns[: len(EVENT_COLUMNS)]) == EVENT_COLUMNS
    assert md.spec.symbol == "TESTUSDT" and md.spec.tick_size == 0.001 and md.spec.lot_size == 0.1
    # snapshot rows (4 levels), the buffered diff applied at the snapshot, then the rest in order
    kinds = ev["kind"].tolist()
    assert kinds[:4] == ["snapshot"] * 4
    assert kinds[4:] == [
        "add",
        "add",
        "cancel",
        "trade",
        "cancel",
        "cancel",
        "trade",
        "cancel",
        "add",
    ]
    assert md.report.notes["diff_before_snapshot_already_in_it"] == 1
    assert md.report.notes["diff_before_snapshot_applied"] == 1
    # the buffered diff: the bid at 0.999 went 5.0 -> 7.5, an add of 25 lots of 0.1
    first = ev.iloc[4]
    assert (first["side"], first["price"], first["size"]) == (1, 999, 25.0)
    trades = ev[ev["kind"] == "trade"]
    assert trades["side"].tolist() == [-1, 1] and trades["aggressor"].tolist() == [1, -1]
    assert trades["price"].tolist() == [1002, 1001] and trades["size"].tolist() == [10.0, 15.0]
    assert trades["exch_ts"].tolist() == [5_000_000, 8_000_000]
    assert (ev["order_id"] == -1).all()
    # microseconds detected: line k's local time is T0 + 0.1 s * (k - 1)
    assert trades["ts"].tolist() == [(T0_US + 400_000) * 1000, (T0_US + 700_000) * 1000]
    # one book row per snapshot / applied diff; the last one
    assert len(book) == 5
    last = book.iloc[-1]
    assert (last["bid_px_1"], last["bid_sz_1"], last["bid_px_2"], last["bid_sz_2"]) == (
        1000,
        100,
        999,
        75,
    )
    assert (last["ask_px_1"], last["ask_sz_1"], last["ask_px_2"]) == (1002, 20, 1004)
    assert np.isnan(last["ask_px_3"]) and last["ask_sz_3"] == 0
    assert md.quotes is not None and md.quotes["bid_px"].tolist() == [1001]
    assert md.report.dropped == {} and md.report.repaired == {}


def test_the_snapshot_straddling_diff_is_applied(tmp_path):
    md = load_binance(write_capture(tmp_path / "cap.gz", base_messages()), levels=3)
    row = md.book.iloc[1]  # after the buffered diff (u=101), applied at the snapshot's arrival
    assert row["update_id"] == 101 and row["bid_sz_2"] == 75
    assert row["ts"] == md.book["ts"].iloc[0]


@pytest.mark.parametrize("unit", [1, 1_000, 1_000_000])
def test_local_time_units_give_the_same_ns(tmp_path, unit):
    ref = load_binance(write_capture(tmp_path / "us.gz", base_messages(), unit=1_000))
    md = load_binance(write_capture(tmp_path / f"u{unit}.gz", base_messages(), unit=unit))
    np.testing.assert_array_equal(md.events["ts"] // 1_000_000, ref.events["ts"] // 1_000_000)


def test_a_capture_split_in_two_files_reads_as_one(tmp_path):
    msgs = base_messages()
    one = load_binance(write_capture(tmp_path / "all.gz", msgs))
    a = write_capture(tmp_path / "a.gz", msgs[:5])
    b = write_capture(
        tmp_path / "b.gz", msgs[5:], t0_us=T0_US + 500_000, gz=False
    )  # plain text too
    two = load_binance([a, b])
    pd.testing.assert_frame_equal(one.events, two.events)
    pd.testing.assert_frame_equal(one.book, two.book)
    assert [Path(s.path).name for s in two.sources] == ["a.gz", "b.gz"]


def test_spot_gap_raises_naming_file_line_and_field(tmp_path):
    msgs = base_messages()
    msgs[6] = diff(105, 105, [["1.001", "0.5"]], [], E=7)  # expected U = 104
    path = write_capture(tmp_path / "cap.gz", msgs)
    with pytest.raises(DataError) as info:
        load_binance(path)
    err = info.value
    assert (Path(err.path).name, err.line, err.field) == ("cap.gz", 7, "U")
    assert "104" in str(err)


def test_spot_gap_resyncs_from_the_next_snapshot_when_not_strict(tmp_path):
    msgs = base_messages()
    msgs[6] = diff(105, 105, [["1.001", "0.5"]], [], E=7)  # gap
    msgs[8] = diff(106, 107, [["1.001", "0"]], [], E=9)  # lost: no book until the next snapshot
    msgs += [
        snapshot(107, [["1.000", "1.0"]], [["1.005", "1.0"]]),
        diff(108, 108, [], [["1.004", "2.0"]], E=11),
    ]
    md = load_binance(write_capture(tmp_path / "cap.gz", msgs), strict=False)
    # the gap diff and the next one are covered by the new snapshot: their events are lost
    assert md.report.dropped == {"update_id_gap": 1, "diff_while_unsynced": 2}
    assert md.report.notes["resynced_from_snapshot"] == 1
    assert md.report.notes["diff_before_snapshot_already_in_it"] == 1  # line 1, at the first one
    last = md.book.iloc[-1]
    assert (last["bid_px_1"], last["ask_px_1"], last["update_id"]) == (1000, 1004, 108)


def test_gap_without_a_later_snapshot_drops_the_rest_of_the_depth_stream(tmp_path):
    msgs = base_messages()
    msgs[6] = diff(105, 105, [["1.001", "0.5"]], [], E=7)  # gap
    msgs[8] = diff(106, 107, [["1.001", "0"]], [], E=9)
    md = load_binance(write_capture(tmp_path / "cap.gz", msgs), strict=False)
    assert md.report.dropped == {"update_id_gap": 1, "diff_after_gap_without_snapshot": 2}
    assert (md.events["kind"] == "trade").sum() == 2  # trades are kept
    assert md.book["update_id"].tolist() == [100, 101, 103]


def test_an_older_snapshot_does_not_reset_a_book_in_sync(tmp_path):
    msgs = base_messages()
    msgs.append(snapshot(102, [["0.900", "1.0"]], [["1.100", "1.0"]]))
    md = load_binance(write_capture(tmp_path / "cap.gz", msgs), levels=3)
    assert md.report.notes["older_snapshot_ignored"] == 1
    assert md.book["bid_px_1"].iloc[-1] == 1000


def test_futures_continuity_uses_pu(tmp_path):
    msgs = [
        snapshot(100, [["100.0", "1.000"]], [["100.2", "1.000"]], E=1, T=1),
        diff(95, 103, [["100.1", "0.5"]], [], E=2, pu=94),  # first: U <= 100 <= u
        diff(110, 120, [], [["100.3", "1.0"]], E=3, pu=103),  # ids jump: fine on futures
        diff(121, 125, [], [["100.3", "0"]], E=4, pu=119),  # pu != previous u (120)
    ]
    path = write_capture(tmp_path / "fut.gz", msgs)
    with pytest.raises(DataError) as info:
        load_binance(path, market="usdm")
    assert (info.value.line, info.value.field) == (4, "pu") and "120" in str(info.value)
    # the same ids break the spot rule already at line 3
    with pytest.raises(DataError) as info:
        load_binance(path, market="spot")
    assert (info.value.line, info.value.field) == (3, "U")
    md = load_binance(write_capture(tmp_path / "ok.gz", msgs[:3]), market="usdm")
    assert md.report.dropped == {} and md.spec.tick_size == 0.1 and md.spec.lot_size == 0.1
    assert md.book["exch_ts"].tolist() == [1_000_000, 2_000_000, 3_000_000]


def stale_bid_messages() -> list[dict]:
    """A bid at 1.003 whose removal never comes; the asks then move down through it."""
    return [
        snapshot(100, [["1.000", "1.0"]], [["1.005", "1.0"]]),
        diff(101, 101, [["1.003", "2.0"]], [], E=1),  # line 2: the level that will go stale
        diff(102, 102, [], [["1.004", "1.0"]], E=2),
        ticker(103, "1.000", "1.0", "1.002", "1.0"),  # line 4: the true best bid is 1.000
        diff(103, 103, [], [["1.002", "1.0"]], E=3),  # line 5: crosses the stale bid
        diff(104, 104, [], [["1.001", "1.0"]], E=4),
    ]


def test_crossed_book_raises_at_the_first_crossed_state(tmp_path):
    path = write_capture(tmp_path / "cap.gz", stale_bid_messages())
    with pytest.raises(DataError) as info:
        load_binance(path)
    assert (info.value.line, info.value.field) == (5, "b/a")
    assert "1.003" in str(info.value) and "1.002" in str(info.value)


def test_crossed_book_is_repaired_by_pruning_the_older_side(tmp_path):
    path = write_capture(tmp_path / "cap.gz", stale_bid_messages())
    md = load_binance(path, strict=False)
    assert md.report.repaired == {"crossed_state": 1, "stale_bid_level_pruned": 1}
    assert md.report.notes["prune_confirmed_by_bookTicker"] == 1
    pruned = md.events[md.events["pruned"]]
    assert pruned[["kind", "side", "price", "size"]].values.tolist() == [["cancel", 1, 1003, 2.0]]
    assert not (md.book["bid_px_1"] >= md.book["ask_px_1"]).any()
    assert md.book["bid_px_1"].iloc[-1] == 1000 and md.book["ask_px_1"].iloc[-1] == 1001
    left = load_binance(path, strict=False, repair=False)
    assert left.report.notes["crossed_state_left"] == 2 and left.report.dropped["crossed_book"] == 2


@pytest.mark.parametrize(
    ("line_text", "field", "reason"),
    [
        ("abc {}", "local timestamp", "bad_local_timestamp"),
        ("1721749182000001 {not json", "JSON", "bad_json"),
        (
            "1721749181000000 " + json.dumps(trade("1.000", "1", True)),
            "local timestamp",
            "time_backwards",
        ),
        (
            "1721749182000000000 " + json.dumps(trade("1.000", "1", True)),
            "local timestamp",
            "timestamp_unit_changed",
        ),
    ],
)
def test_bad_lines(tmp_path, line_text, field, reason):
    path = write_capture(tmp_path / "cap.txt", base_messages(), gz=False)
    lines = path.read_text().splitlines()
    lines.insert(5, line_text)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_binance(path)
    assert (info.value.line, info.value.field) == (6, field)
    md = load_binance(path, strict=False)
    assert md.report.dropped == {reason: 1}


def test_negative_quantity_and_off_tick_price(tmp_path):
    msgs = base_messages()
    msgs[6] = diff(104, 104, [["1.001", "-0.5"]], [], E=7)
    with pytest.raises(DataError, match="quantity >= 0") as info:
        load_binance(write_capture(tmp_path / "neg.gz", msgs))
    assert (info.value.line, info.value.field) == (7, "b")
    msgs[6] = diff(104, 104, [["1.0015", "0.5"]], [], E=7)
    with pytest.raises(DataError, match="multiple of the tick") as info:
        load_binance(write_capture(tmp_path / "tick.gz", msgs), tick_size=0.001)
    assert (info.value.line, info.value.field) == (7, "b")


# ---------------------------------------------------------------- invariants (hypothesis)


def replay(events: pd.DataFrame, levels: int) -> dict[int, tuple[list, list]]:
    """Rebuild the book from the events alone; the top ``levels`` after each update id."""
    book: dict[int, dict[int, float]] = {1: {}, -1: {}}
    out = {}
    rows = events[events["kind"] != "trade"]
    kinds, sides = rows["kind"].to_numpy(), rows["side"].to_numpy()
    prices, sizes, uids = (
        rows["price"].to_numpy(),
        rows["size"].to_numpy(),
        rows["update_id"].to_numpy(),
    )
    for j in range(len(rows)):
        if kinds[j] == "snapshot" and (j == 0 or kinds[j - 1] != "snapshot"):
            book = {1: {}, -1: {}}
        side, px = int(sides[j]), int(prices[j])
        if kinds[j] == "snapshot":
            book[side][px] = sizes[j]
        else:
            new = book[side].get(px, 0.0) + (sizes[j] if kinds[j] == "add" else -sizes[j])
            assert new >= -1e-9, "a cancel larger than the level"
            if new > 1e-9:
                book[side][px] = new
            else:
                book[side].pop(px, None)
        if j + 1 == len(rows) or uids[j + 1] != uids[j]:
            bids = sorted(book[1].items(), reverse=True)[:levels]
            asks = sorted(book[-1].items())[:levels]
            out[int(uids[j])] = (bids, asks)
    return out


level_change = st.tuples(st.sampled_from([1, -1]), st.integers(990, 1010), st.integers(0, 4))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(level_change, min_size=1, max_size=5), min_size=1, max_size=30))
def test_random_diffs_keep_the_book_valid_and_replayable(tmp_path_factory, diffs):
    """Any diff stream: sizes never negative, never crossed after repair, events replay to the
    book."""
    msgs = [
        snapshot(
            100,
            [[f"{p / 1000:.3f}", "1"] for p in range(995, 1000)],
            [[f"{p / 1000:.3f}", "1"] for p in range(1001, 1006)],
        )
    ]
    for k, changes in enumerate(diffs):
        b = [[f"{p / 1000:.3f}", str(q)] for s, p, q in changes if s == 1]
        a = [[f"{p / 1000:.3f}", str(q)] for s, p, q in changes if s == -1]
        msgs.append(diff(101 + k, 101 + k, b, a, E=k))
    path = write_capture(tmp_path_factory.mktemp("h") / "cap.gz", msgs)
    levels = 5
    md = load_binance(path, strict=False, levels=levels, tick_size=0.001, lot_size=1.0)
    bid_px, bid_sz, ask_px, ask_sz = book_arrays(md.book)
    assert (bid_sz >= 0).all() and (ask_sz >= 0).all() and (md.events["size"] >= 0).all()
    assert not (bid_px[:, 0] >= ask_px[:, 0]).any()
    assert validate_book(md.book).all() and validate_events(md.events).all()
    assert len(md.book) == len(diffs) + 1 and md.report.dropped == {}
    states = replay(md.events, levels)
    for i, uid in enumerate(md.book["update_id"].to_numpy()):
        if int(uid) not in states:
            continue  # a diff that changed nothing
        bids, asks = states[int(uid)]
        assert [p for p, _ in bids] == [int(p) for p in bid_px[i, : len(bids)]]
        assert [s for _, s in bids] == list(bid_sz[i, : len(bids)])
        assert [p for p, _ in asks] == [int(p) for p in ask_px[i, : len(asks)]]
        assert np.isnan(bid_px[i, len(bids) :]).all() and np.isnan(ask_px[i, len(asks) :]).all()


# ---------------------------------------------------------------- the sample captures


@pytest.mark.data
def test_nexo_spot_capture():
    md = load_binance(capture(*NEXO), market="spot")  # strict: any gap or crossed state would raise
    assert md.spec.symbol == "NEXOUSDT" and md.spec.tick_size == 0.001
    assert md.report.dropped == {} and md.report.repaired == {}
    book = md.book
    assert not (book["bid_px_1"] >= book["ask_px_1"]).any()
    assert (book["ask_px_1"] - book["bid_px_1"]).median() == 1
    ts = pd.to_datetime(md.events["ts"], utc=True)  # microseconds in the file, detected
    assert ts.iloc[0].strftime("%Y-%m-%d %H:%M") == "2024-07-23 15:39"
    assert pd.Timedelta(ts.iloc[-1] - ts.iloc[0]) > pd.Timedelta(hours=20)
    assert np.all(np.diff(md.events["ts"].to_numpy()) >= 0)
    assert (md.events["kind"] == "trade").sum() > 10_000


@pytest.fixture(scope="module")
def btc_spot_paths():
    return capture(*BTC_SPOT)


@pytest.mark.data
def test_btc_spot_capture_by_the_documented_procedure_never_crosses(btc_spot_paths):
    md = load_binance(btc_spot_paths)  # strict
    assert md.report.dropped == {} and md.report.repaired == {}
    # the snapshot's first diff arrived before it (line 6) and removes the README's "stale" bid
    assert md.report.notes["diff_before_snapshot_applied"] == 1
    assert md.report.examples["diff_before_snapshot_applied"] == ["spot_btcusdt_20240808.gz:6"]
    assert not (md.book["bid_px_1"] >= md.book["ask_px_1"]).any()
    assert md.spec.tick_size == 0.01
    # the built best bid/offer is never better than the bookTicker published at or after it
    q = md.quotes
    assert q is not None
    j = (
        np.searchsorted(q["update_id"].to_numpy(), md.book["update_id"].to_numpy(), side="right")
        - 1
    )
    ok = j >= 0
    assert (md.book["bid_px_1"].to_numpy()[ok] <= q["bid_px"].to_numpy()[j[ok]]).all()
    assert (md.book["ask_px_1"].to_numpy()[ok] >= q["ask_px"].to_numpy()[j[ok]]).all()


@pytest.mark.data
def test_btc_spot_stale_level_detected_repaired_and_counted(btc_spot_paths):
    """Without the pre-snapshot diff the bid at 61820.99 goes stale and crosses from line 9368."""
    with pytest.raises(DataError) as info:  # the first-diff rule catches the lost diff
        load_binance(btc_spot_paths, use_diffs_before_snapshot=False)
    assert (Path(info.value.path).name, info.value.line, info.value.field) == (
        "spot_btcusdt_20240808.gz",
        10,
        "U",
    )
    with pytest.raises(DataError) as info:  # applied through the gap: the first crossed state
        load_binance(btc_spot_paths, on_gap="continue", use_diffs_before_snapshot=False)
    assert (Path(info.value.path).name, info.value.line) == ("spot_btcusdt_20240808.gz", 9368)
    assert "61820.99" in str(info.value)
    md = load_binance(
        btc_spot_paths, strict=False, on_gap="continue", use_diffs_before_snapshot=False
    )
    assert md.report.repaired == {"crossed_state": 1, "stale_bid_level_pruned": 1}
    assert md.report.notes["prune_confirmed_by_bookTicker"] == 1
    assert md.report.notes["update_id_gap_applied_through"] == 1
    pruned = md.events[md.events["pruned"]]
    assert pruned["price"].tolist() == [6182099] and pruned["side"].tolist() == [1]
    assert not (md.book["bid_px_1"] >= md.book["ask_px_1"]).any()


@pytest.mark.data
@pytest.mark.slow
def test_btc_spot_stale_level_unrepaired_leaves_thousands_of_crossed_states(btc_spot_paths):
    md = load_binance(
        btc_spot_paths,
        strict=False,
        on_gap="continue",
        repair=False,
        use_diffs_before_snapshot=False,
    )
    assert md.report.notes["crossed_state_left"] == 5617
    assert md.report.dropped["crossed_book"] == 5617


@pytest.mark.data
def test_btc_usdm_capture_pu_continuity_and_clock_offset():
    md = load_binance(capture(*BTC_USDM), market="usdm")  # strict: pu == previous u throughout
    assert md.spec.tick_size == 0.1 and md.spec.lot_size == 0.001
    assert md.report.dropped == {} and md.report.repaired == {}
    assert not (md.book["bid_px_1"] >= md.book["ask_px_1"]).any()
    ev = md.events
    ts = pd.to_datetime(ev["ts"], utc=True)  # nanoseconds in the file
    assert ts.iloc[0].strftime("%Y-%m-%d %H:%M") == "2024-07-18 23:57"
    assert ts.iloc[-1].strftime("%Y-%m-%d") == "2024-07-19"  # across midnight, two files
    trades = ev[ev["kind"] == "trade"]
    offset_s = np.median(trades["exch_ts"] - trades["ts"]) / 1e9
    assert 1.3 < offset_s < 1.7, offset_s  # the collector clock runs ~1.5 s behind the exchange
    depth = md.book[md.book["exch_ts"] > 0]
    assert 1.3 < np.median(depth["exch_ts"] - depth["ts"]) / 1e9 < 1.7
    with pytest.raises(DataError) as info:  # the spot rule does not hold on futures ids
        load_binance(capture(*BTC_USDM), market="spot")
    assert info.value.field == "U"

"""Corrupted copies of the sample files: every defect is named or counted, none passes unnoticed.

Each case corrupts a copy of a sample file (the AAPL 49-second LOBSTER fixture, the first 4000
lines of the spot BTCUSDT capture) written into ``tmp_path`` by the helpers below; no corrupted
file is shipped. Under ``strict=True`` the loader raises a ``DataError`` naming the file, the
1-based line and the field; under ``strict=False`` it drops or repairs the bad rows, counts them
by reason in the report, and what is left equals the clean load (or the clean load minus the rows
counted).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data import DataError, MarketData, check_book_consistency, load_binance, load_lobster
from data.samples import SAMPLES_DIR

pytestmark = pytest.mark.data

AAPL_DIR = SAMPLES_DIR / "lobster" / "AAPL_first49s_L10"
MSG = "AAPL_2012-06-21_34200000_57600000_message_10.csv"
OB = "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
BTC_SPOT = SAMPLES_DIR / "binance_raw" / "spot_btcusdt_20240808.gz"
BTC_LINES = 4000  # the snapshot is line 8; bookTicker, trades and diffs follow


# ---------------------------------------------------------------- LOBSTER helpers
@pytest.fixture(scope="module")
def aapl() -> tuple[list[str], list[str], MarketData]:
    """The fixture's message and orderbook lines and its clean load."""
    msg = (AAPL_DIR / MSG).read_text().splitlines()
    ob = (AAPL_DIR / OB).read_text().splitlines()
    return msg, ob, load_lobster(AAPL_DIR / MSG)


def write_lobster(tmp_path: Path, msg: list[str], ob: list[str], gz: bool = False) -> Path:
    """Write a (corrupted) copy of the fixture; return the message file's path."""
    for name, lines in ((MSG, msg), (OB, ob)):
        text = ("\n".join(lines) + "\n").encode()
        if gz:
            (tmp_path / (name + ".gz")).write_bytes(gzip.compress(text))
        else:
            (tmp_path / name).write_bytes(text)
    return tmp_path / (MSG + (".gz" if gz else ""))


def rows(md: MarketData) -> list[tuple]:
    ev = md.events[["ts", "side", "price", "size", "order_id", "msg_type"]]
    return list(pd.concat([ev, md.book.drop(columns="ts")], axis=1).itertuples(index=False))


def lost_rows(md: MarketData, clean: MarketData) -> list[int]:
    """The clean rows missing from ``md``, asserting that ``md`` is the clean load with rows left
    out (events and book alike, in order)."""
    got, ref = rows(md), rows(clean)
    lost, j = [], 0
    for row in got:
        while j < len(ref) and not _same(ref[j], row):
            lost.append(j)
            j += 1
        assert j < len(ref), "a row that is not in the clean load"
        j += 1
    return lost + list(range(j, len(ref)))


def _same(a: tuple, b: tuple) -> bool:
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def assert_named(info: pytest.ExceptionInfo, name: str, line: int, field: str) -> None:
    err = info.value
    assert (Path(err.path).name, err.line, err.field) == (name, line, field), str(err)
    assert name in str(err) and f"line {line}" in str(err) and repr(field) in str(err)


def checked_adds(clean: MarketData) -> np.ndarray:
    """0-based rows of adds whose price is inside the displayed book (their change is checked)."""
    checked = check_book_consistency(clean)["checked"]
    return checked[clean.events["msg_type"].to_numpy()[checked] == 1]


def live_order_ids(clean: MarketData, row: int) -> list[int]:
    """Ids of orders added before ``row`` and still resting at it."""
    ev = clean.events.iloc[:row]
    ev = ev[ev["msg_type"].between(1, 4)]
    signed = np.where(ev["msg_type"] == 1, ev["size"], -ev["size"])
    left = pd.Series(signed, index=ev["order_id"]).groupby(level=0).sum()
    added = set(ev.loc[ev["msg_type"] == 1, "order_id"])
    return [int(i) for i, v in left.items() if v > 0 and i in added]


def set_field(lines: list[str], line: int, field: int, value: object) -> list[str]:
    out = list(lines)
    parts = out[line - 1].split(",")
    parts[field] = str(value)
    out[line - 1] = ",".join(parts)
    return out


# ---------------------------------------------------------------- LOBSTER: bad values
@pytest.mark.parametrize(
    ("line", "value", "reason"),
    [(500, "inf", "non_finite_number"), (500, "-inf", "non_finite_number"),
     (1, "-1.5", "bad_time"), (500, "-34215.1", "bad_time"), (500, "90000.5", "bad_time")],
)  # fmt: skip
def test_lobster_time_infinite_or_out_of_the_day(tmp_path, aapl, line, value, reason):
    """``inf`` became ts -7.9e18 and a negative first time was accepted."""
    msg, ob, clean = aapl
    path = write_lobster(tmp_path, set_field(msg, line, 0, value), ob)
    with pytest.raises(DataError) as info:
        load_lobster(path)
    assert_named(info, MSG, line, "time")
    md = load_lobster(path, strict=False)
    assert md.report.dropped == {reason: 1}
    assert lost_rows(md, clean) == [line - 1]
    assert (md.events["ts"] > 0).all()


def test_lobster_line_duplicated_in_both_files(tmp_path, aapl):
    msg, ob, clean = aapl
    k = int(checked_adds(clean)[200]) + 1  # 1-based line of an add inside the book
    path = write_lobster(tmp_path, msg[:k] + msg[k - 1 :], ob[:k] + ob[k - 1 :])
    with pytest.raises(DataError) as info:
        load_lobster(path)
    assert_named(info, MSG, k + 1, "line")
    md = load_lobster(path, strict=False)
    assert md.report.dropped == {"duplicate_line": 1}
    pd.testing.assert_frame_equal(md.events, clean.events)
    pd.testing.assert_frame_equal(md.book, clean.book)


def test_lobster_message_that_does_not_match_its_book_change(tmp_path, aapl):
    msg, ob, clean = aapl
    k = int(checked_adds(clean)[150]) + 1
    size = int(msg[k - 1].split(",")[3])
    path = write_lobster(tmp_path, set_field(msg, k, 3, size + 7), ob)
    with pytest.raises(DataError) as info:
        load_lobster(path)
    assert_named(info, MSG, k, "size")
    assert f"orderbook lines {k - 1} and {k}" in str(info.value)
    md = load_lobster(path, strict=False)
    assert md.report.dropped == {"message_does_not_match_book": 1}
    assert lost_rows(md, clean) == [k - 1]


def test_lobster_add_reusing_a_live_order_id(tmp_path, aapl):
    msg, ob, clean = aapl
    k = int(checked_adds(clean)[250]) + 1
    live = live_order_ids(clean, k - 1)
    assert live
    path = write_lobster(tmp_path, set_field(msg, k, 2, live[0]), ob)
    with pytest.raises(DataError) as info:
        load_lobster(path)
    assert_named(info, MSG, k, "order_id")
    md = load_lobster(path, strict=False)
    assert md.report.dropped == {"reused_order_id": 1}
    assert lost_rows(md, clean) == [k - 1]


# a message line is left without its book when the orderbook file is behind
MESSAGE_LEFT_ALONE = ("orderbook line missing", "message line extra")


def lobster_shift(kind: str, msg: list[str], ob: list[str], k: int) -> tuple[list, list]:
    if kind == "orderbook line missing":
        return msg, ob[: k - 1] + ob[k:]
    if kind == "orderbook line extra":
        return msg, ob[:k] + ob[k - 1 :]
    if kind == "message line missing":
        return msg[: k - 1] + msg[k:], ob
    return msg[:k] + msg[k - 1 :], ob  # message line extra


@pytest.mark.parametrize(
    "kind",
    ["orderbook line missing", "orderbook line extra", "message line missing",
     "message line extra"],
)  # fmt: skip
def test_lobster_files_out_of_step_resynchronize(tmp_path, aapl, kind):
    """A missing or extra line in one file used to shift every later message onto the wrong book
    row (843 of 999 rows inconsistent) while the report said "1 row dropped"."""
    msg, ob, clean = aapl
    k = int(checked_adds(clean)[120]) + 1  # the files fall out of step at line k
    path = write_lobster(tmp_path, *lobster_shift(kind, msg, ob, k))
    with pytest.raises(DataError) as info:
        load_lobster(path)
    err = info.value
    assert err.field == "rows" and Path(err.path).name == OB, str(err)
    assert err.line is not None and k - 1 <= err.line <= k + 1 and "agree again" in str(err)
    md = load_lobster(path, strict=False)
    lost = lost_rows(md, clean)  # an extra line is dropped alone: nothing of the clean is lost
    assert len(lost) == (1 if "missing" in kind else 0) and all(k - 2 <= r <= k for r in lost)
    reason = "unmatched_" + ("message" if kind in MESSAGE_LEFT_ALONE else "orderbook") + "_line"
    assert md.report.dropped == {reason: 1}
    bad = check_book_consistency(md)
    inconsistent = {int(r) for key in ("size_delta", "other_side", "unchanged") for r in bad[key]}
    assert len(inconsistent) <= len(lost)  # only the row after the gap: nothing shifted


def test_lobster_truncated_gzip(tmp_path, aapl):
    msg, ob, clean = aapl
    path = write_lobster(tmp_path, msg, ob, gz=True)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with gzip.open(path, "rb") as fh:  # what a reader gets before the stream breaks off
        try:
            fh.read()
        except EOFError:
            pass
    with pytest.raises(DataError) as info:
        load_lobster(path)
    err = info.value
    n = err.line
    assert Path(err.path).name == MSG + ".gz" and err.field == "gzip stream"
    assert n is not None and 100 < n < 999 and "cut off" in str(err)
    md = load_lobster(path, strict=False)
    assert md.report.dropped["truncated_gzip"] == 1
    assert md.report.dropped["row_count_mismatch"] == 999 - n  # orderbook lines past the cut
    assert lost_rows(md, clean) == list(range(n, 999))


# ---------------------------------------------------------------- Binance helpers
@pytest.fixture(scope="module")
def btc() -> list[str]:
    """The first lines of the spot BTCUSDT capture."""
    with gzip.open(BTC_SPOT, "rt") as fh:
        return [next(fh).rstrip("\n") for _ in range(BTC_LINES)]


@pytest.fixture(scope="module")
def btc_clean(btc, tmp_path_factory) -> MarketData:
    return load_binance(write_capture(tmp_path_factory.mktemp("clean"), btc))


def write_capture(tmp_path: Path, lines: list[str], name: str = "spot_btcusdt.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def first_line(lines: list[str], stream: str, after: int) -> int:
    """1-based number of the first line after line ``after`` of the given stream."""
    for i in range(after, len(lines)):
        if f'@{stream}"' in lines[i] or f"@{stream}@" in lines[i]:
            return i + 1
    raise AssertionError(stream)


def edit_json(lines: list[str], line: int, edit) -> list[str]:
    out = list(lines)
    stamp, _, body = out[line - 1].partition(" ")
    msg = json.loads(body)
    edit(msg["data"])
    out[line - 1] = f"{stamp} {json.dumps(msg, separators=(',', ':'))}"
    return out


def trades(md: MarketData) -> pd.DataFrame:
    return md.events[md.events["kind"] == "trade"].reset_index(drop=True)


# ---------------------------------------------------------------- Binance: bad messages
def test_binance_duplicated_trade(tmp_path, btc, btc_clean):
    lines = btc
    k = first_line(lines, "trade", 1000)
    path = write_capture(tmp_path, lines[:k] + lines[k - 1 :])
    with pytest.raises(DataError) as info:
        load_binance(path)
    assert_named(info, path.name, k + 1, "t")
    assert f"{path.name}:{k}" in str(info.value)
    md = load_binance(path, strict=False)
    assert md.report.dropped == {"duplicate_trade": 1}
    pd.testing.assert_frame_equal(md.events.drop(columns="ts"),
                                  btc_clean.events.drop(columns="ts"))  # fmt: skip


@pytest.mark.parametrize(
    ("stream", "field", "value", "reason"),
    [("trade", "m", "false", "bad_trade"),  # a string: "false" is truthy and flipped the side
     ("trade", "p", "Infinity", "bad_trade"),  # OverflowError
     ("trade", "q", "Infinity", "bad_trade"),
     ("trade", "p", "NaN", "bad_trade"),
     ("bookTicker", "a", None, "bad_bookTicker"),  # missing: KeyError 'a'
     ("bookTicker", "b", "Infinity", "bad_bookTicker")],
)  # fmt: skip
def test_binance_bad_field(tmp_path, btc, btc_clean, stream, field, value, reason):
    lines = btc
    k = first_line(lines, stream, 1500)

    def edit(data: dict) -> None:
        if value is None:
            del data[field]
        else:
            data[field] = value

    path = write_capture(tmp_path, edit_json(lines, k, edit))
    with pytest.raises(DataError) as info:
        load_binance(path)
    assert_named(info, path.name, k, field)
    md = load_binance(path, strict=False)
    assert md.report.dropped == {reason: 1}
    assert md.report.examples[reason] == [f"{path.name}:{k}"]
    if stream == "trade":
        assert len(trades(md)) == len(trades(btc_clean)) - 1
        assert set(trades(md)["update_id"]) < set(trades(btc_clean)["update_id"])
    else:
        assert md.quotes is not None and btc_clean.quotes is not None
        assert len(md.quotes) == len(btc_clean.quotes) - 1


def test_binance_infinite_price_in_a_diff(tmp_path, btc):
    lines = btc
    k = first_line(lines, "depth", 1500)

    def edit(data: dict) -> None:
        data["a"] = [["Infinity", "1.0"], *data["a"]]

    path = write_capture(tmp_path, edit_json(lines, k, edit))
    with pytest.raises(DataError) as info:
        load_binance(path)
    assert_named(info, path.name, k, "a")
    md = load_binance(path, strict=False)
    assert md.report.dropped == {"bad_diff": 1}


def test_binance_update_id_gap_is_bridged_by_the_book_ticker(tmp_path, btc, btc_clean):
    """A lost diff used to drop the whole rest of the depth stream (no later snapshot), and
    ``calibration.fit`` then failed with "only 4 mid returns"."""
    lines = btc
    k = first_line(lines, "depth", 1000)
    path = write_capture(tmp_path, lines[: k - 1] + lines[k:])
    nxt = first_line(lines, "depth", k) - 1  # its line in the corrupted copy
    with pytest.raises(DataError) as info:
        load_binance(path)
    assert_named(info, path.name, nxt, "U")
    md = load_binance(path, strict=False)
    assert md.report.repaired["update_id_gap_bridged_by_bookTicker"] == 1
    assert "update_id_gap" not in md.report.dropped
    assert "diff_after_gap_without_snapshot" not in md.report.dropped
    # the book goes on to the end of the capture and agrees with the clean one after the gap
    gap_u = json.loads(lines[k - 1].partition(" ")[2])["data"]["u"]
    ref = btc_clean.book.set_index("update_id")
    got = md.book.set_index("update_id")
    assert got.index.is_unique and list(got.index) == [i for i in ref.index if i != gap_u]
    after = ref.index[ref.index > gap_u]
    assert after.size > 100
    for col in ("bid_px_1", "ask_px_1", "bid_sz_1", "ask_sz_1"):
        agree = (got.loc[after, col] == ref.loc[after, col]).mean()
        assert agree > 0.99, (col, agree)
    assert not (md.book["bid_px_1"] >= md.book["ask_px_1"]).any()


def test_binance_truncated_gzip(tmp_path, btc):
    lines = btc
    path = write_capture(tmp_path, lines)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as info:
        load_binance(path)
    err = info.value
    n = err.line
    assert Path(err.path).name == path.name and err.field == "gzip stream"
    assert n is not None and 100 < n < BTC_LINES and "cut off" in str(err)
    md = load_binance(path, strict=False)
    assert md.report.dropped["truncated_gzip"] == 1
    head = load_binance(write_capture(tmp_path, lines[:n], "head.gz"), strict=False)
    pd.testing.assert_frame_equal(md.book, head.book)
    pd.testing.assert_frame_equal(md.events, head.events)


def test_binance_crossed_book_prunes_only_the_corrupt_level(tmp_path, btc, btc_clean):
    """One corrupt bid far above the asks: the repair used to prune every ask level under it (84
    good ask levels). The bookTicker shows the bid is not there: only it is pruned."""
    lines = btc
    book = btc_clean.book.set_index("update_id")
    k = 1200
    while True:  # a diff that leaves the best ask alone: the ask is older than the corrupt bid
        k = first_line(lines, "depth", k)
        data = json.loads(lines[k - 1].partition(" ")[2])["data"]
        best_ask = book.loc[data["u"], "ask_px_1"]
        if all(round(float(p) * 100) != best_ask for p, _ in data["a"]):
            break
    corrupt = f"{(best_ask + 150) * 0.01:.2f}"  # 150 ticks above the best ask

    def edit(data: dict) -> None:
        data["b"] = [*data["b"], [corrupt, "0.50000000"]]

    path = write_capture(tmp_path, edit_json(lines, k, edit))
    with pytest.raises(DataError) as info:
        load_binance(path)
    assert_named(info, path.name, k, "b/a")
    md = load_binance(path, strict=False)
    assert md.report.repaired == {"crossed_state": 1, "stale_bid_level_pruned": 1}
    assert md.report.notes["prune_confirmed_by_bookTicker"] == 1
    pruned = md.events[md.events["pruned"]]
    assert pruned[["side", "price"]].values.tolist() == [[1, round(best_ask + 150)]]
    # every level that was not corrupted equals the clean load's, on every row
    pd.testing.assert_frame_equal(md.book, btc_clean.book)


def test_calibration_fit_names_a_truncated_gzip_and_exits_with_2(tmp_path, aapl, capsys):
    """A truncated gzip reached the user of ``calibration.fit`` as a bare ``EOFError``."""
    from calibration.fit import main

    msg, ob, _ = aapl
    path = write_lobster(tmp_path, msg, ob, gz=True)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as info:
        load_lobster(path)
    assert main(["--data", str(path)]) == 2
    out = capsys.readouterr().out
    # the DataError's message, whatever the console's line wrapping
    assert "".join(out.split()) == "".join(f"error: {info.value}".split())

"""The event recorder: the simulated market's events and book in the canonical schema."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from calibration.params import TOKYO_CST, MarketParams
from data.schema import EVENT_COLUMNS, book_arrays, book_columns, validate_book, validate_events
from envs.lob.book import OrderBooks, log_width
from envs.lob.events import NS_PER_TIME_UNIT, simulate_events

GEOMETRIC = MarketParams.from_dict(
    {**TOKYO_CST.to_dict(), "size_distribution": "geometric", "size_mean": 2.5}
)
ROOT = Path(__file__).resolve().parents[2]
QR_DATA = yaml.safe_load((ROOT / "configs/markets/queue_reactive_default.yaml").read_text())
# fast reference-price moves and redraws, so that a short run has many of each
QR_FAST = MarketParams.from_dict(
    {**QR_DATA, "queue_reactive": {**QR_DATA["queue_reactive"], "theta": 0.9,
                                   "theta_reinit": 0.3}}
)  # fmt: skip


@pytest.fixture(scope="module")
def long_run():
    return simulate_events(TOKYO_CST, 3000.0, seed=11)


def test_frames_follow_the_canonical_schema(long_run):
    events, book = long_run
    assert list(events.columns[: len(EVENT_COLUMNS)]) == list(EVENT_COLUMNS)
    assert list(book.columns) == book_columns(TOKYO_CST.n_levels)
    assert len(events) == len(book)
    assert validate_events(events).all()
    assert validate_book(book).all()
    assert (events["order_id"] == -1).all()
    assert events["ts"].iloc[-1] <= 3000 * NS_PER_TIME_UNIT
    trades = events[events["kind"] == "trade"]
    assert set(trades["aggressor"]) == {1, -1}
    np.testing.assert_array_equal(trades["aggressor"], -trades["side"])  # buys hit asks


def _std_errors(count: float, expected: float) -> float:
    return abs(count - expected) / np.sqrt(expected)


def test_event_counts_match_the_cst_rates(long_run):
    """Over T = 3000 s, market orders per side are Poisson(mu T), limit orders at distance i
    from the opposite best Poisson(lambda(i) T), and cancellations at distance i have the
    compensator int theta(i) n_i(t) dt (CST 2010 section 1.2), read off the recorded book."""
    events, book = long_run
    T = 3000.0
    prev = book.shift(1)  # the book each event found
    real = events[~events["synthetic"]]
    for side in (1, -1):
        mkt = real[(real["kind"] == "trade") & (real["side"] == side)]
        # unit sizes: one trade row per market order unless the book window ran dry
        assert _std_errors(len(mkt), TOKYO_CST.market_rate * T) < 4.0
        adds = real[(real["kind"] == "add") & (real["side"] == side)]
        opp = "ask_px_1" if side == 1 else "bid_px_1"
        dist = (side * (prev.loc[adds.index, opp] - adds["price"])).to_numpy()
        for i in (1, 2, 3, 5, 10):
            n_i = int(np.sum(dist == i))
            assert _std_errors(n_i, TOKYO_CST.limit_rates[i - 1] * T) < 4.0, (side, i, n_i)
    # cancellations on the bid side at distance i from the best ask: exposure from the book
    bid_px, bid_sz, ask_px, _ = book_arrays(book)
    hold = np.diff(np.append(book["ts"].to_numpy(), int(T * NS_PER_TIME_UNIT))) / 1e9
    cancels = real[(real["kind"] == "cancel") & (real["side"] == 1)]
    c_dist = (prev.loc[cancels.index, "ask_px_1"] - cancels["price"]).to_numpy()
    for i in (1, 2, 4):
        lots = np.nansum(np.where(ask_px[:, :1] - bid_px == i, bid_sz, 0.0), axis=1)
        expected = TOKYO_CST.cancel_rates[i - 1] * float(np.sum(lots * hold))
        assert _std_errors(int(np.sum(c_dist == i)), expected) < 4.0, (i, expected)


def _replay(events: pd.DataFrame) -> list[tuple[dict[int, float], dict[int, float]]]:
    """Apply the events to price-keyed books; the state after each ``ts`` group's last row."""
    books: dict[int, dict[int, float]] = {1: defaultdict(float), -1: defaultdict(float)}
    states = []
    kinds = events["kind"].astype(str).to_numpy()
    sides, prices = events["side"].to_numpy(), events["price"].to_numpy()
    sizes, ts = events["size"].to_numpy(), events["ts"].to_numpy()
    in_snapshot = False
    for r in range(len(events)):
        kind, side, px, size = kinds[r], int(sides[r]), int(prices[r]), float(sizes[r])
        if kind == "snapshot":
            if not in_snapshot:
                books = {1: defaultdict(float), -1: defaultdict(float)}
            books[side][px] = size
        elif kind == "add":
            books[side][px] += size
        else:
            books[side][px] -= size
            assert books[side][px] >= 0, f"row {r} removes lots that are not there"
        in_snapshot = kind == "snapshot"
        if r + 1 == len(events) or ts[r + 1] != ts[r]:
            states.append(
                ({p: v for p, v in books[1].items() if v > 0},
                 {p: v for p, v in books[-1].items() if v > 0})
            )  # fmt: skip
    return states


@pytest.mark.parametrize(
    "params", [TOKYO_CST, GEOMETRIC, QR_FAST], ids=["unit", "geometric", "queue_reactive"]
)
def test_the_book_frame_is_the_events_applied(params):
    events, book = simulate_events(params, 150.0 if params.model == "cst" else 600.0, seed=3)
    synthetic = events[events["synthetic"]]
    if params.model == "cst":  # only the window drops lots
        assert (synthetic["kind"] == "cancel").all() and len(synthetic) > 0
    else:  # queues leave and enter the grid, the book is redrawn
        assert set(synthetic["kind"].astype(str)) == {"add", "cancel", "snapshot"}
    last = np.append(events["ts"].to_numpy()[1:] != events["ts"].to_numpy()[:-1], True)
    states = _replay(events)
    bid_px, bid_sz, ask_px, ask_sz = book_arrays(book[last])
    assert len(states) == last.sum()
    for k, (bids, asks) in enumerate(states):
        for px, sz, side_book, reverse in (
            (bid_px, bid_sz, bids, True),
            (ask_px, ask_sz, asks, False),
        ):
            levels = sorted(side_book.items(), reverse=reverse)
            n = len(levels)
            assert n <= params.n_levels
            np.testing.assert_array_equal(px[k, :n], [p for p, _ in levels])
            np.testing.assert_array_equal(sz[k, :n], [v for _, v in levels])
            assert np.isnan(px[k, n:]).all() and (sz[k, n:] == 0).all()


def test_same_seed_same_frames_and_recording_does_not_change_the_path():
    a = simulate_events(GEOMETRIC, 200.0, seed=5)
    b = simulate_events(GEOMETRIC, 200.0, seed=5)
    c = simulate_events(GEOMETRIC, 200.0, seed=6)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    assert not a[0]["ts"].equals(c[0]["ts"])
    # a small buffer (many kernel calls) gives the same frames
    small = simulate_events(GEOMETRIC, 200.0, seed=5, log_rows=2 * (4 * 10 + 4))
    pd.testing.assert_frame_equal(a[0], small[0])
    # the same book without the recorder ends in the same state
    books = OrderBooks(GEOMETRIC, 1)
    books.seed(5)
    books.reset()
    books.simulate(until=200.0)
    bid_px, bid_sz, ask_px, ask_sz = book_arrays(a[1].tail(1))
    assert books.bid_px[0] == bid_px[0, 0] and books.ask_px[0] == ask_px[0, 0]
    assert books.book[0].sum() == bid_sz.sum() + ask_sz.sum()


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="duration"):
        simulate_events(TOKYO_CST, 0.0, seed=0)
    with pytest.raises(ValueError, match="log_rows"):
        simulate_events(TOKYO_CST, 1.0, seed=0, log_rows=10)
    assert log_width(TOKYO_CST.n_levels) == 9 + 2 * TOKYO_CST.n_levels

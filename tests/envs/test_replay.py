"""Historical replay on tiny hand-made tapes: exact FIFO by order id, through-trade fills, L2 queue
models, an unmoved market, fee and cash conservation, determinism."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.schema import ADD, CANCEL, TRADE, InstrumentSpec, make_book, make_events
from envs.replay.config import ReplayMarketConfig
from envs.replay.env import ReplayMarketEnv, ReplayMarketVectorEnv
from envs.replay.tape import Tape

SPEC = InstrumentSpec("TEST", tick_size=0.01, lot_size=1.0, price_scale=10_000, timezone="UTC")
KINDS = {"add": ADD, "cancel": CANCEL, "trade": TRADE}
Row = tuple[float, str, int, int, int, int]  # t (s), kind, side (+1 bid / -1 ask), px, size, id


def build_tape(rows: Sequence[Row], levels: int = 3, l2: bool = False) -> Tape:
    """A tape from order-level rows; the book after each row is rebuilt by hand.

    ``l2``: the feed has no order ids and a trade leaves the book alone (a cancel row of the
    traded size follows it, as Binance depth diffs do).
    """
    depth: dict[int, dict[int, int]] = {1: {}, -1: {}}
    books: list[list[list[float]]] = []
    for _, kind, side, px, size, _ in rows:
        if kind == "add":
            depth[side][px] = depth[side].get(px, 0) + size
        elif kind == "cancel" or not l2:
            depth[side][px] -= size
            if depth[side][px] == 0:
                del depth[side][px]
        bids = sorted(depth[1].items(), reverse=True)[:levels]
        asks = sorted(depth[-1].items())[:levels]
        row: list[list[float]] = []
        for lv in (bids, asks):
            pad = [(float(p), float(q)) for p, q in lv] + [(np.nan, 0.0)] * (levels - len(lv))
            row += [[p for p, _ in pad], [q for _, q in pad]]
        books.append(row)
    arr = np.array(books, dtype=np.float64)  # (n, 4, L): bid px, bid sz, ask px, ask sz
    ts = np.array([round(r[0] * 1e9) for r in rows], np.int64) + 1_340_000_000 * 10**9
    codes = np.array([KINDS[r[1]] for r in rows])
    sides = np.array([r[2] for r in rows])
    agg = np.where(codes == TRADE, -sides, 0)
    oid = np.array([-1 if l2 else r[5] for r in rows])
    prices = np.array([r[3] for r in rows])
    sizes = np.array([r[4] for r in rows])
    events = make_events(ts, codes, sides, prices, sizes, oid, agg)
    book = make_book(ts, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    return Tape.from_frames(events, book, SPEC, trades_move_book=not l2)


def run(
    env: ReplayMarketEnv, policy: Callable[[dict[str, np.ndarray]], np.ndarray], seed: int = 0
) -> tuple[list[dict[str, np.ndarray]], list[float], list[dict]]:
    obs, _ = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], []
    done = False
    while not done:
        obs, reward, done, _, info = env.step(policy(obs))
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
    return observations, rewards, infos


def hold_bid(price: float, ask_action: float = 1.0) -> Callable[[dict], np.ndarray]:
    """Quote the bid at ``price`` ticks (depth_min 0, depth_max 20) and the ask far away."""

    def policy(obs: dict) -> np.ndarray:
        depth = float(obs["mid"][0]) - price - 0.25  # floor(mid - depth) = price, float32-safe
        return np.array([depth / 10.0 - 1.0, ask_action], np.float32)

    return policy


# ------------------------------------------------------------------ exact FIFO by order id
SETUP: list[Row] = [
    (0.0, "add", 1, 100, 5, 1),
    (0.1, "add", 1, 100, 3, 2),
    (0.2, "add", -1, 104, 10, 10),
    (0.3, "add", 1, 99, 5, 11),
]
FIFO: list[Row] = [
    *SETUP,  # the agent's bid goes live at 100 at t = 0.5, behind ids 1 and 2 (8 lots)
    (0.6, "add", 1, 100, 4, 3),  # behind the agent
    (0.7, "trade", 1, 100, 4, 1),  # id 1 (ahead) partly executed: 4 ahead left
    (0.8, "cancel", 1, 100, 4, 3),  # id 3 (behind) leaves: still 4 ahead
    (0.9, "trade", 1, 100, 1, 1),  # id 1 done: 3 ahead
    (1.0, "cancel", 1, 100, 3, 2),  # id 2 (ahead) leaves: the agent is first
    (1.7, "add", 1, 100, 2, 4),
    (1.8, "trade", 1, 100, 2, 4),  # a sell reaches 100: it trades with the agent first
    (3.0, "add", -1, 110, 1, 12),
]
FIFO_CFG: dict[str, Any] = {
    "start": 0.5,
    "dt": 0.25,
    "n_steps": 8,
    "depth_min": 0.0,
    "depth_max": 20.0,
}


def test_exact_fifo_fills_only_after_the_orders_ahead_by_id() -> None:
    env = ReplayMarketEnv(tape=build_tape(FIFO), **FIFO_CFG)
    obs, _, infos = run(env, hold_bid(100))
    ahead = [float(o["orders"][0, 2]) for o in obs[1:]]
    remaining = [float(o["orders"][0, 1]) for o in obs[1:]]
    assert ahead[:2] == [4.0, 0.0]  # after t in (0.5, 0.75], then (0.75, 1.0]
    assert remaining[:5] == [1.0] * 5  # not filled while orders were ahead or nothing traded
    fills = [f for info in infos for f in info["fills"]]
    passive = [f for f in fills if f["taker"] == 0.0]
    assert len(passive) == 1
    fill = passive[0]
    assert fill["price"] == 100 and fill["size"] == 1 and fill["side"] == 1
    assert fill["queue_ahead_at_entry"] == 8.0
    assert fill["time"] == pytest.approx(1.8)
    assert fill["waited"] == pytest.approx(1.3)


def test_a_trade_of_an_order_ahead_never_fills_the_agent() -> None:
    rows = [*SETUP, (0.7, "trade", 1, 100, 5, 1), (0.8, "trade", 1, 100, 2, 2),
            (3.0, "add", -1, 110, 1, 12)]  # fmt: skip
    env = ReplayMarketEnv(tape=build_tape(rows), **FIFO_CFG)
    obs, _, infos = run(env, hold_bid(100))
    assert all(f["taker"] == 1.0 for info in infos for f in info["fills"])
    assert [o["orders"][0, 2] for o in obs[1:3]] == [3.0, 1.0]  # 8 ahead: 5, then 2 executed


def test_a_trade_through_the_agents_price_fills_it() -> None:
    rows = [*SETUP, (0.6, "trade", 1, 99, 2, 11), (3.0, "add", -1, 110, 1, 12)]
    for queue in ("exact", "risk_averse", "prob"):
        env = ReplayMarketEnv(tape=build_tape(rows), queue_model="exact", **FIFO_CFG)
        if queue != "exact":
            env = ReplayMarketEnv(tape=build_tape(rows, l2=True), queue_model=queue, **FIFO_CFG)
        _, _, infos = run(env, hold_bid(100))
        passive = [f for f in infos[0]["fills"] if f["taker"] == 0.0]
        assert len(passive) == 1, queue
        assert passive[0]["price"] == 100 and passive[0]["queue_ahead_at_entry"] == 8.0


def test_an_order_arriving_at_the_agents_price_on_the_other_side_trades_with_it() -> None:
    rows = [*SETUP, (0.6, "add", -1, 102, 3, 20), (3.0, "add", -1, 110, 1, 12)]
    env = ReplayMarketEnv(tape=build_tape(rows), **FIFO_CFG)
    _, _, infos = run(env, hold_bid(102))  # alone at 102 inside the spread
    passive = [f for f in infos[0]["fills"] if f["taker"] == 0.0]
    assert [(f["price"], f["size"], f["queue_ahead_at_entry"]) for f in passive] == [
        (102.0, 1.0, 0.0)
    ]


def test_a_crossing_quote_takes_the_recorded_book_and_the_rest_lapses() -> None:
    cfg: dict[str, Any] = {**FIFO_CFG, "depth_min": -4.0}
    env = ReplayMarketEnv(tape=build_tape(FIFO), order_size=10, taker_fee_bps=10.0, **cfg)
    env.reset(seed=0)
    # ask at ceil(102 - 4) = 98 sells 10 into bids 100 x 8, 99 x 5; the bid rests at 82
    obs, _, _, _, info = env.step(np.array([1.0, -1.0], np.float32))
    taker = [(f["price"], f["size"], f["taker"]) for f in info["fills"]]
    assert taker == [(100.0, 8.0, 1.0), (99.0, 2.0, 1.0)]
    assert info["fees"] == pytest.approx(10e-4 * 0.01 * (100 * 8 + 99 * 2))
    assert obs["orders"][1, 1] == 0.0  # nothing rests
    assert obs["inventory"][0] == -10.0
    assert obs["book"][0, 0, 1] == 8.0  # recorded: 8 + 4 added - 4 traded, not depleted by us


# ------------------------------------------------------------------ L2 queue models
L2_ROWS: list[Row] = [
    (0.0, "add", 1, 100, 5, 0),
    (0.2, "add", -1, 104, 10, 0),
    (0.6, "add", 1, 100, 3, 0),  # behind the agent: level 8, 5 ahead
    (0.7, "cancel", 1, 100, 3, 0),  # risk averse: all behind -> 5 ahead
    (0.8, "cancel", 1, 100, 2, 0),  # nothing behind: ahead -> 3
    (0.9, "trade", 1, 100, 2, 0),  # ahead -> 1
    (0.91, "cancel", 1, 100, 2, 0),  # the trade's echo in the depth stream: not counted again
    (1.1, "trade", 1, 100, 2, 0),  # 1 ahead, then the agent
    (3.0, "add", -1, 110, 1, 0),
]


def test_risk_averse_l2_queue_with_trade_echoes() -> None:
    env = ReplayMarketEnv(tape=build_tape(L2_ROWS, l2=True), queue_model="risk_averse",
                          **FIFO_CFG)  # fmt: skip
    obs, _, infos = run(env, hold_bid(100))
    assert obs[1]["orders"][0, 2] == 5.0  # (0.5, 0.75]: the cancel of 3 was behind
    assert obs[2]["orders"][0, 2] == 1.0  # (0.75, 1.0]: cancel 2, trade 2, its echo
    passive = [f for info in infos for f in info["fills"] if f["taker"] == 0.0]
    assert [(f["time"], f["size"]) for f in passive] == [(pytest.approx(1.1), 1.0)]


def test_exact_needs_order_ids() -> None:
    with pytest.raises(ValueError, match="needs order ids"):
        ReplayMarketEnv(tape=build_tape(L2_ROWS, l2=True), queue_model="exact", **FIFO_CFG)


@pytest.mark.parametrize(("model", "power"), [("prob", 2.0), ("prob", 1.0), ("prob_log", 1.0)])
def test_prob_queue_cancel_is_ahead_with_probability_f_ahead_over_total(
    model: str, power: float
) -> None:
    """5 lots ahead, 3 behind, one lot cancelled: P(ahead) = f(5) / (f(5) + f(3))."""
    rows: list[Row] = [*L2_ROWS[:3], (0.7, "cancel", 1, 100, 1, 0), (3.0, "add", -1, 110, 1, 0)]
    n = 4000
    env = ReplayMarketVectorEnv(num_envs=n, tape=build_tape(rows, l2=True), queue_model=model,
                                queue_power=power, **FIFO_CFG)  # fmt: skip
    obs, _ = env.reset(seed=7)
    act = np.tile(np.array([[0.2 - 1.0, 1.0]], np.float32), (n, 1))  # bid at floor(102 - 2)
    obs, *_ = env.step(act)
    moved = np.mean(obs["orders"][:, 0, 2] == 4.0)
    f = (lambda x: np.log1p(x)) if model == "prob_log" else (lambda x: x**power)
    p = f(5) / (f(5) + f(3))
    assert np.all(np.isin(obs["orders"][:, 0, 2], (4.0, 5.0)))
    assert abs(moved - p) < 4 * np.sqrt(p * (1 - p) / n)


# ------------------------------------------------------------------ invariants on random tapes
def random_rows(seed: int, n: int = 160) -> list[Row]:
    """A random but consistent L3 day: adds on either side without crossing, cancels of resting
    orders, executions of the oldest order at a best price."""
    rng = np.random.default_rng(seed)
    resting: dict[int, list[int]] = {}  # id -> [side, px, size]
    rows: list[Row] = [(0.0, "add", 1, 100, 5, 1), (0.0, "add", -1, 103, 5, 2)]
    resting[1], resting[2] = [1, 100, 5], [-1, 103, 5]
    nid = 3
    for i in range(n):
        t = 0.05 * (i + 1)
        bids = [o[1] for o in resting.values() if o[0] == 1]
        asks = [o[1] for o in resting.values() if o[0] == -1]
        u = rng.random()
        if u < 0.5 or len(bids) < 2 or len(asks) < 2:
            side = int(rng.choice((1, -1)))
            if side == 1:
                px = int(min(asks) - rng.integers(1, 5))
            else:
                px = int(max(bids) + rng.integers(1, 5))
            size = int(rng.integers(1, 6))
            rows.append((t, "add", side, px, size, nid))
            resting[nid] = [side, px, size]
            nid += 1
        else:
            side = int(rng.choice((1, -1)))
            if u < 0.75:
                ids = [k for k, o in resting.items() if o[0] == side]
                oid = ids[int(rng.integers(len(ids)))]
                kind = "cancel"
            else:
                best = max(bids) if side == 1 else min(asks)
                oid = min(k for k, o in resting.items() if o[0] == side and o[1] == best)
                kind = "trade"
            o = resting[oid]
            size = int(rng.integers(1, o[2] + 1))
            rows.append((t, kind, side, o[1], size, oid))
            o[2] -= size
            if o[2] == 0:
                del resting[oid]
    return rows


def random_tape(seed: int) -> Tape:
    return build_tape(random_rows(seed), levels=5)


def reference_ahead(rows: list[Row], entry: float, t: float, price: int) -> int:
    """Lots still resting at time ``t`` of the bids resting at ``price`` at time ``entry`` (a
    naive order-by-order reference for the kernel's exact queue)."""
    left: dict[int, int] = {}
    for when, kind, side, px, size, oid in rows:
        if when > t:
            break
        if kind == "add":
            if side == 1 and px == price and when <= entry:
                left[oid] = size
        elif oid in left:
            left[oid] -= size
    return sum(left.values())


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_exact_queue_ahead_is_the_lots_of_the_orders_resting_at_entry(seed: int) -> None:
    rows = random_rows(seed)
    start, dt = 0.2, 0.5
    env = ReplayMarketEnv(tape=build_tape(rows, levels=5), start=start, dt=dt, n_steps=14,
                          depth_min=-20.0, depth_max=20.0)  # fmt: skip
    obs, _ = env.reset(seed=seed)
    price = int(obs["book"][0, 0, 0])  # join the best bid
    for k in range(1, 15):
        depth = float(obs["mid"][0]) - price - 0.25
        obs, _, _, _, info = env.step(np.array([depth / 20.0, 1.0], np.float32))
        if info["bid_price"] != price or obs["orders"][0, 1] != 1.0 or info["fills"]:
            passive = [f for f in info["fills"] if f["taker"] == 0.0 and f["side"] == 1]
            for f in passive:  # the first passive fill comes after the orders ahead are gone
                assert reference_ahead(rows, start, f["time"] - 1e-9, price) == 0
            break
        assert obs["orders"][0, 2] == reference_ahead(rows, start, start + k * dt, price)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), fees=st.sampled_from([(0.0, 0.0), (-0.25, 0.5)]))
def test_cash_fees_and_inventory_are_conserved_and_the_market_is_unmoved(
    seed: int, fees: tuple[float, float]
) -> None:
    tape = random_tape(seed)
    cfg = ReplayMarketConfig(start=0.2, dt=0.5, n_steps=14, depth_min=-2.0, depth_max=4.0,
                             q_max=6, maker_fee_bps=fees[0], taker_fee_bps=fees[1], phi=0.01,
                             max_fills=256)  # fmt: skip
    env = ReplayMarketEnv(config=cfg, tape=tape)
    rng = np.random.default_rng(seed)
    obs, rewards, infos = run(env, lambda o: rng.uniform(-1, 1, 2).astype(np.float32), seed)
    fills = [f for info in infos for f in info["fills"]]
    assert sum(info["n_fills"] for info in infos) == len(fills)
    notional = sum(f["side"] * f["price"] * 0.01 * f["size"] for f in fills)
    fee_sum = sum(f["fee"] for f in fills)
    inventory = sum(f["side"] * f["size"] for f in fills)
    assert float(obs[-1]["cash"][0]) == pytest.approx(-notional - fee_sum, abs=1e-3)
    assert float(obs[-1]["inventory"][0]) == inventory
    assert all(abs(inv) <= 6 for inv in np.cumsum([f["side"] * f["size"] for f in fills]))
    assert sum(info["fees"] for info in infos) == pytest.approx(fee_sum)
    dpnl = sum(info["dpnl"] for info in infos)
    assert dpnl == pytest.approx(infos[-1]["value"])  # value starts at 0 (flat)
    assert sum(rewards) == pytest.approx(dpnl - sum(i["inventory_penalty"] for i in infos))
    # the recorded book is what the agent sees, whatever it does
    for k, o in enumerate(obs):
        t = 0.2 + 0.5 * k
        r = tape.row[np.searchsorted(tape.t, t, side="right") - 1]
        np.testing.assert_array_equal(o["book"][:, :, 0], tape.book_px[r].T)
        np.testing.assert_array_equal(o["book"][:, :, 1], tape.book_sz[r].T)


def test_the_market_does_not_depend_on_the_agent() -> None:
    tape = random_tape(3)
    kw: dict[str, Any] = {
        "start": 0.2,
        "dt": 0.5,
        "n_steps": 14,
        "depth_min": -2.0,
        "depth_max": 4.0,
    }
    passive, _, _ = run(ReplayMarketEnv(tape=tape, **kw), lambda o: np.ones(2, np.float32))
    greedy, _, infos = run(ReplayMarketEnv(tape=tape, **kw), lambda o: -np.ones(2, np.float32))
    assert any(f["taker"] == 1.0 for info in infos for f in info["fills"])
    for a, b in zip(passive, greedy, strict=True):
        np.testing.assert_array_equal(a["book"], b["book"])
        np.testing.assert_array_equal(a["mid"], b["mid"])


def test_same_seed_same_numbers_and_vector_matches_single() -> None:
    tape = build_tape(L2_ROWS, l2=True)
    kw: dict[str, Any] = {
        "queue_model": "prob",
        "latency_distribution": "exponential",
        "entry_latency": 0.1,
        "start": None,
        "dt": 0.25,
        "n_steps": 4,
        "depth_min": 0.0,
        "depth_max": 20.0,
    }
    envs_ = [ReplayMarketEnv(tape=tape, **kw) for _ in range(3)]
    runs = [run(env, hold_bid(100), seed=seed) for env, seed in zip(envs_, (5, 5, 6), strict=True)]
    assert runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    windows = [float(env.core.window_starts[0]) for env in envs_]
    assert windows[0] == windows[1] != windows[2]  # the window is drawn from the seed
    # one replay of the vector env is the single env (same streams from the same seed)
    venv = ReplayMarketVectorEnv(num_envs=1, tape=tape, **kw)
    obs, _ = venv.reset(seed=5)
    rewards = []
    for _ in range(4):
        act = hold_bid(100)({k: v[0] for k, v in obs.items()})[None]
        obs, reward, *_ = venv.step(act)
        rewards.append(float(reward[0]))
    assert rewards == runs[0][1]
    venv = ReplayMarketVectorEnv(num_envs=3, tape=tape, same_window=False, **kw)
    venv.reset(seed=11)
    first = venv.core.window_starts.copy()
    venv.reset(seed=11)
    np.testing.assert_array_equal(venv.core.window_starts, first)
    assert len(set(first)) == 3  # one window each
    assert np.all(first + 1.0 <= tape.duration)


def test_reset_option_picks_the_window_and_bad_ones_are_named() -> None:
    env = ReplayMarketEnv(tape=build_tape(FIFO), **FIFO_CFG)
    obs, _ = env.reset(seed=0, options={"start": 0.95})
    assert env.core.window_starts[0] == 0.95
    assert obs["book"][0, 0].tolist() == [100.0, 3.0]  # only id 2 left at 100
    with pytest.raises(ValueError, match="window starts must be in"):
        env.reset(options={"start": 2.9})
    with pytest.raises(ValueError, match="unknown keys"):
        env.reset(options={"begin": 1.0})
    with pytest.raises(ValueError, match="past the tape's end"):
        ReplayMarketEnv(tape=build_tape(FIFO), start=2.0, dt=0.5, n_steps=4)
    with pytest.raises(ValueError, match="extra"):
        ReplayMarketConfig(speed=3)  # type: ignore[call-arg]


def test_tape_scales_of_a_still_and_a_moving_book() -> None:
    still = build_tape([(0.0, "add", 1, 100, 4, 1), (0.0, "add", -1, 102, 4, 2),
                        (5.0, "add", 1, 90, 4, 3)])  # fmt: skip
    assert still.scales(1.0) == (0.0, 4.0)
    moving = build_tape([(0.0, "add", 1, 100, 2, 1), (0.0, "add", -1, 102, 2, 2),
                         (1.5, "add", 1, 101, 2, 3), (2.5, "cancel", 1, 101, 2, 3),
                         (5.0, "add", 1, 90, 2, 4)])  # fmt: skip
    # mids on the 1 s grid: 101, 101, 101.5, 101, 101, 101 -> changes 0, .5, -.5, 0, 0
    assert moving.scales(1.0) == (pytest.approx(np.std([0, 0.5, -0.5, 0, 0])), 2.0)
    with pytest.raises(ValueError, match="horizon"):
        moving.scales(0.0)

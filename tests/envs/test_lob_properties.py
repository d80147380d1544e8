"""Property-based tests of the order-book market over random order flow and random actions:
no crossed book, no negative queue, conservation, FIFO under risk_averse, determinism; for each
order flow (Cont-Stoikov-Talreja 2010, the queue-reactive model of HLR 2015 and the realistic
flow of docs/calibration.md#realistic-order-flow), parametrized by flow."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from realistic_flow import realistic_market

from calibration.params import TOKYO_CST, MarketParams
from envs.lob.book import (
    ASK,
    BID,
    F_CASH,
    FILL_FEE,
    FILL_PRICE,
    FILL_SIDE,
    FILL_SIZE,
    FILL_TAKER,
    I_ADDED,
    I_AGENT_MAKER,
    I_AGENT_TAKER,
    I_AHEAD,
    I_APX,
    I_AREM,
    I_ASK_PX,
    I_BID_PX,
    I_CANCELLED,
    I_DROPPED,
    I_INV,
    I_MKT_EXEC,
    I_PASSIVE_OTHERS,
    OrderBooks,
    cancel,
    execute_market,
    limit_arrival,
)
from envs.lob.config import LOBMarketConfig
from envs.lob.core import LOBMarketCore, place
from envs.lob.env import LOBMarketVectorEnv

SETTINGS = settings(max_examples=25, deadline=None)

cst_params = st.builds(
    lambda lam, theta, mu, sizes, mean: MarketParams.from_dict(
        {
            **TOKYO_CST.to_dict(),
            "n_levels": 6,
            "limit_rates": lam,
            "cancel_rates": theta,
            "market_rate": mu,
            "size_distribution": sizes,
            "size_mean": mean,
            "size_probs": [0.6, 0.3, 0.1] if sizes == "discrete" else None,
        }
    ),
    lam=st.lists(st.floats(0.05, 3.0), min_size=6, max_size=6),
    theta=st.lists(st.floats(0.05, 2.0), min_size=6, max_size=6),
    mu=st.floats(0.0, 4.0),
    sizes=st.sampled_from(["unit", "geometric", "discrete"]),
    mean=st.floats(1.0, 4.0),
)


@st.composite
def qr_params(draw):
    """Random stable queue-reactive rates: K queues, sizes 0..max_queue, the top size's loss
    rate above its arrival rate."""
    k = draw(st.integers(1, 3))
    max_queue = draw(st.integers(1, 6))
    rate = st.floats(0.05, 3.0)
    lim = [draw(st.lists(rate, min_size=max_queue + 1, max_size=max_queue + 1)) for _ in range(k)]
    can = []
    for i in range(k):
        row = [0.0, *draw(st.lists(rate, min_size=max_queue, max_size=max_queue))]
        row[-1] = max(row[-1], lim[i][-1] + 0.1)
        can.append(row)
    mkt = [0.0, *draw(st.lists(st.floats(0.0, 3.0), min_size=max_queue, max_size=max_queue))]
    sizes = draw(st.sampled_from(["unit", "geometric", "discrete"]))
    return MarketParams.from_dict(
        {
            **TOKYO_CST.to_dict(),
            "n_levels": 6,
            "model": "queue_reactive",
            "limit_rates": [],
            "cancel_rates": [],
            "queue_reactive": {
                "max_queue": max_queue, "limit_rates": lim, "cancel_rates": can,
                "market_rates": mkt, "theta": draw(st.floats(0.0, 1.0)),
                "theta_reinit": draw(st.floats(0.0, 1.0)),
            },
            "size_distribution": sizes,
            "size_mean": draw(st.floats(1.0, 4.0)),
            "size_probs": [0.6, 0.3, 0.1] if sizes == "discrete" else None,
        }
    )  # fmt: skip


@st.composite
def realistic_params(draw):
    """Random realistic flows whose widest spread (``n_buckets x grid``) fits 6 levels."""
    grid = draw(st.integers(1, 2))
    rate = st.floats(0.05, 3.0)
    return realistic_market(
        n_levels=6,
        grid=grid,
        n_buckets=draw(st.integers(2, 6 // grid)),
        baseline=tuple(draw(st.lists(rate, min_size=6, max_size=6))),
        self_excite=draw(st.floats(0.0, 0.6)),
        cross_sign=draw(st.floats(0.0, 0.2)),
        stay=draw(st.floats(0.0, 1.0)),
        noise_sd=draw(st.floats(0.0, 2.0)),
        increments=tuple(draw(st.lists(st.floats(-1.0, 3.0), min_size=3, max_size=3))),
    )


FLOWS = {"cst": cst_params, "queue_reactive": qr_params(), "realistic": realistic_params()}


def check_book(book, ist, L):
    assert np.all(book >= 0), "negative queue"
    assert np.all(ist[:, I_ASK_PX] > ist[:, I_BID_PX]), "crossed book"
    assert np.all(ist[:, I_ASK_PX] - ist[:, I_BID_PX] <= L)
    for side in (BID, ASK):
        live = ist[:, I_AREM + side] > 0
        assert np.all(ist[:, I_AHEAD + side] >= 0)
        dist = np.where(
            side == BID,
            ist[:, I_ASK_PX] - ist[:, I_APX + BID],
            ist[:, I_APX + ASK] - ist[:, I_BID_PX],
        )
        assert np.all(dist[live] >= 1), "the agent's order crosses the book"
        inside = live & (dist <= L)
        rows = np.nonzero(inside)[0]
        assert np.all(ist[rows, I_AHEAD + side] <= book[rows, side, dist[rows] - 1])


@pytest.mark.parametrize("flow", FLOWS)
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_random_order_flow_keeps_the_book_sound_and_conserves_volume(flow, data, seed):
    params = data.draw(FLOWS[flow], label="params")
    books = OrderBooks(params, 16)
    books.seed(seed)
    books.reset()
    initial = books.book.sum(axis=(1, 2)).copy()
    for t in (1.0, 5.0, 20.0):
        books.simulate(until=t)
        check_book(books.book, books.ist, params.n_levels)
        ist = books.ist
        np.testing.assert_array_equal(
            books.book.sum(axis=(1, 2)),
            initial + ist[:, I_ADDED] - ist[:, I_CANCELLED] - ist[:, I_DROPPED]
            - ist[:, I_PASSIVE_OTHERS],
        )  # fmt: skip
        np.testing.assert_array_equal(ist[:, I_MKT_EXEC], ist[:, I_PASSIVE_OTHERS])


def env_configs(market_params):
    return st.builds(
        lambda params, queue, size, lat, lat_dist, maker, taker, q_max, terminal, feed: (
            LOBMarketConfig(
                market=params,
                T=15.0,
                n_steps=15,
                queue_model=queue,
                order_size=size,
                entry_latency=lat,
                latency_distribution=lat_dist,
                maker_fee_bps=maker,
                taker_fee_bps=taker,
                q_max=q_max,
                terminal=terminal,
                feed_latency=feed,
                response_latency=feed / 2,
                depth_min=-2.0,
                depth_max=4.0,
                max_fills=4096,
            )
        ),
        params=market_params,
        queue=st.sampled_from(["risk_averse", "prob", "prob_log", "exact"]),
        size=st.integers(1, 3),
        lat=st.floats(0.0, 0.9),
        lat_dist=st.sampled_from(["constant", "exponential"]),
        maker=st.floats(-3.0, 3.0),
        taker=st.floats(0.0, 5.0),
        q_max=st.integers(1, 8),
        terminal=st.sampled_from(["liquidate", "mark"]),
        feed=st.floats(0.0, 0.9),
    )


@pytest.mark.parametrize("flow", FLOWS)
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_random_actions_conserve_cash_shares_and_keep_the_book_sound(flow, data, seed):
    config = data.draw(env_configs(FLOWS[flow]), label="config")
    n = 8
    env = LOBMarketVectorEnv(num_envs=n, config=config)
    env.reset(seed=seed)
    core = env.core
    initial = core.book.sum(axis=(1, 2)).copy()
    rng = np.random.default_rng(seed)
    tick_lot = config.market.tick_size * config.market.lot_size
    for _ in range(config.n_steps):
        cash0, inv0 = core.fst[:, F_CASH].copy(), core.ist[:, I_INV].copy()
        _, _, term, _, info = env.step(rng.uniform(-1, 1, (n, 2)).astype(np.float32))
        check_book(core.book, core.ist, config.market.n_levels)
        assert np.all(np.abs(core.ist[:, I_INV]) <= config.q_max)
        # cash and inventory move only through the fills of the log, at their prices and fees
        for m in range(n):
            k = info["n_fills"][m]
            assert k <= config.max_fills
            rows = info["fills"][m, :k]
            signed = rows[:, FILL_SIDE] * rows[:, FILL_SIZE]
            assert core.ist[m, I_INV] - inv0[m] == signed.sum()
            flow = -(signed * rows[:, FILL_PRICE]).sum() * tick_lot - rows[:, FILL_FEE].sum()
            np.testing.assert_allclose(core.fst[m, F_CASH] - cash0[m], flow, rtol=0, atol=1e-6)
            fee_bps = np.where(rows[:, FILL_TAKER] > 0, config.taker_fee_bps, config.maker_fee_bps)
            np.testing.assert_allclose(
                rows[:, FILL_FEE],
                fee_bps * 1e-4 * rows[:, FILL_PRICE] * rows[:, FILL_SIZE] * tick_lot,
                atol=1e-9,
            )
        np.testing.assert_allclose(
            info["fees"],
            [info["fills"][m, : info["n_fills"][m], FILL_FEE].sum() for m in range(n)],
            atol=1e-9,
        )
    assert term.all()
    ist = core.ist
    # every trade has a buyer and a seller: aggressive lots = passive lots
    np.testing.assert_array_equal(
        ist[:, I_MKT_EXEC] + ist[:, I_AGENT_TAKER], ist[:, I_PASSIVE_OTHERS] + ist[:, I_AGENT_MAKER]
    )
    np.testing.assert_array_equal(
        core.book.sum(axis=(1, 2)),
        initial + ist[:, I_ADDED] - ist[:, I_CANCELLED] - ist[:, I_DROPPED]
        - ist[:, I_PASSIVE_OTHERS],
    )  # fmt: skip
    if config.terminal == "liquidate":
        np.testing.assert_array_equal(ist[:, I_INV], info["unliquidated"])


@pytest.mark.parametrize("flow", FLOWS)
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_a_seed_determines_every_path(flow, data, seed):
    config = data.draw(env_configs(FLOWS[flow]), label="config")
    actions = np.random.default_rng(seed).uniform(-1, 1, (config.n_steps, 4, 2))
    runs = []
    for _ in range(2):
        env = LOBMarketVectorEnv(num_envs=4, config=config)
        obs, _ = env.reset(seed=seed)
        trace = [obs["mid"].copy()]
        for a in actions:
            obs, r, _, _, info = env.step(a.astype(np.float32))
            trace += [obs["mid"].copy(), obs["inventory"].copy(), r.copy(), info["fills"].copy()]
        runs.append(trace)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------- FIFO against a reference queue
events = st.lists(
    st.one_of(
        st.tuples(st.just("market"), st.integers(1, 4)),
        st.tuples(st.just("cancel"), st.integers(1, 3)),
        st.tuples(st.just("limit"), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=40,
)


@SETTINGS
@given(ahead=st.integers(0, 6), size=st.integers(1, 4), stream=events, seed=st.integers(0, 999))
def test_risk_averse_fifo_matches_a_reference_queue(ahead, size, stream, seed):
    """A lot-by-lot FIFO queue at the best bid ('O' others, 'A' the agent): market orders take
    the front, risk-averse cancellations take the others' rearmost lots, arrivals join the back.
    The kernel must fill the agent exactly when the reference does, never earlier."""
    cfg = LOBMarketConfig(market=TOKYO_CST, queue_model="risk_averse", max_fills=512)
    core = LOBMarketCore(cfg, 1)
    core.seed(seed)
    L = core.L
    core.book[:] = 0
    core.ist[:] = 0
    core.fst[:] = 0.0
    core.ist[0, I_BID_PX], core.ist[0, I_ASK_PX] = 10_000, 10_001
    core.book[0, BID, 0] = ahead
    core.book[0, BID, 1] = 50  # a deep second level catches walking market orders
    core.book[0, ASK, 0] = 5
    b, i, f, p, fl, nf = core.book, core.ist, core.fst, core.params, core.fills, core.nfill
    queue = ["O"] * ahead
    place(*core.order_args(), 0, BID, 10_000, size)
    queue += ["A"] * size
    for kind, k in stream:
        if "A" not in queue:
            break
        if kind == "market":
            taken = queue[:k]
            del queue[:k]
            execute_market(b, i, f, p, fl, nf, 0, BID, min(k, len(taken)), L)
        elif kind == "cancel":
            for _ in range(min(k, queue.count("O"))):
                last_o = max(j for j, x in enumerate(queue) if x == "O")
                del queue[last_o]
                cancel(b, i, f, core.rng, p, 0, BID, 1, L)
        else:
            for _ in range(k):
                queue.append("O")
                limit_arrival(b, i, core.rng, p, 0, BID, 1, L)
        agent_left = queue.count("A")
        assert b[0, BID, 0] == queue.count("O")
        assert i[0, I_AREM + BID] == agent_left
        assert i[0, I_INV] == size - agent_left
        if agent_left:
            assert i[0, I_AHEAD + BID] == queue.index("A")

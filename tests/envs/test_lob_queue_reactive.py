"""The queue-reactive order flow (Huang, Lehalle & Rosenbaum 2015): parameters, invariant law,
the reference-price mechanism, and the env running on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from gymnasium.utils.env_checker import check_env
from pydantic import ValidationError
from scipy import linalg, stats

from calibration.params import TOKYO_CST, MarketParams
from envs.lob.book import (
    ASK,
    BID,
    I_ADDED,
    I_ASK_PX,
    I_BID_PX,
    I_CANCELLED,
    I_DROPPED,
    I_PASSIVE_OTHERS,
    I_REF,
    OrderBooks,
    qr_depleted,
)
from envs.lob.config import LOBMarketConfig
from envs.lob.env import LOBMarketEnv, LOBMarketVectorEnv
from envs.lob.validation import invariant_queue_distribution, simulate_qr_queue_sizes

ROOT = Path(__file__).resolve().parents[2]
QR_DATA = yaml.safe_load((ROOT / "configs/markets/queue_reactive_default.yaml").read_text())
QR = MarketParams.from_dict(QR_DATA)


def qr_with(**changes):
    return MarketParams.from_dict({**QR_DATA, "queue_reactive": {**QR_DATA["queue_reactive"],
                                                                 **changes}})  # fmt: skip


# ------------------------------------------------------------------------- parameters
def test_default_config_loads_and_round_trips():
    assert QR.model == "queue_reactive" and QR.queue_reactive is not None
    assert QR.queue_reactive.n_queues == 3 and QR.n_levels >= 2 * QR.queue_reactive.n_queues
    assert MarketParams.from_dict(QR.to_dict()) == QR
    assert TOKYO_CST.model == "cst" and TOKYO_CST.queue_reactive is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"cancel_rates": [[0.1] * 11] * 3}, r"cancel_rates\[0\]\[0\] must be 0"),
        ({"limit_rates": [[1.0] * 10] * 3}, r"limit_rates\[0\] must have max_queue \+ 1 = 11"),
        ({"cancel_rates": [[0.0] + [0.1] * 10] * 2}, "one row per queue"),
        ({"market_rates": [0.0, 1.0]}, "market_rates must have max_queue"),
        ({"theta": 1.5}, "theta"),
        (
            {"limit_rates": [[1.0] * 11] * 3, "cancel_rates": [[0.0] + [0.5] * 10] * 3},
            r"queue 1 is unstable: limit_rates\[0\]\[10\] = 1.0",
        ),
        ({"cancel_rates": [[0.0, 0.0] + [0.5] * 9] * 3}, r"queue 2 can reach size 1"),
    ],
)
def test_bad_queue_reactive_parameters_name_the_field(change, match):
    with pytest.raises(ValidationError, match=match):
        qr_with(**change)


def test_model_and_parameters_must_agree():
    with pytest.raises(ValidationError, match="queue_reactive parameters are required"):
        MarketParams.from_dict({**QR_DATA, "queue_reactive": None})
    with pytest.raises(ValidationError, match="only used with model 'queue_reactive'"):
        MarketParams.from_dict({**TOKYO_CST.to_dict(), "queue_reactive": QR_DATA["queue_reactive"]})
    with pytest.raises(ValidationError, match="must be <= n_levels = 2"):
        MarketParams.from_dict({**QR_DATA, "n_levels": 2})
    cst = TOKYO_CST.to_dict()
    del cst["market_rate"]
    with pytest.raises(ValidationError, match="market_rate is required by model 'cst'"):
        MarketParams.from_dict(cst)


# ------------------------------------------------------------------------- invariant law
@pytest.mark.parametrize("queue", [1, 2, 3])
def test_invariant_law_is_the_null_vector_of_the_birth_death_generator(queue):
    """pi Q = 0 for the generator of the chain truncated far in its geometric tail."""
    qr = QR.queue_reactive
    assert qr is not None
    pi = invariant_queue_distribution(QR, queue)
    n = pi.size + 40
    birth = np.array([qr.limit_rates[queue - 1][min(k, qr.max_queue)] for k in range(n)])
    death = np.array([qr.death_rates(queue)[min(k, qr.max_queue)] for k in range(n)])
    gen = np.zeros((n, n))
    for k in range(n - 1):
        gen[k, k + 1] = birth[k]
        gen[k + 1, k] = death[k + 1]
    gen -= np.diag(gen.sum(axis=1))
    null = linalg.null_space(gen.T)[:, 0]
    null /= null.sum()
    np.testing.assert_allclose(pi, null[: pi.size], atol=1e-10)
    assert abs(pi.sum() - 1.0) < 1e-12


def test_simulated_queue_sizes_follow_the_invariant_law():
    """With theta = 0 the reference price stays and Q_{+-1} is exactly the birth-death chain of
    HLR 2015 Model I (unit sizes); Q_{+-2}, Q_{+-3} nearly (they also meet market orders while
    the queues before them are empty). Chi-square over 2 x 3000 independent books."""
    params = qr_with(theta=0.0)
    for queue in (1, 2, 3):
        sizes = simulate_qr_queue_sizes(params, queue, 3000, 40.0, seed=queue).ravel()
        pi = invariant_queue_distribution(params, queue)
        observed = np.bincount(sizes, minlength=pi.size)[: pi.size]
        expected = pi * sizes.size
        keep = expected >= 5
        obs = np.append(observed[keep], sizes.size - observed[keep].sum())
        exp = np.append(expected[keep], sizes.size - expected[keep].sum())
        assert stats.chisquare(obs, exp).pvalue > 1e-3, queue
        assert 0.5 * np.abs(observed / sizes.size - pi).sum() < 0.05


# ------------------------------------------------------------------------- reference price
def _depleted_books(params, n, seed, side):
    books = OrderBooks(params, n)
    books.seed(seed)
    books.reset()
    ask_q1 = books.ist[:, I_REF] - books.bid_px  # distance of Q_{+1} from the best bid
    idx = np.arange(n)
    if side == ASK:
        books.book[idx, ASK, ask_q1 - 1] = 0  # Q_{+1} just emptied
    else:
        books.book[idx, BID, books.ask_px - books.ist[:, I_REF]] = 0  # Q_{-1} at ref - 1
    return books


def _call_depleted(books, side):
    L = books.L
    evlog = np.zeros((books.num_books, 0, 1))
    nlog = np.zeros(books.num_books, np.int64)
    other = np.zeros(0, np.int64)
    for m in range(books.num_books):
        qr_depleted(
            books.book,
            books.ist,
            books.fst,
            books.rng,
            books.params,
            m,
            side,
            L,
            evlog,
            nlog,
            other,
            False,
        )


@pytest.mark.parametrize("side", [ASK, BID])
def test_reference_price_moves_with_probability_theta(side):
    n = 4000
    books = _depleted_books(qr_with(theta=0.3, theta_reinit=0.0), n, 7, side)
    ref0 = books.ist[:, I_REF].copy()
    _call_depleted(books, side)
    moved = books.ist[:, I_REF] - ref0
    assert set(np.unique(moved)) == {0, 1 if side == ASK else -1}
    frac = np.mean(moved != 0)
    assert abs(frac - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)


def test_a_move_shifts_the_grid_and_a_redraw_renews_the_book():
    K = 3
    # theta = 1, no redraw: the far bid queue leaves, a new ask queue K enters, the rest stays
    books = _depleted_books(qr_with(theta=1.0, theta_reinit=0.0), 200, 1, ASK)
    before = {s: _by_price(books, s) for s in (BID, ASK)}
    ref0 = books.ist[:, I_REF].copy()
    _call_depleted(books, ASK)
    after = {s: _by_price(books, s) for s in (BID, ASK)}
    for m in range(200):
        assert books.ist[m, I_REF] == ref0[m] + 1
        assert after[BID][m].get(ref0[m] - K, 0) == 0
        kept = {p: v for p, v in before[BID][m].items() if p != ref0[m] - K}
        assert after[BID][m] == kept
        new_px = ref0[m] + K  # Q_{+K} around the new reference price
        assert {p: v for p, v in after[ASK][m].items() if p != new_px} == before[ASK][m]
    entering = np.array([after[ASK][m].get(ref0[m] + K, 0) for m in range(200)])
    assert entering.mean() > 5  # drawn from pi_3 (mean about 10.9 lots), not left empty
    # theta = 1, theta_reinit = 1: every queue of the new grid holds a draw, nothing else rests
    books = _depleted_books(qr_with(theta=1.0, theta_reinit=1.0), 200, 2, ASK)
    _call_depleted(books, ASK)
    ref = books.ist[:, I_REF]
    for m in range(200):
        assert set(_by_price(books, BID)[m]) <= {ref[m] - q for q in range(1, K + 1)}
        assert set(_by_price(books, ASK)[m]) <= {ref[m] + q - 1 for q in range(1, K + 1)}
    assert np.all(books.ask_px > books.bid_px)


def _by_price(books, side):
    out = []
    for m in range(books.num_books):
        if side == BID:
            px = books.ask_px[m] - np.arange(1, books.L + 1)
        else:
            px = books.bid_px[m] + np.arange(1, books.L + 1)
        out.append({int(p): int(v) for p, v in zip(px, books.book[m, side], strict=True) if v})
    return out


def test_long_runs_keep_the_book_sound_and_the_grid_inside_the_window():
    books = OrderBooks(QR, 64)
    books.seed(3)
    books.reset()
    initial = books.book.sum(axis=(1, 2)).copy()
    mids = []
    for t in (50.0, 100.0, 200.0):
        books.simulate(until=t)
        ist = books.ist
        assert np.all(ist[:, I_ASK_PX] > ist[:, I_BID_PX])
        # others' bests stay on the grid: the ask at Q_{+1..K+1}, the bid at Q_{-1..-(K+1)}
        assert np.all((ist[:, I_ASK_PX] >= ist[:, I_REF]) & (ist[:, I_ASK_PX] <= ist[:, I_REF] + 3))
        assert np.all((ist[:, I_BID_PX] <= ist[:, I_REF] - 1) &
                      (ist[:, I_BID_PX] >= ist[:, I_REF] - 4))  # fmt: skip
        np.testing.assert_array_equal(
            books.book.sum(axis=(1, 2)),
            initial + ist[:, I_ADDED] - ist[:, I_CANCELLED] - ist[:, I_DROPPED]
            - ist[:, I_PASSIVE_OTHERS],
        )  # fmt: skip
        mids.append(ist[:, I_REF].copy())
    assert np.std(mids[-1] - mids[0]) > 0.5  # theta = 0.6: the reference price diffuses


# ------------------------------------------------------------------------- the env
def test_the_env_runs_on_the_queue_reactive_market():
    cfg = LOBMarketConfig(market=QR, T=30.0, n_steps=30, depth_min=-1.0, depth_max=3.0)
    check_env(LOBMarketEnv(config=cfg), skip_render_check=True)
    env = LOBMarketVectorEnv(num_envs=32, config=cfg)
    env.reset(seed=0)
    fills = 0
    action = env.action_map.to_action(np.full(32, 0.5), np.full(32, 0.5))
    for _ in range(30):
        obs, _, term, _, info = env.step(action)
        fills += int(info["n_fills"].sum())
    assert term.all() and fills > 0
    assert np.all(obs["book"][:, 0, BID, 0] < obs["book"][:, 0, ASK, 0])

"""Strategy fidelity: the verdict rules on hand-built numbers (cases that must pass and cases
that must fail) and the units the two markets share (lot ratio, fees, quote size, the inventory
the policies see). The command's run on the GOOG day is in tests/smoke/."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.base import Policy
from calibration.params import TOKYO_CST
from evaluation.fidelity import (
    FAIL,
    PASS,
    UNMEASURED,
    Dataset,
    FidelityConfig,
    LotScaledPolicy,
    fees_bps,
    fidelity_verdicts,
    fill_verdict,
    lot_ratio,
    markets,
    markout_verdict,
    pnl_verdict,
)

# ------------------------------------------------------------------------------ P&L rule


@pytest.mark.parametrize(
    ("sim", "expected"),
    [(-90.0, PASS), (40.0, PASS), (-400.0, FAIL), (150.0, FAIL)],
    ids=["inside", "inside_upper", "below", "above"],
)
def test_pnl_inside_a_wide_replay_interval_passes(sim, expected):
    # replay mean -100, CI [-300, 100]: half-width 200 > 30% of 100, so the CI is the band
    verdict, gap = pnl_verdict(sim, -100.0, -300.0, 100.0)
    assert verdict == expected
    assert (gap == "") == (expected == PASS)


@pytest.mark.parametrize(
    ("sim", "expected"),
    [(100.0, PASS), (75.0, PASS), (129.0, PASS), (69.0, FAIL), (131.0, FAIL)],
    ids=["mean", "within_30_below", "within_30_above", "beyond_30_below", "beyond_30_above"],
)
def test_pnl_with_a_narrow_replay_interval_takes_30_percent_of_the_mean(sim, expected):
    # replay mean 100, CI [95, 105]: narrower than +-30, so the band is [70, 130]
    assert pnl_verdict(sim, 100.0, 95.0, 105.0)[0] == expected


def test_pnl_gap_says_by_how_much():
    verdict, gap = pnl_verdict(200.0, 100.0, 95.0, 105.0)
    assert verdict == FAIL and "+70" in gap and "130" in gap


def test_pnl_with_a_missing_number_is_not_measured():
    assert pnl_verdict(1.0, 1.0, math.nan, math.nan)[0] == UNMEASURED


# --------------------------------------------------------------- fill rate, mark-outs


@pytest.mark.parametrize(
    ("sim", "replay", "expected"),
    [(0.2, 0.2, PASS), (0.15, 0.2, PASS), (0.25, 0.2, PASS), (0.149, 0.2, FAIL),
     (0.251, 0.2, FAIL), (0.02, 0.2, FAIL), (0.1, 0.0, UNMEASURED)],
)  # fmt: skip
def test_fill_rate_within_25_percent(sim, replay, expected):
    assert fill_verdict(sim, replay)[0] == expected


def test_markouts_need_the_same_sign_at_every_horizon():
    assert markout_verdict([-1.0, -2.0, -3.0], [-0.1, -5.0, -0.2]) == (PASS, "")
    verdict, gap = markout_verdict([0.5, -2.0, -3.0], [-1.0, -2.0, -3.0], [1.0, 10.0, 60.0])
    assert verdict == FAIL and gap == "opposite sign at 1 s"
    assert markout_verdict([0.0, 1.0], [1.0, 1.0])[0] == UNMEASURED
    assert markout_verdict([math.nan, 1.0], [1.0, 1.0])[0] == UNMEASURED


def _summary_row(market: str, policy: str, pnl: tuple, fill: float, marks: tuple) -> dict:
    row: dict[str, object] = {"market": market, "policy": policy}
    row |= dict(zip(("pnl_per_hour_mean", "pnl_per_hour_low", "pnl_per_hour_high"), pnl,
                    strict=True))  # fmt: skip
    row["fill_rate_mean"] = fill
    for h, m in zip((1, 10, 60), marks, strict=True):
        row[f"markout_{h}s_bps_mean"] = m
    return row


def test_fidelity_verdicts_per_strategy():
    summary = pd.DataFrame(
        [
            _summary_row("replay", "good", (-100.0, -300.0, 100.0), 0.10, (-1.0, -2.0, -3.0)),
            _summary_row("simulated", "good", (-50.0, -60.0, -40.0), 0.11, (-0.5, -1.0, -1.0)),
            _summary_row("replay", "flattered", (-100.0, -300.0, 100.0), 0.10, (-1.0, -2.0, -3.0)),
            _summary_row("simulated", "flattered", (500.0, 400.0, 600.0), 0.02, (1.0, 2.0, -1.0)),
        ]
    )
    v = fidelity_verdicts(summary, [1.0, 10.0, 60.0]).set_index("policy")
    assert v.loc["good", ["pnl", "fill_rate", "markouts", "verdict"]].tolist() == [PASS] * 4
    bad = v.loc["flattered"]
    assert [bad["pnl"], bad["fill_rate"], bad["markouts"], bad["verdict"]] == [FAIL] * 4
    assert bad["markout_gap"] == "opposite sign at 1 s, 10 s"


# ------------------------------------------------------------------------------ units


def test_lot_ratio_is_a_whole_number_of_feed_lots():
    goog = TOKYO_CST.model_copy(update={"lot_size": 100.0})
    nexo = TOKYO_CST.model_copy(update={"lot_size": 147.29})
    assert lot_ratio(goog, 1.0) == 100
    assert lot_ratio(nexo, 0.01) == 14729
    with pytest.raises(ValueError, match="whole number"):
        lot_ratio(goog, 0.7)


def _dataset(fmt: str = "lobster", price: float = 57000.0) -> Dataset:
    name = "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz" if fmt == "lobster" else "x.gz"
    return Dataset((Path(name),), fmt, "spot", price, 0.01)  # type: ignore[arg-type]


def test_fees_follow_the_venue_at_the_days_price():
    maker, taker = fees_bps(FidelityConfig(), _dataset("lobster", 57000.0))
    # NASDAQ 2012: $0.0030 / share taken, $0.0020 rebate, at $570
    assert taker == pytest.approx(0.0030 / 570.0 * 1e4)
    assert maker == pytest.approx(-0.0020 / 570.0 * 1e4)
    assert fees_bps(FidelityConfig(), _dataset("binance")) == (10.0, 10.0)
    assert fees_bps(FidelityConfig(maker_fee_bps=1.0), _dataset("binance")) == (1.0, 10.0)


def test_both_markets_share_interval_fees_depths_and_quote_size_in_shares():
    params = TOKYO_CST.model_copy(update={"lot_size": 100.0, "tick_size": 0.01})
    cfg = FidelityConfig(window_s=600.0, dt=2.0, order_size=2, q_max=5, entry_latency=0.5)
    sim, replay, ratio = markets(cfg, params, _dataset(), feed_lot=1.0)
    assert ratio == 100
    assert (sim.dt, sim.n_steps, replay.dt, replay.n_steps) == (2.0, 300, 2.0, 300)
    for key in ("depth_min", "depth_max", "maker_fee_bps", "taker_fee_bps", "entry_latency",
                "terminal"):  # fmt: skip
        assert getattr(sim, key) == getattr(replay, key), key
    assert sim.depth_max == params.n_levels - 1
    # two quotes of 100 shares: 2 lots simulated, 200 shares replayed; the bound likewise
    assert sim.order_size * params.lot_size == replay.order_size * 1.0 == 200
    assert (sim.q_max, replay.q_max) == (5, 500)
    assert sim.initial_price == 56999  # best bid just under the day's median mid


class _Recorder(Policy):
    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def act(self, observation):
        self.seen.append(np.asarray(observation["inventory"]))
        return np.zeros((len(observation["inventory"]), 2), np.float32)


def test_lot_scaled_policy_sees_inventory_in_quotes():
    inner = _Recorder()
    policy = LotScaledPolicy(inner, 100)
    obs = {"inventory": np.array([[300.0], [-100.0]]), "time_left": np.array([[1.0], [1.0]])}
    policy.act(obs)
    np.testing.assert_allclose(inner.seen[0], [[3.0], [-1.0]])
    np.testing.assert_allclose(obs["inventory"], [[300.0], [-100.0]])  # not modified

"""Historical replay on the sample LOBSTER files: gymnasium's checker on the tiny AAPL fixture
and a fixed-depth policy over a window of the GOOG day."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from data.samples import SAMPLES_DIR
from envs.exchange.layout import F_CASH, I_INV
from envs.replay.env import ReplayMarketEnv, ReplayMarketVectorEnv

pytestmark = pytest.mark.data

GOOG = "lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
AAPL_TINY = "lobster/AAPL_first49s_L10/AAPL_2012-06-21_34200000_57600000_message_10.csv"


def data_file(name: str) -> str:
    return str(SAMPLES_DIR / name)


def test_check_env_on_the_tiny_aapl_fixture() -> None:
    env = ReplayMarketEnv(path=data_file(AAPL_TINY), dt=1.0, n_steps=20)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["book"].shape == (10, 2, 2)
    assert obs["book"][0, 1, 0] > obs["book"][0, 0, 0] > 0  # a recorded, uncrossed book


def test_registered_ids_build_the_replay_on_defaults() -> None:
    data_file(AAPL_TINY)
    env = gymnasium.make(envs.REPLAY_MARKET_ID)
    obs, _ = env.reset(seed=1)
    assert obs["mid"][0] > 50_000  # AAPL at ~$585 in ticks of $0.01
    venv = gymnasium.make_vec(envs.REPLAY_MARKET_ID, num_envs=3,
                              vectorization_mode="vector_entry_point", start=None,
                              same_window=False)  # fmt: skip
    vobs, _ = venv.reset(seed=2)
    assert vobs["book"].shape == (3, 10, 2, 2)
    assert len(set(vobs["mid"][:, 0].tolist())) > 1  # three different windows


def run_fixed_depth(
    queue_model: str, depth: float | None = 3.0
) -> tuple[dict[str, Any], ReplayMarketVectorEnv]:
    """One GOOG window quoting ``depth`` ticks from the mid (None: join the best quotes)."""
    start, dt, n_steps = 3600.0, 1.0, 600
    venv = ReplayMarketVectorEnv(num_envs=1, path=data_file(GOOG), start=start, dt=dt,
                                 n_steps=n_steps, depth_min=0.0, depth_max=20.0, q_max=50,
                                 queue_model=queue_model, maker_fee_bps=-0.2,
                                 taker_fee_bps=0.3, max_fills=512)  # fmt: skip
    obs, _ = venv.reset(seed=0)
    totals: dict[str, Any] = dict.fromkeys(
        ("events", "maker", "taker", "cash_flow", "fees", "ahead_at_entry"), 0.0
    )
    done = False
    while not done:
        if depth is None:  # depths to the best bid and ask (minus a quarter: floor/ceil-safe)
            mid = float(obs["mid"][0, 0])
            d = [mid - obs["book"][0, 0, 0, 0] - 0.25, obs["book"][0, 0, 1, 0] - mid - 0.25]
            act = (np.clip(d, 0.0, 20.0) / 10.0 - 1.0).astype(np.float32)[None]
        else:
            act = np.array([[depth / 10.0 - 1.0] * 2], np.float32)
        obs, _, term, _, info = venv.step(act)
        totals.setdefault("ahead", []).append(obs["orders"][0, :, 2].copy())
        done = bool(term[0])
        totals["events"] += float(info["events"][0])
        totals["fees"] += float(info["fees"][0])
        for f in info["fills"][0, : int(info["n_fills"][0])]:
            key = "taker" if f[4] else "maker"
            totals[key] += f[2]
            totals["ahead_at_entry"] += f[6]
            totals["cash_flow"] -= f[3] * f[1] * 0.01 * f[2] + f[5]
    totals["cash"] = float(venv.core.fst[0, F_CASH])
    totals["inventory"] = float(venv.core.ist[0, I_INV])
    return totals, venv


def test_goog_window_fixed_depth_policy() -> None:
    exact, venv = run_fixed_depth("exact")
    tape = venv.core.tape
    in_window = np.count_nonzero((tape.t > 3600.0) & (tape.t <= 4200.0))
    assert exact["events"] == in_window > 4_000  # every event of the window replayed once
    assert exact["maker"] > 0  # quoting 3 ticks from the mid inside a ~28-tick spread fills
    assert exact["cash"] == pytest.approx(exact["cash_flow"], abs=1e-6)
    assert exact["inventory"] == 0.0  # liquidated at the end
    assert exact["fees"] < 0.1  # rebates on passive lots outweigh the few taker fees


def test_goog_window_joining_the_best_queue_models() -> None:
    exact, _ = run_fixed_depth("exact", depth=None)
    averse, _ = run_fixed_depth("risk_averse", depth=None)
    assert averse["events"] == exact["events"]
    assert exact["ahead_at_entry"] > 0 and exact["maker"] > 0  # others were there first
    a, b = np.array(exact["ahead"]), np.array(averse["ahead"])
    differ = np.flatnonzero(np.any(a != b, axis=1))
    assert differ.size > 0  # the quotes are the same (the market is), the queues are not
    first = differ[0]  # where the paths part, only the exact queue was advanced by a cancel
    assert np.all(b[first] >= a[first]) and np.any(b[first] > a[first])

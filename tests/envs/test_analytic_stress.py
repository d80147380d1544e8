"""Stress scenarios in the analytic market: effects inside the window only, on paired numbers."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

import envs
from configs.schema import AnalyticMarketConfig, StressScenario
from envs.analytic import (
    S_A_ASK,
    S_A_BID,
    S_K,
    S_SHIFT,
    S_SIGMA,
    AnalyticMarketVectorEnv,
    stress_schedule,
)

N_ENVS, N_STEPS = 400, 100
WINDOW = {"start": 0.4, "end": 0.6}  # steps 40 .. 59
FIRST, STOP = 40, 60
MARKET = {"n_steps": N_STEPS, "q_max": 10_000, "sigma": 2.0, "A": 140.0, "k": 1.5}


def scenario(window=WINDOW, **perturbations) -> dict:
    return {"name": "test", "markets": ["analytic"], "window": window,
            "perturbations": perturbations}  # fmt: skip


def run(stress=None, seed=7, action=0.0, n_envs=N_ENVS, **market):
    """Mid paths ``(n_steps + 1, N)``, rewards, bid and ask fill flags ``(n_steps, N)``."""
    env = AnalyticMarketVectorEnv(n_envs, **(MARKET | market), stress=stress)
    env.reset(seed=seed)
    mids, rewards, bids, asks = [env.core.mid.copy()], [], [], []
    act = np.full((n_envs, 2), action)
    for _ in range(env.config.n_steps):
        _, r, _, _, info = env.step(act)
        mids.append(env.core.mid.copy())
        rewards.append(r)
        bids.append(info["fill_bid"])
        asks.append(info["fill_ask"])
    return np.array(mids), np.array(rewards), np.array(bids), np.array(asks)


def test_neutral_scenario_gives_the_unstressed_numbers_exactly():
    neutral = scenario(volatility={"factor": 1.0}, fill_intensity={"factor": 1.0},
                       fill_decay={"factor": 1.0}, drift={"rate": 0.0})  # fmt: skip
    for a, b in zip(run(), run(neutral), strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_numbers_and_different_seed_different_numbers():
    stress = scenario(volatility={"factor": 3.0}, fill_intensity={"factor": 0.5})
    first, again, other = run(stress), run(stress), run(stress, seed=8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_scenario_changes_nothing_before_its_window():
    base = run()
    stressed = run(scenario(volatility={"factor": 3.0}, fill_intensity={"factor": 0.25},
                            drift={"rate": -4.0}))  # fmt: skip
    np.testing.assert_array_equal(base[0][: FIRST + 1], stressed[0][: FIRST + 1])
    for a, b in zip(base[1:], stressed[1:], strict=True):
        np.testing.assert_array_equal(a[:FIRST], b[:FIRST])
        assert not np.array_equal(a[FIRST:STOP], b[FIRST:STOP])


def test_volatility_spike_scales_each_mid_increment_inside_the_window_only():
    factor = 3.0
    base = np.diff(run()[0], axis=0)
    spiked = np.diff(run(scenario(volatility={"factor": factor}))[0], axis=0)
    inside = np.zeros(N_STEPS, bool)
    inside[FIRST:STOP] = True
    # common random numbers: the same shocks, scaled
    np.testing.assert_allclose(spiked[inside], factor * base[inside], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(spiked[~inside], base[~inside], rtol=1e-9, atol=1e-12)
    # and in distribution: variance inside / outside = factor^2 (F test at 1%)
    ratio = spiked[inside].var() / spiked[~inside].var()
    n_in, n_out = spiked[inside].size - 1, spiked[~inside].size - 1
    low, high = stats.f.ppf([0.005, 0.995], n_in, n_out)
    assert factor**2 * low < ratio < factor**2 * high


def depth_action(depth: float) -> float:
    """The action quoting at ``depth`` on the default depth map [-5, 5]."""
    return (depth + 5.0) / 5.0 - 1.0


@pytest.mark.parametrize("side", ["both", "bid", "ask"])
def test_drought_thins_fills_by_the_factor_inside_the_window(side):
    factor = 0.25
    # depth 1: fill probability A exp(-k) dt = 0.31 per step (clipped law, below 1)
    _, _, bid0, ask0 = run(action=depth_action(1.0))
    stress = scenario(fill_intensity={"factor": factor, "side": side})
    _, _, bid1, ask1 = run(stress, action=depth_action(1.0))
    for flags0, flags1, hit in ((bid0, bid1, side != "ask"), (ask0, ask1, side != "bid")):
        # same uniforms: a stressed fill is also a baseline fill, outside the window the same
        assert not (flags1 & ~flags0).any()
        np.testing.assert_array_equal(flags0[:FIRST], flags1[:FIRST])
        np.testing.assert_array_equal(flags0[STOP:], flags1[STOP:])
        inside0, inside1 = flags0[FIRST:STOP].sum(), flags1[FIRST:STOP].sum()
        if hit:  # binomial thinning: kept ~ Bin(inside0, factor); 99.9% interval
            low, high = stats.binom.ppf([0.0005, 0.9995], inside0, factor)
            assert low <= inside1 <= high
        else:
            assert inside1 == inside0


def test_fill_decay_factor_acts_like_a_deeper_quote():
    # k x2 at depth 1 has the fill probability of depth 2 at the unstressed k
    _, _, bid_k, ask_k = run(scenario(fill_decay={"factor": 2.0}), action=depth_action(1.0))
    _, _, bid_deep, ask_deep = run(action=depth_action(2.0))
    _, _, bid_shallow, _ = run(action=depth_action(1.0))
    np.testing.assert_array_equal(bid_k[FIRST:STOP], bid_deep[FIRST:STOP])
    np.testing.assert_array_equal(ask_k[FIRST:STOP], ask_deep[FIRST:STOP])
    np.testing.assert_array_equal(bid_k[:FIRST], bid_shallow[:FIRST])
    assert bid_k[FIRST:STOP].sum() < bid_shallow[FIRST:STOP].sum()


@pytest.mark.parametrize("revert", [True, False])
def test_flash_crash_moves_the_mid_by_the_jump_from_the_window_start(revert):
    jump = -5.0
    base = run()[0]
    crashed = run(scenario(jump={"size": jump, "revert": revert}))[0]
    expected = np.zeros(N_STEPS + 1)
    expected[FIRST + 1 :] = jump  # row t is the mid at decision t; the jump falls in step FIRST
    if revert:
        expected[STOP:] = 0.0  # and jumps back in the window's last step
    np.testing.assert_allclose(crashed - base, np.broadcast_to(expected[:, None], base.shape),
                               atol=1e-9)  # fmt: skip


def test_jump_and_drift_in_sigmas_scale_with_the_market_sigma():
    sigma = 0.1
    base = run(sigma=sigma)[0]
    jumped = run(scenario(jump={"size": -3.0, "unit": "sigma"}), sigma=sigma)[0]
    np.testing.assert_allclose(jumped[-1] - base[-1], -3.0 * sigma, atol=1e-9)
    drifted = run(scenario(drift={"rate": 5.0, "unit": "sigma"}), sigma=sigma)[0]
    # drift rate 5 sigma per time unit over 20% of T = 1
    np.testing.assert_allclose(drifted[-1] - base[-1], 5.0 * sigma * 0.2, atol=1e-9)


def test_toxic_flow_drift_moves_the_mid_by_rate_times_window_length():
    rate = -4.0
    base, _, bid0, _ = run(action=depth_action(1.0))
    toxic = scenario(drift={"rate": rate}, fill_intensity={"factor": 2.0, "side": "bid"})
    trend, _, bid1, _ = run(toxic, action=depth_action(1.0))
    np.testing.assert_allclose(trend[-1] - base[-1], rate * 0.2, atol=1e-9)
    assert bid1[FIRST:STOP].sum() > bid0[FIRST:STOP].sum()


def test_single_market_and_gymnasium_make_take_a_scenario():
    env = gymnasium.make(envs.ANALYTIC_MARKET_ID, n_steps=20,
                         stress=scenario(jump={"size": 4.0}))  # fmt: skip
    obs, _ = env.reset(seed=0)
    mids = [obs["mid"][0]]
    for _ in range(20):
        obs, *_ = env.step(np.zeros(2, np.float32))
        mids.append(obs["mid"][0])
    plain = gymnasium.make(envs.ANALYTIC_MARKET_ID, n_steps=20)
    obs, _ = plain.reset(seed=0)
    base = [obs["mid"][0]]
    for _ in range(20):
        obs, *_ = plain.step(np.zeros(2, np.float32))
        base.append(obs["mid"][0])
    np.testing.assert_allclose(np.array(mids)[9:] - np.array(base)[9:], 4.0, atol=1e-4)
    np.testing.assert_array_equal(mids[:9], base[:9])


@settings(max_examples=60, deadline=None)
@given(
    n_steps=st.integers(1, 400),
    data=st.data(),
    factor=st.floats(0.1, 10.0).filter(lambda f: abs(f - 1.0) > 1e-6),
)
def test_schedule_is_perturbed_exactly_on_the_steps_whose_start_is_in_the_window(
    n_steps, data, factor
):
    a = data.draw(st.integers(0, n_steps - 1))
    b = data.draw(st.integers(a + 1, n_steps))
    market = AnalyticMarketConfig(n_steps=n_steps, T=2.5)
    fraction = {"start": a / n_steps, "end": b / n_steps}
    time = {"start": 2.5 * a / n_steps, "end": 2.5 * b / n_steps, "unit": "time"}
    for window in (fraction, time):
        shocks = {
            "volatility": {"factor": factor},
            "fill_intensity": {"factor": factor, "side": "ask"},
        }
        sched = stress_schedule(StressScenario.model_validate(scenario(window, **shocks)), market)
        np.testing.assert_array_equal(np.flatnonzero(sched[S_SIGMA] != 1.0), np.arange(a, b))
        np.testing.assert_array_equal(np.flatnonzero(sched[S_A_ASK] != 1.0), np.arange(a, b))
        assert (sched[S_A_BID] == 1.0).all() and (sched[S_K] == 1.0).all()
        assert (sched[S_SHIFT] == 0.0).all()


def test_bad_scenarios_fail_with_the_scenario_and_field_named():
    with pytest.raises(ValueError, match="'test'.*holds no decision step"):
        AnalyticMarketVectorEnv(
            2, n_steps=10, stress=scenario({"start": 0.51, "end": 0.55}, volatility={"factor": 2.0})
        )
    with pytest.raises(ValueError, match="reverting jump needs a window of at least 2 steps"):
        one_step = scenario({"start": 0.5, "end": 0.6}, jump={"size": 1.0, "revert": True})
        AnalyticMarketVectorEnv(2, n_steps=10, stress=one_step)
    with pytest.raises(ValidationError, match="'latency' has no meaning in market"):
        AnalyticMarketConfig(stress=scenario(latency={"factor": 10.0}))
    with pytest.raises(ValidationError, match="at least one perturbation"):
        AnalyticMarketConfig(stress=scenario())
    with pytest.raises(ValidationError, match="end .* must exceed start"):
        AnalyticMarketConfig(stress=scenario({"start": 0.5, "end": 0.5}, jump={"size": 1.0}))
    with pytest.raises(ValidationError, match="fraction of the horizon"):
        AnalyticMarketConfig(stress=scenario({"start": 0.5, "end": 1.5}, jump={"size": 1.0}))
    with pytest.raises(ValidationError, match="factor"):
        AnalyticMarketConfig(stress=scenario(volatility={"factor": -1.0}))
    lob_only = scenario(volatility={"factor": 2.0}) | {"markets": ["lob"]}
    with pytest.raises(ValueError, match="declares markets \\['lob'\\], not 'analytic'"):
        AnalyticMarketVectorEnv(2, stress=lob_only)

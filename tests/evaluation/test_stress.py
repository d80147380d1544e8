"""Stress summaries: which pairs run, paired differences, metric keys, table and heatmap."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from agents.factory import make_policy
from configs.schema import (
    AnalyticMarketConfig,
    FixedSpreadConfig,
    LOBMarketConfig,
    StressScenario,
)
from evaluation.rollout import EpisodeBatch, rollout
from evaluation.stats import MeanCI
from evaluation.stress import (
    BASELINE,
    flat_stress_metrics,
    skip_reason,
    stress_frame,
    stress_heatmap,
    stress_summary,
    stressed_market,
)
from experiments.config import make_vector_env


def make_scenario(name="spike", markets=("analytic", "lob"), **perturbations) -> StressScenario:
    return StressScenario.model_validate({
        "name": name, "markets": list(markets), "window": {"start": 0.4, "end": 0.6},
        "perturbations": perturbations or {"volatility": {"factor": 3.0}},
    })  # fmt: skip


def ci(summary: dict, key: str) -> MeanCI:
    value = summary[key]
    assert isinstance(value, MeanCI)
    return value


def batch_from(pnl_paths: np.ndarray, inventory: np.ndarray, penalty: float = 0.0) -> EpisodeBatch:
    n = pnl_paths.shape[0]
    pnl = pnl_paths[:, -1]
    return EpisodeBatch(
        reward=pnl - penalty, pnl=pnl, penalty=np.full(n, penalty),
        final_inventory=inventory[:, -1], fills=np.arange(n), spread=np.ones(n),
        steps=np.full(n, pnl_paths.shape[1] - 1),
        paths={"pnl": pnl_paths, "inventory": inventory},
    )  # fmt: skip


def test_skip_reason_names_the_market_and_the_cause():
    analytic, lob = AnalyticMarketConfig(), LOBMarketConfig()
    assert skip_reason(make_scenario(), analytic) == ""
    latency = make_scenario("lat", markets=["lob"], latency={"factor": 10.0})
    assert "no meaning in the analytic market" in skip_reason(latency, analytic)
    assert "'lat'" in skip_reason(latency, analytic)
    # the order book's kernel applies the volatility shock; a drift has no meaning there
    assert skip_reason(make_scenario(), lob) == ""
    drift = make_scenario("trend", markets=["analytic"], drift={"rate": -1.0})
    assert "no meaning in the lob market" in skip_reason(drift, lob)
    with pytest.raises(ValueError, match="no meaning in the analytic market"):
        stressed_market(analytic, latency)


def test_stressed_market_sets_the_scenario_and_keeps_the_rest():
    market = AnalyticMarketConfig(sigma=0.7, n_steps=50)
    stressed = stressed_market(market, make_scenario())
    assert isinstance(stressed, AnalyticMarketConfig)
    assert stressed.stress is not None and stressed.stress.name == "spike"
    assert stressed.model_dump(exclude={"stress"}) == market.model_dump(exclude={"stress"})
    assert market.stress is None


@settings(max_examples=30, deadline=None)
@given(
    arrays(np.float64, (40, 6), elements=st.floats(-50, 50)),
    arrays(np.float64, (40, 6), elements=st.floats(-5, 5)),
)
def test_summary_pairs_episodes_and_measures_drawdown_and_inventory(increments, shift):
    base_paths = np.concatenate([np.zeros((40, 1)), np.cumsum(increments, 1)], 1)
    stressed_paths = base_paths + np.concatenate([np.zeros((40, 1)), np.cumsum(shift, 1)], 1)
    inventory = np.round(base_paths / 10.0)
    base = batch_from(base_paths, inventory)
    stressed = batch_from(stressed_paths, -inventory, penalty=1.0)
    s = stress_summary(stressed, base, 0.95)
    diff = ci(s, "reward_vs_baseline")
    expected = stressed_paths[:, -1] - 1.0 - base_paths[:, -1]
    assert diff.mean == pytest.approx(expected.mean(), abs=1e-9)
    assert diff.low <= diff.mean <= diff.high
    assert ci(s, "pnl_vs_baseline").mean == pytest.approx(
        np.cumsum(shift, 1)[:, -1].mean(), abs=1e-9
    )
    # drawdown: from the running peak, which includes the start at 0
    peak = np.maximum.accumulate(stressed_paths, axis=1)
    assert s["max_drawdown"] == pytest.approx((peak - stressed_paths).max(1).mean())
    assert not isinstance(s["max_drawdown"], MeanCI) and s["max_drawdown"] >= 0
    assert s["abs_inventory"] == pytest.approx(np.abs(inventory).mean())
    # ES99 is at least the 99% VaR of the episode PnL
    assert s["es99"] >= -np.quantile(stressed.pnl, 0.01) - 1e-9
    assert "reward_vs_baseline" not in stress_summary(base, None, 0.95)


def test_summary_refuses_batches_it_cannot_pair_or_without_paths():
    paths = np.zeros((5, 3))
    with pytest.raises(ValueError, match="same episodes: 5 episodes against a baseline of 4"):
        stress_summary(batch_from(paths, paths), batch_from(paths[:4], paths[:4]), 0.95)
    bare = batch_from(paths, paths)
    bare.paths = {}
    with pytest.raises(ValueError, match="record_paths=True"):
        stress_summary(bare, None, 0.95)


def test_common_random_numbers_make_the_paired_interval_narrower():
    market = AnalyticMarketConfig(n_steps=50, q_max=20)
    policy_cfg = FixedSpreadConfig(half_spread=1.0, skew=0.05)
    stressed = stressed_market(market, make_scenario())
    batches = []
    for m in (market, stressed):
        env = make_vector_env(m, 300)
        batches.append(
            rollout(env, make_policy(policy_cfg, m, env.action_map), seed=11, record_paths=True)
        )
    s = stress_summary(batches[1], batches[0], 0.95)
    # pairing on the same paths removes the noise both runs share
    assert ci(s, "reward_vs_baseline").half_width < 0.5 * ci(s, "reward").half_width
    # the volatility spike acts on 20% of the steps: the PnL spread grows
    assert batches[1].pnl.std() > batches[0].pnl.std()


def summaries_for(policies=("as", "glft"), scenarios=("flash", "drought")):
    rng = np.random.default_rng(0)
    out: dict = {}
    for name in (BASELINE, *scenarios):
        out[name] = {}
        for label in policies:
            paths = np.cumsum(rng.normal(size=(30, 5)), 1)
            batch = batch_from(paths, paths)
            out[name][label] = (batch, None if name == BASELINE else out[BASELINE][label][0])
    return {
        name: {label: stress_summary(b, ref, 0.9) for label, (b, ref) in by.items()}
        for name, by in out.items()
    }


def test_metric_keys_are_namespaced_by_scenario_and_policy():
    summaries = summaries_for()
    keys = flat_stress_metrics("flash", "glft", summaries["flash"]["glft"])
    assert all(k.startswith("stress/flash/glft/") for k in keys)
    assert "stress/flash/glft/reward_vs_baseline_mean" in keys
    assert "stress/flash/glft/es99" in keys
    assert keys["stress/flash/glft/reward_mean"] == summaries["flash"]["glft"]["reward"].mean
    assert "stress/baseline/as/reward_vs_baseline_mean" not in flat_stress_metrics(
        BASELINE, "as", summaries[BASELINE]["as"]
    )


def test_frame_and_heatmap_show_every_stressed_cell_with_its_change():
    summaries = summaries_for()
    frame = stress_frame(summaries)
    assert list(frame.index.names) == ["scenario", "policy"]
    assert len(frame) == 6
    fig = stress_heatmap(frame, confidence=0.9)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 4  # 2 scenarios x 2 policies, the baseline row left out
    cell = ci(summaries["drought"]["glft"], "reward_vs_baseline")
    assert f"{cell.mean:+.3g}\n± {cell.half_width:.2g}" in texts
    assert [t.get_text() for t in ax.get_yticklabels()] == ["flash", "drought"]
    assert "90% CI" in ax.get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="every scenario was skipped"):
        stress_heatmap(stress_frame({BASELINE: summaries[BASELINE]}))

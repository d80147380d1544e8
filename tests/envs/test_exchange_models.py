"""The exchange layer's registry of named models (docs/exchange.md#adding-a-model): names in
configs, a toy queue model registered in a test, recorded latencies and fee presets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from configs.schema import LOBMarketConfig
from envs.exchange.latency import draw_latencies
from envs.exchange.layout import N_XPARAMS, X_DT
from envs.exchange.models import (
    FEE_PRESETS,
    QUEUE_MODELS,
    NamedModel,
    load_latency_series,
    pack_exchange,
    register,
    unregister,
)
from envs.exchange.queue import QUEUE_PROB, QUEUE_TABLE
from envs.lob.core import LOBMarketCore
from envs.replay.config import ReplayMarketConfig
from envs.replay.core import ReplayMarketCore

LOB = dict(n_steps=20, T=20.0, depth_min=-1.0, depth_max=4.0, q_max=4)
REPLAY = dict(n_steps=40, dt=0.5, depth_min=4.0, depth_max=24.0, q_max=5)


def episode(core: LOBMarketCore | ReplayMarketCore, seed: int = 3) -> list[np.ndarray]:
    """Everything an episode returns, with seeded actions near the touch."""
    core.seed(seed)
    core.reset_state()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(core.config.n_steps):
        obs, reward, done, info = core.step(rng.uniform(-1.0, 0.0, (core.num_envs, 2)))
        out += [*obs.values(), reward, done, info["fills"], info["fees"]]
    return out


def assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def linear_weight(lots: np.ndarray) -> np.ndarray:
    """The toy queue model: f(x) = x, a uniform pick over the queue."""
    return lots


@pytest.fixture
def toy_queue_model() -> Iterator[str]:
    """A queue model registered by name for one test: one rule and one registry line."""
    register(QUEUE_MODELS, NamedModel("toy_linear", QUEUE_TABLE, "f(x) = x", weight=linear_weight))
    yield "toy_linear"
    unregister(QUEUE_MODELS, "toy_linear")


def test_a_registered_toy_queue_model_runs_and_equals_its_builtin_twin(
    toy_queue_model: str,
) -> None:
    # f(x) = x is prob with power 1: the same draws decide the same cancellations
    toy = LOBMarketCore(LOBMarketConfig(**LOB, queue_model=toy_queue_model), 3)
    prob = LOBMarketCore(LOBMarketConfig(**LOB, queue_model="prob", queue_power=1.0), 3)
    assert_same(episode(toy), episode(prob))
    toy_r = ReplayMarketCore(ReplayMarketConfig(**REPLAY, queue_model=toy_queue_model), 2)
    prob_r = ReplayMarketCore(ReplayMarketConfig(**REPLAY, queue_model="prob", queue_power=1.0), 2)
    assert_same(episode(toy_r), episode(prob_r))


def test_unknown_model_names_list_the_registered_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown queue_model 'fifo'.*'prob_log'"):
        LOBMarketConfig(queue_model="fifo")
    with pytest.raises(ValidationError, match=r"registered: \['exact', 'prob', 'prob_log', 'risk"):
        ReplayMarketConfig(queue_model="uniform")  # the simulated book's only
    with pytest.raises(ValidationError, match=r"unknown latency_distribution 'gamma'.*'recorded'"):
        LOBMarketConfig(latency_distribution="gamma")
    with pytest.raises(ValueError, match="already registered"):
        register(QUEUE_MODELS, NamedModel("prob", QUEUE_PROB, "again"))


def test_fee_presets_fill_both_fees_and_an_explicit_fee_overrides() -> None:
    cfg = LOBMarketConfig(fee_schedule="binance_usdm_vip0")
    assert (cfg.maker_fee_bps, cfg.taker_fee_bps) == (2.0, 5.0)
    cfg = LOBMarketConfig(fee_schedule="nasdaq_rebate", taker_fee_bps=0.25)
    assert cfg.maker_fee_bps == FEE_PRESETS["nasdaq_rebate"].maker_bps < 0  # a rebate
    assert cfg.taker_fee_bps == 0.25
    with pytest.raises(ValidationError, match=r"unknown fee_schedule 'nyse'; presets: \["):
        LOBMarketConfig(fee_schedule="nyse")


def series_config(tmp_path: Path, values: list[float], sampling: str) -> LOBMarketConfig:
    path = tmp_path / "latency.csv"
    path.write_text("latency_s\n" + "\n".join(str(v) for v in values) + "\n")
    return LOBMarketConfig(**LOB, latency_distribution="recorded", latency_series=str(path),
                           latency_sampling=sampling)  # fmt: skip


def draws(config: LOBMarketConfig, n: int) -> list[float]:
    p = pack_exchange(np.zeros(N_XPARAMS), config, config.dt, config.n_steps, config.T, 5, 1, 1)
    ist = np.zeros((1, 32), np.int64)
    rng = np.array([[1, 2, 3, 4]], np.uint64)
    return [draw_latencies(ist, rng, p, 0, 0.0, 0.0, 0.0, p[X_DT])[0] for _ in range(n)]


def test_recorded_latencies_in_order_cycle_and_at_random_come_from_the_series(
    tmp_path: Path,
) -> None:
    values = [0.1, 0.25, 2.5]
    assert draws(series_config(tmp_path, values, "in_order"), 7) == values * 2 + [0.1]
    random = draws(series_config(tmp_path, values, "random"), 60)
    assert set(random) == set(values)


def test_a_recorded_constant_series_is_the_constant_model(tmp_path: Path) -> None:
    recorded = LOBMarketCore(series_config(tmp_path, [0.3], "in_order"), 2)
    constant = LOBMarketCore(LOBMarketConfig(**LOB, entry_latency=0.3), 2)
    assert_same(episode(recorded), episode(constant))


def test_bad_latency_series_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("0.1\n-0.2\n")
    with pytest.raises(ValueError, match=r"latency -0.2 at row 1"):
        load_latency_series(bad)
    (tmp_path / "empty.csv").write_text("latency\n")
    with pytest.raises(ValueError, match="empty"):
        load_latency_series(tmp_path / "empty.csv")
    np.save(tmp_path / "ok.npy", np.array([0.0, 0.5]))
    np.testing.assert_array_equal(load_latency_series(tmp_path / "ok.npy"), [0.0, 0.5])
    with pytest.raises(ValidationError, match="latency_series is required"):
        LOBMarketConfig(latency_distribution="recorded")

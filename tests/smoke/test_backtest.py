"""``python -m experiments.backtest``: baselines over a recorded day, into a temporary MLflow store.

The replays run on the tiny AAPL LOBSTER fixture (49 s, 10 levels) of the sample data
(``data/samples/``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from agents.factory import make_policy, model_parameters
from configs.schema import ReplayMarket
from data.samples import SAMPLES_DIR
from envs.replay.config import DEFAULT_SAMPLE
from envs.replay.env import ReplayMarketVectorEnv
from experiments.backtest import main, replay_policy, select_policies, window_starts
from experiments.config import CONFIG_DIR, ConfigError, load_config, make_vector_env

FIXTURE_ARGS = [
    "--config", "configs/replay_goog.yaml", "--no-progress",
    "--set", f"market.path={DEFAULT_SAMPLE}",
    "--set", "market.n_steps=10", "--set", "backtest.windows=4",
    "--set", "backtest.markout_horizons=[1.0, 5.0]",
]  # fmt: skip
"""The GOOG config on the AAPL fixture: 4 windows of 10 one-second decisions (40 of its 49 s)."""

METRICS = (
    *("pnl", "sharpe", "max_drawdown", "es99", "fill_rate", "realized_spread_bps"),
    *("inventory_abs_mean", "markout_1s_bps", "episode_sharpe", "events_per_second"),
)


@pytest.fixture
def fixture_tape() -> Path:
    return SAMPLES_DIR / DEFAULT_SAMPLE


def _markets_yaml(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / "markets" / name).read_text())


@pytest.mark.parametrize(
    ("config", "markets", "queue", "calendar"),
    [
        ("replay_goog.yaml", "goog_2012-06-21.yaml", "exact", "equities"),
        ("replay_nexo.yaml", "nexo_usdt_2024-07-23.yaml", "prob", "crypto"),
    ],
)
def test_replay_configs_take_the_baselines_model_from_the_calibrated_day(
    config, markets, queue, calendar
):
    cfg = load_config(CONFIG_DIR / config)
    market = cfg.market
    assert isinstance(market, ReplayMarket) and market.market_params is not None
    calibrated = _markets_yaml(markets)
    assert market.market_params.fill_curve.A == calibrated["fill_curve"]["A"]
    assert market.market_params.fill_curve.k == calibrated["fill_curve"]["k"]
    assert market.market_params.mid_volatility == calibrated["mid_volatility"]
    assert market.queue_model == queue and cfg.backtest.calendar == calendar
    assert market.taker_fee_bps > 0 and market.maker_fee_bps <= market.taker_fee_bps
    assert Path(market.path or "").is_absolute()  # resolved in the data folder
    assert {"glft", "fixed_spread"} <= {p.kind for p in cfg.policies}


def test_a_missing_data_file_is_exit_2_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "GOOG_2012-06-21_34200000_57600000_message_10.csv"
    code = main([*FIXTURE_ARGS, "--set", f"market.path={missing}", "--policy", "glft",
                 "--set", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])  # fmt: skip
    assert code == 2
    out = " ".join(capsys.readouterr().out.split())
    assert str(missing) in out and "LOBSTER" in out and "MM_DATA_DIR" in out


def test_a_missing_calibration_file_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="market.market_params.*no_such_day.yaml"):
        load_config(CONFIG_DIR / "replay_goog.yaml", ["market.market_params=no_such_day.yaml"])


def test_policy_selection_rejects_unknown_names_and_sac_without_a_run():
    cfg = load_config(CONFIG_DIR / "replay_goog.yaml")
    assert select_policies(cfg, [], None) == [p.label or p.kind for p in cfg.policies]
    assert select_policies(cfg, ["sac", "glft"], "abc") == ["sac", "glft"]
    with pytest.raises(ConfigError, match="--policy nope.*glft"):
        select_policies(cfg, ["nope"], None)
    with pytest.raises(ConfigError, match="--run-id"):
        select_policies(cfg, ["sac"], None)


@pytest.mark.data
def test_too_many_windows_and_a_foreign_calibration_are_refused(fixture_tape):
    cfg = load_config(CONFIG_DIR / "replay_goog.yaml", FIXTURE_ARGS[4::2])
    env = make_vector_env(cfg.market, 1)
    assert isinstance(env, ReplayMarketVectorEnv)
    tape = env.core.tape
    assert window_starts(cfg, tape).tolist() == [0.0, 10.0, 20.0, 30.0]
    with pytest.raises(ConfigError, match="backtest.windows: 5 windows.*at most 4"):
        window_starts(cfg.model_copy(update={"backtest": cfg.backtest.model_copy(
            update={"windows": 5})}), tape)  # fmt: skip
    nexo = load_config(CONFIG_DIR / "replay_nexo.yaml").market
    assert isinstance(nexo, ReplayMarket) and isinstance(cfg.market, ReplayMarket)
    foreign = cfg.market.model_copy(update={"market_params": nexo.market_params})
    with pytest.raises(ValueError, match="tick_size.*0.001.*0.01"):
        model_parameters(foreign)


@pytest.mark.data
def test_the_session_record_lays_the_windows_end_to_end(fixture_tape):
    cfg = load_config(CONFIG_DIR / "replay_goog.yaml", FIXTURE_ARGS[4::2])
    env = make_vector_env(cfg.market, 4)
    assert isinstance(env, ReplayMarketVectorEnv)
    tape = env.core.tape
    starts = window_starts(cfg, tape)
    glft = make_policy(cfg.policies[0], cfg.market, env.action_map)
    r = replay_policy(env, glft, starts, 7, cfg, tape)
    assert r.record.time.tolist() == [float(s) for s in range(41)]  # 4 x 10 s, shared ends once
    assert r.record.pnl[-1] == pytest.approx(r.batch.pnl.sum(), abs=1e-9)
    assert r.record.fills.time.size == int(r.batch.fills.sum()) > 0
    ends = r.record.inventory[10::10]  # each window liquidated at its end
    assert np.all(ends == 0)
    assert r.events == sum(
        np.searchsorted(tape.t, s + 10.0, "right") - np.searchsorted(tape.t, s, "right")
        for s in starts
    )


@pytest.mark.data
def test_backtest_logs_two_baselines_and_repeats_with_the_same_seed(fixture_tape, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [*FIXTURE_ARGS, "--policy", "glft", "--policy", "fixed_spread", "--set",
            f"tracking.uri={uri}", "--set", "tracking.experiment=smoke_backtest"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "glft" in out and "fixed_spread" in out and "Sharpe" in out
    assert main(args) == 0
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("smoke_backtest")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    first, second = (r.data.metrics for r in runs)
    for label in ("glft", "fixed_spread"):
        for name in METRICS:
            assert f"backtest/{label}/{name}" in first
        assert first[f"backtest/{label}/windows"] == 4
        assert first[f"backtest/{label}/fills"] > 0
    assert "backtest/as_finite/pnl" not in first  # only the policies asked for
    timing = ("seconds", "events_per_second")
    same = {k: v for k, v in first.items() if not k.endswith(timing)}
    assert same == pytest.approx(
        {k: v for k, v in second.items() if not k.endswith(timing)}, nan_ok=True
    )
    run = runs[0]
    assert run.data.params["market.kind"] == "replay"
    assert run.data.params["market.market_params.fill_curve.A"]
    assert any(k.startswith("mmrl.data.") for k in run.data.tags)
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert {"reports/backtest.csv", "reports/window_pnl.csv"} <= reports
    assert {"figures/pnl_fan.png", "figures/markouts.png"} <= figures

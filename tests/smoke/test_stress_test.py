"""The stress test command on a tiny budget, into a temporary MLflow store; shipped scenarios."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

from configs.schema import AnalyticMarketConfig
from envs.analytic import stress_schedule
from experiments.config import ConfigError, load_config
from experiments.stress_test import STRESS_DIR, load_scenario, load_scenarios, main

SHIPPED = ("volatility_spike", "liquidity_drought", "latency_shock", "toxic_flow", "flash_crash")


def test_stress_test_logs_a_cell_per_scenario_and_policy(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = main([
        "--config", "configs/demo.yaml", "--no-progress",
        "--set", "evaluation.n_paths=20", "--set", "market.n_steps=40",
        "--set", f"tracking.uri={uri}", "--set", "tracking.experiment=smoke",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "skipping latency_shock" in out and "no meaning in the analytic market" in out
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("smoke")
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mmrl.job"] == "stress"
    assert run.data.tags["mmrl.skipped_scenarios"] == "latency_shock"
    metrics = run.data.metrics
    labels = [p.label or p.kind for p in load_config("configs/demo.yaml").policies]
    ran = [s for s in SHIPPED if s != "latency_shock"]
    for label in labels:
        assert f"stress/baseline/{label}/reward_mean" in metrics
        for name in ran:
            key = f"stress/{name}/{label}/reward_vs_baseline"
            assert metrics[f"{key}_ci_low"] <= metrics[f"{key}_mean"] <= metrics[f"{key}_ci_high"]
            assert f"stress/{name}/{label}/es99" in metrics
        assert not any(k.startswith("stress/latency_shock/") for k in metrics)
    # the drought thins fills for every policy
    for label in labels:
        assert (
            metrics[f"stress/liquidity_drought/{label}/fills"]
            < metrics[f"stress/baseline/{label}/fills"]
        )
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/stress_reward_heatmap.png" in figures
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/stress_results.csv", "reports/skipped.txt"} <= reports
    local = client.download_artifacts(run.info.run_id, "reports/stress_results.csv", str(tmp_path))
    table = pd.read_csv(local, index_col=[0, 1])
    assert set(table.index.get_level_values(0)) == {"baseline", *ran}
    assert len(table) == len(labels) * (1 + len(ran))
    scenarios = {a.path for a in client.list_artifacts(run.info.run_id, "config/stress")}
    assert "config/stress/flash_crash.yaml" in scenarios


def test_bad_scenario_file_fails_before_any_run_is_created(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nmarkets: [analytic]\nwindow: {start: 0.2, end: 0.4}\n"
        "perturbations:\n  volatility: {factor: -2}\n"
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = main(["--config", "configs/demo.yaml", "--scenarios", str(bad),
                 "--set", f"tracking.uri={uri}"])  # fmt: skip
    assert code == 2
    out = capsys.readouterr().out
    assert "bad.yaml" in out and "perturbations.volatility.factor" in out
    assert not (tmp_path / "mlflow.db").exists()


def test_shipped_scenarios_load_and_build_in_the_markets_they_declare():
    scenarios = {s.name: s for s in load_scenarios(None)}
    assert set(scenarios) == set(SHIPPED)
    assert scenarios["latency_shock"].markets == ["lob"]
    for name in ("volatility_spike", "liquidity_drought", "flash_crash"):
        assert set(scenarios[name].markets) == {"analytic", "lob"}
    for cfg in ("configs/demo.yaml", "configs/cj_sac.yaml"):
        market = load_config(cfg).market
        assert isinstance(market, AnalyticMarketConfig)
        for s in scenarios.values():
            if "analytic" in s.markets:
                sched = stress_schedule(s, market)
                assert sched.shape[1] == market.n_steps


def test_scenario_loading_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")
    twice = [str(STRESS_DIR / "flash_crash.yaml")] * 2
    with pytest.raises(ConfigError, match="'flash_crash' is repeated"):
        load_scenarios(twice)
    reserved = tmp_path / "baseline.yaml"
    reserved.write_text(
        "name: baseline\nmarkets: [analytic]\nwindow: {start: 0.2, end: 0.4}\n"
        "perturbations:\n  jump: {size: 1}\n"
    )
    with pytest.raises(ConfigError, match="'baseline' is reserved"):
        load_scenarios([str(reserved)])

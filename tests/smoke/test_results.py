"""``python -m experiments.results``: the results table, with a tiny budget.

The simulated part runs the calibrated GOOG order book; the replay part runs on the tiny AAPL
LOBSTER fixture of the sample data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from data.samples import AAPL_FIXTURE as DEFAULT_SAMPLE
from experiments.config import CONFIG_DIR, load_config
from experiments.results import METRICS, TABLE_COLUMNS, main

SIMULATED = [
    "--set", "evaluation.n_paths=6", "--set", "market.T=40", "--set", "market.n_steps=40",
    "--set", "backtest.markout_horizons=[1.0, 5.0]",
]  # fmt: skip
REPLAY = [
    "--replay-set", f"market.path={DEFAULT_SAMPLE}", "--replay-set", "market.n_steps=10",
    "--replay-set", "backtest.windows=4", "--replay-set", "backtest.markout_horizons=[1.0, 5.0]",
]  # fmt: skip
"""The GOOG replay config on the AAPL fixture: 4 windows of 10 one-second decisions."""


def _run(tmp_path, name: str, extra: list[str]) -> pd.DataFrame:
    out = tmp_path / name
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracking = ["--set", f"tracking.uri={uri}", "--set", "tracking.experiment=smoke_results"]
    code = main([*SIMULATED, *extra, "--out", str(out), *tracking])
    assert code == 0
    assert (out / "results_table.md").is_file()
    return pd.read_csv(out / "results.csv")


def _check_table(frame: pd.DataFrame, markets: set[str]) -> None:
    assert list(frame.columns[: len(TABLE_COLUMNS)]) == list(TABLE_COLUMNS)
    assert set(frame["market"]) == markets
    assert {"avellaneda_stoikov", "glft", "fixed_spread"} <= set(frame["policy"])
    finite = 0
    for k in METRICS:
        ok = frame[f"{k}_mean"].notna()
        finite += int(ok.sum())
        low, mean, high = (frame.loc[ok, f"{k}_{s}"] for s in ("low", "mean", "high"))
        assert np.all(low <= mean) and np.all(mean <= high), k
    assert finite >= len(frame) * 4  # most metrics are defined for every policy


def test_goog_config_is_the_calibrated_book_with_every_baseline():
    cfg = load_config(CONFIG_DIR / "goog_sac.yaml")
    day = load_config(CONFIG_DIR / "replay_goog.yaml").market
    assert cfg.market.kind == "lob" and day.kind == "replay"
    assert cfg.market.market == day.market_params  # the same calibrated day, one source
    assert cfg.market.dt == day.dt == 1.0
    assert {p.kind for p in cfg.policies} == {"avellaneda_stoikov", "glft", "fixed_spread"}
    assert "queue_imbalance" in cfg.features.names


def test_simulated_table_has_intervals_and_repeats_with_the_same_seed(tmp_path, capsys):
    first = _run(tmp_path, "a", ["--no-replay"])
    _check_table(first, {"simulated"})
    again = _run(tmp_path, "b", ["--no-replay"])
    pd.testing.assert_frame_equal(first, again)
    other = _run(tmp_path, "c", ["--no-replay", "--set", "seed=1"])
    assert not np.allclose(first["fill_rate_mean"], other["fill_rate_mean"])
    out = capsys.readouterr().out
    assert "Sharpe (ann.)" in out and "mlflow ui" in out
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("smoke_results")
    assert exp is not None
    run = client.search_runs([exp.experiment_id])[0]
    assert "results/simulated/glft/max_drawdown_mean" in run.data.metrics
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/results_table.md", "reports/results.csv"} <= paths


def test_a_market_other_than_the_order_book_is_exit_2_naming_the_key(tmp_path, capsys):
    code = main(["--config", "configs/demo.yaml", "--no-replay",
                 "--set", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])  # fmt: skip
    assert code == 2
    assert "market.kind" in capsys.readouterr().out
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.data
def test_replay_rows_are_means_across_windows(tmp_path):
    frame = _run(tmp_path, "r", REPLAY)
    _check_table(frame, {"simulated", "replay"})
    replay = frame[frame["market"] == "replay"]
    assert (replay["n_fill_rate"] == 4).all()  # one value per window
    md = (tmp_path / "r" / "results_table.md").read_text()
    assert md.count("| replay |") == len(replay)

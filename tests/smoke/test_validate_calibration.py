"""The calibration validation command: its errors, and a run on the GOOG day into a temporary
MLflow store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from data.samples import SAMPLES_DIR
from experiments.config import ConfigError
from experiments.validate_calibration import load_settings, main

ROOT = Path(__file__).resolve().parents[2]
GOOG = "lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
GOOG_MARKET = "configs/markets/goog_2012-06-21.yaml"


def sample_file(name: str) -> Path:
    """A file of the project's samples (``data/samples``)."""
    return SAMPLES_DIR / name


def test_missing_data_file_exits_2_naming_it(tmp_path, capsys):
    missing = tmp_path / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
    code = main(["--data", str(missing), "--market", GOOG_MARKET,
                 "--set", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])  # fmt: skip
    assert code == 2
    assert str(missing) in capsys.readouterr().out


def test_unknown_data_format_exits_2(tmp_path, capsys):
    odd = tmp_path / "prices.csv"
    odd.write_text("1,2,3\n")
    code = main(["--data", str(odd), "--market", GOOG_MARKET,
                 "--set", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])  # fmt: skip
    assert code == 2
    assert "unknown file name" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, "cannot read"), ("market_rate: [1, 2\n", "not valid YAML"),
     ("tick_size: 0.01\nmarket_rate: -1\n", "market_rate")],
    ids=["missing", "bad_yaml", "bad_field"],
)  # fmt: skip
def test_bad_market_file_exits_2_naming_it(tmp_path, capsys, text, expected):
    market = tmp_path / "market.yaml"
    if text is not None:
        market.write_text(text)
    code = main(["--data", "x_message_1.csv", "--market", str(market)])
    assert code == 2
    out = capsys.readouterr().out
    assert str(market) in out and expected in out
    assert not (tmp_path / "mlflow.db").exists()


def test_unknown_setting_exits_2_naming_the_key(capsys):
    code = main(["--data", "x", "--market", GOOG_MARKET, "--set", "simulation.seconds=5"])
    assert code == 2
    out = capsys.readouterr().out
    assert "simulation.seconds" in out and "unknown key" in out


def test_fidelity_settings_and_flag():
    assert load_settings([]).fidelity.enabled
    assert not load_settings(["fidelity.enabled=false"]).fidelity.enabled
    assert load_settings(["fidelity.window_s=300"]).fidelity.n_steps == 300
    with pytest.raises(ConfigError, match="fidelity.n_episodes"):
        load_settings(["fidelity.n_episodes=1"])


SMALL = ["--set", "simulation.duration_s=1200", "--set", "facts.n_boot=50",
         "--set", "fidelity.window_s=300", "--set", "fidelity.windows=2",
         "--set", "fidelity.n_episodes=4"]  # fmt: skip
"""A small slice: 20 simulated minutes, two replay windows and four episodes of 5 minutes."""


@pytest.mark.data
def test_goog_day_report_is_written_and_logged(tmp_path, capsys):
    data = sample_file(GOOG)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "report"
    code = main(["--data", str(data), "--market", GOOG_MARKET, "--seed", "3", "--out", str(out),
                 "--set", f"tracking.uri={uri}", "--set", "tracking.experiment=smoke",
                 *SMALL])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "not reproduced" in printed and "What the model does not reproduce" in printed
    assert "Strategy fidelity" in printed and "Runtime of the strategy fidelity" in printed
    assert "ratio within [0.8, 1.25]" in printed and "block bootstrap over 300 s" in printed

    facts = pd.read_csv(out / "facts.csv").set_index("fact")
    assert facts.loc["spread_mean", "verdict"] == "not reproduced"
    assert facts.loc["spread_mean", "data"] > 10 * facts.loc["spread_mean", "model"]
    assert facts.loc["spread_mean", "data_low"] < facts.loc["spread_mean", "data"]
    assert facts.loc["sign_acf_lag1", "verdict"] == "not reproduced"
    assert facts.loc["spread_tv", "verdict"] == "reported"
    assert {"impact_1s", "impact_60s", "interarrival_cv", "volatility_300s"} <= set(facts.index)
    verdicts = pd.read_csv(out / "strategy_fidelity_verdicts.csv").set_index("policy")
    assert set(verdicts.index) == {"glft", "avellaneda_stoikov", "fixed_spread"}
    assert verdicts["verdict"].isin(["pass", "fail", "not measured"]).all()
    episodes = pd.read_csv(out / "strategy_fidelity_per_episode.csv")
    assert episodes.groupby("market").size().to_dict() == {"replay": 3 * 2, "simulated": 3 * 4}

    table = pd.read_csv(out / "table.csv").set_index("fact")
    # GOOG's wide spread and its trade-sign memory are beyond a one-tick CST market
    assert table.loc["spread", "verdict"] == "not reproduced"
    assert table.loc["spread", "data"] > 10 * table.loc["spread", "model"]
    assert table.loc["sign_acf_lag1", "verdict"] == "not reproduced"
    assert table.loc["sign_acf_lag1", "data"] > 0.3
    summary = (out / "summary.md").read_text()
    assert "cannot hold a wide spread" in summary and "no memory" in summary

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("smoke")
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["validation.seed"] == "3"
    assert run.data.params["validation.duration_s"] == "1200.0"
    assert run.data.params["fidelity.window_s"] == "300.0"
    metrics = run.data.metrics
    assert metrics["calibration/spread/reproduced"] == 0.0
    assert metrics["calibration/spread/data"] == pytest.approx(table.loc["spread", "data"])
    assert metrics["calibration/facts/spread_mean/reproduced"] == 0.0
    assert "calibration/facts/impact_10s/data_low" in metrics
    assert "fidelity/replay/glft/pnl_per_hour_mean" in metrics
    assert "fidelity/simulated/fixed_spread/fill_rate_low" in metrics
    assert metrics["fidelity/glft/pass"] in (0.0, 1.0)
    assert metrics["fidelity/seconds"] > 0
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "calibration_report")}
    expected = ["table.csv", "table.html", "summary.md", "index.html", "spread_distribution.png",
                "trade_sign_acf.png", "volatility_signature.png", "facts.csv", "price_impact.png",
                "interarrival_times.png", "strategy_fidelity_table.csv",
                "strategy_fidelity_verdicts.csv"]  # fmt: skip
    for name in expected:
        assert f"calibration_report/{name}" in logged

"""The calibration validation command: its errors, and a run on the GOOG day into a temporary
MLflow store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from data.samples import SAMPLES_DIR
from experiments.validate_calibration import main

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


@pytest.mark.data
def test_goog_day_report_is_written_and_logged(tmp_path, capsys):
    data = sample_file(GOOG)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "report"
    code = main(["--data", str(data), "--market", GOOG_MARKET, "--seed", "3", "--out", str(out),
                 "--set", f"tracking.uri={uri}", "--set", "tracking.experiment=smoke",
                 "--set", "simulation.duration_s=3600"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "not reproduced" in printed and "What the model does not reproduce" in printed

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
    assert run.data.params["validation.duration_s"] == "3600.0"
    metrics = run.data.metrics
    assert metrics["calibration/spread/reproduced"] == 0.0
    assert metrics["calibration/spread/data"] == pytest.approx(table.loc["spread", "data"])
    assert "calibration/volatility_300s/ci_low" in metrics
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "calibration_report")}
    expected = ["table.csv", "table.html", "summary.md", "index.html", "spread_distribution.png",
                "trade_sign_acf.png", "volatility_signature.png"]  # fmt: skip
    for name in expected:
        assert f"calibration_report/{name}" in logged

"""The demo's main job, with a tiny budget, into a temporary MLflow store."""

from __future__ import annotations

import re

from mlflow import MlflowClient

from experiments.evaluate import main


def test_evaluate_logs_metrics_config_and_figures(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = main([
        "--config", "configs/demo.yaml", "--no-progress",
        "--set", "evaluation.n_paths=20", "--set", "market.n_steps=50",
        "--set", f"tracking.uri={uri}", "--set", "tracking.experiment=smoke",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "cartea_jaimungal" in out and "mlflow ui" in out
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("smoke")
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["market.n_steps"] == "50"
    assert run.data.tags["mmrl.seed"] == "0"
    metrics = run.data.metrics
    for label in ("cartea_jaimungal", "glft", "glft_asymptotic", "fixed_spread"):
        assert f"eval/{label}/reward_mean" in metrics
        assert metrics[f"eval/{label}/reward_ci_low"] <= metrics[f"eval/{label}/reward_mean"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/pnl_distributions.png" in artifacts
    assert "figures/quotes_vs_inventory.png" in artifacts
    assert client.list_artifacts(run.info.run_id, "config")[0].path == "config/resolved.yaml"

    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    labels = ("cartea_jaimungal", "glft", "glft_asymptotic", "as_finite", "as_infinite",
              "symmetric", "fixed_spread")  # fmt: skip
    sheets = {f"reports/{label}_tear_sheet.html" for label in labels}
    assert sheets <= reports
    figures = ("pnl_fan", "markouts", "inventory_distribution", "quotes_vs_inventory")
    assert any(r.endswith("_drawdown.png") for r in reports)
    for name in ("index.html", "inventory_pnl_risk.csv",
                 *(f"{f}.png" for f in figures)):  # fmt: skip
        assert f"reports/{name}" in reports
    assert "reports/fill_rate_vs_queue.png" not in reports  # no queue in the analytic market
    page = client.download_artifacts(run.info.run_id, "reports/index.html", str(tmp_path))
    links = set(re.findall(r'href="([^"]+)"', open(page, encoding="utf-8").read()))
    assert links == {s.removeprefix("reports/") for s in sheets}
    sheet = client.download_artifacts(run.info.run_id, sheets.pop(), str(tmp_path))
    assert "Sharpe" in open(sheet, encoding="utf-8").read()


def test_no_reports_flag_skips_the_report_folder(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = main([
        "--config", "configs/demo.yaml", "--no-progress", "--no-reports",
        "--set", "evaluation.n_paths=8", "--set", "market.n_steps=20",
        "--set", f"tracking.uri={uri}", "--set", "tracking.experiment=smoke",
    ])  # fmt: skip
    assert code == 0
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("smoke")
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id])
    assert {a.path for a in client.list_artifacts(run.info.run_id, "reports")} == {
        "reports/results.csv"
    }


def test_bad_config_fails_before_any_run_is_created(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = main(["--config", "configs/demo.yaml", "--set", "market.sigma=-1",
                 "--set", f"tracking.uri={uri}"])  # fmt: skip
    assert code == 2
    assert "market.sigma" in capsys.readouterr().out
    assert not (tmp_path / "mlflow.db").exists()


def test_unreachable_tracking_server_fails_before_work(capsys):
    code = main(["--config", "configs/demo.yaml", "--set", "tracking.uri=http://127.0.0.1:9"])
    assert code == 2
    assert "http://127.0.0.1:9" in capsys.readouterr().out

"""The order-book experiment's evaluation, with a tiny budget, into a temporary MLflow store."""

from __future__ import annotations

from mlflow import MlflowClient

from experiments.config import CONFIG_DIR, load_config
from experiments.evaluate import main


def test_lob_config_validates_with_the_order_book_features_and_every_baseline():
    cfg = load_config(CONFIG_DIR / "lob_sac.yaml")
    assert cfg.market.kind == "lob"
    assert 100 <= cfg.market.n_steps <= 1000  # a few hundred decisions per episode
    assert {"queue_imbalance", "book_depth", "microprice_offset"} <= set(cfg.features.names)
    kinds = {p.kind for p in cfg.policies}
    assert {"cartea_jaimungal", "glft", "avellaneda_stoikov", "fixed_spread"} <= kinds


def test_evaluate_runs_the_baselines_in_the_order_book(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = main([
        "--config", "configs/lob_sac.yaml", "--no-progress", "--no-reports",
        "--set", "evaluation.n_paths=16", "--set", "market.n_steps=30", "--set", "market.T=30",
        "--set", f"tracking.uri={uri}", "--set", "tracking.experiment=smoke_lob",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "glft" in out and "J/h(0,0)" not in out  # no known optimum in the order book
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("smoke_lob")
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["market.kind"] == "lob"
    metrics = run.data.metrics
    for label in ("cartea_jaimungal", "glft", "as_finite", "fixed_spread"):
        assert metrics[f"eval/{label}/reward_ci_low"] <= metrics[f"eval/{label}/reward_mean"]
        assert metrics[f"eval/{label}/fills"] > 0
        assert metrics[f"eval/{label}/spread"] >= 1.0  # ticks: never inside one tick
    assert "eval/glft/optimality_ratio" not in metrics
    assert "eval/glft/reward_vs_reference_mean" in metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert {"figures/pnl_distributions.png", "figures/quotes_vs_inventory.png"} <= artifacts

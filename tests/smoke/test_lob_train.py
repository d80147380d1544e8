"""SAC training in the order book with a tiny budget, then its evaluation with the baselines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # two subprocesses importing TensorFlow, a SavedModel export

TINY = [
    "market.T=30",
    "market.n_steps=30",
    "training.num_envs=4",
    "training.total_steps=480",
    "training.warmup_steps=120",
    "training.checkpoint_every=240",
    "training.eval_every=240",
    "training.eval_paths=4",
    "agent.hidden_sizes=[16,16]",
    "agent.batch_size=32",
    "agent.jit_compile=false",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lob_train")
    args = [sys.executable, "-m", "experiments.train", "--config", "configs/lob_sac.yaml"]
    for s in [*TINY, f"tracking.uri=sqlite:///{tmp}/mlflow.db",
              f"training.checkpoint_dir={tmp}/ckpt"]:  # fmt: skip
        args += ["--set", s]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("lob_sac")
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id], "tags.`mmrl.job` = 'train'")
    return tmp, run.info.run_id


def test_training_in_the_order_book_exports_a_policy_of_the_book_features(trained):
    from experiments.sac_model import SavedPolicy

    tmp, run_id = trained
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    r = client.get_run(run_id)
    assert r.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "train/eval_reward_mean")]
    assert steps == [240, 480]
    assert "train/optimality_ratio" not in r.data.metrics  # no known optimum here
    model = Path(client.download_artifacts(run_id, "model/sac_policy", str(tmp / "dl")))
    policy = SavedPolicy(model)
    assert {"book", "orders", "inventory"} <= set(policy.keys)
    from configs.schema import LOBMarketConfig
    from envs.lob.env import LOBMarketVectorEnv

    env = LOBMarketVectorEnv(num_envs=3, config=LOBMarketConfig(T=30.0, n_steps=30))
    obs, _ = env.reset(seed=1)
    action = policy.act(obs)
    assert action.shape == (3, 2) and np.all(np.abs(action) <= 1.0)


def test_evaluate_compares_the_trained_policy_with_the_baselines(trained):
    from experiments.evaluate import main

    tmp, run_id = trained
    uri = f"sqlite:///{tmp}/mlflow.db"
    code = main(["--config", "configs/lob_sac.yaml", "--run-id", run_id, "--no-progress",
                 "--set", "market.T=30", "--set", "market.n_steps=30",
                 "--set", f"tracking.uri={uri}", "--set", "evaluation.n_paths=16"])  # fmt: skip
    assert code == 0
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("lob_sac")
    assert exp is not None
    (ev,) = client.search_runs([exp.experiment_id], "tags.`mmrl.job` = 'evaluate'")
    m = ev.data.metrics
    assert "eval/sac/reward_mean" in m and "eval/sac/reward_vs_reference_mean" in m
    figures = {a.path for a in client.list_artifacts(ev.info.run_id, "figures")}
    assert {"figures/learning_curve.png", "figures/quotes_vs_inventory.png"} <= figures

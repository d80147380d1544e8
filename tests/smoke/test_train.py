"""Training with a tiny budget: smoke run, SIGKILL and resume, NaN stop, evaluation of the run."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]

TINY = [
    "training.num_envs=4",
    "training.total_steps=3200",
    "training.warmup_steps=400",
    "training.checkpoint_every=800",
    "training.eval_every=1600",
    "training.eval_paths=20",
    "training.replay_capacity=4000",  # above the budget: no overwrite, small checkpoints
    "agent.hidden_sizes=[16,16]",
    "agent.batch_size=64",
    "agent.jit_compile=false",
    "evaluation.n_paths=200",
]


def command(tmp_path: Path, *extra: str, sets: list[str] = TINY) -> list[str]:
    args = [sys.executable, "-m", "experiments.train", "--config", "configs/cj_sac.yaml"]
    for s in [*sets, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
              f"training.checkpoint_dir={tmp_path}/ckpt"]:  # fmt: skip
        args += ["--set", s]
    return [*args, *extra]


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def only_run(tmp_path: Path) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("cj_sac")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], "tags.`mmrl.job` = 'train'")
    assert len(runs) == 1
    return client, runs[0].info.run_id


def probe_actions(model_dir: Path) -> np.ndarray:
    from experiments.sac_model import SavedPolicy

    q = np.arange(-5, 6, dtype=np.float32).reshape(-1, 1)
    obs = {"inventory": q, "time_left": np.full_like(q, 0.5), "mid": np.full_like(q, 100.0),
           "cash": np.zeros_like(q)}  # fmt: skip
    return SavedPolicy(model_dir).act(obs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One uninterrupted tiny training run, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("train")
    result = run(command(tmp))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp


def test_training_logs_metrics_checkpoints_and_the_saved_model(trained):
    client, run_id = only_run(trained)
    r = client.get_run(run_id)
    assert r.info.status == "FINISHED"
    for key in ("train/critic_loss", "train/actor_loss", "train/alpha", "train/entropy",
                "train/episode_reward", "train/updates_per_s", "train/env_steps_per_s",
                "train/optimality_ratio"):  # fmt: skip
        assert key in r.data.metrics, key
    steps = [m.step for m in client.get_metric_history(run_id, "train/eval_reward_mean")]
    assert steps == [1600, 3200]
    artifacts = {a.path for a in client.list_artifacts(run_id, "model/sac_policy")}
    assert "model/sac_policy/saved_model.pb" in artifacts
    assert client.list_artifacts(run_id, "checkpoints")
    model = Path(client.download_artifacts(run_id, "model/sac_policy", str(trained / "dl")))
    actions = probe_actions(model)
    assert actions.shape == (11, 2) and np.all(np.abs(actions) <= 1.0)


def _kill_after_checkpoint(tmp_path: Path, sig: signal.Signals, at_least: int) -> str:
    """Start a training run, send ``sig`` once it has a checkpoint at ``at_least`` transitions
    or more, and return its run id."""
    proc = subprocess.Popen(command(tmp_path), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    ckpt_root = tmp_path / "ckpt"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            states = list(ckpt_root.glob("*/state-*.pkl"))
            if any(int(p.stem.split("-")[1]) >= at_least for p in states):
                break
            assert proc.poll() is None, "training ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint within 240 s")
        os.killpg(proc.pid, sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (run_dir,) = list(ckpt_root.iterdir())
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # stopped at the end of its step, with a checkpoint, and said how to resume
        assert proc.returncode == 128 + sig, stderr[-2000:]
        assert f"{sig.name}: stopped at" in stderr and f"--resume {run_dir.name}" in stderr
    return run_dir.name


def _state(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)["loop"]


@pytest.mark.parametrize(
    ("sig", "elsewhere"),
    [
        (signal.SIGKILL, False),
        # Ctrl-C takes the same path as SIGTERM (StopSignals): in the slow suite only
        pytest.param(signal.SIGINT, False, marks=pytest.mark.slow),
        (signal.SIGTERM, True),
    ],
    ids=["sigkill", "sigint", "sigterm-resumed-on-another-machine"],
)
def test_an_interrupted_run_resumes_to_the_uninterrupted_policy_with_no_metric_twice(
    trained, tmp_path, sig, elsewhere
):
    at_least = int(np.random.default_rng(sig.value).choice([800, 1600]))  # a random point
    run_id = _kill_after_checkpoint(tmp_path, sig, at_least)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run_dir = tmp_path / "ckpt" / run_id
    killed_at = max(int(p.stem.split("-")[1]) for p in run_dir.glob("state-*.pkl"))
    assert at_least <= killed_at < 3200
    elapsed_killed = _state(run_dir / f"state-{killed_at}.pkl").elapsed_s
    if sig != signal.SIGKILL:  # KILLED, and its last checkpoint is in the store
        assert client.get_run(run_id).info.status == "KILLED"
        meta = client.download_artifacts(run_id, "checkpoints/latest/checkpoint.json",
                                         str(tmp_path / "meta"))  # fmt: skip
        assert json.loads(Path(meta).read_text())["transitions"] == killed_at
    if elsewhere:  # a machine without the local checkpoints: the store alone resumes it
        shutil.rmtree(run_dir)

    resumed = run(command(tmp_path, "--resume", run_id))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "from its checkpoint at" in resumed.stderr
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in ("train/eval_reward_mean", "train/episode_reward", "train/optimal_value"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert len(steps) == len(set(steps)), f"{key} logged twice at a step: {sorted(steps)}"
    assert max(m.step for m in client.get_metric_history(run_id, "train/eval_reward_mean")) == 3200
    final = max(run_dir.glob("state-*.pkl"), key=lambda p: int(p.stem.split("-")[1]))
    assert _state(final).elapsed_s > elapsed_killed  # max_minutes counts every session

    # Everything the future depends on was in the checkpoint: same policy as without the kill.
    _, reference_id = only_run(trained)
    ref = Path(MlflowClient(tracking_uri=f"sqlite:///{trained}/mlflow.db").download_artifacts(
        reference_id, "model/sac_policy", str(tmp_path / "ref")))  # fmt: skip
    new = Path(client.download_artifacts(run_id, "model/sac_policy", str(tmp_path / "new")))
    np.testing.assert_array_equal(probe_actions(new), probe_actions(ref))


def test_checkpoints_come_on_a_time_interval_too(tmp_path):
    sets = [*TINY, "training.checkpoint_every=1000000", "training.checkpoint_minutes=0.005",
            "training.total_steps=800", "training.eval_every=800"]  # fmt: skip
    result = run(command(tmp_path, sets=sets))
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = list((tmp_path / "ckpt").iterdir())
    tf_checkpoints = list((run_dir / "tf").glob("ckpt-*.index"))
    assert len(tf_checkpoints) >= 2  # every 0.3 s, not only the final one
    assert f"--resume {run_dir.name}" in result.stderr.split("SAC")[0]  # said at the start


def test_a_failed_resume_names_the_problem_and_leaves_the_run_untouched(trained, tmp_path):
    from experiments.train import run_training

    client, run_id = only_run(trained)
    uri = f"sqlite:///{trained}/mlflow.db"
    before = client.get_run(run_id)
    sets = [*TINY, f"tracking.uri={uri}", f"training.checkpoint_dir={trained}/ckpt"]
    code, _ = run_training("configs/cj_sac.yaml", [*sets, "agent.hidden_sizes=[32,32]"], run_id)
    assert code == 2
    code, _ = run_training("configs/cj_sac.yaml", sets, "0123456789abcdef0123456789abcdef")
    assert code == 2
    after = client.get_run(run_id)
    assert (after.info.status, after.info.end_time) == (before.info.status, before.info.end_time)
    assert after.data.tags == before.data.tags


def test_resume_names_each_config_difference_and_allows_a_longer_budget(monkeypatch):
    import experiments.train as train_module
    from experiments.config import ConfigError, load_config
    from tracking import RunRecord, flatten_params

    logged = flatten_params(load_config("configs/cj_sac.yaml").model_dump(mode="json"))
    record = RunRecord(run_id="abc", experiment_id="1", run_name="train-cj_sac", status="KILLED",
                       artifact_uri="", params=logged, metrics={},
                       tags={"mmrl.job": "train"})  # fmt: skip
    monkeypatch.setattr(train_module, "load_run", lambda run_id, uri: record)
    changed = load_config("configs/cj_sac.yaml", ["agent.hidden_sizes=[32,32]", "seed=3"])
    named = (r"3 key\(s\): agent\.hidden_sizes\.0: run '64', config '32'; "
             r"agent\.hidden_sizes\.1: .*; seed: run '0', config '3'$")
    with pytest.raises(ConfigError, match=named):
        train_module.resume_preflight(changed, "abc")
    longer = load_config("configs/cj_sac.yaml", ["training.total_steps=900000",
                                                 "training.max_minutes=30"])  # fmt: skip
    monkeypatch.setattr(train_module, "checkpoint_root", lambda cfg: Path("/nonexistent"))
    monkeypatch.setattr(train_module, "download_artifacts", lambda *a: (_ for _ in ()).throw(
        train_module.TrackingError("no artifact")))  # fmt: skip
    with pytest.raises(ConfigError, match="no checkpoint in"):  # past the config check
        train_module.resume_preflight(longer, "abc")


def test_a_nan_loss_stops_training_with_a_clear_message_and_keeps_the_checkpoint(tmp_path):
    sets = [*TINY, "agent.reward_scale=1e38"]  # rewards overflow float32: the loss is inf
    result = run(command(tmp_path, sets=sets))
    assert result.returncode == 3
    assert "NaN or inf" in result.stderr and "last good checkpoint" in result.stderr


def test_evaluate_scores_the_trained_policy_against_the_optimum(trained):
    from experiments.evaluate import main

    _, run_id = only_run(trained)
    uri = f"sqlite:///{trained}/mlflow.db"
    code = main(["--config", "configs/cj_sac.yaml", "--run-id", run_id, "--no-progress",
                 "--set", f"tracking.uri={uri}", "--set", "evaluation.n_paths=200"])  # fmt: skip
    assert code == 0
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("cj_sac")
    assert exp is not None
    (ev,) = client.search_runs([exp.experiment_id], "tags.`mmrl.job` = 'evaluate'")
    m = ev.data.metrics
    assert "eval/sac/optimality_ratio" in m and "eval/sac/reward_vs_reference_mean" in m
    assert m["eval/cartea_jaimungal/optimality_ratio"] == pytest.approx(1.0, abs=0.05)
    figures = {a.path for a in client.list_artifacts(ev.info.run_id, "figures")}
    assert {"figures/learning_curve.png", "figures/quotes_vs_inventory.png"} <= figures


def test_exploring_starts_apply_to_the_training_market_only():
    from configs.schema import AnalyticMarketConfig
    from experiments.config import load_config, market_of
    from experiments.train import training_market

    cfg = load_config(
        "configs/cj_sac.yaml",
        ["training.explore_inventory=4", "training.explore_time=true"],
    )
    trained_in = training_market(cfg)
    assert isinstance(trained_in, AnalyticMarketConfig)
    assert (trained_in.q0_range, trained_in.random_start) == (4, True)
    assert (market_of(cfg).q0_range, market_of(cfg).random_start) == (0, False)
    assert trained_in.model_copy(update={"q0_range": 0, "random_start": False}) == market_of(cfg)


def test_exploring_starts_on_a_market_without_them_fail_before_a_run_starts(tmp_path):
    from experiments.train import run_training

    code, run_id = run_training(
        "configs/lob_sac.yaml",
        ["training.explore_inventory=3", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"],
    )
    assert (code, run_id) == (2, None)
    assert not (tmp_path / "mlflow.db").exists()


def test_a_store_that_stops_answering_ends_training_with_a_local_checkpoint(
    tmp_path, monkeypatch, capsys
):
    import tracking.store as store
    from experiments.train import run_training

    logged = store.Tracker.log_metrics
    calls = 0

    def dies_after_a_few(self, metrics, step=0):  # the server goes down mid-run
        nonlocal calls
        calls += 1
        if calls > 5:
            raise store.TrackingUnavailableError(
                "the store stopped answering", tracking_uri="http://127.0.0.1:1",
                action="log_metrics", run_id=self.run_id,
            )  # fmt: skip
        return logged(self, metrics, step)

    monkeypatch.setattr(store.Tracker, "log_metrics", dies_after_a_few)
    sets = [*TINY, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            f"training.checkpoint_dir={tmp_path}/ckpt"]  # fmt: skip
    code, run_id = run_training("configs/cj_sac.yaml", sets)
    assert code == 4 and run_id is not None
    err = " ".join(capsys.readouterr().err.split())
    assert "the store stopped answering" in err and f"--resume {run_id}" in err
    states = [int(p.stem.split("-")[1]) for p in (tmp_path / "ckpt" / run_id).glob("state-*.pkl")]
    assert states and 0 < max(states) < 3200  # checkpointed where it stopped, not at the end


def test_evaluate_refuses_a_policy_trained_in_another_market(trained, capsys):
    from experiments.evaluate import main

    _, run_id = only_run(trained)
    args = ["--config", "configs/demo.yaml", "--run-id", run_id, "--no-reports", "--no-progress",
            "--set", f"tracking.uri=sqlite:///{trained}/mlflow.db"]  # fmt: skip
    assert main(args) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "trained in another market" in out and "market.sigma: run '0.1', config '2.0'" in out

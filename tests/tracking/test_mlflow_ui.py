"""The MLflow UI serves a demo's results over HTTP.

The demo (``experiments.demo``) runs end to end on tiny copies of its configs: the baselines'
evaluation, a short SAC training and the SAC's evaluation, into a temporary store laid out
like the project's (``mlflow.db`` beside ``mlartifacts/``). The command the demo prints last
is then started as it is (only on a free loopback port, with one worker), and the REST API
must serve the runs, their metrics and their artifacts exactly as the store holds them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from experiments import demo, evaluate
from experiments.config import load_config, to_yaml
from tracking import download_artifacts, load_run, metric_history, ui_command

ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 90.0
REQUEST_TIMEOUT_S = 30.0

# Budgets small enough for the default test run (the printed command is what is tested).
TINY_BASELINES = ["evaluation.n_paths=20", "market.n_steps=50"]
TINY_TRAINING = [
    "training.num_envs=4",
    "training.total_steps=1600",
    "training.warmup_steps=400",
    "training.checkpoint_every=800",
    "training.eval_every=800",
    "training.eval_paths=20",
    "agent.hidden_sizes=[16,16]",
    "agent.batch_size=64",
    "agent.jit_compile=false",
    "evaluation.n_paths=200",
]

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@dataclass(frozen=True)
class DemoResult:
    """A finished tiny demo: its store, its printed lines and the runs it reported."""

    root: Path
    uri: str
    lines: list[str]
    eval_runs: dict[str, str]  # experiment name -> evaluation run id, as printed


def _tiny_config(source: str, overrides: list[str], target: Path) -> Path:
    target.write_text(to_yaml(load_config(ROOT / source, overrides)))
    return target


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """``experiments.demo`` on tiny configs, into ``<tmp>/mlflow.db`` + ``<tmp>/mlartifacts``."""
    root = tmp_path_factory.mktemp("project")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    store = [f"tracking.uri={uri}"]
    baselines = _tiny_config(
        evaluate.DEFAULT_CONFIG, [*store, *TINY_BASELINES], root / "demo_tiny.yaml"
    )
    sac = _tiny_config(
        demo.SAC_CONFIG,
        [*store, *TINY_TRAINING, f"training.checkpoint_dir={root / 'checkpoints'}"],
        root / "cj_sac_tiny.yaml",
    )
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "DEFAULT_CONFIG", str(baselines))
        patch.setattr(demo, "SAC_CONFIG", str(sac))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = demo.main([])
    text = out.getvalue()
    assert code == 0, f"{text[-2000:]}\n{err.getvalue()[-2000:]}"
    printed = re.findall(r"Run ([0-9a-f]{32}) in experiment '([^']+)'", text)
    runs = {experiment: run_id for run_id, experiment in printed}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return DemoResult(root=root, uri=uri, lines=lines, eval_runs=runs)


# --------------------------------------------------------------------------------------------
# The server the printed command starts
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it after 15 s or if workers linger."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        except ProcessLookupError:
            return
    with contextlib.suppress(ProcessLookupError):  # stragglers (uvicorn workers)
        os.killpg(process.pid, signal.SIGKILL)


def _with_port(command: list[str], port: int) -> list[str]:
    """The printed command on another port, with one worker (the machine's cores are shared)."""
    i = command.index("--port")
    return [*command[: i + 1], str(port), *command[i + 2 :], "--workers", "1"]


@pytest.fixture(scope="module")
def ui_server(demo_run: DemoResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo's last printed command, run on a free port; yields the server's base URL."""
    command = shlex.split(demo_run.lines[-1])
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # the command binds loopback by default
    cwd = tmp_path_factory.mktemp("ui_cwd")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log_path = cwd / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _with_port(command, port), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,  # its own process group, so stopping it stops its workers
        )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _health_ok(url):
            if process.poll() is not None:
                pytest.fail(f"the MLflow UI exited early:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the MLflow UI was not healthy in {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.25)
        yield url
    finally:
        _stop(process)


def _get(url: str, route: str, query: dict[str, str] | None = None) -> bytes:
    full = f"{url}{route}?{urllib.parse.urlencode(query)}" if query else f"{url}{route}"
    with urllib.request.urlopen(full, timeout=REQUEST_TIMEOUT_S) as response:
        assert response.status == 200, full
        return bytes(response.read())


def _api(
    url: str, endpoint: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None
) -> Any:
    """POST ``body`` (or GET with ``query``) to ``/api/2.0/mlflow/<endpoint>``; the decoded JSON."""
    if body is None:
        return json.loads(_get(url, f"/api/2.0/mlflow/{endpoint}", query))
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        return json.loads(response.read())


def _artifact(url: str, run_id: str, path: str) -> bytes:
    """One artifact file's bytes, as the UI fetches it (``/get-artifact``)."""
    return _get(url, "/get-artifact", {"path": path, "run_uuid": run_id})


def _served_runs(url: str) -> dict[str, dict[str, Any]]:
    """Every run the server lists, by run id (REST ``runs/search`` over all experiments)."""
    experiments = _api(url, "experiments/search", {"max_results": 100})["experiments"]
    ids = [e["experiment_id"] for e in experiments]
    found = _api(url, "runs/search", {"experiment_ids": ids, "max_results": 100})
    return {run["info"]["run_id"]: run for run in found.get("runs", [])}


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _listed(url: str, run_id: str, path: str) -> dict[str, dict[str, Any]]:
    files = _api(url, "artifacts/list", query={"run_id": run_id, "path": path}).get("files", [])
    return {f["path"]: f for f in files}


def _train_run_id(url: str, demo_run: DemoResult) -> str:
    evaluated = _served_runs(url)[demo_run.eval_runs["cj_sac"]]
    return _tags(evaluated)["mmrl.trained_run"]


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_the_demo_ends_with_the_command_that_opens_the_ui_on_its_store(
    demo_run: DemoResult,
) -> None:
    assert demo_run.lines[-1] == ui_command(demo_run.uri)
    assert "MLflow UI" in demo_run.lines[-2]
    assert set(demo_run.eval_runs) == {"demo", "cj_sac"}
    # The store is laid out like the project's: the database beside the artifact root.
    assert (demo_run.root / "mlflow.db").is_file()
    assert {p.name for p in (demo_run.root / "mlartifacts").iterdir()} == {"demo", "cj_sac"}


def test_the_ui_serves_every_run_of_the_store(ui_server: str, demo_run: DemoResult) -> None:
    html = _get(ui_server, "/").decode()
    assert "<html" in html.lower() and "mlflow" in html.lower()
    served = _served_runs(ui_server)
    train_id = _train_run_id(ui_server, demo_run)
    assert set(served) == {*demo_run.eval_runs.values(), train_id}
    jobs = {run_id: _tags(run)["mmrl.job"] for run_id, run in served.items()}
    assert sorted(jobs.values()) == ["evaluate", "evaluate", "train"]
    for run_id, run in served.items():
        stored = load_run(run_id, tracking_uri=demo_run.uri)
        assert run["info"]["status"] == stored.status == "FINISHED"
        params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
        assert params == stored.params


def test_the_ui_serves_the_namespaced_metrics_and_their_history(
    ui_server: str, demo_run: DemoResult
) -> None:
    served = _served_runs(ui_server)
    train_id = _train_run_id(ui_server, demo_run)
    for run_id, run in served.items():
        # JSON has no NaN or inf: the server sends them as the strings "NaN", "Infinity".
        metrics = {m["key"]: float(m["value"]) for m in run["data"]["metrics"]}
        stored = load_run(run_id, tracking_uri=demo_run.uri).metrics
        assert metrics == pytest.approx(stored, nan_ok=True)
    train_keys = {m["key"] for m in served[train_id]["data"]["metrics"]}
    assert {"train/critic_loss", "train/actor_loss", "train/optimality_ratio"} <= train_keys
    assert all(key.startswith("train/") for key in train_keys)
    sac_eval = {m["key"] for m in served[demo_run.eval_runs["cj_sac"]]["data"]["metrics"]}
    for policy in ("sac", "cartea_jaimungal", "fixed_spread"):
        assert f"eval/{policy}/optimality_ratio" in sac_eval
    baselines = {m["key"] for m in served[demo_run.eval_runs["demo"]]["data"]["metrics"]}
    for policy in ("cartea_jaimungal", "glft", "glft_asymptotic", "as_finite", "fixed_spread"):
        assert f"eval/{policy}/reward_mean" in baselines

    key = "train/eval_reward_mean"
    history = _api(ui_server, "metrics/get-history", query={"run_id": train_id, "metric_key": key})
    points = sorted((int(m["step"]), float(m["value"])) for m in history["metrics"])
    assert [step for step, _ in points] == [800, 1600]
    assert points == metric_history(train_id, key, demo_run.uri)


def test_the_ui_serves_the_reports_figures_and_saved_model(
    ui_server: str, demo_run: DemoResult, tmp_path: Path
) -> None:
    sac_eval = demo_run.eval_runs["cj_sac"]
    train_id = _train_run_id(ui_server, demo_run)

    assert set(_listed(ui_server, sac_eval, "")) == {"config", "figures", "reports"}
    figures = _listed(ui_server, sac_eval, "figures")
    names = ("pnl_distributions", "inventory_risk", "quotes_vs_inventory", "learning_curve")
    assert {f"figures/{name}.png" for name in names} <= set(figures)
    png = _artifact(ui_server, sac_eval, "figures/learning_curve.png")
    assert png.startswith(b"\x89PNG") and len(png) == int(
        figures["figures/learning_curve.png"]["file_size"]
    )

    csv = _artifact(ui_server, sac_eval, "reports/results.csv")
    local = download_artifacts(sac_eval, "reports/results.csv", tmp_path, demo_run.uri)
    assert csv == local.read_bytes()
    table = pd.read_csv(io.BytesIO(csv), index_col=0)
    assert {"sac", "cartea_jaimungal", "fixed_spread"} <= set(table.index)

    model = _listed(ui_server, train_id, "model/sac_policy")
    assert "model/sac_policy/saved_model.pb" in model
    assert model["model/sac_policy/variables"]["is_dir"]
    pb = _artifact(ui_server, train_id, "model/sac_policy/saved_model.pb")
    assert len(pb) == int(model["model/sac_policy/saved_model.pb"]["file_size"]) > 0

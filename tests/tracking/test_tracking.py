"""Tests of tracking/: flattening, runs on a SQLite store, a real MLflow server, preflight."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracking
import tracking.store as tracking_store
from tracking import (
    MAX_PARAM_VALUE_LENGTH,
    PROJECT_ROOT,
    TRUNCATION_MARKER,
    Tracker,
    TrackingError,
    check_tracking_uri,
    default_tracking_uri,
    download_artifacts,
    flatten_params,
    load_run,
    resolve_tracking_uri,
    ui_command,
)

matplotlib.use("Agg")

SERVER_START_TIMEOUT_S = 90.0

# mlflow 3.17's SQLAlchemy store triggers this deprecation inside SQLAlchemy; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (creating its tables takes seconds); tests use their
    own experiment names."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture
def client(sqlite_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=sqlite_uri)


# --------------------------------------------------------------------------------------------
# flatten_params
# --------------------------------------------------------------------------------------------


def test_flatten_params_nested_dicts_and_lists() -> None:
    config = {
        "market": {"sigma": 2.0, "kappa": 1.5, "name": None},
        "policies": [{"kind": "glft", "gamma": 0.1}, {"kind": "as"}],
        "seed": 0,
        "empty_dict": {},
        "empty_list": [],
        "pair": (1, 2),
    }
    assert flatten_params(config) == {
        "market.sigma": "2.0",
        "market.kappa": "1.5",
        "market.name": "None",
        "policies.0.kind": "glft",
        "policies.0.gamma": "0.1",
        "policies.1.kind": "as",
        "seed": "0",
        "empty_dict": "{}",
        "empty_list": "[]",
        "pair.0": "1",
        "pair.1": "2",
    }
    assert flatten_params({"a": 1}, prefix="calibration") == {"calibration.a": "1"}
    assert flatten_params({}) == {}


def test_flatten_params_truncates_long_values_with_marker() -> None:
    flat = flatten_params({"long": "x" * (MAX_PARAM_VALUE_LENGTH + 10), "ok": "y" * 10})
    assert len(flat["long"]) == MAX_PARAM_VALUE_LENGTH
    assert flat["long"].endswith(TRUNCATION_MARKER)
    assert flat["ok"] == "y" * 10
    exact = "z" * MAX_PARAM_VALUE_LENGTH
    assert flatten_params({"exact": exact})["exact"] == exact


def test_max_param_length_matches_mlflow() -> None:
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    assert MAX_PARAM_VALUE_LENGTH == MAX_PARAM_VAL_LENGTH


def test_flatten_params_rejects_colliding_keys() -> None:
    with pytest.raises(ValueError, match="a.b"):
        flatten_params({"a.b": 1, "a": {"b": 2}})


def test_flatten_params_dumps_pydantic_models() -> None:
    import pydantic

    class Market(pydantic.BaseModel):
        sigma: float = 2.0
        levels: tuple[int, ...] = (1, 2)

    assert flatten_params({"market": Market()}) == {
        "market.sigma": "2.0",
        "market.levels.0": "1",
        "market.levels.1": "2",
    }


_keys = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_trees = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=30,
)


def _leaf_count(value: Any) -> int:
    if isinstance(value, dict | list):
        return sum(_leaf_count(child) for child in _children(value)) if value else 1
    return 1


def _children(value: dict[str, Any] | list[Any]) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else list(value)


def _follow(tree: Any, dotted: str) -> Any:
    node = tree
    for part in dotted.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _trees, max_size=5))
def test_flatten_params_every_leaf_once_under_its_path(tree: dict[str, Any]) -> None:
    flat = flatten_params(tree)
    assert len(flat) == _leaf_count(tree) if tree else flat == {}
    for dotted, text in flat.items():
        leaf = _follow(tree, dotted)
        if isinstance(leaf, dict | list):
            assert not leaf and text == ("{}" if isinstance(leaf, dict) else "[]")
        else:
            assert text == str(leaf)


# --------------------------------------------------------------------------------------------
# URI resolution, preflight, small helpers
# --------------------------------------------------------------------------------------------


def test_import_is_cheap() -> None:
    code = "import sys, tracking; assert 'mlflow' not in sys.modules, 'mlflow imported'"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_default_store_is_in_the_project() -> None:
    assert PROJECT_ROOT == Path(tracking.__file__).resolve().parent.parent
    assert default_tracking_uri() == f"sqlite:///{PROJECT_ROOT}/mlflow.db"
    from tracking.store import _artifact_location

    expected = (PROJECT_ROOT / "mlartifacts" / "as2008").as_uri()
    assert _artifact_location(default_tracking_uri(), "as2008") == expected
    assert _artifact_location("http://127.0.0.1:5000", "as2008") is None  # server chooses


def test_resolve_tracking_uri_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None) == default_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/from_env.db")
    assert resolve_tracking_uri(None) == "sqlite:////tmp/from_env.db"
    assert resolve_tracking_uri("http://127.0.0.1:9") == "http://127.0.0.1:9"


def test_ui_command_for_default_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    command = ui_command()
    assert " ui --backend-store-uri " in command
    assert default_tracking_uri() in command
    assert command.endswith("--port 5000")


def test_preflight_creates_the_store_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "a" / "b"
    check_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    assert folder.is_dir()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_tracking_uri((tmp_path / "filestore").as_uri())
    assert (tmp_path / "filestore").is_dir()


def test_sqlite_preflight_rejects_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'blocker' / 'mlflow.db'}"
    with pytest.raises(TrackingError, match="blocker"):
        check_tracking_uri(uri)


def test_unreachable_server_fails_fast_with_the_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"http://127.0.0.1:{free_port()}"
    timeout = 5.0
    start = time.monotonic()
    with pytest.raises(TrackingError) as info:
        Tracker(experiment="unreachable", tracking_uri=uri, timeout=timeout)
    assert time.monotonic() - start < timeout
    message = str(info.value)
    assert uri in message
    assert "MLFLOW_TRACKING_URI" in message and "tracking.uri" in message
    assert default_tracking_uri() in message  # the local fallback is named


def test_file_store_refusal_is_a_tracking_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow 3.17 refuses file stores unless MLFLOW_ALLOW_FILE_STORE=true; say so up front.
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(TrackingError, match="MLFLOW_ALLOW_FILE_STORE"):
        Tracker("files", tracking_uri=(tmp_path / "mlruns").as_uri())


def test_passwords_are_redacted_from_messages() -> None:
    from tracking.store import _redact

    assert _redact("postgresql://me:s3cret@127.0.0.1:1/db") == "postgresql://me:***@127.0.0.1:1/db"
    assert _redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_git_commit_is_none_or_a_sha() -> None:
    commit = tracking.git_commit()
    assert commit is None or (len(commit) == 40 and int(commit, 16) >= 0)
    assert isinstance(tracking.git_dirty(), bool)


# --------------------------------------------------------------------------------------------
# Runs on a SQLite store
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["loss", "train/", "/loss", "eval//pnl"])
def test_metric_key_without_namespace_raises(sqlite_uri: str, key: str) -> None:
    with Tracker(experiment="keys", tracking_uri=sqlite_uri) as run:
        with pytest.raises(ValueError, match="namespaced"):
            run.log_metrics({"train/ok": 1.0, key: 1.0})
        run.log_metric("train/ok", 2.0)


def test_run_logs_and_reads_back(sqlite_uri: str, client: Any, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    report = tmp_path / "summary.md"
    report.write_text("# summary\n")
    config = {"market": {"sigma": 2.0}, "policies": [{"kind": "glft"}]}
    many = {f"stress/crash/glft/m{i}": float(i) for i in range(1500)}  # > one batch

    with Tracker("readback", run_name="demo", tracking_uri=sqlite_uri, tags={"seed": 0}) as run:
        run.log_params(config)
        run.log_metrics({"eval/glft/pnl_mean": 1.0, "train/nan": math.nan}, step=0)
        run.log_metrics({"eval/glft/pnl_mean": 3.0}, step=1)
        run.log_metrics(many, step=0)
        run.log_artifact(report, artifact_path="reports")
        run.log_text("a: 1\n", "config/resolved.yaml")
        run.log_dict({"x": [1, 2]}, "x.json")
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        run.log_figure(fig, "figures/a.png")
        plt.close(fig)
        run.set_tags({"data.hash": "abc"})
        run_id, artifact_uri = run.run_id, run.artifact_uri
        assert run.run_url is None  # local store

    db_folder = Path(sqlite_uri[len("sqlite:///") :]).parent
    assert artifact_uri.startswith((db_folder / "mlartifacts" / "readback").as_uri())

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "demo"
    assert got.data.params == {"market.sigma": "2.0", "policies.0.kind": "glft"}
    assert got.data.metrics["eval/glft/pnl_mean"] == 3.0
    assert math.isnan(got.data.metrics["train/nan"])
    assert got.data.metrics["stress/crash/glft/m1499"] == 1499.0
    assert len(got.data.metrics) == 2 + len(many)
    history = client.get_metric_history(run_id, "eval/glft/pnl_mean")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 3.0)]
    tags = got.data.tags
    assert tags["seed"] == "0" and tags["data.hash"] == "abc"
    assert tags["mmrl.git_dirty"] in ("True", "False")
    assert tags["mmrl.git_commit"] == (tracking.git_commit() or "unknown")
    listed = {a.path for a in client.list_artifacts(run_id)}
    assert listed == {"reports", "config", "x.json", "figures"}

    local = Path(client.download_artifacts(run_id, "reports/summary.md", str(tmp_path / "dl")))
    assert local.read_text() == "# summary\n"
    assert json.loads(Path(client.download_artifacts(run_id, "x.json", str(tmp_path))).read_text())
    png = download_artifacts(run_id, "figures/a.png", tmp_path / "ours", tracking_uri=sqlite_uri)
    assert png.read_bytes().startswith(b"\x89PNG")

    record = load_run(run_id, tracking_uri=sqlite_uri)
    assert record.status == "FINISHED"
    assert record.params["market.sigma"] == "2.0"
    assert record.metrics["eval/glft/pnl_mean"] == 3.0  # latest
    assert record.tags["seed"] == "0"
    assert record.artifact_uri == artifact_uri


def test_failed_status_when_the_body_raises(sqlite_uri: str, client: Any) -> None:
    with pytest.raises(ZeroDivisionError):
        with Tracker("failing", tracking_uri=sqlite_uri) as run:
            run.log_metric("train/loss", 1.0)
            _ = 1 / 0
    got = client.get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["mmrl.error"].startswith("ZeroDivisionError")
    assert got.data.metrics["train/loss"] == 1.0


def test_killed_status_on_keyboard_interrupt(sqlite_uri: str, client: Any) -> None:
    with pytest.raises(KeyboardInterrupt):
        with Tracker("interrupted", tracking_uri=sqlite_uri) as run:
            raise KeyboardInterrupt
    assert client.get_run(run.run_id).info.status == "KILLED"


def test_two_trackers_do_not_mix(sqlite_uri: str, client: Any) -> None:
    with Tracker("mix", run_name="outer", tracking_uri=sqlite_uri) as outer:
        with Tracker("mix", run_name="inner", tracking_uri=sqlite_uri) as inner:
            inner.log_metric("train/who", 2.0)
            outer.log_metric("train/who", 1.0)
        outer.log_metric("train/after", 1.0)
    assert client.get_run(outer.run_id).data.metrics == {"train/who": 1.0, "train/after": 1.0}
    assert client.get_run(inner.run_id).data.metrics == {"train/who": 2.0}
    assert client.get_run(inner.run_id).info.status == "FINISHED"


def test_resume_an_existing_run(sqlite_uri: str, client: Any) -> None:
    with Tracker("resume", tracking_uri=sqlite_uri) as first:
        first.log_metric("train/loss", 1.0, step=0)
    with Tracker("resume", tracking_uri=sqlite_uri, run_id=first.run_id) as again:
        assert client.get_run(first.run_id).info.status == "RUNNING"
        again.log_metric("train/loss", 0.5, step=1)
    assert again.run_id == first.run_id
    history = client.get_metric_history(first.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]
    assert client.get_run(first.run_id).info.status == "FINISHED"
    with pytest.raises(ValueError, match="belongs to experiment"):
        with Tracker("other", tracking_uri=sqlite_uri, run_id=first.run_id):
            pass


def test_env_var_is_honoured(sqlite_uri: str, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    with Tracker("from-env", tracking_uri=None) as run:
        assert run.tracking_uri == sqlite_uri
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_explicit_uri_beats_env_var(
    sqlite_uri: str, client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # dead
    (tmp_path / "f.txt").write_text("x")
    with Tracker("explicit", tracking_uri=sqlite_uri) as run:
        run.log_artifact(tmp_path / "f.txt")
    assert client.get_run(run.run_id).info.status == "FINISHED"
    assert load_run(run.run_id, tracking_uri=sqlite_uri).run_id == run.run_id


def test_deleted_experiment_is_a_tracking_error(sqlite_uri: str, client: Any) -> None:
    with Tracker("deleted", tracking_uri=sqlite_uri) as run:
        pass
    client.delete_experiment(run.experiment_id)
    with pytest.raises(TrackingError, match="deleted"):
        with Tracker("deleted", tracking_uri=sqlite_uri):
            pass


def test_tracker_outside_with_block_raises(sqlite_uri: str) -> None:
    tracker = Tracker("outside", tracking_uri=sqlite_uri)
    with pytest.raises(RuntimeError, match="with"):
        tracker.log_metric("train/x", 1.0)


# --------------------------------------------------------------------------------------------
# A real MLflow server over HTTP
# --------------------------------------------------------------------------------------------


def _health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``mlflow server`` on a free loopback port, with proxied artifacts in a temp folder."""
    root = tmp_path_factory.mktemp("server")
    mlflow_exe = Path(sys.executable).parent / "mlflow"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(mlflow_exe), "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
        "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
            start_new_session=True,  # its own process group, so the finalizer kills workers too
        )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _health_ok(url):
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited early:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy in {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.25)
        yield url
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):  # stragglers (mlflow's job consumers)
        os.killpg(process.pid, signal.SIGKILL)


def test_run_over_a_real_server(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    # A dead server in the environment must not leak into calls given an explicit URI.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    report = tmp_path / "report.txt"
    report.write_text("over http\n")
    with Tracker("remote", run_name="http", tracking_uri=mlflow_server, tags={"seed": 7}) as run:
        run.log_params({"agent": {"lr": 3e-4}})
        run.log_metrics({"train/loss": 0.25}, step=5)
        run.log_artifact(report, artifact_path="reports")
        assert run.artifact_uri.startswith("mlflow-artifacts:")  # the server chose
        assert run.run_url == f"{mlflow_server}/#/experiments/{run.experiment_id}/runs/{run.run_id}"

    client = MlflowClient(tracking_uri=mlflow_server)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"agent.lr": "0.0003"}
    assert got.data.metrics == {"train/loss": 0.25}
    assert got.data.tags["seed"] == "7"
    local = client.download_artifacts(run.run_id, "reports/report.txt", str(tmp_path / "a"))
    assert Path(local).read_text() == "over http\n"
    ours = download_artifacts(run.run_id, "reports", tmp_path / "b", tracking_uri=mlflow_server)
    assert (ours / "report.txt").read_text() == "over http\n"
    assert load_run(run.run_id, tracking_uri=mlflow_server).metrics == {"train/loss": 0.25}


def test_metric_history_returns_every_step_in_order(sqlite_uri: str) -> None:
    from tracking import metric_history

    with Tracker(experiment="history", tracking_uri=sqlite_uri) as run:
        for step in (30, 10, 20):
            run.log_metrics({"train/x": step / 10}, step=step)
    assert metric_history(run.run_id, "train/x", sqlite_uri) == [(10, 1.0), (20, 2.0), (30, 3.0)]
    assert metric_history(run.run_id, "train/missing", sqlite_uri) == []


def test_git_dirty_ignores_a_venv_link_and_sees_real_changes(tmp_path, monkeypatch) -> None:
    """A ``.venv`` that is a symbolic link (as many set-ups make it) is not a change; a new file
    is."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(tracking_store.PROJECT_ROOT / ".gitignore", repo / ".gitignore")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    for args in (["init", "-q"], ["add", ".gitignore"], ["commit", "-qm", "ignore rules"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    monkeypatch.setattr(tracking_store, "PROJECT_ROOT", repo)
    (tmp_path / "venv").mkdir()
    (repo / ".venv").symlink_to(tmp_path / "venv")
    (repo / "mlflow.db").write_text("")
    assert tracking.git_dirty() is False
    (repo / "new.py").write_text("")
    assert tracking.git_dirty() is True

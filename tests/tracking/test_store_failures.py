"""The tracking store refuses what it cannot do, before any work.

- a server that answers ``/health`` but not the API, and an artifact folder that cannot be
  written: refused by the preflight, before any run starts;
- experiment names that would leave the store (``../escaped``) are refused.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracking import (
    ExperimentNameError,
    Tracker,
    TrackingError,
    TrackingUsageError,
    check_tracking_uri,
    load_run,
    require_run,
    validate_experiment_name,
)

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


# --------------------------------------------------------------------------------------------
# Preflight: /health without the API, unwritable artifact folders
# --------------------------------------------------------------------------------------------


class _HealthOnly(http.server.BaseHTTPRequestHandler):
    """Answers /health like MLflow; everything else as a wrong proxy would."""

    api_status = 404
    api_body = b"<html>not here</html>"

    def do_GET(self) -> None:  # http.server calls it by this name
        if self.path == "/health":
            status, body = 200, b"OK"
        else:
            status, body = self.api_status, self.api_body
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _HtmlApi(_HealthOnly):
    api_status = 200  # e.g. a single-page app that answers every path with its index.html


@pytest.fixture(params=[_HealthOnly, _HtmlApi], ids=["api-404", "api-html"])
def health_only_server(request: pytest.FixtureRequest) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_answering_health_but_not_the_api_is_refused(health_only_server: str) -> None:
    with pytest.raises(TrackingError, match="answers /health but not the MLflow API") as info:
        check_tracking_uri(health_only_server, timeout=5)
    assert health_only_server in str(info.value)
    with pytest.raises(TrackingError, match="not the MLflow API"):
        Tracker("x", tracking_uri=health_only_server)


def test_an_artifact_folder_that_cannot_be_created_is_refused_by_the_preflight(
    tmp_path: Path,
) -> None:
    """A SQLite store keeps artifacts in ``mlartifacts/`` beside it: a file in the way (or a
    read-only folder) is reported before any run, naming the folder."""
    (tmp_path / "mlartifacts").write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(TrackingError, match="artifact folder") as info:
        check_tracking_uri(uri)
    assert str(tmp_path / "mlartifacts") in str(info.value)
    assert "not a folder" in str(info.value)
    assert not (tmp_path / "mlflow.db").exists(), "the preflight touched the store"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_artifact_folder_is_refused_by_the_preflight(tmp_path: Path) -> None:
    artifacts = tmp_path / "mlartifacts"
    artifacts.mkdir()
    artifacts.chmod(0o500)
    try:
        with pytest.raises(TrackingError, match="not writable"):
            check_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    finally:
        artifacts.chmod(0o700)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def test_an_experiment_whose_artifact_folder_is_unwritable_starts_no_run(
    store: str, tmp_path: Path
) -> None:
    """An existing experiment may keep artifacts elsewhere: checked when the run starts,
    before it is created."""
    from mlflow import MlflowClient

    uri = store
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with Tracker("setup", tracking_uri=uri):  # creates the store's tables (under its lock)
        pass
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("elsewhere", (blocker / "art").as_uri())
    with pytest.raises(TrackingError, match="artifact folder") as info:
        with Tracker("elsewhere", tracking_uri=uri):
            pytest.fail("the run started")
    assert str(blocker) in str(info.value)
    assert client.search_runs([experiment_id]) == []


# --------------------------------------------------------------------------------------------
# Runs to read or resume
# --------------------------------------------------------------------------------------------


def test_require_run_checks_the_run_and_its_artifact(store: str, tmp_path: Path) -> None:
    model = tmp_path / "sac_policy"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"0")
    with Tracker("trained", tracking_uri=store) as run:
        run.log_artifacts(model, "model/sac_policy")
    record = require_run(run.run_id, store, artifact="model/sac_policy")
    assert record.run_id == run.run_id and record.status == "FINISHED"
    with pytest.raises(TrackingError, match="has no artifact 'model/other'"):
        require_run(run.run_id, store, artifact="model/other")
    with pytest.raises(TrackingError, match="no run 'deadbeef' in tracking store") as info:
        require_run("deadbeef", store)
    assert len(str(info.value).splitlines()) == 1


def test_a_run_that_cannot_be_resumed_is_refused_before_it_is_touched(store: str) -> None:
    """Unknown id, or a run of another experiment: the Tracker refuses at construction, and the
    original run keeps its status (it used to be flipped to RUNNING, then FAILED)."""
    with Tracker("finished", tracking_uri=store) as run:
        pass
    with pytest.raises(TrackingUsageError, match="belongs to experiment id"):
        Tracker("another", tracking_uri=store, run_id=run.run_id)
    with pytest.raises(TrackingError, match="no run 'deadbeef'"):
        Tracker("finished", tracking_uri=store, run_id="deadbeef")
    assert load_run(run.run_id, store).status == "FINISHED"


# --------------------------------------------------------------------------------------------
# Experiment names
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../escaped", "a/b", "..", ".hidden", "/abs", "a\\b", "", " padded", "x" * 101]
)
def test_experiment_names_that_leave_the_store_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ExperimentNameError, match="is not allowed: use 1 to 100 letters"):
        validate_experiment_name(name)
    with pytest.raises(ValueError, match="not allowed"):  # also a ValueError, as before
        Tracker(name, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path.parent / "escaped").exists()


@pytest.mark.parametrize("name", ["demo", "cj_sac", "smoke-backtest", "as2008 v2", "goog.2012"])
def test_usual_experiment_names_pass(name: str) -> None:
    assert validate_experiment_name(name) == name

"""The shared tracking server: PostgreSQL plus MLflow with proxied artifacts.

A real PostgreSQL 15 cluster and a real ``mlflow server`` on 127.0.0.1, started through
:class:`tracking.server.TrackingServer`; a real ``experiments.evaluate`` logs to it over HTTP.
Skips only when PostgreSQL's server binaries are absent (``apt-get install postgresql``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracking.server import (
    TrackingServer,
    TrackingServerError,
    find_pg_bin,
    port_is_free,
    postgres_pids,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_S = 180.0

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def _pg_binaries_or_skip() -> None:
    try:
        find_pg_bin()
    except TrackingServerError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A folder the ``postgres`` user can reach. pytest's ``tmp_path`` lies under
    ``/tmp/pytest-of-<user>`` (mode 0700), which a cluster owned by ``postgres`` (the case when
    the tests run as root) cannot be in; the system temp folder can."""
    folder = Path(tempfile.mkdtemp(prefix="mmrl-tracking-server-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_evaluate_logs_to_a_postgres_backed_server_and_stopping_leaves_no_process(
    server_dir: Path, tmp_path: Path
) -> None:
    """Start PostgreSQL and MLflow; ``experiments.evaluate`` logs to the server's URI; the run
    reads back through ``MlflowClient`` (params, metrics, an artifact through the proxy) and is
    a row of PostgreSQL's ``runs`` table; after ``stop`` no process of the cluster remains."""
    _pg_binaries_or_skip()
    from mlflow import MlflowClient

    with TrackingServer(server_dir, artifacts=tmp_path / "artifacts") as server:
        assert server.uri.startswith("http://127.0.0.1:")
        assert postgres_pids(server.data_dir), "PostgreSQL should run in the cluster folder"

        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        done = subprocess.run(
            [sys.executable, "-m", "experiments.evaluate", "--no-reports",
             "--config", "configs/demo.yaml", "--set", "evaluation.n_paths=20",
             "--set", f"tracking.uri={server.uri}"],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT_S, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        found = re.search(r"Run ([0-9a-f]{32}) in experiment", done.stdout)
        assert found, done.stdout[-2000:]
        run_id = found.group(1)

        client = MlflowClient(server.uri)
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params["evaluation.n_paths"] == "20"
        assert any(key.startswith("eval/") for key in run.data.metrics), run.data.metrics
        assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri

        local = client.download_artifacts(run_id, "config/resolved.yaml", str(tmp_path))
        text = Path(local).read_text()
        assert "n_paths: 20" in text
        stored = list((tmp_path / "artifacts").rglob("config/resolved.yaml"))
        assert [p.read_text() for p in stored] == [text], "the server should hold the artifact"

        with server.connect_database() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            assert cursor.fetchone()[0].startswith("PostgreSQL 15")
            cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (run_id,))
            assert cursor.fetchall() == [("FINISHED",)]
            cursor.execute(
                "SELECT value FROM params WHERE run_uuid = %s AND key = %s",
                (run_id, "evaluation.n_paths"),
            )
            assert cursor.fetchall() == [("20",)]
        connection.close()  # psycopg2's "with" ends the transaction, not the connection
        port, data_dir = server.port, server.data_dir

    assert port is not None and port_is_free(port), "the MLflow port should be released"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert not server.mlflow_alive()
    assert postgres_pids(data_dir) == [], "no PostgreSQL process may outlive the server"
    assert not (data_dir / "postmaster.pid").exists()

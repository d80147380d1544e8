"""A tracking server that dies in the middle of a run.

MLflow's own retries (7, backoff factor 2, 120 s timeout) kept a training run waiting 9+
minutes on a dead server; the tracker bounds them and raises :class:`TrackingUnavailableError`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracking import Tracker, TrackingError, TrackingUnavailableError

SERVER_START_TIMEOUT_S = 150.0  # 10 s on an idle 2-core machine, 40 s and more when loaded
LOGGING_BOUND_S = 30.0

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@pytest.fixture(autouse=True)
def _mlflow_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracker's own bounds, not a developer's environment."""
    for name in list(os.environ):
        if name.startswith("MLFLOW_HTTP_REQUEST_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# A real MLflow server killed in the middle of a run
# --------------------------------------------------------------------------------------------


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def mlflow_server(root: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``mlflow server`` on a free loopback port, in its own process group."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination", str(root / "server-artifacts"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job workers: starts faster
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   cwd=root, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited early:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy in {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.25)
        yield url, process
    finally:
        _kill(process)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server's whole process group (uvicorn worker included), as a crash would."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)


def test_a_server_that_hangs_or_dies_mid_run_fails_logging_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs on one server. The server hangs (SIGSTOP; the user's 2 s timeout applies): the
    first run's next ``log_metrics`` raises TrackingUnavailableError within the retries' bound.
    The server dies (SIGKILL): the second run's next call raises in seconds too, naming the
    server, the run and the resume command. Later calls raise at once, and leaving the ``with``
    blocks does not wait on the dead server."""
    with mlflow_server(tmp_path) as (url, process):
        with Tracker("hangs", tracking_uri=url) as hung, Tracker("dies", tracking_uri=url) as run:
            run.resume_command = f"python -m experiments.train --resume {run.run_id}"
            hung.log_metrics({"train/loss": 1.0}, step=1)
            run.log_metrics({"train/loss": 1.0}, step=1)

            monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")  # a user's setting wins
            os.killpg(process.pid, signal.SIGSTOP)
            start = time.monotonic()
            with pytest.raises(TrackingUnavailableError, match="no answer within 2 s"):
                hung.log_metrics({"train/loss": 0.5}, step=2)
            elapsed = time.monotonic() - start
            assert elapsed < LOGGING_BOUND_S, f"log_metrics took {elapsed:.1f} s on a hung server"

            _kill(process)
            start = time.monotonic()
            with pytest.raises(TrackingUnavailableError) as info:
                run.log_metrics({"train/loss": 0.5}, step=2)
            elapsed = time.monotonic() - start
            assert elapsed < LOGGING_BOUND_S, f"log_metrics took {elapsed:.1f} s on a dead server"
            error = info.value
            assert isinstance(error, TrackingError)
            assert error.run_id == run.run_id and error.action == "log_metrics"
            assert url in str(error) and "stopped answering" in str(error)
            assert f"--resume {run.run_id}" in str(error)
            assert run.store_unavailable is error

            start = time.monotonic()
            with pytest.raises(TrackingUnavailableError):
                run.log_artifact(__file__, "code")
            assert time.monotonic() - start < 1.0, "a second call went back to the dead server"
            exit_started = time.monotonic()
        assert time.monotonic() - exit_started < 1.0, "ending the runs waited on the dead server"

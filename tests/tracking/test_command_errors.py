"""User mistakes about runs and outputs are one-line errors with exit code 2, before any work:
an unknown ``--resume`` or ``--run-id``, an experiment name that
leaves the store, an unwritable ``calibration.fit --out``, an unreachable ``--track`` server.

The commands' ``main`` runs in this process (TensorFlow is imported once); returning 2 instead
of raising is what keeps the traceback away. ``calibration.fit`` also runs as a subprocess.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracking import PROJECT_ROOT, Tracker

SAMPLE = PROJECT_ROOT / "data/samples/lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
UNKNOWN_RUN = "deadbeef"

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store with one finished run that has no model (created once: tables take s)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    with Tracker("demo", run_name="evaluate-demo", tracking_uri=uri) as run:
        run.set_tag("mmrl.job", "evaluate")
    return uri


@pytest.fixture(scope="module")
def modelless_run(store: str) -> str:
    with Tracker("demo", run_name="not-a-training-run", tracking_uri=store) as run:
        return run.run_id


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert "Traceback" not in text
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_evaluate_with_an_unknown_run_id_is_one_line(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from experiments import evaluate

    code = evaluate.main(["--no-reports", "--no-progress", "--set", f"tracking.uri={store}",
                          "--set", "evaluation.n_paths=10", "--run-id", UNKNOWN_RUN])  # fmt: skip
    out = capsys.readouterr()
    assert code == 2
    line = one_error_line(out.out + out.err)
    assert f"no run '{UNKNOWN_RUN}'" in line and store in line


def test_evaluate_with_a_run_without_a_model_is_one_line(
    store: str, modelless_run: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from experiments import evaluate

    code = evaluate.main(["--no-reports", "--no-progress", "--set", f"tracking.uri={store}",
                          "--run-id", modelless_run])  # fmt: skip
    out = capsys.readouterr()
    assert code == 2
    line = one_error_line(out.out + out.err)
    assert modelless_run in line and "no artifact 'model/sac_policy'" in line


def test_an_experiment_name_leaving_the_store_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tracking.experiment=../escaped`` would put artifacts beside the store's folder."""
    from experiments import evaluate

    root = tmp_path / "store"
    uri = f"sqlite:///{root / 'mlflow.db'}"
    code = evaluate.main(["--no-reports", "--no-progress", "--set", f"tracking.uri={uri}",
                          "--set", "tracking.experiment=../escaped"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 2
    line = one_error_line(out.out + out.err)
    assert "configs/demo.yaml: tracking.experiment: experiment name '../escaped'" in line
    assert "letters, digits" in line
    assert not (root / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert not (root / "mlflow.db").exists()


def test_train_resume_of_an_unknown_run_is_one_line(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from experiments import train

    code = train.main(["--config", "configs/cj_sac.yaml", "--set", f"tracking.uri={store}",
                       "--resume", UNKNOWN_RUN])  # fmt: skip
    out = capsys.readouterr()
    assert code == 2
    line = one_error_line(out.out + out.err)
    assert UNKNOWN_RUN in line and "no run" in line


def _fit(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    command = [sys.executable, "-m", "calibration.fit", "--data", str(SAMPLE), *args]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    return done, time.monotonic() - start


def test_calibration_fit_to_an_unwritable_out_fails_before_the_fit(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    out = blocker / "markets" / "goog.yaml"
    done, _ = _fit("--out", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done.stdout + done.stderr)
    assert f"--out {out}" in line and "not a folder" in line
    assert "fit times" not in done.stdout  # refused before loading and fitting


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_calibration_fit_track_to_an_unreachable_server_fails_before_the_fit(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done, _ = _fit("--out", str(tmp_path / "goog.yaml"), "--track", "--tracking-uri", url)
    text = done.stdout + done.stderr
    assert done.returncode == 2, text
    assert "Traceback" not in text
    assert url in text and "is not usable" in text
    assert "fit times" not in text and not (tmp_path / "goog.yaml").exists()

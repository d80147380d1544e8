"""A new SQLite tracking store survives jobs started at the same moment.

MLflow creates and migrates a store's tables on first open, with no lock: two processes doing it
at once crashed with alembic errors and could leave ``_alembic_tmp_tags`` behind for good.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import tracking.store as tracking_store
from tracking import Tracker, TrackingError, load_run

N_JOBS = 4
JOB_TIMEOUT_S = 150.0

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def _job(uri: str, index: int, barrier: Any, results: Any) -> None:
    """One job: wait for the others, then open the store and log a run (as a command would)."""
    try:
        barrier.wait(timeout=60)
        with Tracker("concurrent", run_name=f"job-{index}", tracking_uri=uri) as run:
            run.log_metrics({"eval/job/index": float(index)}, step=index)
            results.put((index, run.run_id, ""))
    except BaseException as exc:  # reported to the parent, which fails the test with it
        results.put((index, None, f"{type(exc).__name__}: {exc}"))
        raise


def test_jobs_started_at_once_on_a_new_store_all_land_and_the_store_still_works(
    tmp_path: Path,
) -> None:
    """4 processes open one new store at the same instant (a barrier, after mlflow is imported,
    so they race on the table creation itself); all 4 runs are there, FINISHED, and the store
    takes a fifth run afterwards. No lock file is left beside the database.

    The jobs fork from a fresh server process that imported mlflow once (not from this one,
    which may hold TensorFlow's threads)."""
    db = tmp_path / "fresh.db"
    uri = f"sqlite:///{db}"
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mlflow", "tracking.store"])
    barrier = context.Barrier(N_JOBS)
    results = context.Queue()
    jobs = [context.Process(target=_job, args=(uri, i, barrier, results)) for i in range(N_JOBS)]
    for job in jobs:
        job.start()
    outcomes: dict[int, tuple[str | None, str]] = {}
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while len(outcomes) < N_JOBS and time.monotonic() < deadline:
        try:
            index, run_id, error = results.get(timeout=1.0)
        except Exception:  # queue.Empty: poll again
            if all(not job.is_alive() for job in jobs) and results.empty():
                break
            continue
        outcomes[index] = (run_id, error)
    for job in jobs:
        job.join(timeout=30)
        if job.is_alive():
            job.kill()
    errors = {i: e for i, (_, e) in outcomes.items() if e}
    assert not errors, f"jobs failed on a new store: {errors}"
    assert sorted(outcomes) == list(range(N_JOBS)), f"jobs without an outcome: {outcomes}"
    assert all(job.exitcode == 0 for job in jobs)

    for index, (run_id, _) in outcomes.items():
        record = load_run(str(run_id), tracking_uri=uri)
        assert record.status == "FINISHED"
        assert record.run_name == f"job-{index}"
        assert record.metrics == {"eval/job/index": float(index)}
    with Tracker("concurrent", run_name="after", tracking_uri=uri) as run:
        run.log_metrics({"eval/job/index": 99.0})
    assert load_run(run.run_id, tracking_uri=uri).status == "FINISHED"
    assert not db.with_name("fresh.db.lock").exists()


def test_the_store_lock_excludes_a_second_holder_and_removes_its_file(tmp_path: Path) -> None:
    """While one holder has the lock another waits; the lock file is gone after release."""
    lock = tmp_path / "store.db.lock"
    entered = threading.Event()
    order: list[str] = []

    def second() -> None:
        entered.wait(5)
        with tracking_store._exclusive_file_lock(lock, timeout=10):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with tracking_store._exclusive_file_lock(lock, timeout=10):
        entered.set()
        time.sleep(0.3)
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]
    assert not lock.exists()


def test_a_lock_held_too_long_is_a_tracking_error(tmp_path: Path) -> None:
    lock = tmp_path / "store.db.lock"
    with tracking_store._exclusive_file_lock(lock, timeout=5):
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child tries the lock the parent holds
            code = 1
            try:
                with tracking_store._exclusive_file_lock(lock, timeout=0.3):
                    pass
            except TrackingError as exc:
                code = 0 if "held" in str(exc) and str(lock) in str(exc) else 2
            os.write(writer, bytes([code]))
            os._exit(0)
        os.close(writer)
        got = os.read(reader, 1)
        os.waitpid(pid, 0)
        os.close(reader)
    assert got == bytes([0])

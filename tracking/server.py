"""A shared MLflow tracking server on PostgreSQL with proxied artifacts.

``python -m tracking.server --dir DIR [--port N] [--artifacts DIR]`` (or ``make
tracking-server``) creates (or reuses) a PostgreSQL cluster in ``DIR/pgdata``, starts it on a
free port of 127.0.0.1, creates the role and database ``mlflow``, then starts ``mlflow server``
on that database with ``--serve-artifacts``: clients log everything, artifacts included, over
HTTP, and the server writes artifacts to ``--artifacts`` (default ``DIR/artifacts``). It prints
the tracking URI once the server answers its API, and stops both on Ctrl-C or SIGTERM.

Layout of ``DIR``::

    pgdata/       the PostgreSQL cluster (owned by the ``postgres`` user when run as root)
    pgpass        the generated passwords, libpq passfile format, mode 0600
    logs/         postgres.log, mlflow.log
    artifacts/    proxied artifacts (unless --artifacts names another folder)

PostgreSQL is Debian's (``/usr/lib/postgresql/<version>/bin``; ``apt-get install
postgresql``). ``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the
``postgres`` user (``runuser -u postgres``) and ``DIR`` is chowned to it. The cluster listens on
127.0.0.1 only, over TCP (no Unix socket), with password (SCRAM) authentication.

Python API: :class:`TrackingServer`, a context manager whose :attr:`TrackingServer.uri` is the
tracking URI (docs/architecture.md#running-on-a-cluster).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from tracking.store import TrackingError, _mlflow_executable, check_tracking_uri

PG_VERSION = "15"
"""The PostgreSQL major version the server creates clusters with."""
PG_BIN_ENV = "MMRL_PG_BIN"
"""Environment variable naming another folder holding ``initdb``, ``pg_ctl`` and ``postgres``."""
PG_SYSTEM_USER = "postgres"
"""The system user that owns and runs the cluster when this command runs as root."""
DATABASE = "mlflow"
"""Name of both the database and the role MLflow connects as."""
HOST = "127.0.0.1"

SERVER_START_TIMEOUT_S = 180.0
"""How long to wait for ``mlflow server`` to answer its API (10 s idle, more on a busy host)."""
PG_START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20.0
_PG_PORT_ATTEMPTS = 3  # another process may take the free port between choosing and binding
_LOG_TAIL_CHARS = 2000


class TrackingServerError(TrackingError):
    """The server cannot start: PostgreSQL missing, port taken, DIR unusable, a child died."""


# --------------------------------------------------------------------------------------------
# Helpers: binaries, users, ports, processes
# --------------------------------------------------------------------------------------------


def find_pg_bin(pg_bin: str | os.PathLike[str] | None = None) -> Path:
    """The folder with PostgreSQL's server binaries: ``pg_bin``, else ``$MMRL_PG_BIN``, else
    Debian's ``/usr/lib/postgresql/15/bin``.

    :raises TrackingServerError: the binaries are absent, saying how to install them.
    """
    folder = Path(pg_bin or os.environ.get(PG_BIN_ENV) or f"/usr/lib/postgresql/{PG_VERSION}/bin")
    missing = [n for n in ("initdb", "pg_ctl", "postgres") if not (folder / n).is_file()]
    if missing:
        raise TrackingServerError(
            f"PostgreSQL {PG_VERSION} server binaries not found in {folder} (missing "
            f"{', '.join(missing)}): install them with `apt-get install postgresql` (Debian/"
            f"Ubuntu), or set ${PG_BIN_ENV} to the folder holding initdb and pg_ctl"
        )
    return folder


def _as_root() -> bool:
    return os.geteuid() == 0


def _pg_command(args: list[str]) -> list[str]:
    """``args`` run as the cluster's owner: as root, through ``runuser -u postgres``."""
    if not _as_root():
        return args
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", PG_SYSTEM_USER, "--", *args]
    return ["su", PG_SYSTEM_USER, "-s", "/bin/sh", "-c", shlex.join(args)]


def _chown_to_pg(path: Path) -> None:
    if _as_root():
        import pwd

        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on at ``host`` now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if a server could listen on ``host:port`` now (with ``SO_REUSEADDR``, as uvicorn
    binds: connections of a stopped server in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def postgres_pids(data_dir: str | os.PathLike[str]) -> list[int]:
    """Processes running in the cluster ``data_dir`` (every PostgreSQL process works there).

    Reads ``/proc/<pid>/cwd``; processes of other users are visible only to root or to the
    cluster's owner, which is who runs this.
    """
    target = os.path.realpath(data_dir)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "cwd") == target:
                pids.append(int(entry.name))
    return sorted(pids)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-_LOG_TAIL_CHARS:].strip()
    except OSError:
        return ""


def _run(args: list[str], what: str, log: Path | None = None, **kwargs: Any) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {done.returncode}"
        hint = f" (log: {log})" if log else ""
        raise TrackingServerError(f"{what} failed: {reason}{hint}")


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class TrackingServer:
    """PostgreSQL plus ``mlflow server`` with proxied artifacts, both stopped on exit.

    ::

        with TrackingServer("/srv/mmrl-tracking") as server:
            print(server.uri)        # http://127.0.0.1:<port>

    :param directory: where the cluster, passwords, logs and (default) artifacts live; created
        if missing, reused if it already holds a cluster of this command.
    :param port: the MLflow server's port; None picks a free one.
    :param artifacts: the artifact folder (default ``directory/artifacts``).
    :param host: the interface MLflow listens on; ``0.0.0.0`` to serve other machines
        (PostgreSQL always listens on 127.0.0.1 only).
    :param workers: MLflow server worker processes.
    :param pg_bin: the folder with ``initdb`` and ``pg_ctl`` (see :func:`find_pg_bin`).
    :param start_timeout: seconds to wait for the MLflow server's API.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        port: int | None = None,
        artifacts: str | os.PathLike[str] | None = None,
        host: str = HOST,
        workers: int = 2,
        pg_bin: str | os.PathLike[str] | None = None,
        start_timeout: float = SERVER_START_TIMEOUT_S,
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.directory = Path(directory).expanduser().resolve()
        self.data_dir = self.directory / "pgdata"
        self.artifacts = (
            Path(artifacts).expanduser().resolve() if artifacts else (self.directory / "artifacts")
        )
        self.log_dir = self.directory / "logs"
        self.passfile = self.directory / "pgpass"
        self.host = host
        self.port = port
        self.workers = workers
        self.pg_bin_arg = pg_bin
        self.start_timeout = start_timeout
        self.pg_port: int | None = None
        self._pg_started = False
        self._mlflow: subprocess.Popen[bytes] | None = None

    # ---- public ----------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The tracking URI clients use (``http://<host>:<port>``; 127.0.0.1 for 0.0.0.0)."""
        if self.port is None:
            raise TrackingServerError("the server has not been started")
        shown = HOST if self.host in ("0.0.0.0", "") else self.host
        return f"http://{shown}:{self.port}"

    @property
    def backend_store_uri(self) -> str:
        """The SQLAlchemy URI of the database (no password: it is in :attr:`passfile`).

        The driver is named: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, and the
        pinned driver is psycopg2 (``psycopg2-binary``)."""
        return f"postgresql+psycopg2://{DATABASE}@{HOST}:{self.pg_port}/{DATABASE}"

    def connect_database(self) -> Any:
        """A psycopg2 connection to the MLflow database (for checks and maintenance)."""
        import psycopg2

        return psycopg2.connect(
            host=HOST, port=self.pg_port, dbname=DATABASE, user=DATABASE,
            password=self._passwords()[DATABASE], connect_timeout=10,
        )  # fmt: skip

    def start(self) -> TrackingServer:
        """Create or reuse the cluster, start PostgreSQL then MLflow; return when the API
        answers. On any failure, whatever was started is stopped before raising."""
        pg_bin = find_pg_bin(self.pg_bin_arg)
        if self.port is None:
            self.port = free_port(self.host or HOST)
        elif not port_is_free(self.port, self.host or HOST):
            raise TrackingServerError(
                f"port {self.port} on {self.host} is taken: stop what listens there or choose "
                "another with --port (or omit --port for a free one)"
            )
        try:
            self._prepare_directory()
            self._init_cluster(pg_bin)
            self._start_postgres(pg_bin)
            self._create_database()
            self._start_mlflow()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop MLflow (its whole process group), then PostgreSQL (fast shutdown); kill any
        process still in the cluster after that. Safe to call twice."""
        process, self._mlflow = self._mlflow, None
        if process is not None:
            _stop_group(process)
        if self._pg_started:
            self._pg_started = False
            pg_bin = find_pg_bin(self.pg_bin_arg)
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(
                    _pg_command([str(pg_bin / "pg_ctl"), "stop", "-D", str(self.data_dir),
                                 "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT_S))]),
                    capture_output=True, check=False, timeout=STOP_TIMEOUT_S + 10,
                )  # fmt: skip
            for pid in postgres_pids(self.data_dir):  # pg_ctl failed or timed out: no orphans
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def mlflow_alive(self) -> bool:
        """True while the ``mlflow server`` process runs."""
        return self._mlflow is not None and self._mlflow.poll() is None

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- steps -----------------------------------------------------------------------------

    def _prepare_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.log_dir.mkdir(exist_ok=True)
            self.artifacts.mkdir(parents=True, exist_ok=True)
            probe = self.artifacts / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise TrackingServerError(f"cannot use --dir {self.directory}: {exc}") from exc
        if self.data_dir.exists() and not (self.data_dir / "PG_VERSION").is_file():
            if any(self.data_dir.iterdir()):
                raise TrackingServerError(
                    f"{self.data_dir} exists but is not a PostgreSQL cluster: choose another "
                    "--dir or empty that folder"
                )
        if (self.data_dir / "PG_VERSION").is_file():
            version = (self.data_dir / "PG_VERSION").read_text().strip()
            if version != PG_VERSION:
                raise TrackingServerError(
                    f"{self.data_dir} holds a PostgreSQL {version} cluster; this command runs "
                    f"PostgreSQL {PG_VERSION}: use another --dir"
                )
            if not self.passfile.is_file():
                raise TrackingServerError(
                    f"{self.data_dir} holds a cluster but {self.passfile} (its passwords) is "
                    "missing: use another --dir"
                )
            running = postgres_pids(self.data_dir)
            if running:
                raise TrackingServerError(
                    f"a PostgreSQL (pid {running[0]}) already runs on {self.data_dir}: another "
                    f"tracking server uses this --dir; stop it (Ctrl-C), or if it is left over, "
                    f"`pg_ctl stop -D {self.data_dir}` as user {PG_SYSTEM_USER}"
                )
        if _as_root():
            try:
                _chown_to_pg(self.directory)
                _chown_to_pg(self.log_dir)
            except (KeyError, OSError) as exc:
                raise TrackingServerError(
                    f"cannot give {self.directory} to the {PG_SYSTEM_USER} user: {exc}"
                ) from exc
            # every parent must be traversable by that user (pytest's tmp dirs are 0700)
            probe_cmd = _pg_command(["test", "-w", str(self.directory)])
            if subprocess.run(probe_cmd, capture_output=True, check=False).returncode != 0:
                raise TrackingServerError(
                    f"the {PG_SYSTEM_USER} user cannot reach {self.directory} (a parent folder "
                    f"is not traversable by others): choose a --dir under e.g. /var/tmp or /srv"
                )

    def _init_cluster(self, pg_bin: Path) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        passwords = {PG_SYSTEM_USER: secrets.token_hex(16), DATABASE: secrets.token_hex(16)}
        pwfile = self.directory / ".initdb-pw"
        pwfile.write_text(passwords[PG_SYSTEM_USER] + "\n")
        pwfile.chmod(0o600)
        _chown_to_pg(pwfile)
        try:
            _run(
                _pg_command([
                    str(pg_bin / "initdb"), "-D", str(self.data_dir), "--username", PG_SYSTEM_USER,
                    "--pwfile", str(pwfile), "--auth-host", "scram-sha-256",
                    "--auth-local", "scram-sha-256", "--encoding", "UTF8", "--locale", "C",
                ]),
                "initdb", cwd=self.directory,
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# mmrl tracking.server: loopback TCP only, no Unix socket\n"
                f"listen_addresses = '{HOST}'\nunix_socket_directories = ''\n"
            )
        self.passfile.write_text(
            "".join(f"{HOST}:*:*:{user}:{pw}\n" for user, pw in passwords.items())
        )
        self.passfile.chmod(0o600)

    def _passwords(self) -> dict[str, str]:
        out = {}
        for line in self.passfile.read_text().splitlines():
            parts = line.split(":")
            if len(parts) == 5:
                out[parts[3]] = parts[4]
        return out

    def _start_postgres(self, pg_bin: Path) -> None:
        log = self.log_dir / "postgres.log"
        for attempt in range(_PG_PORT_ATTEMPTS):
            self.pg_port = free_port()
            self._pg_started = True  # from here on, stop() cleans up even a half start
            done = subprocess.run(
                _pg_command([str(pg_bin / "pg_ctl"), "start", "-D", str(self.data_dir),
                             "-l", str(log), "-w", "-t", str(PG_START_TIMEOUT_S),
                             "-o", f"-p {self.pg_port}"]),
                capture_output=True, text=True, check=False, cwd=self.directory,
            )  # fmt: skip
            if done.returncode == 0:
                return
            self._pg_started = bool(postgres_pids(self.data_dir))
            taken = "Address already in use" in _tail(log)
            if not taken or attempt == _PG_PORT_ATTEMPTS - 1:
                lines = (_tail(log) or done.stderr or done.stdout).strip().splitlines()
                raise TrackingServerError(
                    f"PostgreSQL did not start: {lines[-1] if lines else done.returncode} "
                    f"(log: {log})"
                )

    def _create_database(self) -> None:
        import psycopg2

        passwords = self._passwords()
        admin = psycopg2.connect(
            host=HOST, port=self.pg_port, dbname="postgres", user=PG_SYSTEM_USER,
            password=passwords[PG_SYSTEM_USER], connect_timeout=10,
        )  # fmt: skip
        try:
            admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with admin.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DATABASE,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE ROLE {DATABASE} LOGIN PASSWORD %s", (passwords[DATABASE],))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE DATABASE {DATABASE} OWNER {DATABASE}")
        finally:
            admin.close()

    def _start_mlflow(self) -> None:
        assert self.port is not None
        command = [
            _mlflow_executable(), "server",
            "--backend-store-uri", self.backend_store_uri,
            "--serve-artifacts", "--artifacts-destination", str(self.artifacts),
            "--host", self.host, "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        env["PGPASSFILE"] = str(self.passfile)  # libpq reads the password there
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # no GenAI job workers
        log = self.log_dir / "mlflow.log"
        with log.open("ab") as out:
            self._mlflow = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.directory, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                check_tracking_uri(self.uri, timeout=2.0)
                return
            except TrackingError:
                pass
            if self._mlflow.poll() is not None:
                tail = _tail(log).splitlines()
                raise TrackingServerError(
                    f"mlflow server exited with status {self._mlflow.returncode}: "
                    f"{tail[-1] if tail else 'no output'} (log: {log})"
                )
            if time.monotonic() > deadline:
                raise TrackingServerError(
                    f"mlflow server did not answer {self.uri} within {self.start_timeout:.0f} s "
                    f"(log: {log})"
                )
            time.sleep(0.5)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process group (the server and its uvicorn workers), SIGKILL after a while."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; its workers may still be exiting
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tracking.server",
        description="An MLflow tracking server on PostgreSQL with proxied artifacts.",
    )
    parser.add_argument("--dir", required=True, help="folder for the cluster, logs, artifacts")
    parser.add_argument("--port", type=int, default=None, help="MLflow port (default: free)")
    parser.add_argument("--artifacts", default=None, help="artifact folder (default DIR/artifacts)")
    parser.add_argument("--host", default=HOST, help="MLflow interface (0.0.0.0: all machines)")
    parser.add_argument("--workers", type=int, default=2, help="MLflow worker processes")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    server = TrackingServer(
        args.dir, port=args.port, artifacts=args.artifacts, host=args.host, workers=args.workers
    )
    try:
        print(f"Starting PostgreSQL and MLflow in {server.directory} ...", flush=True)
        server.start()
        print(
            f"MLflow tracking server: {server.uri} (PostgreSQL on {HOST}:{server.pg_port}, "
            f"artifacts in {server.artifacts}, logs in {server.log_dir})\n"
            f"Use it from any command:\n"
            f"  export MLFLOW_TRACKING_URI={server.uri}\n"
            f"  or: --set tracking.uri={server.uri}\n"
            "Ctrl-C stops the server and PostgreSQL.",
            flush=True,
        )
        while server.mlflow_alive():
            time.sleep(1.0)
        print(f"error: mlflow server exited (log: {server.log_dir / 'mlflow.log'})",
              file=sys.stderr)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print("Stopping the MLflow server and PostgreSQL ...", flush=True)
        return 0
    except (TrackingServerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish stopping even if sent again
        server.stop()


if __name__ == "__main__":
    sys.exit(main())

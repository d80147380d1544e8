"""Experiment tracking on MLflow: the only module of the project that imports ``mlflow``.

Everything else calls the API below (docs/architecture.md#tracking):

- :class:`Tracker`, a context manager around one MLflow run (params, namespaced metrics,
  artifacts, tags). It talks to the store through an ``MlflowClient`` with explicit run ids,
  never through MLflow's global "active run", so two trackers never mix.
- :func:`load_run` and :func:`download_artifacts` read a finished run back (for example
  evaluation loading a trained model).
- :func:`resolve_tracking_uri` and :func:`check_tracking_uri` choose the store and check it
  before any work starts, so an unreachable server fails in seconds, not after training.
- :func:`require_run` checks that a run (and an artifact of it) exists before a command that
  reads it starts; :func:`validate_experiment_name` refuses names that would leave the store.

Failure modes (docs/architecture.md#tracking):

- A new SQLite store is created and migrated by one process at a time, under an exclusive
  ``fcntl.flock`` on ``<database>.lock`` beside it (the file is removed when released), so jobs
  started together on a fresh store cannot corrupt it.
- Calls to an HTTP server give up after bounded retries (:data:`HTTP_MAX_RETRIES`,
  :data:`HTTP_TIMEOUT_S`, :data:`HTTP_BACKOFF_FACTOR`, which the user's own
  ``MLFLOW_HTTP_REQUEST_*`` variables override) and raise :class:`TrackingUnavailableError`;
  the :class:`Tracker` then stops contacting the store, so the caller can checkpoint and stop.

Default store: a SQLite database ``<PROJECT_ROOT>/mlflow.db`` with artifacts under
``<PROJECT_ROOT>/mlartifacts/<experiment>``; browse it with the command :func:`ui_command`
returns. Any MLflow tracking server works by URI (config ``tracking.uri`` or the
``MLFLOW_TRACKING_URI`` environment variable).

``mlflow`` takes seconds to import, so it is imported lazily, inside the functions that need it;
``import tracking`` stays cheap.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import http.client
import json
import logging
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root (the parent of the ``tracking/`` folder)."""

DEFAULT_ARTIFACT_ROOT = PROJECT_ROOT / "mlartifacts"
"""Where the default store keeps artifacts, one folder per experiment (gitignored)."""

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"

MAX_PARAM_VALUE_LENGTH = 6000
"""MLflow's limit on a param value (``mlflow.utils.validation.MAX_PARAM_VAL_LENGTH`` in
MLflow 3.17; a test checks they agree). Kept here so :func:`flatten_params` needs no mlflow."""

TRUNCATION_MARKER = "...[truncated]"

# MLflow's per-request batch limits (mlflow.utils.validation: MAX_PARAMS_TAGS_PER_BATCH,
# MAX_METRICS_PER_BATCH).
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000

_GIT_TIMEOUT_S = 10.0
_QUIET_LOGGERS = ("mlflow", "alembic")

HTTP_MAX_RETRIES = 2
"""Retries of a failed HTTP call to a tracking server (MLflow's default, 7 with a backoff
factor of 2, keeps a run waiting for minutes on a dead server)."""
HTTP_BACKOFF_FACTOR = 1
"""Seconds, doubled at each retry after the first (an int: MLflow parses the variable so)."""
HTTP_TIMEOUT_S = 15
"""Seconds to wait for a tracking server to connect or answer, per attempt."""
_HTTP_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(HTTP_MAX_RETRIES),
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(HTTP_BACKOFF_FACTOR),
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(HTTP_TIMEOUT_S),
}
"""Set around our own calls to an HTTP store, unless the user set them."""

STORE_LOCK_TIMEOUT_S = 600.0
"""How long a process waits for another one to finish creating or migrating a SQLite store."""

EXPERIMENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_. -]{0,99}")
"""Allowed experiment names: they become folder names under the artifact root."""

logger = logging.getLogger(__name__)


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable server, unwritable folder, rejected call)."""


class TrackingUnavailableError(TrackingError):
    """The tracking store stopped answering (server down, network gone) after bounded retries.

    Raised by every :class:`Tracker` call once the store is unreachable; the tracker then makes
    no further calls (the run stays RUNNING in the store), so the caller can save its state
    locally and stop, telling the user how to resume once the store answers again.

    :param tracking_uri: the store (passwords redacted).
    :param action: the call that failed, e.g. ``"log_metrics"``.
    :param run_id: the run being logged, None outside a run.
    """

    def __init__(
        self, message: str, *, tracking_uri: str, action: str, run_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.tracking_uri = tracking_uri
        self.action = action
        self.run_id = run_id


class TrackingUsageError(TrackingError, ValueError):
    """A request the store refuses because of its arguments, not the store's state (a run to
    resume that belongs to another experiment). Also a ``ValueError``."""


class ExperimentNameError(TrackingUsageError):
    """An experiment name that is not allowed (see :func:`validate_experiment_name`)."""


# --------------------------------------------------------------------------------------------
# Store selection and preflight
# --------------------------------------------------------------------------------------------


def default_tracking_uri() -> str:
    """The project's local store: ``sqlite:///<PROJECT_ROOT>/mlflow.db`` (absolute path)."""
    return f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def resolve_tracking_uri(configured: str | None) -> str:
    """Choose the tracking URI: ``configured`` if given, else ``$MLFLOW_TRACKING_URI``, else
    :func:`default_tracking_uri`.

    :param configured: the URI from the experiment config (``tracking.uri``), or None.
    """
    if configured:
        return configured
    from_env = os.environ.get(TRACKING_URI_ENV, "").strip()
    if from_env:
        return from_env
    return default_tracking_uri()


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Preflight a tracking store; call it at the start of a run, before any work.

    - ``http(s)``: GET ``<uri>/health``, then one call of the MLflow REST API (a server that
      answers ``/health`` but not the API, e.g. behind a wrong proxy path, is refused), each
      with ``timeout`` seconds.
    - ``sqlite``: the database's folder exists (created if missing) and is writable, and so is
      the artifact folder beside it (``mlartifacts/``, or the nearest existing parent).
    - ``file:`` or a plain path: the store folder exists (created if missing) and is writable.
    - anything else (``postgresql``, ``databricks``, ...): MLflow opens the store and lists one
      experiment.

    :param uri: a tracking URI, as from :func:`resolve_tracking_uri`.
    :param timeout: seconds to wait for an HTTP server.
    :raises TrackingError: the message names the URI, the underlying error and the fixes.
    """
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        _check_http(uri, timeout)
    elif scheme == "sqlite":
        path = _sqlite_path(uri)
        if path is not None:  # None: in-memory database, nothing to check
            _check_writable_dir(uri, path.parent)
            if path.exists() and not os.access(path, os.W_OK):
                raise TrackingError(_fix_message(uri, f"the database {path} is not writable"))
            _check_artifact_folder(uri, path.parent / "mlartifacts")
    elif scheme == "file" or (scheme == "" and uri):
        _check_writable_dir(uri, _file_store_path(uri))
        # MLflow 3.17 refuses file stores unless MLFLOW_ALLOW_FILE_STORE=true: fail here, early.
        _check_store_opens(uri, probe=False)
    else:
        _check_store_opens(uri, probe=True)


def _check_store_opens(uri: str, probe: bool) -> None:
    """Let MLflow open the store (and list one experiment if ``probe``); wrap its errors."""
    try:
        client = _client(uri)
        if probe:
            client.search_experiments(max_results=1)
    except Exception as exc:  # whatever the store or plugin raises: report it with the fixes
        raise TrackingError(_fix_message(uri, f"{type(exc).__name__}: {exc}")) from exc


def _check_http(uri: str, timeout: float) -> None:
    health = uri.rstrip("/") + "/health"
    request = urllib.request.Request(health, method="GET")
    for header, value in _auth_headers().items():
        request.add_header(header, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise TrackingError(
            _fix_message(uri, f"GET {health} returned HTTP {exc.code} {exc.reason}")
        ) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        # refused, DNS, timeout, not HTTP on that port, malformed URL
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise TrackingError(_fix_message(uri, f"GET {health} failed: {reason!r}")) from exc
    if not 200 <= status < 300:
        raise TrackingError(_fix_message(uri, f"GET {health} returned HTTP {status}"))
    _check_http_api(uri, timeout)


def _check_http_api(uri: str, timeout: float) -> None:
    """One read of the REST API (search one experiment): the server must answer it in JSON."""
    api = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    request = urllib.request.Request(api, method="GET")
    for header, value in _auth_headers().items():
        request.add_header(header, value)
    problem = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(1_000_000)
        if not isinstance(json.loads(body or b"null"), dict):
            problem = f"GET {api} answered, but not with MLflow's JSON"
    except urllib.error.HTTPError as exc:
        problem = f"GET {api} returned HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        problem = f"GET {api} failed: {reason!r}"
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError
        problem = f"GET {api} answered, but not with MLflow's JSON"
    if problem is not None:
        raise TrackingError(
            _fix_message(uri, f"the server answers /health but not the MLflow API: {problem}")
        )


def _auth_headers() -> dict[str, str]:
    """The credentials MLflow itself would send (basic auth or bearer token), if configured."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user and password:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    if token:
        return {"Authorization": f"Bearer {token}"}
    return {}


def _check_writable_dir(uri: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(_fix_message(uri, f"cannot create {folder}: {exc}")) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TrackingError(_fix_message(uri, f"the folder {folder} is not writable"))


def _check_artifact_folder(uri: str, folder: Path) -> None:
    """``folder`` (where artifacts will go) can be created and written: it, or its nearest
    existing parent, is a folder in which a file can be created. Nothing is left behind."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: creating the folder would fail
            break
        existing = existing.parent
    if not existing.is_dir():
        problem = f"the artifact folder {folder} cannot be created: {existing} is not a folder"
        raise TrackingError(_fix_message(uri, problem))
    try:
        handle, probe = tempfile.mkstemp(prefix=".mmrl-write-probe-", dir=existing)
    except OSError as exc:
        where = "" if existing == folder else f" (its parent {existing})"
        problem = f"the artifact folder {folder}{where} is not writable: {exc.strerror}"
        raise TrackingError(_fix_message(uri, problem)) from exc
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _redact(uri: str) -> str:
    """The URI with any password replaced by ``***`` (it goes into error messages and logs)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _fix_message(uri: str, problem: str) -> str:
    env = os.environ.get(TRACKING_URI_ENV)
    env_state = f"currently {_redact(env)!r}" if env else "currently unset"
    lines = [
        f"MLflow tracking store {_redact(uri)!r} is not usable: {problem.rstrip('.')}.",
        "Fix one of:",
    ]
    if urllib.parse.urlsplit(uri).scheme.lower() in ("http", "https"):
        port = urllib.parse.urlsplit(uri).port or 5000
        lines.append(f"  - start the server, e.g. `mlflow server --host 127.0.0.1 --port {port}`;")
    lines += [
        f"  - point to another store with `tracking.uri` in the experiment config or the "
        f"{TRACKING_URI_ENV} environment variable ({env_state});",
        f"  - unset both to use the local store {default_tracking_uri()}.",
    ]
    return "\n".join(lines)


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI (``sqlite:///rel.db``, ``sqlite:////abs.db``)."""
    rest = uri[len("sqlite:") :].split("?", 1)[0]
    if not rest.startswith("///"):  # "sqlite://" is SQLAlchemy's in-memory database
        return None
    path = urllib.parse.unquote(rest[3:])
    if path in ("", ":memory:"):
        return None
    return Path(path).resolve()


def _file_store_path(uri: str) -> Path:
    if uri.lower().startswith("file:"):
        parts = urllib.parse.urlsplit(uri)
        return Path(urllib.request.url2pathname(parts.path)).resolve()
    return Path(uri).resolve()


def validate_experiment_name(name: str) -> str:
    """Check that ``name`` can name an experiment (and its artifact folder); return it.

    Allowed: 1 to 100 characters, letters, digits, ``_``, ``-``, ``.`` and spaces, starting
    with a letter or digit, without ``..``. Names with ``/`` or ``..`` would put the artifacts
    of a local store outside it (``../escaped``).

    :raises ExperimentNameError: saying what is allowed.
    """
    if (
        not isinstance(name, str)
        or not EXPERIMENT_NAME_PATTERN.fullmatch(name)
        or ".." in name
        or name != name.strip()
    ):
        raise ExperimentNameError(
            f"experiment name {name!r} is not allowed: use 1 to 100 letters, digits, '_', '-', "
            "'.' or spaces, starting with a letter or digit, without '..' (it names a folder "
            "of the store)"
        )
    return name


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment's artifacts go; None lets the store (or server) choose.

    For a SQLite store MLflow's default is ``./mlruns`` relative to the current directory,
    so artifacts would scatter with where a script is run from. Keep them beside the database
    instead: ``<db folder>/mlartifacts/<experiment>``, which for the default store is
    ``<PROJECT_ROOT>/mlartifacts/<experiment>`` (and ``mlflow ui`` serves it).
    """
    if urllib.parse.urlsplit(uri).scheme.lower() != "sqlite":
        return None
    path = _sqlite_path(uri)
    if path is None:
        return None
    return (path.parent / "mlartifacts" / experiment).as_uri()


# --------------------------------------------------------------------------------------------
# Params, git, UI command
# --------------------------------------------------------------------------------------------


def flatten_params(nested: Mapping[Any, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested config into MLflow params.

    Keys are dotted paths (``market.sigma``), list items are indexed (``policies.0.kind``),
    values are ``str(value)`` (None becomes ``"None"``; an empty dict or list becomes ``"{}"``
    or ``"[]"``), and values longer than MLflow's limit (:data:`MAX_PARAM_VALUE_LENGTH`) are
    cut to the limit, ending in :data:`TRUNCATION_MARKER`. Pydantic models are dumped first.

    :param nested: a mapping of str keys to scalars, mappings, lists or tuples.
    :param prefix: prepended to every key (``prefix.key``).
    :raises ValueError: two paths flatten to the same key (``{"a.b": 1, "a": {"b": 2}}``).
    """
    out: dict[str, str] = {}
    _flatten_into(out, _plain(nested), prefix)
    return out


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic v2 models
    return dump(mode="json") if callable(dump) else value


def _flatten_into(out: dict[str, str], value: Any, key: str) -> None:
    value = _plain(value)
    if isinstance(value, Mapping):
        children: Iterator[tuple[Any, Any]] = iter(value.items())
        empty = "{}"
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        children = iter(enumerate(value))
        empty = "[]"
    else:
        if key in out:
            raise ValueError(f"two config entries flatten to the same param key {key!r}")
        out[key] = _param_value(value)
        return
    has_children = False
    for child_key, child in children:
        has_children = True
        _flatten_into(out, child, f"{key}.{child_key}" if key else str(child_key))
    if not has_children and key:
        if key in out:
            raise ValueError(f"two config entries flatten to the same param key {key!r}")
        out[key] = empty


def _param_value(value: Any) -> str:
    text = str(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        text = text[: MAX_PARAM_VALUE_LENGTH - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER
    return text


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # git missing or hung
        return None
    return done.stdout if done.returncode == 0 else None


def git_commit() -> str | None:
    """The HEAD commit of :data:`PROJECT_ROOT`; None if not a repository, no commit, or no git."""
    out = _git("rev-parse", "HEAD")
    if out is None or not out.strip():
        return None
    return out.strip()


def git_dirty() -> bool:
    """True if the working tree has uncommitted changes (untracked files count)."""
    out = _git("status", "--porcelain")
    return bool(out and out.strip())


def _mlflow_executable() -> str:
    candidate = Path(sys.executable).parent / "mlflow"
    return str(candidate) if candidate.exists() else "mlflow"


def ui_command(uri: str | None = None, port: int = 5000) -> str:
    """The shell command that opens the tracking UI for ``uri`` (resolved as for a run).

    For a local store (SQLite or file) that is ``mlflow ui --backend-store-uri ...``; an HTTP
    server already serves its UI, so the command opens it in a browser.
    """
    resolved = resolve_tracking_uri(uri)
    if urllib.parse.urlsplit(resolved).scheme.lower() in ("http", "https"):
        return shlex.join([sys.executable, "-m", "webbrowser", resolved])
    return shlex.join(
        [_mlflow_executable(), "ui", "--backend-store-uri", resolved, "--port", str(port)]
    )


# --------------------------------------------------------------------------------------------
# MLflow access (lazy import)
# --------------------------------------------------------------------------------------------


def _mlflow() -> ModuleType:
    """Import mlflow on first use and quiet its loggers.

    mlflow configures its own loggers when imported, so the levels are raised after import.
    """
    import mlflow

    for name in _QUIET_LOGGERS:
        log = logging.getLogger(name)
        if log.getEffectiveLevel() < logging.WARNING:
            log.setLevel(logging.WARNING)
    return mlflow


_OPENED_STORES: set[str] = set()
"""URIs whose store this process has opened (MLflow caches the store object per URI)."""
_OPENING = threading.Lock()


def _client(uri: str) -> MlflowClient:
    """A client of ``uri``. The first one of a SQLite store in this process is made under the
    store's file lock, because opening the store creates or migrates its tables
    (:func:`_store_lock`)."""
    mlflow = _mlflow()
    if uri in _OPENED_STORES:
        return mlflow.MlflowClient(tracking_uri=uri)
    with _OPENING, _store_lock(uri):
        try:
            client = mlflow.MlflowClient(tracking_uri=uri)
        except Exception as exc:
            if "_alembic_tmp_" in str(exc):
                raise TrackingError(_half_migrated_message(uri, exc)) from exc
            raise
        _OPENED_STORES.add(uri)
    return client


def _half_migrated_message(uri: str, exc: Exception) -> str:
    table = re.search(r"_alembic_tmp_\w+", str(exc))
    return (
        f"MLflow tracking store {_redact(uri)!r} was left half-migrated by an interrupted "
        f"schema migration (leftover table {table.group(0) if table else '_alembic_tmp_*'}; "
        "two jobs creating a new store at once did this before mmrl locked the creation). "
        "Copy the database aside, then either delete it (a new one is created on the next "
        "run) or repair it with `mlflow db upgrade URI` after dropping that table with sqlite3."
    )


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.lock`` for a SQLite file store (no-op for others).

    MLflow creates a new store's tables and runs its alembic migrations on first open, with no
    lock of its own: two processes doing it at once corrupt the database for good (``table
    _alembic_tmp_tags already exists``). Everything that opens the store through this module
    takes this lock first; the first holder creates and migrates, the others then find the
    tables at the head revision.
    """
    path = _sqlite_path(uri) if urllib.parse.urlsplit(uri).scheme.lower() == "sqlite" else None
    if path is None:
        yield
        return
    with _exclusive_file_lock(path.with_name(path.name + ".lock"), STORE_LOCK_TIMEOUT_S):
        yield


@contextlib.contextmanager
def _exclusive_file_lock(path: Path, timeout: float) -> Iterator[None]:
    """``fcntl.flock`` on ``path``, created if missing and removed on release.

    Removing a lock file is safe only if a waiter that locked the removed file notices it: after
    locking, the holder checks that ``path`` still names the file it locked, else it retries.

    :raises TrackingError: the lock is still held by another process after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TrackingError(
                            f"another process has held {path} for over {timeout:.0f} s while "
                            "creating or migrating the tracking store; if no such process is "
                            "running, delete the file"
                        ) from None
                    time.sleep(0.05)
            held = os.fstat(fd)
            try:
                named = os.stat(path)
                same = (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)  # the previous holder removed the file we locked: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


# MLflow prints "View run ... at" lines (remote runs) and tqdm bars (artifact downloads);
# these variables, set only around our own calls, keep the console readable.
_QUIET_ENV = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def _is_http(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).scheme.lower() in ("http", "https")


@contextlib.contextmanager
def _store_call(uri: str, action: str, run_id: str | None = None) -> Iterator[None]:
    """Run MLflow calls quietly and re-raise MLflow's errors as TrackingError (so callers need
    not import mlflow). On an HTTP store the retries are bounded (:data:`HTTP_MAX_RETRIES`...)
    and a server that stops answering raises :class:`TrackingUnavailableError`. A user's own
    setting of any of these variables wins."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    env = _QUIET_ENV | (_HTTP_ENV if _is_http(uri) else {})
    saved = {name: os.environ.get(name) for name in env}
    for name, value in env.items():
        if saved[name] is None:
            os.environ[name] = value
    try:
        yield
    except (MlflowException, RequestException) as exc:
        reason = _unreachable_reason(exc) if _is_http(uri) else None
        if reason is not None:
            raise TrackingUnavailableError(
                _unavailable_message(uri, action, reason, run_id),
                tracking_uri=_redact(uri),
                action=action,
                run_id=run_id,
            ) from exc
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        where = _redact(uri)
        raise TrackingError(f"{action} failed on tracking store {where!r}: {message}") from exc
    finally:
        for name, before in saved.items():
            if before is None:
                os.environ.pop(name, None)


def _unreachable_reason(exc: BaseException) -> str | None:
    """Why a call could not reach the server (refused, timed out, retries exhausted on 5xx),
    in a few words; None when the server answered (the call was rejected)."""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import RetryError, Timeout

    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, RetryError):
            return "it kept answering with server errors"
        if isinstance(node, Timeout | RequestsConnectionError | ConnectionError):
            return _connection_failure(str(node))
        node = node.__cause__ or node.__context__
    text = str(exc)
    if "API request to" in text and ("Max retries exceeded" in text or "timed out" in text.lower()):
        return _connection_failure(text)
    return None


def _connection_failure(text: str) -> str:
    """``[Errno 111] Connection refused``, ``no answer within 15 s`` or ``connection failed``,
    from the text of a requests or urllib3 error."""
    if "timed out" in text.lower():  # read timeouts end as ConnectionError after the retries
        return f"no answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
    errno = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    return errno.group(0) if errno else "connection failed"


def _unavailable_message(uri: str, action: str, reason: str, run_id: str | None) -> str:
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(HTTP_MAX_RETRIES))
    timeout = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", str(HTTP_TIMEOUT_S))
    message = (
        f"tracking server {_redact(uri)!r} stopped answering during {action} ({reason}; gave up "
        f"after {retries} retries, {timeout} s timeout per attempt)."
    )
    if run_id is not None:
        message += f" Run {run_id} is left RUNNING in the store."
    return message


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_metric_key(key: str) -> None:
    parts = key.split("/")
    if len(parts) < 2 or not all(parts):
        raise ValueError(
            f"metric key {key!r} is not namespaced: use 'train/<name>', 'eval/<policy>/<name>' "
            "or 'stress/<scenario>/<policy>/<name>' (docs/architecture.md#tracking)"
        )


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------------------------
# Tracker
# --------------------------------------------------------------------------------------------


class Tracker:
    """One MLflow run, as a context manager.

    The constructor resolves the tracking URI and preflights it (:func:`check_tracking_uri`),
    so an unreachable server fails before any work. ``__enter__`` creates the experiment if
    missing, starts the run (or resumes ``run_id``) and tags it with the git commit, the dirty
    flag and ``tags``. ``__exit__`` ends the run FINISHED, FAILED on an exception or KILLED on
    KeyboardInterrupt, and never swallows the exception.

    Example::

        with Tracker(experiment="as2008", run_name="demo", tags={"seed": 0}) as run:
            run.log_params(config.model_dump())
            run.log_metrics({"eval/glft/pnl_mean": 1.0}, step=0)

    :param experiment: the MLflow experiment name (one per config name).
    :param run_name: the run's display name; MLflow picks one if None.
    :param tracking_uri: the store; None resolves as :func:`resolve_tracking_uri`.
    :param tags: extra run tags (values are converted to str), e.g. the seed.
    :param run_id: resume this run instead of starting one; it must exist and belong to
        ``experiment`` (checked here, before the run is touched).
    :param timeout: seconds for the HTTP preflight.
    :raises ExperimentNameError: ``experiment`` is not an allowed name.
    :raises TrackingError: the store is unusable, or ``run_id`` does not exist.
    :raises TrackingUsageError: ``run_id`` belongs to another experiment.

    When an HTTP store stops answering, the failing call raises
    :class:`TrackingUnavailableError` after bounded retries; every later call raises it again
    at once, and the exit leaves the run RUNNING without contacting the store. Set
    :attr:`resume_command` to have that error name the command that continues the run.
    """

    resume_command: str | None = None
    """The command that continues this run, named by :class:`TrackingUnavailableError`."""

    def __init__(
        self,
        experiment: str,
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        validate_experiment_name(experiment)
        self.experiment = experiment
        self.run_name = run_name
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self._tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self._resume_id = run_id
        check_tracking_uri(self.tracking_uri, timeout=timeout)
        self._client: MlflowClient | None = None
        self._run_id: str | None = None
        self._experiment_id: str | None = None
        self._artifact_uri: str | None = None
        self._finished = False
        self._unavailable: TrackingUnavailableError | None = None
        if run_id is not None:
            self._check_resumable(run_id)

    def _check_resumable(self, run_id: str) -> None:
        """The run to resume exists and belongs to this experiment (before anything changes)."""
        record = require_run(run_id, self.tracking_uri)
        with _store_call(self.tracking_uri, f"looking up experiment {self.experiment!r}"):
            found = _client(self.tracking_uri).get_experiment_by_name(self.experiment)
        if found is None or str(found.experiment_id) != record.experiment_id:
            raise TrackingUsageError(
                f"cannot resume run {run_id}: it belongs to experiment id "
                f"{record.experiment_id}, not to {self.experiment!r}"
                + ("" if found is None else f" (id {found.experiment_id})")
            )

    @contextlib.contextmanager
    def _call(self, action: str) -> Iterator[None]:
        """A store call of this run: errors as in :func:`_store_call`; once the store is
        unreachable, no further call is made and each raises that error at once."""
        if self._unavailable is not None:
            down = self._unavailable
            raise TrackingUnavailableError(
                f"{action} not attempted: {down}",
                tracking_uri=down.tracking_uri,
                action=action,
                run_id=self._run_id,
            )
        try:
            with _store_call(self.tracking_uri, action, run_id=self._run_id):
                yield
        except TrackingUnavailableError as exc:
            if self.resume_command:
                exc.args = (f"{exc} Resume it, once the server answers, with: "
                            f"{self.resume_command}",)  # fmt: skip
            self._unavailable = exc
            raise

    @property
    def store_unavailable(self) -> TrackingUnavailableError | None:
        """The error that made the store unreachable during this run, else None."""
        return self._unavailable

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Tracker:
        if self._run_id is not None:
            raise RuntimeError("a Tracker runs once; create a new one for another run")
        with _store_call(self.tracking_uri, f"starting a run in experiment {self.experiment!r}"):
            client = _client(self.tracking_uri)
            self._client = client
            self._experiment_id = self._get_or_create_experiment(client)
            self._check_artifact_location(client, self._experiment_id)
            if self._resume_id is None:
                run = client.create_run(self._experiment_id, run_name=self.run_name)
            else:
                run = client.get_run(self._resume_id)
                if run.info.experiment_id != self._experiment_id:
                    raise ValueError(
                        f"run {self._resume_id} belongs to experiment id "
                        f"{run.info.experiment_id}, not {self.experiment!r} "
                        f"(id {self._experiment_id})"
                    )
                client.update_run(self._resume_id, status="RUNNING")
            self._run_id = run.info.run_id
            self._artifact_uri = run.info.artifact_uri
        commit = git_commit()
        tags = {"mmrl.git_commit": commit or "unknown", "mmrl.git_dirty": str(git_dirty())}
        if commit:
            tags["mlflow.source.git.commit"] = commit  # shown by the MLflow UI
        if sys.argv and sys.argv[0]:
            tags["mlflow.source.name"] = Path(sys.argv[0]).name  # the script, for the UI
        try:
            self.set_tags({**tags, **self._tags})
        except BaseException:
            with contextlib.suppress(Exception):  # keep the tagging error, not this one
                self._terminate("FAILED")
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        elif issubclass(exc_type, SystemExit) and getattr(exc, "code", 1) in (0, None):
            status = "FINISHED"
        else:
            status = "FAILED"
        if exc is not None and status != "FINISHED" and self._unavailable is None:
            with contextlib.suppress(Exception):  # best effort: the body's error matters more
                self.set_tags({"mmrl.error": f"{type(exc).__name__}: {exc}"[:1000]})
        if self._unavailable is not None:  # the store is gone: the run stays RUNNING there
            logger.info("run %s left RUNNING: %s", self._run_id, self._unavailable)
            return
        try:
            self._terminate(status)
        except Exception:
            if exc is None:
                raise
            logger.exception("could not mark run %s %s", self._run_id, status)
        # Returning None never swallows the body's exception.

    def _terminate(self, status: str) -> None:
        if self._finished or self._run_id is None:
            return
        client = self._require_client()
        with self._call(f"ending run {self._run_id}"):
            client.set_terminated(self._run_id, status=status)
        self._finished = True

    def _check_artifact_location(self, client: MlflowClient, experiment_id: str) -> None:
        """A local artifact folder of the experiment can be written (before the run starts)."""
        location = client.get_experiment(experiment_id).artifact_location or ""
        parts = urllib.parse.urlsplit(location)
        if parts.scheme.lower() == "file":
            folder = Path(urllib.request.url2pathname(parts.path))
        elif parts.scheme == "" and location:
            folder = Path(location)
        else:  # a server's proxied artifacts or a cloud bucket: the server checks
            return
        _check_artifact_folder(self.tracking_uri, folder)

    def _get_or_create_experiment(self, client: MlflowClient) -> str:
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return str(
                    client.create_experiment(
                        self.experiment,
                        artifact_location=_artifact_location(self.tracking_uri, self.experiment),
                    )
                )
            except MlflowException as exc:
                # Another process may have created it between the lookup and the create.
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise exc from None
        if found.lifecycle_stage != "active":
            raise TrackingError(
                f"experiment {self.experiment!r} is deleted in {_redact(self.tracking_uri)!r}; "
                "restore it (`mlflow experiments restore`) or purge it (`mlflow gc`) first"
            )
        return str(found.experiment_id)

    # -- run identity ------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        """The MLflow run id (available inside the ``with`` block)."""
        self._require_client()
        assert self._run_id is not None
        return self._run_id

    @property
    def experiment_id(self) -> str:
        self._require_client()
        assert self._experiment_id is not None
        return self._experiment_id

    @property
    def artifact_uri(self) -> str:
        """Where the run's artifacts live (``file://...`` locally, ``mlflow-artifacts:/...``
        on a server with proxied artifacts)."""
        self._require_client()
        assert self._artifact_uri is not None
        return self._artifact_uri

    @property
    def run_url(self) -> str | None:
        """The run's page on an HTTP tracking server; None for a local store."""
        if urllib.parse.urlsplit(self.tracking_uri).scheme.lower() not in ("http", "https"):
            return None
        base = self.tracking_uri.rstrip("/")
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def _require_client(self) -> MlflowClient:
        if self._client is None or self._run_id is None:
            raise RuntimeError("use the Tracker inside a `with` block")
        return self._client

    # -- logging -----------------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
        """Log a (nested) config as params via :func:`flatten_params`; returns what was logged.

        MLflow params are write-once: logging a key again with another value raises
        :class:`TrackingError`.
        """
        from mlflow.entities import Param

        client = self._require_client()
        flat = flatten_params(params, prefix)
        entries = [Param(key, value) for key, value in flat.items()]
        with self._call("log_params"):
            for chunk in _chunks(entries, _PARAMS_PER_BATCH):
                client.log_batch(self.run_id, params=chunk)
        return flat

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log many metrics at one step, in batches. Keys must be namespaced (``train/loss``,
        ``eval/<policy>/pnl_mean``, ``stress/<scenario>/<policy>/...``). NaN and inf values
        are logged as they are.

        :raises ValueError: a key without a namespace.
        """
        from mlflow.entities import Metric

        client = self._require_client()
        for key in metrics:
            _check_metric_key(key)
        timestamp = _now_ms()
        entries = [
            Metric(key, _metric_value(key, value), timestamp, int(step))
            for key, value in metrics.items()
        ]
        with self._call("log_metrics"):
            for chunk in _chunks(entries, _METRICS_PER_BATCH):
                client.log_batch(self.run_id, metrics=chunk)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Log one namespaced metric (see :meth:`log_metrics`)."""
        self.log_metrics({key: value}, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags; values are converted to str."""
        from mlflow.entities import RunTag

        client = self._require_client()
        entries = [RunTag(str(key), str(value)) for key, value in tags.items()]
        with self._call("set_tags"):
            for chunk in _chunks(entries, _PARAMS_PER_BATCH):
                client.log_batch(self.run_id, tags=chunk)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a local file into the run's artifacts, under ``artifact_path`` if given."""
        client = self._require_client()
        with self._call(f"log_artifact {local_path}"):
            client.log_artifact(self.run_id, os.fspath(local_path), artifact_path)

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Copy a local folder's contents (e.g. a SavedModel) into the run's artifacts."""
        client = self._require_client()
        with self._call(f"log_artifacts {local_dir}"):
            client.log_artifacts(self.run_id, os.fspath(local_dir), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Save ``text`` as the artifact ``artifact_file`` (e.g. ``config/resolved.yaml``)."""
        client = self._require_client()
        with self._call(f"log_text {artifact_file}"):
            client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Save a dict as JSON or YAML (chosen by the ``artifact_file`` extension)."""
        client = self._require_client()
        with self._call(f"log_dict {artifact_file}"):
            client.log_dict(self.run_id, dict(dictionary), artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib (or plotly) figure as ``artifact_file`` (e.g. ``figures/a.png``).
        The figure stays open; the caller closes it."""
        client = self._require_client()
        with self._call(f"log_figure {artifact_file}"):
            client.log_figure(self.run_id, figure, artifact_file)


def _metric_value(key: str, value: Any) -> float:
    if isinstance(value, str | bytes):
        raise TypeError(f"metric {key!r} must be a number, got {value!r}")
    result = float(value)
    if math.isnan(result):
        return math.nan  # one canonical NaN (numpy NaNs may carry a sign or payload)
    return result


# --------------------------------------------------------------------------------------------
# Reading runs back
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """A finished (or running) run as read back from the store.

    ``metrics`` holds the latest value of each metric; ``tags`` include MLflow's own
    (``mlflow.runName``, ...).
    """

    run_id: str
    experiment_id: str
    run_name: str
    status: str
    artifact_uri: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def load_run(run_id: str, tracking_uri: str | None = None) -> RunRecord:
    """Read a run's params, latest metrics, tags and artifact URI.

    :param tracking_uri: the store; None resolves as :func:`resolve_tracking_uri`.
    :raises TrackingError: the store is unusable or the run does not exist.
    """
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    with _run_lookup(uri, run_id), _store_call(uri, f"load_run {run_id}"):
        run = _client(uri).get_run(run_id)
    return RunRecord(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        run_name=run.info.run_name or "",
        status=run.info.status,
        artifact_uri=run.info.artifact_uri,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
    )


@contextlib.contextmanager
def _run_lookup(uri: str, run_id: str) -> Iterator[None]:
    """Turn the store's "not found" for ``run_id`` into one clear line."""
    try:
        yield
    except TrackingError as exc:
        cause = exc.__cause__
        if getattr(cause, "error_code", None) == "RESOURCE_DOES_NOT_EXIST" or (
            cause is not None and "not found" in str(cause).lower()
        ):
            raise TrackingError(
                f"no run {run_id!r} in tracking store {_redact(uri)!r} (run ids are the 32 hex "
                "digits a command prints; the MLflow UI lists them)"
            ) from None
        raise


def require_run(
    run_id: str, tracking_uri: str | None = None, artifact: str | None = None
) -> RunRecord:
    """The run ``run_id``, checked to exist (and to hold ``artifact``) before a command that
    reads it starts any work.

    :param artifact: an artifact path the run must have, e.g. ``"model/sac_policy"``.
    :raises TrackingError: one line naming the run, the store and what is missing.
    """
    if not run_id or not run_id.strip():
        raise TrackingError("the run id is empty")
    record = load_run(run_id, tracking_uri)
    if artifact:
        uri = resolve_tracking_uri(tracking_uri)
        parent = artifact.rstrip("/").rpartition("/")[0]
        with _store_call(uri, f"list_artifacts {run_id}:{parent or '.'}"):
            listed = _client(uri).list_artifacts(run_id, parent or None)
        if not any(item.path.rstrip("/") == artifact.rstrip("/") for item in listed):
            raise TrackingError(
                f"run {run_id} in {_redact(uri)!r} has no artifact {artifact!r} (status "
                f"{record.status}, job {record.tags.get('mmrl.job', 'unknown')})"
            )
    return record


def download_artifacts(
    run_id: str,
    path: str,
    dst: str | os.PathLike[str],
    tracking_uri: str | None = None,
) -> Path:
    """Download the artifact file or folder ``path`` of a run into ``dst`` (created if missing).

    :param path: the artifact path inside the run (``"model"``, ``"reports/summary.md"``);
        ``""`` downloads everything.
    :returns: the local path of the downloaded file or folder.
    :raises TrackingError: the store is unusable, or the run or artifact does not exist.
    """
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    dst_dir = Path(dst)
    dst_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _store_call(uri, f"download_artifacts {run_id}:{path}"):
            local = _client(uri).download_artifacts(run_id, path, os.fspath(dst_dir))
    except OSError as exc:  # some artifact repositories raise plain OSErrors
        raise TrackingError(
            f"download_artifacts {run_id}:{path} from {_redact(uri)!r}: {exc}"
        ) from exc
    return Path(local)


def metric_history(
    run_id: str, key: str, tracking_uri: str | None = None
) -> list[tuple[int, float]]:
    """Every logged value of metric ``key`` of a run, as ``(step, value)`` sorted by step.

    :raises TrackingError: the store is unusable or the run does not exist.
    """
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    with _store_call(uri, f"metric_history {run_id}:{key}"):
        history = _client(uri).get_metric_history(run_id, key)
    return sorted((int(m.step), float(m.value)) for m in history)

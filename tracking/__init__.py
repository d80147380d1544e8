"""Experiment tracking: the only package of the project that imports MLflow.

See docs/architecture.md#tracking.

``import tracking`` is cheap; MLflow is imported on first use.
"""

from tracking.server import TrackingServer, TrackingServerError
from tracking.store import (
    DEFAULT_ARTIFACT_ROOT,
    HTTP_BACKOFF_FACTOR,
    HTTP_MAX_RETRIES,
    HTTP_TIMEOUT_S,
    MAX_PARAM_VALUE_LENGTH,
    PROJECT_ROOT,
    TRUNCATION_MARKER,
    ExperimentNameError,
    RunRecord,
    Tracker,
    TrackingError,
    TrackingUnavailableError,
    TrackingUsageError,
    check_tracking_uri,
    default_tracking_uri,
    download_artifacts,
    flatten_params,
    git_commit,
    git_dirty,
    load_run,
    metric_history,
    require_run,
    resolve_tracking_uri,
    ui_command,
    validate_experiment_name,
)

__all__ = [
    "DEFAULT_ARTIFACT_ROOT",
    "HTTP_BACKOFF_FACTOR",
    "HTTP_MAX_RETRIES",
    "HTTP_TIMEOUT_S",
    "MAX_PARAM_VALUE_LENGTH",
    "PROJECT_ROOT",
    "TRUNCATION_MARKER",
    "ExperimentNameError",
    "RunRecord",
    "Tracker",
    "TrackingError",
    "TrackingServer",
    "TrackingServerError",
    "TrackingUnavailableError",
    "TrackingUsageError",
    "check_tracking_uri",
    "default_tracking_uri",
    "download_artifacts",
    "flatten_params",
    "git_commit",
    "git_dirty",
    "load_run",
    "metric_history",
    "require_run",
    "resolve_tracking_uri",
    "ui_command",
    "validate_experiment_name",
]

"""Experiment tracking: the only package of the project that imports MLflow.

See docs/architecture.md#tracking.

``import tracking`` is cheap; MLflow is imported on first use.
"""

from tracking.store import (
    DEFAULT_ARTIFACT_ROOT,
    MAX_PARAM_VALUE_LENGTH,
    PROJECT_ROOT,
    TRUNCATION_MARKER,
    RunRecord,
    Tracker,
    TrackingError,
    check_tracking_uri,
    default_tracking_uri,
    download_artifacts,
    flatten_params,
    git_commit,
    git_dirty,
    load_run,
    metric_history,
    resolve_tracking_uri,
    ui_command,
)

__all__ = [
    "DEFAULT_ARTIFACT_ROOT",
    "MAX_PARAM_VALUE_LENGTH",
    "PROJECT_ROOT",
    "TRUNCATION_MARKER",
    "RunRecord",
    "Tracker",
    "TrackingError",
    "check_tracking_uri",
    "default_tracking_uri",
    "download_artifacts",
    "flatten_params",
    "git_commit",
    "git_dirty",
    "load_run",
    "metric_history",
    "resolve_tracking_uri",
    "ui_command",
]

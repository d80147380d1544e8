"""Loading experiment configs: YAML file + ``--set key.path=value`` overrides -> validated model.

The only module that reads YAML (docs/architecture.md#packages-and-imports). Every error names
the file and the key path, e.g. ``configs/demo.yaml: market.sigma: Input should be greater than or
equal to 0``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from configs.schema import AnalyticMarketConfig, ExperimentConfig, LOBMarketConfig
from data.samples import data_dir, data_file
from envs.analytic import AnalyticMarketVectorEnv
from envs.batched import BatchedMarketEnv
from envs.lob.env import LOBMarketVectorEnv
from envs.replay.config import ReplayMarketConfig
from envs.replay.env import ReplayMarketVectorEnv
from tracking import (
    ExperimentNameError,
    Tracker,
    flatten_params,
    ui_command,
    validate_experiment_name,
)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key path."""


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""A number in scientific notation, which YAML 1.1 reads as a string when it has no dot."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and its YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. market.sigma=1.5")
    path = [part.strip() for part in key.split(".")]
    if any(not part for part in path):
        raise ConfigError(f"--set {text!r}: empty component in key path {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML: {exc}") from exc
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)  # YAML reads 1e5 (no dot) as a string; a user means the number
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply dotted-key overrides to a nested dict (in place) and return it.

    List elements are addressed by index (``policies.0.gamma``). Missing mapping keys are
    created, so that a misspelled key reaches validation and is reported with its path.
    """
    for text in overrides:
        path, value = parse_override(text)
        node: Any = data
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            where = ".".join(path[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"--set {text!r}: {where}: expected a list index below {len(node)}"
                    )
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise ConfigError(
                    f"--set {text!r}: {'.'.join(path[:depth])} is a value, not a section"
                )
    return data


def _key_path(loc: Sequence[int | str], data: Any) -> str:
    """Dotted path of a pydantic error location, without the union tags pydantic inserts.

    A location element that is not a key of the input at that point, and is not the last
    element (a missing field), is a union tag such as ``glft`` and is left out.
    """
    parts: list[str] = []
    node = data
    for pos, item in enumerate(loc):
        last = pos == len(loc) - 1
        if isinstance(node, Mapping) and item in node:
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            node = node[item]
        elif isinstance(node, Mapping) and not last:
            continue
        else:
            node = None
        parts.append(str(item))
    return ".".join(parts) or "(top level)"


def format_validation_error(exc: ValidationError, data: Any, source: str) -> str:
    lines = [f"{source}: invalid config ({exc.error_count()} error(s)):"]
    for err in exc.errors():
        path = _key_path(err["loc"], data)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {err['input']!r})"
        lines.append(f"  {path}: {msg}{got}")
    return "\n".join(lines)


def validate_config(data: Any, source: str = "<config>") -> ExperimentConfig:
    """Validate a nested dict as an :class:`ExperimentConfig`; errors name ``source`` and keys."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, source)) from None


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read a YAML config, apply ``--set`` overrides, validate. Raises :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    overrides = list(overrides)
    apply_overrides(data, overrides)
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    resolve_replay_files(data, source)
    return validate_config(data, source)


DATA_SOURCES = {
    "lobster": "LOBSTER sample files (lobsterdata.com, NASDAQ TotalView-ITCH)",
    "binance": "Binance raw websocket captures (public spot / USD-M streams)",
}
"""Where each replay format's recorded files come from (named in missing-file errors)."""


def resolve_replay_files(data: dict[str, Any], source: str) -> None:
    """Resolve a replay market's files in a raw config (in place, before validation).

    ``market.path`` and ``market.extra_paths``, when relative, are taken in the data folder
    (``$MM_DATA_DIR``, else the project's ``data/samples/``); ``market.market_params``
    given as a string is the path of a ``MarketParams`` YAML (relative to the project root),
    read here and put in its place. Other markets are left alone.

    :raises ConfigError: naming ``market.market_params`` and its path when the file cannot be
        read or is not a YAML mapping.
    """
    market = data.get("market")
    if not isinstance(market, dict) or market.get("kind") != "replay":
        return
    if isinstance(market.get("path"), str):
        market["path"] = str(data_file(market["path"]))
    extra = market.get("extra_paths")
    if isinstance(extra, list):
        market["extra_paths"] = [str(data_file(p)) if isinstance(p, str) else p for p in extra]
    params = market.get("market_params")
    if isinstance(params, str):
        file = Path(params).expanduser()
        file = file if file.is_absolute() else CONFIG_DIR.parent / file
        try:
            loaded = yaml.safe_load(file.read_text())
        except OSError as exc:
            raise ConfigError(
                f"{source}: market.market_params: cannot read {file}: {exc.strerror} (a "
                "MarketParams YAML written by `python -m calibration.fit`)"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{source}: market.market_params: {file}: not valid YAML: {exc}"
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{source}: market.market_params: {file}: expected a MarketParams mapping"
            )
        market["market_params"] = loaded


def check_replay_data(market: ReplayMarketConfig) -> None:
    """Fail early and clearly when a replay's recorded files are absent.

    :raises ConfigError: naming ``market.path``, the missing file, and where such data comes from.
    """
    try:
        paths = market.data_paths()
    except FileNotFoundError as exc:
        raise ConfigError(f"market.path: {exc}") from None
    for p in paths:
        if not p.is_file():
            raise ConfigError(
                f"market.path: replay data file not found: {p}. Expected "
                f"{DATA_SOURCES[market.format]} in the data folder ($MM_DATA_DIR, else "
                f"the project's data/samples/; now {data_dir()}); a relative market.path is "
                "taken in that folder"
            )


def to_yaml(model: BaseModel) -> str:
    """The resolved config as YAML (every default filled in), as saved with each run."""
    return yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False)


def add_config_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--config FILE`` and repeatable ``--set KEY.PATH=VALUE``, shared by every command."""
    parser.add_argument(
        "--config",
        default=default,
        required=default is None,
        help="experiment YAML" + (f" (default: {default})" if default else ""),
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value, e.g. --set market.sigma=1.5 (repeatable)",
    )


def make_vector_env(
    market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarketConfig,
    num_envs: int,
    autoreset_mode: str = "next_step",
) -> BatchedMarketEnv:
    """The natively batched market a config's ``market`` section describes (any kind).

    :param market: the validated market section (``cfg.market``).
    :param num_envs: markets stepped together.
    :param autoreset_mode: ``"next_step"`` or ``"same_step"``.
    :raises ConfigError: a replay whose recorded files are absent (:func:`check_replay_data`).
    """
    if isinstance(market, AnalyticMarketConfig):
        return AnalyticMarketVectorEnv(num_envs, autoreset_mode, config=market)
    if isinstance(market, LOBMarketConfig):
        return LOBMarketVectorEnv(num_envs, autoreset_mode, config=market)
    if isinstance(market, ReplayMarketConfig):
        check_replay_data(market)
        return ReplayMarketVectorEnv(num_envs, autoreset_mode, config=market)
    raise ConfigError(f"market.kind: no batched market for kind {market.kind!r}")


def require_analytic_market(cfg: ExperimentConfig, command: str) -> AnalyticMarketConfig:
    """The config's market, which ``command`` needs to be the analytic one (commands built on
    its exact solutions, such as ``experiments.reproduce``).

    :raises ConfigError: naming ``market.kind`` when it is another market.
    """
    if not isinstance(cfg.market, AnalyticMarketConfig):
        raise ConfigError(
            f"market.kind: {command} runs the analytic market only (kind: analytic); "
            f"got kind {cfg.market.kind!r}"
        )
    return cfg.market


def market_of(cfg: ExperimentConfig) -> AnalyticMarketConfig:
    """The analytic market of a config that commands checked at start-up."""
    return require_analytic_market(cfg, "this command")


def job_tracker(
    cfg: ExperimentConfig,
    config_path: str | Path,
    job: str,
    tags: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> Tracker:
    """The MLflow run of one command (``job``: train, evaluate, ...) on one experiment config:
    run name ``<job>-<config name>`` in the config's experiment and store, tagged with the seed,
    the config file and the job (plus ``tags``); ``run_id`` resumes that run.

    :raises ConfigError: the experiment name (``tracking.experiment``, else ``name``) is not
        allowed, e.g. ``../escaped``.
    :raises TrackingError: the tracking store cannot be reached, or ``run_id`` cannot be resumed
        (before any work starts).
    """
    try:
        validate_experiment_name(cfg.experiment_name)
    except ExperimentNameError as exc:
        field = "tracking.experiment" if cfg.tracking.experiment else "name"
        raise ConfigError(f"{config_path}: {field}: {exc}") from None
    return Tracker(
        experiment=cfg.experiment_name,
        run_name=f"{job}-{cfg.name}",
        tracking_uri=cfg.tracking.uri,
        tags={"mmrl.seed": cfg.seed, "mmrl.config": config_path, "mmrl.job": job}
        | dict(tags or {}),
        run_id=run_id,
    )


def config_differences(
    cfg: ExperimentConfig, logged: Mapping[str, str], prefixes: tuple[str, ...] = ("",),
    ignore: tuple[str, ...] = (),
) -> list[str]:
    """The keys under ``prefixes`` where ``cfg`` differs from a run's logged params (``logged``,
    the flattened config the run logged), each as ``key: run 'x', config 'y'``; keys starting
    with one of ``ignore`` are left out."""
    current = flatten_params(cfg.model_dump(mode="json"))
    keys = sorted(
        k for k in set(current) | set(logged)
        if k.startswith(prefixes) and not k.startswith(ignore or ("\0",))
        and current.get(k) != logged.get(k)
    )  # fmt: skip
    return [f"{k}: run {logged.get(k, '-')!r}, config {current.get(k, '-')!r}" for k in keys]


def print_ui_command(console: Any, tracking_uri: str | None) -> None:
    """Tell the user how to browse the runs: the ``mlflow ui`` command for this store."""
    console.print("Browse every run, metric and figure in the MLflow UI:", highlight=False)
    console.print(f"  {ui_command(tracking_uri)}", highlight=False, soft_wrap=True)

"""Command line: calibrate the order-book market on one dataset and save it.

Usage::

    python -m calibration.fit --data PATH [PATH ...] [--out configs/markets/NAME.yaml]
        [--levels L] [--lot SHARES] [--reference auto|opposite|own] [--flow cst|realistic]
        [--track]

The loader is chosen from the file name: a LOBSTER ``..._message_L.csv[.gz]`` (its
``..._orderbook_L`` sibling is found beside it; an orderbook file may be given instead), or a
Binance raw capture (``spot_*`` / ``usdm_*``; give every file of one capture, in time order).

Output: ``--out NAME.yaml`` holds only :class:`MarketParams` fields (so it can be the ``market:``
of an LOB env config, like ``configs/markets/cst_default.yaml``), headed by comments with the
data, the sample period and the standard errors; the whole :class:`Calibration` (SEs,
queue-reactive fit, regimes, spread matrix, size laws, counts, data hashes) goes to
``calibration/NAME.yaml`` in the same folder. ``--track`` logs the params, the SEs, the fit
times and both files to MLflow through :class:`tracking.Tracker`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from calibration.calibrate import FITS, Calibration, calibrate
from calibration.params import MarketParams
from data import load_lobster
from data.binance import load_binance
from data.schema import MarketData

LOBSTER_NAME = re.compile(r"^[A-Za-z0-9.]+_\d{4}-\d{2}-\d{2}_\d+_\d+_(message|orderbook)_\d+\.csv")


def load_market_data(paths: Sequence[str | Path]) -> MarketData:
    """Load a LOBSTER pair or a Binance capture, chosen from the file names.

    :raises ValueError: naming the file when its name matches no known format.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("--data: no file given")
    for f in files:
        if not f.exists():
            raise ValueError(f"--data: {f}: no such file")
    first = files[0]
    m = LOBSTER_NAME.match(first.name)
    if m:
        if len(files) > 2:
            raise ValueError(
                f"--data: a LOBSTER dataset is one message (+ orderbook) file: {files}"
            )
        if m.group(1) == "orderbook":
            msg = first.with_name(first.name.replace("_orderbook_", "_message_"))
            return load_lobster(msg, first)
        return load_lobster(first, files[1] if len(files) == 2 else None)
    if first.name.startswith(("spot_", "usdm_")):
        if first.name.startswith("usdm_"):
            return load_binance(files, market="usdm", strict=False)
        return load_binance(files, market="spot", strict=False)
    raise ValueError(
        f"--data: {first}: unknown file name; expected a LOBSTER "
        "'TICKER_DATE_START_END_message_L.csv[.gz]' or a Binance capture 'spot_*' / 'usdm_*'"
    )


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return f"{float(x):.4g}"


def parameter_table(cal: Calibration) -> Table:
    """The fitted MarketParams numbers with their standard errors."""
    p, se = cal.params, cal.std_errors
    table = Table(title=f"{cal.data['symbol']} {cal.data['start'][:10]} (units: s, ticks, lots)")
    for col in ("parameter", "value", "std. error"):
        table.add_column(col)
    for i in range(p.n_levels):
        table.add_row(f"lambda({i + 1})", _fmt(p.limit_rates[i]), _fmt(se["limit_rates"][i]))
    for i in range(p.n_levels):
        table.add_row(f"theta({i + 1})", _fmt(p.cancel_rates[i]), _fmt(se["cancel_rates"][i]))
    table.add_row("mu", _fmt(p.market_rate), _fmt(se["market_rate"]))
    table.add_row("fill A", _fmt(p.fill_curve.A), _fmt(se["fill_curve"]["A"]))
    table.add_row("fill k", _fmt(p.fill_curve.k), _fmt(se["fill_curve"]["k"]))
    table.add_row("mid_volatility", _fmt(p.mid_volatility), _fmt(se["mid_volatility"]))
    table.add_row("mean size (lots)", _fmt(p.mean_size), "-")
    reg = cal.volatility_regimes
    for j, (v, s) in enumerate(
        zip(reg.get("variance", []), reg.get("variance_se", []), strict=True)
    ):
        table.add_row(f"regime {j} variance", _fmt(v), _fmt(s))
    qr = cal.queue_reactive
    table.add_row("QR theta", _fmt(qr["theta"]), _fmt(qr["std_errors"]["theta"]))
    table.add_row(
        "QR theta_reinit", _fmt(qr["theta_reinit"]), _fmt(qr["std_errors"]["theta_reinit"])
    )
    return table


def _round(values: Any, digits: int = 3) -> Any:
    if isinstance(values, list):
        return [_round(v, digits) for v in values]
    if isinstance(values, dict):
        return {k: _round(v, digits) for k, v in values.items()}
    if isinstance(values, float) and np.isfinite(values):
        return float(f"{values:.{digits}g}")
    return values


def market_yaml(cal: Calibration, details: Path | None = None) -> str:
    """The MarketParams YAML, headed by comments on the data and the standard errors."""
    d = cal.data
    lines = [
        f"# {d['symbol']} calibrated by `python -m calibration.fit` (docs/calibration.md).",
        f"# data: {', '.join(Path(f['path']).name for f in d['files'])}",
        *(f"#   sha256 {f['sha256']}" for f in d["files"]),
        f"# period: {d['start']} .. {d['end']} ({d['open_seconds']:.0f} s open)",
        f"# units: seconds; ticks of {cal.params.tick_size}; lots of {cal.params.lot_size:g} "
        "base units",
        f"# distances: {cal.settings['reference']} (see calibration/sample.py)",
        "# standard errors:",
        *(f"#   {k}: {_round(v)}" for k, v in cal.std_errors.items() if v is not None),
    ]
    if cal.repairs:
        lines.append("# repairs: " + "; ".join(cal.repairs))
    if cal.params.model == "realistic":
        lines.append(
            "# order flow: realistic (docs/calibration.md#realistic-order-flow); the standard "
            "errors above are the CST fit's (fill curve, volatility), the realistic flow's are "
            "under `realistic` in the full fit"
        )
    if details is not None:
        lines.append(f"# full fit (SEs, queue-reactive, regimes, spread, sizes): {details}")
    body = yaml.safe_dump(cal.params.to_dict(), sort_keys=False, default_flow_style=None, width=100)
    return "\n".join(lines) + "\n" + body


def _plain(x: Any) -> Any:
    """``x`` with numpy scalars and arrays turned into Python numbers and lists (for YAML)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x


def with_realistic_flow(cal: Calibration, flow: dict[str, Any]) -> Calibration:
    """``cal`` whose market runs the realistic order flow ``flow`` (plain
    :class:`calibration.realistic.RealisticFlowParams`; docs/calibration.md#realistic-order-flow):
    the fill curve, mid volatility, tick and lot stay those of ``cal``; the window holds the
    widest spread (``n_buckets x grid_ticks`` fine ticks, at least ``cal``'s levels), so the CST
    rates, which are per level, are left out."""
    spread = flow["spread"]
    levels = max(cal.params.n_levels, spread["n_buckets"] * spread["grid_ticks"])
    market = {
        **cal.params.to_dict(),
        "model": "realistic",
        "realistic": flow,
        "n_levels": levels,
        "limit_rates": [],
        "cancel_rates": [],
        "market_rate": 0.0,
        "initial_book": "stationary",
    }
    return dataclasses.replace(cal, params=MarketParams.from_dict(market))


def details_path(out: Path) -> Path:
    return out.parent / "calibration" / out.name


def write_outputs(
    cal: Calibration, out: Path, extra: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``out`` (MarketParams) and ``calibration/<name>`` beside it (the whole fit, with
    ``extra`` entries such as the realistic flow's SEs and checks)."""
    details = details_path(out)
    details.parent.mkdir(parents=True, exist_ok=True)
    body = {**cal.to_dict(), **(extra or {})}
    details.write_text(yaml.safe_dump(body, sort_keys=False, width=100))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(market_yaml(cal, details.relative_to(out.parent)))
    return out, details


def check_writable(path: Path, flag: str) -> None:
    """``path`` can be written, before any work: not a folder, and it or its nearest existing
    parent folder takes a new file (the probe file is removed).

    :raises ValueError: one line naming ``flag``, the path and why.
    """
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder, not a file")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {path}: cannot be created: {existing} is not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{flag} {path}: the file is not writable")
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=existing)
    except OSError as exc:
        raise ValueError(f"{flag} {path}: cannot write in {existing}: {exc.strerror}") from None
    os.close(handle)
    os.unlink(probe)


def track(
    cal: Calibration, files: Sequence[Path], experiment: str, tracking_uri: str | None
) -> str:
    """Log a calibration to MLflow; returns the run id."""
    from tracking import Tracker

    tags = {f"data.{Path(f['path']).name}": f["sha256"] for f in cal.data["files"]}
    name = f"{cal.data['symbol']}_{cal.data['start'][:10]}"
    with Tracker(experiment, run_name=name, tracking_uri=tracking_uri, tags=tags) as run:
        run.log_params(cal.params.to_dict(), prefix="market")
        run.log_params(cal.std_errors, prefix="se")
        run.log_params(cal.settings, prefix="settings")
        run.log_metrics({f"calibration/time/{k}": v for k, v in cal.timings.items()})
        run.log_dict(cal.to_dict(), "calibration/calibration.yaml")
        for f in files:
            run.log_artifact(f, "calibration")
        return run.run_id


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.fit", description=__doc__)
    parser.add_argument("--data", nargs="+", required=True, help="data file(s) of one dataset")
    parser.add_argument("--out", type=Path, help="MarketParams YAML to write")
    parser.add_argument("--levels", type=int, default=10, help="distances L per side")
    parser.add_argument("--lot", type=float, help="base units per lot (default: median order)")
    parser.add_argument("--reference", choices=("auto", "opposite", "own"), default="auto")
    parser.add_argument(
        "--flow",
        choices=("cst", "realistic"),
        default="cst",
        help="order flow of the written market: cst (default) or realistic "
        "(calibration.realistic, docs/calibration.md#realistic-order-flow)",
    )
    parser.add_argument("--track", action="store_true", help="log the calibration to MLflow")
    parser.add_argument("--experiment", default="calibration", help="MLflow experiment")
    parser.add_argument("--tracking-uri", help="MLflow store (default: the project's)")
    args = parser.parse_args(argv)

    console = Console()
    from tracking import (
        TrackingError,
        check_tracking_uri,
        resolve_tracking_uri,
        validate_experiment_name,
    )

    try:  # where the results go, before any work
        if args.out is not None:
            check_writable(args.out, "--out")
            check_writable(details_path(args.out), "--out")
        if args.track:
            validate_experiment_name(args.experiment)
            check_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    except (ValueError, TrackingError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 2
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("loading data", total=len(FITS) + 1)
        try:
            md = load_market_data(args.data)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            return 2
        bar.advance(task)

        def progress(name: str) -> None:
            bar.update(task, description=f"fitting {name}")
            bar.advance(task)

        cal = calibrate(md, levels=args.levels, lot=args.lot, reference=args.reference,
                        progress=progress)  # fmt: skip
        extra: dict[str, Any] = {}
        if args.flow == "realistic":
            from calibration.realistic import calibrate_realistic

            bar.update(task, description="fitting the realistic flow")
            rcal = calibrate_realistic(md, levels=args.levels, lot=args.lot,
                                       reference=args.reference)  # fmt: skip
            extra = {"realistic": _plain(rcal.to_dict())}
            cal.timings.update({f"realistic_{k}": v for k, v in rcal.timings.items()})
    console.print(parameter_table(cal))
    if args.flow == "realistic":
        cal = with_realistic_flow(cal, extra["realistic"]["params"])
    total = sum(cal.timings.values())
    console.print(
        "fit times (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in cal.timings.items())
        + f"; total {total:.2f}"
    )
    if cal.repairs:
        console.print("[yellow]repairs:[/yellow] " + "; ".join(cal.repairs))
    written: list[Path] = []
    if args.out is not None:
        written = list(write_outputs(cal, args.out, extra))
        console.print(f"wrote {written[0]} and {written[1]}")
    if args.track:
        run_id = track(cal, written, args.experiment, args.tracking_uri)
        console.print(f"logged to MLflow run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

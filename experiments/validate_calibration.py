"""Validate a calibrated market: simulate it and compare its stylized facts with the data.

    python -m experiments.validate_calibration \\
        --data data/samples/lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz \\
        --market configs/markets/goog_2012-06-21.yaml [--seed 0] [--out DIR] \\
        [--set tracking.uri=sqlite:///mlflow.db] [--set simulation.duration_s=3600]

Reads top to bottom: settings, market, tracking preflight, data, facts of the data, simulation
and its facts, comparison, report, logging. The loader is chosen from the file names as by
``python -m calibration.fit`` (a LOBSTER message/orderbook pair or a Binance capture). The
simulated market runs as long as the data's open time unless ``simulation.duration_s`` says
otherwise. Order-flow rates are counted in the market's window of ``n_levels`` levels, with
distances counted as the calibration counted them (``settings.reference`` of the details file
``configs/markets/calibration/NAME.yaml`` when it exists).

The report (table CSV/HTML, figures, summary.md, index.html; :mod:`evaluation.calibration_report`)
goes to ``--out`` (default ``outputs/validation/<market>_seed<seed>``) and to MLflow as the
artifact folder ``calibration_report``, with the table's numbers as metrics
``calibration/<fact>/<column>``. Exit code 2 on a bad data path, market file or setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.table import Table

from calibration.fit import details_path, load_market_data
from calibration.params import MarketParams
from calibration.sample import Reference
from configs.schema import TrackingConfig
from evaluation.calibration_report import (
    HORIZONS,
    MAX_LAG,
    NOT_REPRODUCED,
    REPRODUCED,
    compare,
    explain,
    simulated_facts,
    stylized_facts,
    table_metrics,
    write_report,
)
from experiments.config import ConfigError, apply_overrides, format_validation_error
from experiments.seeding import seed_everything
from tracking import Tracker, TrackingError, ui_command

DEFAULT_EXPERIMENT = "calibration_validation"
OUTPUT_DIR = Path("outputs") / "validation"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SimulationSettings(_Settings):
    """The simulated market's run."""

    duration_s: float | None = Field(
        None, gt=0, description="Seconds to simulate; None: the data's open time."
    )


class FactSettings(_Settings):
    """How the stylized facts are measured (both markets alike)."""

    sample_dt_s: float = Field(1.0, gt=0, description="Sampling of spread and best queues (s).")
    horizons_s: list[float] = Field(
        default_factory=lambda: list(HORIZONS), description="Volatility horizons (s)."
    )
    max_lag: int = Field(MAX_LAG, ge=1, description="Largest lag of the trade-sign ACF.")
    dispersion_bin_s: float = Field(60.0, gt=0, description="Bins of the count dispersion (s).")


class ValidationSettings(_Settings):
    """Everything ``--set`` may change."""

    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    facts: FactSettings = Field(default_factory=FactSettings)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)


def load_settings(overrides: Sequence[str]) -> ValidationSettings:
    """Defaults with ``--set KEY.PATH=VALUE`` overrides. Raises :class:`ConfigError`."""
    data: dict[str, Any] = apply_overrides({}, overrides)
    try:
        return ValidationSettings.model_validate(data)
    except ValidationError as exc:
        source = "--set " + " ".join(overrides)
        raise ConfigError(format_validation_error(exc, data, source)) from None


def load_market(path: Path) -> tuple[MarketParams, Reference]:
    """The market of a MarketParams YAML and the distance reference of its calibration.

    :raises ConfigError: naming the file when it cannot be read or is not a valid market.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--market {path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--market {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--market {path}: expected a MarketParams mapping")
    try:
        params = MarketParams.from_dict(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, data, f"--market {path}")) from None
    reference: Reference = "auto"
    details = details_path(path)
    if details.is_file():
        settings = (yaml.safe_load(details.read_text()) or {}).get("settings") or {}
        found = settings.get("reference", "auto")
        if found not in ("opposite", "own", "auto"):
            raise ConfigError(
                f"{details}: settings.reference: expected opposite or own, got {found!r}"
            )
        reference = found
    return params, reference


def results_table(table: Any, title: str) -> Table:
    out = Table(title=title, caption="value: the statistic; CI: 99% interval of the statistic")
    for col in ("fact", "data", "model", "statistic", "value", "p", "CI", "verdict"):
        out.add_column(col, justify="left" if col in ("fact", "statistic") else "right")
    style = {REPRODUCED: "green", NOT_REPRODUCED: "red"}
    for _, r in table.iterrows():
        ci = f"{r['ci_low']:.3g} - {r['ci_high']:.3g}" if r["ci_low"] == r["ci_low"] else ""
        verdict = r["verdict"]
        out.add_row(
            f"{r['fact']} ({r['unit']})",
            f"{r['data']:.4g}",
            f"{r['model']:.4g}",
            r["statistic"],
            f"{r['value']:.4g}",
            f"{r['p_value']:.2g}",
            ci,
            f"[{style.get(verdict, 'yellow')}]{verdict}[/]",
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.validate_calibration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", nargs="+", required=True, help="data file(s) of one dataset")
    parser.add_argument("--market", type=Path, required=True, help="calibrated MarketParams YAML")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated market")
    parser.add_argument("--out", type=Path, help="report folder")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="e.g. --set tracking.uri=sqlite:///mlflow.db, --set simulation.duration_s=3600",
    )  # fmt: skip
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)

    try:
        if args.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {args.seed}")
        settings = load_settings(args.overrides)
        params, reference = load_market(args.market)
        name = args.market.stem
        tracker = Tracker(
            settings.tracking.experiment or DEFAULT_EXPERIMENT,
            run_name=f"{name}_seed{args.seed}",
            tracking_uri=settings.tracking.uri,
            tags={"mmrl.seed": args.seed, "mmrl.market": str(args.market)},
        )
        seed_everything(args.seed)
        t0 = time.perf_counter()
        md = load_market_data(args.data)
    except (ConfigError, TrackingError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    elapsed = time.perf_counter() - t0
    console.print(f"loaded {md.spec.symbol}: {len(md.events)} events ({elapsed:.1f} s)")

    f = settings.facts
    data = stylized_facts(
        md.events,
        md.book,
        md.spec,
        lot=params.lot_size,
        levels=params.n_levels,
        reference=reference,
        label=md.spec.symbol,
        sample_dt=f.sample_dt_s,
        horizons=f.horizons_s,
        max_lag=f.max_lag,
        dispersion_bin=f.dispersion_bin_s,
    )
    duration = settings.simulation.duration_s or data.duration
    t0 = time.perf_counter()
    model = simulated_facts(
        params,
        duration,
        args.seed,
        label=f"model ({name})",
        sample_dt=f.sample_dt_s,
        horizons=f.horizons_s,
        max_lag=f.max_lag,
        dispersion_bin=f.dispersion_bin_s,
    )
    console.print(f"simulated {duration:.0f} s of {name} ({time.perf_counter() - t0:.1f} s)")

    table = compare(data, model)
    out = args.out or OUTPUT_DIR / f"{name}_seed{args.seed}"
    files = ", ".join(Path(f.path).name for f in md.sources)
    notes = [
        f"Data: {files} ({md.spec.symbol}, ticks of {md.spec.tick_size:g}, lots of "
        f"{params.lot_size:g} base units).",
        f"Model: {args.market} ({params.model}, {params.n_levels} levels), seed {args.seed}; "
        f"order flow counted within {params.n_levels} levels (distances: {reference}).",
    ]
    paths = write_report(
        data, model, out, title=f"Calibration validation: {name}", notes=notes, table=table
    )

    with tracker as run:
        run.log_params(params.to_dict(), prefix="market")
        run.log_params(
            {"seed": args.seed, "duration_s": duration, "reference": reference, **f.model_dump()},
            prefix="validation",
        )
        run.set_tags({f"data.{Path(f.path).name}": f.sha256 for f in md.sources})
        run.log_metrics(table_metrics(table))
        run.log_artifacts(out, "calibration_report")
        run_id = run.run_id

    console.print(results_table(table, f"{md.spec.symbol} against {name} (seed {args.seed})"))
    console.print("[bold]What the model does not reproduce:[/bold]")
    for line in explain(table, data, model) or ["nothing: every fact passes its criterion"]:
        console.print(f"  - {line}", highlight=False)
    console.print(f"report: {paths['index_html']}  (MLflow run {run_id})", highlight=False)
    console.print(f"  {ui_command(settings.tracking.uri)}", highlight=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

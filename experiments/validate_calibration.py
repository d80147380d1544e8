"""Validate a calibrated market: simulate it and compare its stylized facts with the data.

    python -m experiments.validate_calibration \\
        --data data/samples/lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz \\
        --market configs/markets/goog_2012-06-21.yaml [--seed 0] [--out DIR] [--no-fidelity] \\
        [--set tracking.uri=sqlite:///mlflow.db] [--set simulation.duration_s=3600]

Reads top to bottom: settings, market, tracking preflight, data, facts of the data, simulation
and its facts, comparison, strategy fidelity, report, logging. The loader is chosen from the
file names as by ``python -m calibration.fit`` (a LOBSTER message/orderbook pair or a Binance
capture). The
simulated market runs as long as the data's open time unless ``simulation.duration_s`` says
otherwise. Order-flow rates are counted in the market's window of ``n_levels`` levels, with
distances counted as the calibration counted them (``settings.reference`` of the details file
``configs/markets/calibration/NAME.yaml`` when it exists).

The facts table (:func:`evaluation.calibration_report.fact_table`) prints data beside model with
95% intervals, the model/data ratio and a verdict per fact. The strategy fidelity
(:mod:`evaluation.fidelity`) runs GLFT, Avellaneda-Stoikov and the fixed spread in the replay of
the data and in the calibrated market with the same interval, latency, fees and quote size in
base units, and prints P&L per hour, fill rate, mark-outs and inventory with their verdicts;
``--no-fidelity`` (or ``--set fidelity.enabled=false``) skips it, ``--set fidelity.KEY=VALUE``
changes it (:class:`evaluation.fidelity.FidelityConfig`).

The report (tables CSV/HTML, figures, summary.md, index.html; :mod:`evaluation.calibration_report`)
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

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.table import Table

from calibration.fit import details_path, load_market_data
from calibration.params import MarketParams
from calibration.sample import Reference
from configs.schema import TrackingConfig
from evaluation.calibration_report import (
    BLOCK_S,
    HORIZONS,
    IMPACT_HORIZONS,
    MAX_LAG,
    N_BOOT,
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPORTED,
    REPRODUCED,
    StylizedFacts,
    compare,
    explain,
    fact_metrics,
    fact_rule,
    fact_table,
    simulated_facts,
    stylized_facts,
    table_metrics,
    write_report,
)
from evaluation.fidelity import (
    FAIL,
    PASS,
    Dataset,
    FidelityConfig,
    FidelityRun,
    fidelity_metrics,
    fidelity_table,
    run_fidelity,
)
from evaluation.fidelity import (
    METRICS as FIDELITY_METRICS,
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
    impact_horizons_s: list[float] = Field(
        default_factory=lambda: list(IMPACT_HORIZONS), description="Price-impact horizons (s)."
    )
    block_s: float = Field(BLOCK_S, gt=0, description="Time blocks of the bootstrap (s).")
    n_boot: int = Field(N_BOOT, ge=2, description="Bootstrap replicates per market.")


class ValidationSettings(_Settings):
    """Everything ``--set`` may change."""

    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    facts: FactSettings = Field(default_factory=FactSettings)
    fidelity: FidelityConfig = Field(default_factory=FidelityConfig)
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


def _ci(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]" if np.isfinite(low) else f"{mean:.3g}"


VERDICT_STYLE = {REPRODUCED: "green", PASS: "green", NOT_REPRODUCED: "red", FAIL: "red",
                 REPORTED: "cyan", NOT_MEASURED: "yellow"}  # fmt: skip


def facts_rich_table(facts: pd.DataFrame, title: str) -> Table:
    """The fact table: data and model with 95% intervals, model/data (or the difference, or
    the distance) with its interval, the verdict and by how much it is missed."""
    out = Table(title=title, caption="mean [95% CI]; verdict rule above the table")
    for col in ("fact", "data", "model", "statistic", "value", "verdict", "gap"):
        out.add_column(col, justify="left" if col in ("fact", "statistic", "gap") else "right")
    for _, r in facts.iterrows():
        verdict = r["verdict"]
        out.add_row(
            f"{r['description']} ({r['unit']})",
            _ci(r["data"], r["data_low"], r["data_high"]),
            _ci(r["model"], r["model_low"], r["model_high"]),
            r["statistic"],
            _ci(r["value"], r["value_low"], r["value_high"])
            + (f" p={r['p_value']:.2g}" if np.isfinite(r["p_value"]) else ""),
            f"[{VERDICT_STYLE.get(verdict, 'yellow')}]{verdict}[/]",
            r["gap"],
        )
    return out


def fidelity_rich_table(run: FidelityRun, title: str, caption: str) -> Table:
    """Replay beside simulation per policy: mean [95% CI] of each metric."""
    out = Table(title=title, caption=caption)
    for col in ("policy", "market", *FIDELITY_METRICS.values()):
        out.add_column(col, justify="left" if col in ("policy", "market") else "right")
    for label in dict.fromkeys(run.summary["policy"]):
        for market in ("replay", "simulated"):
            row = run.summary[(run.summary["policy"] == label) & (run.summary["market"] == market)]
            r = row.iloc[0]
            cells = [_ci(r[f"{k}_mean"], r[f"{k}_low"], r[f"{k}_high"]) for k in FIDELITY_METRICS]
            out.add_row(label if market == "replay" else "", market, *cells)
    return out


def fidelity_verdict_table(run: FidelityRun, title: str) -> Table:
    """Per policy: the P&L, fill-rate and mark-out verdicts, the overall one, and the gaps."""
    out = Table(title=title)
    for col in ("policy", "P&L / h", "fill rate", "mark-outs", "verdict", "by how much"):
        out.add_column(col)
    for _, v in run.verdicts.iterrows():
        cells = [f"[{VERDICT_STYLE.get(v[k], 'yellow')}]{v[k]}[/]"
                 for k in ("pnl", "fill_rate", "markouts", "verdict")]  # fmt: skip
        gaps = "; ".join(g for g in (v["pnl_gap"], v["fill_gap"], v["markout_gap"]) if g)
        out.add_row(str(v["policy"]), *cells, gaps)
    return out


def fidelity_notes(run: FidelityRun, seconds: float) -> list[str]:
    """What the fidelity run compared, in sentences (report and console)."""
    sim, rep = run.sim, run.replay
    return [
        f"Both markets: decisions every {sim.dt:g} s, windows / episodes of {sim.T:g} s, entry "
        f"latency {sim.entry_latency:g} s, fees maker {sim.maker_fee_bps:.4g} / taker "
        f"{sim.taker_fee_bps:.4g} bps, quotes {sim.depth_min:g}-{sim.depth_max:g} ticks from the "
        f"mid, |q| <= {sim.q_max} quotes, terminal {sim.terminal}.",
        f"One quote = {sim.order_size} calibration lot(s) = "
        f"{sim.order_size * sim.market.lot_size:g} base units in both markets: "
        f"{rep.order_size} feed lots in the replay (lot ratio {run.ratio}); the policies see "
        "the replay's inventory in quotes.",
        f"Replay: {run.n_windows} consecutive windows from the first event (queue model "
        f"{rep.queue_model}); simulation: {run.n_episodes} episodes from the data's median "
        f"price ({sim.initial_price} ticks), common random numbers. 95% Student-t intervals "
        "across windows / episodes.",
        "Verdict per strategy: simulated P&L per hour inside the replay's 95% CI (or within 30% "
        "of the replay mean when that CI is narrower), fill rate within 25% of the replay's, "
        "mark-outs with the same sign at every horizon.",
        "Units: P&L per hour in currency (fees and terminal liquidation included), fill rate = "
        "quoted intervals with a passive fill, mark-outs in bps of the fill price (positive: a "
        "gain), inventory std in quotes.",
        f"Runtime of the strategy fidelity: {seconds:.1f} s.",
    ]


def measure(
    md: Any,
    params: MarketParams,
    reference: Reference,
    settings: ValidationSettings,
    seed: int,
    name: str,
    console: Console,
) -> tuple[StylizedFacts, StylizedFacts, float]:
    """The facts of the data and of the simulated market, by one function, and the seconds
    simulated."""
    f = settings.facts
    common = dict(sample_dt=f.sample_dt_s, horizons=f.horizons_s, max_lag=f.max_lag,
                  dispersion_bin=f.dispersion_bin_s, impact_horizons=f.impact_horizons_s,
                  block_s=f.block_s, n_boot=f.n_boot)  # fmt: skip
    data = stylized_facts(md.events, md.book, md.spec, lot=params.lot_size,
                          levels=params.n_levels, reference=reference, label=md.spec.symbol,
                          **common)  # type: ignore[arg-type]  # fmt: skip
    duration = settings.simulation.duration_s or data.duration
    t0 = time.perf_counter()
    try:
        model = simulated_facts(params, duration, seed, label=f"model ({name})",
                                **common)  # type: ignore[arg-type]  # fmt: skip
    except ValueError as exc:
        raise ValueError(f"the simulated market ({name}): {exc}") from None
    console.print(f"simulated {duration:.0f} s of {name} ({time.perf_counter() - t0:.1f} s)")
    return data, model, duration


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
        "--no-fidelity",
        action="store_true",
        help="skip the strategy fidelity (same as --set fidelity.enabled=false)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="e.g. --set tracking.uri=sqlite:///mlflow.db, --set simulation.duration_s=3600",
    )  # fmt: skip
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)

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
    console.print(f"loaded {md.spec.symbol}: {len(md.events)} events "
                  f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip

    t0 = time.perf_counter()
    try:
        data, model, duration = measure(md, params, reference, settings, args.seed, name, console)
    except ValueError as exc:  # e.g. a market whose simulation has no event
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    table, facts = compare(data, model), fact_table(data, model, seed=args.seed)
    facts_seconds = time.perf_counter() - t0

    fid: FidelityRun | None = None
    extra: dict[str, Any] = {}
    if settings.fidelity.enabled and not args.no_fidelity:
        t0 = time.perf_counter()
        try:
            dataset = Dataset.from_files(args.data, md.book, md.spec.tick_size)
            fid = run_fidelity(settings.fidelity, params, dataset, args.seed)
        except (ValueError, ConfigError) as exc:
            console.print(f"[red]error:[/red] fidelity: {exc}", highlight=False)
            return 2
        fid_seconds = time.perf_counter() - t0
        extra = {
            "Strategy fidelity": fidelity_notes(fid, fid_seconds),
            "Strategy fidelity table": fidelity_table(fid),
            "Strategy fidelity verdicts": fid.verdicts,
            "Strategy fidelity per episode": fid.episodes,
        }

    out = args.out or OUTPUT_DIR / f"{name}_seed{args.seed}"
    files = ", ".join(Path(f.path).name for f in md.sources)
    notes = [
        f"Data: {files} ({md.spec.symbol}, ticks of {md.spec.tick_size:g}, lots of "
        f"{params.lot_size:g} base units).",
        f"Model: {args.market} ({params.model}, {params.n_levels} levels), seed {args.seed}; "
        f"order flow counted within {params.n_levels} levels (distances: {reference}).",
        f"Facts computed in {facts_seconds:.1f} s (data and simulation).",
    ]
    paths = write_report(data, model, out, title=f"Calibration validation: {name}", notes=notes,
                         table=table, facts=facts, extra=extra, flow=params.model)  # fmt: skip

    with tracker as run:
        run.log_params(params.to_dict(), prefix="market")
        run.log_params(
            {"seed": args.seed, "duration_s": duration, "reference": reference,
             **settings.facts.model_dump()},
            prefix="validation",
        )  # fmt: skip
        if fid is not None:
            run.log_params(settings.fidelity.model_dump(mode="json", exclude={"policies"}),
                           prefix="fidelity")  # fmt: skip
            run.log_metrics(fidelity_metrics(fid) | {"fidelity/seconds": fid_seconds})
        run.set_tags({f"data.{Path(f.path).name}": f.sha256 for f in md.sources})
        run.log_metrics(table_metrics(table) | fact_metrics(facts))
        run.log_artifacts(out, "calibration_report")
        run_id = run.run_id

    console.print(facts_rich_table(facts, f"{md.spec.symbol} against {name} (seed {args.seed})"))
    for line in fact_rule(data):
        console.print(f"  {line}", highlight=False)
    console.print("[bold]What the model does not reproduce:[/bold]")
    for line in explain(table, data, model, params.model) or ["nothing: every fact passes"]:
        console.print(f"  - {line}", highlight=False)
    if fid is not None:
        title = f"Strategy fidelity: replay of {md.spec.symbol} against {name}"
        console.print(fidelity_rich_table(fid, title, "mean [95% CI]"))
        console.print(fidelity_verdict_table(fid, "Strategy fidelity: verdicts"))
        for line in extra["Strategy fidelity"]:
            console.print(f"  {line}", highlight=False)
    console.print(f"report: {paths['index_html']}  (MLflow run {run_id})", highlight=False)
    console.print(f"  {ui_command(settings.tracking.uri)}", highlight=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

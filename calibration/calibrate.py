"""One dataset -> one :class:`Calibration`: the :class:`MarketParams` and everything behind them.

:func:`calibrate` runs every fit of docs/calibration.md on a :class:`data.schema.MarketData` (or
on canonical frames with :func:`calibrate_frames`), times them, and packs the results:

- ``params``: the CST 2010 market (:mod:`calibration.intensities`), the size law of LIMIT orders
  (the orders that build the queues; CST 2010 use unit sizes), the fill curve
  (:mod:`calibration.fill_curve`) and the realized volatility (:mod:`calibration.volatility`);
- ``std_errors``: the SE of every fitted number of ``params``, same keys;
- ``queue_reactive_params``: the same market with ``model = "queue_reactive"`` and the HLR 2015
  fit (``None``, with the reason in ``repairs``, when the fit breaks that model's conditions);
- extras MarketParams does not carry: queue-reactive intensities (HLR 2015), volatility regimes,
  the spread's transition matrix, the size laws per event kind, counts and exposures, the data
  files with their SHA-256, the sample period, the settings and what the preparation counted.

Numbers that a market cannot use as they come are repaired and each repair is listed in
``repairs``: a level never occupied has no ``theta(i)`` (the nearest fitted level's is used), a
zero-count ``theta(i)`` is raised to ``1 / exposure`` (queues must be stable), a ``k <= 0`` fill
decay is raised to ``1e-6``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from calibration.empirical import size_distributions, spread_transitions
from calibration.fill_curve import fit_fill_curve
from calibration.intensities import fit_cst, fit_queue_reactive
from calibration.params import FillCurveParams, MarketParams, QueueReactiveParams
from calibration.sample import Reference, prepare
from calibration.volatility import realized_volatility, volatility_regimes
from data.samples import relative_name
from data.schema import InstrumentSpec, MarketData, SourceFile


@contextmanager
def timed_step(
    name: str, timings: dict[str, float], progress: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Time the block as fit ``name`` into ``timings`` (seconds), telling ``progress`` first."""
    if progress is not None:
        progress(name)
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0


FITS: tuple[str, ...] = (
    "prepare",
    "sizes",
    "cst",
    "queue_reactive",
    "fill_curve",
    "volatility",
    "regimes",
    "spread",
)
"""The fits of :func:`calibrate`, in order (the keys of ``Calibration.timings``)."""


def _floats(values: Any) -> Any:
    """Plain Python floats (NaN kept) from arrays / nested lists, for YAML and MLflow."""
    arr = np.asarray(values, dtype=np.float64)
    return arr.tolist()


@dataclass
class Calibration:
    """A calibrated market with standard errors and the fits MarketParams does not carry.

    Units: seconds, ticks of ``params.tick_size``, lots of ``params.lot_size`` base units.
    """

    params: MarketParams
    std_errors: dict[str, Any]
    queue_reactive: dict[str, Any]
    volatility_regimes: dict[str, Any]
    spread: dict[str, Any]
    sizes: dict[str, Any]
    counts: dict[str, Any]
    data: dict[str, Any]
    settings: dict[str, Any]
    notes: dict[str, int]
    repairs: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    queue_reactive_params: MarketParams | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``market`` (loadable by :meth:`MarketParams.from_dict`) and the rest."""
        qr = self.queue_reactive_params
        return {
            "market": self.params.to_dict(),
            "market_queue_reactive": qr.to_dict() if qr is not None else None,
            "std_errors": self.std_errors,
            "queue_reactive": self.queue_reactive,
            "volatility_regimes": self.volatility_regimes,
            "spread": self.spread,
            "sizes": self.sizes,
            "counts": self.counts,
            "data": self.data,
            "settings": self.settings,
            "notes": self.notes,
            "repairs": self.repairs,
            "timings_s": self.timings,
        }


def _fill_theta(rate: np.ndarray, se: np.ndarray, exposure: np.ndarray, repairs: list[str]) -> Any:
    rate, se = rate.copy(), se.copy()
    fitted = np.flatnonzero(np.isfinite(rate) & (rate > 0))
    if fitted.size == 0:
        raise ValueError("no cancellation observed at any distance: theta cannot be fitted")
    for i in range(rate.size):
        if not np.isfinite(rate[i]):
            j = int(fitted[np.argmin(np.abs(fitted - i))])
            rate[i], se[i] = rate[j], se[j]
            repairs.append(f"theta({i + 1}): level never occupied, theta({j + 1}) used")
        elif rate[i] == 0:
            rate[i] = 1.0 / exposure[i]
            repairs.append(f"theta({i + 1}): no cancellation seen, raised to 1/exposure")
    return rate, se


def _carry(rows: np.ndarray) -> np.ndarray:
    """NaN entries (queue sizes never seen) take the last seen size's rate (0 before any)."""
    out = np.array(rows, dtype=np.float64, copy=True)
    for r in np.atleast_2d(out):
        last = 0.0
        for n in range(r.size):
            if np.isfinite(r[n]):
                last = r[n]
            else:
                r[n] = last
    return out


def queue_reactive_fields(qr: Any) -> dict[str, Any]:
    """The queue-reactive fit as the fields of ``calibration.params.QueueReactiveParams``."""
    return {
        "max_queue": qr.max_queue,
        "limit_rates": _floats(_carry(qr.limit.rate)),
        "cancel_rates": _floats(_carry(qr.cancel.rate)),
        "market_rates": _floats(_carry(qr.market.rate[None, :])[0]),
        "theta": float(np.nan_to_num(qr.theta, nan=0.5)),
        "theta_reinit": float(np.nan_to_num(qr.theta_reinit, nan=0.0)),
    }


def calibrate_frames(
    events: pd.DataFrame,
    book: pd.DataFrame,
    spec: InstrumentSpec,
    *,
    sources: tuple[SourceFile, ...] = (),
    levels: int = 10,
    lot: float | None = None,
    reference: Reference = "auto",
    qr_levels: int = 2,
    max_queue: int = 10,
    fill_dt: float = 1.0,
    fill_depths: int = 10,
    vol_dt: float = 5.0,
    regime_dt: float | None = None,
    k_regimes: int = 2,
    spread_dt: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> Calibration:
    """Calibrate the market from canonical frames (see :func:`calibrate` for the parameters)."""
    timings: dict[str, float] = {}
    step = partial(timed_step, timings=timings, progress=progress)

    repairs: list[str] = []
    with step("prepare"):
        sample = prepare(events, book, spec, levels=levels, lot=lot, reference=reference)
    with step("sizes"):
        sizes = size_distributions(sample)
        if "limit" not in sizes:
            raise ValueError("events: no limit order kept, cannot calibrate")
        lim_sizes = sizes["limit"]
        unit = len(lim_sizes.probs) == 1
        mean_size = 1.0 if unit else lim_sizes.mean
    with step("cst"):
        cst = fit_cst(sample, mean_size=mean_size)
    with step("queue_reactive"):
        qr = fit_queue_reactive(sample, levels=min(qr_levels, levels), max_queue=max_queue)
    with step("fill_curve"):
        fill = fit_fill_curve(sample, dt=fill_dt, depths=fill_depths)
    with step("volatility"):
        vol = realized_volatility(sample, dt=vol_dt)
    with step("regimes"):
        try:
            regimes: dict[str, Any] = volatility_regimes(
                sample, dt=regime_dt, k_regimes=k_regimes
            ).__dict__.copy()
        except ValueError as exc:  # too short a sample: the other fits stand without it
            regimes = {"skipped": str(exc)}
    with step("spread"):
        spread = spread_transitions(sample, dt=spread_dt)

    lam = np.nan_to_num(cst.limit.rate, nan=0.0)
    lam_se = np.nan_to_num(cst.limit.se, nan=0.0)
    if not lam[0] > 0:
        raise ValueError("no limit order at distance 1: lambda(1) must be > 0")
    theta, theta_se = _fill_theta(cst.cancel.rate, cst.cancel.se, cst.cancel.exposure, repairs)
    k = fill.fit.k
    if not k > 0:
        repairs.append(f"fill curve: k = {k:.3g} <= 0 raised to 1e-6")
        k = 1e-6
    params = MarketParams(
        tick_size=spec.tick_size,
        lot_size=sample.lot,
        n_levels=levels,
        limit_rates=lam.tolist(),
        cancel_rates=theta.tolist(),
        market_rate=float(cst.market.rate[0]),
        size_distribution="unit" if unit else "discrete",
        size_probs=None if unit else lim_sizes.probs,
        fill_curve=FillCurveParams(A=fill.fit.A, k=k),
        mid_volatility=vol.sigma,
        initial_book="stationary",
    )
    std_errors: dict[str, Any] = {
        "limit_rates": _floats(lam_se),
        "cancel_rates": _floats(theta_se),
        "market_rate": float(cst.market.se[0]),
        "size_probs": None if unit else lim_sizes.probs_se,
        "fill_curve": {"A": fill.fit.se_A, "k": fill.fit.se_k},
        "mid_volatility": vol.se,
    }
    qr_fields = queue_reactive_fields(qr)
    try:
        qr_market = params.model_copy(
            update={"model": "queue_reactive", "queue_reactive": QueueReactiveParams(**qr_fields)}
        )
        qr_params: MarketParams | None = MarketParams.model_validate(qr_market.model_dump())
    except ValidationError as exc:
        qr_params = None
        reason = "; ".join(e["msg"] for e in exc.errors())
        repairs.append(f"queue-reactive market not built: {reason}")
    queue_reactive = {
        **qr_fields,
        "levels": int(qr.limit.rate.shape[0]),
        "std_errors": {
            "limit_rates": _floats(qr.limit.se),
            "cancel_rates": _floats(qr.cancel.se),
            "market_rates": _floats(qr.market.se),
            "theta": qr.theta_se,
            "theta_reinit": qr.theta_reinit_se,
        },
        "counts": {
            "limit": _floats(qr.limit.n_events),
            "cancel": _floats(qr.cancel.n_events),
            "market": _floats(qr.market.n_events),
            "depletions": qr.theta_n,
            "reference_moves": qr.theta_reinit_n,
        },
        "exposure_s": {"level": _floats(qr.limit.exposure), "best": _floats(qr.market.exposure)},
    }
    counts = {
        "limit": _floats(cst.limit.n_events),
        "cancel": _floats(cst.cancel.n_events),
        "market": int(cst.market.n_events[0]),
        "limit_exposure_s": _floats(cst.limit.exposure),
        "cancel_exposure_order_s": _floats(cst.cancel.exposure),
        "fill_curve": {
            "delta_ticks": _floats(fill.delta),
            "fills": _floats(fill.fills),
            "exposure_s": _floats(fill.exposure),
            "pearson_chi2_per_df": fill.fit.pearson_chi2_per_df,
        },
        "volatility_returns": vol.n,
    }
    start = pd.Timestamp(sample.start_ns, unit="ns", tz="UTC")
    end = pd.Timestamp(sample.end_ns, unit="ns", tz="UTC")
    data = {
        "symbol": spec.symbol,
        "tick_size": spec.tick_size,
        "feed_lot_size": spec.lot_size,
        "files": [{"path": relative_name(s.path), "sha256": s.sha256} for s in sources],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "open_seconds": sample.duration,
        "events_in": len(events),
        "order_flow_events": int(sample.kind.size),
    }
    settings = {
        "levels": levels,
        "lot": sample.lot,
        "reference": sample.reference,
        "qr_levels": int(qr.limit.rate.shape[0]),
        "max_queue": max_queue,
        "fill_dt_s": fill_dt,
        "fill_depths": fill_depths,
        "vol_dt_s": vol_dt,
        "regime_dt_s": regimes.get("dt"),
        "k_regimes": k_regimes,
        "spread_dt_s": spread_dt,
        "mean_size_for_theta": mean_size,
    }
    return Calibration(
        params=params,
        std_errors=std_errors,
        queue_reactive=queue_reactive,
        volatility_regimes=regimes,
        spread=spread.__dict__.copy(),
        sizes={name: s.__dict__.copy() for name, s in sizes.items()},
        counts=counts,
        data=data,
        settings=settings,
        notes={k: int(v) for k, v in sample.notes.items()},
        repairs=repairs,
        timings=timings,
        queue_reactive_params=qr_params,
    )


def calibrate(md: MarketData, **kwargs: Any) -> Calibration:
    """Calibrate the order-book market (docs/calibration.md) on one loaded dataset.

    :param md: a dataset from :mod:`data` (events, book, spec, sources).
    :param levels: ``L``, distances fitted per side (``MarketParams.n_levels``).
    :param lot: base units per lot; ``None``: the median limit-order size.
    :param reference: distances from the ``"opposite"`` or the ``"own"`` best, or ``"auto"``
        (:mod:`calibration.sample`).
    :param qr_levels: levels of the queue-reactive fit; ``max_queue``: its largest queue bin.
    :param fill_dt: interval of the fill curve (s); ``fill_depths``: quotes per side.
    :param vol_dt: interval of the realized variance (s); ``regime_dt``: of the regime model
        (``None``: :func:`calibration.volatility.regime_interval`).
    :param k_regimes: volatility regimes; ``spread_dt``: sampling of the spread chain (s).
    :param progress: called with each fit's name as it starts.
    """
    out = calibrate_frames(md.events, md.book, md.spec, sources=md.sources, **kwargs)
    out.data["loader_report"] = str(md.report)
    return out

"""Report files of an evaluation: QuantStats tear sheets, Riskfolio risk measures, seaborn figures.

Every function writes into a given directory and returns the paths it wrote; logging them to
MLflow is the caller's business (through :mod:`tracking`). Nothing here opens a network
connection: the tear sheet has no benchmark (a ticker would make QuantStats download it) and
its template's only external link (a favicon) is removed.

Returns given to QuantStats and Riskfolio are PnL over a capital base (see
:mod:`evaluation.metrics`); a series without dates is laid on consecutive business days, one
return per session (for an episodic simulator: one episode per session).
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

SESSION_START = "2024-01-02"
"""First business day of the calendar laid on undated returns."""

DPI = 110
FAN_QUANTILES = ((0.05, 0.95), (0.25, 0.75))
"""Bands of the PnL fan (outer, inner), with the median line."""


def session_index(n: int, start: str = SESSION_START) -> pd.DatetimeIndex:
    """``n`` consecutive business days from ``start``: the dates laid on undated returns."""
    return pd.bdate_range(start, periods=n, name="session")


def _dated(returns: pd.Series, name: str) -> pd.Series:
    """``returns`` checked finite, on business days from :data:`SESSION_START` if undated."""
    if len(returns) < 2:
        raise ValueError(f"{name}: expected at least 2 returns, got {len(returns)}")
    bad = ~np.isfinite(returns.to_numpy(np.float64))
    if bad.any():
        raise ValueError(
            f"{name}: expected finite returns, row {int(np.flatnonzero(bad)[0])} is not"
        )
    if isinstance(returns.index, pd.DatetimeIndex):
        return returns
    out = returns.copy()
    out.index = session_index(len(returns))
    return out


@contextmanager
def _quiet_third_party() -> Iterator[None]:
    """Silence font fallbacks and deprecation chatter of the plotting libraries."""
    font_logger = logging.getLogger("matplotlib.font_manager")
    level = font_logger.level
    font_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for module in ("quantstats", "seaborn", "riskfolio", "matplotlib", "pandas"):
                warnings.filterwarnings("ignore", module=module + r"(\..*)?")
            yield
    finally:
        font_logger.setLevel(level)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- QuantStats


def tear_sheet(
    returns: pd.Series,
    path: str | Path,
    title: str,
    periods_per_year: int = 252,
    parameters: Mapping[str, object] | None = None,
) -> Path:
    """QuantStats HTML tear sheet of one policy's returns, written to ``path``.

    Uncompounded (``compounded=False``: PnL over a fixed capital adds up), no benchmark and
    no risk-free rate. ``periods_per_year``: 252 when each return is one session or one
    episode; :func:`evaluation.metrics.periods_per_year` for per-step returns (then dates
    must come with the series). ``parameters`` are shown in the sheet's subtitle.
    """
    series = _dated(pd.Series(returns, dtype=np.float64), "returns")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # quantstats sets a seaborn theme and the Arial font when imported: keep that local
    with matplotlib.rc_context(), _quiet_third_party():
        import quantstats as qs

        qs.reports.html(
            series,
            benchmark=None,
            rf=0.0,
            title=title,
            output=str(out),
            compounded=False,
            periods_per_year=periods_per_year,
            parameters=dict(parameters or {}),
            strategy_title=title,
        )
    plt.close("all")
    text = out.read_text(encoding="utf-8")
    out.write_text(re.sub(r"<link[^>]*favicon[^>]*>\s*", "", text), encoding="utf-8")
    return out


# --------------------------------------------------------------------------- Riskfolio


def risk_table(returns: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Riskfolio risk measures of each column's returns (one row per column).

    Columns of the result (fractions of capital, positive = a loss; ``alpha`` = 1 - confidence):
    ``VaR`` / ``CVaR`` (``VaR_Hist``, ``CVaR_Hist``: order-statistic quantile and the
    Rockafellar-Uryasev tail mean, 2000), ``EVaR`` (``EVaR_Hist``: entropic VaR, Ahmadi-Javid,
    2012), ``WR`` (worst realization), and of the uncompounded cumulative returns ``MDD``,
    ``ADD`` (average drawdown), ``DaR`` / ``CDaR`` (drawdown at risk and conditional drawdown
    at risk, Chekhlov, Uryasev & Zabarankin, 2005), ``EDaR``, ``UCI`` (ulcer index).
    All are positively homogeneous: multiply by the capital for cash units.
    """
    from riskfolio import RiskFunctions as rk

    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha: expected in (0, 0.5), got {alpha}")
    rows = {}
    with _quiet_third_party():
        for name in returns.columns:
            x = np.asarray(returns[name], np.float64).reshape(-1, 1)
            if not np.all(np.isfinite(x)):
                raise ValueError(f"returns[{name!r}]: expected finite values")
            rows[name] = {
                "VaR": rk.VaR_Hist(x, alpha),
                "CVaR": rk.CVaR_Hist(x, alpha),
                "EVaR": rk.EVaR_Hist(x, alpha)[0],
                "WR": rk.WR(x),
                "MDD": rk.MDD_Abs(x),
                "ADD": rk.ADD_Abs(x),
                "DaR": rk.DaR_Abs(x, alpha),
                "CDaR": rk.CDaR_Abs(x, alpha),
                "EDaR": rk.EDaR_Abs(x, alpha)[0],
                "UCI": rk.UCI_Abs(x),
            }
    table = pd.DataFrame(rows).T.astype(np.float64)
    table.index.name = "policy"
    return table


def risk_plots(
    returns: pd.Series, directory: str | Path, label: str, alpha: float = 0.05, scale: float = 1.0
) -> list[Path]:
    """Riskfolio's return histogram with its risk measures, and its drawdown chart, as PNGs.

    ``returns``: one policy's returns (fractions of capital; undated ones are laid on
    business days, one per session). Writes ``<label>_risk_hist.png`` and
    ``<label>_drawdown.png``. ``scale`` multiplies the returns before plotting (the titles say
    so): every measure shown is positively homogeneous, and Riskfolio's relativistic VaR / DaR
    solves (CLARABEL) often fail on returns of order 1e-4 to 1e-2, falling back to one that takes
    minutes; :func:`plot_scale` gives a power of ten that avoids it.
    """
    import riskfolio as rp

    if not scale > 0:
        raise ValueError(f"scale: expected > 0, got {scale}")
    series = _dated(pd.Series(returns, dtype=np.float64), "returns") * scale
    unit = "fraction of capital" if scale == 1.0 else f"fraction of capital x {scale:g}"
    frame = series.to_frame(label)
    w = pd.Series([1.0], index=[label], name="weights")
    d = Path(directory)
    paths = []
    with _quiet_third_party():
        fig, ax = plt.subplots(figsize=(11, 6))
        rp.PlotFunctions.plot_hist(frame, w, alpha=alpha, bins=40, ax=ax)
        ax.set_title(f"{label}: distribution of returns ({unit}) and risk measures")
        ax.set_xlabel(f"return per session (%, {unit})")
        ax.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.01, 1.0))
        paths.append(_save(fig, d / f"{_slug(label)}_risk_hist.png"))

        fig = plt.figure(figsize=(11, 7))
        rp.PlotFunctions.plot_drawdown(frame, w, alpha=alpha, height=7, width=11)
        axes = [a for a in fig.axes if a.axison]
        axes[0].set_title(f"{label}: cumulative return (compounded, {unit})")
        axes[1].set_title(f"{label}: uncompounded drawdown and drawdown risk measures")
        axes[1].legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.01, 1.0))
        for a in axes:
            a.set_xlabel("session")
        paths.append(_save(fig, d / f"{_slug(label)}_drawdown.png"))
    return paths


def plot_scale(returns: np.ndarray, target: float = 0.01) -> float:
    """The power of ten (>= 1) that brings the standard deviation of ``returns`` to at least
    ``target``: the ``scale`` of :func:`risk_plots`."""
    sd = float(np.std(np.asarray(returns, np.float64)))
    if not sd > 0 or sd >= target:
        return 1.0
    return float(10.0 ** math.ceil(math.log10(target / sd)))


# --------------------------------------------------------------------------- seaborn figures


def pnl_fan(
    paths: Mapping[str, np.ndarray],
    times: np.ndarray,
    directory: str | Path,
    time_unit: str = "s",
) -> Path:
    """Quantile fan of cumulative PnL paths over time, one colour per policy.

    ``paths[label]``: ``(N, T + 1)`` cumulative PnL (cash units) of ``N`` episodes on the
    ``times`` grid. Median line, 25-75% and 5-95% bands across episodes.
    """
    t = np.asarray(times, np.float64)
    fig, ax = plt.subplots(figsize=(10, 5))
    colours = sns.color_palette("colorblind", len(paths))
    for colour, (label, p) in zip(colours, paths.items(), strict=True):
        p = np.asarray(p, np.float64)
        if p.ndim != 2 or p.shape[1] != t.size:
            raise ValueError(f"paths[{label!r}]: expected shape (N, {t.size}), got {p.shape}")
        for (lo, hi), alpha in zip(FAN_QUANTILES, (0.15, 0.3), strict=True):
            ax.fill_between(
                t, *np.quantile(p, [lo, hi], axis=0), color=colour, alpha=alpha, linewidth=0
            )
        ax.plot(t, np.median(p, axis=0), color=colour, label=f"{label} (N={p.shape[0]})")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_ylabel("cumulative PnL (cash units)")
    ax.set_title("PnL fan: median, 25-75% and 5-95% of episodes")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, Path(directory) / "pnl_fan.png")


def inventory_distribution(inventories: Mapping[str, np.ndarray], directory: str | Path) -> Path:
    """Distribution of the inventory held over all steps of all episodes, per policy (lots)."""
    frame = pd.concat(
        [
            pd.DataFrame({"inventory": np.asarray(q, np.float64).reshape(-1), "policy": label})
            for label, q in inventories.items()
        ],
        ignore_index=True,
    )
    lo, hi = frame["inventory"].min(), frame["inventory"].max()
    discrete = np.allclose(frame["inventory"], np.round(frame["inventory"]))
    bins = np.arange(lo - 0.5, hi + 1.5) if discrete and hi - lo <= 200 else 50
    fig, ax = plt.subplots(figsize=(10, 5))
    sns.histplot(
        frame,
        x="inventory",
        hue="policy",
        bins=bins,
        stat="probability",
        common_norm=False,
        element="step",
        fill=False,
        ax=ax,
    )
    ax.set_xlabel("inventory (lots)")
    ax.set_ylabel("fraction of steps")
    ax.set_title("Inventory held over all steps")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, Path(directory) / "inventory_distribution.png")


def quotes_against_inventory(quotes: Mapping[str, pd.DataFrame], directory: str | Path) -> Path:
    """Recorded bid and ask distance from the mid against inventory, per policy.

    ``quotes[label]``: columns ``inventory`` (lots), ``bid_depth`` and ``ask_depth``
    (``mid - bid`` and ``ask - mid``, price units), one row per step. Mean depth per inventory
    level with its 95% interval across steps.
    """
    rows = []
    for label, q in quotes.items():
        missing = {"inventory", "bid_depth", "ask_depth"} - set(q.columns)
        if missing:
            raise ValueError(f"quotes[{label!r}]: missing columns {sorted(missing)}")
        long = q.melt(
            id_vars="inventory",
            value_vars=["bid_depth", "ask_depth"],
            var_name="side",
            value_name="depth",
        )
        long["side"] = long["side"].str.removesuffix("_depth")
        long["policy"] = label
        rows.append(long.dropna())
    fig, ax = plt.subplots(figsize=(10, 5))
    sns.lineplot(
        pd.concat(rows, ignore_index=True),
        x="inventory",
        y="depth",
        hue="policy",
        style="side",
        errorbar=("ci", 95),
        marker="o",
        ax=ax,
    )
    ax.set_xlabel("inventory (lots)")
    ax.set_ylabel("quote distance from mid (price units)")
    ax.set_title("Quoted depth against inventory (recorded steps, mean and 95% CI)")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, Path(directory) / "quotes_vs_inventory.png")


def fill_rate_against_queue(tables: Mapping[str, pd.DataFrame], directory: str | Path) -> Path:
    """Fill probability against the queue ahead at entry, per policy, with Wilson intervals.

    ``tables[label]``: the output of :func:`evaluation.metrics.fill_rate_by_queue`.
    """
    fig, ax = plt.subplots(figsize=(10, 5))
    colours = sns.color_palette("colorblind", len(tables))
    for colour, (label, t) in zip(colours, tables.items(), strict=True):
        x = t["queue_ahead_mid"].to_numpy(np.float64)
        y = t["fill_rate"].to_numpy(np.float64)
        err = np.vstack([y - t["ci_low"].to_numpy(), t["ci_high"].to_numpy() - y])
        err = np.maximum(err, 0.0)  # Wilson bounds at 0 or 1 fills can miss y by rounding
        ax.errorbar(
            x,
            y,
            yerr=err,
            color=colour,
            marker="o",
            capsize=3,
            label=f"{label} ({int(t['orders'].sum())} orders)",
        )
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("queue ahead at entry (lots, bin median)")
    ax.set_ylabel("fill probability")
    ax.set_title("Fill rate against queue position (95% Wilson intervals)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, Path(directory) / "fill_rate_vs_queue.png")


def markouts_by_horizon(
    markouts: Mapping[str, np.ndarray], horizons: Sequence[float], directory: str | Path
) -> Path:
    """Mean mark-out (bps) against horizon, per policy, with 95% intervals across fills.

    ``markouts[label]``: ``(F, H)`` from :func:`evaluation.metrics.markouts` (NaN dropped).
    """
    h = np.asarray(horizons, np.float64)
    rows = []
    for label, m in markouts.items():
        m = np.asarray(m, np.float64)
        if m.ndim != 2 or m.shape[1] != h.size:
            raise ValueError(f"markouts[{label!r}]: expected shape (F, {h.size}), got {m.shape}")
        frame = pd.DataFrame(m, columns=h).melt(var_name="horizon", value_name="markout")
        frame["policy"] = label
        rows.append(frame.dropna())
    fig, ax = plt.subplots(figsize=(10, 5))
    sns.pointplot(
        pd.concat(rows, ignore_index=True),
        x="horizon",
        y="markout",
        hue="policy",
        errorbar=("ci", 95),
        dodge=0.3 if len(rows) > 1 else False,
        ax=ax,
    )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(h.size), [f"{v:g}" for v in h])
    ax.set_xlabel("horizon after the fill (s; categorical axis)")
    ax.set_ylabel("mark-out (bps of fill price, + = gain)")
    ax.set_title("Mark-outs by horizon (mean and 95% CI across fills)")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, Path(directory) / "markouts.png")


# --------------------------------------------------------------------------- summary page


def summary_page(
    directory: str | Path,
    sections: Mapping[str, Sequence[Path | pd.DataFrame | str]],
    title: str = "Evaluation report",
) -> Path:
    """One self-contained HTML page, ``<directory>/index.html``.

    Each section lists items: a PNG path is embedded (base64), an HTML path (a tear sheet) is
    linked relative to the page, a DataFrame becomes a table, a string a paragraph.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:0.9em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, items in sections.items():
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for item in items:
            parts.append(_html_item(item, d))
    parts.append("</body></html>")
    page = d / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    return page


def _html_item(item: Path | pd.DataFrame | str, page_dir: Path) -> str:
    if isinstance(item, pd.DataFrame):
        return item.to_html(float_format=lambda v: f"{v:.4g}", border=0)
    if isinstance(item, str):
        return f"<p>{html.escape(item)}</p>"
    path = Path(item)
    if not path.is_file():
        raise FileNotFoundError(f"summary item {path}: expected an existing file")
    suffix = path.suffix.lower()
    if suffix == ".png":
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return (
            f'<figure><img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
        )
    if suffix in (".html", ".htm"):
        href = Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()
        return f'<p><a href="{html.escape(href)}">{html.escape(path.stem)}</a></p>'
    raise ValueError(f"summary item {path}: expected a .png, .html, DataFrame or text")


def slug(label: str) -> str:
    """``label`` as a file-name stem (letters, digits, ``_.-``): how report files are named."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "policy"


_slug = slug

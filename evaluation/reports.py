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
    text = re.sub(r"<link[^>]*favicon[^>]*>\s*", "", text)
    if not (series < 0).any():
        text = _explain_no_loss(text, series.size)
    out.write_text(text, encoding="utf-8")
    return out


NO_LOSS_NOTE_ID = "mmrl-no-loss-note"
"""``id`` of the note a tear sheet of a never-losing series carries (:func:`tear_sheet`)."""
_BLANK = {"", "-", "%", "-%", "nan", "nan%"}
_NO_LOSS_VALUES = {  # what a metric QuantStats leaves blank is when no return is negative
    "Max Drawdown": "0%",
    "Longest DD Days": "0",
    "Max DD Date": "none",
    "Max DD Period Start": "none",
    "Max DD Period End": "none",
    "Avg. Drawdown": "0%",
    "Avg. Drawdown Days": "0",
    "Avg. Loss": "none",
    "Avg. Down Month": "none",
}
_ZERO_OVER_ZERO_LOSS = ("Profit Factor", "Common Sense Ratio")
"""Ratios over the sum of losses that QuantStats shows as 0.0 when there is no loss."""


def _explain_no_loss(text: str, n: int) -> str:
    """The tear sheet ``text`` of a series without a negative return, its blank cells filled.

    QuantStats leaves the drawdown rows and the ratios over losses or downside deviation blank
    ("-", "%" or empty) when nothing is lost, and shows Profit Factor as 0.0: each such cell
    gets its value (a 0 drawdown) or "undefined", marked with an asterisk, and a note above
    the metrics table and in the empty drawdown table says why.
    """
    filled: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2).strip()
        if value.lower() in _BLANK:
            new = _NO_LOSS_VALUES.get(html.unescape(name), "undefined")
        elif html.unescape(name) in _ZERO_OVER_ZERO_LOSS and value in ("0", "0.0"):
            new = "undefined"
        else:
            return match.group(0)
        filled.append(html.unescape(name))
        return f"<tr><td>{name}</td><td>{new}*</td></tr>"

    text = re.sub(r"<tr><td>([^<]+)</td><td>([^<]*)</td></tr>", fill, text)
    note = (
        f"* No losing episode: none of the {n} returns is below 0, so the drawdown is 0 (no "
        "drawdown period) and Sortino and the other ratios marked * are undefined: Sortino "
        "has no downside deviation to divide by, the others no loss. QuantStats leaves these "
        "cells blank (or shows 0.0)."
    )
    block = (
        f'<p id="{NO_LOSS_NOTE_ID}" style="background:#fff3cd;border:1px solid #e0c060;'
        f'padding:6px 8px">{html.escape(note)}</p>'
    )
    text, found = re.subn(
        r"(<h3>Key Performance Metrics</h3>)", lambda m: block + "\n" + m.group(1), text, count=1
    )
    if not found:  # another template: the note leads the page body
        text = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + "\n" + block, text, count=1)
    text = re.sub(
        r'(<div id="ddinfo">.*?<tbody>)(\s*</tbody>)',
        lambda m: (
            m.group(1)
            + '\n<tr><td colspan="4">none: no losing episode, no drawdown</td></tr>'
            + m.group(2)
        ),
        text,
        count=1,
        flags=re.S,
    )
    return text


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


RISK_UNIT = "fraction of capital"
"""Unit of :func:`risk_table` and of the figures of :func:`risk_plots`: PnL over the capital."""


def cumulative_returns(returns: pd.Series | np.ndarray) -> np.ndarray:
    """Uncompounded cumulative return, ``0`` then the running sum of ``returns`` (``(N + 1,)``).

    The path of PnL over a fixed capital when each return is an independent episode: nothing
    is reinvested, so returns add up. Riskfolio's drawdown measures (``*_Abs``) use this path.
    """
    x = np.asarray(returns, np.float64).reshape(-1)
    return np.concatenate([[0.0], np.cumsum(x)])


def drawdowns(returns: pd.Series | np.ndarray) -> np.ndarray:
    """Drawdown of :func:`cumulative_returns` below its running peak (``<= 0``, ``(N + 1,)``)."""
    path = cumulative_returns(returns)
    return path - np.maximum.accumulate(path)


def _capital_text(capital: float | None, cash_unit: str) -> str:
    if capital is None:
        return RISK_UNIT
    return f"{RISK_UNIT}; capital {capital:g} {cash_unit} per episode"


def _cash_axis(ax: plt.Axes, capital: float | None, cash_unit: str, which: str) -> None:
    """A second axis in cash units (``capital`` x the fraction), when the capital is known."""
    if capital is None:
        return
    forward, inverse = (lambda v: v * capital), (lambda v: v / capital)
    if which == "x":
        ax.secondary_xaxis("top", functions=(forward, inverse)).set_xlabel(cash_unit)
    else:
        ax.secondary_yaxis("right", functions=(forward, inverse)).set_ylabel(cash_unit)


def risk_figures(
    returns: pd.Series,
    label: str,
    alpha: float = 0.05,
    capital: float | None = None,
    cash_unit: str = "cash units",
) -> tuple[plt.Figure, plt.Figure]:
    """The figures of :func:`risk_plots`: return histogram, and cumulative return with drawdown.

    Both are in the units of :func:`risk_table` (:data:`RISK_UNIT`), uncompounded, with the
    risk measures of :func:`risk_table` on the same returns (Riskfolio's ``RiskFunctions``).
    Riskfolio's own ``plot_drawdown`` compounds the returns (its top panel is
    ``cumprod(1 + r)``, not PnL over a fixed capital when episodes are independent) and its
    ``plot_hist`` labels values in percent with two decimals (0.00% for returns of 1e-5) and
    adds relativistic VaR / DaR solves that stall on small returns; so both are drawn here with
    matplotlib / seaborn from Riskfolio's numbers. ``capital`` (in ``cash_unit``), when given,
    is stated in the titles and adds a cash axis.
    """
    series = _dated(pd.Series(returns, dtype=np.float64), "returns")
    x = series.to_numpy()
    n = x.size
    row = risk_table(pd.DataFrame({label: x}), alpha=alpha).loc[label]
    unit = _capital_text(capital, cash_unit)
    conf = f"{1 - alpha:.0%}"
    g = ".3g"

    hist, ax = plt.subplots(figsize=(11, 5.5), layout="constrained")
    sns.histplot(x=x, bins=40, stat="probability", color="skyblue", edgecolor="white", ax=ax)
    lines = [
        (float(np.mean(x)), f"mean: {np.mean(x):{g}}", "b"),
        (-row["VaR"], f"{conf} VaR: {row['VaR']:{g}}", "darkorange"),
        (-row["CVaR"], f"{conf} CVaR: {row['CVaR']:{g}}", "limegreen"),
        (-row["EVaR"], f"{conf} EVaR: {row['EVaR']:{g}}", "dodgerblue"),
        (-row["WR"], f"worst realization: {row['WR']:{g}}", "darkgrey"),
    ]
    for value, text, colour in lines:
        ax.axvline(value, color=colour, label=text)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    ax.set_title(f"{label}: distribution of {n} returns ({unit})\nrisk measures as in the "
                 "risk table (losses positive, drawn at minus their value)")  # fmt: skip
    ax.set_xlabel(f"return per episode ({RISK_UNIT})")
    ax.set_ylabel("fraction of episodes")
    _cash_axis(ax, capital, cash_unit, "x")
    ax.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.01, 1.0))
    ax.grid(linestyle=":")

    dd, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 8), sharex=True, height_ratios=[2, 3], layout="constrained"
    )
    steps = np.arange(n + 1)
    top.plot(steps, cumulative_returns(x), color="b", label="cumulative return")
    top.axhline(0.0, color="grey", linewidth=0.8)
    top.set_title(f"{label}: cumulative return, uncompounded (running sum over {n} "
                  f"independent episodes)\n{unit}")  # fmt: skip
    top.set_ylabel(RISK_UNIT)
    _cash_axis(top, capital, cash_unit, "y")
    drawdown = drawdowns(x)
    bottom.fill_between(steps, drawdown, 0.0, color="orange", alpha=0.3)
    bottom.plot(steps, drawdown, color="orange", label="drawdown")
    measures = [
        ("UCI", "ulcer index", "b"),
        ("ADD", "average drawdown", "r"),
        ("DaR", f"{conf} DaR", "fuchsia"),
        ("CDaR", f"{conf} CDaR", "limegreen"),
        ("EDaR", f"{conf} EDaR", "dodgerblue"),
        ("MDD", "maximum drawdown", "darkgrey"),
    ]
    for key, name, colour in measures:
        bottom.axhline(-row[key], color=colour, label=f"{name}: {row[key]:{g}}")
    bottom.set_title(
        f"{label}: drawdown of the uncompounded cumulative return ({unit})\n"
        "drawdown measures as in the risk table, drawn at minus their value"
    )
    bottom.set_ylabel(RISK_UNIT)
    bottom.set_xlabel("episodes (one return each, in order)")
    _cash_axis(bottom, capital, cash_unit, "y")
    bottom.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.08, 1.0))
    for a in (top, bottom):
        a.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        a.grid(linestyle=":")
    return hist, dd


def risk_plots(
    returns: pd.Series,
    directory: str | Path,
    label: str,
    alpha: float = 0.05,
    scale: float = 1.0,
    capital: float | None = None,
    cash_unit: str = "cash units",
) -> list[Path]:
    """The figures of :func:`risk_figures` as ``<label>_risk_hist.png`` and
    ``<label>_drawdown.png`` in ``directory``; returns their paths.

    ``returns``: one policy's returns (:data:`RISK_UNIT`, one per episode). ``scale`` is no
    longer used (the figures are in the risk table's units and draw no conic solve); it is
    accepted so that existing callers run. ``capital`` / ``cash_unit``: see
    :func:`risk_figures`.
    """
    if not scale > 0:
        raise ValueError(f"scale: expected > 0, got {scale}")
    d = Path(directory)
    with _quiet_third_party():
        hist, dd = risk_figures(returns, label, alpha=alpha, capital=capital, cash_unit=cash_unit)
        return [
            _save(hist, d / f"{_slug(label)}_risk_hist.png"),
            _save(dd, d / f"{_slug(label)}_drawdown.png"),
        ]


def plot_scale(returns: np.ndarray, target: float = 0.01) -> float:
    """The power of ten (>= 1) that brings the standard deviation of ``returns`` to at least
    ``target``. Formerly the ``scale`` of :func:`risk_plots`, which no longer needs one."""
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

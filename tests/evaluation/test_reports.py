"""Report files: an offline QuantStats tear sheet, Riskfolio risk measures, seaborn figures, the
summary page."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from evaluation import reports
from evaluation.metrics import (
    expected_shortfall,
    fill_rate_by_queue,
    max_drawdown,
    sharpe,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class NetworkAttempt(RuntimeError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every way out: Python sockets, name lookups, and libcurl (yfinance
    downloads through curl_cffi, below the socket module). Returns the attempts made."""
    attempts: list[str] = []

    def refuse(what: str):
        def _refuse(*args: object, **kwargs: object) -> None:
            attempts.append(what)
            raise NetworkAttempt(what)

        return _refuse

    class GuardedSocket(socket.socket):
        def __init__(self, *args: object, **kwargs: object) -> None:
            refuse("socket.socket")()

    monkeypatch.setattr(socket, "socket", GuardedSocket)
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    curl = pytest.importorskip("curl_cffi.curl")
    monkeypatch.setattr(curl.Curl, "perform", refuse("curl_cffi.Curl.perform"))
    import quantstats.utils

    monkeypatch.setattr(quantstats.utils, "download_returns", refuse("download_returns"))
    return attempts


@pytest.fixture(scope="module")
def episode_returns() -> dict[str, np.ndarray]:
    """Episode PnL over capital of two policies (one return per episode)."""
    rng = np.random.default_rng(11)
    return {"cj": rng.normal(2e-3, 4e-3, 300), "fixed": rng.normal(1e-3, 6e-3, 300)}


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000


def test_the_network_guard_sees_a_benchmark_download(no_network, tmp_path):
    # the guard is what makes the next test meaningful: a ticker benchmark is caught
    import quantstats as qs

    r = pd.Series(np.full(30, 1e-3), index=reports.session_index(30))
    with pytest.raises(NetworkAttempt):
        qs.reports.html(r, benchmark="SPY", output=str(tmp_path / "x.html"))
    assert no_network


def test_tear_sheet_is_written_offline(no_network, tmp_path, episode_returns):
    r = episode_returns["cj"]
    path = reports.tear_sheet(pd.Series(r), tmp_path / "cj" / "tearsheet.html", "CJ optimum")
    assert no_network == []
    text = path.read_text(encoding="utf-8")
    assert "CJ optimum" in text
    assert "favicon" not in text
    # the sheet's Sharpe (252 sessions a year, ddof=1) is ours, to its 2 decimals
    shown = re.search(r"<tr><td>Sharpe</td><td>(-?[\d.]+)</td>", text)
    assert shown is not None
    assert float(shown.group(1)) == pytest.approx(sharpe(r, 252), abs=0.005)
    assert text.count("<svg") >= 5  # the charts are inline
    assert reports.NO_LOSS_NOTE_ID not in text  # the series loses: nothing to explain


def _metric_cells(text: str) -> dict[str, str]:
    """The tear sheet's key metrics, name -> shown value."""
    return dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td></tr>", text))


def test_tear_sheet_of_a_policy_that_never_loses_says_why_cells_are_empty(no_network, tmp_path):
    # QuantStats leaves Max Drawdown as "%" and Sortino as "-" when no return is negative
    r = pd.Series(np.random.default_rng(5).uniform(1e-4, 2e-3, 120))
    text = reports.tear_sheet(r, tmp_path / "win.html", "never loses").read_text(encoding="utf-8")
    assert no_network == []
    note = re.search(rf'<p id="{reports.NO_LOSS_NOTE_ID}"[^>]*>([^<]+)</p>', text)
    assert note is not None
    assert "No losing episode" in note.group(1) and "none of the 120 returns" in note.group(1)
    assert "drawdown is 0" in note.group(1) and "no downside deviation" in note.group(1)
    cells = _metric_cells(text)
    assert cells["Max Drawdown"] == "0%*"
    assert cells["Longest DD Days"] == "0*"
    assert cells["Sortino"] == cells["Calmar"] == cells["Profit Factor"] == "undefined*"
    blank = {name: v for name, v in cells.items() if v.strip() in ("", "-", "%", "nan")}
    assert blank == {}
    assert "none: no losing episode" in text  # the otherwise empty drawdown table
    assert text.index(reports.NO_LOSS_NOTE_ID) < text.index("Key Performance Metrics")


def test_tear_sheet_rejects_bad_returns(tmp_path):
    with pytest.raises(ValueError, match="returns: expected finite returns, row 1"):
        reports.tear_sheet(pd.Series([0.1, np.nan, 0.2]), tmp_path / "t.html", "t")


def test_risk_table_orders_and_agrees_with_our_metrics(episode_returns):
    frame = pd.DataFrame(episode_returns)
    table = reports.risk_table(frame, alpha=0.05)
    assert list(table.index) == ["cj", "fixed"]
    for name, row in table.iterrows():
        x = frame[name].to_numpy()
        # VaR <= CVaR <= EVaR <= worst realization; DaR <= CDaR <= EDaR <= MDD; ADD <= MDD
        assert row["VaR"] <= row["CVaR"] <= row["EVaR"] <= row["WR"]
        assert row["DaR"] <= row["CDaR"] <= row["EDaR"] <= row["MDD"]
        assert row["ADD"] <= row["MDD"]
        assert row["MDD"] == pytest.approx(max_drawdown(np.concatenate([[0.0], np.cumsum(x)])))
    # with alpha * n an integer (n = 300 -> 15 returns) and no ties, Riskfolio's CVaR (mean of
    # the 15 worst) is our historical ES: the interpolated 5% quantile lies between the 15th
    # and 16th worst, so the same 15 returns make the tail
    cj = frame["cj"].to_numpy()
    assert table.loc["cj", "CVaR"] == pytest.approx(expected_shortfall(cj, 0.95), abs=1e-12)
    # positive homogeneity: doubling the returns doubles every measure
    doubled = reports.risk_table(2.0 * frame[["cj"]], alpha=0.05)
    np.testing.assert_allclose(doubled.loc["cj"], 2.0 * table.loc["cj"], rtol=1e-5)


def _name(line: Any) -> str:
    """A legend entry's name: its label up to the colon ("95% VaR: 2.1e-05" -> "95% VaR")."""
    return str(line.get_label()).split(":")[0]


def _first(data: Any) -> float:
    return float(np.asarray(data, np.float64)[0])


def test_risk_figures_are_uncompounded_in_the_risk_tables_units():
    # inventory returns of a SAC policy: fractions of capital of order 1e-5, as in cj_sac
    rng = np.random.default_rng(7)
    x = rng.standard_t(4, 400) * 1.2e-5 + 2e-6
    table = reports.risk_table(pd.DataFrame({"sac": x}))
    hist, dd = reports.risk_figures(pd.Series(x), "sac", capital=10_000.0, cash_unit="currency")
    try:
        top, bottom = (a for a in dd.axes if a.get_ylabel() == reports.RISK_UNIT)
        # the cumulative return is the plain sum of the returns, in the table's units (no x1e4
        # scale, no compounding: cumprod(1 + 1e4 x) reached 400% on such returns)
        cumulative = np.asarray(top.lines[0].get_ydata(), np.float64)
        np.testing.assert_allclose(cumulative, np.r_[0.0, np.cumsum(x)], atol=0)
        np.testing.assert_array_equal(np.asarray(top.lines[0].get_xdata()), np.arange(x.size + 1))
        drawdown = np.r_[0.0, np.cumsum(x)] - np.maximum.accumulate(np.r_[0.0, np.cumsum(x)])
        plotted = np.asarray(bottom.lines[0].get_ydata(), np.float64)
        np.testing.assert_allclose(plotted, drawdown, atol=0)
        assert -drawdown.min() == pytest.approx(table.loc["sac", "MDD"], rel=1e-9)
        # the drawdown measures drawn are the table's, at minus their value
        levels = {_name(ln): -_first(ln.get_ydata()) for ln in bottom.lines[1:]}
        for key, name in (
            ("MDD", "maximum drawdown"),
            ("CDaR", "95% CDaR"),
            ("UCI", "ulcer index"),
        ):
            assert levels[name] == pytest.approx(table.loc["sac", key], rel=1e-12)
        # the histogram: returns on the table's scale, VaR / CVaR lines at the table's values
        (ax,) = (a for a in hist.axes if reports.RISK_UNIT in a.get_xlabel())
        edges = [p.get_x() for p in ax.patches if isinstance(p, Rectangle)]
        assert min(edges) == pytest.approx(x.min()) and max(edges) < x.max()
        lines = {_name(ln): _first(ln.get_xdata()) for ln in ax.lines}
        assert -lines["95% VaR"] == pytest.approx(table.loc["sac", "VaR"], rel=1e-12)
        assert -lines["95% CVaR"] == pytest.approx(table.loc["sac", "CVaR"], rel=1e-12)
        # each figure states its unit and the capital an episode is measured against
        titles = [a.get_title() for f in (hist, dd) for a in f.axes if a.get_title()]
        assert len(titles) == 3
        assert all("fraction of capital; capital 10000 currency per episode" in t for t in titles)
        assert "uncompounded" in top.get_title()
    finally:
        plt.close(hist)
        plt.close(dd)


def test_risk_plots_are_pngs(tmp_path, episode_returns):
    paths = reports.risk_plots(pd.Series(episode_returns["cj"]), tmp_path, "cj opt")
    assert [p.name for p in paths] == ["cj_opt_risk_hist.png", "cj_opt_drawdown.png"]
    assert all(is_png(p) for p in paths)


def test_seaborn_figures_and_summary_page(tmp_path, no_network):
    rng = np.random.default_rng(3)
    t = np.linspace(0.0, 60.0, 61)
    pnl = {k: np.cumsum(rng.normal(mu, 0.3, (50, 61)), axis=1) for k, mu in (("a", 0.02), ("b", 0))}
    inventory = {"a": rng.integers(-3, 4, (50, 61)), "b": rng.integers(-6, 7, (50, 61))}
    q = rng.integers(-3, 4, 300).astype(float)
    quotes = {
        "a": pd.DataFrame(
            {"inventory": q, "bid_depth": 0.3 + 0.05 * q, "ask_depth": 0.3 - 0.05 * q}
        )
    }
    ahead = rng.exponential(20.0, 400)
    filled = rng.uniform(size=400) < np.exp(-ahead / 30.0)
    tables = {"a": fill_rate_by_queue(ahead, filled, bins=4)}
    horizons = (0.0, 1.0, 10.0)
    marks = {"a": rng.normal([2.0, 1.0, -0.5], 2.0, (200, 3))}

    figures = [
        reports.pnl_fan(pnl, t, tmp_path),
        reports.inventory_distribution(inventory, tmp_path),
        reports.quotes_against_inventory(quotes, tmp_path),
        reports.fill_rate_against_queue(tables, tmp_path),
        reports.markouts_by_horizon(marks, horizons, tmp_path),
    ]
    assert all(is_png(p) for p in figures)
    sheet = tmp_path / "sheets" / "a.html"
    sheet.parent.mkdir()
    sheet.write_text("<html></html>")
    table = pd.DataFrame({"sharpe": [1.25, 0.5]}, index=["a", "b"])
    page = reports.summary_page(
        tmp_path / "report", {"Tear sheets": [sheet], "Risk": [table, "note", *figures]}
    )
    text = page.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == len(figures)
    assert 'href="../sheets/a.html"' in text
    assert "<td>1.25</td>" in text and "<p>note</p>" in text
    assert no_network == []
    with pytest.raises(FileNotFoundError, match="missing.png"):
        reports.summary_page(tmp_path, {"x": [tmp_path / "missing.png"]})


def test_figures_reject_misshaped_input(tmp_path):
    with pytest.raises(ValueError, match=r"paths\['a'\]: expected shape \(N, 3\)"):
        reports.pnl_fan({"a": np.zeros((2, 4))}, np.arange(3.0), tmp_path)
    with pytest.raises(ValueError, match=r"markouts\['a'\]: expected shape \(F, 2\)"):
        reports.markouts_by_horizon({"a": np.zeros((5, 3))}, (1.0, 2.0), tmp_path)
    with pytest.raises(ValueError, match="missing columns"):
        reports.quotes_against_inventory({"a": pd.DataFrame({"inventory": [1]})}, tmp_path)

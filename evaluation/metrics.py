"""Trading metrics of a market maker, each defined once with its formula and units.

Inputs are plain arrays: a :class:`TradingRecord` of per-step series (decision times, mid,
cumulative mark-to-market PnL, inventory, the agent's quotes) and a :class:`Fills` table.
:func:`compute_metrics` gives every metric as a flat ``dict[str, float]`` whose snake_case
names are meant to be prefixed by the caller (``eval/<policy>/<name>``).

Conventions (stated once, used everywhere):

- **Returns.** A market maker has no natural price return series. The per-step return is the
  PnL increment over a stated capital base ``C`` (cash units): ``r_t = (P_t - P_{t-1}) / C``.
  Cumulative wealth is additive, ``W_t = C + P_t`` (no compounding).
- **Annualization** (intraday data). ``periods_per_year = seconds_per_year / dt`` with
  ``seconds_per_year = 252 * 6.5 * 3600`` (equities: 252 sessions of 6.5 h) or
  ``365 * 86400`` (crypto: continuous trading), ``dt`` the step length in seconds. The annual
  Sharpe is the per-step Sharpe times ``sqrt(periods_per_year)`` (exact under i.i.d.
  returns, Lo, 2002; serial correlation biases it: the per-step ratio is reported too).
- **VaR / ES** are losses (positive numbers) at confidence ``c`` (0.95, 0.99) of a sample of
  per-step returns or episode PnLs; ``historical`` is the empirical quantile with linear
  interpolation, ``gaussian`` the variance-covariance estimate (std with ``ddof=1``).
- **Mid** at time ``t`` is the mid in force over the step interval ``(time[k], time[k+1]]``
  that contains ``t``: ``mid[k]``, the last one recorded strictly before ``t``. A fill
  stamped at the end of its step is thus marked against the mid its quote was set from.
- **Mark-outs** are in basis points of the fill price, signed so that positive is a gain for
  the agent (side ``+1`` buy, ``-1`` sell).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

SECONDS_PER_YEAR = {
    "equities": 252 * 6.5 * 3600,  # 252 sessions of 6.5 h (NYSE / NASDAQ regular hours)
    "crypto": 365 * 86400,  # continuous trading, every day
}
"""Trading seconds per year by market calendar."""

Calendar = Literal["equities", "crypto"]
VaRMethod = Literal["historical", "gaussian"]

BPS = 1e4
DEFAULT_HORIZONS = (1.0, 5.0, 10.0, 60.0)
"""Mark-out horizons (seconds)."""


class Fills(NamedTuple):
    """The agent's fills, one row per fill (arrays of shape ``(F,)``).

    ``time``: seconds (same clock as :attr:`TradingRecord.time`); ``price``: price units;
    ``size``: lots (> 0); ``side``: ``+1`` the agent bought (its bid was hit), ``-1`` it sold;
    ``fee``: cash paid for the fill (price units x lots), negative for a rebate received;
    ``taker``: True when the agent's order took liquidity; ``queue_ahead``: lots ahead of the
    agent's order when it entered the book (NaN for a taker fill or when unknown).
    """

    time: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray
    fee: np.ndarray
    taker: np.ndarray
    queue_ahead: np.ndarray

    @classmethod
    def empty(cls) -> Fills:
        z = np.zeros(0)
        return cls(z, z, z, z, z, np.zeros(0, np.bool_), z)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Fills:
        """Fills from a table with columns ``time``, ``price``, ``size``, ``side`` and optionally
        ``fee``, ``taker``, ``queue_ahead`` (other columns are ignored)."""
        missing = {"time", "price", "size", "side"} - set(frame.columns)
        if missing:
            raise ValueError(f"fills table: missing columns {sorted(missing)}")
        optional = {c: frame[c].to_numpy() for c in ("fee", "taker", "queue_ahead") if c in frame}
        return cls.from_arrays(
            frame["time"].to_numpy(),
            frame["price"].to_numpy(),
            frame["size"].to_numpy(),
            frame["side"].to_numpy(),
            **optional,
        )

    @classmethod
    def from_arrays(
        cls,
        time: Sequence[float] | np.ndarray,
        price: Sequence[float] | np.ndarray,
        size: Sequence[float] | np.ndarray,
        side: Sequence[float] | np.ndarray,
        fee: Sequence[float] | np.ndarray | None = None,
        taker: Sequence[bool] | np.ndarray | None = None,
        queue_ahead: Sequence[float] | np.ndarray | None = None,
    ) -> Fills:
        """Validated fills table; ``fee`` defaults to 0, ``taker`` to False, ``queue_ahead``
        to NaN."""
        t = _vector("fills.time", time)
        n = t.size
        fills = cls(
            time=t,
            price=_vector("fills.price", price, n),
            size=_vector("fills.size", size, n),
            side=_vector("fills.side", side, n),
            fee=np.zeros(n) if fee is None else _vector("fills.fee", fee, n),
            taker=(
                np.zeros(n, np.bool_)
                if taker is None
                else np.asarray(_vector("fills.taker", taker, n), np.bool_)
            ),
            queue_ahead=(
                np.full(n, np.nan)
                if queue_ahead is None
                else _vector("fills.queue_ahead", queue_ahead, n, allow_nan=True)
            ),
        )
        if np.any(fills.price <= 0):
            raise ValueError(f"fills.price: expected > 0, row {_first(fills.price <= 0)}")
        if np.any(fills.size <= 0):
            raise ValueError(f"fills.size: expected > 0 lots, row {_first(fills.size <= 0)}")
        bad = ~np.isin(fills.side, (-1.0, 1.0))
        if bad.any():
            raise ValueError(f"fills.side: expected +1 (buy) or -1 (sell), row {_first(bad)}")
        return fills


class TradingRecord(NamedTuple):
    """Per-step series of one trading session or episode (arrays of shape ``(T + 1,)``).

    Row ``t`` is the state at decision time ``time[t]`` (seconds, strictly increasing):
    ``mid`` (price units), ``pnl`` the cumulative mark-to-market PnL ``X_t + q_t S_t - X_0 -
    q_0 S_0`` (cash units, fees included), ``inventory`` (lots), and the agent's quotes ``bid`` /
    ``ask`` live from ``time[t]`` to ``time[t+1]`` (price units, NaN for no quote; the last row's
    quotes are unused). ``fills`` holds the fills in ``(time[0], time[T]]``.
    Cash units are price units x lots: the caller applies any contract multiplier.
    """

    time: np.ndarray
    mid: np.ndarray
    pnl: np.ndarray
    inventory: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    fills: Fills

    @classmethod
    def from_arrays(
        cls,
        time: Sequence[float] | np.ndarray,
        mid: Sequence[float] | np.ndarray,
        pnl: Sequence[float] | np.ndarray,
        inventory: Sequence[float] | np.ndarray,
        bid: Sequence[float] | np.ndarray | None = None,
        ask: Sequence[float] | np.ndarray | None = None,
        fills: Fills | None = None,
    ) -> TradingRecord:
        """Validated record; missing quotes are NaN, missing fills an empty table."""
        t = _vector("record.time", time)
        n = t.size
        if n < 2:
            raise ValueError(f"record.time: expected at least 2 steps, got {n}")
        step = np.diff(t)
        if np.any(step <= 0):
            raise ValueError(f"record.time: expected strictly increasing, row {_first(step <= 0)}")
        nan = np.full(n, np.nan)
        rec = cls(
            time=t,
            mid=_vector("record.mid", mid, n),
            pnl=_vector("record.pnl", pnl, n),
            inventory=_vector("record.inventory", inventory, n),
            bid=nan.copy() if bid is None else _vector("record.bid", bid, n, allow_nan=True),
            ask=nan.copy() if ask is None else _vector("record.ask", ask, n, allow_nan=True),
            fills=Fills.empty() if fills is None else fills,
        )
        f = rec.fills.time
        outside = (f <= t[0]) | (f > t[-1])
        if outside.any():
            raise ValueError(
                f"fills.time: expected in (record.time[0], record.time[-1]] = ({t[0]}, {t[-1]}],"
                f" row {_first(outside)} is {f[_first(outside)]}"
            )
        return rec

    @property
    def step_seconds(self) -> float:
        """Median step length (seconds)."""
        return float(np.median(np.diff(self.time)))


# --------------------------------------------------------------------------- returns and ratios


def periods_per_year(step_seconds: float, calendar: Calendar = "equities") -> float:
    """``SECONDS_PER_YEAR[calendar] / step_seconds``: steps of ``step_seconds`` in a year.

    Equities: ``252 * 6.5 * 3600 = 5,896,800`` s; crypto: ``365 * 86400 = 31,536,000`` s.
    """
    if calendar not in SECONDS_PER_YEAR:
        raise ValueError(f"calendar: expected one of {sorted(SECONDS_PER_YEAR)}, got {calendar!r}")
    if not step_seconds > 0:
        raise ValueError(f"step_seconds: expected > 0, got {step_seconds}")
    return SECONDS_PER_YEAR[calendar] / step_seconds


def pnl_returns(pnl: np.ndarray, capital: float) -> np.ndarray:
    """Per-step returns ``r_t = (P_t - P_{t-1}) / C`` of a cumulative PnL path over capital ``C``
    (cash units); shape ``(T,)`` from ``(T + 1,)``."""
    if not capital > 0:
        raise ValueError(f"capital: expected > 0 cash units, got {capital}")
    return np.diff(np.asarray(pnl, np.float64)) / capital


def sharpe(returns: np.ndarray, periods: float = 1.0) -> float:
    """Sharpe ratio ``mean(r) / std(r, ddof=1) * sqrt(periods)`` (zero risk-free rate).

    ``periods = 1`` gives the per-period ratio (e.g. of episode PnLs); ``periods_per_year``
    annualizes per-step returns (Sharpe, 1994; Lo, 2002). NaN when ``std = 0``.
    Same convention as ``quantstats.stats.sharpe(returns, periods=periods)``.
    """
    r = _finite("returns", returns)
    sd = r.std(ddof=1) if r.size > 1 else 0.0
    return float(r.mean() / sd * math.sqrt(periods)) if sd > 0 else float("nan")


def sortino(returns: np.ndarray, periods: float = 1.0) -> float:
    """Sortino ratio ``mean(r) / DD * sqrt(periods)`` with downside deviation
    ``DD = sqrt(sum(min(r, 0)^2) / n)`` (target 0, all ``n`` periods in the denominator;
    Sortino & Price, 1994; Rollinger & Hoffman, 2013, "Sortino: a sharper ratio").

    Same convention as ``quantstats.stats.sortino``. NaN when there is no negative return.
    """
    r = _finite("returns", returns)
    dd = math.sqrt(float(np.sum(np.minimum(r, 0.0) ** 2)) / r.size)
    return float(r.mean() / dd * math.sqrt(periods)) if dd > 0 else float("nan")


def value_at_risk(
    x: np.ndarray, confidence: float = 0.95, method: VaRMethod = "historical"
) -> float:
    """Value at Risk: the loss not exceeded with probability ``c`` (positive = a loss).

    ``historical``: ``VaR_c = -Q_{1-c}(x)``, ``Q`` the empirical quantile with linear
    interpolation (``numpy.quantile`` default; Hyndman & Fan, 1996, definition 7).
    ``gaussian``: ``VaR_c = -(mean(x) + std(x, ddof=1) * z_{1-c})`` (variance-covariance;
    equals ``-quantstats.stats.value_at_risk(x, confidence=c)``).
    Units: those of ``x`` (returns, or cash units for PnLs).
    """
    r = _finite("x", x)
    _check_confidence(confidence)
    if method == "historical":
        return float(-np.quantile(r, 1.0 - confidence))
    if method == "gaussian":
        return float(-(r.mean() + r.std(ddof=1) * stats.norm.ppf(1.0 - confidence)))
    raise ValueError(f"method: expected 'historical' or 'gaussian', got {method!r}")


def expected_shortfall(
    x: np.ndarray, confidence: float = 0.95, method: VaRMethod = "historical"
) -> float:
    """Expected Shortfall (CVaR): the mean loss in the worst ``1 - c`` tail (positive = a loss).

    ``historical``: ``ES_c = -mean{x_i : x_i <= Q_{1-c}(x)}`` with the quantile of
    :func:`value_at_risk` (equals ``-quantstats.stats.conditional_value_at_risk(x, confidence=c,
    method="historical")``). ``gaussian``: ``ES_c = -(mu - sd * pdf(z_{1-c}) / (1 - c))``
    (McNeil, Frey & Embrechts, 2015, Quantitative Risk Management, ch. 2).
    ``ES_c >= VaR_c`` for both. Units: those of ``x``.
    """
    r = _finite("x", x)
    _check_confidence(confidence)
    if method == "historical":
        q = np.quantile(r, 1.0 - confidence)
        return float(-r[r <= q].mean())
    if method == "gaussian":
        a = 1.0 - confidence
        sd = r.std(ddof=1)
        return float(-(r.mean() - sd * stats.norm.pdf(stats.norm.ppf(a)) / a))
    raise ValueError(f"method: expected 'historical' or 'gaussian', got {method!r}")


def drawdown(pnl: np.ndarray) -> np.ndarray:
    """Drawdown path ``D_t = max_{s <= t} P_s - P_t >= 0`` of a cumulative PnL path (cash units).

    The running peak includes the start ``P_0`` (pass the path from its initial value).
    """
    p = _finite("pnl", pnl)
    return np.maximum.accumulate(p) - p


def max_drawdown(pnl: np.ndarray) -> float:
    """Maximum drawdown ``max_t D_t`` (cash units, >= 0) of a cumulative PnL path.

    Uncompounded: equals ``riskfolio.RiskFunctions.MDD_Abs`` of the PnL increments.
    """
    return float(drawdown(pnl).max())


def max_drawdown_fraction(pnl: np.ndarray, capital: float) -> float:
    """Maximum drawdown of wealth ``W_t = C + P_t`` as a fraction of its running peak,
    ``max_t (1 - W_t / max_{s <= t} W_s)`` in [0, 1] while wealth stays positive.

    Equals ``-quantstats.stats.max_drawdown`` of the wealth returns ``W_t / W_{t-1} - 1``
    (quantstats compounds returns; wealth returns make its compounding exact).
    """
    if not capital > 0:
        raise ValueError(f"capital: expected > 0 cash units, got {capital}")
    w = capital + _finite("pnl", pnl)
    return float(np.max(1.0 - w / np.maximum.accumulate(w)))


def wealth_returns(pnl: np.ndarray, capital: float) -> np.ndarray:
    """Simple returns of wealth ``W_t = C + P_t``: ``W_t / W_{t-1} - 1`` (shape ``(T,)``)."""
    w = capital + _finite("pnl", pnl)
    return w[1:] / w[:-1] - 1.0


# --------------------------------------------------------------------------- fills and quotes


def mid_at(record: TradingRecord, times: np.ndarray) -> np.ndarray:
    """The mid in force at ``times`` (price units): ``mid[k]`` for ``t`` in
    ``(time[k], time[k+1]]``, the last recorded mid strictly before ``t``.

    NaN for ``t <= time[0]`` or ``t > time[-1]``.
    """
    t = np.asarray(times, np.float64)
    idx = np.searchsorted(record.time, t, side="left") - 1
    out = record.mid[np.clip(idx, 0, record.mid.size - 1)].astype(np.float64)
    out[(idx < 0) | (t > record.time[-1])] = np.nan
    return out


def markouts(record: TradingRecord, horizons: Sequence[float] = DEFAULT_HORIZONS) -> np.ndarray:
    """Mark-out of every fill at every horizon, ``(F, H)`` in bps:

    ``m_i(h) = side_i * (mid(t_i + h) - p_i) / p_i * 1e4``

    positive when the mid moved to the agent's favour: the realized spread of Huang & Stoll
    (1996) at horizon ``h``, per fill; horizon 0 is the effective half-spread earned at the
    fill. NaN where ``t_i + h`` is past the end of the record.
    """
    f = record.fills
    h = np.asarray(horizons, np.float64)
    if np.any(h < 0):
        raise ValueError(f"horizons: expected >= 0 seconds, got {list(h)}")
    mids = mid_at(record, (f.time[:, None] + h[None, :]).reshape(-1)).reshape(f.time.size, h.size)
    return f.side[:, None] * (mids - f.price[:, None]) / f.price[:, None] * BPS


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """``sum(w v) / sum(w)`` over the finite values; NaN if there is none."""
    ok = np.isfinite(values)
    w = weights[ok]
    return float(np.sum(w * values[ok]) / w.sum()) if w.sum() > 0 else float("nan")


def markout_summary(record: TradingRecord, horizons: Sequence[float]) -> dict[float, float]:
    """Size-weighted mean mark-out (bps) at each horizon (seconds)."""
    m = markouts(record, horizons)
    return {float(h): weighted_mean(m[:, j], record.fills.size) for j, h in enumerate(horizons)}


def spread_decomposition(record: TradingRecord, horizon: float) -> dict[str, float]:
    """Effective spread = realized spread + adverse selection, size-weighted means in bps.

    For fill ``i`` at price ``p_i``, mid ``m_t`` (:func:`mid_at`):

    - effective half-spread ``e_i = side_i (m_{t_i} - p_i) / p_i * 1e4`` (what the fill earned
      against the mid when it happened; for the agent's own quote this is its quoted
      half-spread on the filled side);
    - realized spread ``s_i = side_i (m_{t_i + h} - p_i) / p_i * 1e4`` (the mark-out at ``h``);
    - adverse selection (price impact) ``a_i = e_i - s_i = side_i (m_{t_i} - m_{t_i + h}) / p_i
      * 1e4``: the part of the spread lost to the mid moving against the fill.

    This is the Huang & Stoll (1996) / Bessembinder & Kaufman (1997) decomposition, from the
    liquidity provider's side. Fills whose horizon ends after the
    record are left out of all three.
    """
    m = markouts(record, (0.0, horizon))
    ok = np.all(np.isfinite(m), axis=1)
    w = record.fills.size[ok]
    eff, real = m[ok, 0], m[ok, 1]
    return {
        "effective_half_spread_bps": weighted_mean(eff, w),
        "realized_spread_bps": weighted_mean(real, w),
        "adverse_selection_bps": weighted_mean(eff - real, w),
    }


def spread_capture(record: TradingRecord) -> dict[str, float]:
    """Gross spread earned by maker fills against the fees and rebates (cash units).

    ``gross = sum_{maker i} size_i * side_i * (m_{t_i} - p_i)``, ``maker_fees = sum_{maker} fee``
    (negative = net rebate), ``taker_fees = sum_{taker} fee``, ``net = gross - maker_fees``;
    ``rebate_share = -maker_fees / (gross - maker_fees)`` is the part of the maker's net
    capture that rebates provide (NaN when the net capture is not positive).
    """
    f = record.fills
    maker = ~f.taker
    mids = mid_at(record, f.time)
    gross = float(np.nansum((f.size * f.side * (mids - f.price))[maker]))
    maker_fees = float(f.fee[maker].sum())
    net = gross - maker_fees
    return {
        "spread_capture_gross": gross,
        "maker_fees": maker_fees,
        "taker_fees": float(f.fee[f.taker].sum()),
        "spread_capture_net": net,
        "rebate_share": -maker_fees / net if net > 0 else float("nan"),
    }


def fill_rate(record: TradingRecord) -> dict[str, float]:
    """Fraction of quoted intervals that got at least one fill, per side.

    Interval ``t`` is ``(time[t], time[t+1]]``; the bid is quoted in it when ``bid[t]`` is
    finite, and filled when a maker buy fill falls in it (likewise the ask with sells).
    ``fill_rate`` pools both sides. ``fills_per_hour`` is the number of fills (maker and taker)
    per hour of record.
    """
    t = record.time
    f = record.fills
    out: dict[str, float] = {}
    hits_total = quoted_total = 0
    for name, quotes, side in (("bid", record.bid, 1.0), ("ask", record.ask, -1.0)):
        quoted = np.isfinite(quotes[:-1])
        sel = (f.side == side) & ~f.taker
        idx = np.searchsorted(t, f.time[sel], side="left") - 1
        hit = np.zeros(t.size - 1, np.bool_)
        hit[idx[(idx >= 0) & (idx < hit.size)]] = True
        hits = int(np.sum(hit & quoted))
        out[f"fill_rate_{name}"] = hits / int(quoted.sum()) if quoted.any() else float("nan")
        hits_total += hits
        quoted_total += int(quoted.sum())
    out["fill_rate"] = hits_total / quoted_total if quoted_total else float("nan")
    out["fills_per_hour"] = float(f.time.size / (t[-1] - t[0]) * 3600.0)
    return out


def fill_rate_by_queue(
    queue_ahead: np.ndarray, filled: np.ndarray, bins: int | Sequence[float] = 5
) -> pd.DataFrame:
    """Fill probability of posted orders by the queue ahead of them at entry (lots).

    One row per queue bin: ``orders``, ``fills``, ``fill_rate = fills / orders`` and its Wilson
    95% interval (Wilson, 1927; ``statsmodels.stats.proportion.proportion_confint``).
    ``bins``: a number of quantile bins or explicit edges (lots).
    """
    from statsmodels.stats.proportion import proportion_confint

    q = _vector("queue_ahead", queue_ahead)
    hit = np.asarray(filled, np.bool_).reshape(-1)
    if hit.size != q.size:
        raise ValueError(f"filled: expected {q.size} flags (one per order), got {hit.size}")
    if isinstance(bins, int):
        cut = pd.qcut(q, bins, duplicates="drop")
    else:
        cut = pd.cut(q, np.asarray(bins, np.float64), include_lowest=True)
    frame = pd.DataFrame({"bin": cut, "filled": hit, "queue_ahead": q})
    g = frame.groupby("bin", observed=True)
    table = pd.DataFrame(
        {
            "queue_ahead_mid": g["queue_ahead"].median(),
            "orders": g["filled"].size(),
            "fills": g["filled"].sum(),
        }
    )
    table["fill_rate"] = table["fills"] / table["orders"]
    low, high = proportion_confint(table["fills"], table["orders"], alpha=0.05, method="wilson")
    table["ci_low"], table["ci_high"] = np.asarray(low), np.asarray(high)
    return table


# --------------------------------------------------------------------------- inventory


def inventory_pnl(record: TradingRecord) -> np.ndarray:
    """Per-step PnL of holding inventory, ``q_{t-1} (S_t - S_{t-1})`` (cash units, ``(T,)``).

    The mark-to-market PnL splits into this inventory (mid-risk) part and a spread part
    ``dP_t - q_{t-1} dS_t`` (spread earned at fills minus fees, plus the within-step drift
    of fills' marks): the wealth split of Cartea, Jaimungal & Penalva (2015, ch. 10), with a
    unit multiplier.
    """
    return record.inventory[:-1] * np.diff(record.mid)


def inventory_half_life(inventory: np.ndarray, step_seconds: float = 1.0) -> float:
    """Half-life of inventory deviations (seconds) from an AR(1) fit ``q_t = c + phi q_{t-1} + e``
    (OLS, ``statsmodels.tsa.ar_model.AutoReg``): ``ln 2 / -ln(phi) * step_seconds``.

    ``inf`` when ``phi >= 1`` (no mean reversion); NaN when ``phi <= 0`` (no monotone decay) or
    when the inventory never changes.
    """
    from statsmodels.tsa.ar_model import AutoReg

    q = _finite("inventory", inventory)
    if q.size < 3 or np.ptp(q) == 0:
        return float("nan")
    phi = float(AutoReg(q, lags=1, trend="c").fit().params[1])
    if phi >= 1.0:
        return float("inf")
    if phi <= 0.0:
        return float("nan")
    return math.log(2.0) / -math.log(phi) * step_seconds


def inventory_stats(record: TradingRecord) -> dict[str, float]:
    """Inventory statistics over the steps (lots).

    ``inventory_mean = mean(q_t)``, ``inventory_abs_mean = mean(|q_t|)``,
    ``inventory_max = max |q_t|``, ``volume = sum size_i`` (lots traded),
    ``turnover = volume / mean |q_t|`` (times the average position is traded; NaN when flat),
    ``inventory_half_life_s`` from :func:`inventory_half_life`.
    """
    q = record.inventory
    volume = float(record.fills.size.sum())
    abs_mean = float(np.abs(q).mean())
    return {
        "inventory_mean": float(q.mean()),
        "inventory_abs_mean": abs_mean,
        "inventory_max": float(np.abs(q).max()),
        "volume": volume,
        "turnover": volume / abs_mean if abs_mean > 0 else float("nan"),
        "inventory_half_life_s": inventory_half_life(q, record.step_seconds),
    }


# --------------------------------------------------------------------------- all of them


def compute_metrics(
    record: TradingRecord,
    capital: float,
    calendar: Calendar = "equities",
    horizons: Sequence[float] = DEFAULT_HORIZONS,
    realized_horizon: float | None = None,
    confidences: Sequence[float] = (0.95, 0.99),
) -> dict[str, float]:
    """Every metric of one record, flat, with snake_case names.

    PnL and risk: ``pnl`` (cash) and its ``pnl_inventory`` part (:func:`inventory_pnl`),
    ``sharpe`` / ``sortino`` (annualized with
    :func:`periods_per_year` of the record's step and ``calendar``), ``sharpe_per_step``,
    ``var95`` / ``es95`` / ``var99`` / ``es99`` (historical, of per-step returns ``dP / C``),
    ``max_drawdown`` (cash) and ``max_drawdown_frac`` (of wealth ``C + P``). Fills:
    :func:`fill_rate`, ``markout_<h>s_bps`` for each horizon, :func:`spread_decomposition` at
    ``realized_horizon`` (default: the largest horizon), :func:`spread_capture`. Inventory:
    :func:`inventory_stats`.
    """
    h_real = max(horizons) if realized_horizon is None else realized_horizon
    r = pnl_returns(record.pnl, capital)
    ppy = periods_per_year(record.step_seconds, calendar)
    out: dict[str, float] = {
        "pnl": float(record.pnl[-1] - record.pnl[0]),
        "pnl_inventory": float(inventory_pnl(record).sum()),
        "sharpe": sharpe(r, ppy),
        "sortino": sortino(r, ppy),
        "sharpe_per_step": sharpe(r),
        "periods_per_year": ppy,
    }
    for c in confidences:
        pct = f"{round(100 * c):d}"
        out[f"var{pct}"] = value_at_risk(r, c)
        out[f"es{pct}"] = expected_shortfall(r, c)
    out["max_drawdown"] = max_drawdown(record.pnl)
    out["max_drawdown_frac"] = max_drawdown_fraction(record.pnl, capital)
    out |= fill_rate(record)
    for h, v in markout_summary(record, horizons).items():
        out[f"markout_{h:g}s_bps"] = v
    out |= spread_decomposition(record, h_real)
    out |= spread_capture(record)
    out |= inventory_stats(record)
    return out


def episode_metrics(
    episode_pnl: np.ndarray, confidences: Sequence[float] = (0.95, 0.99)
) -> dict[str, float]:
    """Metrics across the episodes of an episodic simulator (cash units per episode).

    ``episode_sharpe = mean / std(ddof=1)`` (per episode, not annualized), ``episode_sortino``,
    and historical ``episode_var<c>`` / ``episode_es<c>`` of the episode PnLs.
    """
    x = _finite("episode_pnl", episode_pnl)
    out = {"episode_sharpe": sharpe(x), "episode_sortino": sortino(x)}
    for c in confidences:
        pct = f"{round(100 * c):d}"
        out[f"episode_var{pct}"] = value_at_risk(x, c)
        out[f"episode_es{pct}"] = expected_shortfall(x, c)
    return out


# --------------------------------------------------------------------------- input checks


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _vector(name: str, values: object, n: int | None = None, allow_nan: bool = False) -> np.ndarray:
    try:
        a = np.asarray(values, np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers, got {type(values).__name__}") from exc
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got shape {a.shape}")
    if n is not None and a.size != n:
        raise ValueError(f"{name}: expected {n} values, got {a.size}")
    bad = np.isinf(a) if allow_nan else ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{name}: expected finite values, row {_first(bad)} is {a[_first(bad)]}")
    return a


def _finite(name: str, values: object) -> np.ndarray:
    a = _vector(name, values)
    if a.size == 0:
        raise ValueError(f"{name}: expected at least one value")
    return a


def _check_confidence(c: float) -> None:
    if not 0.0 < c < 1.0:
        raise ValueError(f"confidence: expected in (0, 1), got {c}")

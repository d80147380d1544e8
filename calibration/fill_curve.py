"""The fill-intensity curve ``lambda(delta) = A exp(-k delta)`` (Avellaneda & Stoikov 2008, eq.
(2.10) and section 2.3; Gueant, Lehalle & Fernandez-Tapia 2013) from trades, by a Poisson GLM.

Construction (time in seconds, ``delta`` in ticks). The session is cut into intervals of length
``dt``; at the start of each interval, for ``j = 0..depths - 1``, a hypothetical unit sell quote
rests ``j`` ticks behind the best ask (a buy quote ``j`` ticks behind the best bid). It is FILLED in
the interval when a market order prints at or through its price during the interval (a
buyer-initiated execution at a price ``>= best ask + j``; hidden executions are left out, see
:mod:`calibration.sample`). Its depth is ``delta = spread / 2 + j`` from the mid (reference
``"opposite"``) or ``delta = 1/2 + j`` (reference ``"own"``: the depth it has once the book is
mapped onto the one-tick-spread market, :mod:`calibration.sample`). Per ``delta`` (rounded to half
a tick) the number of intervals with a fill is Poisson with mean ``lambda(delta) x exposure``,
exposure = number of (interval, side) pairs x ``dt``; the GLM on ``delta`` with offset
``log(exposure)`` gives ``log A`` and ``-k``. A fill counts once per interval, so for
``lambda dt`` not small the curve is that of the fill PROBABILITY per interval divided by ``dt``
(the quantity the AS and GLFT baselines use with their step ``dt``). Queue position is ignored:
the quote is filled by any print at its price, an upper bound on a real quote's fills.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.glm import LogLinear, poisson_log_linear
from calibration.sample import FlowSample
from data.schema import TRADE


@dataclass
class FillCurveFit:
    """``A`` (fills/s), ``k`` (1/tick) with SEs, and the cells behind them."""

    fit: LogLinear
    delta: np.ndarray  # ticks
    fills: np.ndarray  # intervals with a fill
    exposure: np.ndarray  # seconds
    dt: float


def fit_fill_curve(sample: FlowSample, dt: float = 1.0, depths: int = 10) -> FillCurveFit:
    """Fit ``A exp(-k delta)`` as in the module docstring."""
    if not dt > 0 or depths < 3:
        raise ValueError(f"need dt > 0 and depths >= 3, got dt={dt}, depths={depths}")
    n_int = int(np.floor((sample.row_t[-1] - sample.row_t[0]) / dt))
    starts = sample.row_t[0] + dt * np.arange(n_int)
    rows = sample.at(starts)
    open_ = sample.row_dt[rows] > 0
    bid, ask = sample.bid_px[rows, 0], sample.ask_px[rows, 0]
    is_tr = sample.kind == TRADE
    k = np.floor((sample.t[is_tr] - sample.row_t[0]) / dt).astype(np.int64)
    inside = (k >= 0) & (k < n_int)
    k, px, agg = k[inside], sample.price[is_tr][inside], sample.aggressor[is_tr][inside]
    # deepest print per interval: highest buy price, lowest sell price
    hi = np.full(n_int, -np.inf)
    lo = np.full(n_int, np.inf)
    np.maximum.at(hi, k[agg > 0], px[agg > 0].astype(np.float64))
    np.minimum.at(lo, k[agg < 0], px[agg < 0].astype(np.float64))
    reach_ask = hi - ask  # fills quotes j = 0..reach
    reach_bid = bid - lo
    spread = ask - bid
    j = np.arange(depths)
    cells: dict[float, list[float]] = {}
    for reach in (reach_ask, reach_bid):
        ok = open_ & np.isfinite(spread)
        if sample.reference == "opposite":
            delta = 0.5 * spread[ok, None] + j[None, :]
        else:
            delta = np.broadcast_to(0.5 + j[None, :].astype(np.float64), (ok.sum(), depths))
        filled = np.where(np.isfinite(reach[ok]), reach[ok], -1.0)[:, None] >= j[None, :]
        key = np.round(2.0 * delta) / 2.0
        uniq, inv = np.unique(key.ravel(), return_inverse=True)
        f = np.bincount(inv, weights=filled.ravel().astype(np.float64), minlength=uniq.size)
        e = np.bincount(inv, minlength=uniq.size) * dt
        for d, fi, ei in zip(uniq.tolist(), f.tolist(), e.tolist(), strict=True):
            c = cells.setdefault(d, [0.0, 0.0])
            c[0] += fi
            c[1] += ei
    delta_all = np.array(sorted(cells))
    fills = np.array([cells[d][0] for d in delta_all])
    expo = np.array([cells[d][1] for d in delta_all])
    # drop sparse cells (rare spreads): at least 1% of the largest exposure
    keep = expo >= 0.01 * expo.max()
    delta_all, fills, expo = delta_all[keep], fills[keep], expo[keep]
    return FillCurveFit(poisson_log_linear(delta_all, fills, expo), delta_all, fills, expo, dt)

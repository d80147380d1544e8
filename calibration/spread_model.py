"""The spread as a state: a coarse price grid, the spread's law, its transitions at best-level
events (multinomial logit) and where new limit orders are placed.

Units: fine ticks of the instrument, coarse ticks of ``grid`` fine ticks, time in seconds. Input:
:func:`calibration.sample.prepare` (each event located in the book just before it).

- Grid: ``g = max(1, round(q))`` fine ticks, ``q`` the ``grid_quantile`` (default 10%) of the
  spread sampled every second, so that the spread is rarely below one coarse tick: a small-tick
  book (GOOG, median 28 ticks) becomes a book of a few coarse ticks, a large-tick book keeps
  ``g = 1``. Spread bucket ``b = min(ceil(s / g), K)``, ``b = 1..K``.
- Best-level events (:data:`BEST_EVENT_TYPES`), the only events that can change the spread: market
  buy / sell orders; a limit bid (ask) at or inside the spread (price at least the best bid, below
  the best ask; or any price on an empty side); a cancellation at the best bid (ask).
- Transitions. A limit order at or inside the spread can only keep or narrow it (by its
  placement, below); a market order or a cancellation at the best can only keep or widen it
  (when it empties the best queue). For these WIDENING events in bucket ``b < K``, whether the
  bucket ``b'`` just before the NEXT best-level event is above ``b`` is a statsmodels logit
  (``MNLogit`` with two outcomes; McFadden 1974) on the bucket, the event type and the
  touched-queue imbalance ``(q_t - q_o) / (q_t + q_o)`` (``q_t`` the best queue of the side the
  event touches, ``q_o`` the other best; 0 when both are empty), with MLE standard errors; given
  that it rose, ``P(b' = b + j | b)`` is a multinomial table (``widen_jump_probs``). In bucket
  ``K`` the bucket cannot rise; a bucket that falls after a widening event (same-time-stamp
  sequences) counts as staying, in ``counts['non_monotone']``. For limit orders at or inside
  the spread, ``P(b' = b - j | b)`` is a multinomial table (``narrow_probs``; a rise counts as
  staying, in ``counts['non_monotone_limit']``): on the coarse grid an order that improves the
  quote by less than the rounding keeps the bucket.
- ``transition_probs[e][b][b']``: the same transitions as an empirical table per best-level
  event type (multinomial MLE, SE ``sqrt(p (1 - p) / n)``), the law a simulator without queue
  imbalance uses.
- Placement: per bucket, the share of new limit orders inside the spread, at the best, and
  ``c = 1..C-1`` coarse ticks behind the own best (``c = ceil(offset / g)``) or deeper; for
  orders inside the spread the improvement as a fraction ``u = improvement / s`` of the spread
  (``0 < u < 1``) in ten bins. Multinomial MLEs ``n_j / n`` with SE ``sqrt(p (1 - p) / n)``.
- Depletions: after a widening event that moved the touched best away (price of the touched
  side's best just before the next best-level event), the size of the new best queue (lots,
  rounded up, capped at ``MAX_SIZE_TABLE``; multinomial) and the mean distance moved (fine ticks).
- Law of the spread: share of time per bucket, mean and 10/50/90% quantiles (fine ticks) of the
  spread sampled every second, Newey-West SEs of the shares and mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from calibration.params import MAX_SIZE_TABLE
from calibration.sample import FlowSample
from data.schema import ADD, CANCEL, TRADE

BEST_EVENT_TYPES: tuple[str, ...] = (
    "market_buy",
    "market_sell",
    "limit_bid",
    "limit_ask",
    "cancel_bid",
    "cancel_ask",
)
"""Best-level event types, in index order (the Hawkes dimensions of the realistic flow)."""

TOUCHED_SIDE = np.array([-1, 1, 1, -1, 1, -1])
"""Side (+1 bid, -1 ask) each best-level event type touches."""

INSIDE_BINS = 10
"""Bins of the improvement as a fraction of the spread."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class SpreadParams(_Strict):
    """Spread law, transitions and limit-order placement on a coarse grid (module docstring)."""

    grid_ticks: int = Field(ge=1, description="g: fine ticks per coarse tick.")
    n_buckets: int = Field(ge=2, description="K: spread buckets 1..K coarse ticks (K: K or more).")
    time_share: list[float] = Field(description="[b-1]: share of time with spread bucket b.")
    mean_spread: float = Field(description="Mean spread (fine ticks), sampled every second.")
    spread_quantiles: list[float] = Field(description="10%, 50%, 90% quantiles (fine ticks).")
    covariates: list[str] = Field(description="Names of the transition logit's covariates.")
    transition_coefs: list[list[float]] = Field(
        description="[covariate][0]: logit coefficients of 'a widening event raises the "
        "bucket' against 'it stays'."
    )
    widen_jump_probs: list[list[float]] = Field(
        description="[b-1][j-1]: P(b' = b + j | the bucket rose from b), j = 1..K-b."
    )
    transition_probs: list[list[list[float]]] = Field(
        description="[e][b-1][b'-1]: P(bucket b' just before the next best-level event | a "
        "best-level event of type e in bucket b), empirical (imbalance integrated out); a "
        "(type, bucket) never seen keeps the bucket."
    )
    narrow_probs: list[list[float]] = Field(
        description="[b-1][j]: P(b' = b - j | a limit order at or inside the spread in bucket "
        "b), j = 0..b-1."
    )
    placement_categories: list[str] = Field(
        description="inside, at_best, behind_1..behind_{C-1} (coarse ticks), deeper."
    )
    placement_probs: list[list[float]] = Field(
        description="[b-1][category]: share of new limit orders per category in bucket b."
    )
    revealed_queue_probs: list[float] = Field(
        description="[n-1]: P(the new best queue has n lots, rounded up, capped at "
        "MAX_SIZE_TABLE) after a widening event moved the touched best away."
    )
    depletion_gap: float = Field(
        description="Mean distance (fine ticks) the touched best moved when a widening event "
        "moved it."
    )
    inside_fraction_probs: list[float] = Field(
        description="[k]: share of inside-spread orders with improvement / spread in "
        "[k/10, (k+1)/10)."
    )

    @model_validator(mode="after")
    def _check(self) -> SpreadParams:
        K = self.n_buckets
        if len(self.time_share) != K or len(self.placement_probs) != K:
            raise ValueError(f"time_share and placement_probs need n_buckets = {K} rows")
        if len(self.transition_coefs) != len(self.covariates):
            raise ValueError("transition_coefs needs one row per covariate")
        if any(len(r) != N_WIDEN for r in self.transition_coefs):
            raise ValueError(f"transition_coefs rows need {N_WIDEN} entries (the rise)")
        return self

    def bucket(self, spread_ticks: np.ndarray) -> np.ndarray:
        """Bucket ``1..K`` of spreads in fine ticks."""
        c = np.ceil(np.asarray(spread_ticks, dtype=np.float64) / self.grid_ticks)
        out: np.ndarray = np.clip(c, 1, self.n_buckets).astype(np.int64)
        return out

    def widening_probs(self, bucket: int, event_type: int, imbalance: float) -> np.ndarray:
        """``P(b' = 1..K | b, widening event type, touched imbalance)``: the logit's rise
        probability spread over ``widen_jump_probs`` (bucket ``K`` stays)."""
        K = self.n_buckets
        out: np.ndarray = np.zeros(K)
        if bucket >= K:
            out[K - 1] = 1.0
            return out
        x = design(
            np.array([bucket]), np.array([event_type]), np.array([imbalance]), self.n_buckets
        )[0]
        rise = 1.0 / (1.0 + np.exp(-float(x @ np.asarray(self.transition_coefs)[:, 0])))
        out[bucket - 1] = 1.0 - rise
        out[bucket:] = rise * np.asarray(self.widen_jump_probs[bucket - 1][: K - bucket])
        return out


@dataclass
class SpreadFit:
    """:class:`SpreadParams`, ``std_errors`` (same keys) and the counts behind them."""

    params: SpreadParams
    std_errors: dict[str, Any]
    counts: dict[str, Any]
    logit_converged: bool
    logit_llf: float
    logit_pseudo_r2: float


WIDENING_TYPES: tuple[int, ...] = (0, 1, 4, 5)
"""Best-level event types that can widen the spread (market orders, cancellations at the best)."""

N_WIDEN = 1
"""Non-base outcomes of the widening logit: the bucket rose."""


def covariate_names(K: int) -> list[str]:
    """Covariates of the widening logit for ``K`` buckets (base: bucket 1, market buy)."""
    return (
        ["const"]
        + [f"bucket_{b}" for b in range(2, K)]
        + [BEST_EVENT_TYPES[e] for e in WIDENING_TYPES[1:]]
        + ["touched_imbalance"]
    )


def design(bucket: np.ndarray, event_type: np.ndarray, imbalance: np.ndarray, K: int) -> np.ndarray:
    """Design matrix of the widening logit (:func:`covariate_names`), one row per event with
    ``bucket`` in ``1..K-1`` and ``event_type`` in :data:`WIDENING_TYPES`."""
    n = bucket.size
    X = np.zeros((n, len(covariate_names(K))))
    X[:, 0] = 1.0
    for b in range(2, K):
        X[:, b - 1] = bucket == b
    for k, e in enumerate(WIDENING_TYPES[1:]):
        X[:, K - 1 + k] = event_type == e
    X[:, -1] = imbalance
    return X


@dataclass
class BestEvents:
    """Best-level events of a sample: index into the sample, time (s), type (index of
    :data:`BEST_EVENT_TYPES`), spread before (fine ticks), touched-queue imbalance before."""

    index: np.ndarray
    t: np.ndarray
    type: np.ndarray
    spread: np.ndarray
    imbalance: np.ndarray


def best_events(sample: FlowSample) -> BestEvents:
    """Classify the sample's events into :data:`BEST_EVENT_TYPES` (others dropped)."""
    rows = sample.prev
    bb, ba = sample.bid_px[rows, 0], sample.ask_px[rows, 0]
    qb, qa = sample.bid_sz[rows, 0], sample.ask_sz[rows, 0]
    k, side, px = sample.kind, sample.side, sample.price.astype(np.float64)
    typ = np.full(k.size, -1, dtype=np.int64)
    typ[(k == TRADE) & (sample.aggressor > 0)] = 0
    typ[(k == TRADE) & (sample.aggressor < 0)] = 1
    bid_ok = ~np.isfinite(bb) | (px >= bb)
    ask_ok = ~np.isfinite(ba) | (px <= ba)
    typ[(k == ADD) & (side > 0) & bid_ok & (~np.isfinite(ba) | (px < ba))] = 2
    typ[(k == ADD) & (side < 0) & ask_ok & (~np.isfinite(bb) | (px > bb))] = 3
    typ[(k == CANCEL) & (side > 0) & (px == bb)] = 4
    typ[(k == CANCEL) & (side < 0) & (px == ba)] = 5
    idx = np.flatnonzero(typ >= 0)
    typ = typ[idx]
    touched_bid = TOUCHED_SIDE[typ] > 0
    qt = np.where(touched_bid, qb[idx], qa[idx])
    qo = np.where(touched_bid, qa[idx], qb[idx])
    tot = qt + qo
    imb = np.where(tot > 0, (qt - qo) / np.where(tot > 0, tot, 1.0), 0.0)
    return BestEvents(idx, sample.t[idx], typ, (ba - bb)[idx], imb)


def spread_samples(sample: FlowSample, dt: float = 1.0) -> np.ndarray:
    """Spread (fine ticks) every ``dt`` seconds while open with a two-sided book."""
    n = int(np.floor((sample.row_t[-1] - sample.row_t[0]) / dt)) + 1
    rows = sample.at(sample.row_t[0] + dt * np.arange(n))
    rows = rows[rows >= 0]
    s = sample.ask_px[rows, 0] - sample.bid_px[rows, 0]
    out: np.ndarray = s[np.isfinite(s) & (sample.row_dt[rows] > 0) & (s >= 1)]
    return out


def choose_grid(spread: np.ndarray, quantile: float = 0.1) -> int:
    """Coarse tick ``g = max(1, round(q))``, ``q`` the ``quantile`` of the spread (fine ticks)."""
    return max(1, round(float(np.quantile(spread, quantile))))


def _hac_shares(x: np.ndarray, lags: int) -> tuple[float, float]:
    import statsmodels.api as sm

    res = sm.OLS(x, np.ones((x.size, 1))).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    return float(res.params[0]), float(res.bse[0])


def fit_widening_logit(
    bucket: np.ndarray, delta: np.ndarray, event_type: np.ndarray, imbalance: np.ndarray, K: int
) -> tuple[np.ndarray, np.ndarray, bool, float, float]:
    """MNLogit of ``delta`` (0 stays, 1 rises) on :func:`design`: coefficients ``(p, 1)``, SEs,
    converged, log-likelihood, McFadden's pseudo R^2 (NaN when an outcome is never seen)."""
    import warnings

    from statsmodels.discrete.discrete_model import MNLogit

    X = design(bucket, event_type, imbalance, K)
    p = X.shape[1]
    coef = np.full((p, N_WIDEN), np.nan)
    se = np.full((p, N_WIDEN), np.nan)
    seen = np.unique(delta)
    if seen.size < 2 or seen[0] != 0:
        return coef, se, False, float("nan"), float("nan")
    cols = np.concatenate([[0], np.flatnonzero(X[:, 1:].any(axis=0)) + 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = MNLogit(np.searchsorted(seen, delta), X[:, cols]).fit(
            method="newton", maxiter=100, disp=0
        )
    params, bse = np.asarray(res.params), np.asarray(res.bse)
    for c_out, dval in enumerate(seen[1:]):
        coef[cols, int(dval) - 1] = params[:, c_out]
        se[cols, int(dval) - 1] = bse[:, c_out]
    converged = bool(res.mle_retvals.get("converged", False))
    return coef, se, converged, float(res.llf), float(res.prsquared)


def fit_spread_model(
    sample: FlowSample,
    *,
    n_buckets: int = 4,
    grid: int | None = None,
    grid_quantile: float = 0.1,
    behind_levels: int = 5,
    dt: float = 1.0,
) -> SpreadFit:
    """Fit :class:`SpreadParams` on ``sample`` (module docstring).

    :param n_buckets: ``K``; :param grid: coarse tick (fine ticks), default from the spread law;
    :param behind_levels: ``C``: placement categories behind the best up to ``C - 1`` coarse
        ticks; :param dt: sampling of the spread's law (s).
    """
    K = int(n_buckets)
    s1 = spread_samples(sample, dt)
    if s1.size < 10:
        raise ValueError("fewer than 10 spread samples with a two-sided book")
    g = choose_grid(s1, grid_quantile) if grid is None else int(grid)
    lags = int(np.ceil(4 * (s1.size / 100) ** (2 / 9)))
    b1 = np.clip(np.ceil(s1 / g), 1, K).astype(np.int64)
    shares = [_hac_shares((b1 == b).astype(np.float64), lags) for b in range(1, K + 1)]
    mean, mean_se = _hac_shares(s1.astype(np.float64), lags)

    ev = best_events(sample)
    ok = np.isfinite(ev.spread)
    bk = np.clip(np.ceil(np.where(ok, ev.spread, g) / g), 1, K).astype(np.int64)
    pair = ok[:-1] & ok[1:]
    b0, b1n, typ, imb = bk[:-1][pair], bk[1:][pair], ev.type[:-1][pair], ev.imbalance[:-1][pair]
    widen = np.isin(typ, WIDENING_TYPES) & (b0 < K)
    raw = b1n[widen] - b0[widen]
    non_monotone = int((raw < 0).sum())
    delta = np.clip(raw, 0, N_WIDEN)
    jumps = np.zeros((K, K), dtype=np.int64)  # [b-1][j-1], rises only
    rose = raw > 0
    np.add.at(jumps, (b0[widen][rose] - 1, raw[rose] - 1), 1)
    jn = np.maximum(jumps.sum(axis=1, keepdims=True), 1)
    jprobs = jumps / jn
    coef, coef_se, conv, llf, r2 = fit_widening_logit(b0[widen], delta, typ[widen], imb[widen], K)

    # depletions: the touched best moved away before the next best-level event
    k_w = np.flatnonzero(pair & np.isin(ev.type[:-1], WIDENING_TYPES))
    r0, r1 = sample.prev[ev.index[k_w]], sample.prev[ev.index[k_w + 1]]
    bid_side = TOUCHED_SIDE[ev.type[k_w]] > 0
    px0 = np.where(bid_side, sample.bid_px[r0, 0], sample.ask_px[r0, 0])
    px1 = np.where(bid_side, sample.bid_px[r1, 0], sample.ask_px[r1, 0])
    q1 = np.where(bid_side, sample.bid_sz[r1, 0], sample.ask_sz[r1, 0])
    moved = np.where(bid_side, px1 < px0, px1 > px0) & np.isfinite(px1)
    lots = np.clip(np.ceil(q1[moved] - 1e-9), 1, MAX_SIZE_TABLE).astype(np.int64)
    rcounts = np.bincount(lots, minlength=2)[1:]
    n_rev = max(int(rcounts.sum()), 1)
    rprobs = rcounts / n_rev
    gap = np.abs(px1[moved] - px0[moved])
    gap_mean = float(gap.mean()) if gap.size else float("nan")
    gap_se = float(gap.std(ddof=1) / np.sqrt(gap.size)) if gap.size > 1 else float("nan")

    # placement of new limit orders
    add = np.flatnonzero(sample.kind == ADD)
    rows = sample.prev[add]
    bb, ba = sample.bid_px[rows, 0], sample.ask_px[rows, 0]
    side = sample.side[add]
    own = np.where(side > 0, bb, ba)
    spread = ba - bb
    good = np.isfinite(own) & np.isfinite(spread)
    off = (np.where(side > 0, own - sample.price[add], sample.price[add] - own))[good]
    spread, pb = spread[good], np.clip(np.ceil(spread[good] / g), 1, K).astype(np.int64)
    C = int(behind_levels)
    cat = np.where(off < 0, 0, np.where(off == 0, 1, 1 + np.minimum(np.ceil(off / g), C)))
    cat = cat.astype(np.int64)  # 0 inside, 1 at best, 1 + c behind c coarse ticks, C+1 deeper
    names = ["inside", "at_best", *[f"behind_{c}" for c in range(1, C)], "deeper"]
    counts = np.zeros((K, C + 2), dtype=np.int64)
    np.add.at(counts, (pb - 1, cat), 1)
    tot = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    probs = counts / tot
    probs_se = np.sqrt(probs * (1 - probs) / tot)
    inside = off < 0
    u = -off[inside] / spread[inside]
    fcounts = np.bincount(
        np.minimum((u * INSIDE_BINS).astype(np.int64), INSIDE_BINS - 1), minlength=INSIDE_BINS
    )
    n_in = max(int(fcounts.sum()), 1)
    fprobs = fcounts / n_in

    tcounts = np.zeros((len(BEST_EVENT_TYPES), K, K), dtype=np.int64)
    np.add.at(tcounts, (typ, b0 - 1, b1n - 1), 1)
    lim = np.isin(typ, (2, 3))
    drop = np.maximum(b0[lim] - b1n[lim], 0)
    ncounts = np.zeros((K, K), dtype=np.int64)  # [b-1][j]
    np.add.at(ncounts, (b0[lim] - 1, drop), 1)
    nn = np.maximum(ncounts.sum(axis=1, keepdims=True), 1)
    nprobs = ncounts / nn
    tn = tcounts.sum(axis=2, keepdims=True)
    tprobs = np.where(tn > 0, tcounts / np.maximum(tn, 1), np.eye(K)[None, :, :])
    tprobs_se = np.sqrt(tprobs * (1 - tprobs) / np.maximum(tn, 1))
    params = SpreadParams(
        grid_ticks=g,
        n_buckets=K,
        time_share=[s for s, _ in shares],
        mean_spread=mean,
        spread_quantiles=np.quantile(s1, [0.1, 0.5, 0.9]).tolist(),
        covariates=covariate_names(K),
        transition_coefs=np.nan_to_num(coef, nan=0.0).tolist(),
        widen_jump_probs=[jprobs[b, : K - 1 - b].tolist() for b in range(K)],
        narrow_probs=[nprobs[b, : b + 1].tolist() for b in range(K)],
        transition_probs=tprobs.tolist(),
        placement_categories=names,
        placement_probs=probs.tolist(),
        revealed_queue_probs=rprobs.tolist(),
        depletion_gap=gap_mean,
        inside_fraction_probs=fprobs.tolist(),
    )
    std_errors = {
        "time_share": [e for _, e in shares],
        "mean_spread": mean_se,
        "transition_coefs": coef_se.tolist(),
        "widen_jump_probs": [
            np.sqrt(jprobs[b] * (1 - jprobs[b]) / jn[b])[: K - 1 - b].tolist() for b in range(K)
        ],
        "placement_probs": probs_se.tolist(),
        "inside_fraction_probs": np.sqrt(fprobs * (1 - fprobs) / n_in).tolist(),
        "transition_probs": tprobs_se.tolist(),
        "narrow_probs": [
            np.sqrt(nprobs[b] * (1 - nprobs[b]) / nn[b])[: b + 1].tolist() for b in range(K)
        ],
        "revealed_queue_probs": np.sqrt(rprobs * (1 - rprobs) / n_rev).tolist(),
        "depletion_gap": gap_se,
    }
    count_info = {
        "spread_samples": int(s1.size),
        "best_events": np.bincount(ev.type, minlength=len(BEST_EVENT_TYPES)).tolist(),
        "transitions": tcounts.tolist(),
        "widening_events": int(widen.sum()),
        "non_monotone": non_monotone,
        "non_monotone_limit": int((b1n[lim] > b0[lim]).sum()),
        "placement": counts.tolist(),
        "inside_fraction": fcounts.tolist(),
        "depletions": int(moved.sum()),
    }
    return SpreadFit(params, std_errors, count_info, conv, llf, r2)


def simulate_spread_chain(
    params: SpreadParams,
    event_type: np.ndarray,
    imbalance: np.ndarray,
    start_bucket: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Spread bucket just before each of a sequence of best-level events under the fitted rules
    (docs/calibration.md#realistic-order-flow): a widening event raises the bucket by the
    logit and ``widen_jump_probs``; a limit order at or inside the spread lowers it by ``j``
    with probability ``narrow_probs[b-1][j]``; a cancellation or market order in bucket ``K``
    keeps it."""
    K = params.n_buckets
    coefs = np.asarray(params.transition_coefs)[:, 0]
    X = design(np.ones(event_type.size, dtype=np.int64), event_type, imbalance, K)
    out = np.empty(event_type.size, dtype=np.int64)
    b = int(start_bucket)
    u_draw = rng.random(event_type.size)
    for k in range(event_type.size):
        out[k] = b
        if int(event_type[k]) in WIDENING_TYPES:
            if b >= K:
                continue
            x = X[k].copy()  # the design's bucket dummies are those of the current bucket
            if b >= 2:
                x[b - 1] = 1.0
            rise = 1.0 / (1.0 + np.exp(-float(x @ coefs)))
            if u_draw[k] < rise:
                jumps = np.asarray(params.widen_jump_probs[b - 1])
                if jumps.sum() > 0:
                    b += 1 + int(rng.choice(jumps.size, p=jumps / jumps.sum()))
                else:
                    b += 1
        else:
            drops = np.asarray(params.narrow_probs[b - 1])
            if drops.sum() > 0:
                b -= int(np.searchsorted(np.cumsum(drops / drops.sum()), u_draw[k], side="right"))
                b = max(b, 1)
    return out

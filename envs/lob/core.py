"""The order-book market as a feed of the exchange layer: quotes, latency, fees and accounting
are :mod:`envs.exchange.orders` (docs/exchange.md#orders-and-queue-position); this module gives
it the simulated book (docs/markets.md#order-book).

The book's events (:mod:`envs.lob.book`) fill the agent's resting orders in FIFO order; a quote
crossing the book takes the simulated levels (they are depleted) and its remainder rests. The
mid used for the action and for marking is the mid of the OTHER participants' best quotes (the
agent's own quotes excluded, so quoting inside the spread does not drag the reference along).
Observations: the book, the mid and the market's recent trades (the market orders' fills of the
``dt`` before the snapshot, :func:`snapshot_trades`) ``feed_latency`` before the end of the
interval, the agent's own state ``response_latency`` before it.

A stress scenario (``config.stress``, docs/markets.md#order-book) changes the order-flow rates,
shifts the book or changes the latencies inside its window, read per step from a schedule
computed once (:func:`stress_schedule`); it draws no extra random number, so stressed and
unstressed runs from the same seed are paired and identical before the window.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from calibration.params import MarketParams
from configs.schema import StressScenario
from envs.exchange.core import ExchangeCore
from envs.exchange.layout import (
    ASK,
    BID,
    BOOK,
    F_T0,
    F_TIME,
    I_AHEAD,
    I_AHEAD0,
    I_APX,
    I_AREM,
    O_BOOK,
    O_MID,
    ORDERS,
    X_DT,
    X_ENTRY_LAT,
    X_FEED_LAT,
    X_N_STEPS,
    X_RESP_LAT,
    obs_size,
    split_obs,
)
from envs.exchange.models import pack_exchange
from envs.exchange.orders import bind, passive_fill, start_episode
from envs.lob.book import (
    I_ASK_PX,
    I_BID_PX,
    I_MID_MOVES,
    I_MKT_EXEC,
    I_N_TRADES,
    I_PASSIVE_OTHERS,
    I_QR_K,
    I_REF,
    MODEL_RL,
    N_FSTATE,
    N_ISTATE,
    N_TRADE_COLS,
    P_ENV,
    P_L,
    P_MKT_SCALE,
    P_MODEL,
    P_RATE_SCALE,
    TRADE_PRICE,
    TRADE_SIGNED_SIZE,
    TRADE_TIME,
    advance,
    agent_level,
    fix_best,
    fstate_width,
    improve_best,
    init_books,
    keep_trade,
    level_total,
    no_event_log,
    pack_params,
    seed_states,
    spread,
)
from envs.lob.config import LOBMarketConfig

__all__ = ["BOOK", "ORDERS", "obs_size", "split_obs"]

E_STRESS = P_ENV
"""0 without a stress scenario, else the offset in the packed vector of its
(len(STRESS_ROWS), n_steps) schedule (row-major, one column per step), after the market's."""

# rows of the stress schedule (:func:`stress_schedule`)
(S_RATE, S_MKT_BID, S_MKT_ASK, S_JUMP, S_ENTRY_LAT, S_FEED_LAT, S_RESP_LAT) = range(7)  # fmt: skip
STRESS_ROWS = ("rate_factor", "bid_market_factor", "ask_market_factor", "jump_ticks",
               "entry_latency", "feed_latency", "response_latency")  # fmt: skip
STRESS_PERTURBATIONS = frozenset({"volatility", "fill_intensity", "jump", "latency"})
"""The perturbations of :class:`configs.schema.StressPerturbations` this market applies."""

N_ENV_FSTATE = N_FSTATE
"""Float state columns (the agent's, :mod:`envs.exchange.layout`; the book keeps none)."""

N_OBS_TRADES = 8
"""Market trades in the observation (the most recent first)."""
(T_SIGNED_SIZE, T_OFFSET, T_AGE) = range(3)  # fmt: skip
"""Columns of the ``trades`` observation: lots (+ buyer-initiated, - seller-initiated), price
minus the observed mid (ticks), age at the book snapshot (time units)."""


class LOBFeed(NamedTuple):
    """The simulated book's arrays (layouts and units: :mod:`envs.lob.book`).

    :param book: ``(N, 2, L)`` int64 others' lots by distance from the opposite best.
    :param evlog: the event log (:func:`envs.lob.book.advance`; no rows: none).
    :param nlog: ``(N,)`` rows used in the event log.
    :param trades: ``(N, N_OBS_TRADES, N_TRADE_COLS)`` ring of the market's last trades.
    :param tobs: ``(N, N_OBS_TRADES, 3)`` float32 ``trades`` observation.
    """

    book: np.ndarray
    evlog: np.ndarray
    nlog: np.ndarray
    trades: np.ndarray
    tobs: np.ndarray


# --------------------------------------------------------------------------------------
# Book reads and the agent's orders in the simulated book (one market)


@numba.njit(cache=True)
def others_mid(book, ist, m, L):
    """Mid (ticks) of the others' best quotes; a side without others' volume in the window uses
    the book's best (the agent's order or the window's edge)."""
    s = spread(ist, m)
    bid = ist[m, I_BID_PX]
    for i in range(s, L + 1):
        if book[m, BID, i - 1] > 0:
            bid = ist[m, I_ASK_PX] - i
            break
    ask = ist[m, I_ASK_PX]
    for i in range(s, L + 1):
        if book[m, ASK, i - 1] > 0:
            ask = ist[m, I_BID_PX] + i
            break
    if ask <= bid:  # the others' quotes straddle the agent's: use the book's own
        return 0.5 * (ist[m, I_ASK_PX] + ist[m, I_BID_PX])
    return 0.5 * (ask + bid)


@numba.njit(cache=True)
def cancel_agent(book, ist, m, side, L):
    """Withdraw the agent's order on ``side`` (no-op without one)."""
    if ist[m, I_AREM + side] <= 0:
        return
    i = agent_level(ist, m, side)
    ist[m, I_AREM + side] = 0
    ist[m, I_AHEAD + side] = 0
    if i == spread(ist, m) and level_total(book, ist, m, side, i) == 0:
        fix_best(book, ist, m, side, L)


@numba.njit(cache=True)
def snapshot_market(book, ist, m, L, obs):
    """Write the book (levels from each best: price, lots incl. the agent's) and the mid."""
    s = spread(ist, m)
    for k in range(L):
        i = s + k
        for side in range(2):
            base = O_BOOK + 4 * k + 2 * side
            px = ist[m, I_BID_PX] - k if side == BID else ist[m, I_ASK_PX] + k
            obs[m, base] = px
            obs[m, base + 1] = level_total(book, ist, m, side, i) if i <= L else 0
    obs[m, O_MID] = others_mid(book, ist, m, L)


@numba.njit(cache=True)
def snapshot_trades(trades, ist, fst, m, mid, window, tobs):
    """Write the market's trades of the last ``window`` time units, most recent first, as
    (signed lots, price - ``mid`` in ticks, age); rows without a trade are zeros."""
    ring = trades.shape[1]
    count = ist[m, I_N_TRADES]
    now = fst[m, F_TIME]
    for k in range(tobs.shape[1]):
        for c in range(3):
            tobs[m, k, c] = 0.0
    k = 0
    for back in range(min(count, ring)):
        if k >= tobs.shape[1]:
            break
        row = (count - 1 - back) % ring
        age = now - trades[m, row, TRADE_TIME]
        if age > window:
            break
        tobs[m, k, T_SIGNED_SIZE] = trades[m, row, TRADE_SIGNED_SIZE]
        tobs[m, k, T_OFFSET] = trades[m, row, TRADE_PRICE] - mid
        tobs[m, k, T_AGE] = age
        k += 1


# --------------------------------------------------------------------------------------
# The feed's functions (:mod:`envs.exchange.orders` names their roles)


@numba.njit(cache=True)
def lob_advance(feed, ist, fst, rng, p, fills, nfill, m, t_next):
    book, evlog, nlog, trades, _ = feed
    advance(book, ist, fst, rng, p, fills, nfill, m, t_next, 2**62, False, evlog, nlog, trades)


@numba.njit(cache=True)
def lob_level(feed, ist, m, side, k):
    """The best level of ``side`` (the book is depleted as the agent takes, so ``k`` stays 0)."""
    px = ist[m, I_ASK_PX] if side == ASK else ist[m, I_BID_PX]
    return px, feed.book[m, side, spread(ist, m) - 1]


@numba.njit(cache=True)
def lob_consume(feed, ist, p, m, side, k, lots):
    book = feed.book
    s = spread(ist, m)
    book[m, side, s - 1] -= lots
    ist[m, I_PASSIVE_OTHERS] += lots
    if level_total(book, ist, m, side, s) == 0:
        fix_best(book, ist, m, side, int(p[P_L]))
    return 0


@numba.njit(cache=True)
def lob_crosses(feed, ist, m, side, px):
    return (side == BID and px >= ist[m, I_ASK_PX]) or (side == ASK and px <= ist[m, I_BID_PX])


@numba.njit(cache=True)
def lob_join(feed, ist, p, m, side, px):
    """The order joins the back of the queue at its price; inside the spread it is the best."""
    book = feed.book
    L = int(p[P_L])
    i = agent_level(ist, m, side)
    ahead = book[m, side, i - 1] if 1 <= i <= L else 0
    if 1 <= i < spread(ist, m):
        improve_best(book, ist, m, side, i, L)
    return ahead


@numba.njit(cache=True)
def lob_cancel(feed, ist, p, m, side):
    cancel_agent(feed.book, ist, m, side, int(p[P_L]))


@numba.njit(cache=True)
def lob_snapshot(feed, ist, fst, p, obs, m):
    book, _, _, trades, tobs = feed
    snapshot_market(book, ist, m, int(p[P_L]), obs)
    snapshot_trades(trades, ist, fst, m, obs[m, O_MID], p[X_DT], tobs)


@numba.njit(cache=True)
def lob_mid(feed, ist, fst, p, m):
    return others_mid(feed.book, ist, m, int(p[P_L]))


@numba.njit(cache=True)
def lob_begin(feed, ist, fst, p, fills, nfill, m, k):
    """Decision ``k``'s end time, latencies and order-flow parameters: the configured ones, or
    this step's column of the stress schedule (a jump shifts the book here, :func:`jump_book`)."""
    t_end = (k + 1) * p[X_DT]
    lat, resp, feed_lat = p[X_ENTRY_LAT], p[X_RESP_LAT], p[X_FEED_LAT]
    pm = p  # the order flow's parameters for this step
    stress = int(p[E_STRESS])
    n_steps = int(p[X_N_STEPS])
    if stress > 0 and k < n_steps:  # this step's column of the stress schedule
        col = stress + k
        lat = p[col + S_ENTRY_LAT * n_steps]
        feed_lat = p[col + S_FEED_LAT * n_steps]
        resp = p[col + S_RESP_LAT * n_steps]
        jump = int(p[col + S_JUMP * n_steps])
        if jump != 0:
            jump_book(feed, ist, fst, p, fills, nfill, m, jump)
        rate = p[col + S_RATE * n_steps]
        mkt_bid = p[col + S_MKT_BID * n_steps]
        mkt_ask = p[col + S_MKT_ASK * n_steps]
        if rate != 1.0 or mkt_bid != 1.0 or mkt_ask != 1.0:
            pm = p[:stress].copy()
            pm[P_RATE_SCALE] = rate
            pm[P_MKT_SCALE + BID] = mkt_bid
            pm[P_MKT_SCALE + ASK] = mkt_ask
    return t_end, lat, resp, feed_lat, pm


_exchange = bind("lob", globals())
place = _exchange.place
apply_quotes = _exchange.apply_quotes
step_kernel = _exchange.step_kernel
step_kernel_parallel = _exchange.step_kernel_parallel


@numba.njit(cache=True)
def jump_book(feed, ist, fst, p, fills, nfill, m, d):
    """Shift the others' whole book by ``d`` ticks at once (a flash crash for ``d < 0``).

    The queues keep their sizes and their distances from the opposite best (the arrays are
    relative); the best prices (and the queue-reactive reference price) move by ``d``. The
    agent's orders stay at their prices: one the shifted book crosses (a bid at or above the new
    best ask, an ask at or below the new best bid) was traded through by the sweep and fills in
    full at its price (maker fee; counted as others' market-order lots and kept in the trade
    ring); the other rests at its price behind the lots now there (its entry time kept).
    No random number is drawn.
    """
    book = feed.book
    L = int(p[P_L])
    px = np.zeros(2, np.int64)
    rem = np.zeros(2, np.int64)
    t0 = np.zeros(2)
    for side in range(2):
        rem[side] = ist[m, I_AREM + side]
        px[side] = ist[m, I_APX + side]
        t0[side] = fst[m, F_T0 + side]
        ahead0 = ist[m, I_AHEAD0 + side]
        cancel_agent(book, ist, m, side, L)
        ist[m, I_AHEAD0 + side] = ahead0
    ist[m, I_ASK_PX] += d
    ist[m, I_BID_PX] += d
    if ist[m, I_QR_K] > 0:
        ist[m, I_REF] += d
    if p[P_MODEL] == MODEL_RL:  # the realistic flow's reference price
        fst[m, N_FSTATE] += d
    ist[m, I_MID_MOVES] += 1
    for side in range(2):
        if rem[side] <= 0:
            continue
        crossed = px[side] >= ist[m, I_ASK_PX] if side == BID else px[side] <= ist[m, I_BID_PX]
        if crossed:
            ist[m, I_APX + side] = px[side]
            ist[m, I_AREM + side] = rem[side]
            ist[m, I_AHEAD + side] = 0
            fst[m, F_T0 + side] = t0[side]
            passive_fill(ist, fst, p, fills, nfill, m, side, rem[side], fst[m, F_TIME])
            ist[m, I_MKT_EXEC] += rem[side]
            keep_trade(feed.trades, ist, fst, m, px[side], rem[side] if side == ASK else -rem[side])
        else:
            ahead0 = ist[m, I_AHEAD0 + side]
            place(feed, ist, fst, p, fills, nfill, m, side, px[side], rem[side])
            fst[m, F_T0 + side] = t0[side]
            ist[m, I_AHEAD0 + side] = ahead0


@numba.njit(cache=True)
def reset_kernel(book, ist, fst, rng, p, initial, stationary, px0, q0, mask, obs, tobs):
    """Initial books for the masked markets, the agent flat (``q0`` lots, no orders)."""
    L = int(p[P_L])
    init_books(book, ist, fst, rng, p, initial, stationary, px0, mask)
    for m in range(book.shape[0]):
        if not mask[m]:
            continue
        start_episode(ist, fst, p, m, q0, others_mid(book, ist, m, L), obs)
        snapshot_market(book, ist, m, L, obs)
        tobs[m, :, :] = 0.0


def stress_schedule(scenario: StressScenario, config: LOBMarketConfig) -> np.ndarray:
    """Per-step parameters of a scenario: a ``(len(STRESS_ROWS), n_steps)`` float64 array.

    Column ``t`` applies to the step from decision ``t`` to ``t + 1``; outside the window
    (:meth:`configs.schema.StressWindow.steps`) the rows hold the calibrated market (factors 1,
    no jump, the configured latencies). Inside:

    - ``volatility`` (factor ``f``): every order-flow rate times ``f^2`` (``rate_factor``). In
      the CST / queue-reactive book the mid moves only through events, and over a horizon long
      against the inter-event times its variance grows like the number of events (Cont & de
      Larrard 2013, "Price dynamics in a Markovian limit order market", SIAM J. Financial Math.
      4, Theorem 1: sigma^2 proportional to the event rate), so a clock running ``f^2`` faster
      is the honest analogue of ``sigma -> f sigma``, not an exact scaling over a short window
      (the book's shape still starts from the unstressed one);
    - ``fill_intensity`` (factor, side): the rate of the market orders hitting the agent's side
      (sell market orders hit the bid) times the factor (``bid_market_factor``,
      ``ask_market_factor``);
    - ``jump`` (``jump_ticks``): the whole book shifted by ``size`` ticks at the start of the
      window's first step and, with ``revert``, back at the start of its last step (so the
      decisions strictly inside the window see the displaced mid, as in the analytic market);
      the agent's resting orders keep their prices (:func:`jump_book`: a crash trades through
      the bids). ``unit: price`` reads ``size`` in ticks (a whole number); ``unit: sigma`` in
      standard deviations of the mid over the horizon, ``market.mid_volatility * sqrt(T)``
      ticks (rounded to the nearest tick), which is the analytic market's unit when ``T = 1``;
    - ``latency`` (factor, add): the entry, feed and response latencies ``x factor + add``.
      With constant latencies each must stay below ``dt`` (the model's constraint).

    :raises ValueError: naming the scenario, when it declares no meaning in the order book,
        sets a perturbation this market does not apply, its window holds no step (or a
        reverting jump a single step), a jump is not a whole number of ticks or rounds to 0, or
        a stressed constant latency reaches ``dt``.
    """
    where = f"stress scenario {scenario.name!r}"
    if "lob" not in scenario.markets:
        raise ValueError(f"{where}: declares markets {scenario.markets}, not 'lob'")
    shocks = scenario.perturbations.active()
    unknown = sorted(set(shocks) - STRESS_PERTURBATIONS)
    if unknown:
        raise ValueError(f"{where}: perturbations {unknown} are not applied by the lob market")
    try:
        first, stop = scenario.window.steps(config.n_steps, config.T)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    sched = np.ones((len(STRESS_ROWS), config.n_steps))
    sched[S_JUMP] = 0.0
    sched[S_ENTRY_LAT] = config.entry_latency
    sched[S_FEED_LAT] = config.feed_latency
    sched[S_RESP_LAT] = config.response_latency
    win = slice(first, stop)
    pert = scenario.perturbations
    if pert.volatility is not None:
        sched[S_RATE, win] = pert.volatility.factor**2
    if pert.fill_intensity is not None:
        f = pert.fill_intensity
        rows = {"both": [S_MKT_BID, S_MKT_ASK], "bid": [S_MKT_BID], "ask": [S_MKT_ASK]}[f.side]
        sched[rows, win] = f.factor
    if pert.jump is not None:
        jump = pert.jump
        if jump.revert and stop - first < 2:
            raise ValueError(f"{where}: a reverting jump needs a window of at least 2 steps")
        if jump.unit == "sigma":
            ticks = round(jump.size * config.market.mid_volatility * math.sqrt(config.T))
            if ticks == 0:
                raise ValueError(
                    f"{where}: jump.size = {jump.size} sigma is "
                    f"{jump.size * config.market.mid_volatility * math.sqrt(config.T):.3g} "
                    f"ticks (market.mid_volatility {config.market.mid_volatility} ticks/sqrt(time)"
                    f" x sqrt(T = {config.T})): rounds to no tick"
                )
        else:
            if jump.size != round(jump.size) or jump.size == 0:
                raise ValueError(
                    f"{where}: jump.size = {jump.size} with unit 'price' is a shift of the book "
                    "in ticks: expected a non-zero whole number"
                )
            ticks = round(jump.size)
        sched[S_JUMP, first] += ticks
        if jump.revert:
            sched[S_JUMP, stop - 1] -= ticks
    if pert.latency is not None:
        lat = pert.latency
        for row, name in ((S_ENTRY_LAT, "entry_latency"), (S_FEED_LAT, "feed_latency"),
                          (S_RESP_LAT, "response_latency")):  # fmt: skip
            value = getattr(config, name) * lat.factor + lat.add
            if config.latency_distribution == "constant" and value >= config.dt:
                raise ValueError(
                    f"{where}: latency makes {name} {getattr(config, name)} x {lat.factor} + "
                    f"{lat.add} = {value:.6g} inside the window; constant latencies must stay "
                    f"< dt ({config.dt}): lower latency.factor / latency.add or {name}"
                )
            sched[row, win] = value
    return sched


def pack_env_params(config: LOBMarketConfig) -> np.ndarray:
    """The packed parameter vector: the exchange's (X_*,
    :func:`envs.exchange.models.pack_exchange`), the market's (:func:`pack_params`) and, with
    ``config.stress``, its schedule (:func:`stress_schedule`) appended at ``E_STRESS``, then a
    recorded latency series."""
    c = config
    p = pack_params(c.market)
    if c.stress is not None:
        p[E_STRESS] = p.size
        p = np.concatenate([p, stress_schedule(c.stress, c).ravel()])
    return pack_exchange(p, c, c.dt, c.n_steps, c.T, c.market.n_levels, c.market.tick_size,
                         c.market.lot_size)  # fmt: skip


class LOBMarketCore(ExchangeCore):
    """State and dynamics of ``N`` order-book markets with one agent each (arrays, one kernel).

    Layouts and units: :mod:`envs.exchange.layout` (the agent's ``ist``, ``fst``, ``params``
    entries, ``fills``, ``obs``) and :mod:`envs.lob.book` (``book``, the book's ``ist``
    columns, ``rng``); ``step_count`` counts the decisions taken.

    ``stress_schedule``: the per-step parameters of ``config.stress`` (:func:`stress_schedule`,
    rows :data:`STRESS_ROWS`), None without a scenario. A scenario draws no extra random number
    (with exponential latencies, a latency the scenario makes positive from 0 is drawn), so
    before its window a stressed market follows the unstressed one from the same seed exactly.

    :param config: validated market and agent parameters.
    :param num_envs: number of markets ``N``.
    :param parallel: step the markets on all numba threads (``prange``); the results are the
        same (one random stream per market), only the speed differs.
    """

    _STATE = (*ExchangeCore._STATE, "book", "trades", "trades_obs")

    def __init__(self, config: LOBMarketConfig, num_envs: int, parallel: bool = False) -> None:
        self.config = config
        self.market: MarketParams = config.market
        self.L = L = config.market.n_levels
        self.params = pack_env_params(config)
        n_float = fstate_width(self.params)  # the agent's, and the realistic flow's state
        self._allocate(num_envs, N_ISTATE, n_float, config.max_fills, _exchange, parallel)
        self.stress_schedule: np.ndarray | None = None
        if config.stress is not None:
            off = int(self.params[E_STRESS])
            size = len(STRESS_ROWS) * config.n_steps
            self.stress_schedule = self.params[off : off + size].reshape(len(STRESS_ROWS), -1)
        self.book = np.zeros((num_envs, 2, L), np.int64)
        self.trades = np.zeros((num_envs, N_OBS_TRADES, N_TRADE_COLS))
        self.trades_obs = np.zeros((num_envs, N_OBS_TRADES, 3), np.float32)
        self._no_log = no_event_log(num_envs)
        init = config.market.initial_book
        self._stationary = init == "stationary"
        self._initial = np.zeros(L, np.int64) if self._stationary else np.asarray(init, np.int64)
        self.seed(None)
        self.reset_state()

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """One xoshiro256** stream per market from ``SeedSequence(seed).spawn(N)``."""
        self.rng = seed_states(seed, self.num_envs)

    @property
    def feed(self) -> LOBFeed:
        """The book's arrays as the exchange layer's kernels take them."""
        feed = self.__dict__.get("_feed")
        if feed is None or feed.book is not self.book or feed.trades is not self.trades:
            feed = self._feed = LOBFeed(self.book, *self._no_log, self.trades, self.trades_obs)
        return feed

    def reset_state(self, mask: np.ndarray | None = None) -> None:
        """Fresh books and a flat agent for the markets selected by ``mask`` (all when None)."""
        sel = self._all if mask is None else np.asarray(mask, np.bool_)
        reset_kernel(self.book, self.ist, self.fst, self.rng, self.params, self._initial,
                     self._stationary, self.config.initial_price, self.config.q0, sel, self.obs,
                     self.trades_obs)  # fmt: skip
        self.step_count[sel] = 0
        self.nfill[sel] = 0

    def observe(self) -> dict[str, np.ndarray]:
        """The batched observation (fresh float32 arrays with a leading batch axis)."""
        return {**super().observe(), TRADES: self.trades_obs.copy()}


TRADES = "trades"

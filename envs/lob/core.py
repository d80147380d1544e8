"""The agent's side of the order-book market: quotes, latency, marketable orders, accounting.

One numba kernel steps ``N`` markets by one decision (DESIGN.md section 4, "The agent's orders"):

1. the action gives bid and ask depths (ticks) from the mid the agent last observed; prices are
   ``floor(mid - depth_bid)`` and ``ceil(mid + depth_ask)`` (never more aggressive than asked;
   an ask at or below the bid is moved to one tick above it);
2. the market runs for the entry latency with the old orders, then the new quotes go live: an
   unchanged price keeps its order and queue place, a changed one is cancelled and re-posted at
   the back of the queue; a quote that could take ``|inventory|`` beyond ``q_max`` is not sent
   (a resting one is cancelled); a quote crossing the book executes at once against it, walking
   levels (taker fee), and its remainder rests;
3. the market runs to the end of the interval; its market orders fill the agent's resting
   orders in FIFO order (:mod:`envs.lob.book`), at the maker fee;
4. at the end (or when the kill switch fires) the orders are cancelled and the inventory is
   liquidated with a marketable order (``terminal = liquidate``); whatever the simulated window
   cannot absorb stays marked at the mid and is reported.

Observations are snapshots taken during the interval: the book, mid and recent trades (the
market orders' fills of the ``dt`` before the snapshot, :func:`snapshot_trades`)
``feed_latency`` before its end, the agent's own state ``response_latency`` before it.
Latencies are constant, or exponential with those means (entry capped at the interval's end,
feed and response at ``dt``).
The mid used for the action and for marking is the mid of the OTHER participants' best quotes
(the agent's own quotes excluded, so quoting inside the spread does not drag the reference along).

Reward (all terms in ``info``; as the analytic market, Cartea & Jaimungal 2015)::

    reward = dPnL - phi (q_t^2 + q_{t+dt}^2) / 2 dt - [end] alpha q_T^2

``dPnL`` is the change of ``cash + q mid tick lot`` and already contains the fees paid
(``info["fees"]``), so they are not subtracted twice.
"""

from __future__ import annotations

import numba
import numpy as np

from calibration.params import MarketParams
from envs.lob.book import (
    ASK,
    BID,
    F_CASH,
    F_FEES,
    F_PEAK,
    F_T0,
    F_TIME,
    I_AGENT_TAKER,
    I_AHEAD,
    I_AHEAD0,
    I_APX,
    I_AREM,
    I_ASK_PX,
    I_BID_PX,
    I_INV,
    I_N_TRADES,
    I_PASSIVE_OTHERS,
    N_FILL_COLS,
    N_FSTATE,
    N_ISTATE,
    N_TRADE_COLS,
    P_ENV,
    P_L,
    P_LOT,
    P_TAKER_BPS,
    P_TICK,
    QUEUE_EXACT,
    QUEUE_PROB,
    QUEUE_PROB_LOG,
    QUEUE_RISK_AVERSE,
    TRADE_PRICE,
    TRADE_SIGNED_SIZE,
    TRADE_TIME,
    advance,
    agent_level,
    exponential,
    fix_best,
    improve_best,
    init_books,
    level_total,
    no_event_log,
    pack_params,
    record_fill,
    seed_states,
    settle,
    spread,
)
from envs.lob.config import LOBMarketConfig

# env parameters, after the market's in the packed vector
(E_DEPTH_MIN, E_HALF_WIDTH, E_DT, E_N_STEPS, E_Q_MAX, E_PHI, E_ALPHA, E_MAX_DD, E_T,
 E_ORDER_SIZE, E_ENTRY_LAT, E_LAT_EXP, E_FEED_LAT, E_RESP_LAT, E_LIQUIDATE) = (
    P_ENV + k for k in range(15))  # fmt: skip

# extra float state columns kept by the env (after the book's)
F_OBS_MID = N_FSTATE  # the mid the agent last observed (ticks)
N_ENV_FSTATE = N_FSTATE + 1

# rows of the float64 output
(OUT_REWARD, OUT_DPNL, OUT_PENALTY, OUT_FEES, OUT_BID_PX, OUT_ASK_PX, OUT_UNLIQUIDATED,
 OUT_VALUE) = range(8)  # fmt: skip
N_OUT = 8

# observation vector: [inventory, time_left, mid, cash, book (L, 2, 2), orders (2, 3)]
O_INV, O_TIME, O_MID, O_CASH, O_BOOK = 0, 1, 2, 3, 4


def obs_size(L: int) -> int:
    return O_BOOK + 4 * L + 6


N_OBS_TRADES = 8
"""Market trades in the observation (the most recent first)."""
(T_SIGNED_SIZE, T_OFFSET, T_AGE) = range(3)  # fmt: skip
"""Columns of the ``trades`` observation: lots (+ buyer-initiated, - seller-initiated), price
minus the observed mid (ticks), age at the book snapshot (time units)."""


_QUEUE_CODES = {
    "risk_averse": QUEUE_RISK_AVERSE,
    "prob": QUEUE_PROB,
    "prob_log": QUEUE_PROB_LOG,
    "exact": QUEUE_EXACT,
    "uniform": QUEUE_EXACT,
}


# --------------------------------------------------------------------------------------
# Agent primitives (one market)


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
def take(book, ist, fst, p, fills, nfill, m, side, px, size, L):
    """The agent's marketable order on ``side`` (BID buys) with limit ``px`` (ticks) executes
    against the opposite side, walking levels while they are at or better than ``px``, at the
    taker fee. Returns the lots left (they rest or lapse; see callers)."""
    opp = 1 - side
    left = size
    while left > 0:
        best = ist[m, I_ASK_PX] if side == BID else ist[m, I_BID_PX]
        if (side == BID and best > px) or (side == ASK and best < px):
            break
        s = spread(ist, m)
        avail = book[m, opp, s - 1]
        if avail <= 0:
            break  # the window holds no volume there (the agent's own order is never crossed)
        x = min(left, avail)
        book[m, opp, s - 1] -= x
        ist[m, I_PASSIVE_OTHERS] += x
        ist[m, I_AGENT_TAKER] += x
        notional = settle(ist, fst, p, m, side, best, x)
        fee = p[P_TAKER_BPS] * 1e-4 * notional
        fst[m, F_CASH] -= fee
        fst[m, F_FEES] += fee
        record_fill(fills, nfill, m, fst[m, F_TIME], best, x, side, 1.0, fee, 0.0, 0.0)
        left -= x
        if level_total(book, ist, m, opp, s) == 0:
            fix_best(book, ist, m, opp, L)
    return left


@numba.njit(cache=True)
def place(book, ist, fst, p, fills, nfill, m, side, px, size, L):
    """Send a limit order: the crossing part trades at once, the rest joins the back of the
    queue at ``px`` (everything already there is ahead of it)."""
    left = take(book, ist, fst, p, fills, nfill, m, side, px, size, L)
    if left <= 0:
        return
    if (side == BID and px >= ist[m, I_ASK_PX]) or (side == ASK and px <= ist[m, I_BID_PX]):
        return  # the window's liquidity ran out below the limit: the remainder lapses
    ist[m, I_APX + side] = px
    ist[m, I_AREM + side] = left
    i = agent_level(ist, m, side)
    ahead = book[m, side, i - 1] if 1 <= i <= L else 0
    ist[m, I_AHEAD + side] = ahead
    ist[m, I_AHEAD0 + side] = ahead
    fst[m, F_T0 + side] = fst[m, F_TIME]
    if 1 <= i < spread(ist, m):
        improve_best(book, ist, m, side, i, L)


@numba.njit(cache=True)
def apply_quotes(book, ist, fst, p, fills, nfill, m, target_bid, target_ask, L):
    """Make the agent's live orders those of the targets (0 = no quote on that side)."""
    size = int(p[E_ORDER_SIZE])
    q_max = p[E_Q_MAX]
    inv = ist[m, I_INV]
    targets = (target_bid, target_ask)
    send = np.zeros(2, np.bool_)
    for side in range(2):
        tgt = targets[side]
        rem = ist[m, I_AREM + side]
        allowed = tgt != 0 and ((inv + size <= q_max) if side == BID else (inv - size >= -q_max))
        if rem > 0:
            keep = (
                allowed
                and ist[m, I_APX + side] == tgt
                and ((inv + rem <= q_max) if side == BID else (inv - rem >= -q_max))
            )
            if keep:
                continue
            cancel_agent(book, ist, m, side, L)
        send[side] = allowed
    for side in range(2):
        if send[side]:
            place(book, ist, fst, p, fills, nfill, m, side, targets[side], size, L)


@numba.njit(cache=True)
def liquidate(book, ist, fst, p, fills, nfill, m, L):
    """Cancel the agent's orders and trade the inventory away against the book (taker)."""
    cancel_agent(book, ist, m, BID, L)
    cancel_agent(book, ist, m, ASK, L)
    inv = ist[m, I_INV]
    if inv > 0:
        take(book, ist, fst, p, fills, nfill, m, ASK, -(2**62), inv, L)
    elif inv < 0:
        take(book, ist, fst, p, fills, nfill, m, BID, 2**62, -inv, L)


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
def snapshot_own(ist, fst, m, L, obs):
    """Write inventory, cash and the agent's orders (price, remaining lots, lots ahead)."""
    obs[m, O_INV] = ist[m, I_INV]
    obs[m, O_CASH] = fst[m, F_CASH]
    base = O_BOOK + 4 * L
    for side in range(2):
        live = ist[m, I_AREM + side] > 0
        obs[m, base + 3 * side] = ist[m, I_APX + side] if live else 0
        obs[m, base + 3 * side + 1] = ist[m, I_AREM + side] if live else 0
        obs[m, base + 3 * side + 2] = ist[m, I_AHEAD + side] if live else 0


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


@numba.njit(cache=True)
def value(book, ist, fst, p, m, L):
    return fst[m, F_CASH] + ist[m, I_INV] * others_mid(book, ist, m, L) * p[P_TICK] * p[P_LOT]


def _step_impl(
    action,
    book,
    ist,
    fst,
    rng,
    p,
    step,
    active,
    out,
    done,
    obs,
    fills,
    nfill,
    evlog,
    nlog,
    trades,
    tobs,
):
    """Advance each active market by one decision (see the module docstring).

    :param action: (N, 2) normalized actions.   :param book: (N, 2, L) int64 others' lots.
    :param ist: (N, N_ISTATE) int64.            :param fst: (N, N_ENV_FSTATE) float64.
    :param rng: (N, 4) uint64 streams.          :param p: packed parameters (P_*, E_*).
    :param step: (N,) int64 decisions taken.    :param active: (N,) bool, markets to step.
    :param out: (N_OUT, N) float64 outputs.     :param done: (N,) bool terminated.
    :param obs: (N, obs_size(L)) float32.       :param fills, nfill: the fill log (reset here).
    :param evlog, nlog: the market's event log (:func:`envs.lob.book.advance`; empty: none).
    :param trades: (N, N_OBS_TRADES, 3) trade ring. :param tobs: (N, N_OBS_TRADES, 3) float32.
    """
    L = int(p[P_L])
    dt = p[E_DT]
    for m in numba.prange(book.shape[0]):
        nfill[m] = 0
        if not active[m]:
            for r in range(N_OUT):
                out[r, m] = 0.0
            done[m] = False
            continue
        t0 = fst[m, F_TIME]
        t_end = (step[m] + 1) * dt
        q0 = ist[m, I_INV]
        fees0 = fst[m, F_FEES]
        value0 = value(book, ist, fst, p, m, L)
        # 1. prices from the last observed mid
        a_b = min(max(action[m, 0], -1.0), 1.0)
        a_a = min(max(action[m, 1], -1.0), 1.0)
        depth_b = p[E_DEPTH_MIN] + (a_b + 1.0) * p[E_HALF_WIDTH]
        depth_a = p[E_DEPTH_MIN] + (a_a + 1.0) * p[E_HALF_WIDTH]
        mid_seen = fst[m, F_OBS_MID]
        px_b = int(np.floor(mid_seen - depth_b + 1e-9))
        px_a = int(np.ceil(mid_seen + depth_a - 1e-9))
        if px_a <= px_b:
            px_a = px_b + 1
        # 2. milestones: orders live (entry), own-state snapshot, market snapshot
        lat, resp, feed = p[E_ENTRY_LAT], p[E_RESP_LAT], p[E_FEED_LAT]
        if p[E_LAT_EXP] > 0:  # exponential latencies with these means, capped at dt
            lat = lat * exponential(rng, m) if lat > 0 else 0.0
            resp = min(resp * exponential(rng, m), dt) if resp > 0 else 0.0
            feed = min(feed * exponential(rng, m), dt) if feed > 0 else 0.0
        t_entry = min(t0 + lat, t_end)
        t_resp = t_end - resp
        t_feed = t_end - feed
        placed = False
        resp_done = False
        feed_done = False
        while True:
            t_next = t_end
            if not placed:
                t_next = min(t_next, t_entry)
            if not resp_done:
                t_next = min(t_next, t_resp)
            if not feed_done:
                t_next = min(t_next, t_feed)
            advance(
                book, ist, fst, rng, p, fills, nfill, m, t_next, 2**62, False, evlog, nlog, trades
            )
            if not placed and t_entry <= t_next:
                apply_quotes(book, ist, fst, p, fills, nfill, m, px_b, px_a, L)
                placed = True
            if not resp_done and t_resp <= t_next:
                snapshot_own(ist, fst, m, L, obs)
                resp_done = True
            if not feed_done and t_feed <= t_next:
                snapshot_market(book, ist, m, L, obs)
                snapshot_trades(trades, ist, fst, m, obs[m, O_MID], dt, tobs)
                fst[m, F_OBS_MID] = obs[m, O_MID]
                feed_done = True
            if placed and resp_done and feed_done and t_next >= t_end:
                break
        t = step[m] + 1
        step[m] = t
        finished = t >= p[E_N_STEPS]
        value1 = value(book, ist, fst, p, m, L)
        peak = max(fst[m, F_PEAK], value1)
        fst[m, F_PEAK] = peak
        if p[E_MAX_DD] > 0.0 and peak - value1 >= p[E_MAX_DD]:
            finished = True
        unliquidated = 0.0
        if finished:
            if p[E_LIQUIDATE] > 0:
                liquidate(book, ist, fst, p, fills, nfill, m, L)
                unliquidated = float(ist[m, I_INV])
            else:
                cancel_agent(book, ist, m, BID, L)
                cancel_agent(book, ist, m, ASK, L)
            value1 = value(book, ist, fst, p, m, L)
            snapshot_own(ist, fst, m, L, obs)
            snapshot_market(book, ist, m, L, obs)
            snapshot_trades(trades, ist, fst, m, obs[m, O_MID], dt, tobs)
        q1 = ist[m, I_INV]
        pen = p[E_PHI] * 0.5 * (q0 * q0 + q1 * q1) * dt
        if finished:
            pen += p[E_ALPHA] * q1 * q1
        out[OUT_REWARD, m] = value1 - value0 - pen
        out[OUT_DPNL, m] = value1 - value0
        out[OUT_PENALTY, m] = pen
        out[OUT_FEES, m] = fst[m, F_FEES] - fees0
        out[OUT_BID_PX, m] = px_b
        out[OUT_ASK_PX, m] = px_a
        out[OUT_UNLIQUIDATED, m] = unliquidated
        out[OUT_VALUE, m] = value1
        done[m] = finished
        obs[m, O_TIME] = p[E_T] - t * dt


step_kernel = numba.njit(cache=True, nogil=True)(_step_impl)
step_kernel_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_step_impl)
"""The step kernel with the markets spread over threads (``prange``); same results."""


@numba.njit(cache=True)
def reset_kernel(book, ist, fst, rng, p, initial, stationary, px0, q0, mask, obs, tobs):
    """Initial books for the masked markets, the agent flat (``q0`` lots, no orders)."""
    L = int(p[P_L])
    init_books(book, ist, fst, rng, p, initial, stationary, px0, mask)
    for m in range(book.shape[0]):
        if not mask[m]:
            continue
        ist[m, I_INV] = q0
        mid = others_mid(book, ist, m, L)
        fst[m, F_OBS_MID] = mid
        fst[m, F_PEAK] = q0 * mid * p[P_TICK] * p[P_LOT]
        snapshot_market(book, ist, m, L, obs)
        snapshot_own(ist, fst, m, L, obs)
        obs[m, O_TIME] = p[E_T]
        tobs[m, :, :] = 0.0


def pack_env_params(config: LOBMarketConfig) -> np.ndarray:
    """The packed parameter vector: the market's (:func:`pack_params`) and the env's (E_*)."""
    c = config
    p = pack_params(
        c.market, _QUEUE_CODES[c.queue_model], c.queue_power, c.maker_fee_bps, c.taker_fee_bps
    )
    p[E_DEPTH_MIN] = c.depth_min
    p[E_HALF_WIDTH] = 0.5 * (c.depth_max - c.depth_min)
    p[E_DT], p[E_N_STEPS], p[E_T] = c.dt, c.n_steps, c.T
    p[E_Q_MAX], p[E_PHI], p[E_ALPHA] = c.q_max, c.phi, c.alpha
    p[E_MAX_DD] = c.max_drawdown or 0.0
    p[E_ORDER_SIZE] = c.order_size
    p[E_ENTRY_LAT] = c.entry_latency
    p[E_LAT_EXP] = c.latency_distribution == "exponential"
    p[E_FEED_LAT], p[E_RESP_LAT] = c.feed_latency, c.response_latency
    p[E_LIQUIDATE] = c.terminal == "liquidate"
    return p


class LOBMarketCore:
    """State and dynamics of ``N`` order-book markets with one agent each (arrays, one kernel).

    Layouts and units: :mod:`envs.lob.book` (``book``, ``ist``, ``fst``, ``rng``) plus
    ``fst[:, F_OBS_MID]`` (the mid last observed, ticks) and ``step_count`` (decisions taken).

    :param config: validated market and agent parameters.
    :param num_envs: number of markets ``N``.
    :param parallel: step the markets on all numba threads (``prange``); the results are the
        same (one random stream per market), only the speed differs.
    """

    def __init__(self, config: LOBMarketConfig, num_envs: int, parallel: bool = False) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.market: MarketParams = config.market
        self.num_envs = num_envs
        self._kernel = step_kernel_parallel if parallel else step_kernel
        self.L = L = config.market.n_levels
        self.params = pack_env_params(config)
        self.book = np.zeros((num_envs, 2, L), np.int64)
        self.ist = np.zeros((num_envs, N_ISTATE), np.int64)
        self.fst = np.zeros((num_envs, N_ENV_FSTATE))
        self.fills = np.zeros((num_envs, config.max_fills, N_FILL_COLS))
        self.nfill = np.zeros(num_envs, np.int64)
        self.step_count = np.zeros(num_envs, np.int64)
        self.obs = np.zeros((num_envs, obs_size(L)), np.float32)
        self.trades = np.zeros((num_envs, N_OBS_TRADES, N_TRADE_COLS))
        self.trades_obs = np.zeros((num_envs, N_OBS_TRADES, 3), np.float32)
        self._all = np.ones(num_envs, np.bool_)
        self._no_log = no_event_log(num_envs)
        init = config.market.initial_book
        self._stationary = init == "stationary"
        self._initial = np.zeros(L, np.int64) if self._stationary else np.asarray(init, np.int64)
        self.seed(None)
        self.reset_state()

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """One xoshiro256** stream per market from ``SeedSequence(seed).spawn(N)``."""
        self.rng = seed_states(seed, self.num_envs)

    _STATE = ("book", "ist", "fst", "rng", "step_count", "nfill", "fills", "obs", "trades",
              "trades_obs")  # fmt: skip
    """The arrays that hold everything the markets' future depends on."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays and random streams (for checkpoints)."""
        return {name: getattr(self, name).copy() for name in self._STATE}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` (same ``num_envs`` and config)."""
        for name in self._STATE:
            target = getattr(self, name)
            if state[name].shape != target.shape:
                raise ValueError(f"state {name!r} of shape {state[name].shape} cannot load into "
                                 f"{target.shape} (another num_envs or config)")  # fmt: skip
            target[...] = state[name]

    def reset_state(self, mask: np.ndarray | None = None) -> None:
        """Fresh books and a flat agent for the markets selected by ``mask`` (all when None)."""
        sel = self._all if mask is None else np.asarray(mask, np.bool_)
        reset_kernel(
            self.book,
            self.ist,
            self.fst,
            self.rng,
            self.params,
            self._initial,
            self._stationary,
            self.config.initial_price,
            self.config.q0,
            sel,
            self.obs,
            self.trades_obs,
        )
        self.step_count[sel] = 0
        self.nfill[sel] = 0

    def observe(self) -> dict[str, np.ndarray]:
        """The batched observation (fresh float32 arrays with a leading batch axis)."""
        return {**split_obs(self.obs.copy(), self.L), TRADES: self.trades_obs.copy()}

    def step(
        self, action: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Advance the markets selected by ``active`` (all when None) by one decision."""
        n = self.num_envs
        action = np.asarray(action, np.float64)
        if action.shape != (n, 2):
            raise ValueError(f"action must have shape ({n}, 2), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError("actions must be finite")
        out = np.empty((N_OUT, n))
        done = np.empty(n, np.bool_)
        self._kernel(
            action,
            self.book,
            self.ist,
            self.fst,
            self.rng,
            self.params,
            self.step_count,
            self._all if active is None else active,
            out,
            done,
            self.obs,
            self.fills,
            self.nfill,
            *self._no_log,
            self.trades,
            self.trades_obs,
        )
        info = {
            "dpnl": out[OUT_DPNL],
            "inventory_penalty": out[OUT_PENALTY],
            "fees": out[OUT_FEES],
            "bid_price": out[OUT_BID_PX],
            "ask_price": out[OUT_ASK_PX],
            "unliquidated": out[OUT_UNLIQUIDATED],
            "value": out[OUT_VALUE],
            "n_fills": self.nfill.copy(),
            "fills": self.fills[:, : max(1, int(self.nfill.max(initial=0)))].copy(),
        }
        return self.observe(), out[OUT_REWARD], done, info


BOOK = "book"
ORDERS = "orders"
TRADES = "trades"


def split_obs(flat: np.ndarray, L: int) -> dict[str, np.ndarray]:
    """The Dict observation from the kernel's flat rows ``(N, obs_size(L))``."""
    n = flat.shape[0]
    return {
        "inventory": flat[:, O_INV : O_INV + 1],
        "time_left": flat[:, O_TIME : O_TIME + 1],
        "mid": flat[:, O_MID : O_MID + 1],
        "cash": flat[:, O_CASH : O_CASH + 1],
        BOOK: flat[:, O_BOOK : O_BOOK + 4 * L].reshape(n, L, 2, 2),
        ORDERS: flat[:, O_BOOK + 4 * L :].reshape(n, 2, 3),
    }

"""The replay as a feed of the exchange layer: recorded events fill the agent's orders.

The recorded events (:mod:`envs.replay.tape`) drive the book; the agent's orders never move it
(docs/markets.md#replay). Quotes, latency, fees, limits, liquidation, reward, observation and
``info`` are the exchange layer's (:mod:`envs.exchange.orders`,
docs/exchange.md#orders-and-queue-position), the same as in the simulated order book. What is
the replay's own:

- a quote crossing the recorded book trades at once against its displayed levels (walking them,
  taker fee) and its remainder lapses (the recorded book is not depleted, so it would still
  cross);
- queue ahead at entry: the others' lots displayed at the agent's price (everything already
  there is ahead; 0 at a price inside the spread or an empty price between levels; a price
  beyond the displayed depth is unknown, taken as 0 and counted in ``deep_entries``);
- each replayed event can fill the agent's resting orders (maker fee), at the agent's price
  (docs/exchange.md#queue-models):

  - ``exact`` (LOBSTER order ids): an order is ahead iff it was resting at entry
    (``added_at < entry event``); its cancel or execution reduces the queue ahead by its size;
  - ``risk_averse`` / ``prob`` / ``prob_log`` (L2): a decrease of the level is ahead with
    probability ``f(ahead) / (f(ahead) + f(behind))`` (never for risk_averse,
    :func:`envs.exchange.queue.ahead_first`); a trade at the price reduces the queue ahead and,
    on a feed whose depth diffs echo the trades (Binance), the next decreases of the level by
    the traded size are not counted again (hftbacktest's ``ProbQueueModel`` does the same with
    its ``cum_trade_qty``);
  - a visible trade at the agent's price by an order not ahead consumes the queue ahead, then
    fills the agent; a trade printing through the agent's price (a resting bid executed below
    the agent's bid) fills it; an order arriving on the other side at or through the agent's
    price trades with it; a hidden execution fills the agent only through its price;
- at the end the inventory is liquidated against the recorded book (``terminal = liquidate``);
  whatever its displayed depth cannot absorb stays marked at the mid (``unliquidated``).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numba
import numpy as np

from data.schema import ADD, CANCEL, SNAPSHOT, TRADE
from envs.exchange.core import ExchangeCore
from envs.exchange.layout import (
    BID,
    F_TIME,
    I_AHEAD,
    I_APX,
    I_AREM,
    I_CUMTR,
    I_DEEP,
    I_ENTRY,
    I_LVL,
    N_OWN_F,
    N_OWN_I,
    N_XPARAMS,
    O_BOOK,
    O_MID,
    X_DT,
    X_ENTRY_LAT,
    X_FEED_LAT,
    X_LEVELS,
    X_QUEUE,
    X_RESP_LAT,
)
from envs.exchange.models import pack_exchange
from envs.exchange.orders import bind, passive_fill, start_episode
from envs.exchange.queue import QUEUE_EXACT, cancel_from_ahead
from envs.exchange.rng import seed_states
from envs.replay.config import ReplayMarketConfig
from envs.replay.tape import Tape

# ---- ist columns (int64): the agent's (envs.exchange.layout), then the replay's
I_CUR = N_OWN_I  # next event to replay
I_EVENTS = N_OWN_I + 1  # events replayed
N_IST = N_OWN_I + 2

# ---- fst columns (float64): the agent's, then the replay's
F_START = N_OWN_F  # window start (seconds since the tape's first event)
F_MID = N_OWN_F + 1  # last valid mid (used while one side of the book is empty)
N_FST = N_OWN_F + 2

# ---- parameters (float64): the exchange's (X_*), then the replay's
P_TRADES_MOVE = N_XPARAMS  # 1 when a trade event itself removes volume from the book (L3)
N_PARAMS = N_XPARAMS + 1


ReplayFeed = namedtuple("ReplayFeed", "t kind side price size added_at hidden row bpx bsz")
"""The recorded day's arrays (:mod:`envs.replay.tape`): events ``t`` (s), ``kind``, ``side``,
``price`` (ticks), ``size`` (lots), ``added_at``, ``hidden``, ``row``; the recorded book
``bpx`` / ``bsz`` ``(R, 2, L)`` (ticks, lots)."""


# --------------------------------------------------------------------------------------
# Book reads (the recorded book after event ``cur - 1``)


@numba.njit(cache=True)
def book_mid(bpx, bsz, r, fallback):
    """Mid (ticks) of recorded row ``r``; ``fallback`` when a side is empty."""
    if bsz[r, 0, 0] > 0 and bsz[r, 1, 0] > 0:
        return 0.5 * (bpx[r, 0, 0] + bpx[r, 1, 0])
    return fallback


@numba.njit(cache=True)
def level_size(bpx, bsz, r, side, px, L):
    """Others' lots at ``px`` on ``side`` in row ``r``; ``-1`` if beyond the displayed depth."""
    for k in range(L):
        if bsz[r, side, k] <= 0:
            return 0  # the side ends before px: nothing rests there
        lp = bpx[r, side, k]
        if lp == px:
            return bsz[r, side, k]
        if (side == BID and lp < px) or (side != BID and lp > px):
            return 0  # px lies between displayed levels (or inside the spread)
    return -1


@numba.njit(cache=True)
def current_row(row, ist, m):
    return row[ist[m, I_CUR] - 1]


# --------------------------------------------------------------------------------------
# Replaying events against the agent's orders


# --------------------------------------------------------------------------------------
# Observations


@numba.njit(cache=True)
def snapshot_market(bpx, bsz, r, fst, m, L, obs):
    """Write the recorded book (level k of each side: price, others' lots) and the mid."""
    for k in range(L):
        for side in range(2):
            base = O_BOOK + 4 * k + 2 * side
            obs[m, base] = bpx[r, side, k]
            obs[m, base + 1] = bsz[r, side, k]
    mid = book_mid(bpx, bsz, r, fst[m, F_MID])
    fst[m, F_MID] = mid
    obs[m, O_MID] = mid


# --------------------------------------------------------------------------------------
# The feed's functions (:mod:`envs.exchange.orders` names their roles)


@numba.njit(cache=True)
def replay_begin(feed, ist, fst, p, fills, nfill, m, k):
    t_end = fst[m, F_START] + (k + 1) * p[X_DT]
    return t_end, p[X_ENTRY_LAT], p[X_RESP_LAT], p[X_FEED_LAT], p


@numba.njit(cache=True)
def replay_advance(feed, ist, fst, rng, p, fills, nfill, m, t_next):
    """Replay the events with time ``<= t_next`` against market ``m``'s orders: each event's
    effect on the agent's live order on each side (see the module docstring).

    The feed is unpacked once, before the loop over events: reading a field of a bundle
    inside it costs a reference-count update per read (docs/exchange.md#state-bundles).
    """
    t, kind, eside, price, size, added_at, hidden, _, _, _ = feed
    exact = p[X_QUEUE] == QUEUE_EXACT
    moves = p[P_TRADES_MOVE] != 0
    cur = ist[m, I_CUR]
    n = t.shape[0]
    start = cur
    while cur < n and t[cur] <= t_next:
        e = cur
        k = kind[e]
        es = eside[e]
        x = price[e]
        z = size[e]
        for s in range(2):
            if ist[m, I_AREM + s] <= 0:
                continue
            P = ist[m, I_APX + s]
            if k == ADD:
                if es == s:
                    if x == P:
                        ist[m, I_LVL + s] += z
                elif (s == BID and x <= P) or (s != BID and x >= P):
                    passive_fill(ist, fst, p, fills, nfill, m, s, min(z, ist[m, I_AREM + s]), t[e])
            elif k == TRADE:
                if es != s:
                    continue
                if (s == BID and x < P) or (s != BID and x > P):
                    ist[m, I_AHEAD + s] = 0
                    passive_fill(ist, fst, p, fills, nfill, m, s, min(z, ist[m, I_AREM + s]), t[e])
                elif x == P and not hidden[e]:
                    ahead = ist[m, I_AHEAD + s]
                    if exact and added_at[e] < ist[m, I_ENTRY + s]:
                        ist[m, I_AHEAD + s] = max(ahead - z, 0)  # an order that was ahead traded
                        left = 0
                    else:
                        a = min(z, ahead)
                        ist[m, I_AHEAD + s] = ahead - a
                        left = z - a
                        if not moves:
                            ist[m, I_CUMTR + s] += z
                    passive_fill(ist, fst, p, fills, nfill, m, s, min(left, ist[m, I_AREM + s]),
                                 t[e])  # fmt: skip
                    if moves:
                        lvl = max(ist[m, I_LVL + s] - z, 0)
                        ist[m, I_LVL + s] = lvl
                        ist[m, I_AHEAD + s] = min(ist[m, I_AHEAD + s], lvl)
            elif k == CANCEL:
                if es != s or x != P:
                    continue
                lvl0 = ist[m, I_LVL + s]
                a = ist[m, I_AHEAD + s]
                if exact:
                    if added_at[e] < ist[m, I_ENTRY + s]:
                        a = max(a - z, 0)
                else:
                    echo = min(z, ist[m, I_CUMTR + s])
                    ist[m, I_CUMTR + s] -= echo
                    chg = z - echo
                    if chg > 0:
                        b = max(lvl0 - echo - a, 0)
                        a -= cancel_from_ahead(rng, m, p, a, b, chg)
                lvl = max(lvl0 - z, 0)
                ist[m, I_LVL + s] = lvl
                ist[m, I_AHEAD + s] = min(a, lvl)
            elif k == SNAPSHOT:
                if es == s and x == P:
                    ist[m, I_LVL + s] = z
                    ist[m, I_AHEAD + s] = min(ist[m, I_AHEAD + s], z)
        cur += 1
    ist[m, I_CUR] = cur
    ist[m, I_EVENTS] += cur - start
    fst[m, F_TIME] = t_next


@numba.njit(cache=True)
def replay_level(feed, ist, m, side, k):
    """Displayed level ``k`` of ``side`` (the recorded book is not depleted by the agent)."""
    if k >= feed.bpx.shape[2]:
        return 0, 0
    r = current_row(feed.row, ist, m)
    return feed.bpx[r, side, k], feed.bsz[r, side, k]


@numba.njit(cache=True)
def replay_consume(feed, ist, p, m, side, k, lots):
    return k + 1


@numba.njit(cache=True)
def replay_crosses(feed, ist, m, side, px):
    r = current_row(feed.row, ist, m)
    opp = 1 - side
    if feed.bsz[r, opp, 0] <= 0:
        return False
    best = feed.bpx[r, opp, 0]
    return (side == BID and px >= best) or (side != BID and px <= best)


@numba.njit(cache=True)
def replay_join(feed, ist, p, m, side, px):
    """The others' lots displayed at ``px`` are ahead (a price beyond the displayed depth is
    unknown, taken as 0 and counted in ``I_DEEP``)."""
    r = current_row(feed.row, ist, m)
    lvl = level_size(feed.bpx, feed.bsz, r, side, px, feed.bpx.shape[2])
    if lvl < 0:
        ist[m, I_DEEP] += 1
        lvl = 0
    ist[m, I_LVL + side] = lvl
    ist[m, I_CUMTR + side] = 0
    ist[m, I_ENTRY + side] = ist[m, I_CUR]
    return lvl


@numba.njit(cache=True)
def replay_cancel(feed, ist, p, m, side):
    ist[m, I_AREM + side] = 0
    ist[m, I_AHEAD + side] = 0


@numba.njit(cache=True)
def replay_snapshot(feed, ist, fst, p, obs, m):
    r = current_row(feed.row, ist, m)
    snapshot_market(feed.bpx, feed.bsz, r, fst, m, feed.bpx.shape[2], obs)


@numba.njit(cache=True)
def replay_mid(feed, ist, fst, p, m):
    mid = book_mid(feed.bpx, feed.bsz, current_row(feed.row, ist, m), fst[m, F_MID])
    fst[m, F_MID] = mid
    return mid


_exchange = bind("replay", globals())
step_kernel = _exchange.step_kernel
step_kernel_parallel = _exchange.step_kernel_parallel


@numba.njit(cache=True)
def reset_kernel(t, row, bpx, bsz, ist, fst, p, starts, q0, mask, obs):
    """Put the masked replays at their window start: the book after every event at or before
    ``starts[m]`` (seconds), the agent flat (``q0`` lots, no orders)."""
    L = int(p[X_LEVELS])
    for m in range(ist.shape[0]):
        if not mask[m]:
            continue
        ist[m, :] = 0
        fst[m, :] = 0.0
        cur = np.searchsorted(t, starts[m], side="right")
        ist[m, I_CUR] = max(cur, 1)
        fst[m, F_START] = starts[m]
        fst[m, F_TIME] = starts[m]
        r = current_row(row, ist, m)
        fst[m, F_MID] = 0.5 * (bpx[r, 0, 0] + bpx[r, 1, 0])
        snapshot_market(bpx, bsz, r, fst, m, L, obs)
        start_episode(ist, fst, p, m, q0, obs[m, O_MID], obs)


def pack_params(config: ReplayMarketConfig, tape: Tape) -> np.ndarray:
    """The kernel's parameter vector: the exchange's (X_*) and the replay's (P_*)."""
    c = config
    p = np.zeros(N_PARAMS)
    p[P_TRADES_MOVE] = tape.trades_move_book
    return pack_exchange(p, c, c.dt, c.n_steps, c.T, tape.levels, tape.spec.tick_size,
                         tape.spec.lot_size)  # fmt: skip


class ReplayMarketCore(ExchangeCore):
    """State of ``N`` replays of one tape with one agent each (arrays, one kernel).

    Layout and units: the ``I_*`` / ``F_*`` columns above, ``step_count`` (decisions taken).
    Window starts: ``config.start`` for all, or (``start = None``) drawn uniformly in
    ``[0, tape duration - T]`` at each reset from the core's own generator (one draw for all
    when ``same_window``), or given for the next reset by :meth:`set_starts`.

    :param config: validated replay parameters.
    :param tape: the recorded day (default: loaded from ``config``).
    :param num_envs: number of replays ``N``.
    :param parallel: step the replays on all numba threads; same results, other speed.
    :raises ValueError: ``queue_model = exact`` on a feed without order ids, a window longer
        than the tape, or fewer displayed levels than ``config.levels``.
    """

    def __init__(
        self,
        config: ReplayMarketConfig,
        num_envs: int,
        tape: Tape | None = None,
        parallel: bool = False,
    ) -> None:
        from envs.replay.tape import load_tape

        if tape is None:
            tape = load_tape(config.data_paths(), config.format, config.binance_market,
                             config.symbol, config.levels)  # fmt: skip
        if config.queue_model == "exact" and not tape.has_order_ids:
            raise ValueError(
                "queue_model 'exact' needs order ids (LOBSTER); this feed is L2: use "
                "'risk_averse', 'prob' or 'prob_log'"
            )
        if config.T > tape.duration:
            raise ValueError(
                f"the window (n_steps x dt = {config.T} s) is longer than the tape "
                f"({tape.duration:.3f} s)"
            )
        if config.start is not None and config.start + config.T > tape.duration:
            raise ValueError(
                f"start + n_steps x dt = {config.start + config.T} s is past the tape's end "
                f"({tape.duration:.3f} s after its first event)"
            )
        self.config = config
        self.tape = tape
        self.L = tape.levels
        self.params = pack_params(config, tape)
        self._allocate(num_envs, N_IST, N_FST, config.max_fills, _exchange, parallel)
        self._pending: np.ndarray | None = None
        self.seed(None)
        self.reset_state()

    def seed(self, seed: int | None) -> None:
        """One xoshiro256** stream per replay (queue model, latencies) and one generator for the
        windows, all from ``SeedSequence(seed)``."""
        ss = np.random.SeedSequence(seed)
        streams, windows = ss.spawn(2)
        self.rng = seed_states(streams, self.num_envs)
        self._window_rng = np.random.default_rng(windows)

    @property
    def feed(self) -> ReplayFeed:
        """The tape's arrays as the exchange layer's kernels take them."""
        feed = self.__dict__.get("_feed")
        if feed is None or feed.t is not self.tape.t:
            tp = self.tape
            feed = self._feed = ReplayFeed(tp.t, tp.kind, tp.side, tp.price, tp.size, tp.added_at,
                                           tp.hidden, tp.row, tp.book_px, tp.book_sz)  # fmt: skip
        return feed

    def state_dict(self) -> dict[str, Any]:
        """Copies of the state arrays, random streams and pending window starts."""
        state = super().state_dict()
        state["window_rng"] = self._window_rng.bit_generator.state
        state["pending"] = None if self._pending is None else self._pending.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same ``num_envs``, config and tape)."""
        super().load_state_dict(state)
        self._window_rng.bit_generator.state = state["window_rng"]
        self._pending = state["pending"]

    def set_starts(self, starts: float | np.ndarray) -> None:
        """Window starts (seconds after the tape's first event) for the next reset."""
        arr = np.broadcast_to(np.asarray(starts, np.float64), (self.num_envs,)).copy()
        late = arr + self.config.T > self.tape.duration
        if np.any(arr < 0) or np.any(late):
            raise ValueError(
                f"window starts must be in [0, {self.tape.duration - self.config.T:.3f}] s "
                f"(tape {self.tape.duration:.3f} s, window {self.config.T} s), got {arr}"
            )
        self._pending = arr

    def _starts(self, sel: np.ndarray) -> np.ndarray:
        if self._pending is not None:
            starts, self._pending = self._pending, None
            return starts
        if self.config.start is not None:
            return np.full(self.num_envs, self.config.start)
        hi = self.tape.duration - self.config.T
        if self.config.same_window:
            return np.full(self.num_envs, self._window_rng.uniform(0.0, hi))
        draws = np.zeros(self.num_envs)
        draws[sel] = self._window_rng.uniform(0.0, hi, int(sel.sum()))
        return draws

    def reset_state(self, mask: np.ndarray | None = None) -> None:
        """Start the replays selected by ``mask`` (all when None) at their window start."""
        sel = self._all if mask is None else np.asarray(mask, np.bool_)
        tp = self.tape
        reset_kernel(tp.t, tp.row, tp.book_px, tp.book_sz, self.ist, self.fst, self.params,
                     self._starts(sel), self.config.q0, sel, self.obs)  # fmt: skip
        self.step_count[sel] = 0
        self.nfill[sel] = 0

    @property
    def window_starts(self) -> np.ndarray:
        """Each replay's window start (seconds after the tape's first event)."""
        return self.fst[:, F_START].copy()

    @property
    def deep_entries(self) -> np.ndarray:
        """Orders placed beyond the displayed depth since the last reset (queue ahead unknown,
        taken as 0), per replay."""
        return self.ist[:, I_DEEP].copy()

    @property
    def events_replayed(self) -> np.ndarray:
        """Events replayed per market since its last reset."""
        return self.ist[:, I_EVENTS].copy()

    def _before_step(self) -> np.ndarray:
        return self.ist[:, I_EVENTS].copy()

    def _step_info(self, before: np.ndarray) -> dict[str, np.ndarray]:
        """``events``: the events replayed by each market in this decision."""
        return {"events": self.ist[:, I_EVENTS] - before}

"""Exact expected rewards in the analytic market, by backward induction on (decision, inventory).

In the analytic market (:mod:`envs.analytic`) a policy that quotes as a function of the
decision ``n`` and the inventory ``q`` alone (every baseline, and a SAC agent whose features
read only inventory and time) has an expected episode reward that a Monte Carlo run only
estimates: it is a finite sum over the ``n_steps x (2 q_max + 1)`` states, computed here
exactly. The same recursion with a maximum in place of the policy gives the optimum of the
*discrete* market, which differs from the continuous-time value ``h(0, q0)`` of
Cartea-Jaimungal (2015) by the time step (``dt = T / n_steps``: ``6.4053`` against
``h = 6.3806`` in ``configs/cj_sac.yaml``).

One decision from inventory ``q`` with depths ``(d_b, d_a)``, fill probabilities ``p_b, p_a``
(``A exp(-k d) dt`` clipped to 1, or ``1 - exp(-A exp(-k d) dt)``; none beyond ``+-q_max``)
and independent fills, as the step kernel draws them::

    q' = q + 1{bid filled} - 1{ask filled}
    E[reward] = p_b d_b + p_a d_a + drift dt E[q'] - phi dt (q^2 + E[q'^2]) / 2
                - [last decision] alpha E[q'^2]

(the mid's move multiplies the inventory after the fills and has mean ``drift dt``), so with
``V_{n_steps} = 0``::

    V_n(q) = E[reward + V_{n+1}(q')]

Not covered (a :class:`ValueError` says so): stress scenarios, whose schedule makes the fill
law change in time in ways the policy table would ignore; and the kill switch
(``max_drawdown``), which ends an episode on the path of PnL, not on ``(n, q)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.base import Policy
from configs.schema import AnalyticMarketConfig
from envs.layout import CASH, INVENTORY, MID, TIME_LEFT, DepthActionMap

_SWEEPS = 60
"""At most this many alternating bid/ask maximizations per decision (they settle within ~10)."""
_TOLERANCE = 1e-10
"""The alternation stops when no depth moves more than this (price units)."""
_GOLDEN_ITERATIONS = 64
"""Golden-section iterations of the ``exact`` fill law's depth search (interval * 0.618^64,
about 1e-13 of the depth range)."""


@dataclass(frozen=True)
class PolicyTable:
    """Depths (price units) a policy quotes at each decision ``n`` and inventory ``q``.

    :param bid: ``(n_steps, 2 q_max + 1)``; column ``j`` is inventory ``j - q_max``.
    :param ask: the same for the ask.
    """

    bid: np.ndarray
    ask: np.ndarray


@dataclass(frozen=True)
class ExactValues:
    """Expected rewards-to-go ``V[n, j]`` from decision ``n`` at inventory ``j - q_max``,
    ``(n_steps + 1, 2 q_max + 1)``, with ``V[n_steps] = 0``; and the start value, the expected
    episode reward from the market's start distribution."""

    values: np.ndarray
    start: float


class ExactAnalyticMarket:
    """Backward induction for one analytic market configuration.

    :param market: the market; stress scenarios and the kill switch are refused.
    :raises ValueError: the market has a stress scenario or a kill switch.
    """

    def __init__(self, market: AnalyticMarketConfig) -> None:
        if market.stress is not None:
            raise ValueError(
                "exact values: a stress scenario changes the market within the episode; "
                "evaluate it by simulation"
            )
        if market.max_drawdown is not None:
            raise ValueError(
                "exact values: the kill switch (max_drawdown) depends on the PnL path, not on "
                "(time, inventory); evaluate it by simulation"
            )
        self.market = market
        self.dt = market.T / market.n_steps
        self.q = np.arange(-market.q_max, market.q_max + 1, dtype=np.float64)
        """Inventories of the grid's columns."""

    # ------------------------------------------------------------------------- one decision
    def fill_probability(self, depth: np.ndarray) -> np.ndarray:
        """Per-step fill probability of a quote at ``depth``, as the step kernel computes it."""
        m = self.market
        lam = m.A * np.exp(-m.k * np.asarray(depth, np.float64)) * self.dt
        return -np.expm1(-lam) if m.fill_probability == "exact" else np.minimum(lam, 1.0)

    def _continuation(self, next_values: np.ndarray, n: int) -> np.ndarray:
        """``w(q') = V_{n+1}(q') + drift dt q' - phi dt q'^2 / 2 - [last] alpha q'^2``: what
        landing on ``q'`` after decision ``n`` is worth, the post-fill terms included."""
        m = self.market
        w = next_values + m.drift * self.dt * self.q - 0.5 * m.phi * self.dt * self.q**2
        if n == m.n_steps - 1:
            w = w - m.alpha * self.q**2
        return w

    def _neighbours(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # at the bounds the blocked side never fills, so its neighbour is never used
        return np.append(w[1:], w[-1]), np.insert(w[:-1], 0, w[0])

    def backup(self, next_values: np.ndarray, n: int, bid: np.ndarray, ask: np.ndarray
               ) -> np.ndarray:  # fmt: skip
        """``V_n`` over the inventory grid from ``V_{n+1}`` and the depths quoted at ``n``."""
        w = self._continuation(next_values, n)
        up, down = self._neighbours(w)
        pb = self.fill_probability(bid) * (self.q < self.market.q_max)
        pa = self.fill_probability(ask) * (self.q > -self.market.q_max)
        expected_next = pb * (1 - pa) * up + pa * (1 - pb) * down + (1 - pb - pa + 2 * pb * pa) * w
        return pb * bid + pa * ask - 0.5 * self.market.phi * self.dt * self.q**2 + expected_next

    def _best_depth(self, gain: np.ndarray) -> np.ndarray:
        """The depth maximizing ``p(d) (d + gain)`` on ``[depth_min, depth_max]``, per state.

        Clipped law: ``A dt e^{-kd} (d + gain)`` peaks at ``d = 1/k - gain``; below
        ``d_c = log(A dt) / k`` the probability is 1 and the gain rises with ``d``, so the
        maximum is at ``max(1/k - gain, d_c)``, clipped to the depth range. Exact law: the
        function is unimodal (``p`` is log-concave and decreasing); golden-section search.
        """
        m = self.market
        if m.fill_probability == "clipped":
            d = np.maximum(1.0 / m.k - gain, np.log(m.A * self.dt) / m.k)
            return np.clip(d, m.depth_min, m.depth_max)
        lo = np.full_like(gain, m.depth_min)
        hi = np.full_like(gain, m.depth_max)
        ratio = (np.sqrt(5.0) - 1.0) / 2.0
        for _ in range(_GOLDEN_ITERATIONS):
            a = hi - ratio * (hi - lo)
            b = lo + ratio * (hi - lo)
            fa = self.fill_probability(a) * (a + gain)
            fb = self.fill_probability(b) * (b + gain)
            left = fa >= fb
            hi = np.where(left, b, hi)
            lo = np.where(left, lo, a)
        return 0.5 * (lo + hi)

    # ------------------------------------------------------------------------- whole episodes
    def optimum(self) -> tuple[ExactValues, PolicyTable]:
        """The discrete market's optimal values and the depths that attain them.

        At each state the bid depth maximizes ``p_b (d_b + g_b)`` with
        ``g_b = E_ask[w(q + 1 - f_a) - w(q - f_a)]`` given the ask, and symmetrically; the two
        are alternated until they stop moving (the joint term, both sides filled, is small).
        """
        m = self.market
        nq = self.q.size
        values = np.zeros((m.n_steps + 1, nq))
        bid = np.zeros((m.n_steps, nq))
        ask = np.zeros((m.n_steps, nq))
        can_buy = self.q < m.q_max
        can_sell = self.q > -m.q_max
        for n in range(m.n_steps - 1, -1, -1):
            w = self._continuation(values[n + 1], n)
            up, down = self._neighbours(w)
            db = np.full(nq, 1.0 / m.k)
            da = db.copy()
            for _ in range(_SWEEPS):
                pa = self.fill_probability(da) * can_sell
                db_new = self._best_depth(pa * (w - down) + (1 - pa) * (up - w))
                pb = self.fill_probability(db_new) * can_buy
                da_new = self._best_depth(pb * (w - up) + (1 - pb) * (down - w))
                moved = max(np.abs(db_new - db).max(), np.abs(da_new - da).max())
                db, da = db_new, da_new
                if moved < _TOLERANCE:
                    break
            bid[n], ask[n] = db, da
            values[n] = self.backup(values[n + 1], n, db, da)
        return ExactValues(values, self.start_value(values)), PolicyTable(bid, ask)

    def evaluate(self, table: PolicyTable) -> ExactValues:
        """The exact expected rewards-to-go of the policy that quotes ``table``."""
        m = self.market
        values = np.zeros((m.n_steps + 1, self.q.size))
        for n in range(m.n_steps - 1, -1, -1):
            values[n] = self.backup(values[n + 1], n, table.bid[n], table.ask[n])
        return ExactValues(values, self.start_value(values))

    def start_value(self, values: np.ndarray) -> float:
        """Expected episode reward from the market's start distribution: inventory ``q0``, or
        uniform on ``q0 +- q0_range`` within ``+-q_max``; decision 0, or uniform on
        ``0 .. n_steps - 1`` with ``random_start``."""
        m = self.market
        lo, hi = max(m.q0 - m.q0_range, -m.q_max), min(m.q0 + m.q0_range, m.q_max)
        columns = np.arange(lo, hi + 1) + m.q_max
        rows = values[: m.n_steps] if m.random_start else values[:1]
        return float(rows[:, columns].mean())

    def occupancy(self, table: PolicyTable) -> np.ndarray:
        """Probability of each inventory before each decision, ``(n_steps + 1, 2 q_max + 1)``,
        from decision 0 at inventory ``q0`` (where the policy's losses come from)."""
        m = self.market
        p = np.zeros(self.q.size)
        p[m.q0 + m.q_max] = 1.0
        out = [p]
        for n in range(m.n_steps):
            pb = self.fill_probability(table.bid[n]) * (self.q < m.q_max)
            pa = self.fill_probability(table.ask[n]) * (self.q > -m.q_max)
            buy, sell = p * pb * (1 - pa), p * pa * (1 - pb)
            p = p - buy - sell
            p[1:] += buy[:-1]
            p[:-1] += sell[1:]
            out.append(p)
        return np.array(out)

    # ------------------------------------------------------------------------- policies
    def policy_table(self, policy: Policy, action_map: DepthActionMap) -> PolicyTable:
        """The depths ``policy`` quotes at every ``(n, q)``, read by acting on the whole grid.

        The policy must quote as a function of inventory and time alone: it is asked twice,
        at the market's initial mid and zero cash and at a distant mid and cash, and must
        answer the same.

        :raises ValueError: the policy's quotes depend on the mid or the cash.
        """
        m = self.market
        n_states = m.n_steps * self.q.size
        inventory = np.tile(self.q, m.n_steps).astype(np.float32)[:, None]
        time_left = np.repeat(m.T - np.arange(m.n_steps) * self.dt, self.q.size)
        depths = []
        for mid, cash in ((m.s0, 0.0), (m.s0 + 10.0 * (m.sigma * np.sqrt(m.T) + 1.0), 1e3)):
            obs = {
                INVENTORY: inventory,
                TIME_LEFT: time_left.astype(np.float32)[:, None],
                MID: np.full((n_states, 1), mid, np.float32),
                CASH: np.full((n_states, 1), cash, np.float32),
            }
            policy.reset()
            depths.append(action_map.to_depths(np.asarray(policy.act(obs), np.float64)))
        if not np.allclose(depths[0], depths[1], rtol=0.0, atol=1e-5):
            raise ValueError(
                "exact values need a policy of (time, inventory): this one quotes differently "
                "at another mid or cash; evaluate it by simulation"
            )
        d = depths[0].reshape(m.n_steps, self.q.size, 2)
        return PolicyTable(bid=d[..., 0], ask=d[..., 1])

    def policy_value(self, policy: Policy, action_map: DepthActionMap) -> float:
        """The exact expected episode reward of ``policy`` (see :meth:`policy_table`)."""
        return self.evaluate(self.policy_table(policy, action_map)).start

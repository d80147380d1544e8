"""Exact quantities of the Cont-Stoikov-Talreja (2010) model, and the same by simulation.

Reference: R. Cont, S. Stoikov, R. Talreja, "A stochastic model for order book dynamics",
Operations Research 58(3), 549-563, 2010 (CST 2010).

- :func:`prob_mid_up_first`: the probability that the mid rises before it falls, given the best
  queue sizes. CST 2010 section 3.3 (Proposition 3 of the published version) obtains it from
  the Laplace transforms of the first-passage times of the two best queues (continued fractions,
  numerically inverted). Here the same quantity is computed by a direct sparse linear solve of
  the backward (Dirichlet) equations of the two-queue Markov chain, truncated far above the
  queues' stationary range (the truncation error is checked by doubling the cap).
- :func:`stationary_queue_distribution`: the stationary law of a queue at distance ``i`` as a
  birth-death chain (birth ``lambda(i)``, death ``theta(i) n``, plus ``mu`` at the best), as in
  CST 2010 section 1.2.
- the ``simulate_*`` functions estimate the same with the book kernel of :mod:`envs.lob.book`.

For the queue-reactive model (W. Huang, C.-A. Lehalle, M. Rosenbaum, "Simulating and analyzing
order book data: the queue-reactive model", JASA 110(509), 2015; HLR 2015):
:func:`invariant_queue_distribution` (the birth-death law of each queue, Model I) and
:func:`simulate_qr_queue_sizes` (the same queues in simulated books).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from calibration.params import MarketParams
from envs.lob.book import (
    ASK,
    BID,
    F_TIME,
    I_ASK_PX,
    I_BID_PX,
    I_REF,
    N_ISTATE,
    OrderBooks,
)


def _require_unit(params: MarketParams) -> None:
    if params.model != "cst":
        raise ValueError(f"the exact CST 2010 quantities need model 'cst', got {params.model!r}")
    if params.size_distribution != "unit":
        raise ValueError("the exact CST 2010 quantities assume unit order sizes")


def prob_mid_up_first(
    a: int, b: int, params: MarketParams, spread: int = 1, cap: int | None = None
) -> float:
    """P(the mid's next move is up | best ask queue ``a``, best bid queue ``b``, ``spread``).

    Chain (CST 2010 section 1.2 restricted to the best quotes): each best queue ``x`` at
    distance ``s = spread`` from the opposite best gains an order at rate ``lambda(s)`` and loses
    one at rate ``theta(s) x + mu``; they are independent until the mid moves. The mid rises when
    the ask queue empties or a bid arrives inside the spread (rate ``kappa = sum_{i<s}
    lambda(i)``), and falls in the mirror cases. ``u(x, y) = P(up | ask x, bid y)`` solves

        (2 lambda(s) + d(x) + d(y) + 2 kappa) u(x, y) = lambda(s) (u(x+1, y) + u(x, y+1))
            + d(x) u(x-1, y) + d(y) u(x, y-1) + kappa,   d(n) = theta(s) n + mu,

    with ``u(0, y) = 1``, ``u(x, 0) = 0``; births are blocked at ``x, y = cap`` (truncation).

    :param a: best ask queue (lots, >= 1).  :param b: best bid queue (lots, >= 1).
    :param spread: spread in ticks, ``1 <= spread <= n_levels``.
    :param cap: truncation of the queue sizes; default ``max(a, b) + 60``.
    """
    _require_unit(params)
    if a < 1 or b < 1:
        raise ValueError("queue sizes a and b must be >= 1")
    if not 1 <= spread <= params.n_levels:
        raise ValueError(f"spread must be in 1..{params.n_levels}")
    lam = params.limit_rates[spread - 1]
    theta = params.cancel_rates[spread - 1]
    mu = params.market_rate
    kappa = float(np.sum(params.limit_rates[: spread - 1]))
    n = cap or max(a, b) + 60
    grid_x, grid_y = np.meshgrid(np.arange(1, n + 1), np.arange(1, n + 1), indexing="ij")
    x, y = grid_x.ravel(), grid_y.ravel()
    idx = (x - 1) * n + (y - 1)
    dx, dy = theta * x + mu, theta * y + mu
    bx = np.where(x < n, lam, 0.0)
    by = np.where(y < n, lam, 0.0)
    rows = [idx]
    cols = [idx]
    vals = [bx + by + dx + dy + 2.0 * kappa]
    rhs = np.full(n * n, kappa)
    for step_x, step_y, rate in ((1, 0, bx), (0, 1, by), (-1, 0, dx), (0, -1, dy)):
        nx, ny = x + step_x, y + step_y
        inside = (nx >= 1) & (ny >= 1) & (rate > 0)
        rows.append(idx[inside])
        cols.append(((nx - 1) * n + (ny - 1))[inside])
        vals.append(-rate[inside])
        rhs += np.where(nx == 0, rate, 0.0)  # the ask queue emptied: the mid went up
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n, n * n)
    )
    u = spla.spsolve(matrix, rhs)
    return float(u[(a - 1) * n + (b - 1)])


class Estimate(NamedTuple):
    """A simulated probability with its binomial standard error."""

    p: float
    se: float
    n: int


def _books_with_best_queues(
    a: int, b: int, params: MarketParams, n_paths: int, seed: int, spread: int = 1
) -> OrderBooks:
    books = OrderBooks(params, n_paths)
    books.seed(seed)
    L = params.n_levels
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    lam = np.asarray(params.limit_rates)
    theta = np.asarray(params.cancel_rates)
    books.ist[:] = np.zeros(N_ISTATE, np.int64)
    books.fst[:, F_TIME] = 0.0
    books.ist[:, I_BID_PX] = 10_000
    books.ist[:, I_ASK_PX] = 10_000 + spread
    for side, q in ((ASK, a), (BID, b)):
        books.book[:, side, :] = rng.poisson(lam / theta, (n_paths, L))
        books.book[:, side, : spread - 1] = 0
        books.book[:, side, spread - 1] = q
    return books


def simulate_prob_mid_up_first(
    a: int, b: int, params: MarketParams, n_paths: int, seed: int, spread: int = 1
) -> Estimate:
    """The fraction of ``n_paths`` simulated books whose mid first moves up (CST 2010 model).

    Each path starts with best queues ``a`` (ask) and ``b`` (bid) at ``spread`` ticks and deeper
    levels drawn from their Poisson(lambda(i)/theta(i)) laws (they do not affect the answer), and
    runs the full book kernel until the mid changes.
    """
    _require_unit(params)
    books = _books_with_best_queues(a, b, params, n_paths, seed, spread)
    mid0 = books.ask_px + books.bid_px
    books.simulate(stop_on_mid_move=True)
    up = (books.ask_px + books.bid_px) > mid0
    p = float(up.mean())
    return Estimate(p, float(np.sqrt(max(p * (1 - p), 1e-12) / n_paths)), n_paths)


def stationary_queue_distribution(
    params: MarketParams, level: int, at_best: bool = False, n_max: int = 60
) -> np.ndarray:
    """``pi(n)``, ``n = 0..n_max``, of the birth-death queue at distance ``level``.

    Birth ``lambda(i)``, death ``theta(i) n`` (+ ``mu`` when ``at_best``): ``pi(n) ~ prod_{k<=n}
    lambda(i) / (theta(i) k + mu 1_best)`` (CST 2010 section 1.2). Without ``mu`` it is
    Poisson(``lambda(i)/theta(i)``). Exact for a queue whose distance from the opposite best does
    not change; for the moving book it is an approximation (compare with the simulation).
    """
    if params.model != "cst":
        raise ValueError(
            "stationary_queue_distribution is the CST 2010 law; use "
            "invariant_queue_distribution for the queue-reactive model"
        )
    lam = params.limit_rates[level - 1]
    theta = params.cancel_rates[level - 1]
    mu = params.market_rate if at_best else 0.0
    k = np.arange(1, n_max + 1)
    log_pi = np.concatenate([[0.0], np.cumsum(np.log(lam) - np.log(theta * k + mu))])
    pi = np.exp(log_pi - log_pi.max())
    return pi / pi.sum()


def simulate_queue_sizes(
    params: MarketParams,
    level: int,
    n_books: int,
    t: float,
    seed: int,
    side: int = BID,
    best: bool = False,
) -> np.ndarray:
    """Queue sizes of ``n_books`` independent books at time ``t`` (one sample per book).

    :param level: distance from the opposite best (ignored when ``best``).
    :param best: sample the best queue of ``side`` instead.
    """
    books = OrderBooks(params, n_books)
    books.seed(seed)
    books.reset()
    books.simulate(until=t)
    if best:
        ask_q, bid_q = books.best_queues()
        return bid_q if side == BID else ask_q
    return books.book[:, side, level - 1].copy()


def invariant_queue_distribution(params: MarketParams, queue: int) -> np.ndarray:
    """``pi_i(n)``, ``n = 0, 1, ...``: the invariant law of queue ``i`` (``Q_{+-i}``) of the
    queue-reactive model as a birth-death chain, ``pi_i(n) ~ prod_{j<n} lambda^L_i(j) /
    (lambda^C_i(j+1) + 1{i=1} lambda^M(j+1))`` (HLR 2015 section 2.3.1, Model I; rates of
    ``max_queue`` above it), truncated where the tail is below 1e-13. Exact for ``Q_{+-1}`` with
    unit sizes while the reference price stays (``theta = 0``); deeper queues also receive
    market orders when the queues before them are empty, which the law leaves out."""
    qr = params.queue_reactive
    if params.model != "queue_reactive" or qr is None:
        raise ValueError(
            f"invariant_queue_distribution needs model 'queue_reactive', got {params.model!r}"
        )
    return np.asarray(qr.invariant_distribution(queue))


def simulate_qr_queue_sizes(
    params: MarketParams, queue: int, n_books: int, t: float, seed: int
) -> np.ndarray:
    """Sizes (lots) of queue ``Q_{+-queue}`` of ``n_books`` independent queue-reactive books at
    time ``t``: ``(n_books, 2)``, bid then ask (one sample per book and side)."""
    if params.model != "queue_reactive" or params.queue_reactive is None:
        raise ValueError("simulate_qr_queue_sizes needs model 'queue_reactive'")
    books = OrderBooks(params, n_books)
    books.seed(seed)
    books.reset()
    books.simulate(until=t)
    ref = books.ist[:, I_REF]
    idx = np.arange(n_books)
    out = np.zeros((n_books, 2), np.int64)
    L = params.n_levels
    for col, (side, dist) in enumerate(
        ((BID, books.ask_px - (ref - queue)), (ASK, ref + queue - 1 - books.bid_px))
    ):
        inside = (dist >= 1) & (dist <= L)
        out[inside, col] = books.book[idx[inside], side, dist[inside] - 1]
    return out


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``sum |p - q| / 2`` over the common support (the shorter array is zero-padded)."""
    n = max(p.size, q.size)
    return 0.5 * float(np.abs(np.pad(p, (0, n - p.size)) - np.pad(q, (0, n - q.size))).sum())


def estimate_mid_volatility(
    params: MarketParams,
    n_books: int = 2000,
    horizon: float = 300.0,
    interval: float = 5.0,
    seed: int = 0,
) -> float:
    """Mid volatility (ticks per sqrt(time unit)) from simulated books: the realized variance of
    mid increments over ``interval``, pooled over books and intervals, divided by ``interval``."""
    books = OrderBooks(params, n_books)
    books.seed(seed)
    books.reset()
    mids = [0.5 * (books.ask_px + books.bid_px)]
    for k in range(1, int(horizon / interval) + 1):
        books.simulate(until=k * interval)
        mids.append(0.5 * (books.ask_px + books.bid_px))
    inc = np.diff(np.stack(mids), axis=0)
    return float(np.sqrt(np.mean(inc**2) / interval))


def estimate_fill_curve(
    params: MarketParams,
    depths: np.ndarray,
    n_books: int = 512,
    n_steps: int = 200,
    dt: float = 1.0,
    seed: int = 0,
) -> tuple[float, float, np.ndarray]:
    """Fit ``A exp(-k delta)`` to simulated fill rates of unit quotes at ``depths`` (ticks).

    For each depth, ``n_books`` markets quote a unit bid and ask at that depth from the mid,
    re-posted every ``dt`` (an unchanged price keeps its place), with no inventory limit in
    practice; the rate is passive fills per side per time unit. ``(A, k)`` is the least-squares
    line through ``(delta, log rate)``. Returns ``(A, k, rates)``.
    """
    from envs.lob.config import LOBMarketConfig
    from envs.lob.env import LOBMarketVectorEnv

    rates = []
    for j, depth in enumerate(depths):
        cfg = LOBMarketConfig(
            market=params,
            T=n_steps * dt,
            n_steps=n_steps,
            q_max=10**6,
            depth_min=0.0,
            depth_max=float(params.n_levels - 1),
            terminal="mark",
            queue_model="exact",
        )
        env = LOBMarketVectorEnv(num_envs=n_books, config=cfg)
        env.reset(seed=seed + j)
        action = env.action_map.to_action(np.full(n_books, depth), np.full(n_books, depth))
        fills = 0.0
        for _ in range(n_steps):
            _, _, _, _, info = env.step(action)
            fills += float(info["n_fills"].sum())
        rates.append(fills / (2 * n_books * n_steps * dt))
    r = np.asarray(rates)
    slope, intercept = np.polyfit(np.asarray(depths, float), np.log(r), 1)
    return float(np.exp(intercept)), float(-slope), r

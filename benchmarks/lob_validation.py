"""Validation table of the order-book market against the Cont-Stoikov-Talreja (2010) model.

Usage: ``python benchmarks/lob_validation.py [--paths 40000] [--books 20000] [--summaries]``

1. P(the mid rises before it falls | best ask queue a, best bid queue b, one-tick spread): the
   exact birth-death value (:func:`envs.lob.validation.prob_mid_up_first`) against the fraction
   of simulated books (full book kernel), with the binomial standard error and the z-score.
2. Queue sizes: the birth-death stationary law (birth lambda(i), death theta(i) n, + mu at the
   best) against the simulated book at t = 30 (one sample per book, stationary start). In the
   full model the law is an approximation (the opposite best moves, relabelling the levels, and
   the best queue is never empty); with the best quotes frozen (mu = 0, theta(1) ~ 0) it is exact.
3. Queue-reactive model (Huang, Lehalle & Rosenbaum 2015, ``configs/markets/
   queue_reactive_default.yaml``): each queue's birth-death invariant law (Model I) against the
   simulated queues at t = 40, with theta = 0 (exact for Q_{+-1}) and with the shipped theta.
4. (``--summaries``) the mid volatility and the A exp(-k delta) fill curve used by the baselines
   (``--summaries-qr``: the same for the queue-reactive default).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import yaml

from calibration.params import TOKYO_CST, MarketParams
from envs.lob.book import ASK, BID, OrderBooks
from envs.lob.validation import (
    estimate_fill_curve,
    estimate_mid_volatility,
    invariant_queue_distribution,
    prob_mid_up_first,
    simulate_prob_mid_up_first,
    simulate_qr_queue_sizes,
    simulate_queue_sizes,
    stationary_queue_distribution,
    total_variation,
)

QR_DEFAULT = Path(__file__).resolve().parent.parent / "configs/markets/queue_reactive_default.yaml"
PAIRS = [(1, 1), (1, 2), (2, 1), (1, 3), (2, 2), (3, 2), (1, 5), (2, 5), (3, 3), (5, 5), (4, 1)]


def frozen_best(params: MarketParams) -> MarketParams:
    return MarketParams.from_dict({
        **params.to_dict(), "market_rate": 0.0,
        "cancel_rates": [1e-12, *params.cancel_rates[1:]],
        "initial_book": [1000] + [0] * (params.n_levels - 1),
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=40_000, help="paths per (a, b)")
    parser.add_argument("--books", type=int, default=20_000, help="books per queue sample")
    parser.add_argument("--summaries", action="store_true", help="fill curve and volatility")
    parser.add_argument(
        "--summaries-qr",
        action="store_true",
        help="fill curve and volatility of the queue-reactive default",
    )
    args = parser.parse_args()
    p = TOKYO_CST

    print("P(mid up first | a, b), spread 1 tick, Tokyo parameters (CST 2010 Table 2)")
    print(f"{'a':>3} {'b':>3} {'exact':>8} {'simulated':>10} {'s.e.':>7} {'z':>6}")
    for a, b in PAIRS:
        exact = prob_mid_up_first(a, b, p)
        est = simulate_prob_mid_up_first(a, b, p, args.paths, seed=1000 * a + b)
        se = np.sqrt(exact * (1 - exact) / est.n)
        print(f"{a:>3} {b:>3} {exact:8.4f} {est.p:10.4f} {se:7.4f} {(est.p - exact) / se:6.2f}")

    print(f"\nqueue sizes: birth-death stationary law vs simulation ({args.books} books, t = 30)")
    print(f"{'queue':<28} {'mean model':>10} {'mean sim':>9} {'TV dist':>8}  P(n=0..5) model / sim")
    rows = [("best bid (n >= 1 in model)", 1, True, p)]
    rows += [(f"bid at distance {i} from ask", i, False, p) for i in range(2, 6)]
    rows += [(f"frozen best, distance {i}", i, False, frozen_best(p)) for i in (2, 3, 5)]
    for label, level, best, params in rows:
        model = stationary_queue_distribution(params, level, at_best=best)
        if best:
            model = np.concatenate([[0.0], model[1:] / model[1:].sum()])
        sizes = simulate_queue_sizes(params, level, args.books, 30.0, seed=level, best=best)
        sim = np.bincount(sizes) / sizes.size
        n = np.arange(model.size)
        print(
            f"{label:<28} {np.dot(n, model):10.3f} {sizes.mean():9.3f} "
            f"{total_variation(sim, model):8.4f}  "
            f"{np.round(model[:6], 3).tolist()} / {np.round(sim[:6], 3).tolist()}"
        )

    books = OrderBooks(p, 4000)
    books.seed(7)
    books.reset()
    books.simulate(until=30.0)
    spread = books.ask_px - books.bid_px
    print(
        "\nspread distribution at t = 30 (ticks: fraction):",
        {int(s): round(float(np.mean(spread == s)), 3) for s in np.unique(spread)},
    )
    depth = books.book[:, (BID, ASK), :].mean(axis=(0, 1))
    print("mean depth per level from the opposite best (lots):", np.round(depth, 2).tolist())

    qr_data = yaml.safe_load(QR_DEFAULT.read_text())
    qr = MarketParams.from_dict(qr_data)
    print(
        f"\nqueue-reactive default (HLR 2015 Model I): invariant law vs simulation "
        f"({args.books} books x 2 sides, t = 40)"
    )
    print(f"{'queue':<28} {'mean model':>10} {'mean sim':>9} {'TV dist':>8}  P(n=0..5) model / sim")
    for theta in (0.0, qr_data["queue_reactive"]["theta"]):
        params = MarketParams.from_dict(
            {**qr_data, "queue_reactive": {**qr_data["queue_reactive"], "theta": theta}}
        )
        for q in range(1, 4):
            model = invariant_queue_distribution(params, q)
            sizes = simulate_qr_queue_sizes(params, q, args.books, 40.0, seed=q).ravel()
            sim = np.bincount(sizes) / sizes.size
            n = np.arange(model.size)
            print(
                f"{f'Q+-{q}, theta = {theta}':<28} {np.dot(n, model):10.3f} "
                f"{sizes.mean():9.3f} {total_variation(sim, model):8.4f}  "
                f"{np.round(model[:6], 3).tolist()} / {np.round(sim[:6], 3).tolist()}"
            )

    if args.summaries_qr:
        sigma = estimate_mid_volatility(qr)
        A, k, rates = estimate_fill_curve(qr, np.array([0.5, 1.5, 2.5]), n_books=512)
        print(f"\nqueue-reactive mid volatility: {sigma:.3f} ticks / sqrt(s)")
        print(
            f"fill rates at 0.5, 1.5, 2.5 ticks: {np.round(rates, 5).tolist()} per s; "
            f"fit A = {A:.3f} / s, k = {k:.3f} / tick"
        )

    if args.summaries:
        sigma = estimate_mid_volatility(p)
        A, k, rates = estimate_fill_curve(p, np.array([0.5, 1.5, 2.5, 3.5]), n_books=256)
        print(f"\nmid volatility: {sigma:.3f} ticks / sqrt(s)")
        print(
            f"fill rates at 0.5, 1.5, 2.5, 3.5 ticks: {np.round(rates, 4).tolist()} per s; "
            f"fit A = {A:.3f} / s, k = {k:.3f} / tick"
        )


if __name__ == "__main__":
    main()

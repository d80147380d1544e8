"""Load times of the market-data loaders on the shared real data.

Usage: ``python benchmarks/data_loading.py [--repeat 3] [--data DIR]``

- LOBSTER GOOG 2012-06-21, full day, 10 levels (147,916 messages): the target is under 5 s;
- LOBSTER AAPL 2012-06-21, full day, level 1 (118,497 messages);
- Binance raw captures: NEXO/USDT spot (~24 h), BTCUSDT spot (11 min) and USD-M (8 min).

Each is loaded ``--repeat`` times in this process (the first includes the OS file cache warming);
the best and the first wall-clock times are printed, with row counts and the validation report.
Figures depend on the machine's load: on a shared machine they are pessimistic.

Measured 2026-11-22 on 2 cores shared with other heavy jobs (load average ~3), Python 3.11,
pandas 3.1 (pessimistic): GOOG full day best 0.34 s, first 0.57 s (0.6-0.9 s inside pytest;
limit 5 s); AAPL L1 full day 0.14 s; Binance NEXO/USDT ~24 h 4.4 s, BTCUSDT spot 11 min 4.4 s,
USD-M 8 min 4.3 s (pure-Python JSON and book building dominate).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data import MarketData, load_binance, load_lobster
from data.samples import data_dir

GOOG_LIMIT_S = 5.0


def timed(load: Callable[[], MarketData], repeat: int) -> tuple[MarketData, float, float]:
    times = []
    md = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        md = load()
        times.append(time.perf_counter() - t0)
    assert md is not None
    return md, min(times), times[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=data_dir())
    args = parser.parse_args()
    lob, bn = args.data / "lobster", args.data / "binance_raw"
    if not lob.is_dir() or not bn.is_dir():
        print(f"sample data not found under {args.data} (use --data or MM_DATA_DIR)")
        return 1
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.1f} (figures are pessimistic on a shared machine)"
    )
    cases: list[tuple[str, Callable[[], MarketData]]] = [
        (
            "LOBSTER GOOG full day L10",
            lambda: load_lobster(lob / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"),
        ),
        (
            "LOBSTER AAPL full day L1",
            lambda: load_lobster(lob / "AAPL_2012-06-21_34200000_57600000_message_1.csv.gz"),
        ),
        (
            "Binance NEXOUSDT spot ~24 h",
            lambda: load_binance(
                [bn / "spot_nexousdt_20240723.dat.gz", bn / "spot_nexousdt_20240724.dat.gz"]
            ),
        ),
        (
            "Binance BTCUSDT spot 11 min",
            lambda: load_binance(
                [bn / "spot_btcusdt_20240808.gz", bn / "spot_btcusdt_20240809.gz"]
            ),
        ),
        (
            "Binance BTCUSDT spot, stale level (no pre-snapshot diff, repaired)",
            lambda: load_binance(
                [bn / "spot_btcusdt_20240808.gz", bn / "spot_btcusdt_20240809.gz"],
                strict=False,
                on_gap="continue",
                use_diffs_before_snapshot=False,
            ),
        ),
        (
            "Binance BTCUSDT USD-M 8 min",
            lambda: load_binance(
                [bn / "usdm_btcusdt_20240718.gz", bn / "usdm_btcusdt_20240719.gz"], market="usdm"
            ),
        ),
    ]
    status = 0
    for name, load in cases:
        md, best, first = timed(load, args.repeat)
        print(
            f"{name:<68s} best {best:6.2f} s  first {first:6.2f} s  "
            f"events {len(md.events):>8,d}  book rows {len(md.book):>8,d}"
        )
        print(f"    report: {md.report}")
        if name.startswith("LOBSTER GOOG") and best > GOOG_LIMIT_S:
            print(f"    ABOVE THE {GOOG_LIMIT_S} s LIMIT")
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())

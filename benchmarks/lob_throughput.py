"""Market events per second and agent decisions per second of the order-book market.

Usage: ``python benchmarks/lob_throughput.py [--seconds 2] [--skip-cold]``

- market events/s: ``N = 1024`` Cont-Stoikov-Talreja books (Tokyo parameters) advanced by the
  event kernel alone, on one core (serial kernel) and on all cores (``prange`` over books), and
  the queue-reactive default (``configs/markets/queue_reactive_default.yaml``) and the realistic
  flow fitted to GOOG (``configs/markets/goog_2012-06-21_realistic.yaml``; accepted events, the
  thinning's rejected proposals not counted) on one core;
- agent decisions/s: ``LOBMarketVectorEnv.step`` with a fixed action array (the market's own cost,
  not a policy's), ``N = 1, 64, 1024``, the decision interval chosen for about 10 and 100 market
  events per decision (the measured figure is printed);
- JIT: the first call in a process whose numba cache is empty (compile) is timed in a
  subprocess, apart from the first call here (a cache load when the cache is warm).

Figures depend on the machine's load: on a shared machine they are pessimistic.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numba
import numpy as np
import yaml

from calibration.params import TOKYO_CST, MarketParams
from envs.lob.book import I_EVENTS, OrderBooks
from envs.lob.env import LOBMarketVectorEnv

QR_DEFAULT = Path(__file__).resolve().parent.parent / "configs/markets/queue_reactive_default.yaml"
REALISTIC_GOOG = (
    Path(__file__).resolve().parent.parent / "configs/markets/goog_2012-06-21_realistic.yaml"
)
SIZES = (1, 64, 1024)
EVENTS_PER_DECISION = (10, 100)

_FIRST_CALL = """
import time
t = time.perf_counter()
import numpy as np
from envs.lob.book import OrderBooks
from envs.lob.env import LOBMarketVectorEnv
from calibration.params import TOKYO_CST
b = OrderBooks(TOKYO_CST, 2); b.reset(); b.simulate(until=1.0); b.simulate(until=2.0, parallel=True)
e = LOBMarketVectorEnv(num_envs=2); e.reset(seed=0); e.step(np.zeros((2, 2), np.float32))
print(time.perf_counter() - t)
"""


def first_call_seconds(cache_dir: str | None) -> float:
    """Import + first kernel calls in a fresh process (cold when ``cache_dir`` is empty)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def market_event_rate(
    parallel: bool, seconds: float, n_books: int = 1024, params: MarketParams = TOKYO_CST
) -> tuple[float, float]:
    """(events per wall-clock second, events per CPU second of this process)."""
    books = OrderBooks(params, n_books)
    books.seed(0)
    books.reset()
    books.simulate(until=1.0, parallel=parallel)
    events, elapsed, cpu, horizon = 0, 0.0, 0.0, 1.0
    while elapsed < seconds:
        e0 = books.ist[:, I_EVENTS].sum()
        horizon += 5.0
        start, start_cpu = time.perf_counter(), time.process_time()
        books.simulate(until=horizon, parallel=parallel)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        events += int(books.ist[:, I_EVENTS].sum() - e0)
    return events / elapsed, events / cpu


def event_rate_per_time_unit() -> float:
    """Market events per time unit in the stationary Tokyo book (to size the interval)."""
    books = OrderBooks(TOKYO_CST, 512)
    books.seed(1)
    books.reset()
    books.simulate(until=50.0)
    return float(books.ist[:, I_EVENTS].mean() / 50.0)


def decision_rate(
    num_envs: int, dt: float, seconds: float, parallel: bool = False
) -> tuple[float, float, float]:
    """(decisions per wall-clock second, per CPU second, market events per decision)."""
    n_steps = 10_000
    env = LOBMarketVectorEnv(num_envs=num_envs, n_steps=n_steps, T=n_steps * dt, parallel=parallel)
    env.reset(seed=0)
    action = np.random.default_rng(0).uniform(-0.6, 0.6, (num_envs, 2)).astype(np.float32)
    env.step(action)
    e0 = env.core.ist[:, I_EVENTS].sum()
    steps, start, start_cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds and steps < n_steps - 20:
        for _ in range(10):
            env.step(action)
        steps += 10
    cpu = time.process_time() - start_cpu
    events = env.core.ist[:, I_EVENTS].sum() - e0
    return steps * num_envs / elapsed, steps * num_envs / cpu, events / (steps * num_envs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold-compile timing")
    args = parser.parse_args()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numba threads {numba.get_num_threads()}, load average {load:.2f} "
        "(shared machine: figures are pessimistic)"
    )
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as tmp:
            cold = first_call_seconds(tmp)
        print(f"JIT compile (empty cache, import + first calls): {cold:.1f} s")
    warm = first_call_seconds(None)
    print(f"first calls with the on-disk cache (cache=True): {warm:.2f} s")

    print(
        "\nmarket events per second (1024 books, Tokyo CST 2010 parameters); per wall-clock "
        "second and per CPU second of this process (the latter discounts other users' load)"
    )
    for label, parallel in (
        ("one core (serial kernel)", False),
        (f"{numba.get_num_threads()} threads (prange)", True),
    ):
        wall, cpu = market_event_rate(parallel, args.seconds)
        print(f"  {label:<28} {wall / 1e6:8.2f} M/s wall {cpu / 1e6:8.2f} M/s CPU")
    qr = MarketParams.from_dict(yaml.safe_load(QR_DEFAULT.read_text()))
    wall, cpu = market_event_rate(False, args.seconds, params=qr)
    print(f"  {'queue-reactive, one core':<28} {wall / 1e6:8.2f} M/s wall {cpu / 1e6:8.2f} M/s CPU")
    rl = MarketParams.from_dict(yaml.safe_load(REALISTIC_GOOG.read_text()))
    wall, cpu = market_event_rate(False, args.seconds, params=rl)
    print(
        f"  {'realistic (GOOG), one core':<28} {wall / 1e6:8.2f} M/s wall {cpu / 1e6:8.2f} M/s CPU"
    )

    rate = event_rate_per_time_unit()
    print(f"\nagent decisions per second (one core; {rate:.1f} market events per time unit)")
    print("(decisions/s CPU: per CPU-second of this process, i.e. per core busy)")
    print(
        f"{'N':>6} {'events/decision':>16} {'decisions/s wall':>17} {'decisions/s CPU':>16} "
        f"{'events/s wall':>14}"
    )
    for target in EVENTS_PER_DECISION:
        for n in SIZES:
            wall, cpu, per_decision = decision_rate(n, target / rate, args.seconds)
            print(
                f"{n:>6} {per_decision:>16.1f} {wall:>17,.0f} {cpu:>16,.0f} "
                f"{wall * per_decision:>14,.0f}"
            )
    threads = numba.get_num_threads()
    print(f"\nagent decisions per second, {threads} threads (parallel=True), N = 1024")
    for target in EVENTS_PER_DECISION:
        wall, cpu, per_decision = decision_rate(1024, target / rate, args.seconds, parallel=True)
        print(
            f"{1024:>6} {per_decision:>16.1f} {wall:>17,.0f} {cpu:>16,.0f} "
            f"{wall * per_decision:>14,.0f}"
        )


if __name__ == "__main__":
    main()

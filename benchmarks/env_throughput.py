"""Agent-steps per second of the batched analytic market, and one single-env step's latency.

Usage: ``python benchmarks/env_throughput.py [--seconds 2]``

The batched market runs on one core (the step kernel is single-threaded; numpy's random
generators are too). Actions are a fixed array, so the figure is the market's own cost,
not a policy's. The kernel is compiled once and cached on disk; the first-call time is
printed apart (compile when the cache is cold, cache load when it is warm).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gymnasium
import numpy as np

import envs
from envs.analytic import AnalyticMarketEnv, AnalyticMarketVectorEnv

SIZES = (1, 64, 1000, 65536)


def batched_rate(num_envs: int, seconds: float) -> float:
    env = AnalyticMarketVectorEnv(num_envs=num_envs, n_steps=1000)
    env.reset(seed=0)
    action = np.random.default_rng(0).uniform(-1, 1, (num_envs, 2)).astype(np.float32)
    env.step(action)
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            env.step(action)
        steps += 20
    return steps * num_envs / elapsed


def single_latency(env: gymnasium.Env, seconds: float) -> float:
    env.reset(seed=0)
    action = np.zeros(2, np.float32)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            *_, terminated, _, _ = env.step(action)
            if terminated:
                env.reset()
        calls += 200
    return elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    start = time.perf_counter()
    warm = AnalyticMarketVectorEnv(num_envs=2)
    warm.reset(seed=0)
    warm.step(np.zeros((2, 2), np.float32))
    first_call = time.perf_counter() - start

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"kernel first call (compile or cache load): {first_call * 1e3:.0f} ms")
    print(f"{'N':>8} {'agent-steps/s':>16}")
    for n in SIZES:
        print(f"{n:>8} {batched_rate(n, args.seconds):>16,.0f}")
    raw = single_latency(AnalyticMarketEnv(n_steps=1000), args.seconds)
    made = single_latency(gymnasium.make(envs.ANALYTIC_MARKET_ID, n_steps=1000), args.seconds)
    print(f"single-env step(): {raw * 1e6:.1f} us (AnalyticMarketEnv), "
          f"{made * 1e6:.1f} us (gymnasium.make, with its checker wrappers)")  # fmt: skip


if __name__ == "__main__":
    main()

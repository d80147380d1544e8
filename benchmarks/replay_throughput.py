"""Replayed events per second of the historical replay market on the GOOG day (LOBSTER sample).

Usage: ``python benchmarks/replay_throughput.py [--num-envs 1 64 256] [--dt 1 10 60]``

For each (number of replays ``N``, decision interval ``dt``): ``ReplayMarketVectorEnv.step`` with
a fixed action (quotes 3 ticks from the mid, exact FIFO queues from LOBSTER order ids) over the
whole day (``n_steps = day / dt``, every replay on the same tape, windows drawn per replay up to
the day's length), timed from the first step after a warm-up step to the end of the episode.
Printed: events replayed per wall-clock second and per CPU second (target: >= 2 million/s), and
the events per decision. Loading the day (parse + tape arrays) is timed apart.

Figures depend on the machine's load: on a shared machine they are pessimistic.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numba
import numpy as np

from data.samples import GOOG_MESSAGES, data_file
from envs.replay.config import ReplayMarketConfig
from envs.replay.env import ReplayMarketVectorEnv
from envs.replay.tape import load_tape

TARGET = 2_000_000


def replay_rate(num_envs: int, dt: float, path: Path, day: float) -> tuple[float, float, float]:
    """(events per wall second, per CPU second, events per decision) over one episode."""
    n_steps = int(day // dt) - 1
    env = ReplayMarketVectorEnv(num_envs=num_envs, path=str(path), dt=dt, n_steps=n_steps,
                                start=None, same_window=False, depth_min=0.0, depth_max=20.0,
                                q_max=1_000, max_fills=256)  # fmt: skip
    env.reset(seed=0)
    action = np.full((num_envs, 2), 0.3 - 1.0, np.float32)
    env.step(action)
    e0 = env.core.events_replayed.sum()
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(n_steps - 1):
        env.step(action)
    wall = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    events = float(env.core.events_replayed.sum() - e0)
    return events / wall, events / cpu, events / ((n_steps - 1) * num_envs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--dt", type=float, nargs="+", default=[1.0, 10.0, 60.0])
    args = parser.parse_args()
    path = data_file(GOOG_MESSAGES)
    if not path.exists():
        sys.exit(f"{path} not found: MM_DATA_DIR names a folder without the GOOG sample")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numba threads {numba.get_num_threads()}, load average {load:.2f}"
    )
    t0 = time.perf_counter()
    cfg = ReplayMarketConfig(path=str(path))
    tape = load_tape(cfg.data_paths(), "lobster")
    print(
        f"GOOG 2012-06-21: {tape.n_events:,} events over {tape.duration:,.0f} s, loaded in "
        f"{time.perf_counter() - t0:.2f} s"
    )
    print(
        f"{'N':>5} {'dt (s)':>7} {'events/decision':>16} {'events/s (wall)':>16} "
        f"{'events/s (CPU)':>15}  target {TARGET:,}/s"
    )
    for n in args.num_envs:
        for dt in args.dt:
            # episodes shorter than the day leave room for the drawn windows
            wall, cpu, per = replay_rate(n, dt, path, 0.5 * tape.duration)
            mark = "ok" if wall >= TARGET else "below"
            print(f"{n:>5} {dt:>7g} {per:>16.1f} {wall:>16,.0f} {cpu:>15,.0f}  {mark}")


if __name__ == "__main__":
    main()

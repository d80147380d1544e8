"""SAC updates per second, with and without XLA, against this machine's float32 matmul peak.

    python -m benchmarks.sac_update [--seconds 5] [--threads 2] [--sizes 256x256 64x64]

For each network size and each mode (XLA ``jit_compile`` on and off) it builds a
:class:`~agents.tf_sac.learner.SACLearner` (batch 256, observation dim 10, action dim 2), takes
updates for ``--seconds`` on batches sampled from a replay buffer (as in training: sampling and
the numpy-to-tensor copy are inside the timed loop), and prints updates/s, the floating-point
work of one update, the achieved GFLOP/s and its share of the matmul peak measured in the same
run (chains of 2048x2048 float32 ``tf.matmul``, the best timing, before and after).

FLOP count (analytic, matmuls only; elementwise work, the tanh/log-density and Adam's
per-parameter arithmetic add well under 2% and are left out). A dense layer ``in -> out`` on a
batch ``B`` costs ``2 B in out`` forward; its backward costs ``2 B in out`` for the weight
gradient plus ``2 B in out`` for the input gradient (the latter skipped where no gradient
flows further down). One SAC update does:

- critic step: actor forward on s' (no grad); target twin forward on (s', a') (no grad); twin
  forward on (s, a) and its backward (weight gradients, input gradients of all but the first
  layer);
- actor step: actor forward on s and its backward (weights, inputs but the first layer's);
  twin forward on (s, a~pi) and its backward to the action (input gradients of every layer, no
  weight gradients);
- temperature step: reuses the actor step's log-probabilities (no matmul).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BATCH = 256
OBS_DIM = 10
ACTION_DIM = 2
PEAK_N = 2048
CHUNK = 25
"""Updates per timed chunk."""
REFERENCE_UPDATES_PER_S = 45.0
"""A popular PyTorch SAC at 256x256 on this machine (a reference figure)."""


# ----------------------------------------------------------------------------- FLOP count
def _layers(in_dim: int, hidden: Sequence[int], out_dim: int) -> list[tuple[int, int]]:
    sizes = [in_dim, *hidden, out_dim]
    return list(itertools.pairwise(sizes))


def _forward(layers: list[tuple[int, int]], batch: int) -> int:
    return sum(2 * batch * i * o for i, o in layers)


def _backward(
    layers: list[tuple[int, int]], batch: int, weights: bool, first_input: bool
) -> int:
    flops = 0
    for n, (i, o) in enumerate(layers):
        if weights:
            flops += 2 * batch * i * o
        if n > 0 or first_input:
            flops += 2 * batch * i * o
    return flops


def update_flops(
    hidden: Sequence[int], batch: int = BATCH, obs_dim: int = OBS_DIM, action_dim: int = ACTION_DIM
) -> dict[str, int]:
    """Matmul FLOPs of one SAC update, by part (see the module docstring)."""
    actor = _layers(obs_dim, hidden, 2 * action_dim)
    q = _layers(obs_dim + action_dim, hidden, 1)
    parts = {
        "critic: actor fwd on s'": _forward(actor, batch),
        "critic: 2 target Q fwd": 2 * _forward(q, batch),
        "critic: 2 Q fwd": 2 * _forward(q, batch),
        "critic: 2 Q bwd": 2 * _backward(q, batch, weights=True, first_input=False),
        "actor: actor fwd": _forward(actor, batch),
        "actor: 2 Q fwd": 2 * _forward(q, batch),
        "actor: 2 Q bwd to a": 2 * _backward(q, batch, weights=False, first_input=True),
        "actor: actor bwd": _backward(actor, batch, weights=True, first_input=False),
    }
    parts["total"] = sum(parts.values())
    return parts


# ----------------------------------------------------------------------------- timing
@dataclass
class Row:
    hidden: tuple[int, ...]
    xla: bool
    updates_per_s: float
    """Best chunk's rate (the machine is shared: the best chunk is the least disturbed)."""
    median_updates_per_s: float
    flops: int
    traces: int
    compile_s: float

    @property
    def gflops(self) -> float:
        return self.flops * self.updates_per_s / 1e9


def matmul_peak(tf: Any, n: int = PEAK_N, chain: int = 8, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of ``n x n`` matmuls, graph or XLA, whichever is faster.

    Each timing runs a dependent chain ``x <- x @ w`` of ``chain`` products (a chain, so the
    graph optimizer cannot merge repeated identical products).
    """
    x0 = tf.random.normal((n, n), seed=1)
    w = tf.random.normal((n, n), seed=2) / np.sqrt(n)  # keeps the chain's scale
    best = np.inf
    for jit in (False, True):

        @tf.function(jit_compile=jit)
        def run(x: Any) -> Any:
            for _ in range(chain):
                x = tf.matmul(x, w)
            return x

        run(x0).numpy()
        for _ in range(repeats):
            t0 = time.perf_counter()
            run(x0).numpy()
            best = min(best, time.perf_counter() - t0)
    return chain * 2 * n**3 / best / 1e9


def time_updates(hidden: tuple[int, ...], xla: bool, seconds: float) -> Row:
    from agents.tf_sac.learner import SACConfig, SACLearner
    from agents.tf_sac.replay import ReplayBuffer

    rng = np.random.default_rng(0)
    buf = ReplayBuffer(100_000, OBS_DIM, ACTION_DIM, seed=0)
    n = 20_000
    buf.add_batch(
        rng.normal(size=(n, OBS_DIM)), rng.uniform(-1, 1, (n, ACTION_DIM)), rng.normal(size=n),
        rng.normal(size=(n, OBS_DIM)), rng.random(n) < 0.01, rng.random(n) < 0.01,
    )
    learner = SACLearner(
        OBS_DIM, ACTION_DIM, SACConfig(hidden_sizes=hidden, jit_compile=xla), seed=0
    )
    t0 = time.perf_counter()
    learner.train_step(buf.sample(BATCH))["critic_loss"].numpy()
    compile_s = time.perf_counter() - t0
    for _ in range(20):  # warm-up
        learner.train_step(buf.sample(BATCH))
    rates: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 3:
        t0 = time.perf_counter()
        for _ in range(CHUNK):
            out = learner.train_step(buf.sample(BATCH))
        out["critic_loss"].numpy()  # wait for the last step
        rates.append(CHUNK / (time.perf_counter() - t0))
    return Row(hidden, xla, max(rates), float(np.median(rates)), update_flops(hidden)["total"],
               learner.trace_count, compile_s)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed run per configuration")
    parser.add_argument("--threads", type=int, default=2, help="TF intra-op threads (0: TF's)")
    parser.add_argument("--inter-threads", type=int, default=1, help="TF inter-op threads")
    parser.add_argument("--sizes", nargs="+", default=["256x256", "64x64"])
    parser.add_argument("--modes", nargs="+", default=["xla", "graph"], choices=["xla", "graph"])
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_threads)

    peak = matmul_peak(tf)
    print(f"float32 matmul peak ({PEAK_N}x{PEAK_N} chains, graph or XLA): {peak:.1f} GFLOP/s   "
          f"[intra-op threads {args.threads}, inter-op {args.inter_threads}]")
    for size in args.sizes:
        hidden = tuple(int(h) for h in size.split("x"))
        parts = update_flops(hidden)
        detail = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in parts.items() if k != "total")
        print(f"MFLOP per update, {size}: {parts['total'] / 1e6:.1f} ({detail})")
    rows = []
    for size in args.sizes:
        hidden = tuple(int(h) for h in size.split("x"))
        for mode in args.modes:
            rows.append(time_updates(hidden, mode == "xla", args.seconds))
    peak_after = matmul_peak(tf)
    print(f"matmul peak measured again after the runs: {peak_after:.1f} GFLOP/s")
    peak = max(peak, peak_after)
    print(f"updates/s: best {CHUNK}-update chunk over {args.seconds:g} s (median beside it); "
          f"GFLOP/s and % of the peak ({peak:.1f}) from the best chunk")

    header = (f"{'network':>9} {'mode':>5} {'updates/s':>10} {'median':>7} {'vs 45/s':>8} "
              f"{'MFLOP/upd':>10} {'GFLOP/s':>8} {'% peak':>7} {'traces':>6} {'1st step s':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{'x'.join(map(str, r.hidden)):>9} {'xla' if r.xla else 'graph':>5} "
            f"{r.updates_per_s:>10.1f} {r.median_updates_per_s:>7.1f} "
            f"{r.updates_per_s / REFERENCE_UPDATES_PER_S:>7.2f}x "
            f"{r.flops / 1e6:>10.1f} {r.gflops:>8.1f} {100 * r.gflops / peak:>6.1f}% "
            f"{r.traces:>6d} {r.compile_s:>10.2f}"
        )


if __name__ == "__main__":
    main()

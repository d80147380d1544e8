"""Seeded reference episodes of the order-book market and the replay, reduced to one hash each.

Every queue model, latency model, fee setting, the kill switch and both terminal treatments are
run for a few decisions on both order flows (``cst``, ``queue_reactive``, plus a stress scenario
with a jump) and on the tiny AAPL LOBSTER tape (with and without order ids: the L2 branch with
trade echoes is the same tape read as a feed whose trades do not move the book). Each episode is
hashed over its observations, rewards, terminations and every ``info`` array, fills included.

The hashes (``tests/envs/data/reference_episodes.json``) were recorded before the agent's orders
moved into ``envs/exchange`` (docs/exchange.md#orders-and-queue-position); the test checks that
the same seeds still give bit-identical episodes. A change that alters an episode on purpose
re-records them and says why in its commit.

Usage: ``python -m tests.envs.test_reference_episodes [--write]`` prints (or stores) the hashes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from calibration.params import MarketParams
from configs.schema import LOBMarketConfig, StressScenario
from envs.replay.config import ReplayMarketConfig

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).resolve().parent / "data" / "reference_episodes.json"
QR_MARKET = ROOT / "configs" / "markets" / "queue_reactive_default.yaml"
STRESS = [ROOT / "configs" / "stress" / f"{name}.yaml" for name in
          ("flash_crash", "latency_shock", "liquidity_drought")]  # fmt: skip
NUM_ENVS = 3
LOB_STEPS = 30
REPLAY_STEPS = 80


def _digest(h: Any, value: Any) -> None:
    """Feed ``value`` (array, scalar, dict or list of those) into the hash ``h``."""
    if isinstance(value, dict):
        for key in sorted(value):
            h.update(key.encode())
            _digest(h, value[key])
    elif isinstance(value, list | tuple):
        for v in value:
            _digest(h, v)
    else:
        arr = np.ascontiguousarray(np.asarray(value))
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(arr.tobytes())


def run_core(core: Any, seed: int, n_steps: int) -> str:
    """Reset ``core`` with ``seed``, step it with seeded actions in ``[-1, 0]^2`` (the nearer
    half of the depth range) until every market is done, and hash everything it returned."""
    h = hashlib.sha256()
    core.seed(seed)
    core.reset_state()
    _digest(h, core.observe())
    actions = np.random.default_rng(seed + 1000)
    done_all = np.zeros(core.num_envs, np.bool_)
    for _ in range(n_steps):
        active = ~done_all
        action = actions.uniform(-1.0, 0.0, (core.num_envs, 2))
        obs, reward, done, info = core.step(action, active)
        _digest(h, [obs, reward, done, info])
        done_all |= done
        if done_all.all():
            break
    return h.hexdigest()


def _lob_cases() -> Iterator[tuple[str, Callable[[], Any]]]:
    from envs.lob.core import LOBMarketCore

    qr = MarketParams.from_dict(yaml.safe_load(QR_MARKET.read_text()))
    flows = {"cst": None, "queue_reactive": qr}
    base = dict(n_steps=LOB_STEPS, T=LOB_STEPS * 1.0, depth_min=-1.0, depth_max=4.0, q_max=4)
    variants: dict[str, dict[str, Any]] = {
        "risk_averse": dict(queue_model="risk_averse"),
        "prob": dict(queue_model="prob", queue_power=2.0),
        "prob_half": dict(queue_model="prob", queue_power=0.5),
        "prob_log": dict(queue_model="prob_log"),
        "exact": dict(queue_model="exact"),
        "uniform": dict(queue_model="uniform"),
        "latency_constant": dict(entry_latency=0.1, feed_latency=0.05, response_latency=0.02),
        "latency_exponential": dict(
            latency_distribution="exponential",
            entry_latency=0.1,
            feed_latency=0.05,
            response_latency=0.02,
        ),
        "fees": dict(maker_fee_bps=-0.25, taker_fee_bps=3.0, order_size=2),
        "kill_switch": dict(max_drawdown=0.01, q0=3),
        "mark": dict(terminal="mark", q0=-2, phi=0.01, alpha=0.1),
    }
    for flow, market in flows.items():
        for name, kw in variants.items():
            cfg = {**base, **kw}
            if market is not None:
                cfg["market"] = market

            def make(cfg: dict[str, Any] = cfg) -> Any:
                return LOBMarketCore(LOBMarketConfig(**cfg), NUM_ENVS)

            yield f"lob/{flow}/{name}", make
    for path in STRESS:
        yield from _stress_case(path, base)


def _stress_case(path: Path, base: dict[str, Any]) -> Iterator[tuple[str, Callable[[], Any]]]:
    from envs.lob.core import LOBMarketCore

    stress = StressScenario(**yaml.safe_load(path.read_text()))

    def make_stress() -> Any:
        cfg = LOBMarketConfig(**base, stress=stress, latency_distribution="exponential",
                              entry_latency=0.05)  # fmt: skip
        return LOBMarketCore(cfg, NUM_ENVS)

    yield f"lob/cst/stress_{stress.name}", make_stress


def _replay_cases() -> Iterator[tuple[str, Callable[[], Any]]]:
    from envs.replay.core import ReplayMarketCore
    from envs.replay.tape import load_tape

    # the fixture's spread is about 22 ticks and its levels about 3 ticks apart
    base = dict(n_steps=REPLAY_STEPS, dt=0.5, depth_min=4.0, depth_max=24.0, q_max=5, levels=10)
    probe = ReplayMarketConfig(**base)
    tape = load_tape(probe.data_paths(), probe.format, probe.binance_market, probe.symbol, 10)
    l2 = dataclasses.replace(tape, trades_move_book=False, has_order_ids=False)
    variants: dict[str, tuple[dict[str, Any], Any]] = {
        "exact": (dict(queue_model="exact"), tape),
        "risk_averse": (dict(queue_model="risk_averse"), tape),
        "prob": (dict(queue_model="prob", queue_power=2.0), tape),
        "prob_half": (dict(queue_model="prob", queue_power=0.5), tape),
        "prob_log": (dict(queue_model="prob_log"), tape),
        "l2_prob": (dict(queue_model="prob"), l2),
        "l2_risk_averse": (dict(queue_model="risk_averse"), l2),
        "latency_constant": (
            dict(entry_latency=0.1, feed_latency=0.05, response_latency=0.02),
            tape,
        ),
        "latency_exponential": (
            dict(
                latency_distribution="exponential",
                entry_latency=0.1,
                feed_latency=0.05,
                response_latency=0.02,
                queue_model="prob",
            ),
            tape,
        ),
        "fees": (dict(maker_fee_bps=-0.2, taker_fee_bps=3.0, order_size=3, depth_min=-12.0), tape),
        "kill_switch": (dict(max_drawdown=0.5, q0=4, depth_min=-12.0), tape),
        "mark": (dict(terminal="mark", q0=-2, phi=0.01, alpha=0.1), tape),
        "random_windows": (dict(start=None, same_window=False), tape),
    }
    for name, (kw, tp) in variants.items():

        def make(kw: dict[str, Any] = kw, tp: Any = tp) -> Any:
            return ReplayMarketCore(ReplayMarketConfig(**{**base, **kw}), NUM_ENVS, tape=tp)

        yield f"replay/{name}", make


def episode_hashes() -> dict[str, str]:
    """``{case: sha256}`` for every reference case (seeds 0 and 7 each)."""
    out = {}
    for name, make in [*_lob_cases(), *_replay_cases()]:
        core = make()
        steps = LOB_STEPS if name.startswith("lob") else REPLAY_STEPS
        out[name] = "/".join(run_core(core, seed, steps + 2)[:16] for seed in (0, 7))
    return out


def test_seeded_episodes_are_bit_identical_to_the_reference() -> None:
    stored = json.loads(REFERENCE.read_text())
    now = episode_hashes()
    assert sorted(now) == sorted(stored)
    changed = sorted(name for name in stored if now[name] != stored[name])
    assert not changed, f"episodes differ from the reference: {changed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"store the hashes in {REFERENCE}")
    args = parser.parse_args()
    hashes = episode_hashes()
    if args.write:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    print(json.dumps(hashes, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()

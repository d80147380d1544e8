"""The main job of ``make demo``, on built-in defaults (no data, no server).

1. every baseline in the analytic market, 1000 paths on common random numbers
   (``configs/demo.yaml``);
2. SAC trained in the Cartea-Jaimungal setting (``configs/cj_sac.yaml``) for a budget of
   transitions (``--train-steps``), then evaluated beside the exact optimum and the baselines,
   with its optimality ratio J / h(0, 0).

The budget counts transitions, not minutes, so the same seed prints the same table on a fast
or a loaded machine; only the time it takes differs.

Everything is logged to the project's MLflow store; the command that opens the UI is
printed last.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from experiments import evaluate, train

SAC_CONFIG = "configs/cj_sac.yaml"
TRAIN_STEPS = 150_000
"""Transitions of the demo's SAC training (about two and a half minutes on a 2-core CPU)."""
EVAL_EVERY = 25_000
"""Transitions between the validations that choose the exported policy."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train-steps", type=int, default=TRAIN_STEPS,
        help=f"SAC training budget in transitions (default {TRAIN_STEPS:,})",
    )  # fmt: skip
    parser.add_argument("--skip-training", action="store_true", help="baselines only")
    args = parser.parse_args(argv)
    console = Console()

    console.rule("1/2  Baselines in the analytic market")
    # Reports (tear sheets, risk tables) for seven baselines take minutes: the baseline job
    # logs the table and figures; the SAC job below writes the full reports of its policies.
    code = evaluate.main(["--config", evaluate.DEFAULT_CONFIG, "--no-reports"])
    if code or args.skip_training:
        return code

    console.rule(f"2/2  SAC, {args.train_steps:,} transitions of training, against the optimum")
    # No wall-clock stop: it would make the table depend on the machine's speed and load.
    budget = [f"training.total_steps={args.train_steps}", f"training.eval_every={EVAL_EVERY}",
              "training.max_minutes=null"]  # fmt: skip
    code, run_id = train.run_training(SAC_CONFIG, budget)
    if code or run_id is None:
        return code or 1
    return evaluate.main(["--config", SAC_CONFIG, "--run-id", run_id])


if __name__ == "__main__":
    sys.exit(main())

"""Reproduce published results with the platform's markets and baselines.

    python -m experiments.reproduce as2008 [--paths 1000] [--seed 0] [--json FILE]
                                           [--config configs/as2008.yaml] [--set KEY=VALUE]

``as2008``: Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book",
Quantitative Finance 8(3), section 3.3, Tables 1-3. The inventory strategy (quotes around
the reservation price) against the symmetric strategy (the inventory strategy's average
spread, centred on the mid), for gamma = 0.1, 0.01 and 1, with s0 = 100, T = 1,
sigma = 2, dt = 0.005, A = 140, k = 1.5, binary mid steps and fill probability
lambda dt, over 1000 paths (``configs/as2008.yaml``; ``--set market.KEY=VALUE`` changes
the market, e.g. to see the effect of the fill law). The table is printed and logged to
MLflow (experiment ``as2008``) with the rows as metrics and as a JSON artifact.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from agents.baselines import AvellanedaStoikov, SymmetricSpread
from configs.schema import AnalyticMarketConfig
from envs.analytic import AnalyticMarketVectorEnv
from evaluation.rollout import rollout
from experiments.config import (
    CONFIG_DIR,
    ConfigError,
    add_config_arguments,
    load_config,
    market_of,
    require_analytic_market,
    to_yaml,
)
from tracking import Tracker, TrackingError

AS2008_CONFIG = CONFIG_DIR / "as2008.yaml"
AS2008_GAMMAS = (0.1, 0.01, 1.0)

# Avellaneda & Stoikov (2008), Tables 1-3: spread, profit, std(profit), final q, std(final q).
AS2008_PUBLISHED = {
    (0.1, "inventory"): (1.49, 65.0, 6.6, 0.08, 2.9),
    (0.1, "symmetric"): (1.49, 68.4, 12.7, 0.26, 8.4),
    (0.01, "inventory"): (1.35, 68.6, 8.7, 0.12, 5.1),
    (0.01, "symmetric"): (1.35, 68.8, 12.8, 0.09, 8.7),
    (1.0, "inventory"): (3.02, 31.4, 5.0, 0.02, 1.7),
    (1.0, "symmetric"): (3.02, 44.0, 11.0, 0.00, 5.1),
}
COLUMNS = ("spread", "profit", "std_profit", "final_q", "std_final_q")


@dataclass(frozen=True)
class Row:
    gamma: float
    strategy: str
    spread: float
    profit: float
    std_profit: float
    final_q: float
    std_final_q: float


def reproduce_as2008(
    paths: int = 1000, seed: int = 0, market: AnalyticMarketConfig | None = None
) -> list[Row]:
    """Simulate the paper's two strategies for each gamma; one row per (gamma, strategy).

    Both strategies of a gamma run on the same seed (common random numbers); each gamma
    has its own seed, spawned from ``seed``. ``market`` defaults to the paper's
    (``configs/as2008.yaml``).
    """
    market = market or market_of(load_config(AS2008_CONFIG))
    env = AnalyticMarketVectorEnv(num_envs=paths, config=market)
    seeds = np.random.SeedSequence(seed).spawn(len(AS2008_GAMMAS))
    rows = []
    for gamma, ss in zip(AS2008_GAMMAS, seeds, strict=True):
        inventory = AvellanedaStoikov(
            gamma, market.sigma, market.k, market.T, action_map=env.action_map
        )
        symmetric = SymmetricSpread.matching(inventory, action_map=env.action_map)
        episode_seed = int(ss.generate_state(1, np.uint32)[0])
        for name, policy in (("inventory", inventory), ("symmetric", symmetric)):
            batch = rollout(env, policy, episode_seed)
            rows.append(
                Row(
                    gamma=gamma,
                    strategy=name,
                    spread=float(batch.spread.mean()),
                    profit=float(batch.pnl.mean()),
                    std_profit=float(batch.pnl.std(ddof=1)),
                    final_q=float(batch.final_inventory.mean()),
                    std_final_q=float(batch.final_inventory.std(ddof=1)),
                )
            )
    return rows


def as2008_table(rows: list[Row], paths: int, seed: int) -> Table:
    table = Table(title=f"Avellaneda-Stoikov 2008, Tables 1-3: ours ({paths} paths, seed {seed})")
    for col in ("gamma", "strategy", "source", "spread", "profit", "std(profit)", "final q",
                "std(final q)"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("strategy", "source") else "right")
    for i, row in enumerate(rows):
        published = AS2008_PUBLISHED[(row.gamma, row.strategy)]
        ours = [f"{getattr(row, col):.2f}" for col in COLUMNS]
        table.add_row(f"{row.gamma:g}", row.strategy, "ours", *ours)
        table.add_row("", "", "journal", *(f"{p:.2f}" for p in published),
                      end_section=i < len(rows) - 1, style="dim")  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="study", required=True)
    as2008 = sub.add_parser("as2008", help="Avellaneda & Stoikov (2008), Tables 1-3")
    as2008.add_argument("--paths", type=int, default=1000, help="paths per strategy (default 1000)")
    as2008.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    as2008.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    add_config_arguments(as2008, default=str(AS2008_CONFIG.relative_to(CONFIG_DIR.parent)))
    args = parser.parse_args(argv)
    if args.paths < 2:
        parser.error("--paths must be at least 2")
    console = Console(width=None if sys.stdout.isatty() else 110)

    try:
        cfg = load_config(args.config, [*args.overrides, f"seed={args.seed}"])
        require_analytic_market(cfg, "experiments.reproduce")
        tracker = Tracker(
            experiment=cfg.experiment_name,
            run_name=f"reproduce-as2008-{args.paths}-paths",
            tracking_uri=cfg.tracking.uri,
            tags={"mmrl.seed": str(args.seed), "mmrl.job": "reproduce", "mmrl.study": "as2008"},
        )
    except (ConfigError, TrackingError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2

    with tracker as run:
        run.log_params(cfg.model_dump(mode="json") | {"paths": args.paths})
        run.log_text(to_yaml(cfg), "config/resolved.yaml")
        rows = reproduce_as2008(args.paths, args.seed, market_of(cfg))
        console.print(as2008_table(rows, args.paths, args.seed))
        run.log_metrics(
            {
                f"eval/{row.strategy}_gamma_{row.gamma:g}/{col}": getattr(row, col)
                for row in rows
                for col in COLUMNS
            }
        )
        data = {"rows": [asdict(r) for r in rows]}
        run.log_dict(data, "reports/as2008.json")
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

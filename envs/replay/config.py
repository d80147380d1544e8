"""Typed configuration of the historical replay (``kind: replay``, docs/markets.md#replay)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from data.samples import AAPL_FIXTURE, data_dir
from envs.agent_orders import AgentOrdersConfig
from envs.exchange.models import QUEUE_MODELS, check_name

DEFAULT_SAMPLE = AAPL_FIXTURE
"""The tape used when no path is given: the tiny AAPL fixture of the sample data."""


class ReplayMarketConfig(AgentOrdersConfig):
    """The agent's orders against a recorded day of events (the market is not moved by them).

    Unknown keys are errors (as every model of :mod:`configs.schema`, which can import this one
    without a cycle: nothing here imports ``configs``).
    """

    kind: Literal["replay"] = "replay"
    path: str | None = Field(
        None,
        description="The recorded data: a LOBSTER message file (its orderbook file beside it), or "
        "a Binance raw capture file; None uses the tiny AAPL LOBSTER fixture of the "
        f"sample data ({DEFAULT_SAMPLE} in data/samples/, or in $MM_DATA_DIR when set).",
    )
    extra_paths: list[str] = Field(
        default_factory=list,
        description="Further files of the same Binance capture, in time order (e.g. the file "
        "after midnight); empty for LOBSTER.",
    )
    format: Literal["lobster", "binance"] = Field(
        "lobster", description="Feed format: LOBSTER (L3, order ids) or Binance raw capture (L2)."
    )
    binance_market: Literal["spot", "usdm"] = Field(
        "spot", description="Binance market of the capture (update-id continuity rule)."
    )
    symbol: str | None = Field(
        None, description="Instrument to replay from a Binance capture (default: its first)."
    )
    levels: int = Field(
        10, ge=1, le=64, description="Book levels per side in the observation (<= the file's)."
    )
    start: float | None = Field(
        0.0,
        ge=0,
        description="Window start, seconds after the tape's first event; None draws it "
        "uniformly (seeded) at each reset so that the window fits in the tape.",
    )
    same_window: bool = Field(
        True,
        description="Vector env with start None: all markets replay one drawn window (N agents "
        "on one tape) instead of one window each.",
    )
    dt: float = Field(1.0, gt=0, description="Event time between two decisions (seconds).")
    n_steps: int = Field(30, ge=1, description="Decisions per episode (window = n_steps dt).")
    depth_min: float = Field(
        0.0,
        description="Quote depth from the mid at action -1 (ticks; below the half spread the "
        "quote crosses and trades at once as a taker against the recorded book).",
    )
    depth_max: float = Field(20.0, description="Quote depth from the mid at action +1 (ticks).")
    q_max: int = Field(
        100, ge=1, description="Maximum |inventory| (lots); quotes that could pass it are not sent."
    )
    queue_model: str = Field(
        "exact",
        description="Queue ahead of the agent (envs.exchange.models.QUEUE_MODELS): exact "
        "(LOBSTER order ids: the orders resting at "
        "entry are ahead, their cancels and executions advance the agent), risk_averse (only "
        "trades advance it), prob (a decrease is ahead with probability "
        "f(ahead)/(f(ahead)+f(behind)), f = x^queue_power) or prob_log (f = log(1+x)).",
    )

    @field_validator("queue_model")
    @classmethod
    def _queue_model(cls, name: str) -> str:
        return check_name(QUEUE_MODELS, "queue_model", name, "replay")

    @model_validator(mode="after")
    def _check(self) -> ReplayMarketConfig:
        self.check_orders(self.dt)
        if self.format == "lobster" and self.extra_paths:
            raise ValueError("extra_paths is for Binance captures; LOBSTER takes one path")
        return self

    @property
    def T(self) -> float:
        """Episode length (seconds of event time)."""
        return self.dt * self.n_steps

    def data_paths(self) -> list[Path]:
        """The files to load (the default sample resolved in the data folder)."""
        if self.path is None:
            path = data_dir() / DEFAULT_SAMPLE
            if not path.exists():
                raise FileNotFoundError(
                    f"no replay data: path is None and the default sample {path} is absent "
                    "(set path, or unset MM_DATA_DIR to use the project's data/samples/)"
                )
            return [path]
        return [Path(self.path), *(Path(p) for p in self.extra_paths)]

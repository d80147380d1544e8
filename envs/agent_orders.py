"""Typed parameters of the agent's orders, shared by the order-book market and the replay.

docs/exchange.md#orders-and-queue-position: quote sizes and depths, limits, fees, the queue
model's exponent, latencies, the kill switch, the terminal treatment and the reward's inventory
penalties. Named models (latency, fee presets; the markets add the queue model) are checked
against the one registry, :mod:`envs.exchange.models`. The two markets' configs derive from
:class:`AgentOrdersConfig` and add what is their own (the order flow, or the recorded tape).
Times are in the market's time unit: seconds for the shipped order-book markets and replays.
Nothing here imports ``configs``, so :mod:`configs.schema` can build on it without a cycle.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from envs.exchange.models import LATENCY_MODELS, check_name, fee_preset


class AgentOrdersConfig(BaseModel):
    """The agent's side of an order-book market (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    order_size: int = Field(1, ge=1, description="Size of each of the agent's quotes (lots).")
    depth_min: float = Field(
        -1.0,
        description="Quote depth from the mid at action -1 (ticks; a depth below the half "
        "spread crosses and trades at once as a taker).",
    )
    depth_max: float = Field(5.0, description="Quote depth from the mid at action +1 (ticks).")
    q_max: int = Field(
        20, ge=1, description="Maximum |inventory| (lots); quotes that could pass it are not sent."
    )
    q0: int = Field(0, description="Initial inventory (lots).")
    phi: float = Field(
        0.0,
        ge=0,
        description="Running inventory penalty: reward -= phi q^2 dt (currency/lot^2/time unit).",
    )
    alpha: float = Field(
        0.0, ge=0, description="Terminal inventory penalty: reward -= alpha q_T^2 (currency/lot^2)."
    )
    fee_schedule: str | None = Field(
        None,
        description="A fee preset of envs.exchange.models.FEE_PRESETS (e.g. nasdaq_rebate, "
        "binance_usdm_vip0) giving maker_fee_bps and taker_fee_bps; either set explicitly "
        "overrides the preset's. None: the two fields as given.",
    )
    maker_fee_bps: float = Field(
        0.0, description="Fee on passive fills, bps of notional; negative is a rebate."
    )
    taker_fee_bps: float = Field(0.0, description="Fee on aggressive fills, bps of notional.")
    queue_power: float = Field(
        2.0, gt=0, description="Exponent n of f(x) = x^n (queue_model prob)."
    )
    entry_latency: float = Field(
        0.0, ge=0, description="Delay from a decision to its orders being live (time units)."
    )
    feed_latency: float = Field(
        0.0, ge=0, description="Age of the book and mid in the observation (time units)."
    )
    response_latency: float = Field(
        0.0,
        ge=0,
        description="Age of the agent's own state (inventory, cash, orders) in the observation.",
    )
    latency_distribution: str = Field(
        "constant",
        description="Latency model (envs.exchange.models.LATENCY_MODELS): constant; "
        "exponential with those means, drawn per decision (an entry draw beyond the interval "
        "puts the orders live at its end; feed and response draws are capped at dt); or "
        "recorded: the entry latency from latency_series (feed and response constant).",
    )
    latency_series: str | None = Field(
        None,
        description="latency_distribution recorded: a .npy or CSV file of entry latencies "
        "(time units, first column, a header row allowed).",
    )
    latency_sampling: Literal["in_order", "random"] = Field(
        "in_order",
        description="latency_distribution recorded: take the series' values in order (cycling; "
        "one position per market, kept across episodes) or draw them uniformly at random.",
    )
    max_drawdown: float | None = Field(
        None,
        gt=0,
        description="Kill switch: the episode ends (and liquidates) when the mark-to-market value "
        "falls this far below its running maximum (currency); None disables it.",
    )
    terminal: Literal["liquidate", "mark"] = Field(
        "liquidate",
        description="At the end: liquidate the inventory with a marketable order walking the book "
        "(taker fee), or keep it marked at the mid.",
    )
    max_fills: int = Field(
        64, ge=1, description="Fills per market per decision kept in info (all are counted)."
    )

    @field_validator("latency_distribution")
    @classmethod
    def _latency_model(cls, name: str) -> str:
        return check_name(LATENCY_MODELS, "latency_distribution", name, "lob")

    @model_validator(mode="before")
    @classmethod
    def _fee_preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("fee_schedule") is not None:
            preset = fee_preset(str(data["fee_schedule"]))
            data = {"maker_fee_bps": preset.maker_bps, "taker_fee_bps": preset.taker_bps, **data}
        return data

    def check_orders(self, dt: float) -> None:
        """The checks every order-book market makes: depth range, initial inventory, and
        constant latencies shorter than the decision interval ``dt``.

        :raises ValueError: naming the field and what was expected.
        """
        if not self.depth_max > self.depth_min:
            raise ValueError(
                f"depth_max ({self.depth_max}) must exceed depth_min ({self.depth_min})"
            )
        if abs(self.q0) > self.q_max:
            raise ValueError(f"|q0| ({abs(self.q0)}) must not exceed q_max ({self.q_max})")
        if (self.latency_distribution == "recorded") != (self.latency_series is not None):
            raise ValueError(
                "latency_series is required with latency_distribution 'recorded' and only "
                f"used with it (got {self.latency_distribution!r}, {self.latency_series!r})"
            )
        constant = {"constant": ("entry_latency", "feed_latency", "response_latency"),
                    "recorded": ("feed_latency", "response_latency")}  # fmt: skip
        if self.latency_distribution in constant:
            for name in constant[self.latency_distribution]:
                if getattr(self, name) >= dt:
                    raise ValueError(f"{name} ({getattr(self, name)}) must be < dt ({dt})")

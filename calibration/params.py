"""Parameters of the event-driven order-book market: :class:`MarketParams`.

The order-flow model is that of R. Cont, S. Stoikov, R. Talreja, "A stochastic model for order
book dynamics", Operations Research 58(3), 549-563, 2010 (CST 2010 below), section 1.2:

- limit buy (sell) orders arrive at distance ``i`` ticks from the best ask (bid) at Poisson rate
  ``lambda(i)``, ``i = 1..L``; an order at distance 1 from the opposite best joins the best
  quote when the spread is one tick, and improves the quote when the spread is wider;
- each resting order at distance ``i`` from the opposite best is cancelled at rate ``theta(i)``
  (so a queue of ``n`` orders loses one at rate ``theta(i) n``);
- market buy (sell) orders arrive at rate ``mu`` and execute against the best ask (bid).

Times are in the model's time unit (seconds for the published Tokyo parameters), prices in ticks,
sizes in lots. Calibration fits (DESIGN.md section 3) produce one of these objects; YAML is read
and written by ``experiments/`` only: :meth:`MarketParams.to_dict` and
:meth:`MarketParams.from_dict` are the plain-data faces.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class FillCurveParams(_Strict):
    """Fill intensity ``A exp(-k delta)`` of a resting unit quote at ``delta`` ticks from the mid.

    Used by the Avellaneda-Stoikov (2008) and GLFT (2013) baselines, which model fills that way;
    in the order-book market it is a summary, not a law (fills there come from queue dynamics).
    """

    A: float = Field(gt=0, description="Fill intensity at zero depth (fills per time unit).")
    k: float = Field(gt=0, description="Decay of the fill intensity with depth (1 / tick).")


class MarketParams(_Strict):
    """The order-flow model of CST 2010 on a tick grid, with its book window and order sizes.

    ``limit_rates[i-1]`` is ``lambda(i)`` and ``cancel_rates[i-1]`` is ``theta(i)``, ``i`` being
    the distance in ticks from the OPPOSITE best quote (CST 2010 section 1.2). The simulated book
    keeps ``n_levels`` price levels per side, counted from the opposite best; volume that drifts
    beyond them is dropped and levels that enter the window start empty.
    """

    tick_size: float = Field(1.0, gt=0, description="Price of one tick (currency per share).")
    lot_size: float = Field(1.0, gt=0, description="Shares per lot (sizes are in lots).")
    n_levels: int = Field(
        10, ge=2, le=64, description="Levels L per side simulated, counted from the opposite best."
    )
    limit_rates: list[float] = Field(
        description="lambda(i), i = 1..L: limit-order arrival rate per side at distance i ticks "
        "from the opposite best (orders per time unit)."
    )
    cancel_rates: list[float] = Field(
        description="theta(i), i = 1..L: cancellation rate of each resting order at distance i "
        "ticks from the opposite best (per order per time unit)."
    )
    market_rate: float = Field(
        ge=0, description="mu: market-order arrival rate per side (orders per time unit)."
    )
    size_distribution: Literal["unit", "geometric", "discrete"] = Field(
        "unit",
        description="Order sizes (lots) of limit, market and cancel events: 1 (CST 2010), "
        "geometric on 1, 2, ... with mean size_mean, or the table size_probs.",
    )
    size_mean: float = Field(
        1.0, ge=1, description="Mean order size of the geometric distribution (lots)."
    )
    size_probs: list[float] | None = Field(
        None,
        description="P(size = 1), P(size = 2), ... for the discrete distribution (sums to 1).",
    )
    fill_curve: FillCurveParams = Field(
        description="A exp(-k delta) summary of the fill intensity for the AS and GLFT baselines."
    )
    mid_volatility: float = Field(
        gt=0,
        description="Volatility of the mid (ticks per sqrt(time unit)) for the AS and GLFT "
        "baselines; a summary of the order flow, estimated by simulation.",
    )
    initial_book: Literal["stationary"] | list[int] = Field(
        "stationary",
        description="Initial queue sizes (lots) per level i = 1..L from the opposite best, both "
        "sides, one-tick spread; 'stationary' draws level i from Poisson(lambda(i)/theta(i)), the "
        "stationary law of its birth-death queue (CST 2010 section 1.2, no market orders).",
    )

    @model_validator(mode="after")
    def _check(self) -> MarketParams:
        n = self.n_levels
        for name in ("limit_rates", "cancel_rates"):
            values = getattr(self, name)
            if len(values) != n:
                raise ValueError(f"{name} must have n_levels = {n} entries, got {len(values)}")
            if any(not v >= 0 for v in values):
                raise ValueError(f"{name} must be >= 0, got {values}")
        if not self.limit_rates[0] > 0:
            raise ValueError("limit_rates[0] = lambda(1) must be > 0")
        if any(not v > 0 for v in self.cancel_rates):
            raise ValueError("cancel_rates must be > 0 (queues must be stable)")
        if self.size_distribution == "discrete":
            probs = self.size_probs
            if not probs or any(not p >= 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-9:
                raise ValueError("size_probs must be non-negative and sum to 1 (discrete sizes)")
            if len(probs) > MAX_SIZE_TABLE:
                raise ValueError(f"size_probs may have at most {MAX_SIZE_TABLE} entries")
        elif self.size_probs is not None:
            raise ValueError("size_probs is only used with size_distribution='discrete'")
        if isinstance(self.initial_book, list):
            if len(self.initial_book) != n or any(v < 0 for v in self.initial_book):
                raise ValueError(f"initial_book must have {n} non-negative entries")
            if self.initial_book[0] <= 0:
                raise ValueError("initial_book[0] (the best queues) must be > 0")
        return self

    @property
    def mean_size(self) -> float:
        """Mean order size (lots)."""
        if self.size_distribution == "geometric":
            return self.size_mean
        if self.size_distribution == "discrete":
            assert self.size_probs is not None
            return sum((i + 1) * p for i, p in enumerate(self.size_probs))
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings) for YAML or MLflow."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarketParams:
        """Validate plain data (unknown keys are errors)."""
        return cls.model_validate(data)


MAX_SIZE_TABLE = 32
"""Largest order size of a discrete size table (lots)."""

# CST 2010 Table 2 (Tokyo Stock Exchange, five stocks, 2008-2009; time unit: seconds).
_TOKYO_LAMBDA_1_5 = (1.85, 1.51, 1.09, 0.88, 0.77)
_TOKYO_THETA_1_5 = (0.71, 0.81, 0.68, 0.56, 0.47)
_TOKYO_MU = 0.94
# Levels 6..10: lambda from the power law k i^-alpha fitted by least squares in log-log to the five
# published values (k = 1.983, alpha = 0.564; CST 2010 section 2.2 fit such a power law to their
# own longer profile); theta held at its level-5 value. Rounded to two decimals like the table.
_TOKYO_LAMBDA_6_10 = (0.72, 0.66, 0.61, 0.57, 0.54)
_TOKYO_THETA_6_10 = (0.47,) * 5

TOKYO_CST = MarketParams(
    tick_size=1.0,
    lot_size=1.0,
    n_levels=10,
    limit_rates=[*_TOKYO_LAMBDA_1_5, *_TOKYO_LAMBDA_6_10],
    cancel_rates=[*_TOKYO_THETA_1_5, *_TOKYO_THETA_6_10],
    market_rate=_TOKYO_MU,
    size_distribution="unit",
    # Summaries of this order flow, estimated by simulating it (envs.lob.validation, printed by
    # benchmarks/lob_validation.py): passive fill rates of a unit quote re-posted every second at
    # 0.5, 1.5, 2.5, 3.5 ticks from the mid (0.343, 0.076, 0.021, 0.006 per second, 256 books x
    # 200 s each) fitted by least squares in logs; the mid's realized variance over 5-second
    # intervals (2000 books x 300 s).
    fill_curve=FillCurveParams(A=0.63, k=1.35),
    mid_volatility=1.0,
    initial_book="stationary",
)
"""The published Tokyo parameters of CST 2010 (Table 2), with the tail rule above."""

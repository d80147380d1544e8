"""Parameters of the event-driven order-book market: :class:`MarketParams`.

The order-flow model is that of R. Cont, S. Stoikov, R. Talreja, "A stochastic model for order
book dynamics", Operations Research 58(3), 549-563, 2010 (CST 2010 below), section 1.2:

- limit buy (sell) orders arrive at distance ``i`` ticks from the best ask (bid) at Poisson rate
  ``lambda(i)``, ``i = 1..L``; an order at distance 1 from the opposite best joins the best
  quote when the spread is one tick, and improves the quote when the spread is wider;
- each resting order at distance ``i`` from the opposite best is cancelled at rate ``theta(i)``
  (so a queue of ``n`` orders loses one at rate ``theta(i) n``);
- market buy (sell) orders arrive at rate ``mu`` and execute against the best ask (bid).

The queue-reactive model of W. Huang, C.-A. Lehalle, M. Rosenbaum, "Simulating and analyzing
order book data: the queue-reactive model", Journal of the American Statistical Association
110(509), 107-122, 2015 (HLR 2015 below) is the alternative order flow (``model =
"queue_reactive"``, :class:`QueueReactiveParams`): Model I of its section 2.3 (each queue's
intensities depend on its own size) with the reference-price mechanism of its section 2.3.3.

Times are in the model's time unit (seconds for the published Tokyo parameters), prices in ticks,
sizes in lots. Calibration fits (docs/calibration.md) produce one of these objects; YAML is read
and written by ``experiments/`` only: :meth:`MarketParams.to_dict` and
:meth:`MarketParams.from_dict` are the plain-data faces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from calibration.realistic import RealisticFlowParams


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class FillCurveParams(_Strict):
    """Fill intensity ``A exp(-k delta)`` of a resting unit quote at ``delta`` ticks from the mid.

    Used by the Avellaneda-Stoikov (2008) and GLFT (2013) baselines, which model fills that way;
    in the order-book market it is a summary, not a law (fills there come from queue dynamics).
    """

    A: float = Field(gt=0, description="Fill intensity at zero depth (fills per time unit).")
    k: float = Field(gt=0, description="Decay of the fill intensity with depth (1 / tick).")


class QueueReactiveParams(_Strict):
    """Model I of HLR 2015 (section 2.3) with its reference-price mechanism (section 2.3.3).

    The queues ``Q_{-i}`` (bids) and ``Q_{+i}`` (asks), ``i = 1..n_queues``, sit at
    ``p_ref -+ (i - 1/2)`` ticks around the reference price ``p_ref`` (a half-tick price). Each
    queue of size ``n`` lots gains one order at rate ``lambda^L_i(n)`` and loses one to a
    cancellation at rate ``lambda^C_i(n)`` (for the whole queue, not per order); market orders
    arrive on each side at rate ``lambda^M(n)`` and execute against that side's best queue of
    size ``n``. The rates are the same on both sides (HLR 2015 assume symmetry) and sizes above
    ``max_queue`` use the rates of ``max_queue``. When an event empties ``Q_{+1}`` (``Q_{-1}``),
    ``p_ref`` rises (falls) one tick with probability ``theta``; the emptied queue is then the
    first queue of the other side, the queue leaving the grid is removed and the one entering it
    drawn from its invariant law; and with probability ``theta_reinit`` the whole book is instead
    redrawn from its invariant law around the new ``p_ref`` (HLR 2015 section 2.3.3).

    Times in the model's time unit (seconds), sizes in lots (HLR 2015 count in average event
    sizes: use lots of that size, or order sizes of one lot).
    """

    max_queue: int = Field(
        ge=1, description="K: queue sizes 0..K lots have their own rates; above K, K's apply."
    )
    limit_rates: list[list[float]] = Field(
        description="[i-1][n]: lambda^L_i(n), limit orders per time unit joining queue i = "
        "1..n_queues from the reference price when its size is n lots (n = 0..K)."
    )
    cancel_rates: list[list[float]] = Field(
        description="[i-1][n]: lambda^C_i(n), cancellations per time unit of the WHOLE queue i "
        "of size n lots (not per order); entry n = 0 must be 0."
    )
    market_rates: list[float] = Field(
        description="[n]: lambda^M(n), market orders per time unit on each side when that side's "
        "best queue has n lots (n = 0..K; an empty best receives none, so n = 0 is unused)."
    )
    theta: float = Field(
        ge=0,
        le=1,
        description="Probability that p_ref moves one tick when an event empties Q_{+1} or Q_{-1}.",
    )
    theta_reinit: float = Field(
        ge=0,
        le=1,
        description="Probability that, after such a move, the book is redrawn from its invariant "
        "law around the new p_ref.",
    )

    @model_validator(mode="after")
    def _check(self) -> QueueReactiveParams:
        width = self.max_queue + 1
        if not self.limit_rates:
            raise ValueError("queue_reactive.limit_rates must list at least one queue")
        if len(self.cancel_rates) != len(self.limit_rates):
            raise ValueError(
                f"queue_reactive.cancel_rates must have one row per queue like limit_rates "
                f"({len(self.limit_rates)}), got {len(self.cancel_rates)}"
            )
        for name in ("limit_rates", "cancel_rates"):
            for i, row in enumerate(getattr(self, name)):
                if len(row) != width:
                    raise ValueError(
                        f"queue_reactive.{name}[{i}] must have max_queue + 1 = {width} entries "
                        f"(sizes 0..{self.max_queue}), got {len(row)}"
                    )
                if any(not v >= 0 for v in row):
                    raise ValueError(f"queue_reactive.{name}[{i}] must be >= 0, got {row}")
        for i, row in enumerate(self.cancel_rates):
            if row[0] != 0:
                raise ValueError(
                    f"queue_reactive.cancel_rates[{i}][0] must be 0 (an empty queue cannot lose "
                    f"an order), got {row[0]}"
                )
        if len(self.market_rates) != width or any(not v >= 0 for v in self.market_rates):
            raise ValueError(
                f"queue_reactive.market_rates must have max_queue + 1 = {width} entries >= 0, "
                f"got {self.market_rates}"
            )
        for i in range(self.n_queues):
            birth, death = self.limit_rates[i], self.death_rates(i + 1)
            for n in range(1, width):
                if birth[n - 1] > 0 and not death[n] > 0:
                    raise ValueError(
                        f"queue_reactive: queue {i + 1} can reach size {n} (limit_rates[{i}]"
                        f"[{n - 1}] > 0) but never loses an order there: cancel_rates[{i}][{n}]"
                        f"{' + market_rates[' + str(n) + ']' if i == 0 else ''} must be > 0"
                    )
            if birth[-1] > 0 and not birth[-1] < death[-1]:
                raise ValueError(
                    f"queue_reactive: queue {i + 1} is unstable: limit_rates[{i}][{self.max_queue}]"
                    f" = {birth[-1]} must be below its loss rate {death[-1]} at size max_queue "
                    f"(sizes above it use these rates)"
                )
        return self

    @property
    def n_queues(self) -> int:
        """Queues per side (the ``i`` of ``Q_{+-i}``)."""
        return len(self.limit_rates)

    def death_rates(self, queue: int) -> list[float]:
        """``lambda^C_i(n) + 1{i = 1} lambda^M(n)``, ``n = 0..K``: the loss rate of queue ``i``
        in its birth-death law (HLR 2015 section 2.3.1: market orders hit ``Q_{+-1}``)."""
        cancel = self.cancel_rates[queue - 1]
        if queue == 1:
            return [c + m for c, m in zip(cancel, self.market_rates, strict=True)]
        return list(cancel)

    def invariant_distribution(self, queue: int, tol: float = 1e-13) -> list[float]:
        """``pi_i(n)``, ``n = 0, 1, ...``: the invariant law of queue ``i`` as a birth-death
        chain, ``pi_i(n) ~ prod_{j<n} lambda^L_i(j) / (lambda^C_i(j+1) + 1{i=1} lambda^M(j+1))``
        (HLR 2015 section 2.3.1, Model I), with the rates of ``K`` above ``K``; truncated where
        the geometric tail left out is below ``tol``."""
        if not 1 <= queue <= self.n_queues:
            raise ValueError(f"queue must be in 1..{self.n_queues}, got {queue}")
        birth = self.limit_rates[queue - 1]
        death = self.death_rates(queue)
        K = self.max_queue
        ratio_tail = birth[K] / death[K] if birth[K] > 0 else 0.0
        weights = [1.0]
        n = 0
        while birth[min(n, K)] > 0:
            weights.append(weights[-1] * birth[min(n, K)] / death[min(n + 1, K)])
            n += 1
            if n >= K and weights[-1] * ratio_tail / (1.0 - ratio_tail) <= tol * sum(weights):
                break
        total = sum(weights)
        return [w / total for w in weights]


class MarketParams(_Strict):
    """The order-flow model on a tick grid, with its book window and order sizes: CST 2010
    (``model = "cst"``) or the queue-reactive model of HLR 2015 (``model = "queue_reactive"``,
    parameters in ``queue_reactive``; ``limit_rates``, ``cancel_rates`` and ``market_rate`` are
    then unused and may be left out).

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
    model: Literal["cst", "queue_reactive", "realistic"] = Field(
        "cst",
        description="Order-flow model: Cont-Stoikov-Talreja 2010, HLR 2015 queue-reactive, or "
        "the realistic flow of docs/calibration.md#realistic-order-flow.",
    )
    limit_rates: list[float] = Field(
        default_factory=list,
        description="CST: lambda(i), i = 1..L: limit-order arrival rate per side at distance i "
        "ticks from the opposite best (orders per time unit).",
    )
    cancel_rates: list[float] = Field(
        default_factory=list,
        description="CST: theta(i), i = 1..L: cancellation rate of each resting order at distance "
        "i ticks from the opposite best (per order per time unit).",
    )
    market_rate: float = Field(
        0.0, ge=0, description="CST: mu, market-order arrival rate per side (orders per time unit)."
    )
    queue_reactive: QueueReactiveParams | None = Field(
        None, description="HLR 2015 parameters; required iff model is queue_reactive."
    )
    realistic: dict[str, Any] | None = Field(
        None,
        description="The realistic flow's parameters (calibration.realistic.RealisticFlowParams, "
        "as written by `python -m calibration.fit --flow realistic`); required iff model is "
        "realistic. Validated on construction; read them through realistic_params.",
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
        "stationary law of its birth-death queue (CST 2010 section 1.2, no market orders), or "
        "for queue_reactive queue i from its invariant law (HLR 2015 section 2.3.1).",
    )

    @model_validator(mode="after")
    def _check(self) -> MarketParams:
        n = self.n_levels
        if self.model == "cst":
            self._check_cst()
        elif self.model == "realistic":
            rp = self.realistic_params  # validates, naming the key
            _check_realistic_shapes(rp)
            width = rp.spread.n_buckets * rp.spread.grid_ticks
            if width > n:
                raise ValueError(
                    f"n_levels = {n} must be >= realistic.spread.n_buckets x grid_ticks = "
                    f"{width} (the widest spread must fit in the window)"
                )
            for name in ("limit_rates", "cancel_rates"):
                if getattr(self, name) and len(getattr(self, name)) != n:
                    raise ValueError(f"{name} must be empty or have n_levels = {n} entries")
        else:
            qr = self.queue_reactive
            if qr is None:
                raise ValueError(
                    "queue_reactive parameters are required when model is 'queue_reactive'"
                )
            if qr.n_queues > n:
                raise ValueError(
                    f"queue_reactive.limit_rates has {qr.n_queues} queues; it must be <= "
                    f"n_levels = {n}"
                )
            for name in ("limit_rates", "cancel_rates"):
                if getattr(self, name) and len(getattr(self, name)) != n:
                    raise ValueError(f"{name} must be empty or have n_levels = {n} entries")
        if self.model == "cst" and self.queue_reactive is not None:
            raise ValueError("queue_reactive parameters are only used with model 'queue_reactive'")
        if self.model != "realistic" and self.realistic is not None:
            raise ValueError("realistic parameters are only used with model 'realistic'")
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

    def _check_cst(self) -> None:
        n = self.n_levels
        for name in ("limit_rates", "cancel_rates", "market_rate"):
            if name not in self.model_fields_set:
                raise ValueError(f"{name} is required by model 'cst'")
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

    @property
    def realistic_params(self) -> RealisticFlowParams:
        """``realistic`` as :class:`calibration.realistic.RealisticFlowParams`.

        :raises ValueError: with model 'realistic' and no or invalid parameters, naming the key.
        """
        from pydantic import ValidationError

        from calibration.realistic import RealisticFlowParams

        if self.realistic is None:
            raise ValueError("realistic parameters are required when model is 'realistic'")
        try:
            return RealisticFlowParams.model_validate(self.realistic)
        except ValidationError as exc:
            where = "; ".join(
                "realistic." + ".".join(str(x) for x in e["loc"]) + ": " + e["msg"]
                for e in exc.errors()
            )
            raise ValueError(where) from None

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


def _check_realistic_shapes(rp: RealisticFlowParams) -> None:
    """What the simulator of the realistic flow reads, beyond the fit's own checks.

    :raises ValueError: naming the key of ``realistic``.
    """
    import numpy as np

    from calibration.spread_model import BEST_EVENT_TYPES

    types = list(BEST_EVENT_TYPES)
    D, K = len(types), rp.spread.n_buckets
    if rp.hawkes.event_types != types:
        raise ValueError(f"realistic.hawkes.event_types must be {types}")
    phi = np.asarray(rp.spread_multipliers, dtype=np.float64)
    if phi.shape != (D, K) or not np.all(phi >= 0):
        raise ValueError(f"realistic.spread_multipliers must be {D} x n_buckets = {K}, >= 0")
    trans = np.asarray(rp.spread.transition_probs, dtype=np.float64)
    if trans.shape != (D, K, K) or not np.all(trans >= 0):
        raise ValueError(f"realistic.spread.transition_probs must be {D} x {K} x {K}, >= 0")
    if not np.allclose(trans.sum(axis=2), 1.0, atol=1e-6):
        raise ValueError("realistic.spread.transition_probs rows must sum to 1")
    bins = rp.impact.lag_bins
    if len(bins) != len(rp.impact.increments) or not bins:
        raise ValueError("realistic.impact.lag_bins and increments need one entry per bin")
    if any(len(b) != 2 or not 0 <= b[0] <= b[1] for b in bins):
        raise ValueError("realistic.impact.lag_bins must be [first, last] lags, 0 <= first <= last")
    if not rp.impact.noise_sd >= 0:
        raise ValueError("realistic.impact.noise_sd must be >= 0")
    laws = {f"sizes.{k}": getattr(rp.sizes, k) for k in ("limit", "cancel", "market")}
    laws["spread.revealed_queue_probs"] = rp.spread.revealed_queue_probs
    for name, probs in laws.items():
        if not probs or any(not v >= 0 for v in probs) or abs(sum(probs) - 1.0) > 1e-6:
            raise ValueError(f"realistic.{name} must be probabilities summing to 1")


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

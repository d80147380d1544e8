"""Typed configuration: one pydantic model per component, composed into :class:`ExperimentConfig`.

Every model forbids unknown keys, and every field says what it means and in which unit.
Markets and policies are tagged unions on their ``kind`` field, so a YAML file names the
component it wants (``kind: glft``) and gets that component's fields validated.

YAML files are read by :mod:`experiments.config` only
(docs/architecture.md#packages-and-imports); the markets validate their keyword parameters with
the same models, so ``gymnasium.make(id, sigma=-1)`` and a config with ``market.sigma: -1`` fail
with the same message.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from calibration.params import TOKYO_CST, MarketParams
from envs.agent_orders import AgentOrdersConfig
from envs.exchange.models import QUEUE_MODELS, check_name
from envs.replay.config import ReplayMarketConfig


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, and every float is finite (NaN and
    infinity are refused; a field that means "none" says so with None)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


# ----------------------------------------------------------------------------- markets
class AnalyticMarketConfig(StrictModel):
    """The Avellaneda-Stoikov market (docs/markets.md#analytic-market).

    Mid ``dS = drift dt + sigma dW`` on a grid of ``n_steps`` steps over ``[0, T]``; a
    quote at depth ``delta`` from the mid is filled in a step with probability
    ``A exp(-k delta) dt`` clipped to 1 (``clipped``, Avellaneda-Stoikov 2008 section 3; the
    default) or ``1 - exp(-A exp(-k delta) dt)`` (``exact``: the probability of at least one
    Poisson arrival). Unit orders, at most one fill per side per step.
    """

    kind: Literal["analytic"] = "analytic"
    T: float = Field(1.0, gt=0, description="Horizon, in the market's time unit.")
    n_steps: int = Field(200, ge=1, description="Decisions per episode; dt = T / n_steps.")
    s0: float = Field(100.0, gt=0, description="Initial mid price (price units).")
    sigma: float = Field(2.0, gt=0, description="Mid volatility (price units per sqrt(time)).")
    drift: float = Field(0.0, description="Mid drift (price units per time unit).")
    increments: Literal["gaussian", "binary"] = Field(
        "gaussian",
        description="Mid increments: Gaussian N(drift dt, sigma^2 dt), or binary "
        "+-sigma sqrt(dt) (plus drift dt) with equal probability as in Avellaneda-Stoikov 2008.",
    )
    A: float = Field(140.0, gt=0, description="Fill intensity at zero depth (fills per time unit).")
    k: float = Field(
        1.5, gt=0, description="Decay of the fill intensity with depth (1 / price unit)."
    )
    fill_probability: Literal["clipped", "exact"] = Field(
        "clipped",
        description="Per-step fill probability: lambda dt clipped to 1 (keeps the expected number "
        "of fills per step equal to the model's, so values match the continuous-time ones), or "
        "1 - exp(-lambda dt) (the probability of at least one arrival; with at most one fill "
        "per side per step it loses a fraction ~lambda dt / 2 of the fills).",
    )
    q_max: int = Field(
        50,
        ge=1,
        description="Maximum absolute inventory (lots); quotes that would exceed it are not sent.",
    )
    q0: int = Field(0, description="Initial inventory (lots).")
    q0_range: int = Field(
        0,
        ge=0,
        description="Exploring starts: each episode's initial inventory is drawn uniformly "
        "from q0 - q0_range .. q0 + q0_range within +-q_max (lots); 0 always starts at q0.",
    )
    random_start: bool = Field(
        False,
        description="Exploring starts: each episode starts at a decision drawn uniformly from "
        "0 .. n_steps - 1 (so with less time left) instead of at t = 0.",
    )
    phi: float = Field(0.0, ge=0, description="Running inventory penalty: reward -= phi q^2 dt.")
    alpha: float = Field(
        0.0, ge=0, description="Terminal inventory penalty: reward -= alpha q_T^2."
    )
    depth_min: float = Field(
        -5.0, description="Quote depth at action -1 (price units; negative quotes through the mid)."
    )
    depth_max: float = Field(5.0, description="Quote depth at action +1 (price units).")
    max_drawdown: float | None = Field(
        None,
        gt=0,
        description="Kill switch: an episode terminates when mark-to-market PnL falls this far "
        "below its running maximum (price units); None disables it.",
    )
    stress: StressScenario | None = Field(
        None,
        description="Stress scenario acting inside its time window (configs/stress/); None: "
        "the unstressed market.",
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> AnalyticMarketConfig:
        if not self.depth_max > self.depth_min:
            raise ValueError(
                f"depth_max ({self.depth_max}) must exceed depth_min ({self.depth_min})"
            )
        if abs(self.q0) > self.q_max:
            raise ValueError(f"|q0| ({abs(self.q0)}) must not exceed q_max ({self.q_max})")
        return self

    @property
    def dt(self) -> float:
        return self.T / self.n_steps


class LOBMarketConfig(AgentOrdersConfig):
    """The event-driven order-book market (Cont-Stoikov-Talreja 2010 or queue-reactive order
    flow) with the agent's orders (:class:`envs.agent_orders.AgentOrdersConfig`)."""

    kind: Literal["lob"] = "lob"
    market: MarketParams = Field(
        default=TOKYO_CST, description="Order-flow model (calibration.params.MarketParams)."
    )
    T: float = Field(60.0, gt=0, description="Horizon (time units of the order-flow model).")
    n_steps: int = Field(60, ge=1, description="Decisions per episode; dt = T / n_steps.")
    initial_price: int = Field(
        10_000, ge=100, description="Best bid at reset (ticks); the best ask is one tick above."
    )
    queue_model: str = Field(
        "exact",
        description="Share of others' cancellations ahead of the agent "
        "(envs.exchange.models.QUEUE_MODELS): never (risk_averse), with probability "
        "f(ahead)/(f(ahead)+f(behind)), f = x^queue_power (prob) or log(1+x) (prob_log), or a "
        "uniform pick over the queue (uniform), which is the exact law of this model, where "
        "every resting lot is cancelled at the same rate (exact: the same here).",
    )
    stress: StressScenario | None = Field(
        None,
        description="Stress scenario acting inside its time window (configs/stress/); None: "
        "the unstressed market.",
    )

    @field_validator("queue_model")
    @classmethod
    def _queue_model(cls, name: str) -> str:
        return check_name(QUEUE_MODELS, "queue_model", name, "lob")

    @model_validator(mode="after")
    def _check(self) -> LOBMarketConfig:
        self.check_orders(self.dt)
        if self.depth_max > self.market.n_levels - 1:
            raise ValueError(
                f"depth_max ({self.depth_max}) must be <= market.n_levels - 1 "
                f"({self.market.n_levels - 1}) so quotes start inside the simulated window"
            )
        return self

    @property
    def dt(self) -> float:
        return self.T / self.n_steps


def _market_kind(value: Any) -> str:
    """The market's ``kind``; a market section without one is the analytic market."""
    if isinstance(value, dict):
        return str(value.get("kind", "analytic"))
    return str(getattr(value, "kind", "analytic"))


class ReplayMarket(ReplayMarketConfig):
    """The historical replay (``envs.replay``, docs/markets.md#replay) with the calibrated model of
    the recorded day, from which the baselines take their parameters (one source per number).

    In a YAML config, ``path`` may be relative to the data folder (``data/samples/``, or
    $MM_DATA_DIR when set) and ``market_params`` may be the path of a ``MarketParams`` YAML
    (``configs/markets/*.yaml``, written by ``calibration.fit``); :mod:`experiments.config`
    resolves both.
    """

    market_params: MarketParams | None = Field(
        None,
        description="Calibrated model of the recorded day (calibration.params.MarketParams): "
        "the fill curve A exp(-k delta) (fills/s, 1/tick) and the mid volatility "
        "(ticks/sqrt(s)) of the Avellaneda-Stoikov / GLFT / Cartea-Jaimungal baselines; None "
        "when only policies without a model run (fixed spread, SAC).",
    )


MarketConfig = Annotated[
    Annotated[AnalyticMarketConfig, Tag("analytic")]
    | Annotated[LOBMarketConfig, Tag("lob")]
    | Annotated[ReplayMarket, Tag("replay")],
    Discriminator(_market_kind),
]


# ---------------------------------------------------------------------------- policies
class _PolicyBase(StrictModel):
    label: str | None = Field(
        None, description="Name shown in tables and metric keys; default: kind."
    )


class FixedSpreadConfig(_PolicyBase):
    """Fixed spread with linear inventory skew: bid = h + s q, ask = h - s q."""

    kind: Literal["fixed_spread"] = "fixed_spread"
    half_spread: float = Field(description="Half spread h (price units).")
    skew: float = Field(0.0, ge=0, description="Depth shift s per lot of inventory (price units).")


class AvellanedaStoikovConfig(_PolicyBase):
    """Avellaneda-Stoikov 2008 finite-horizon quotes (sigma, k, T from the market)."""

    kind: Literal["avellaneda_stoikov"] = "avellaneda_stoikov"
    gamma: float = Field(gt=0, description="Risk aversion (1 / price unit).")


class AvellanedaStoikovInfiniteConfig(_PolicyBase):
    """Avellaneda-Stoikov 2008 infinite-horizon variant (section 2.3)."""

    kind: Literal["avellaneda_stoikov_infinite"] = "avellaneda_stoikov_infinite"
    gamma: float = Field(gt=0, description="Risk aversion (1 / price unit).")
    omega: float = Field(
        gt=0, description="Discount rate; must exceed gamma^2 sigma^2 (q_max + 1)^2 / 2."
    )


class SymmetricSpreadConfig(_PolicyBase):
    """The Avellaneda-Stoikov 2008 'symmetric strategy': the AS spread centred on the mid."""

    kind: Literal["symmetric"] = "symmetric"
    gamma: float = Field(gt=0, description="Risk aversion of the AS strategy whose spread is used.")


class GLFTConfig(_PolicyBase):
    """Gueant-Lehalle-Fernandez-Tapia 2013 exact quotes (sigma, A, k, T, q_max from the market)."""

    kind: Literal["glft"] = "glft"
    gamma: float = Field(gt=0, description="Risk aversion (1 / price unit).")
    asymptotic: bool = Field(False, description="Use the closed-form asymptotic quotes instead.")


class CarteaJaimungalConfig(_PolicyBase):
    """Cartea-Jaimungal running-penalty optimum (A, k, T, q_max from the market)."""

    kind: Literal["cartea_jaimungal"] = "cartea_jaimungal"
    phi: float | None = Field(None, ge=0, description="Running penalty; None: the market's phi.")
    alpha: float | None = Field(
        None, ge=0, description="Terminal penalty; None: the market's alpha."
    )


PolicyConfig = Annotated[
    FixedSpreadConfig
    | AvellanedaStoikovConfig
    | AvellanedaStoikovInfiniteConfig
    | SymmetricSpreadConfig
    | GLFTConfig
    | CarteaJaimungalConfig,
    Field(discriminator="kind"),
]


# ------------------------------------------------------------------ features, agent, training
class FeaturesConfig(StrictModel):
    """The state the agent sees (features/pipeline.py)."""

    names: list[str] = Field(
        default_factory=lambda: ["inventory", "time_left", "inventory_time"],
        min_length=1,
        description="Feature names, in order (see features.FEATURES).",
    )
    normalize: bool = Field(False, description="Standardize features by running statistics.")


class SACConfig(StrictModel):
    """Soft Actor-Critic hyperparameters (Haarnoja et al. 2018, arXiv:1812.05905).

    Fixed at the learner's construction (nothing retraces). Defaults follow
    Stable-Baselines3 and CleanRL except where this platform's problems differ: small
    networks (a 3-feature state needs no 256x256 MLP) and no discount (finite horizon
    with time in the state).
    """

    hidden_sizes: tuple[int, ...] = Field(
        (64, 64), min_length=1, description="Hidden layer widths of the actor and each critic."
    )
    gamma: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Discount. 1 suits a finite horizon with time in the state: the objective "
        "is the undiscounted episode reward.",
    )
    tau: float = Field(0.005, gt=0, le=1, description="Polyak rate of the target critics.")
    n_critics: int = Field(
        2,
        ge=2,
        description="Critic networks. 2: clipped double Q (the TD target and the actor use the "
        "minimum of the two). More: an ensemble as in REDQ (Chen et al. 2021): the TD target "
        "takes the minimum of 2 members drawn at random at each update, the actor maximizes "
        "the ensemble mean, whose noise the ensemble averages down.",
    )
    actor_averaging: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Polyak rate of an averaged copy of the actor, updated with every step "
        "(avg <- rate actor + (1 - rate) avg). Deterministic actions (validation, the best "
        "and exported policy) then come from it, smoothing the noise of the SGD iterates; "
        "exploration keeps the live actor. None: the live actor everywhere.",
    )
    actor_lr: float = Field(3e-4, gt=0, description="Actor learning rate (Adam).")
    critic_lr: float = Field(3e-4, gt=0, description="Critic learning rate (Adam).")
    alpha_lr: float = Field(3e-4, gt=0, description="Entropy temperature learning rate (Adam).")
    initial_alpha: float = Field(0.1, gt=0, description="Initial entropy temperature.")
    learn_alpha: bool = Field(
        True, description="Tune the temperature automatically; False keeps initial_alpha."
    )
    target_entropy: float | None = Field(
        None, description="Entropy target; None: -action_dim (Haarnoja et al. 2018)."
    )
    lr_decay: bool = Field(
        False,
        description="Decay the three learning rates linearly to zero over the training's "
        "updates (steadier final policy; the updates count comes from the training budget).",
    )
    lr_decay_start: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="With lr_decay: the fraction of the training's updates run at the full "
        "rates before the linear decay begins (0: decay from the first update).",
    )
    decay_steps: int | None = Field(
        None, ge=1, description="Updates over which rates decay; set by the training loop."
    )
    batch_size: int = Field(256, ge=1, description="Transitions per update.")
    reward_scale: float = Field(1.0, gt=0, description="Rewards are multiplied by this.")
    jit_compile: bool = Field(True, description="Compile the update with XLA.")
    run_eagerly: bool = Field(
        False, description="Debug switch: run the train step eagerly, without tf.function."
    )

    @model_validator(mode="after")
    def _check_modes(self) -> SACConfig:
        if self.run_eagerly and self.jit_compile:
            raise ValueError("run_eagerly=True cannot be combined with jit_compile=True")
        return self


class TrainingConfig(StrictModel):
    """The training loop's budget and schedule (counts are environment transitions)."""

    num_envs: int = Field(16, ge=1, description="Markets stepped together (one batched env).")
    total_steps: int = Field(200_000, ge=1, description="Transitions to collect in all.")
    warmup_steps: int = Field(10_000, ge=0, description="Transitions with uniform random actions.")
    updates_per_step: int = Field(
        1, ge=1, description="Gradient updates per batched environment step."
    )
    replay_capacity: int = Field(1_000_000, ge=1, description="Replay buffer size (transitions).")
    eval_every: int = Field(50_000, ge=1, description="Transitions between evaluations.")
    eval_paths: int = Field(1000, ge=2, description="Episodes per periodic evaluation.")
    checkpoint_every: int = Field(
        25_000, ge=1, description="Transitions between checkpoints (also logged to MLflow)."
    )
    checkpoint_minutes: float = Field(
        2.0,
        gt=0,
        description="Also checkpoint after this much wall-clock time since the last checkpoint, "
        "so a kill loses at most this much work.",
    )
    max_minutes: float | None = Field(
        None,
        gt=0,
        description="Stop (with a checkpoint) after this wall-clock time, counted over the "
        "run and all its resumes.",
    )
    explore_inventory: int = Field(
        0,
        ge=0,
        description="Exploring starts for the training markets only: initial inventories drawn "
        "uniformly within +-explore_inventory lots of the market's q0 (market.q0_range; "
        "analytic market only).",
    )
    explore_time: bool = Field(
        False,
        description="Exploring starts for the training markets only: episodes start at a "
        "uniformly drawn decision (market.random_start; analytic market only). Evaluation "
        "always starts at t = 0.",
    )
    keep_best: bool = Field(
        True,
        description="Export the policy of the best periodic evaluation (on validation seeds, "
        "apart from the evaluation seeds of reports) instead of the last one.",
    )
    checkpoint_dir: str | None = Field(
        None,
        description="Folder of the run checkpoints (one sub-folder per run id); "
        "None: outputs/checkpoints in the project.",
    )


# ------------------------------------------------------------------ evaluation, tracking
class EvaluationConfig(StrictModel):
    """How policies are evaluated: paths per policy, common random numbers, intervals."""

    n_paths: int = Field(
        1000, ge=2, description="Episodes per policy (one batched env of this size)."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")


class BacktestConfig(StrictModel):
    """How ``experiments.backtest`` cuts a recorded day (``market.kind: replay``) and scores it.

    The day is replayed as ``windows`` consecutive episodes of ``market.n_steps x market.dt``
    seconds from ``market.start`` (each liquidated at its end); every policy replays the same
    windows, and its metrics are those of the windows laid end to end (one trading session).
    """

    windows: int | None = Field(
        None,
        ge=1,
        description="Consecutive episodes replayed; None: as many as fit in the tape after "
        "market.start.",
    )
    capital: float = Field(
        10_000.0,
        gt=0,
        description="Capital base C of the returns dPnL / C (currency): Sharpe, VaR, ES, "
        "drawdown fraction (evaluation.metrics).",
    )
    calendar: Literal["equities", "crypto"] = Field(
        "equities",
        description="Annualization calendar: 252 sessions of 6.5 h (equities) or 365 days of "
        "24 h (crypto) (evaluation.metrics.SECONDS_PER_YEAR).",
    )
    markout_horizons: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 10.0, 60.0],
        min_length=1,
        description="Mark-out horizons (seconds); the largest gives the realized spread.",
    )


class TrackingConfig(StrictModel):
    """Where runs are recorded (docs/architecture.md#tracking)."""

    uri: str | None = Field(
        None,
        description="MLflow tracking URI; None: $MLFLOW_TRACKING_URI, else the local store.",
    )
    experiment: str | None = Field(None, description="MLflow experiment; None: the config's name.")


class ExperimentConfig(StrictModel):
    """One run, fully determined by this object."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Config name (MLflow experiment).")
    seed: int = Field(0, ge=0, description="Root seed; every random stream is spawned from it.")
    market: MarketConfig = Field(default_factory=AnalyticMarketConfig)
    policies: list[PolicyConfig] = Field(
        default_factory=list, description="Baseline strategies to run (and compare with)."
    )
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    agent: SACConfig = Field(default_factory=SACConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _unique_labels(self) -> ExperimentConfig:
        labels = [policy_label(p) for p in self.policies]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"policy labels must be unique; repeated: {dupes} (set 'label')")
        return self

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name


def policy_label(policy: _PolicyBase) -> str:
    """The policy's display name: its ``label`` or, by default, its ``kind``."""
    return policy.label or str(policy.kind)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------ stress scenarios
StressMarket = Literal["analytic", "lob"]


class _Shock(StrictModel):
    """Base of the typed perturbations; ``MARKETS`` lists the markets where one has a meaning."""

    MARKETS: ClassVar[frozenset[str]] = frozenset({"analytic", "lob"})


class VolatilityShock(_Shock):
    """Volatility spike: the mid's volatility times ``factor`` inside the window.

    Analytic: ``sigma -> factor * sigma``. Order book: every order-flow rate times
    ``factor^2`` (the book's clock runs faster; the mid variance per time unit scales with the
    event rate, Cont & de Larrard 2013).
    """

    factor: float = Field(gt=0, description="Multiplier of the volatility (dimensionless).")


class FillIntensityShock(_Shock):
    """More or fewer counterparties: the arrival rate of the orders that fill the agent's quotes
    times ``factor`` on ``side``.

    Analytic: ``A -> factor * A`` for the bid and/or ask quote (a liquidity drought is
    ``factor < 1``). Order book: the market-order rate hitting that side (sell market orders hit
    the bid) times ``factor``.
    """

    factor: float = Field(ge=0, description="Multiplier of the fill intensity (dimensionless).")
    side: Literal["both", "bid", "ask"] = Field(
        "both", description="Which of the agent's quotes the change applies to."
    )


class FillDecayShock(_Shock):
    """Fills fall off faster (``factor > 1``) or slower with depth: ``k -> factor * k``.

    Analytic market only: the order book's fills come from its queues, not from a decay law.
    """

    MARKETS: ClassVar[frozenset[str]] = frozenset({"analytic"})
    factor: float = Field(gt=0, description="Multiplier of k (dimensionless).")


class DriftShock(_Shock):
    """A trend of the mid inside the window: ``drift -> drift + rate`` (price units per time
    unit; with ``unit: sigma``, ``rate`` is in multiples of the market's ``sigma``).

    Analytic market only. There fills do not depend on the coming mid moves, so the honest
    form of one-sided toxic flow is a drift: the mid trends against the inventory the flow
    leaves the agent with. In the order book the trend should come from the flow itself
    (:class:`FillIntensityShock` on one side).
    """

    MARKETS: ClassVar[frozenset[str]] = frozenset({"analytic"})
    rate: float = Field(description="Added drift (price units, or sigmas, per time unit).")
    unit: Literal["price", "sigma"] = Field(
        "price", description="rate in price units, or in multiples of the market's sigma."
    )


class JumpShock(_Shock):
    """Flash crash: the mid jumps by ``size`` during the window's first step and, with
    ``revert``, jumps back during its last step (the mid is displaced by ``size`` at the
    decisions strictly inside the window and back at its end).

    Analytic: added to the mid increment (price units; with ``unit: sigma``, ``size`` is in
    multiples of ``sigma``, the mid's standard deviation over one time unit). Order book: the
    others' book shifted by ``size`` ticks (a sweep of the side it falls through; the agent's
    orders keep their prices); with ``unit: sigma``, ``size`` is in multiples of
    ``mid_volatility * sqrt(T)``, the mid's standard deviation over the horizon, rounded to
    whole ticks (the two units agree when T = 1).
    """

    size: float = Field(description="Jump of the mid (price units or sigmas; ticks in the book).")
    unit: Literal["price", "sigma"] = Field(
        "price", description="size in price units, or in multiples of the market's sigma."
    )
    revert: bool = Field(False, description="Jump back by -size during the window's last step.")


class LatencyShock(_Shock):
    """Latency shock: the agent's entry, feed and response latencies ``x factor + add``.

    Order book only: in the analytic market decisions act instantly, so latency has no meaning.
    """

    MARKETS: ClassVar[frozenset[str]] = frozenset({"lob"})
    factor: float = Field(1.0, ge=1, description="Multiplier of the three latencies.")
    add: float = Field(0.0, ge=0, description="Added to the three latencies (time units).")


class StressPerturbations(StrictModel):
    """The perturbations a scenario applies inside its window, keyed by kind (at least one)."""

    volatility: VolatilityShock | None = None
    fill_intensity: FillIntensityShock | None = None
    fill_decay: FillDecayShock | None = None
    drift: DriftShock | None = None
    jump: JumpShock | None = None
    latency: LatencyShock | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> StressPerturbations:
        if not self.active():
            kinds = ", ".join(type(self).model_fields)
            raise ValueError(f"a scenario needs at least one perturbation among: {kinds}")
        return self

    def active(self) -> dict[str, _Shock]:
        """The perturbations that are set, by kind."""
        return {k: v for k in type(self).model_fields if (v := getattr(self, k)) is not None}


class StressWindow(StrictModel):
    """The time window ``[start, end)`` in which a scenario acts.

    ``unit: fraction`` reads the bounds as fractions of the horizon ``T``; ``time`` in the
    market's time units. A step (from decision ``t`` to ``t + 1``) is in the window when its
    start time ``t dt`` is.
    """

    start: float = Field(ge=0, description="Window start (fraction of T, or time units).")
    end: float = Field(gt=0, description="Window end, excluded (fraction of T, or time units).")
    unit: Literal["fraction", "time"] = Field("fraction", description="Unit of start and end.")

    @model_validator(mode="after")
    def _ordered(self) -> StressWindow:
        if not self.end > self.start:
            raise ValueError(f"window: end ({self.end}) must exceed start ({self.start})")
        if self.unit == "fraction" and self.end > 1:
            raise ValueError(f"window: end ({self.end}) is a fraction of the horizon: at most 1")
        return self

    def steps(self, n_steps: int, T: float) -> tuple[int, int]:
        """First step in the window and first step after it (``0 <= first < stop <= n_steps``).

        :raises ValueError: when the window holds no step of the grid ``t dt``, ``dt = T /
            n_steps``, or starts beyond the horizon.
        """
        scale = 1.0 if self.unit == "fraction" else 1.0 / T
        # steps whose start time t / n_steps (in fractions of T) lies in [start, end)
        first, stop = (
            min(math.ceil(x * scale * n_steps - 1e-9), n_steps) for x in (self.start, self.end)
        )
        if stop <= first:
            raise ValueError(
                f"window [{self.start}, {self.end}) ({self.unit}) holds no decision step of a "
                f"grid of {n_steps} steps over T = {T}"
            )
        return first, stop


class StressScenario(StrictModel):
    """A stress scenario (docs/markets.md#stress-scenarios): perturbations of the market acting
    in a window.

    ``markets`` declares where the scenario has a meaning; each perturbation must have one in
    each of them.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Name (metric keys, tables).")
    description: str = Field("", description="What the scenario represents and its magnitudes.")
    markets: list[StressMarket] = Field(
        min_length=1, description="Markets the scenario applies to (analytic, lob)."
    )
    window: StressWindow
    perturbations: StressPerturbations

    @model_validator(mode="after")
    def _markets_supported(self) -> StressScenario:
        for kind, shock in self.perturbations.active().items():
            missing = sorted(set(self.markets) - shock.MARKETS)
            if missing:
                raise ValueError(
                    f"perturbation {kind!r} has no meaning in market(s) {missing}; it applies "
                    f"to {sorted(shock.MARKETS)}: remove those from 'markets'"
                )
        return self

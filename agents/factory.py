"""Build a :class:`~agents.base.Policy` from its config and the market it trades in.

Model parameters the policies share with the market (sigma, A, k, T, q_max, phi, alpha) are
read from the market's config, never copied into the policy's: one source for each number.
:func:`model_parameters` is the one place that says where each comes from in each market.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.base import Policy
from agents.baselines import (
    GLFT,
    AvellanedaStoikov,
    AvellanedaStoikovInfinite,
    CarteaJaimungal,
    FixedSpread,
    GLFTAsymptotic,
    SymmetricSpread,
)
from calibration.params import MarketParams
from configs.schema import (
    AnalyticMarketConfig,
    AvellanedaStoikovConfig,
    AvellanedaStoikovInfiniteConfig,
    CarteaJaimungalConfig,
    FixedSpreadConfig,
    GLFTConfig,
    LOBMarketConfig,
    PolicyConfig,
    ReplayMarket,
    SymmetricSpreadConfig,
    policy_label,
)
from envs.layout import DepthActionMap


@dataclass(frozen=True)
class ModelParameters:
    """The Avellaneda-Stoikov / GLFT / Cartea-Jaimungal model of a market, in its price unit.

    Quotes are depths from the mid in the market's price unit (currency for the analytic
    market, ticks for the order book), so every parameter is expressed in that unit.

    :param sigma: mid volatility (price units / sqrt(time unit)).
    :param A: fill intensity of a quote at the mid (fills / time unit).
    :param k: decay of the fill intensity with depth (1 / price unit).
    :param T: horizon (time units).
    :param q_max: inventory bound (lots).
    :param phi: running inventory penalty (price units / lot^2 / time unit).
    :param alpha: terminal inventory penalty (price units / lot^2).
    :param unit_orders: whether every quote is for one lot (the models' inventory grid).
    :param currency_per_unit: currency value of one price unit on one lot (1 for the analytic
        market, ``tick_size * lot_size`` for the order book); penalties in currency are
        divided by it.
    """

    sigma: float
    A: float
    k: float
    T: float
    q_max: int
    phi: float
    alpha: float
    unit_orders: bool = True
    currency_per_unit: float = 1.0


def model_parameters(
    market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket,
) -> ModelParameters:
    """The model parameters of ``market``.

    Analytic market: its own ``sigma, A, k`` (it is that model). Order book: ``A, k`` from
    ``market.fill_curve`` and ``sigma`` from ``market.mid_volatility`` (summaries of the
    Cont-Stoikov-Talreja 2010 order flow, in ticks), ``T`` and ``q_max`` from the market, and
    the penalties converted from currency to ticks (divided by ``tick_size * lot_size``, the
    currency value of one tick on one lot), since the policies' depths are in ticks.
    Replay: ``A, k, sigma`` likewise from the calibrated ``market.market_params`` of the
    recorded day (in ticks of the tape, checked), the penalties divided by the tape's
    ``tick_size * lot_size`` (the replayed orders are in the feed's lots).

    :raises ValueError: a replay without ``market_params``, or whose calibration's tick is not
        the tape's.
    """
    if isinstance(market, AnalyticMarketConfig):
        m = market
        return ModelParameters(m.sigma, m.A, m.k, m.T, m.q_max, m.phi, m.alpha)
    if isinstance(market, LOBMarketConfig):
        flow = market.market
        return _order_book_parameters(market, flow, flow.tick_size * flow.lot_size)
    if isinstance(market, ReplayMarket):
        return _replay_parameters(market)
    raise TypeError(f"no model parameters for market config {type(market).__name__}")


def _replay_parameters(market: ReplayMarket) -> ModelParameters:
    from envs.replay.tape import load_tape  # cached per process: the env shares this tape

    flow = market.market_params
    if flow is None:
        raise ValueError(
            "market.market_params: the replay's baselines take A, k and sigma from the "
            "calibrated model of the recorded day; set it (e.g. configs/markets/<day>.yaml)"
        )
    spec = load_tape(market.data_paths(), market.format, market.binance_market, market.symbol,
                     market.levels).spec  # fmt: skip
    if abs(flow.tick_size - spec.tick_size) > 1e-12 * spec.tick_size:
        raise ValueError(
            f"market.market_params.tick_size ({flow.tick_size}) is not the tape's tick "
            f"({spec.tick_size}): A, k and sigma would be in other units than the quotes"
        )
    return _order_book_parameters(market, flow, spec.tick_size * spec.lot_size)


def _order_book_parameters(
    market: LOBMarketConfig | ReplayMarket, flow: MarketParams, tick_value: float
) -> ModelParameters:
    """The model of an order-book market (simulated or replayed) from its calibrated order flow:
    A, k from the fill curve and sigma from the mid volatility (ticks), the penalties converted
    from currency to ticks by ``tick_value``, the currency value of one tick on one lot."""
    return ModelParameters(
        sigma=flow.mid_volatility,
        A=flow.fill_curve.A,
        k=flow.fill_curve.k,
        T=market.T,
        q_max=market.q_max,
        phi=market.phi / tick_value,
        alpha=market.alpha / tick_value,
        unit_orders=market.order_size == 1,
        currency_per_unit=tick_value,
    )


def make_policy(
    config: PolicyConfig,
    market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket,
    action_map: DepthActionMap,
) -> Policy:
    """The policy ``config`` describes, for ``market`` (any kind), acting through ``action_map``.

    :raises ValueError: for a GLFT or Cartea-Jaimungal policy in an order-book market whose
        quotes are not unit orders (their optimum lives on a grid of one-lot steps), or a
        model-based policy in a replay without ``market_params``.
    """
    policy: Policy
    if isinstance(config, FixedSpreadConfig):  # needs no model of the market
        policy = FixedSpread(config.half_spread, config.skew, action_map=action_map)
        policy.name = policy_label(config)
        return policy
    m = model_parameters(market)
    on_grid = isinstance(config, CarteaJaimungalConfig) or (
        isinstance(config, GLFTConfig) and not config.asymptotic
    )
    if on_grid and not m.unit_orders:
        raise ValueError(
            f"policy {policy_label(config)!r}: the exact {config.kind} quotes assume unit "
            "orders (inventory on a one-lot grid); set market.order_size: 1"
        )
    if isinstance(config, AvellanedaStoikovConfig):
        policy = AvellanedaStoikov(config.gamma, m.sigma, m.k, m.T, action_map=action_map)
    elif isinstance(config, AvellanedaStoikovInfiniteConfig):
        policy = AvellanedaStoikovInfinite(
            config.gamma, m.sigma, m.k, config.omega, m.q_max, action_map=action_map
        )
    elif isinstance(config, SymmetricSpreadConfig):
        reference = AvellanedaStoikov(config.gamma, m.sigma, m.k, m.T)
        policy = SymmetricSpread.matching(reference, action_map=action_map)
    elif isinstance(config, GLFTConfig):
        glft_class = GLFTAsymptotic if config.asymptotic else GLFT
        policy = glft_class(m.sigma, m.A, m.k, config.gamma, m.T, m.q_max, action_map=action_map)
    elif isinstance(config, CarteaJaimungalConfig):
        # the policy's penalties are in the market's reward currency, like the market's own
        phi = m.phi if config.phi is None else config.phi / m.currency_per_unit
        alpha = m.alpha if config.alpha is None else config.alpha / m.currency_per_unit
        policy = CarteaJaimungal(m.sigma, m.A, m.k, phi, alpha, m.T, m.q_max, action_map=action_map)
    else:  # pragma: no cover - the config union and this function are kept in step by tests
        raise TypeError(f"no policy for config {type(config).__name__}")
    policy.name = policy_label(config)
    return policy

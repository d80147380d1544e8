"""Features: raw observation batch -> one float32 ``tf.Tensor`` state of shape (batch, dim).

Each feature is a pure function of the observation dict (tensors with a leading batch
axis, keys of :mod:`envs.layout`, plus ``book`` and ``orders`` where the order-book market
publishes them) returning a float32 ``(batch, width)`` tensor. They are written with
TensorFlow ops only, so the same code runs in data collection, inside the agent's compiled
step, and inside the exported SavedModel (docs/agents.md#features). :data:`FEATURE_KEYS` names
the observation keys each feature reads; a pipeline asked for a feature whose keys its
market does not publish fails at construction.

Order-book layouts read here (published by the order-book market, :mod:`envs.lob.env`):
``book`` ``(batch, L, 2, 2)``: level ``k`` from each best, side (0 bid, 1 ask), (price in
ticks, lots); ``orders`` ``(batch, 2, 3)``: the agent's bid and ask (price in ticks,
remaining lots, lots ahead in the queue; zeros when none). Order-flow imbalance
(Cont-Kukanov-Stoikov 2014) needs the previous book, so it is not a function of one
observation and is not offered here.

:class:`FeaturePipeline` concatenates the configured features and, optionally, keeps
running normalization statistics (mean and variance per dimension, Chan et al. parallel
update) as ``tf.Variable`` so they are checkpointed and exported with the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from configs.schema import AnalyticMarketConfig, FeaturesConfig, LOBMarketConfig, ReplayMarket
from envs.layout import BID, CASH, INVENTORY, MID, TIME_LEFT

TensorDict = Mapping[str, tf.Tensor]

BOOK = "book"
ORDERS = "orders"
"""Observation keys of the order-book market's depth and the agent's own orders."""

SCALAR_SHAPES: dict[str, tuple[int, ...]] = {
    INVENTORY: (1,),
    TIME_LEFT: (1,),
    MID: (1,),
    CASH: (1,),
}
"""Single-market shapes of the keys every market publishes (:mod:`envs.layout`)."""

_PRICE, _SIZE = 0, 1  # last axis of ``book``
_ASK = 1 - BID
_REMAINING, _AHEAD = 1, 2  # last axis of ``orders``


@dataclass(frozen=True)
class MarketScales:
    """The market's natural scales, used to make features O(1).

    :param q_max: inventory bound (lots).
    :param horizon: episode length T (time units).
    :param price_scale: a typical price move over the horizon (price units), e.g. sigma sqrt(T).
    :param depth_scale: a typical queue size at a price level (lots), e.g. the mean stationary
        queue ``lambda(i) / theta(i)`` of the order flow (Cont-Stoikov-Talreja 2010).
    """

    q_max: float
    horizon: float
    price_scale: float = 1.0
    depth_scale: float = 1.0

    @classmethod
    def of(cls, market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket) -> MarketScales:
        """The scales of a configured market.

        Analytic: ``price_scale = sigma sqrt(T)`` (currency). Order book: ``price_scale =
        mid_volatility sqrt(T)`` (ticks) and ``depth_scale`` the mean over the levels of the
        stationary queue size times the mean order size (lots): ``lambda(i) / theta(i)`` for
        CST 2010 (section 1.2: level ``i`` without market orders is a birth-death queue with
        that mean), the mean of each queue's invariant law for the queue-reactive model.
        Replay: the tape's own :meth:`envs.replay.tape.Tape.scales` over ``T`` (the standard
        deviation of the recorded mid's change over ``T``, ticks; the mean displayed level, lots).
        """
        if isinstance(market, AnalyticMarketConfig):
            return cls(market.q_max, market.T, max(market.sigma * market.T**0.5, 1e-9))
        if isinstance(market, ReplayMarket):
            # the recorded day's own scales (the tape's published summary, in its ticks and lots)
            from envs.replay.tape import load_tape

            tape = load_tape(market.data_paths(), market.format, market.binance_market,
                             market.symbol, market.levels)  # fmt: skip
            price, depth = tape.scales(market.T)
            return cls(market.q_max, market.T, max(price, 1e-9), max(depth, 1e-9))
        flow = market.market
        if flow.model == "queue_reactive" and flow.queue_reactive is not None:
            qr = flow.queue_reactive  # mean of each queue's invariant law (HLR 2015 s. 2.3.1)
            queues = [
                float(np.dot(np.arange(len(pi)), pi))
                for pi in (qr.invariant_distribution(i) for i in range(1, qr.n_queues + 1))
            ]
        else:
            queues = [lam / th for lam, th in zip(flow.limit_rates, flow.cancel_rates, strict=True)]
        return cls(
            q_max=market.q_max,
            horizon=market.T,
            price_scale=flow.mid_volatility * market.T**0.5,
            depth_scale=max(float(np.mean(queues)) * flow.mean_size, 1e-9),
        )


# ------------------------------------------------------------------------- the features
def inventory_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """``q / q_max`` in [-1, 1]."""
    return tf.cast(obs[INVENTORY], tf.float32) / scales.q_max


def time_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """``time_left / T`` in [0, 1]."""
    return tf.cast(obs[TIME_LEFT], tf.float32) / scales.horizon


def inventory_time_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """``(q / q_max) * (time_left / T)``: the inventory risk still to be carried.

    The Avellaneda-Stoikov reservation price shifts by ``q gamma sigma^2 (T - t)``: this
    product is the shape optimal skews take, given to the network directly.
    """
    return inventory_feature(obs, scales) * time_feature(obs, scales)


def inventory_squared_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """``(q / q_max)^2``: the running penalty's shape."""
    return tf.square(inventory_feature(obs, scales))


def cash_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """Cash over the price scale (rarely useful for the policy; there for diagnostics)."""
    return tf.cast(obs[CASH], tf.float32) / scales.price_scale


def mid_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """Mid over the price scale."""
    return tf.cast(obs[MID], tf.float32) / scales.price_scale


def _book_sizes(obs: TensorDict) -> tf.Tensor:
    """Lots per level and side ``(batch, L, 2)``."""
    return tf.cast(obs[BOOK], tf.float32)[..., _SIZE]


def book_depth_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """Lots at each of the ``L`` levels from each best, over ``depth_scale``: ``(batch, 2L)``,
    the bid levels (best first) then the ask levels (docs/agents.md#features)."""
    sizes = _book_sizes(obs) / scales.depth_scale
    return tf.concat([sizes[:, :, BID], sizes[:, :, _ASK]], axis=-1)


def queue_imbalance_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """``(V_bid - V_ask) / (V_bid + V_ask)`` of the best queues, in [-1, 1] (0 when both are
    empty); it predicts the sign of the next mid move (Gould & Bonart 2016, "Queue imbalance as a
    one-tick-ahead price predictor in a limit order book", Market Microstructure and
    Liquidity 2)."""
    best = _book_sizes(obs)[:, 0, :]
    bid, ask = best[:, BID : BID + 1], best[:, _ASK : _ASK + 1]
    return tf.math.divide_no_nan(bid - ask, bid + ask)


def microprice_offset_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """Volume-weighted mid minus the observed mid, in ticks.

    ``I P_ask + (1 - I) P_bid - mid`` with ``I = V_bid / (V_bid + V_ask)`` at the best quotes:
    the weighted mid-price that Stoikov (2018, "The micro-price: a high-frequency estimator of
    future prices", Quantitative Finance 18(12)) starts from (his micro-price refines it with a
    Markov model of the imbalance). The plain mid of the best quotes when both queues are empty.
    """
    book = tf.cast(obs[BOOK], tf.float32)
    bid_px, ask_px = book[:, 0, BID, _PRICE : _PRICE + 1], book[:, 0, _ASK, _PRICE : _PRICE + 1]
    bid_sz, ask_sz = book[:, 0, BID, _SIZE : _SIZE + 1], book[:, 0, _ASK, _SIZE : _SIZE + 1]
    weight = tf.where(bid_sz + ask_sz > 0, tf.math.divide_no_nan(bid_sz, bid_sz + ask_sz), 0.5)
    micro = weight * ask_px + (1.0 - weight) * bid_px
    return micro - tf.cast(obs[MID], tf.float32)


def spread_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """Best ask minus best bid, in ticks (>= 1)."""
    book = tf.cast(obs[BOOK], tf.float32)
    return book[:, 0, _ASK, _PRICE : _PRICE + 1] - book[:, 0, BID, _PRICE : _PRICE + 1]


def queue_position_feature(obs: TensorDict, scales: MarketScales) -> tf.Tensor:
    """The agent's own orders: ``(batch, 4)`` = whether a bid and an ask rest (0/1), then the
    lots ahead of each in its queue over ``depth_scale`` (0 when no order rests)."""
    orders = tf.cast(obs[ORDERS], tf.float32)
    live = tf.cast(orders[:, :, _REMAINING] > 0, tf.float32)
    return tf.concat([live, live * orders[:, :, _AHEAD] / scales.depth_scale], axis=-1)


FEATURES: dict[str, Callable[[TensorDict, MarketScales], tf.Tensor]] = {
    "inventory": inventory_feature,
    "time_left": time_feature,
    "inventory_time": inventory_time_feature,
    "inventory_squared": inventory_squared_feature,
    "cash": cash_feature,
    "mid": mid_feature,
    "book_depth": book_depth_feature,
    "queue_imbalance": queue_imbalance_feature,
    "microprice_offset": microprice_offset_feature,
    "spread": spread_feature,
    "queue_position": queue_position_feature,
}
"""Every feature by name; configs list names from here."""

FEATURE_KEYS: dict[str, tuple[str, ...]] = {
    "inventory": (INVENTORY,),
    "time_left": (TIME_LEFT,),
    "inventory_time": (INVENTORY, TIME_LEFT),
    "inventory_squared": (INVENTORY,),
    "cash": (CASH,),
    "mid": (MID,),
    "book_depth": (BOOK,),
    "queue_imbalance": (BOOK,),
    "microprice_offset": (BOOK, MID),
    "spread": (BOOK,),
    "queue_position": (ORDERS,),
}
"""The observation keys each feature reads."""


# ------------------------------------------------------------------------- the pipeline
def observation_shapes(space: object) -> dict[str, tuple[int, ...]]:
    """Single-market shapes of a ``gymnasium.spaces.Dict`` observation space, by key."""
    spaces = getattr(space, "spaces", None)
    if not isinstance(spaces, Mapping):
        raise TypeError(f"expected a Dict observation space, got {type(space).__name__}")
    return {str(key): tuple(box.shape) for key, box in spaces.items()}


class FeaturePipeline(tf.Module):
    """Concatenation of named features, with optional running normalization.

    :param names: feature names from :data:`FEATURES`, in order.
    :param scales: the market's scales.
    :param normalize: standardize each dimension by running statistics of the data seen
        through :meth:`update` (frozen in evaluation and in the exported model).
    :param observation_shapes: the keys the market publishes and their single-market shapes
        (:func:`observation_shapes` of its observation space); default: the scalar keys of
        :mod:`envs.layout` (:data:`SCALAR_SHAPES`).
    :raises ValueError: for an unknown feature, or one reading a key the market does not
        publish (the message names the feature and the key).

    :attr:`observation_keys` are the keys the features read, in order of first use: the
    pipeline's (and the exported model's) input.
    """

    def __init__(
        self,
        names: Sequence[str],
        scales: MarketScales,
        normalize: bool = False,
        observation_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__(name="feature_pipeline")
        unknown = [n for n in names if n not in FEATURES]
        if unknown or not names:
            raise ValueError(f"unknown or no features {unknown}; known: {sorted(FEATURES)}")
        shapes = dict(SCALAR_SHAPES if observation_shapes is None else observation_shapes)
        for name in names:
            missing = [key for key in FEATURE_KEYS[name] if key not in shapes]
            if missing:
                raise ValueError(
                    f"feature {name!r} needs the observation key {missing[0]!r}, which this "
                    f"market does not publish (its keys: {sorted(shapes)})"
                )
        self.names = tuple(names)
        self.scales = scales
        self.normalize = normalize
        keys = dict.fromkeys(key for name in names for key in FEATURE_KEYS[name])
        self.observation_keys = tuple(keys)
        self.observation_shapes = {k: tuple(int(d) for d in shapes[k]) for k in keys}
        probe = {k: tf.zeros((1, *s), tf.float32) for k, s in self.observation_shapes.items()}
        self.dim = int(self._raw(probe).shape[-1])
        self.count = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="count")
        self.mean = tf.Variable(tf.zeros(self.dim, tf.float64), trainable=False, name="mean")
        self.m2 = tf.Variable(tf.zeros(self.dim, tf.float64), trainable=False, name="m2")

    @property
    def spec(self) -> tf.TensorSpec:
        """The spec of the state tensor: float32 ``(None, dim)``."""
        return tf.TensorSpec((None, self.dim), tf.float32, name="features")

    @property
    def input_spec(self) -> dict[str, tf.TensorSpec]:
        """The raw observation the pipeline reads: float32 ``(None, *shape)`` per key."""
        return {
            k: tf.TensorSpec((None, *shape), tf.float32, name=k)
            for k, shape in self.observation_shapes.items()
        }

    def _raw(self, obs: TensorDict) -> tf.Tensor:
        parts = [FEATURES[name](obs, self.scales) for name in self.names]
        return tf.concat([tf.reshape(p, (tf.shape(p)[0], -1)) for p in parts], axis=-1)

    def raw(self, obs: TensorDict) -> tf.Tensor:
        """Unnormalized features of an observation batch (arrays or tensors): (batch, dim).

        Replay buffers store these, so that stored data never goes stale as the
        normalization statistics move; :meth:`standardize` is applied when they are used.
        """
        return self._raw(
            {k: tf.convert_to_tensor(obs[k], tf.float32) for k in self.observation_keys}
        )

    def standardize(self, x: tf.Tensor) -> tf.Tensor:
        """``(x - mean) / std`` with the running statistics (identity unless ``normalize``)."""
        x = tf.convert_to_tensor(x, tf.float32)
        if not self.normalize:
            return x
        var = tf.where(self.count > 1.0, self.m2 / tf.maximum(self.count - 1.0, 1.0), 1.0)
        std = tf.cast(tf.sqrt(tf.maximum(var, 1e-8)), tf.float32)
        return (x - tf.cast(self.mean, tf.float32)) / std

    def __call__(self, obs: TensorDict) -> tf.Tensor:
        """The state tensor of an observation batch: float32 (batch, dim)."""
        return self.standardize(self.raw(obs))

    def update(self, obs: TensorDict) -> None:
        """Fold a batch into the running statistics (no-op unless ``normalize``)."""
        if not self.normalize:
            return
        x = tf.cast(self.raw(obs), tf.float64)
        n_b = tf.cast(tf.shape(x)[0], tf.float64)
        mean_b = tf.reduce_mean(x, axis=0)
        m2_b = tf.reduce_sum(tf.square(x - mean_b), axis=0)
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean.assign(self.mean + delta * n_b / n)
        self.m2.assign(self.m2 + m2_b + tf.square(delta) * self.count * n_b / n)
        self.count.assign(n)

    @classmethod
    def from_config(
        cls,
        features: FeaturesConfig,
        market: AnalyticMarketConfig | LOBMarketConfig | ReplayMarket,
        observation_space: object,
    ) -> FeaturePipeline:
        """The pipeline a config describes, for its market and that market's observation space
        (``env.single_observation_space``); a feature the market cannot feed fails here."""
        return cls(
            features.names,
            MarketScales.of(market),
            normalize=features.normalize,
            observation_shapes=observation_shapes(observation_space),
        )

    def numpy(self, obs: Mapping[str, np.ndarray], raw: bool = False) -> np.ndarray:
        """Features as a float32 numpy array (``raw``: unnormalized, as replay buffers store)."""
        return np.asarray(self.raw(obs) if raw else self(obs), np.float32)

"""Features: raw observation batch -> one float32 ``tf.Tensor`` state of shape (batch, dim).

Each feature is a pure function of the observation dict (tensors with a leading batch
axis, keys of :mod:`envs.layout`) returning a float32 ``(batch, width)`` tensor. They are
written with TensorFlow ops only, so the same code runs in data collection, inside the
agent's compiled step, and inside the exported SavedModel (DESIGN.md section 5).

:class:`FeaturePipeline` concatenates the configured features and, optionally, keeps
running normalization statistics (mean and variance per dimension, Chan et al. parallel
update) as ``tf.Variable`` so they are checkpointed and exported with the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from envs.layout import CASH, INVENTORY, MID, TIME_LEFT

TensorDict = Mapping[str, tf.Tensor]


@dataclass(frozen=True)
class MarketScales:
    """The market's natural scales, used to make features O(1).

    :param q_max: inventory bound (lots).
    :param horizon: episode length T (time units).
    :param price_scale: a typical price move over the horizon (price units), e.g. sigma sqrt(T).
    """

    q_max: float
    horizon: float
    price_scale: float = 1.0


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


FEATURES: dict[str, Callable[[TensorDict, MarketScales], tf.Tensor]] = {
    "inventory": inventory_feature,
    "time_left": time_feature,
    "inventory_time": inventory_time_feature,
    "inventory_squared": inventory_squared_feature,
    "cash": cash_feature,
    "mid": mid_feature,
}
"""Every feature by name; configs list names from here."""


# ------------------------------------------------------------------------- the pipeline
class FeaturePipeline(tf.Module):
    """Concatenation of named features, with optional running normalization.

    :param names: feature names from :data:`FEATURES`, in order.
    :param scales: the market's scales.
    :param normalize: standardize each dimension by running statistics of the data seen
        through :meth:`update` (frozen in evaluation and in the exported model).
    :param observation_keys: the raw observation keys the pipeline reads (its input spec).
    """

    def __init__(
        self,
        names: Sequence[str],
        scales: MarketScales,
        normalize: bool = False,
        observation_keys: Sequence[str] = (INVENTORY, TIME_LEFT, MID, CASH),
    ) -> None:
        super().__init__(name="feature_pipeline")
        unknown = [n for n in names if n not in FEATURES]
        if unknown or not names:
            raise ValueError(f"unknown or no features {unknown}; known: {sorted(FEATURES)}")
        self.names = tuple(names)
        self.scales = scales
        self.normalize = normalize
        self.observation_keys = tuple(observation_keys)
        probe = {k: tf.zeros((1, 1), tf.float32) for k in self.observation_keys}
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
        """The raw observation the pipeline reads: float32 ``(None, 1)`` per key."""
        return {k: tf.TensorSpec((None, 1), tf.float32, name=k) for k in self.observation_keys}

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

    def numpy(self, obs: Mapping[str, np.ndarray], raw: bool = False) -> np.ndarray:
        """Features as a float32 numpy array (``raw``: unnormalized, as replay buffers store)."""
        return np.asarray(self.raw(obs) if raw else self(obs), np.float32)

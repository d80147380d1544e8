"""Order-book features: values on hand-made books, the keys they need, the market pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.params import TOKYO_CST
from configs.schema import AnalyticMarketConfig, FeaturesConfig, LOBMarketConfig
from envs.analytic import AnalyticMarketVectorEnv
from envs.lob.env import LOBMarketEnv, LOBMarketVectorEnv
from features import FeatureObservation, FeaturePipeline, MarketScales
from features.pipeline import observation_shapes

L = 3
SCALES = MarketScales(q_max=10.0, horizon=60.0, price_scale=8.0, depth_scale=2.0)
LOB_NAMES = ["book_depth", "queue_imbalance", "microprice_offset", "spread", "queue_position"]


def book_obs(bid_px, ask_px, bid_sz, ask_sz, mid=None, orders=None):
    """A batch of one market: levels k = 0..L-1 from each best, one tick apart."""
    book = np.zeros((1, L, 2, 2), np.float32)
    book[0, :, 0, 0] = bid_px - np.arange(L)
    book[0, :, 1, 0] = ask_px + np.arange(L)
    book[0, :, 0, 1] = bid_sz
    book[0, :, 1, 1] = ask_sz
    mid = 0.5 * (bid_px + ask_px) if mid is None else mid
    return {
        "inventory": np.array([[2.0]], np.float32),
        "time_left": np.array([[30.0]], np.float32),
        "mid": np.array([[mid]], np.float32),
        "cash": np.zeros((1, 1), np.float32),
        "book": book,
        "orders": np.zeros((1, 2, 3), np.float32) if orders is None else orders,
    }


SHAPES = {k: v.shape[1:] for k, v in book_obs(100, 101, [1] * L, [1] * L).items()}


def features(name, obs):
    return FeaturePipeline([name], SCALES, observation_shapes=SHAPES).numpy(obs)[0]


def test_book_features_have_their_documented_values():
    obs = book_obs(100, 102, bid_sz=[3, 4, 5], ask_sz=[1, 0, 2])
    np.testing.assert_allclose(features("book_depth", obs), [1.5, 2.0, 2.5, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(features("queue_imbalance", obs), [0.5])  # (3 - 1) / (3 + 1)
    np.testing.assert_allclose(features("spread", obs), [2.0])
    # weighted mid: I = 3/4, 0.75 * 102 + 0.25 * 100 = 101.5; the mid is 101
    np.testing.assert_allclose(features("microprice_offset", obs), [0.5])
    orders = np.array([[[99, 1, 6], [0, 0, 0]]], np.float32)  # a bid with 6 lots ahead, no ask
    obs = book_obs(100, 102, [3, 4, 5], [1, 0, 2], orders=orders)
    np.testing.assert_allclose(features("queue_position", obs), [1.0, 0.0, 3.0, 0.0])


def test_empty_best_queues_give_zero_imbalance_and_the_plain_mid():
    obs = book_obs(100, 101, bid_sz=[0, 1, 1], ask_sz=[0, 1, 1])
    np.testing.assert_allclose(features("queue_imbalance", obs), [0.0])
    np.testing.assert_allclose(features("microprice_offset", obs), [0.0])


@settings(max_examples=30, deadline=None)
@given(
    bid=st.integers(1, 50), ask=st.integers(1, 50), spread=st.integers(1, 4), shift=st.floats(-2, 2)
)
def test_imbalance_and_microprice_stay_within_their_bounds(bid, ask, spread, shift):
    obs = book_obs(100, 100 + spread, [bid, 1, 1], [ask, 1, 1], mid=100 + spread / 2 + shift)
    imbalance = features("queue_imbalance", obs)[0]
    assert -1.0 <= imbalance <= 1.0 and np.sign(imbalance) == np.sign(bid - ask)
    # the weighted mid lies between the best quotes
    micro = features("microprice_offset", obs)[0] + obs["mid"][0, 0]
    assert 100 - 1e-4 <= micro <= 100 + spread + 1e-4


def test_a_feature_the_market_cannot_feed_fails_at_construction_naming_feature_and_key():
    env = AnalyticMarketVectorEnv(num_envs=1, config=AnalyticMarketConfig())
    for name, key in (("queue_imbalance", "book"), ("queue_position", "orders")):
        with pytest.raises(ValueError, match=f"feature '{name}' needs the observation key '{key}'"):
            FeaturePipeline.from_config(
                FeaturesConfig(names=["inventory", name]), AnalyticMarketConfig(),
                env.single_observation_space,
            )  # fmt: skip


def test_the_order_book_pipeline_reads_the_markets_own_observation():
    market = LOBMarketConfig(T=20.0, n_steps=20)
    env = LOBMarketVectorEnv(num_envs=4, config=market)
    names = ["inventory", "time_left", *LOB_NAMES]
    pipe = FeaturePipeline.from_config(
        FeaturesConfig(names=names, normalize=True), market, env.single_observation_space
    )
    Lm = TOKYO_CST.n_levels
    assert pipe.dim == 2 + 2 * Lm + 1 + 1 + 1 + 4
    assert pipe.observation_keys == ("inventory", "time_left", "book", "mid", "orders")
    assert pipe.input_spec["book"].shape.as_list() == [None, Lm, 2, 2]
    # depth scale: mean stationary queue lambda(i) / theta(i) of the Tokyo order flow
    queues = np.divide(TOKYO_CST.limit_rates, TOKYO_CST.cancel_rates)
    assert pipe.scales.depth_scale == pytest.approx(queues.mean())
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(np.zeros((4, 2), np.float32))
    pipe.update(obs)
    compiled = tf.function(pipe.__call__, input_signature=[pipe.input_spec])
    inputs = {k: obs[k] for k in pipe.observation_keys}
    np.testing.assert_allclose(compiled(inputs).numpy(), pipe.numpy(obs), rtol=1e-5)
    spread = pipe.numpy(obs, raw=True)[:, 2 + 2 * Lm + 2]
    np.testing.assert_allclose(spread, obs["book"][:, 0, 1, 0] - obs["book"][:, 0, 0, 0])


def test_feature_wrapper_on_the_order_book_passes_check_env_and_checks_shapes():
    market = LOBMarketConfig(T=10.0, n_steps=10)
    env = LOBMarketEnv(config=market)
    pipe = FeaturePipeline(
        ["inventory", *LOB_NAMES], MarketScales.of(market),
        observation_shapes=observation_shapes(env.observation_space),
    )  # fmt: skip
    wrapped = FeatureObservation(env, pipe)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(wrapped)
    obs, _ = wrapped.reset(seed=0)
    assert obs.shape == (pipe.dim,) and obs.dtype == np.float32
    small = FeaturePipeline(["spread"], SCALES, observation_shapes=SHAPES)  # L = 3 levels
    with pytest.raises(ValueError, match="'book' of shape"):
        FeatureObservation(LOBMarketEnv(config=market), small)

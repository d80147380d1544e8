"""Feature functions, the pipeline's running normalization, and the flat-Box wrapper."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import tensorflow as tf
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.analytic import AnalyticMarketEnv
from features import FeatureObservation, FeaturePipeline, MarketScales

SCALES = MarketScales(q_max=10.0, horizon=2.0, price_scale=4.0)


def obs_batch(q, t, mid=None, cash=None):
    n = len(q)
    mid = np.full(n, 100.0) if mid is None else mid
    cash = np.zeros(n) if cash is None else cash
    return {
        "inventory": np.asarray(q, np.float32).reshape(-1, 1),
        "time_left": np.asarray(t, np.float32).reshape(-1, 1),
        "mid": np.asarray(mid, np.float32).reshape(-1, 1),
        "cash": np.asarray(cash, np.float32).reshape(-1, 1),
    }


def test_features_have_their_documented_values_and_order():
    pipe = FeaturePipeline(
        ["inventory", "time_left", "inventory_time", "inventory_squared"], SCALES
    )
    x = pipe.numpy(obs_batch([5, -10], [2.0, 0.5]))
    expected = np.array([[0.5, 1.0, 0.5, 0.25], [-1.0, 0.25, -0.25, 1.0]], np.float32)
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    assert pipe.dim == 4 and pipe.spec.shape.as_list() == [None, 4]


def test_unknown_feature_names_are_rejected_with_the_known_ones():
    with pytest.raises(ValueError, match="inventory_time"):
        FeaturePipeline(["inventory", "imbalance_typo"], SCALES)


@settings(max_examples=25, deadline=None)
@given(
    data=st.lists(st.floats(-10, 10), min_size=4, max_size=60),
    cut=st.integers(1, 3),
)
def test_running_statistics_equal_the_statistics_of_all_data(data, cut):
    q = np.asarray(data)
    t = np.linspace(0.1, 2.0, q.size)
    pipe = FeaturePipeline(["inventory", "time_left"], SCALES, normalize=True)
    bounds = np.linspace(0, q.size, cut + 2).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            pipe.update(obs_batch(q[lo:hi], t[lo:hi]))
    raw = pipe.numpy(obs_batch(q, t), raw=True).astype(np.float64)
    np.testing.assert_allclose(pipe.mean.numpy(), raw.mean(0), atol=1e-6)
    np.testing.assert_allclose(pipe.m2.numpy() / (q.size - 1), raw.var(0, ddof=1), atol=1e-5)
    z = pipe.numpy(obs_batch(q, t))
    keep = raw.std(0, ddof=1) > 1e-3
    np.testing.assert_allclose(z.mean(0)[keep], 0.0, atol=1e-4)


def test_without_normalization_update_changes_nothing():
    pipe = FeaturePipeline(["inventory"], SCALES)
    pipe.update(obs_batch([1, 2, 3], [1, 1, 1]))
    assert pipe.count.numpy() == 0.0
    np.testing.assert_allclose(pipe.numpy(obs_batch([3], [1])), [[0.3]], rtol=1e-6)


def test_pipeline_runs_inside_a_compiled_function_and_checkpoints(tmp_path):
    pipe = FeaturePipeline(["inventory", "inventory_time"], SCALES, normalize=True)
    pipe.update(obs_batch([1, -4, 7], [0.2, 1.0, 1.5]))
    compiled = tf.function(pipe.__call__, input_signature=[pipe.input_spec])
    batch = obs_batch([3, -2], [1.0, 0.4])
    assert pipe.observation_keys == ("inventory", "time_left")  # the keys its features read
    inputs = {k: batch[k] for k in pipe.observation_keys}
    np.testing.assert_allclose(compiled(inputs).numpy(), pipe.numpy(batch), rtol=1e-6)
    path = tf.train.Checkpoint(pipeline=pipe).save(str(tmp_path / "ckpt"))
    other = FeaturePipeline(["inventory", "inventory_time"], SCALES, normalize=True)
    tf.train.Checkpoint(pipeline=other).restore(path).assert_consumed()
    np.testing.assert_allclose(other.numpy(batch), pipe.numpy(batch), rtol=1e-6)


def test_feature_wrapper_passes_check_env():
    env = AnalyticMarketEnv(n_steps=20, q_max=5)
    pipe = FeaturePipeline(["inventory", "time_left", "inventory_time"],
                           MarketScales(q_max=5, horizon=1.0))  # fmt: skip
    wrapped = FeatureObservation(env, pipe)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(wrapped)
    obs, _ = wrapped.reset(seed=0)
    assert obs.shape == (3,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs, [0.0, 1.0, 0.0])

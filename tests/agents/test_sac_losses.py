"""SAC's pieces against hand computations: squashed log-density, the three losses, Polyak.

Networks are tiny and the action noise is injected, so every number is recomputed here in
float64 numpy from the networks' weights, independently of TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from agents.tf_sac.critic import TwinQ, polyak_update
from agents.tf_sac.learner import SACConfig, SACLearner
from agents.tf_sac.policy import LOG_STD_MAX, LOG_STD_MIN, SquashedGaussianActor
from agents.tf_sac.replay import Batch

LOG_2PI = np.log(2 * np.pi)


# ----------------------------------------------------------------------------- references
def log_one_minus_tanh_sq(u):
    """log(1 - tanh(u)^2) = log sech(u)^2 = log 4 - 2|u| - 2 log(1 + exp(-2|u|)), stable."""
    a = np.abs(u)
    return np.log(4.0) - 2.0 * a - 2.0 * np.log1p(np.exp(-2.0 * a))


def squashed_log_prob(u, mean, log_std):
    """The direct formula: sum_j log N(u_j; mean_j, std_j) - sum_j log(1 - tanh(u_j)^2)."""
    std = np.exp(log_std)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * LOG_2PI
    return np.sum(log_normal - log_one_minus_tanh_sq(u), axis=-1)


def np_mlp(mlp, x):
    """The MLP's forward pass in float64 numpy (ensemble members broadcast over axis 0)."""
    n = len(mlp.kernels)
    for i, (w, b) in enumerate(zip(mlp.kernels, mlp.biases, strict=True)):
        x = np.matmul(x, w.numpy().astype(np.float64)) + b.numpy().astype(np.float64)
        if i < n - 1:
            x = np.maximum(x, 0.0)
    return x


def np_actor(actor, obs, noise):
    out = np_mlp(actor.net, obs)
    d = actor.action_dim
    mean, log_std = out[:, :d], np.clip(out[:, d:], LOG_STD_MIN, LOG_STD_MAX)
    u = mean + np.exp(log_std) * noise
    return np.tanh(u), squashed_log_prob(u, mean, log_std)


def np_twin_q(critic, obs, action):
    return np_mlp(critic.net, np.concatenate([obs, action], axis=-1))[..., 0]  # (2, B)


def linear_actor(mean, log_std):
    """An actor whose row ``i`` output is exactly ``mean[i], log_std[i]`` for obs ``e_i``."""
    n, d = mean.shape
    actor = SquashedGaussianActor(obs_dim=n, action_dim=d, hidden_sizes=(n,), seed=0)
    actor.net.kernels[0].assign(tf.eye(n))
    actor.net.biases[0].assign(tf.zeros(n))
    actor.net.kernels[1].assign(np.concatenate([mean, log_std], axis=1).astype(np.float32))
    actor.net.biases[1].assign(tf.zeros(2 * d))
    return actor, tf.eye(n)


# ----------------------------------------------------------------------------- the actor
MEAN = np.array([[0.0, 0.3], [1.5, -2.0], [7.0, -8.0], [-0.7, 0.2], [0.1, 2.5]])
LOG_STD = np.array([[0.0, -1.0], [-0.5, 0.4], [0.3, 0.5], [-3.0, 1.0], [1.0, -2.0]])
NOISE = np.array([[0.0, 1.0], [-1.2, 0.5], [2.0, -1.5], [0.3, -0.1], [3.0, 2.0]])


def test_squashed_log_prob_matches_the_direct_formula():
    actor, obs = linear_actor(MEAN, LOG_STD)
    action, log_prob = actor.sample_and_log_prob(obs, tf.constant(NOISE, tf.float32))
    u = MEAN + np.exp(LOG_STD) * NOISE
    np.testing.assert_allclose(action.numpy(), np.tanh(u), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        log_prob.numpy(), squashed_log_prob(u, MEAN, LOG_STD), rtol=1e-5, atol=1e-4
    )
    # rows 2 and 4 saturate (|u| > 8); where |u| > ~9.5 the naive float32 formula gives -inf
    assert np.all(np.isfinite(log_prob.numpy()))
    with np.errstate(divide="ignore"):
        naive32 = np.log1p(-np.tanh(u.astype(np.float32)) ** 2)
    assert np.isneginf(naive32).any()


def test_reference_formula_agrees_with_the_naive_one_where_that_is_accurate():
    u = np.linspace(-4, 4, 41)
    np.testing.assert_allclose(log_one_minus_tanh_sq(u), np.log1p(-np.tanh(u) ** 2), rtol=1e-9)


def test_log_prob_agrees_with_the_tfp_distribution_at_unsaturated_actions():
    actor, obs = linear_actor(MEAN[[0, 3]], LOG_STD[[0, 3]])
    noise = tf.constant(NOISE[[0, 3]], tf.float32)
    action, log_prob = actor.sample_and_log_prob(obs, noise)
    by_inversion = actor.distribution(obs).log_prob(action)
    np.testing.assert_allclose(log_prob.numpy(), by_inversion.numpy(), rtol=1e-4)


def test_log_std_is_clipped():
    mean = np.zeros((2, 2))
    log_std = np.array([[5.0, -30.0], [1.0, -1.0]])
    actor, obs = linear_actor(mean, log_std)
    _, got = actor(obs)
    np.testing.assert_allclose(got.numpy(), [[LOG_STD_MAX, LOG_STD_MIN], [1.0, -1.0]], rtol=1e-6)


def test_deterministic_action_is_tanh_of_the_mean_and_samples_stay_in_bounds():
    actor, obs = linear_actor(MEAN, LOG_STD)
    np.testing.assert_allclose(actor.deterministic(obs).numpy(), np.tanh(MEAN), rtol=1e-6)
    np.testing.assert_allclose(actor.deterministic_action(obs.numpy()), np.tanh(MEAN), rtol=1e-6)
    action, log_prob = actor.sample_and_log_prob(tf.tile(obs, [200, 1]))  # noise from actor.rng
    assert np.all(np.abs(action.numpy()) <= 1.0)
    assert np.all(np.isfinite(log_prob.numpy()))


def test_sample_is_reparameterized():
    actor, obs = linear_actor(MEAN[:1], LOG_STD[:1])
    noise = tf.constant(NOISE[1:2], tf.float32)
    with tf.GradientTape() as tape:
        action, _ = actor.sample_and_log_prob(obs, noise)
        total = tf.reduce_sum(action)
    grads = tape.gradient(total, actor.net.kernels[1])
    # d tanh(mean + std eps) / d mean = 1 - tanh(u)^2, the gradient through the sample
    u = MEAN[:1] + np.exp(LOG_STD[:1]) * NOISE[1:2]
    np.testing.assert_allclose(grads.numpy()[0, :2], (1 - np.tanh(u) ** 2)[0], rtol=1e-5)


# ----------------------------------------------------------------------------- the losses
GAMMA, ALPHA = 0.9, 0.3
BATCH = Batch(
    obs=np.array([[0.1, -0.2, 0.3], [1.0, 0.5, -0.5], [-0.3, 0.8, 0.0], [0.0, 0.0, 1.0]]),
    action=np.array([[0.5, -0.5], [0.9, 0.1], [-0.2, 0.0], [0.3, 0.7]]),
    reward=np.array([1.0, -0.5, 0.25, 2.0]),
    next_obs=np.array([[0.2, -0.1, 0.2], [0.9, 0.6, -0.4], [-0.2, 0.7, 0.1], [0.1, 0.0, 0.9]]),
    terminated=np.array([0.0, 1.0, 0.0, 0.0]),
    truncated=np.array([0.0, 0.0, 1.0, 0.0]),
)
BATCH32 = Batch(*(x.astype(np.float32) for x in BATCH))
NEXT_NOISE = np.array([[0.5, -1.0], [0.1, 0.2], [-0.7, 1.3], [1.1, 0.0]])
PI_NOISE = np.array([[-0.4, 0.6], [1.5, -0.2], [0.0, 0.9], [-1.0, -1.0]])


@pytest.fixture(scope="module")
def learner():
    config = SACConfig(hidden_sizes=(5, 4), gamma=GAMMA, initial_alpha=ALPHA, jit_compile=False)
    sac = SACLearner(obs_dim=3, action_dim=2, config=config, seed=7)
    # make the target critic differ from the online one, so a mix-up shows
    rng = np.random.default_rng(0)
    for v in sac.target_critic.variables:
        v.assign_add(rng.normal(0, 0.3, v.shape).astype(np.float32))
    return sac


def np_target(sac, batch, noise):
    next_action, next_log_prob = np_actor(sac.actor, batch.next_obs, noise)
    next_q = np_twin_q(sac.target_critic, batch.next_obs, next_action).min(axis=0)
    return batch.reward + GAMMA * (1 - batch.terminated) * (next_q - ALPHA * next_log_prob)


def test_critic_loss_matches_numpy(learner):
    y = np_target(learner, BATCH, NEXT_NOISE)
    q = np_twin_q(learner.critic, BATCH.obs, BATCH.action)
    expected = 0.5 * ((q[0] - y) ** 2).mean() + 0.5 * ((q[1] - y) ** 2).mean()
    noise = tf.constant(NEXT_NOISE, tf.float32)
    np.testing.assert_allclose(learner.td_target(BATCH32, noise).numpy(), y, rtol=1e-5)
    got = learner.critic_loss(BATCH32, noise).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_termination_cuts_the_bootstrap_and_truncation_does_not(learner):
    noise = tf.constant(NEXT_NOISE, tf.float32)
    y = learner.td_target(BATCH32, noise).numpy()
    assert y[1] == pytest.approx(BATCH.reward[1])  # terminated: the reward alone
    flipped = BATCH32._replace(truncated=1.0 - BATCH32.truncated)
    np.testing.assert_array_equal(learner.td_target(flipped, noise).numpy(), y)
    terminated = BATCH32._replace(terminated=np.ones(4, np.float32))
    np.testing.assert_allclose(learner.td_target(terminated, noise).numpy(), BATCH.reward)
    # the truncated row (2) bootstraps: its target is not its reward
    assert abs(y[2] - BATCH.reward[2]) > 1e-3


@pytest.mark.parametrize(
    "fixture, reduce",
    [("learner", np.min), ("ensemble", np.mean)],
    ids=["pair-minimum", "ensemble-mean"],
)
def test_actor_loss_matches_numpy(request, fixture, reduce):
    """A pair's actor maximizes the minimum of its critics, an ensemble's their mean (REDQ)."""
    sac = request.getfixturevalue(fixture)
    action, log_prob = np_actor(sac.actor, BATCH.obs, PI_NOISE)
    q = reduce(np_twin_q(sac.critic, BATCH.obs, action), axis=0)
    expected = (ALPHA * log_prob - q).mean()
    got = sac.actor_loss(BATCH32.obs, tf.constant(PI_NOISE, tf.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_alpha_loss_matches_numpy(learner):
    _, log_prob = np_actor(learner.actor, BATCH.obs, PI_NOISE)
    target_entropy = -2.0  # -action_dim by default
    assert learner.target_entropy == target_entropy
    expected = -(np.log(ALPHA) * (log_prob + target_entropy)).mean()
    got = learner.alpha_loss(BATCH32.obs, tf.constant(PI_NOISE, tf.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_alpha_loss_gradient_pushes_alpha_toward_the_entropy_target(learner):
    # gradient wrt log_alpha is -(mean log pi + target_entropy) = entropy - target
    obs, noise = BATCH32.obs, tf.constant(PI_NOISE, tf.float32)
    with tf.GradientTape() as tape:
        loss = learner.alpha_loss(obs, noise)
    grad = tape.gradient(loss, learner.log_alpha).numpy()
    _, log_prob = np_actor(learner.actor, BATCH.obs, PI_NOISE)
    np.testing.assert_allclose(grad, -(log_prob.mean() - 2.0), rtol=1e-5)


# ----------------------------------------------------------------------------- Polyak
def test_polyak_update_by_hand():
    target = [tf.Variable([1.0, 2.0]), tf.Variable([[4.0]])]
    source = [tf.Variable([3.0, 6.0]), tf.Variable([[0.0]])]
    polyak_update(target, source, tau=0.25)
    np.testing.assert_array_equal(target[0].numpy(), [1.5, 3.0])
    np.testing.assert_array_equal(target[1].numpy(), [[3.0]])
    np.testing.assert_array_equal(source[0].numpy(), [3.0, 6.0])  # the source is untouched


def test_train_step_polyak_averages_the_targets():
    config = SACConfig(hidden_sizes=(8, 8), tau=0.3, jit_compile=False)
    sac = SACLearner(obs_dim=3, action_dim=2, config=config, seed=1)
    sac.train_step(BATCH32)  # targets now differ from the critics
    before = [v.numpy().astype(np.float64) for v in sac.target_critic.variables]
    sac.train_step(BATCH32)
    online = [v.numpy().astype(np.float64) for v in sac.critic.trainable_variables]
    for t, b, o in zip(sac.target_critic.variables, before, online, strict=True):
        np.testing.assert_allclose(t.numpy(), 0.3 * o + 0.7 * b, rtol=1e-6, atol=1e-7)
        assert not np.allclose(t.numpy(), o)


def test_twin_critics_are_independent_networks():
    critic = TwinQ(obs_dim=3, action_dim=2, hidden_sizes=(6,), seed=0)
    for k in critic.net.kernels:
        assert not np.allclose(k.numpy()[0], k.numpy()[1])
    q = critic(BATCH32.obs, BATCH32.action).numpy()
    assert q.shape == (2, 4)
    np.testing.assert_allclose(q, np_twin_q(critic, BATCH.obs, BATCH.action), rtol=1e-5)
    clone = critic.clone()
    np.testing.assert_array_equal(clone(BATCH32.obs, BATCH32.action).numpy(), q)


# ----------------------------------------------------------------------------- ensembles (REDQ)
@pytest.fixture(scope="module")
def ensemble():
    config = SACConfig(
        hidden_sizes=(5, 4), gamma=GAMMA, initial_alpha=ALPHA, jit_compile=False, n_critics=5
    )
    sac = SACLearner(obs_dim=3, action_dim=2, config=config, seed=7)
    rng = np.random.default_rng(1)
    for v in sac.target_critic.variables:
        v.assign_add(rng.normal(0, 0.3, v.shape).astype(np.float32))
    return sac


def test_an_ensemble_target_is_the_minimum_of_the_drawn_pair(ensemble):
    next_action, next_log_prob = np_actor(ensemble.actor, BATCH.next_obs, NEXT_NOISE)
    q_all = np_twin_q(ensemble.target_critic, BATCH.next_obs, next_action)
    assert q_all.shape == (5, 4)
    noise = tf.constant(NEXT_NOISE, tf.float32)
    for pair in ([0, 3], [4, 1], [2, 2]):
        next_q = q_all[pair].min(axis=0)
        y = BATCH.reward + GAMMA * (1 - BATCH.terminated) * (next_q - ALPHA * next_log_prob)
        got = ensemble.td_target(BATCH32, noise, tf.constant(pair)).numpy()
        np.testing.assert_allclose(got, y, rtol=1e-5)
    # the drawn pairs are 2 distinct members, all of them drawn in time
    drawn = {tuple(sorted(ensemble._target_subset().numpy().tolist())) for _ in range(200)}
    assert all(len(set(p)) == 2 and min(p) >= 0 and max(p) < 5 for p in drawn)
    assert len(drawn) == 10  # every pair of 5


def test_an_ensemble_critic_loss_sums_over_every_member(ensemble):
    y = ensemble.td_target(BATCH32, tf.constant(NEXT_NOISE, tf.float32), tf.constant([0, 1]))
    q_sa = np_twin_q(ensemble.critic, BATCH.obs, BATCH.action)
    expected_critic = 0.5 * ((q_sa - y.numpy()[None]) ** 2).mean(axis=1).sum()
    got_critic = ensemble.critic_loss(
        BATCH32, tf.constant(NEXT_NOISE, tf.float32), tf.constant([0, 1])
    ).numpy()
    np.testing.assert_allclose(got_critic, expected_critic, rtol=1e-5)


def test_an_ensemble_trains_under_xla_and_a_pair_is_refused():
    config = SACConfig(hidden_sizes=(8, 8), n_critics=4)
    sac = SACLearner(obs_dim=3, action_dim=2, config=config, seed=0)
    for _ in range(3):
        out = sac.train_step(BATCH32)
    assert np.isfinite(float(out["critic_loss"]))
    assert sac.trace_count == 1
    with pytest.raises(ValueError, match="at least 2"):
        TwinQ(obs_dim=3, action_dim=2, hidden_sizes=(4,), n_critics=1)


def test_selected_members_are_those_rows_of_the_whole_ensemble():
    critic = TwinQ(obs_dim=3, action_dim=2, hidden_sizes=(6, 5), seed=3, n_critics=6)
    whole = critic(BATCH32.obs, BATCH32.action).numpy()
    picked = critic(BATCH32.obs, BATCH32.action, tf.constant([4, 1])).numpy()
    np.testing.assert_allclose(picked, whole[[4, 1]], rtol=1e-6)

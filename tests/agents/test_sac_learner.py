"""The SAC learner as a whole: the compiled step, determinism, NaN guard, checkpoints, export."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
import tensorflow as tf

from agents.base import Policy
from agents.tf_sac.learner import SACConfig, SACLearner
from agents.tf_sac.policy import SACPolicy, load_saved_actor
from agents.tf_sac.replay import Batch, ReplayBuffer

OBS, ACT = 4, 2
HIDDEN = (16, 16)


def make(seed: int = 0, **overrides) -> SACLearner:
    config = SACConfig(hidden_sizes=HIDDEN, **{"jit_compile": False, **overrides})
    return SACLearner(OBS, ACT, config=config, seed=seed)


def batches(n: int, size: int = 32, seed: int = 0) -> list[Batch]:
    rng = np.random.default_rng(seed)
    buf = ReplayBuffer(1000, OBS, ACT, seed=seed)
    m = 500
    buf.add_batch(
        rng.normal(size=(m, OBS)), rng.uniform(-1, 1, (m, ACT)), rng.normal(size=m),
        rng.normal(size=(m, OBS)), rng.random(m) < 0.1, rng.random(m) < 0.1,
    )
    return [buf.sample(size) for _ in range(n)]


def params(sac: SACLearner) -> list[np.ndarray]:
    return [v.numpy() for v in sac.variables]


def assert_same(a: list[np.ndarray], b: list[np.ndarray], rtol: float = 0.0) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=0 if rtol == 0 else 1e-6)


# XLA compiles take seconds here: the compiled path is exercised where it matters (equality with
# the eager composition, the NaN guard, checkpoint restore) and the rest runs as a plain graph.


# ----------------------------------------------------------------------------- the step
def test_train_step_traces_once_whatever_the_batch_size():
    sac = make()
    for batch in batches(3, 32) + batches(2, 17):
        out = sac.train_step(batch)
    assert sac.trace_count == 1
    assert int(sac.step.numpy()) == 5
    assert set(out) == {"critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "q_mean"}
    for value in out.values():
        assert value.shape == () and np.isfinite(value.numpy())


@pytest.mark.parametrize("mode", ["graph", "xla"])
def test_train_step_is_the_public_losses_composed(mode):
    """The compiled step equals critic, actor and alpha steps taken eagerly, by hand, from the
    public loss methods with the same noise."""
    sac = make(seed=3, jit_compile=mode == "xla")
    ref = make(seed=3, run_eagerly=True, jit_compile=False)
    for batch in batches(3, 16, seed=1):
        noise = ref.rng.normal((2, 16, ACT))  # the draw train_step makes, from the same stream
        _manual_step(ref, batch, noise)
        sac.train_step(batch)
    assert sac.trace_count == 1
    assert_same(params(sac), params(ref), rtol=2e-5)
    # the NaN guard works on the compiled step too (XLA drops CheckNumerics inside a cluster);
    # checked here to save a compile
    bad = batch._replace(reward=np.full_like(batch.reward, np.nan))
    with pytest.raises(tf.errors.InvalidArgumentError, match="SAC critic_loss: NaN or inf"):
        sac.train_step(bad)


def _manual_step(ref: SACLearner, batch: Batch, noise: tf.Tensor) -> None:
    critic_vars = ref.critic.trainable_variables
    with tf.GradientTape() as tape:
        loss = ref.critic_loss(batch, noise[0])
    critic_grads = tape.gradient(loss, critic_vars)
    ref.critic_optimizer.apply_gradients(zip(critic_grads, critic_vars, strict=True))
    actor_vars = ref.actor.trainable_variables
    with tf.GradientTape() as tape:
        loss = ref.actor_loss(batch.obs, noise[1])
    actor_grads = tape.gradient(loss, actor_vars)
    with tf.GradientTape() as tape:  # the temperature sees the actor before its step
        loss = ref.alpha_loss(batch.obs, noise[1])
    alpha_grad = tape.gradient(loss, ref.log_alpha)
    ref.actor_optimizer.apply_gradients(zip(actor_grads, actor_vars, strict=True))
    ref.alpha_optimizer.apply_gradients([(alpha_grad, ref.log_alpha)])
    for t, s in zip(ref.target_critic.variables, critic_vars, strict=True):
        t.assign(ref.tau * s + (1 - ref.tau) * t)
    ref.step.assign_add(1)


def test_same_seed_same_parameters_different_seed_different():
    """(XLA's determinism shows in the checkpoint test: a restored copy steps bit for bit.)"""
    data = batches(4)
    runs = []
    for _ in range(2):
        sac = make(seed=5)
        for batch in data:
            sac.train_step(batch)
        runs.append(params(sac))
    assert_same(runs[0], runs[1])
    other = params(make(seed=6))
    assert not any(np.array_equal(x, y) for x, y in zip(runs[0][:6], other[:6], strict=True))
    sac.train_step(data[0])
    assert not all(np.array_equal(x, y) for x, y in zip(runs[0], params(sac), strict=True))


@pytest.mark.parametrize(
    ("mode", "field"), [("eager", "reward"), ("eager", "obs"), ("graph", "obs")]
)
def test_nan_in_a_batch_raises(mode, field):
    sac = make(run_eagerly=mode == "eager")
    batch = batches(1)[0]
    bad = getattr(batch, field).copy()
    bad[3] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="SAC .*loss: NaN or inf"):
        sac.train_step(batch._replace(**{field: bad}))


def test_alpha_stays_fixed_when_not_learned_and_moves_when_learned():
    fixed = make(learn_alpha=False, initial_alpha=0.2, run_eagerly=True)
    learned = make(initial_alpha=0.2, run_eagerly=True)
    for batch in batches(3):
        out = fixed.train_step(batch)
        learned.train_step(batch)
    assert out["alpha_loss"].numpy() == 0.0
    assert fixed.alpha.numpy() == pytest.approx(0.2)
    assert learned.alpha.numpy() != pytest.approx(0.2, abs=1e-6)


def test_learns_a_one_step_bandit():
    """Reward -|a - target|^2, every step terminal, uniform random data (SAC is off-policy):
    the greedy action goes to the target."""
    target = np.array([0.5, -0.3], np.float32)
    config = SACConfig(hidden_sizes=(64,), critic_lr=1e-2, actor_lr=2e-3, learn_alpha=False,
                       initial_alpha=0.01, jit_compile=False)
    sac = SACLearner(OBS, ACT, config, seed=0)
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(2000, OBS, ACT, seed=0)
    obs = rng.normal(size=(2000, OBS))
    action = rng.uniform(-1, 1, (2000, ACT))
    reward = -np.sum((action - target) ** 2, axis=1)
    buf.add_batch(obs, action, reward, obs, np.ones(2000), np.zeros(2000))
    before = sac.act(obs[:64], deterministic=True)
    for _ in range(400):
        sac.train_step(buf.sample(128))
    greedy = sac.act(obs[:64], deterministic=True)
    assert np.abs(before.mean(axis=0) - target).max() > 0.25
    np.testing.assert_allclose(greedy.mean(axis=0), target, atol=0.12)


# ----------------------------------------------------------------------------- acting
def test_act_shapes_bounds_and_its_own_noise():
    sac = make()
    obs = np.random.default_rng(0).normal(size=(9, OBS))
    rng_state = sac.rng.state.numpy().copy()
    action = sac.act(obs)
    assert action.shape == (9, ACT) and action.dtype == np.float32
    assert np.all(np.abs(action) <= 1.0)
    np.testing.assert_array_equal(sac.rng.state.numpy(), rng_state)  # training noise untouched
    np.testing.assert_allclose(
        sac.act(obs, deterministic=True), sac.actor.deterministic(tf.constant(obs, tf.float32))
    )
    assert not np.allclose(sac.act(obs), action)


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_restores_everything(tmp_path):
    """Under XLA (the default): also shows that two compiled copies step bit for bit alike."""
    jit_compile = True
    data = batches(5)
    sac = make(seed=1, jit_compile=jit_compile)
    for batch in data[:3]:
        sac.train_step(batch)
    path = tf.train.Checkpoint(learner=sac).save(str(tmp_path / "ckpt"))
    obs = data[0].obs

    restored = make(seed=99, jit_compile=jit_compile)  # other seed: every value must come back
    tf.train.Checkpoint(learner=restored).restore(path).assert_consumed()
    assert_same(params(restored), params(sac))
    assert int(restored.step.numpy()) == 3
    for opt in ("actor_optimizer", "critic_optimizer", "alpha_optimizer"):
        assert_same(
            [v.numpy() for v in getattr(restored, opt).variables],
            [v.numpy() for v in getattr(sac, opt).variables],
        )
    np.testing.assert_array_equal(restored.act(obs, True), sac.act(obs, True))
    np.testing.assert_array_equal(restored.act(obs), sac.act(obs))  # the actor's rng too
    for batch in data[3:]:
        a, b = sac.train_step(batch), restored.train_step(batch)
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    assert_same(params(restored), params(sac))


# ----------------------------------------------------------------------------- export
class Normalizer(tf.Module):
    """A stand-in for the feature pipeline's normalization: variables that must be saved."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = tf.Variable(tf.fill((OBS,), 0.5))
        self.scale = tf.Variable(tf.fill((OBS,), 2.0))

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return (x - self.mean) / self.scale


def test_export_and_load_the_deterministic_policy(tmp_path):
    sac = make(seed=2)
    sac.train_step(batches(1)[0])
    obs = np.random.default_rng(1).normal(size=(6, OBS)).astype(np.float32)

    sac.export_saved_model(tmp_path / "plain")
    loaded = load_saved_actor(tmp_path / "plain")
    np.testing.assert_allclose(loaded.deterministic_action(obs), sac.act(obs, True), rtol=1e-6)

    norm = Normalizer()
    sac.export_saved_model(tmp_path / "normalized", featurize_fn=norm)
    norm.mean.assign(tf.zeros(OBS))  # the SavedModel keeps the values it was saved with
    loaded = load_saved_actor(tmp_path / "normalized")
    expected = sac.act((obs - 0.5) / 2.0, True)
    np.testing.assert_allclose(loaded.deterministic_action(obs), expected, rtol=1e-5, atol=1e-6)


class DictFeatures(tf.Module):
    """A stand-in for the feature pipeline: an observation dict to normalized features."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = tf.Variable(tf.fill((OBS,), 0.5))

    def standardize(self, obs: dict[str, tf.Tensor]) -> tf.Tensor:
        x = tf.concat([tf.cast(obs["inventory"], tf.float32), obs["time_left"]], axis=1)
        return x * self.scale


def test_export_with_the_features_takes_the_observation_dict(tmp_path):
    sac = make(seed=5)
    features = DictFeatures()
    spec = {
        "inventory": tf.TensorSpec((None, 2), tf.float64, name="inventory"),
        "time_left": tf.TensorSpec((None, 2), tf.float32, name="time_left"),
    }
    sac.export_saved_model(tmp_path / "m", featurize_fn=features.standardize, input_spec=spec)
    observation = {"inventory": np.arange(6.0).reshape(3, 2), "time_left": np.ones((3, 2))}
    expected = sac.act(features.standardize(observation).numpy(), deterministic=True)
    features.scale.assign(tf.ones(OBS))  # the SavedModel keeps its own copy
    loaded = load_saved_actor(tmp_path / "m")
    assert set(loaded.input_spec) == {"inventory", "time_left"}
    got = SACPolicy(loaded, featurize=None).act(observation)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_sac_policy_acts_on_observation_dicts(tmp_path):
    sac = make(seed=4)
    sac.export_saved_model(tmp_path / "model")

    def featurize(observation):
        return np.concatenate([observation["inventory"], observation["time_left"]], axis=1)

    observation = {
        "inventory": np.arange(10, dtype=np.float64).reshape(5, 2),
        "time_left": np.linspace(0, 1, 10).reshape(5, 2),
    }
    expected = sac.act(featurize(observation), deterministic=True)
    for source in (sac, load_saved_actor(tmp_path / "model"), sac.actor):
        policy = SACPolicy(source, featurize)
        assert isinstance(policy, Policy)
        got = policy.act(observation)
        assert got.dtype == np.float32 and got.shape == (5, ACT)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.raises(TypeError, match="deterministic_action"):
        SACPolicy(object(), featurize)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- config
def test_config_rejects_what_cannot_work():
    with pytest.raises(pydantic.ValidationError, match="run_eagerly"):
        SACConfig(run_eagerly=True, jit_compile=True)
    with pytest.raises(pydantic.ValidationError):
        SACConfig(gama=0.9)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        SACConfig(tau=0.0)
    assert SACLearner(OBS, 3, SACConfig(jit_compile=False, hidden_sizes=(4,))).target_entropy == -3


def test_assigned_learning_rates_reach_the_traced_step():
    """The optimizers read their rate from a variable: a schedule needs no retrace."""
    sac = make()
    data = batches(2)
    sac.train_step(data[0])
    for opt in (sac.actor_optimizer, sac.critic_optimizer, sac.alpha_optimizer):
        opt.learning_rate.assign(0.0)
    trained = [*sac.actor.trainable_variables, *sac.critic.trainable_variables, sac.log_alpha]
    assert not any(v.trainable for v in sac.target_critic.variables)
    assert {id(v) for v in sac.trainable_variables} == {id(v) for v in trained}
    before = [v.numpy() for v in trained]
    sac.train_step(data[1])
    assert_same([v.numpy() for v in trained], before)
    assert sac.trace_count == 1


def test_averaged_actor_follows_the_polyak_recursion_and_serves_the_policy():
    rate = 0.25
    sac = make(seed=2, actor_averaging=rate)
    assert sac.average_actor is not None and sac.policy_actor is sac.average_actor
    expected = [v.numpy() for v in sac.actor.trainable_variables]
    for batch in batches(3):
        sac.train_step(batch)
        live = [v.numpy() for v in sac.actor.trainable_variables]
        expected = [rate * x + (1 - rate) * e for x, e in zip(live, expected, strict=True)]
    averaged = [v.numpy() for v in sac.average_actor.trainable_variables]
    assert_same(averaged, expected, rtol=1e-5)
    assert not all(np.allclose(a, x) for a, x in zip(averaged, live, strict=True))
    features = np.random.default_rng(0).normal(size=(5, OBS)).astype(np.float32)
    np.testing.assert_allclose(
        sac.deterministic_action(features),
        sac.average_actor.deterministic(tf.constant(features)).numpy(),
        rtol=1e-6,
    )
    assert make(seed=2).average_actor is None

"""The Soft Actor-Critic learner: losses, one compiled train step, acting, export, checkpointing.

SAC as in Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications" (arXiv
1812.05905): twin critics with Polyak-averaged targets, a tanh-squashed Gaussian actor, and the
automatic entropy temperature (section 5, eq. 18). The update order follows Stable-Baselines3
and CleanRL: critics first, then the actor against the updated critics, then the temperature
from the actor's log-probabilities; all three read the temperature from before the step.

Checkpointing: the learner is a ``tf.Module`` whose attributes are every piece of training
state (actor, critic, target critic, the three optimizers and their slots, ``log_alpha``,
``step``, the noise generators), so ``tf.train.Checkpoint(learner=learner)`` saves and restores
all of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras

from agents.tf_sac.critic import TwinQ, polyak_update
from agents.tf_sac.policy import SquashedGaussianActor, _spawn, export_actor
from agents.tf_sac.replay import Batch
from configs.schema import SACConfig

NUMERICS_MESSAGE = "SAC {}: NaN or inf"
"""Message of the ``tf.errors.InvalidArgumentError`` a non-finite loss raises."""


class SACLearner(tf.Module):
    """Soft Actor-Critic for observations in ``R^obs_dim`` and actions in ``[-1, 1]^action_dim``.

    :param obs_dim: observation (feature) dimension.
    :param action_dim: action dimension.
    :param config: hyperparameters (:class:`SACConfig`).
    :param seed: seeds the networks' initialization and every random draw of the learner
        (independent streams derived with ``np.random.SeedSequence``); the same seed and the
        same batches give the same parameters.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        config: SACConfig | None = None,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.config = config = config or SACConfig()
        self.obs_dim = int(obs_dim)
        self.action_dim = int(action_dim)
        # Python floats, fixed here: baked into the traced graph as constants
        self.gamma = float(config.gamma)
        self.tau = float(config.tau)
        self.target_entropy = float(
            -self.action_dim if config.target_entropy is None else config.target_entropy
        )
        self.learn_alpha = bool(config.learn_alpha)
        actor_seed, critic_seed, train_seed = _spawn(seed, 3)

        self.actor = SquashedGaussianActor(
            self.obs_dim, self.action_dim, config.hidden_sizes, seed=actor_seed, name="actor"
        )
        self.n_critics = int(config.n_critics)
        self.critic = TwinQ(
            self.obs_dim, self.action_dim, config.hidden_sizes, seed=critic_seed, name="critic",
            n_critics=self.n_critics,
        )  # fmt: skip
        self.target_critic = self.critic.clone(name="target_critic")
        self.actor_averaging = config.actor_averaging
        self.average_actor: SquashedGaussianActor | None = None
        """Polyak average of the actor's iterates (``config.actor_averaging``), or None."""
        if self.actor_averaging is not None:
            self.average_actor = SquashedGaussianActor(
                self.obs_dim, self.action_dim, config.hidden_sizes, seed=actor_seed,
                name="average_actor",
            )  # fmt: skip
            for avg, live in zip(self.average_actor.trainable_variables,
                                 self.actor.trainable_variables, strict=True):  # fmt: skip
                avg.assign(live)
        self.log_alpha = tf.Variable(
            np.log(config.initial_alpha), dtype=tf.float32, name="log_alpha"
        )
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        """Number of train steps taken."""
        self.rng = tf.random.Generator.from_seed(train_seed)
        """Noise of the train step's action samples (the actor's own ``rng`` serves ``act``)."""

        # tf_keras (Keras 2) optimizers: plain tf.Variable slots, checkpointed by
        # tf.train.Checkpoint, and independent of the Keras 3 backend setting.
        self.actor_optimizer = tf_keras.optimizers.Adam(config.actor_lr)
        self.critic_optimizer = tf_keras.optimizers.Adam(config.critic_lr)
        self.alpha_optimizer = tf_keras.optimizers.Adam(config.alpha_lr)
        # build the slots now, so that no variable is created inside the traced step and a
        # checkpoint restores into existing variables
        self.actor_optimizer.build(self._actor_vars)
        self.critic_optimizer.build(self._critic_vars)
        self.alpha_optimizer.build([self.log_alpha])

        self.trace_count = 0
        """How many times the update was traced (stays 1 in a healthy run)."""
        obs_spec = tf.TensorSpec((None, self.obs_dim), tf.float32)
        batch_spec = Batch(
            obs=obs_spec,
            action=tf.TensorSpec((None, self.action_dim), tf.float32),
            reward=tf.TensorSpec((None,), tf.float32),
            next_obs=obs_spec,
            terminated=tf.TensorSpec((None,), tf.float32),
            truncated=tf.TensorSpec((None,), tf.float32),
        )
        self._train_step: Callable[[Batch], dict[str, tf.Tensor]]
        if config.run_eagerly:
            self._train_step = self._checked_update
        else:
            if config.jit_compile:
                # XLA ignores CheckNumerics, so the check runs in an outer, uncompiled graph
                self._xla_update = tf.function(self._update, jit_compile=True, autograph=False)
            # traced here, once; calling the concrete function skips tf.function's argument
            # matching (~0.2 ms a step on this machine)
            self._train_step = tf.function(
                self._checked_update, input_signature=[batch_spec], autograph=False
            ).get_concrete_function()
        # (autograph off: no Python control flow depends on tensors, and tracing is faster)
        self._act_deterministic = tf.function(
            self.policy_actor.deterministic, input_signature=[obs_spec], autograph=False
        )
        self._act_stochastic = tf.function(
            lambda obs: self.actor.sample_and_log_prob(obs)[0],
            input_signature=[obs_spec],
            autograph=False,
        )

    @property
    def policy_actor(self) -> SquashedGaussianActor:
        """The actor whose deterministic actions are the policy: the averaged one if kept."""
        return self.actor if self.average_actor is None else self.average_actor

    # (properties, not attributes: a list attribute of a tf.Module becomes a tracked dependency)
    @property
    def _actor_vars(self) -> list[tf.Variable]:
        return list(self.actor.trainable_variables)

    @property
    def _critic_vars(self) -> list[tf.Variable]:
        return list(self.critic.trainable_variables)

    @property
    def _target_vars(self) -> list[tf.Variable]:
        return list(self.target_critic.variables)

    # ------------------------------------------------------------------------- losses
    @property
    def alpha(self) -> tf.Tensor:
        """The entropy temperature ``exp(log_alpha)``."""
        return tf.exp(self.log_alpha)

    def _target_subset(self) -> tf.Tensor:
        """Indices of the target critics whose minimum makes the TD target: both of a pair;
        2 members drawn without replacement from a larger ensemble (REDQ)."""
        if self.n_critics == 2:  # no draw: the pair's random streams stay as they were
            return tf.range(2)
        return tf.argsort(self.rng.uniform((self.n_critics,)))[:2]

    def td_target(
        self, batch: Batch, noise: tf.Tensor | None = None, subset: tf.Tensor | None = None
    ) -> tf.Tensor:
        """The soft TD target ``y``, shape ``(B,)``, with no gradient.

        ``y = r + gamma (1 - terminated) (min_{i in subset} Qtarg_i(s', a') - alpha log pi(a'|s'))``
        with ``a' ~ pi(.|s')`` (reparameterized from ``noise``, drawn from :attr:`rng` when
        None) and ``subset`` both critics of a pair, or 2 members of an ensemble (drawn when
        None). Truncation does not cut the bootstrap.
        """
        next_obs = tf.convert_to_tensor(batch.next_obs, tf.float32)
        if noise is None:
            noise = self.rng.normal((tf.shape(next_obs)[0], self.action_dim))
        if subset is None:
            subset = self._target_subset()
        next_action, next_log_prob = self.actor.sample_and_log_prob(next_obs, noise)
        # an ensemble evaluates only the drawn pair of target critics
        members = subset if self.n_critics > 2 else None
        next_q = tf.reduce_min(self.target_critic(next_obs, next_action, members), axis=0)
        soft_next = next_q - self.alpha * next_log_prob
        mask = 1.0 - tf.convert_to_tensor(batch.terminated, tf.float32)
        reward = tf.convert_to_tensor(batch.reward, tf.float32)
        return tf.stop_gradient(reward + self.gamma * mask * soft_next)

    def _critic_loss(self, batch: Batch, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        q = self.critic(
            tf.convert_to_tensor(batch.obs, tf.float32),
            tf.convert_to_tensor(batch.action, tf.float32),
        )
        # 0.5 * sum over the critics of the mean squared TD error (Stable-Baselines3)
        loss = 0.5 * tf.reduce_sum(tf.reduce_mean(tf.square(q - target[None, :]), axis=1))
        return loss, q

    def critic_loss(
        self, batch: Batch, noise: tf.Tensor | None = None, subset: tf.Tensor | None = None
    ) -> tf.Tensor:
        """``0.5 sum_i mean_B (Q_i(s, a) - y)^2`` with ``y`` from :meth:`td_target`."""
        return self._critic_loss(batch, self.td_target(batch, noise, subset))[0]

    def actor_q(self, q: tf.Tensor) -> tf.Tensor:
        """What the actor maximizes of the critics' values ``(n_critics, B)``: the minimum of a
        pair (clipped double Q), the mean of a larger ensemble (REDQ)."""
        return tf.reduce_min(q, axis=0) if self.n_critics == 2 else tf.reduce_mean(q, axis=0)

    def _actor_loss(self, obs: tf.Tensor, noise: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        action, log_prob = self.actor.sample_and_log_prob(obs, noise)
        q = self.actor_q(self.critic(obs, action))
        return tf.reduce_mean(tf.stop_gradient(self.alpha) * log_prob - q), log_prob

    def actor_loss(self, obs: tf.Tensor, noise: tf.Tensor | None = None) -> tf.Tensor:
        """``mean_B (alpha log pi(a|s) - Q(s, a))``, ``a ~ pi(.|s)`` reparameterized, with ``Q``
        from :meth:`actor_q`."""
        obs = tf.convert_to_tensor(obs, tf.float32)
        if noise is None:
            noise = self.rng.normal((tf.shape(obs)[0], self.action_dim))
        return self._actor_loss(obs, noise)[0]

    def _alpha_loss(self, log_prob: tf.Tensor) -> tf.Tensor:
        return -tf.reduce_mean(self.log_alpha * tf.stop_gradient(log_prob + self.target_entropy))

    def alpha_loss(self, obs: tf.Tensor, noise: tf.Tensor | None = None) -> tf.Tensor:
        """``-mean_B log_alpha (log pi(a|s) + target_entropy)`` (Haarnoja et al. 2018, eq. 18)."""
        obs = tf.convert_to_tensor(obs, tf.float32)
        if noise is None:
            noise = self.rng.normal((tf.shape(obs)[0], self.action_dim))
        _, log_prob = self.actor.sample_and_log_prob(obs, noise)
        return self._alpha_loss(log_prob)

    # ------------------------------------------------------------------------- the update
    def _update(self, batch: Batch, noise: tf.Tensor, subset: tf.Tensor) -> dict[str, tf.Tensor]:
        """The update, given the standard normal noise ``(2, B, action_dim)`` of the next-state
        action (``noise[0]``) and of the actor's action (``noise[1]``), and the target
        critics ``subset`` (:meth:`_target_subset`)."""
        self.trace_count += 1  # Python side effect: runs once per trace
        obs = batch.obs
        alpha = self.alpha  # read before the temperature moves: all three losses use it

        target = self.td_target(batch, noise[0], subset)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self._critic_vars)
            critic_loss, q = self._critic_loss(batch, target)
        grads = tape.gradient(critic_loss, self._critic_vars)
        self.critic_optimizer.apply_gradients(zip(grads, self._critic_vars, strict=True))

        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self._actor_vars)
            actor_loss, log_prob = self._actor_loss(obs, noise[1])
        grads = tape.gradient(actor_loss, self._actor_vars)
        self.actor_optimizer.apply_gradients(zip(grads, self._actor_vars, strict=True))

        if self.learn_alpha:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(self.log_alpha)
                alpha_loss = self._alpha_loss(log_prob)
            grad = tape.gradient(alpha_loss, self.log_alpha)
            self.alpha_optimizer.apply_gradients([(grad, self.log_alpha)])
        else:
            alpha_loss = tf.zeros((), tf.float32)

        polyak_update(self._target_vars, self._critic_vars, self.tau)
        if self.average_actor is not None and self.actor_averaging is not None:
            polyak_update(
                self.average_actor.trainable_variables, self._actor_vars, self.actor_averaging
            )
        self.step.assign_add(1)
        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "alpha_loss": alpha_loss,
            "alpha": alpha,
            "entropy": -tf.reduce_mean(log_prob),
            "q_mean": tf.reduce_mean(q),
        }

    def _checked_update(self, batch: Batch) -> dict[str, tf.Tensor]:
        # the noise is drawn outside XLA, whose random-number kernels give other streams than
        # TensorFlow's: compiled, graph and eager steps then see the same numbers
        noise = self.rng.normal((2, tf.shape(batch.obs)[0], self.action_dim))
        subset = self._target_subset()
        update = self._xla_update if self.config.jit_compile else self._update
        out = dict(update(batch, noise, subset))
        for key in ("critic_loss", "actor_loss", "alpha_loss"):
            out[key] = tf.debugging.check_numerics(out[key], NUMERICS_MESSAGE.format(key))
        return out

    def train_step(self, batch: Batch) -> dict[str, tf.Tensor]:
        """One SAC update on ``batch``: critics, actor, temperature, then the targets.

        Runs one graph traced once (any batch size), XLA-compiled if ``config.jit_compile``.
        Returns scalar tensors ``critic_loss``, ``actor_loss``, ``alpha_loss``, ``alpha``
        (the temperature the losses used), ``entropy`` (``-mean log pi``) and ``q_mean``.

        :raises tf.errors.InvalidArgumentError: a loss is NaN or inf. The parameters may
            already hold the bad update: restore the last checkpoint.
        """
        return self._train_step(Batch(*(tf.convert_to_tensor(x, tf.float32) for x in batch)))

    # ------------------------------------------------------------------------- acting
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions ``(N, action_dim)`` in ``[-1, 1]`` for observations ``(N, obs_dim)``.

        Stochastic actions draw from the actor's own generator (not the train step's), so
        collecting data does not shift the training noise.
        """
        obs_t = tf.convert_to_tensor(obs, tf.float32)
        fn = self._act_deterministic if deterministic else self._act_stochastic
        return fn(obs_t).numpy()

    def deterministic_action(self, features: np.ndarray) -> np.ndarray:
        """``tanh(mean)``: what :class:`~agents.tf_sac.policy.SACPolicy` acts with."""
        return self.act(features, deterministic=True)

    def export_saved_model(
        self,
        path: str | os.PathLike[str],
        featurize_fn: Callable[[Any], tf.Tensor] | None = None,
        input_spec: tf.TensorSpec | Mapping[str, tf.TensorSpec] | None = None,
    ) -> None:
        """Write the deterministic policy as a SavedModel (see :func:`export_actor`);
        load it with :func:`~agents.tf_sac.policy.load_saved_actor`."""
        export_actor(self.policy_actor, path, featurize_fn, input_spec)

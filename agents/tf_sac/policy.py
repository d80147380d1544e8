"""The SAC actor: a tanh-squashed Gaussian policy over actions in ``[-1, 1]^action_dim``.

Also home of :class:`MLP`, the plain ReLU network both the actor and the critics are made of.
Networks are ``tf.Module`` objects holding their own ``tf.Variable`` weights (no Keras layers):
they trace into one graph, checkpoint with ``tf.train.Checkpoint`` and export as a SavedModel.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from agents.base import ObservationBatch, Policy

tfd = tfp.distributions
tfb = tfp.bijectors

LOG_STD_MIN = -20.0
"""Lower clip of the actor's log standard deviation (as in Stable-Baselines3's SAC)."""
LOG_STD_MAX = 2.0
"""Upper clip of the actor's log standard deviation."""


class MLP(tf.Module):
    """A ReLU multilayer perceptron, optionally an ensemble of independent copies.

    With ``ensemble=None`` the input is ``(B, in_dim)`` and the output ``(B, out_dim)``. With
    ``ensemble=E`` the weights carry a leading axis ``E`` (``E`` independent networks, each with
    its own initialization); the input is ``(B, in_dim)`` (shared by all members) or
    ``(E, B, in_dim)``, and the output ``(E, B, out_dim)``. One batched matmul per layer evaluates
    all members at once, which is cheaper than ``E`` separate graphs.

    Weights and biases are initialized as PyTorch's ``nn.Linear`` does, uniform in
    ``+-1/sqrt(fan_in)``, the initialization the Stable-Baselines3 and CleanRL SAC
    hyperparameters were tuned with.

    :param in_dim: input features.
    :param hidden_sizes: widths of the hidden layers.
    :param out_dim: outputs.
    :param seed: seed of the initialization (a ``tf.random.Generator`` seed).
    :param ensemble: number of independent members, or None for a single network.
    :param trainable: whether the weights are trainable variables (False for target networks).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_sizes: Sequence[int],
        out_dim: int,
        seed: int,
        ensemble: int | None = None,
        name: str | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name)
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.ensemble = ensemble
        rng = tf.random.Generator.from_seed(seed)
        sizes = [self.in_dim, *(int(h) for h in hidden_sizes), self.out_dim]
        lead = () if ensemble is None else (int(ensemble),)
        self.kernels: list[tf.Variable] = []
        self.biases: list[tf.Variable] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            bound = 1.0 / math.sqrt(fan_in)
            bias_shape = (fan_out,) if ensemble is None else (*lead, 1, fan_out)
            self.kernels.append(
                tf.Variable(
                    rng.uniform((*lead, fan_in, fan_out), -bound, bound),
                    name=f"kernel_{i}",
                    trainable=trainable,
                )
            )
            self.biases.append(
                tf.Variable(
                    rng.uniform(bias_shape, -bound, bound), name=f"bias_{i}", trainable=trainable
                )
            )

    def __call__(self, x: tf.Tensor, members: tf.Tensor | None = None) -> tf.Tensor:
        """The output; for an ensemble, ``members`` (int indices) evaluates only those members,
        in that order (the others cost nothing)."""
        last = len(self.kernels) - 1
        for i, (w, b) in enumerate(zip(self.kernels, self.biases, strict=True)):
            if members is not None:
                w, b = tf.gather(w, members), tf.gather(b, members)
            # (B, in) @ (E, in, out) broadcasts to (E, B, out) for an ensemble
            x = tf.matmul(x, w) + b
            if i < last:
                x = tf.nn.relu(x)
        return x


class SquashedGaussianActor(tf.Module):
    """A Gaussian policy squashed by tanh: ``a = tanh(u)``, ``u ~ N(mean(s), diag(std(s)^2))``.

    An :class:`MLP` maps the observation to ``2 * action_dim`` outputs, the mean and the log
    standard deviation of ``u``; the log standard deviation is clipped to
    ``[LOG_STD_MIN, LOG_STD_MAX]``. The action distribution is the tensorflow-probability
    ``TransformedDistribution(MultivariateNormalDiag(mean, std), Tanh())`` (Haarnoja et al.
    2018, "Soft Actor-Critic", appendix C, eq. 21 for its log-density).

    :param obs_dim: observation features.
    :param action_dim: action components, each in ``[-1, 1]``.
    :param hidden_sizes: hidden layer widths.
    :param seed: seed of the weights' initialization and of :attr:`rng`.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int] = (256, 256),
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.obs_dim = int(obs_dim)
        self.action_dim = int(action_dim)
        init_seed, rng_seed = _spawn(seed, 2)
        self.net = MLP(self.obs_dim, hidden_sizes, 2 * self.action_dim, seed=init_seed)
        self.rng = tf.random.Generator.from_seed(rng_seed)
        """Source of the noise when :meth:`sample_and_log_prob` is not given any."""

    def __call__(self, obs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Mean and clipped log std of the pre-squash Gaussian, each ``(B, action_dim)``."""
        out = self.net(obs)
        mean, log_std = tf.split(out, 2, axis=-1)
        return mean, tf.clip_by_value(log_std, LOG_STD_MIN, LOG_STD_MAX)

    def distribution(self, obs: tf.Tensor) -> tfp.distributions.TransformedDistribution:
        """The action distribution at ``obs`` (batch shape ``(B,)``, event ``(action_dim,)``)."""
        mean, log_std = self(obs)
        return _squashed(mean, log_std)

    def sample_and_log_prob(
        self, obs: tf.Tensor, noise: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """A reparameterized action sample ``(B, action_dim)`` and its log-density ``(B,)``.

        ``u = mean + std * noise`` and ``a = tanh(u)``. The log-density is evaluated from ``u``
        (``log N(u) - log|det d tanh/du|``, with the bijector's stable
        ``2 (log 2 - u - softplus(-2u))``), never by inverting ``tanh(u)``, which is inaccurate
        where the action saturates.

        :param noise: standard normal draws ``(B, action_dim)``; drawn from :attr:`rng` when None.
        """
        mean, log_std = self(obs)
        if noise is None:
            noise = self.rng.normal(tf.shape(mean))
        dist = _squashed(mean, log_std)
        u = mean + tf.exp(log_std) * noise
        action = dist.bijector.forward(u)
        log_prob = dist.distribution.log_prob(u) - dist.bijector.forward_log_det_jacobian(
            u, event_ndims=1
        )
        return action, log_prob

    def deterministic(self, obs: tf.Tensor) -> tf.Tensor:
        """The distribution's mode before squashing, squashed: ``tanh(mean(obs))``."""
        mean, _ = self(obs)
        return tf.tanh(mean)

    def deterministic_action(self, features: np.ndarray) -> np.ndarray:
        """:meth:`deterministic` on a numpy batch, as numpy (eager; for tests and tools)."""
        return self.deterministic(tf.convert_to_tensor(features, tf.float32)).numpy()


def _squashed(mean: tf.Tensor, log_std: tf.Tensor) -> tfp.distributions.TransformedDistribution:
    return tfd.TransformedDistribution(
        tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.exp(log_std)), tfb.Tanh()
    )


def _spawn(seed: int, n: int) -> list[int]:
    """``n`` independent 32-bit seeds derived from ``seed`` (never the same seed twice)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


# ----------------------------------------------------------------------------- acting and export
@runtime_checkable
class DeterministicActor(Protocol):
    """Anything that maps a feature batch to the policy's deterministic actions."""

    def deterministic_action(self, features: Any) -> np.ndarray:
        """Float32 actions ``(N, action_dim)`` for features ``(N, obs_dim)`` (or, for a model
        exported with its features, the observation dict)."""
        ...


SERVING_KEY = "serving_default"
"""Name of the exported SavedModel's signature: ``features`` in, ``action`` out."""


def export_actor(
    actor: SquashedGaussianActor,
    path: str | os.PathLike[str],
    featurize_fn: Callable[[Any], tf.Tensor] | None = None,
    input_spec: tf.TensorSpec | Mapping[str, tf.TensorSpec] | None = None,
) -> None:
    """Write ``actor``'s deterministic policy as a SavedModel at ``path``.

    The serving signature :data:`SERVING_KEY` returns ``{"action": tanh(mean)}``, float32
    ``(N, action_dim)``. Without ``featurize_fn`` it takes one float32 tensor ``features``
    ``(N, obs_dim)``. With ``featurize_fn`` (TensorFlow-traceable: the feature pipeline, its
    normalization) the signature takes what ``input_spec`` describes: one ``tf.TensorSpec``,
    or a mapping of names to specs (the raw observation dict; the signature then has one
    keyword input per name, and ``featurize_fn`` receives the dict). If ``featurize_fn`` is a
    ``tf.Module`` or a method of one, that module's variables are saved with the actor.
    """
    single = input_spec is None or isinstance(input_spec, tf.TensorSpec)
    if input_spec is None:
        specs = {"features": tf.TensorSpec((None, actor.obs_dim), tf.float32, name="features")}
    elif isinstance(input_spec, tf.TensorSpec):
        specs = {input_spec.name or "features": input_spec}
    else:
        specs = dict(input_spec)
    module = tf.Module()
    module.actor = actor
    owner = featurize_fn if isinstance(featurize_fn, tf.Module) else getattr(
        featurize_fn, "__self__", None
    )
    if isinstance(owner, tf.Module):
        module.featurize = owner

    def serve(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        x: Any = next(iter(inputs.values())) if single else inputs
        if featurize_fn is not None:
            x = featurize_fn(x)
        return {"action": actor.deterministic(tf.cast(x, tf.float32))}

    concrete = tf.function(serve, autograph=False).get_concrete_function(**specs)
    tf.saved_model.save(module, os.fspath(path), signatures={SERVING_KEY: concrete})


class SavedActor:
    """A SavedModel written by :func:`export_actor`, loaded for acting.

    :param path: the SavedModel directory.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.module = tf.saved_model.load(self.path)
        self._serve = self.module.signatures[SERVING_KEY]
        self.input_spec: dict[str, tf.TensorSpec] = dict(self._serve.structured_input_signature[1])
        """The signature's inputs by name."""

    def deterministic_action(self, features: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        """Actions for one input array, or for a dict of inputs when the model was exported
        with a mapping ``input_spec`` (features included)."""
        if isinstance(features, Mapping):
            inputs = {k: tf.convert_to_tensor(features[k], s.dtype)
                      for k, s in self.input_spec.items()}  # fmt: skip
        else:
            (name, spec), = self.input_spec.items()
            inputs = {name: tf.convert_to_tensor(features, spec.dtype)}
        return self._serve(**inputs)["action"].numpy()


def load_saved_actor(path: str | os.PathLike[str]) -> SavedActor:
    """Load the policy :func:`export_actor` (or ``SACLearner.export_saved_model``) wrote."""
    return SavedActor(path)


class SACPolicy(Policy):
    """A trained SAC actor as a :class:`~agents.base.Policy`: deterministic ``tanh(mean)`` actions.

    :param actor: a ``SACLearner``, a :class:`SavedActor`, or anything with
        ``deterministic_action(features) -> actions``.
    :param featurize: maps the market's observation dict batch to flat float32 features
        ``(N, obs_dim)`` (the feature pipeline); None hands the observation dict to the actor
        as it is (a :class:`SavedActor` exported with its features).
    """

    name = "sac"

    def __init__(
        self,
        actor: DeterministicActor,
        featurize: Callable[[ObservationBatch], np.ndarray | tf.Tensor] | None,
    ) -> None:
        if not isinstance(actor, DeterministicActor):
            raise TypeError(
                f"SACPolicy needs an object with deterministic_action(features), "
                f"got {type(actor).__name__}"
            )
        self.actor = actor
        self.featurize = featurize

    def act(self, observation: ObservationBatch) -> np.ndarray:
        if self.featurize is None:
            return np.asarray(self.actor.deterministic_action(observation), np.float32)
        features = self.featurize(observation)
        if isinstance(features, tf.Tensor):
            features = features.numpy()
        features = np.asarray(features, np.float32)
        return np.asarray(self.actor.deterministic_action(features), np.float32)

"""Twin Q networks for SAC and their Polyak-averaged targets."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from agents.tf_sac.policy import MLP


class TwinQ(tf.Module):
    """Independent Q networks ``Q_i(s, a)``: two by default (clipped double Q, Fujimoto et al.
    2018, "Addressing Function Approximation Error in Actor-Critic Methods", eq. 10), or a
    larger ensemble (Chen et al. 2021, "Randomized Ensembled Double Q-Learning", REDQ).

    The networks are the members of one :class:`MLP` ensemble: separate weights, separately
    initialized, evaluated together by one batched matmul per layer.

    :param obs_dim: observation features.
    :param action_dim: action components.
    :param hidden_sizes: hidden layer widths of each network.
    :param seed: seed of the initialization.
    :param trainable: False for a target network (its variables are then not trainable).
    :param n_critics: members of the ensemble (at least 2).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int] = (256, 256),
        seed: int = 0,
        name: str | None = None,
        trainable: bool = True,
        n_critics: int = 2,
    ) -> None:
        super().__init__(name=name)
        if n_critics < 2:
            raise ValueError(f"n_critics must be at least 2, got {n_critics}")
        self.n_critics = int(n_critics)
        self.obs_dim = int(obs_dim)
        self.action_dim = int(action_dim)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.seed = int(seed)
        self.net = MLP(
            self.obs_dim + self.action_dim, self.hidden_sizes, 1, seed=self.seed,
            ensemble=self.n_critics, trainable=trainable,
        )

    def __call__(
        self, obs: tf.Tensor, action: tf.Tensor, members: tf.Tensor | None = None
    ) -> tf.Tensor:
        """Every member's Q value, shape ``(n_critics, B)``: row ``i`` is ``Q_{i+1}(obs, a)``;
        with ``members`` (int indices), only those members' rows, in that order."""
        x = tf.concat([obs, action], axis=-1)
        return tf.squeeze(self.net(x, members), axis=-1)

    def clone(self, name: str | None = None, trainable: bool = False) -> TwinQ:
        """A copy with the same architecture and current weights; by default a target network
        (variables not trainable)."""
        twin = TwinQ(
            self.obs_dim, self.action_dim, self.hidden_sizes, self.seed, name,
            trainable=trainable, n_critics=self.n_critics,
        )  # fmt: skip
        for target, source in zip(twin.variables, self.variables, strict=True):
            target.assign(source)
        return twin


def polyak_update(
    target: Sequence[tf.Variable], source: Sequence[tf.Variable], tau: float
) -> None:
    """``target <- tau * source + (1 - tau) * target`` for each pair of variables."""
    for t, s in zip(target, source, strict=True):
        t.assign(tau * s + (1.0 - tau) * t)

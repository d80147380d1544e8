"""Soft Actor-Critic in TensorFlow (docs/agents.md#sac).

- :mod:`~agents.tf_sac.policy`: the tanh-squashed Gaussian actor, the MLP, SavedModel export and
  :class:`SACPolicy` (a trained actor as an :class:`~agents.base.Policy`);
- :mod:`~agents.tf_sac.critic`: twin Q networks and Polyak averaging;
- :mod:`~agents.tf_sac.learner`: :class:`SACLearner` (losses, the compiled train step) and
  :class:`SACConfig`;
- :mod:`~agents.tf_sac.replay`: the replay buffer and its :class:`Batch`.
"""

from agents.tf_sac.critic import TwinQ, polyak_update
from agents.tf_sac.learner import SACConfig, SACLearner
from agents.tf_sac.policy import (
    MLP,
    SACPolicy,
    SavedActor,
    SquashedGaussianActor,
    export_actor,
    load_saved_actor,
)
from agents.tf_sac.replay import Batch, ReplayBuffer

__all__ = [
    "MLP",
    "Batch",
    "ReplayBuffer",
    "SACConfig",
    "SACLearner",
    "SACPolicy",
    "SavedActor",
    "SquashedGaussianActor",
    "TwinQ",
    "export_actor",
    "load_saved_actor",
    "polyak_update",
]

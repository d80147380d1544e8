"""The trained SAC policy as a SavedModel: raw observation in, action out.

The exported module holds the feature pipeline (with its normalization statistics) and the
actor, so evaluation needs nothing but the SavedModel: no config, no code of the run.
Its serving signature takes the observation keys of :mod:`envs.layout` as float32
``(N, 1)`` tensors and returns ``{"action": (N, 2)}``, the deterministic ``tanh(mean)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

from agents.base import ObservationBatch, Policy
from configs.schema import ExperimentConfig
from features import FeaturePipeline
from tracking import download_artifacts

SERVING_KEY = "serving_default"


class _PolicyModule(tf.Module):
    def __init__(self, pipeline: FeaturePipeline, actor: tf.Module) -> None:
        super().__init__(name="sac_policy")
        self.pipeline = pipeline
        self.actor = actor


def export_policy(actor: tf.Module, pipeline: FeaturePipeline, path: str | Path) -> Path:
    """Write features + actor as a SavedModel at ``path``; returns ``path``.

    :param actor: the learner's actor (``deterministic(features) -> actions``).
    :param pipeline: the feature pipeline the actor was trained with.
    """
    module = _PolicyModule(pipeline, actor)
    keys = pipeline.observation_keys

    @tf.function(input_signature=[pipeline.input_spec[k] for k in keys])
    def serve(*tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        features = module.pipeline(dict(zip(keys, tensors, strict=True)))
        return {"action": module.actor.deterministic(features)}

    module.serve = serve
    tf.saved_model.save(module, os.fspath(path), signatures={SERVING_KEY: serve})
    return Path(path)


class SavedPolicy(Policy):
    """A policy exported by :func:`export_policy`, loaded for evaluation.

    :param path: the SavedModel directory.
    """

    name = "sac"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "saved_model.pb").exists():
            raise FileNotFoundError(f"{self.path}: no SavedModel here (saved_model.pb missing)")
        self._module = tf.saved_model.load(os.fspath(self.path))
        self._serve = self._module.signatures[SERVING_KEY]
        self.specs = dict(self._serve.structured_input_signature[1])
        self.keys = tuple(self.specs)

    def act(self, observation: ObservationBatch) -> np.ndarray:
        inputs: Mapping[str, tf.Tensor] = {
            k: tf.convert_to_tensor(
                np.asarray(observation[k], np.float32).reshape(-1, *self.specs[k].shape[1:])
            )
            for k in self.keys
        }
        return self._serve(**inputs)["action"].numpy()


def load_sac_policy(run_id: str, cfg: ExperimentConfig, workdir: Path) -> Policy:
    """The SavedModel a training run logged under ``model/sac_policy``."""
    local = download_artifacts(run_id, "model/sac_policy", workdir, cfg.tracking.uri)
    policy = SavedPolicy(local)
    policy.name = "sac"
    return policy

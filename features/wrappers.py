"""Gymnasium wrappers that expose the feature pipeline to other RL libraries."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from features.pipeline import FeaturePipeline, observation_shapes


class FeatureObservation(gymnasium.ObservationWrapper):
    """A single market whose observation is the pipeline's flat float32 feature vector.

    ``observation_space`` is ``Box(-inf, inf, (dim,), float32)``; the features are computed
    with the pipeline's current normalization (frozen: the wrapper never updates it).

    :param env: a market with the dict observation of :mod:`envs.layout`.
    :param pipeline: the feature pipeline.
    :raises ValueError: when the market does not publish a key the pipeline reads, or with
        another shape.
    """

    def __init__(self, env: gymnasium.Env, pipeline: FeaturePipeline) -> None:
        super().__init__(env)
        published = observation_shapes(env.observation_space)
        for key, shape in pipeline.observation_shapes.items():
            if published.get(key) != shape:
                found = "is missing" if key not in published else f"has shape {published[key]}"
                raise ValueError(
                    f"the pipeline reads observation key {key!r} of shape {shape}; this "
                    f"market's observation {found}"
                )
        self.pipeline = pipeline
        self.observation_space = spaces.Box(-np.inf, np.inf, (pipeline.dim,), np.float32)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        batch = {
            k: np.asarray(observation[k], np.float32)[None] for k in self.pipeline.observation_keys
        }
        return self.pipeline.numpy(batch)[0]

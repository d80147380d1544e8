"""Feature modules: raw observation batch -> one batched float32 tf.Tensor.

See docs/agents.md#features.
"""

from features.pipeline import FEATURES, FeaturePipeline, MarketScales
from features.wrappers import FeatureObservation

__all__ = ["FEATURES", "FeatureObservation", "FeaturePipeline", "MarketScales"]

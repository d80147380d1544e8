"""Feature modules: raw observation batch -> one batched float32 tf.Tensor (DESIGN.md section 5)."""

from features.pipeline import FEATURES, FeaturePipeline, MarketScales
from features.wrappers import FeatureObservation

__all__ = ["FEATURES", "FeatureObservation", "FeaturePipeline", "MarketScales"]

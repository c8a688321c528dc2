"""TransPose models: stems (ResNet-S, HRNet-S, MobileNet-S), the attention encoder, heads, weights, loading."""

from transpose_live.model.loading import load_model
from transpose_live.model.transpose import TransPose, create_model

__all__ = ["TransPose", "create_model", "load_model"]

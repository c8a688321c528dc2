"""TransPose models: stems (ResNet-S, HRNet-S, MobileNet-S), the attention encoder, heads, weights, loading."""

from .loading import load_model
from .transpose import TransPose, create_model

__all__ = ["TransPose", "create_model", "load_model"]

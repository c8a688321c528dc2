"""The TransPose network and everything about its weights: presets (config), the stems (ResNet-S, HRNet-S,
MobileNet-S), the attention encoder and heads (transpose, encoder), strict checkpoint loading (weights, loading), the
registry, cache and downloads of released checkpoints (hub, cache), the torch device (device), and where the forward
pass runs (backends/: torch, ONNX Runtime, OpenVINO, with the ONNX export).

May use: only the root vocabulary (errors, progress, ...). Never: pose, detect, media, live or anything above.
"""

from transpose_live.model.loading import load_model
from transpose_live.model.transpose import TransPose, create_model

__all__ = ["TransPose", "create_model", "load_model"]

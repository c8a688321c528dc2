"""The TransPose network and everything about its weights: presets (config), the stems (ResNet-S, HRNet-S,
MobileNet-S), the attention encoder and heads (transpose, encoder), strict checkpoint loading (weights, loading), the
registry, cache and downloads of released checkpoints (hub, cache), the torch device (device), and where the forward
pass runs (backends/: torch, ONNX Runtime, OpenVINO, with the ONNX export).

May use: only the root vocabulary (errors, progress, ...). Never: pose, detect, media, live or anything above.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:     # what the lazy names are, for the type checker
    from transpose_live.model.loading import load_model
    from transpose_live.model.transpose import TransPose, create_model

# lazy: the presets, the cache and the backend names are read by every command's option checks, which must not
# load torch; the network and its loading import it on first use
_LAZY = {"TransPose": "transpose", "create_model": "transpose", "load_model": "loading"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = ["TransPose", "create_model", "load_model"]

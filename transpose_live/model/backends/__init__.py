"""Where the pose model's forward pass runs: torch (eager), ONNX Runtime or OpenVINO.

Every backend is called the same way, `backend(x (B, 3, H, W) float32, attention) -> (heatmaps (B, J, h, w),
[attention maps (B, N, N) per layer] or None)`, in the array type its `array_type` names: "torch" tensors for
TorchBackend, "numpy" arrays for the graph runtimes (a CPU run on them imports no torch). The ONNX ones run a
graph exported from the model's torch module (see export.py), found in the cache by a ModelSource (source.py)
without building that module; the estimator's `.model` builds it when the inspector or training asks.

"auto" picks by measurement (docs/benchmarks.md): on CUDA torch; on the CPU OpenVINO when installed, else
ONNX Runtime — both at fp32 run the shipped model ~1.6x the eager torch model at batch 1 and ~1.2x at
batch 8 on 2 cores, about equal to each other (OpenVINO ahead in 3 of 4 measured pairs).
"""

from __future__ import annotations

import importlib.util
import logging

from transpose_live.errors import TransposeLiveError
from transpose_live.model.backends.names import (
    BACKEND_CHOICES,
    CPU_ONLY_BACKENDS,
    OPENVINO_PRECISIONS,
    PRECISION_CHOICES,
    check_backend_name,
    check_precision_name,
)
from transpose_live.model.backends.source import ModelSource, as_source
from transpose_live.model.backends.threads import default_threads

log = logging.getLogger(__name__)

def installed(name: str) -> bool:
    """Whether a backend's packages can be imported here (torch always can). The ONNX backends also need
    the `onnx` package: torch's exporter writes the graph with it."""
    if name == "torch":
        return True
    return importlib.util.find_spec(name) is not None and importlib.util.find_spec("onnx") is not None


def device_type(device) -> str:
    """"cpu", "cuda", "mps" of a device name or torch.device (no torch import: the name says it)."""
    return str(device).split(":")[0].strip().lower()


def available_backends(device="cpu") -> list[str]:
    """The backends that can run on `device` here, fastest first (the order `auto` picks from)."""
    if device_type(device) != "cpu":
        return ["torch"]
    return [name for name in ("openvino", "onnxruntime", "torch") if installed(name)]


def resolve_backend(name: str, device) -> str:
    """auto -> the fastest available for the device; a named one must be installed and fit the device."""
    name = check_backend_name(name)
    if name == "auto":
        return available_backends(device)[0]
    if name in CPU_ONLY_BACKENDS and device_type(device) != "cpu":
        raise TransposeLiveError(f"backend {name} runs on the CPU; use --device cpu or --backend torch")
    if not installed(name):
        extra = " (pip install 'transpose-live[openvino]')" if name == "openvino" else ""
        raise TransposeLiveError(f"backend {name} is not installed{extra}; it needs the {name} and onnx packages")
    return name


class TorchBackend:
    """The module itself, eagerly (its fused attention path unless maps are asked for). fold: the calls
    without maps run a copy with the batch norms folded into the convolutions (models/folding.py: the same
    numbers up to rounding, fewer kernels); only for a model that no longer changes (not one in training)."""

    name = "torch"
    array_type = "torch"

    def __init__(self, model, fold: bool = False):
        import torch  # deferred: torch

        self._model = model
        self._fast = model
        if fold:
            from transpose_live.model.folding import fold_batchnorm  # deferred: torch

            self._fast = fold_batchnorm(model)[0]
        first = next(iter(model.parameters()), None)
        self.precision = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(
            first.dtype if first is not None else torch.float32, "fp32")
        self.threads = torch.get_num_threads()

    def __call__(self, x, attention: bool = False):
        if attention:
            return self._model(x, return_attention=True)
        return self._fast(x), None


def backend_for(name: str, device, precision: str = "auto") -> str:
    """The backend create_backend would try first for these options (precision bf16 / mixed need OpenVINO)."""
    precision = check_precision_name(precision)
    if precision in OPENVINO_PRECISIONS:
        if check_backend_name(name) == "auto":
            name = "openvino"
        if check_backend_name(name) != "openvino":
            raise TransposeLiveError(f"precision {precision} runs on the openvino backend, not {name}")
    return resolve_backend(name, device)


def create_backend(name: str, model, device, threads: int | None = None, precision: str = "auto",
                   fold: bool = False):
    """The forward pass of `model` (a TransPose on `device`, or a ModelSource: source.py) on backend `name`
    (auto resolved here). precision bf16 / mixed need OpenVINO (auto then picks it); the module's own dtype is
    torch's precision. fold: torch folds the batch norms (the graph runtimes do by themselves); for a model
    that stays as it is. A ModelSource's module is built only where torch runs it or an export is missing."""
    precision = check_precision_name(precision)
    resolved = backend_for(name, device, precision)
    source = as_source(model)
    if resolved == "torch":
        return TorchBackend(source.module(), fold)
    try:
        if resolved == "onnxruntime":
            from transpose_live.model.backends.onnxruntime_backend import OnnxRuntimeBackend  # deferred: torch

            return OnnxRuntimeBackend(source, threads)
        from transpose_live.model.backends.openvino_backend import OpenVinoBackend  # deferred: OpenVINO

        return OpenVinoBackend(source, threads, precision=precision)
    except TransposeLiveError as exc:
        if check_backend_name(name) != "auto" or precision in OPENVINO_PRECISIONS:
            raise                      # asked for by name: say why it cannot run
        # auto only picks a graph runtime for speed: when its export cannot be made (a cache folder that
        # cannot be written, an exporter that fails), the same model runs on torch, as it did before
        log.warning("%s unavailable (%s); the model runs on torch", resolved, exc)
        return TorchBackend(source.module(), fold)


__all__ = ["BACKEND_CHOICES", "PRECISION_CHOICES", "OPENVINO_PRECISIONS", "check_backend_name", "check_precision_name",
           "available_backends", "resolve_backend", "backend_for", "create_backend", "device_type", "default_threads",
           "installed", "TorchBackend", "ModelSource"]

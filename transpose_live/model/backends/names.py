"""The backend and precision names and their checks: cheap (imports nothing heavy), used by the option
checks of every command and by the backends themselves."""

from __future__ import annotations

from transpose_live.errors import TransposeLiveError

BACKEND_CHOICES = ("auto", "torch", "onnxruntime", "openvino")
# auto: fp16 on CUDA; on the CPU mixed where OpenVINO runs it (a CPU with bf16), else fp32.
# mixed: OpenVINO, the CNN stem at fp32 and the encoder + head at bf16 (openvino_split.py: heatmaps within
# fp16 noise of fp32). bf16: OpenVINO, all of it at bf16 (opt-in: coco_mini AP as fp32's, but it moves
# keypoints by more than 0.5 px; see docs/benchmarks.md)
PRECISION_CHOICES = ("auto", "fp32", "mixed", "bf16")
OPENVINO_PRECISIONS = ("mixed", "bf16")
CPU_ONLY_BACKENDS = ("onnxruntime", "openvino")
# torch is imported inside the functions: option checks (check_backend_name) must stay cheap


def check_backend_name(name: object) -> str:
    """The backend option, normalised; refuses unknown names (cheap: imports nothing)."""
    text = str(name).strip().lower() if name is not None else "auto"
    if text not in BACKEND_CHOICES:
        raise TransposeLiveError(f"unknown backend {name!r}; use {', '.join(BACKEND_CHOICES)}")
    return text


def check_precision_name(name: object) -> str:
    text = str(name).strip().lower() if name is not None else "auto"
    if text not in PRECISION_CHOICES:
        raise TransposeLiveError(f"unknown precision {name!r}; use {', '.join(PRECISION_CHOICES)}")
    return text


__all__ = ["BACKEND_CHOICES", "PRECISION_CHOICES", "OPENVINO_PRECISIONS", "check_backend_name",
           "check_precision_name", "CPU_ONLY_BACKENDS"]

"""The one place that turns a device option (auto, cpu, cuda, cuda:N, mps) into a torch.device.

Every command, the estimator, training and the benchmarks go through `resolve_device`, so the same
option gives the same answer and the same one-line error everywhere.
"""

from __future__ import annotations

import ctypes
import functools
import re
import sys

from transpose_live.errors import TransposeLiveError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(device: object) -> str:
    """The device option as a clean string; refuses what no machine could have (cheap: no torch import)."""
    text = str(device).strip().lower() if device is not None else ""
    if not _PATTERN.match(text):
        raise TransposeLiveError(f"unknown device {device!r}; use {DEVICE_CHOICES}")
    return text


@functools.lru_cache(maxsize=1)
def cuda_driver_present() -> bool:
    """Whether this machine has the CUDA driver library, which torch.cuda.is_available() asks for the device
    count (the runtime dlopens libcuda.so.1 / nvcuda.dll; without it the count is 0 and auto is the CPU).
    Loading it is what torch would do anyway where it exists; where it does not, torch need not load."""
    if sys.platform == "darwin":
        return False
    try:
        ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return False
    return True


def resolve_device_name(device="auto") -> str:
    """str(resolve_device(device)), without importing torch where the answer is the CPU anyway: "cpu", and
    "auto" on a machine without the CUDA driver. For callers that only pass the name on (the detector)."""
    name = str(device).strip().lower() if device is not None else ""
    if "torch" not in sys.modules and check_device_name(name) in ("auto", "cpu"):
        if name == "cpu" or not cuda_driver_present():
            return "cpu"
    return str(resolve_device(device))


def resolve_device(device="auto"):
    """auto -> cuda when available, else cpu; any other name must exist on this machine."""
    import torch  # deferred: checking a device name (check_device_name) needs no torch

    if isinstance(device, torch.device):
        device = str(device)
    name = check_device_name(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise TransposeLiveError(f"device {name!r} asked for, but this machine has no usable CUDA device")
        if dev.index is not None and dev.index >= count:
            raise TransposeLiveError(f"device {name!r} asked for, but this machine has only {count} CUDA "
                                     f"device(s): cuda:0..cuda:{count - 1}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise TransposeLiveError(f"device {name!r} asked for, but MPS is not available here")
    return dev


__all__ = ["DEVICE_CHOICES", "check_device_name", "resolve_device", "resolve_device_name", "cuda_driver_present"]

"""The one place that turns a device option (auto, cpu, cuda, cuda:N, mps) into a torch.device.

Every command, the estimator, training and the benchmarks go through `resolve_device`, so the same
option gives the same answer and the same one-line error everywhere.
"""

from __future__ import annotations

import re

from transpose_live.errors import TransposeLiveError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(device: object) -> str:
    """The device option as a clean string; refuses what no machine could have (cheap: no torch import)."""
    text = str(device).strip().lower() if device is not None else ""
    if not _PATTERN.match(text):
        raise TransposeLiveError(f"unknown device {device!r}; use {DEVICE_CHOICES}")
    return text


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


__all__ = ["DEVICE_CHOICES", "check_device_name", "resolve_device"]

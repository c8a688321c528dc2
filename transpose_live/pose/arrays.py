"""The array type a backend computes in, as the estimator and SharedEstimator use it: numpy for the graph
runtimes (OpenVINO, ONNX Runtime: a CPU run on them never imports torch), torch tensors on the model's device
for the torch backends (eager CPU, CUDA fp16, CUDA graphs). The estimator picks one by `backend.array_type`;
every step between the crops and the decoded heatmaps goes through it, so no step asks which type it holds.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from transpose_live.pose.preprocess import to_input_array, to_input_tensor


class NumpyArrays:
    """float32 numpy arrays on the CPU."""

    kind = "numpy"

    def inputs(self, crops_rgb: np.ndarray) -> np.ndarray:
        """(K, H, W, 3) uint8 RGB crops -> the model's normalised input (K, 3, H, W) float32."""
        return to_input_array(crops_rgb)

    def accept(self, x: Any) -> np.ndarray:
        """A caller's input as float32 numpy (a CPU torch tensor converts through its __array__)."""
        return np.asarray(x, dtype=np.float32)

    def cat(self, parts: list) -> np.ndarray:
        return np.concatenate(parts)

    def flip_width(self, x: np.ndarray) -> np.ndarray:
        return x[..., ::-1]

    def as_float32(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return x

    def inference(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


class TorchArrays:
    """torch tensors on `device`, inputs in `dtype` (the module's)."""

    kind = "torch"

    def __init__(self, device, dtype):
        self.device, self.dtype = device, dtype

    def inputs(self, crops_rgb: np.ndarray):
        return to_input_tensor(crops_rgb, device=self.device)

    def accept(self, x):
        import torch  # deferred, here and below: this class is used only where torch runs the model

        return torch.as_tensor(x).to(self.device, self.dtype)

    def cat(self, parts: list):
        import torch  # deferred: as above

        return torch.cat(parts)

    def flip_width(self, x):
        return x.flip(3)

    def as_float32(self, x):
        return x.float()

    def to_numpy(self, x) -> np.ndarray:
        return x.detach().cpu().numpy()

    def inference(self) -> contextlib.AbstractContextManager:
        import torch  # deferred: as above

        return torch.inference_mode()


Arrays = NumpyArrays | TorchArrays

__all__ = ["NumpyArrays", "TorchArrays", "Arrays"]

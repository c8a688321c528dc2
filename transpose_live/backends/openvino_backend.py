"""The pose model's forward pass on OpenVINO (CPU; the optional `openvino` extra), from the cached ONNX export.

OpenVINO picks bf16 by itself on CPUs that have it; we ask for f32 explicitly so its outputs are the
plain fp32 model's (heatmaps ~1e-6 apart). Latency hint, one stream: one frame's crops at a time.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import torch

from ..errors import TransposeLiveError
from .onnxruntime_backend import _open_cached


@functools.lru_cache(maxsize=None)
def _shared_core():
    """One OpenVINO Core for the process. Each Core starts its own CPU-plugin engine, which swaps the thread's
    signal stack and puts the previous one back when it goes: engines dropped first-made-first left a freed
    stack in place, and the next Python signal handler (Ctrl-C, the window's SIGINT) died with SIGSEGV."""
    import openvino as ov

    return ov.Core()


class OpenVinoBackend:
    """Same call as OnnxRuntimeBackend; threads = the CPU's cores by default."""

    name = "openvino"

    def __init__(self, model: torch.nn.Module, threads: int | None = None, precision: str = "fp32"):
        self._model = model
        self.threads = threads or torch.get_num_threads()
        self.precision = precision
        self._core = _shared_core()
        if precision == "bf16" and "BF16" not in self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            # OpenVINO would quietly run f32 instead; the row / the run would then say bf16 wrongly
            raise TransposeLiveError("precision bf16 needs a CPU with bf16 instructions; this one has none "
                                     "(use --precision fp32)")
        self._requests: dict[bool, object] = {}
        self._lock = threading.Lock()     # an infer request serves one call at a time (ORT sessions are shared freely)
        self._request(False)

    def _request(self, attention: bool):
        if attention not in self._requests:
            self._requests[attention] = _open_cached(self._model, attention, self._make)
        return self._requests[attention]

    def _make(self, path):
        compiled = self._core.compile_model(str(path), "CPU", {
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
        })
        return compiled.create_infer_request()

    def __call__(self, x: torch.Tensor, attention: bool = False):
        data = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        with self._lock:
            request = self._request(attention)
            request.infer({0: data})
            # copies: the request's output buffers are reused by its next call
            out = [np.array(request.get_output_tensor(i).data) for i in range(len(request.model_outputs))]
        heatmaps = torch.from_numpy(out[0])
        return heatmaps, ([torch.from_numpy(m) for m in out[1:]] if attention else None)


__all__ = ["OpenVinoBackend"]

"""The pose model's forward pass on OpenVINO (CPU; the optional `openvino` extra), from the cached ONNX export.

OpenVINO picks bf16 by itself on CPUs that have it; we ask for a precision explicitly. fp32: the plain fp32
model's outputs (heatmaps ~1e-6 apart). mixed (what auto picks on CPUs with bf16): the stem and the head at f32,
the encoder at bf16 (openvino_split.py; heatmaps within fp16 noise of fp32, ~1.3-1.4x its speed); the
attention graph stays f32 there, so the maps keep their 1e-3. bf16: everything at bf16 (opt-in: fastest,
keypoints move). Latency hint, one stream: one frame's crops at a time.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.model.backends.export import open_cached
from transpose_live.model.backends.names import OPENVINO_PRECISIONS
from transpose_live.model.backends.openvino_core import shared_core
from transpose_live.model.backends.openvino_split import PRECISIONS, ChainedRequest, split_graph
from transpose_live.model.backends.source import ModelSource, as_source
from transpose_live.model.backends.threads import default_threads

if TYPE_CHECKING:
    from transpose_live.model.transpose import TransPose

log = logging.getLogger(__name__)


def has_bf16() -> bool:
    """Whether this CPU runs bf16 natively (OpenVINO's own reading of it)."""
    return "BF16" in shared_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoBackend:
    """Same call as OnnxRuntimeBackend (numpy in and out); threads = the CPU's cores by default (torch's count
    where torch is loaded, else OpenVINO's own, read back from the compiled model)."""

    name = "openvino"
    array_type = "numpy"

    def __init__(self, model: TransPose | ModelSource, threads: int | None = None, precision: str = "auto"):
        self._model = as_source(model)
        self.threads = threads or default_threads()
        self._core = shared_core()
        self._auto = precision == "auto"
        if precision == "auto":
            precision = "mixed" if has_bf16() else "fp32"
        elif precision in OPENVINO_PRECISIONS and not has_bf16():
            # OpenVINO would quietly run f32 instead; the row / the run would then say bf16 wrongly
            raise TransposeLiveError(f"precision {precision} needs a CPU with bf16 instructions; this one has none "
                                     "(use --precision fp32)")
        self.precision = precision
        self._requests: dict[bool, object] = {}
        self._lock = threading.Lock()     # an infer request serves one call at a time (ORT sessions are shared freely)
        self._request(False)

    def _request(self, attention: bool):
        if attention not in self._requests:
            make = self._make_mixed if self.precision == "mixed" and not attention else self._make
            self._requests[attention] = open_cached(self._model, attention, make)
        return self._requests[attention]

    def _compile(self, model, hint: str):
        compiled = self._core.compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": self.threads,      # 0: OpenVINO's default
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": hint,
        })
        if not self.threads:
            self.threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        return compiled.create_infer_request()

    def _make(self, path):
        return ChainedRequest([self._compile(str(path), "bf16" if self.precision == "bf16" else "f32")])

    def _make_mixed(self, path):
        try:
            parts = split_graph(self._core, path)
        except TransposeLiveError as exc:
            if not self._auto:
                raise
            log.warning("mixed precision unavailable for this graph (%s); the model runs at fp32", exc)
            self.precision = "fp32"
            return self._make(path)
        return ChainedRequest([self._compile(part, hint) for part, hint in zip(parts, PRECISIONS, strict=True)])

    def __call__(self, x: np.ndarray, attention: bool = False):
        data = np.ascontiguousarray(x, dtype=np.float32)
        with self._lock:
            out = self._request(attention).run(data)
        return out[0], (out[1:] if attention else None)


__all__ = ["OpenVinoBackend", "has_bf16"]

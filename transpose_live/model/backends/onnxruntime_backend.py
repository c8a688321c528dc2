"""The pose model's forward pass on ONNX Runtime (CPU), from the cached ONNX export."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from transpose_live.model.backends.export import HEATMAPS_NAME, INPUT_NAME, open_cached
from transpose_live.model.backends.source import ModelSource, as_source
from transpose_live.model.backends.threads import default_threads

if TYPE_CHECKING:
    from transpose_live.model.transpose import TransPose


class OnnxRuntimeBackend:
    """`(x (B, 3, H, W) float32, attention) -> (heatmaps (B, J, h, w), [maps (B, N, N) per layer] | None)`, numpy.

    Threads: intra-op = `threads` (the CPU's cores by default, as torch uses), inter-op 1 (the graph is
    one chain; a second pool only competes for the same cores), and no spinning: ORT's idle workers
    otherwise spin on a core for a while after each call, which the detector, the decoder and the
    encoder of the same pipeline need (SSD + pose stage on vtest, 2 cores, alternated in one process:
    397 / 442 ms per frame without spinning, 469 / 1025 ms with). Sessions are made once per graph
    kind; the attention graph only when first asked for."""

    name = "onnxruntime"
    precision = "fp32"
    array_type = "numpy"

    def __init__(self, model: TransPose | ModelSource, threads: int | None = None):
        import onnxruntime  # noqa: F401  (deferred, as in _make: a missing package fails here, with the caller's message)

        self._model = as_source(model)
        self.threads = threads or default_threads()   # 0: ONNX Runtime's default (the physical cores)
        self._sessions: dict[bool, object] = {}
        self._session(False)

    def _session(self, attention: bool):
        if attention not in self._sessions:
            self._sessions[attention] = open_cached(self._model, attention, self._make)
        return self._sessions[attention]

    def _make(self, path):
        import onnxruntime as ort  # deferred: the optional package loads only when this backend runs

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray, attention: bool = False):
        session = self._session(attention)
        out = session.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
        return out[0], (list(out[1:]) if attention else None)


__all__ = ["OnnxRuntimeBackend", "HEATMAPS_NAME"]

"""RTMDet-nano (persons) from OpenMMLab, shipped in the package as ONNX; run by OpenVINO or ONNX Runtime.

The file (`assets/rtmdet_nano_person.onnx`, Apache-2.0, see `assets/RTMDET_LICENSE`) is OpenMMLab's
`rtmdet_nano_8xb32-300e_coco-person` exported by MMDeploy with the post-processing in the graph:

- input `input` (B, 3, H, W) float32, BGR, (pixel - mean) / std; the export's own pipeline resizes the image
  so that its long side is 320, keeping the aspect, and pads right and bottom to 320x320 with grey 114;
- outputs `dets` (B, K, 5): x1, y1, x2, y2, score in the padded input's pixels, after NMS (IoU 0.5), scores
  below 0.05 already dropped, at most 100; `labels` (B, K) int64, 0 = person (the only class).

The graph runs one image at a time: a batch of several fails inside the export's post-processing (a `Where`
node broadcasts against a shape fixed at batch 1), so `detect_batch` runs its frames one by one. The live
pipeline detects frame by frame anyway; on a CPU a batch of this small network would save little.

Engines: "openvino" (through the process's one OpenVINO Core), "onnxruntime", "auto" (OpenVINO when
installed, else ONNX Runtime). Both give the same boxes (float noise apart).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from transpose_live.detect.base import Detections, as_bgr, check_score, nms
from transpose_live.detect.onnx import letterbox
from transpose_live.detect.onnx_session import open_onnx_session
from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import clip_boxes

MODEL_FILE = Path(__file__).resolve().parents[1] / "assets" / "rtmdet_nano_person.onnx"
MODEL_SHA256 = "b8585adb6d1352796f6e86337e09c3459b830645a7e7192d9381670bea2facbd"
INPUT_SIZE = 320                                        # the long side the model was trained and exported at
MEAN = np.array([103.53, 116.28, 123.675], np.float32)  # BGR
STD = np.array([57.375, 57.12, 58.395], np.float32)
PERSON_LABEL = 0
ENGINES = ("auto", "openvino", "onnxruntime")
# Live score threshold, tuned on coco_mini (docs/benchmarks.md, "RTMDet-nano"; keypoint AP with these boxes,
# boxes kept): 0.2 -> 0.307, 281; 0.3 -> 0.298, 135; 0.4 -> 0.258, 80 (the SSD at its 0.3: 0.254, 117). Every box
# is a pose-model crop per frame: 0.2 buys +0.009 AP with twice the crops, mostly background.
DEFAULT_MIN_SCORE = 0.3

# one image in: (1, 3, S, S) float32 -> dets (K, 5), labels (K,)
Network = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def _onnxruntime_network(path: Path, threads: int | None) -> Network:
    session = open_onnx_session(path, "the rtmdet detector", threads=threads)

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dets, labels = session.run(["dets", "labels"], {"input": x})
        return np.asarray(dets[0], np.float32), np.asarray(labels[0])

    return run


def _openvino_network(path: Path, threads: int | None, size: int) -> Network:
    from transpose_live.model.backends.openvino_core import shared_core  # deferred: loads OpenVINO

    settings: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        settings["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        core = shared_core()
        model = core.read_model(str(path))
        model.reshape({"input": [1, 3, size, size]})    # a static input: every frame is letterboxed to it
        request = core.compile_model(model, "CPU", settings).create_infer_request()
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses of its own
        lines = [line.strip() for line in str(exc).splitlines() if line.strip() and "Exception from" not in line]
        reason = next((line for line in lines if "Unable" in line), lines[0] if lines else type(exc).__name__)
        raise TransposeLiveError(f"cannot load the rtmdet detector {path} on OpenVINO: {reason}") from None
    lock = threading.Lock()   # one infer request, one call at a time

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with lock:
            out = request.infer({"input": x})
            dets, labels = out["dets"], out["labels"]
            return np.array(dets[0], np.float32), np.array(labels[0])

    return run


class RTMDetDetector:
    """Persons from RTMDet-nano. `path`: the ONNX file (default: the shipped one); `min_score`: boxes kept at or
    above it (the graph itself keeps >= 0.05); `input_size`: the square the frame is letterboxed into (the
    trained 320; larger finds smaller people at a roughly quadratic cost)."""

    def __init__(
        self,
        path: str | Path | None = None,
        min_score: float = DEFAULT_MIN_SCORE,
        nms_iou: float = 0.5,
        input_size: int = INPUT_SIZE,
        min_box_size: float = 4.0,
        engine: str = "auto",
        threads: int | None = None,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else MODEL_FILE
        if not self.path.is_file():
            hint = " (the package lacks its asset: reinstall transpose-live)" if path is None else ""
            raise TransposeLiveError(f"rtmdet model file not found: {self.path}{hint}")
        if engine not in ENGINES:
            raise TransposeLiveError(f"unknown rtmdet engine {engine!r}; choose one of: {', '.join(ENGINES)}")
        if engine == "openvino" and not openvino_available():
            raise TransposeLiveError("the OpenVINO rtmdet engine needs the openvino package "
                                     "(pip install 'transpose-live[openvino]')")
        if not 32 <= int(input_size) <= 2048 or int(input_size) % 32:
            raise TransposeLiveError(f"rtmdet input size must be a multiple of 32 in 32..2048, got {input_size}")
        self.min_score = check_score("min_score", min_score)
        self.nms_iou = check_score("nms_iou", nms_iou)
        self.input_size = int(input_size)
        self.min_box_size = float(min_box_size)
        self.engine = engine if engine != "auto" else ("openvino" if openvino_available() else "onnxruntime")
        self._network: Network = (_openvino_network(self.path, threads, self.input_size)
                                  if self.engine == "openvino" else _onnxruntime_network(self.path, threads))

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        return self.detect_batch([frame_bgr])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """One network call per frame (the export runs batch 1 only: see the module docstring)."""
        frames = [as_bgr(f) for f in frames]
        return [self._detect(f) for f in frames]

    def _detect(self, frame: np.ndarray) -> Detections:
        canvas, scale, _ = letterbox(frame, (self.input_size, self.input_size), center=False)
        x = ((canvas.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]   # (1, 3, S, S) BGR
        dets, labels = self._network(np.ascontiguousarray(x))
        return self.decode(dets.reshape(-1, 5), labels.reshape(-1), scale, frame.shape[1], frame.shape[0])

    def decode(self, dets: np.ndarray, labels: np.ndarray, scale: float, width: int, height: int) -> Detections:
        """The graph's (K, 5) x1, y1, x2, y2, score in the letterboxed input and (K,) labels -> persons in
        frame pixels (x, y, w, h), at or above min_score, highest score first."""
        keep = (labels == PERSON_LABEL) & (dets[:, 4] >= self.min_score)
        boxes = clip_boxes(dets[keep, :4] / scale, width, height)
        scores = dets[keep, 4]
        big = (boxes[:, 2] >= self.min_box_size) & (boxes[:, 3] >= self.min_box_size)
        return nms(boxes[big], scores[big], self.nms_iou, self.min_score)


__all__ = ["RTMDetDetector", "MODEL_FILE", "MODEL_SHA256", "DEFAULT_MIN_SCORE", "ENGINES"]

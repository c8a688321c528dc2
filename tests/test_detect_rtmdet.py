"""RTMDet-nano (`--detector rtmdet`): the shipped ONNX file, its spec, letterbox and decoding, batching, bad
input, both engines; a real COCO person (skipped when ../shared is absent)."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import cv2
import numpy as np
import pytest

from transpose_live.detect import SPECS, Detections, Detector, create_detector, parse_detector_spec, rtmdet
from transpose_live.detect.rtmdet import DEFAULT_MIN_SCORE, MODEL_FILE, MODEL_SHA256, RTMDetDetector
from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import box_iou

from helpers import shared_path

needs_model = pytest.mark.skipif(not MODEL_FILE.is_file(),
                                 reason=f"the packaged RTMDet asset is missing ({MODEL_FILE})")
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")


@pytest.fixture(scope="module")
def detector() -> RTMDetDetector:
    if not MODEL_FILE.is_file():
        pytest.skip(f"the packaged RTMDet asset is missing ({MODEL_FILE})")
    return RTMDetDetector(engine="onnxruntime", threads=1)


def person_frame() -> np.ndarray:
    """A synthetic 'person': a dark figure (head, torso, legs) on a light wall; the model need not find it."""
    frame = np.full((240, 320, 3), 200, np.uint8)
    cv2.circle(frame, (160, 50), 18, (60, 70, 90), -1)
    cv2.rectangle(frame, (140, 70), (180, 150), (40, 40, 120), -1)
    cv2.rectangle(frame, (142, 150), (157, 220), (30, 30, 30), -1)
    cv2.rectangle(frame, (163, 150), (178, 220), (30, 30, 30), -1)
    return frame


# ---------------------------------------------------------------- the asset and the spec

@needs_model
def test_packaged_asset_is_the_published_file_with_its_licence():
    assert hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest() == MODEL_SHA256
    licence = (MODEL_FILE.parent / "RTMDET_LICENSE").read_text()
    assert "Apache License" in licence and "OpenMMLab" in licence


def test_spec_names_rtmdet(tmp_path):
    assert "rtmdet" in SPECS
    assert parse_detector_spec("rtmdet") == ("rtmdet", None)
    assert parse_detector_spec(" RTMDet ") == ("rtmdet", None)
    f = tmp_path / "end2end.onnx"
    f.write_bytes(b"x")
    assert parse_detector_spec(f"rtmdet:{f}") == ("rtmdet", str(f))
    with pytest.raises(TransposeLiveError, match="needs a file"):
        parse_detector_spec("rtmdet:")
    with pytest.raises(TransposeLiveError, match="not found"):
        parse_detector_spec(f"rtmdet:{tmp_path / 'absent.onnx'}")
    with pytest.raises(TransposeLiveError, match="cannot load"):    # a file that is no ONNX model
        create_detector(f"rtmdet:{f}")


@needs_model
def test_create_detector_builds_it_with_its_threshold(monkeypatch):
    monkeypatch.setattr(rtmdet, "openvino_available", lambda: False)     # auto: ONNX Runtime (quick to load)
    made = create_detector("rtmdet")
    assert made.engine == "onnxruntime"
    assert isinstance(made, RTMDetDetector) and isinstance(made, Detector)
    assert made.min_score == DEFAULT_MIN_SCORE
    assert create_detector("rtmdet", min_score=0.6).min_score == 0.6


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(TransposeLiveError, match="not found"):
        RTMDetDetector(tmp_path / "absent.onnx")
    if not MODEL_FILE.is_file():
        return
    with pytest.raises(TransposeLiveError, match="engine"):
        RTMDetDetector(engine="tensorrt")
    with pytest.raises(TransposeLiveError, match="min_score"):
        RTMDetDetector(min_score=1.5)
    with pytest.raises(TransposeLiveError, match="multiple of 32"):
        RTMDetDetector(input_size=300)


# ---------------------------------------------------------------- decoding and the letterbox

def test_decode_maps_the_letterbox_back_to_frame_pixels():
    d = RTMDetDetector.__new__(RTMDetDetector)   # decode needs only the thresholds
    d.min_score, d.nms_iou, d.min_box_size = 0.3, 0.5, 4.0
    # a 640x480 frame letterboxed to 320: scale 0.5, image in the top-left 320x240, grey below
    dets = np.array([[10, 20, 110, 220, 0.9],      # a person
                     [200, 100, 330, 260, 0.8],    # reaches into the padding: clipped to the frame
                     [50, 50, 60, 60, 0.95],       # label 1 (not a person)
                     [0, 0, 40, 40, 0.2]],         # below min_score
                    np.float32)
    labels = np.array([0, 0, 1, 0])
    out = d.decode(dets, labels, 0.5, 640, 480)
    np.testing.assert_allclose(out.scores, [0.9, 0.8])
    np.testing.assert_allclose(out.boxes, [[20, 40, 200, 400], [400, 200, 240, 280]])
    assert len(d.decode(np.zeros((0, 5), np.float32), np.zeros(0, np.int64), 0.5, 640, 480)) == 0


def test_scaling_the_frame_scales_the_boxes(detector):
    frame = cv2.resize(person_frame(), (640, 480))
    low = detector.detect(cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA))
    detector_low = RTMDetDetector(engine="onnxruntime", min_score=0.05, threads=1)
    a = detector_low.detect(frame)
    b = detector_low.detect(cv2.resize(frame, (1280, 960), interpolation=cv2.INTER_LINEAR))
    assert isinstance(low, Detections)
    # the same 320x240 canvas either way: every box twice as large, within a few pixels of resizing noise
    assert len(a) == len(b)
    if len(a):
        np.testing.assert_allclose(b.boxes, 2 * a.boxes, atol=6.0)
        np.testing.assert_allclose(b.scores, a.scores, atol=0.05)


# ---------------------------------------------------------------- frames

def test_blank_and_odd_frames_give_no_persons(detector):
    for frame in (np.zeros((240, 320, 3), np.uint8), np.full((100, 900, 3), 127, np.uint8),
                  np.zeros((64, 48), np.uint8), np.zeros((50, 60, 4), np.uint8)):
        out = detector.detect(frame)
        assert len(out) == 0 and out.boxes.dtype == np.float32


def test_bad_frames_are_refused(detector):
    for bad in (np.zeros((32, 32, 3), np.float32), np.zeros((0, 10, 3), np.uint8),
                np.zeros((4, 4, 2), np.uint8), [[0, 1], [2, 3]]):
        with pytest.raises(TransposeLiveError):
            detector.detect(bad)


def test_batch_equals_single_calls(detector):
    rng = np.random.default_rng(0)
    frames = [person_frame(), rng.integers(0, 255, (200, 300, 3), dtype=np.uint8), person_frame()[:, :200]]
    low = RTMDetDetector(engine="onnxruntime", min_score=0.05, threads=1)
    batch = low.detect_batch(frames)
    assert len(batch) == 3 and low.detect_batch([]) == []
    for got, frame in zip(batch, frames):
        one = low.detect(frame)
        np.testing.assert_array_equal(got.boxes, one.boxes)
        np.testing.assert_array_equal(got.scores, one.scores)


@needs_model
@needs_openvino
def test_openvino_and_onnxruntime_agree(detector):
    frame = cv2.resize(person_frame(), (640, 480))
    ort = RTMDetDetector(engine="onnxruntime", min_score=0.05, threads=1).detect(frame)
    ov = RTMDetDetector(engine="openvino", min_score=0.05, threads=1).detect(frame)
    assert len(ort) == len(ov)
    np.testing.assert_allclose(ov.boxes, ort.boxes, atol=0.5)
    np.testing.assert_allclose(ov.scores, ort.scores, atol=1e-3)


# ---------------------------------------------------------------- a real person

@pytest.mark.shared
def test_finds_the_coco_persons(detector):
    ann = json.loads(shared_path("data", "coco_mini", "person_keypoints.json").read_text())
    for image_id, name in ((790, "000000000790.jpg"), (30752, "000000030752.jpg")):
        frame = cv2.imread(str(shared_path("data", "coco_mini", "images", name)))
        gt = [a["bbox"] for a in ann["annotations"]
              if a["image_id"] == image_id and a["num_keypoints"] > 0 and not a["iscrowd"]]
        largest = max(gt, key=lambda b: b[2] * b[3])
        found = detector.detect(frame)
        assert len(found) >= 1
        assert box_iou(np.array(largest, np.float32), found.boxes).max() >= 0.5, (name, largest, found.boxes)
        assert found.boxes[:, 0].min() >= 0 and (found.boxes[:, 0] + found.boxes[:, 2]).max() <= frame.shape[1]

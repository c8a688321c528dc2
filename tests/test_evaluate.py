"""COCO keypoint evaluation: OKS, OKS-NMS, rescoring, predict_coco and pycocotools AP on synthetic data."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.skeleton import OKS_SIGMAS
from transpose_live.train import evaluate
from transpose_live.train.oks import compute_oks, oks_nms
from transpose_live.types import Pose

from helpers import make_coco, shared_path, write_images


def gt_results(data, shift=0.0):
    """The labelled persons as detections with score 1, optionally moved by `shift` pixels."""
    out = []
    for a in data["annotations"]:
        if a["iscrowd"] or a["num_keypoints"] == 0:
            continue
        k = np.asarray(a["keypoints"], float).reshape(17, 3)
        k[:, :2] += shift
        k[:, 2] = 1.0
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": k.reshape(-1).tolist(),
                    "score": 1.0})
    return out


# ---------------------------------------------------------------- OKS

def test_compute_oks_identical_is_one_and_matches_formula():
    rng = np.random.default_rng(1)
    a = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], 1)
    b = a.copy()
    b[5, 0] += 4.0                      # one joint 4 px off
    area = 2500.0
    oks = compute_oks(a, np.stack([a, b]), area)
    assert oks.shape == (2,)
    assert oks[0] == pytest.approx(1.0)
    e = 16.0 / (2 * OKS_SIGMAS[5]) ** 2 / area / 2
    assert oks[1] == pytest.approx((16 + math.exp(-e)) / 17)


def test_compute_oks_agrees_with_pycocotools():
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(2)
    g = np.concatenate([rng.uniform(0, 100, (17, 2)), np.full((17, 1), 2.0)], 1)
    d = g.copy()
    d[:, :2] += rng.normal(0, 3, (17, 2))
    area = 3000.0
    ev = COCOeval(iouType="keypoints")
    ev._gts = {(1, 1): [{"keypoints": g.reshape(-1).tolist(), "area": area, "bbox": [0, 0, 100, 100]}]}
    ev._dts = {(1, 1): [{"keypoints": d.reshape(-1).tolist(), "score": 1.0}]}
    ev.params.maxDets = [20]
    ref = ev.computeOks(1, 1)[0, 0]
    assert compute_oks(g, d[None], area)[0] == pytest.approx(ref, rel=1e-9)


def test_oks_nms_removes_duplicate_and_keeps_others():
    rng = np.random.default_rng(3)
    k = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], 1)
    dup = k.copy()
    dup[:, :2] += 0.5
    far = k.copy()
    far[:, 0] += 300
    results = [
        {"image_id": 1, "keypoints": dup, "score": 0.6, "area": 5000.0},
        {"image_id": 1, "keypoints": k, "score": 0.9, "area": 5000.0},
        {"image_id": 1, "keypoints": far, "score": 0.5, "area": 5000.0},
        {"image_id": 2, "keypoints": k.reshape(-1), "score": 0.4, "area": 5000.0},  # other image
    ]
    keep = oks_nms(results, thresh=0.9)
    assert sorted(keep) == [1, 2, 3]          # the lower-scored duplicate goes
    assert keep[0] == 1                       # best score first
    assert oks_nms([]) == []


def test_rescore_uses_joints_above_threshold_only():
    scores = np.array([0.9, 0.1, 0.5] + [0.0] * 14)
    assert evaluate.rescore(scores, 0.8) == pytest.approx(0.8 * 0.7)
    assert evaluate.rescore(np.zeros(17), 1.0) == 0.0


# ---------------------------------------------------------------- pycocotools AP

def test_gt_as_results_scores_ap_one_and_shift_scores_lower(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    exact = evaluate.coco_eval(ann, gt_results(data))
    assert set(exact) == {"AP", "AP50", "AP75", "APm", "APl", "AR"}
    assert exact["AP"] == pytest.approx(1.0)
    assert exact["AR"] == pytest.approx(1.0)
    shifted = evaluate.coco_eval(ann, gt_results(data, shift=4.0))
    assert 0.0 <= shifted["AP"] < 0.9
    assert shifted["AR"] < 1.0


def test_empty_results_score_zero_and_stray_ids_fail(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    assert evaluate.coco_eval(ann, [])["AP"] == 0.0
    bad = gt_results(data)[:1]
    bad[0]["image_id"] = 5
    with pytest.raises(TransposeLiveError, match="image ids"):
        evaluate.coco_eval(ann, bad)
    with pytest.raises(TransposeLiveError, match="not found"):
        evaluate.coco_eval(tmp_path / "missing.json", [])


class GtEstimator:
    """A fake estimator that answers each box with the labelled keypoints of the nearest person; joint
    scores are `joint_score` (a number, or a function of the box score)."""

    def __init__(self, data, joint_score=0.9):
        self.flip = False
        self.flips_seen = []
        self.joint_score = joint_score if callable(joint_score) else (lambda box_score: joint_score)
        self.people = [a for a in data["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]

    def estimate(self, frame_bgr, boxes, box_scores=None):
        assert frame_bgr.ndim == 3 and frame_bgr.shape[2] == 3 and frame_bgr.dtype == np.uint8
        self.flips_seen.append(self.flip)
        poses = []
        for box, box_score in zip(boxes, box_scores):
            best = min(self.people, key=lambda a: np.abs(np.asarray(a["bbox"][:2]) - box[:2]).sum())
            k = np.asarray(best["keypoints"], np.float32).reshape(17, 3)
            scores = np.broadcast_to(self.joint_score(box_score), (17,)).astype(np.float32)
            poses.append(Pose(keypoints=k[:, :2].copy(), scores=scores, box=tuple(box), box_score=float(box_score)))
        return poses


def test_predict_coco_with_gt_boxes_round_trips_to_ap_one(tmp_path, capsys):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    images = write_images(tmp_path, data)
    est = GtEstimator(data)
    results = evaluate.predict_coco(est, ann, images, detector="gt", flip=True, progress=True)
    assert len(results) == 6                                  # 3 images × 2 labelled persons
    assert {r["image_id"] for r in results} == {d["id"] for d in data["images"]}
    assert all(r["score"] == pytest.approx(0.9) for r in results)   # box 1.0 × mean joint score
    assert all(r["area"] > 0 and len(r["keypoints"]) == 51 for r in results)
    assert est.flips_seen and all(est.flips_seen) and est.flip is False   # flip set for the run only
    assert evaluate.coco_eval(ann, results)["AP"] == pytest.approx(1.0)
    assert "eval: 3/3 images" in capsys.readouterr().err     # the closing progress line


class ListDetector:
    """Per image (in json order) the labelled person boxes, once per (offset, scores) in `copies`: the
    boxes moved by offset pixels, the k-th person scored scores[k]."""

    def __init__(self, data, copies):
        self.data, self.copies = data, copies
        self.calls = 0

    def detect(self, frame_bgr):
        from types import SimpleNamespace

        img = self.data["images"][self.calls]
        self.calls += 1
        gt = [a["bbox"] for a in self.data["annotations"] if a["image_id"] == img["id"] and a["num_keypoints"] > 0]
        boxes = [[b[0] + dx, b[1] + dx, b[2], b[3]] for dx, _ in self.copies for b in gt]
        scores = [scores[k] for _, scores in self.copies for k in range(len(gt))]
        return SimpleNamespace(boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                               scores=np.asarray(scores, np.float32))


def test_predict_coco_with_detector_boxes_applies_oks_nms(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    images = write_images(tmp_path, data)
    detector = ListDetector(data, [(0, (0.95, 0.95)), (1, (0.6, 0.6))])   # each person twice, moved and weaker
    results = evaluate.predict_coco(GtEstimator(data), ann, images, detector=detector, progress=False)
    assert detector.calls == 3
    assert len(results) == 6                                  # duplicates suppressed by OKS-NMS
    assert all(r["score"] == pytest.approx(0.95 * 0.9) for r in results)
    assert evaluate.coco_eval(ann, results)["AP"] == pytest.approx(1.0)


def test_predict_coco_takes_a_detector_spec(tmp_path, capsys):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    images = write_images(tmp_path, data)
    est = GtEstimator(data)
    results = evaluate.predict_coco(est, ann, images, detector="none", progress=False)   # the whole frame
    assert len(est.flips_seen) == 3                           # every image read, one box each
    assert len(results) == 3 and {r["image_id"] for r in results} == {d["id"] for d in data["images"]}
    assert capsys.readouterr().err == ""                      # progress=False writes nothing


def test_min_person_score_drops_weak_persons_before_oks_nms(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    images = write_images(tmp_path, data)

    def run(copies, min_person_score, joint_score=0.9):
        est = GtEstimator(data, joint_score)
        return evaluate.predict_coco(est, ann, images, detector=ListDetector(data, copies), progress=False,
                                     min_person_score=min_person_score)

    one_weak = [(0, (0.95, 0.3))]                              # per image: one person at 0.95, one at 0.3
    assert len(run(one_weak, 0.0)) == 6
    assert len(run(one_weak, 0.3 * 0.9)) == 6                 # Pose.score 0.27 is not below 0.27
    kept = run(one_weak, 0.3)
    assert len(kept) == 3 and all(r["score"] == pytest.approx(0.95 * 0.9) for r in kept)
    assert len(run(one_weak, 0.95 * 0.9 + 1e-6)) == 0
    # Pose.score averages all joints, the protocol's score only those above 0.2: the first copy (half its
    # joints at 0) wins OKS-NMS but falls below 0.5; dropped before the NMS, it leaves the second copy
    half, uniform = np.where(np.arange(17) % 2 == 0, 0.9, 0.0), np.full(17, 0.6)
    duplicate = [(0, (1.0, 1.0)), (0.5, (0.99, 0.99))]

    def joint_score(box_score):
        return half if box_score == 1.0 else uniform

    kept = run(duplicate, 0.0, joint_score)
    assert len(kept) == 6 and all(r["score"] == pytest.approx(0.9) for r in kept)
    kept = run(duplicate, 0.5, joint_score)
    assert len(kept) == 6 and all(r["score"] == pytest.approx(0.99 * 0.6) for r in kept)


def test_predict_coco_rejects_bad_input(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    images = write_images(tmp_path, data)
    with pytest.raises(TransposeLiveError, match="unknown detector"):
        evaluate.predict_coco(GtEstimator(data), ann, images, detector="magic", progress=False)
    with pytest.raises(TransposeLiveError, match="detect"):
        evaluate.predict_coco(GtEstimator(data), ann, images, detector=42, progress=False)
    with pytest.raises(TransposeLiveError, match="min_person_score"):
        evaluate.predict_coco(GtEstimator(data), ann, images, min_person_score=1.5, progress=False)
    with pytest.raises(TransposeLiveError, match="image folder"):
        evaluate.predict_coco(GtEstimator(data), ann, tmp_path / "nope", progress=False)
    (images / data["images"][1]["file_name"]).unlink()
    with pytest.raises(TransposeLiveError, match="cannot read image"):
        evaluate.predict_coco(GtEstimator(data), ann, images, progress=False)


@pytest.mark.shared
def test_coco_mini_ground_truth_scores_ap_one():
    ann = shared_path("data", "coco_mini", "person_keypoints.json")
    data = json.loads(ann.read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in data["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]
    with contextlib.redirect_stdout(io.StringIO()):
        stats = evaluate.coco_eval(ann, results)
    assert len(results) == 86
    assert stats["AP"] == pytest.approx(1.0)
    assert stats["AR"] == pytest.approx(1.0)


def test_match_boxes_is_one_to_one_best_score_first():
    from transpose_live.train.evaluate import match_boxes

    gt = np.array([[0, 0, 10, 20], [100, 0, 10, 20]], float)
    boxes = np.array([[1, 0, 10, 20], [0, 1, 10, 20], [300, 0, 10, 20]], float)
    # both boxes overlap the first person; the higher-scoring one takes it, the other finds nobody
    assert match_boxes(gt, boxes, np.array([0.5, 0.9, 0.8])).tolist() == [1, -1]
    assert match_boxes(gt, boxes[:0], np.zeros(0)).tolist() == [-1, -1]
    assert match_boxes(gt, [[0, 0, 10, 20]], [1.0], iou=1.0).tolist() == [0, -1]
    assert match_boxes(gt, [[5, 0, 10, 20]], [1.0]).tolist() == [-1, -1]          # IoU 1/3 < 0.5


class BoxCountingEstimator:
    """One pose per box (joints spread over the box), counting the boxes it was given."""

    def __init__(self):
        self.boxes = 0

    def estimate(self, frame, boxes, box_scores=None, attention=False):
        self.boxes += len(boxes)
        out = []
        for box, s in zip(boxes, box_scores):
            x, y, w, h = box
            kp = np.stack([np.linspace(x, x + w, 17), np.linspace(y, y + h, 17)], 1).astype(np.float32)
            out.append(Pose(kp, np.full(17, 0.9, np.float32), box=tuple(box), box_score=float(s)))
        return out


@pytest.mark.shared
def test_detector_min_score_reaches_the_named_detector():
    ann = shared_path("data", "coco_mini", "person_keypoints.json")
    images = ann.parent / "images"
    ids = evaluate.select_image_ids(evaluate.load_coco(ann), 12)
    seen = {}
    for min_score in (None, evaluate.EVAL_DETECTOR_MIN_SCORE, 0.1, 0.3, 1.0):
        est = BoxCountingEstimator()
        evaluate.predict_coco(est, ann, images, detector="ssd", progress=False, img_ids=ids,
                              detector_min_score=min_score)
        seen[min_score] = est.boxes
    # evaluation's default is the COCO test's low threshold, not the SSD's live 0.3
    assert evaluate.EVAL_DETECTOR_MIN_SCORE == 0.05 and seen[None] == seen[0.05]
    assert seen[0.05] > seen[0.1] > seen[0.3] > seen[1.0] == 0
    with pytest.raises(TransposeLiveError, match="detector_min_score"):
        evaluate.predict_coco(est, ann, images, detector="ssd", progress=False, detector_min_score=2.0)

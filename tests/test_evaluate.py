"""COCO keypoint evaluation: OKS, OKS-NMS, rescoring, predict_coco and pycocotools AP on synthetic data."""

from __future__ import annotations

import contextlib
import io
import json
import math

import cv2
import numpy as np
import pytest
from conftest import shared_path

from transpose_live import evaluate
from transpose_live.errors import TransposeLiveError
from transpose_live.oks import compute_oks, oks_nms
from transpose_live.skeleton import OKS_SIGMAS
from transpose_live.types import Pose


def make_coco(path, n_images=3, persons_per_image=2, seed=0, size=(160, 120)):
    """A small COCO keypoints json: fully labelled persons, one crowd region and one 0-keypoint person."""
    rng = np.random.default_rng(seed)
    w_img, h_img = size
    images, anns = [], []
    aid = 1
    for i in range(n_images):
        img_id = 1000 + 7 * i          # ids that are not 0..n-1: results must use the json's ids
        images.append({"id": img_id, "file_name": f"img_{i}.png", "width": w_img, "height": h_img})
        for _ in range(persons_per_image):
            bw, bh = rng.uniform(30, 50), rng.uniform(60, 90)
            bx, by = rng.uniform(0, w_img - bw), rng.uniform(0, h_img - bh)
            xs = rng.uniform(bx, bx + bw, 17)
            ys = rng.uniform(by, by + bh, 17)
            kps = np.stack([xs, ys, np.full(17, 2.0)], 1).reshape(-1)
            anns.append({"id": aid, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                         "bbox": [bx, by, bw, bh], "area": bw * bh * 0.6,
                         "num_keypoints": 17, "keypoints": [round(float(v), 2) for v in kps]})
            aid += 1
    # ignored by the protocol: a crowd region and a person without keypoints
    anns.append({"id": aid, "image_id": images[0]["id"], "category_id": 1, "iscrowd": 1,
                 "bbox": [0, 0, 20, 20], "area": 400.0, "num_keypoints": 0, "keypoints": [0] * 51})
    anns.append({"id": aid + 1, "image_id": images[-1]["id"], "category_id": 1, "iscrowd": 0,
                 "bbox": [100, 10, 15, 70], "area": 900.0, "num_keypoints": 0, "keypoints": [0] * 51})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    path.write_text(json.dumps(data))
    return data


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
    """A fake estimator that answers each GT box with that person's labelled keypoints."""

    def __init__(self, data):
        self.flip = False
        self.flips_seen = []
        self.people = [a for a in data["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]

    def estimate(self, frame_bgr, boxes, box_scores=None):
        assert frame_bgr.ndim == 3 and frame_bgr.shape[2] == 3 and frame_bgr.dtype == np.uint8
        self.flips_seen.append(self.flip)
        poses = []
        for box in boxes:
            best = min(self.people, key=lambda a: np.abs(np.asarray(a["bbox"][:2]) - box[:2]).sum())
            k = np.asarray(best["keypoints"], np.float32).reshape(17, 3)
            poses.append(Pose(keypoints=k[:, :2].copy(), scores=np.full(17, 0.9, np.float32),
                              box=tuple(box)))
        return poses


def write_images(tmp_path, data):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, info in enumerate(data["images"]):
        shape = (info["height"], info["width"]) if i == 0 else (info["height"], info["width"], 3)
        cv2.imwrite(str(folder / info["file_name"]), np.full(shape, 90, np.uint8))  # first one grayscale
    return folder


def test_predict_coco_with_gt_boxes_round_trips_to_ap_one(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    images = write_images(tmp_path, data)
    est = GtEstimator(data)
    results = evaluate.predict_coco(est, ann, images, boxes="gt", flip=True, progress=False)
    assert len(results) == 6                                  # 3 images × 2 labelled persons
    assert {r["image_id"] for r in results} == {d["id"] for d in data["images"]}
    assert all(r["score"] == pytest.approx(0.9) for r in results)   # box 1.0 × mean joint score
    assert est.flips_seen and all(est.flips_seen) and est.flip is False   # flip set for the run only
    assert evaluate.coco_eval(ann, results)["AP"] == pytest.approx(1.0)


class DuplicatingDetector:
    """Returns every GT person box twice (the second slightly moved, lower score)."""

    def __init__(self, data):
        self.data = data
        self.calls = 0

    def detect(self, frame_bgr):
        from types import SimpleNamespace

        img = self.data["images"][self.calls]
        self.calls += 1
        boxes = [a["bbox"] for a in self.data["annotations"]
                 if a["image_id"] == img["id"] and a["num_keypoints"] > 0]
        boxes = boxes + [[b[0] + 1, b[1] + 1, b[2], b[3]] for b in boxes]
        scores = [0.95] * (len(boxes) // 2) + [0.6] * (len(boxes) // 2)
        return SimpleNamespace(boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                               scores=np.asarray(scores, np.float32))


def test_predict_coco_with_detector_boxes_applies_oks_nms(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    images = write_images(tmp_path, data)
    results = evaluate.predict_coco(GtEstimator(data), ann, images, boxes="detector",
                                    detector=DuplicatingDetector(data), progress=False)
    assert len(results) == 6                                  # duplicates suppressed by OKS-NMS
    assert all(r["score"] == pytest.approx(0.95 * 0.9) for r in results)
    assert evaluate.coco_eval(ann, results)["AP"] == pytest.approx(1.0)


def test_predict_coco_rejects_bad_input(tmp_path):
    ann = tmp_path / "kp.json"
    data = make_coco(ann)
    images = write_images(tmp_path, data)
    with pytest.raises(TransposeLiveError, match="boxes"):
        evaluate.predict_coco(GtEstimator(data), ann, images, boxes="magic", progress=False)
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

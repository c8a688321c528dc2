"""COCO keypoint evaluation with the paper's protocol (pycocotools COCOeval, iouType="keypoints").

Per image: person boxes (ground-truth boxes, score 1.0, or a person detector's) → one pose per box →
rescoring (box score × mean of the joint scores above 0.2) → OKS-NMS 0.9. As in the authors' code; the
one addition, off by default, drops persons below a minimum score first, as the live pipeline does.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from transpose_live.detect import create_detector
from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import box_area_for_nms, box_iou
from transpose_live.media.records import PERSON_CATEGORY, coco_result
from transpose_live.progress import Progress
from transpose_live.train.oks import oks_nms
from transpose_live.types import Pose

IN_VIS_THRE = 0.2       # joints scoring above this count in the person score (official in_vis_thre)
OKS_NMS_THRE = 0.9      # official oks_thre
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR")   # the first six of COCOeval.stats
GT_BOXES = "gt"         # predict_coco's detector value for ground-truth person boxes


# ---------------------------------------------------------------- dataset access

def load_coco(ann_file: Any):
    """A pycocotools COCO for a json path (quietly), or the COCO object passed in."""
    from pycocotools.coco import COCO  # deferred: pycocotools loads only where annotations are read

    if isinstance(ann_file, COCO):
        return ann_file
    path = Path(ann_file)
    if not path.is_file():
        raise TransposeLiveError(f"annotation file not found: {path}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except Exception as exc:  # bad json, wrong structure
        raise TransposeLiveError(f"cannot read COCO annotations {path}: {exc}") from None


def select_image_ids(coco, max_images: int | None = None) -> list[int]:
    """Image ids of the json in id order; the first `max_images` when given."""
    ids = sorted(coco.getImgIds())
    if max_images is not None:
        if max_images < 1:
            raise TransposeLiveError(f"--max-images must be at least 1, got {max_images}")
        ids = ids[:max_images]
    return ids


def labelled_persons(coco, img_ids: Iterable[int]) -> list[dict]:
    """Non-crowd person annotations with at least one labelled joint (what COCOeval scores against)."""
    out = []
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=list(img_ids), catIds=[PERSON_CATEGORY], iscrowd=False)):
        if not ann.get("iscrowd", 0) and max(ann.get("keypoints") or [0]) > 0:
            out.append(ann)
    return out


def read_image(images_dir: str | os.PathLike, file_name: str) -> np.ndarray:
    """BGR uint8 (H, W, 3); grayscale and alpha images are converted by OpenCV."""
    path = Path(images_dir) / file_name
    if not path.is_file():
        alt = Path(images_dir) / Path(file_name).name   # jsons that keep a split folder in file_name
        path = alt if alt.is_file() else path
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise TransposeLiveError(f"cannot read image {path}")
    return frame


def gt_boxes(coco, img_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth person boxes (K, 4) xywh clipped to the image as in the official loader, scores 1.0."""
    info = coco.imgs[img_id]
    width, height = info["width"], info["height"]
    boxes = []
    for ann in labelled_persons(coco, [img_id]):
        x, y, w, h = ann["bbox"]
        x1, y1 = max(0.0, x), max(0.0, y)
        x2 = min(width - 1.0, x1 + max(0.0, w - 1))
        y2 = min(height - 1.0, y1 + max(0.0, h - 1))
        if ann.get("area", 1) > 0 and x2 >= x1 and y2 >= y1:
            boxes.append((x1, y1, x2 - x1, y2 - y1))
    arr = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return arr, np.ones(len(arr), dtype=np.float32)


def match_boxes(gt: np.ndarray, boxes: np.ndarray, scores: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Which detector box found each ground-truth box: (G,) index into `boxes`, -1 for none. One-to-one and
    greedy as COCO matches detections: best score first, each to the free ground truth it overlaps most
    (IoU >= `iou`). Boxes are (K, 4) xywh."""
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    found = np.full(len(gt), -1)
    if not len(gt) or not len(boxes):
        return found
    overlap = box_iou(boxes, gt)                                             # (K, G)
    for k in np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="stable"):
        free = np.where(found < 0, overlap[k], -1.0)
        g = int(free.argmax())
        if free[g] >= iou:
            found[g] = k
    return found


# ---------------------------------------------------------------- prediction

def rescore(scores: np.ndarray, box_score: float, in_vis_thre: float = IN_VIS_THRE) -> float:
    """Box score × mean of the joint scores above `in_vis_thre` (0 when none is)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s) & (s > in_vis_thre)]
    return float(box_score) * (float(s.mean()) if s.size else 0.0)


@contextlib.contextmanager
def _flip_set(estimator, flip: bool):
    """Run with the estimator's flip test switched as asked, restored afterwards."""
    if not hasattr(estimator, "flip"):
        yield
        return
    old = estimator.flip
    estimator.flip = flip
    try:
        yield
    finally:
        estimator.flip = old


# Box score threshold of a named detector in evaluation. The official TransPose/HRNet test keeps every box
# the detector returns (TEST.IMAGE_THRE 0.0) and lets rescoring and OKS-NMS sort them out; the live
# commands keep the detector's own (0.3 for the SSD: every box is a crop per frame). On coco_mini with the
# SSD (tools/measure_detector.py --min-score S): AP 0.2766 at 0.0 (1,178 poses) and at 0.05 (645 poses),
# 0.2757 at 0.1, 0.2543 at 0.3. 0.05 gives the protocol's AP at half the crops and bounds the boxes of
# detectors that return thousands of near-zero ones.
EVAL_DETECTOR_MIN_SCORE = 0.05


def _box_source(detector: str | object, detector_min_score: float | None = None, device: object = None,
                detect_tiles: int = 0):
    """None for ground-truth boxes ("gt"), else an object with `.detect(frame)`: the one passed, or the
    detector a spec string names ("ssd", "none", "onnx:FILE"), at `detector_min_score` (default
    EVAL_DETECTOR_MIN_SCORE), on `detect_tiles` windows too (detect/tiles.py)."""
    if isinstance(detector, str):
        if detector == GT_BOXES:
            return None
        if detector_min_score is None:
            detector_min_score = EVAL_DETECTOR_MIN_SCORE
        return create_detector(detector, min_score=detector_min_score, device=device, tiles=detect_tiles)
    if not callable(getattr(detector, "detect", None)):
        raise TransposeLiveError(f"detector must be 'gt', a detector spec or an object with .detect(frame), "
                                 f"got {detector!r}")
    return detector


def _person_boxes(source, coco, img_id: int, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (K, 4) xywh and their scores (K,) for one image, from the ground truth or the detector."""
    if source is None:
        return gt_boxes(coco, img_id)
    det = source.detect(frame)
    return (np.asarray(det.boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(det.scores, dtype=np.float32).reshape(-1))


def _image_results(img_id: int, poses: Sequence[Pose], boxes: np.ndarray, box_scores: np.ndarray,
                   min_person_score: float) -> list[dict]:
    """One image's COCO results: persons scoring at least `min_person_score` (Pose.score), rescored as the
    protocol does, after OKS-NMS."""
    results = [coco_result(img_id, pose.keypoints, pose.scores, rescore(pose.scores, box_score),
                           area=box_area_for_nms(box))
               for pose, box, box_score in zip(poses, boxes, box_scores) if pose.score >= min_person_score]
    return [results[k] for k in oks_nms(results, OKS_NMS_THRE)]


def predict_coco(
    estimator,
    ann_file: Any,
    images_dir: str | os.PathLike,
    detector: str | object = GT_BOXES,
    flip: bool = True,
    progress: bool = True,
    img_ids: Sequence[int] | None = None,
    min_person_score: float = 0.0,
    detector_min_score: float | None = None,
    detect_tiles: int = 0,
) -> list[dict]:
    """COCO keypoint results (dicts with image_id, category_id, keypoints, score, area) for the json's images.

    `estimator` has `.estimate(frame_bgr, boxes (K,4) xywh, box_scores) -> list[Pose]` (a PoseEstimator).
    `detector`: "gt" (ground-truth boxes, score 1), a detector spec for `create_detector` ("ssd", "none",
    "onnx:FILE"), or an object with `.detect(frame)`. Poses whose `Pose.score` is below `min_person_score`
    are dropped before OKS-NMS, like `--min-person-score` of the live commands. `detector_min_score`: a
    named detector's box score threshold (default EVAL_DETECTOR_MIN_SCORE, the COCO test protocol's
    low threshold; the live commands keep the detector's own, 0.3 for the SSD). `detect_tiles`: a named
    detector also runs on that many square windows of wide images (`--detect-tiles`).
    """
    if not Path(images_dir).is_dir():
        raise TransposeLiveError(f"image folder not found: {images_dir}")
    if not 0.0 <= min_person_score <= 1.0:
        raise TransposeLiveError(f"min_person_score must be between 0 and 1, got {min_person_score}")
    coco = load_coco(ann_file)
    ids = select_image_ids(coco) if img_ids is None else [int(i) for i in img_ids]
    if detector_min_score is not None and not 0.0 <= detector_min_score <= 1.0:
        raise TransposeLiveError(f"detector_min_score must be between 0 and 1, got {detector_min_score}")
    source = _box_source(detector, detector_min_score, getattr(estimator, "device", None), detect_tiles)
    if source is None:  # only images with a labelled person need reading
        ids = [i for i in ids if labelled_persons(coco, [i])]

    results: list[dict] = []
    with _flip_set(estimator, flip), Progress("eval", len(ids), unit="images", enabled=progress) as bar:
        for img_id in ids:
            if img_id not in coco.imgs:
                raise TransposeLiveError(f"image id {img_id} is not in the annotations")
            frame = read_image(images_dir, coco.imgs[img_id]["file_name"])
            boxes, box_scores = _person_boxes(source, coco, img_id, frame)
            if len(boxes):
                poses = estimator.estimate(frame, boxes, box_scores)
                results.extend(_image_results(img_id, poses, boxes, box_scores, min_person_score))
            bar.update()
    return results


# ---------------------------------------------------------------- scoring

def coco_eval(ann_file: Any, results: Sequence[dict], img_ids: Sequence[int] | None = None) -> dict:
    """pycocotools keypoint AP/AR as fractions: {"AP","AP50","AP75","APm","APl","AR"}.

    An empty result list scores 0; a statistic with no ground truth to score (e.g. no medium
    persons) is NaN (COCOeval's -1).
    """
    from pycocotools.cocoeval import COCOeval  # deferred: pycocotools, as in load_coco

    coco = load_coco(ann_file)
    if not results:
        return {k: 0.0 for k in STAT_NAMES}
    known = set(coco.getImgIds())
    stray = {r["image_id"] for r in results} - known
    if stray:
        raise TransposeLiveError(f"results name image ids not in the annotations, e.g. {sorted(stray)[:3]}")
    clean = [{k: r[k] for k in ("image_id", "category_id", "keypoints", "score")} for r in results]
    with contextlib.redirect_stdout(io.StringIO()):
        dets = coco.loadRes(clean)
        ev = COCOeval(coco, dets, iouType="keypoints")
        if img_ids is not None:
            ev.params.imgIds = sorted(int(i) for i in img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: (float(v) if v >= 0 else math.nan) for k, v in zip(STAT_NAMES, ev.stats)}

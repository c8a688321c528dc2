"""COCO keypoint evaluation with the paper's protocol (pycocotools COCOeval, iouType="keypoints").

Per image: person boxes (ground-truth boxes, score 1.0, or a person detector's) → one pose per box →
rescoring (box score × mean of the joint scores above 0.2) → OKS-NMS 0.9. As in the authors' code.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import TransposeLiveError
from .oks import oks_nms

IN_VIS_THRE = 0.2       # joints scoring above this count in the person score (official in_vis_thre)
OKS_NMS_THRE = 0.9      # official oks_thre
PERSON_CATEGORY = 1
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR")   # the first six of COCOeval.stats
BOX_MODES = ("gt", "detector")


# ---------------------------------------------------------------- dataset access

def load_coco(ann_file: Any):
    """A pycocotools COCO for a json path (quietly), or the COCO object passed in."""
    from pycocotools.coco import COCO

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
    import cv2

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


# ---------------------------------------------------------------- prediction

def box_area_for_nms(box: Sequence[float], aspect_ratio: float = 0.75, padding: float = 1.25) -> float:
    """The official `np.prod(scale * 200)`: the box grown to the crop's aspect ratio, times 1.25 each side."""
    w, h = float(box[2]), float(box[3])
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return w * h * padding * padding


def rescore(scores: np.ndarray, box_score: float, in_vis_thre: float = IN_VIS_THRE) -> float:
    """Box score × mean of the joint scores above `in_vis_thre` (0 when none is)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s) & (s > in_vis_thre)]
    return float(box_score) * (float(s.mean()) if s.size else 0.0)


def pose_to_result(img_id: int, keypoints: np.ndarray, scores: np.ndarray, box: Sequence[float],
                   box_score: float) -> dict:
    """One COCO keypoint result; missing (NaN) joints are written as (0, 0) with score 0."""
    kp = np.nan_to_num(np.asarray(keypoints, dtype=np.float64).reshape(-1, 2), nan=0.0)
    sc = np.nan_to_num(np.asarray(scores, dtype=np.float64).reshape(-1), nan=0.0)
    flat = np.concatenate([kp, sc[:, None]], axis=1).reshape(-1)
    return {
        "image_id": int(img_id),
        "category_id": PERSON_CATEGORY,
        "keypoints": [round(float(v), 3) for v in flat],
        "score": rescore(sc, box_score),
        "area": box_area_for_nms(box),
    }


class _Progress:
    """A one-line progress bar on stderr, redrawn at most twice a second."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = max(total, 1), label, enabled
        self.start = self.last = time.monotonic()

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.5):
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        rate = done / max(now - self.start, 1e-9)
        bar = "#" * int(frac * 24)
        sys.stderr.write(f"\r{self.label} [{bar:<24}] {done}/{self.total} {rate:.1f} img/s")
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


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


def predict_coco(
    estimator,
    ann_file: Any,
    images_dir: str | os.PathLike,
    boxes: str = "gt",
    detector=None,
    flip: bool = True,
    progress: bool = True,
    img_ids: Sequence[int] | None = None,
) -> list[dict]:
    """COCO keypoint results (dicts with image_id, category_id, keypoints, score) for the json's images.

    `estimator` has `.estimate(frame_bgr, boxes (K,4) xywh, box_scores) -> list[Pose]` (a PoseEstimator);
    boxes="detector" takes person boxes from `detector` (default: create_detector("ssd")).
    """
    if boxes not in BOX_MODES:
        raise TransposeLiveError(f"boxes must be one of {', '.join(BOX_MODES)}, got {boxes!r}")
    if not Path(images_dir).is_dir():
        raise TransposeLiveError(f"image folder not found: {images_dir}")
    coco = load_coco(ann_file)
    ids = select_image_ids(coco) if img_ids is None else [int(i) for i in img_ids]
    if boxes == "detector" and (detector is None or isinstance(detector, str)):
        from .detect import create_detector

        detector = create_detector(detector or "ssd")
    if boxes == "gt":  # only images with a labelled person need reading
        ids = [i for i in ids if labelled_persons(coco, [i])]

    bar = _Progress(len(ids), "eval", progress)
    results: list[dict] = []
    with _flip_set(estimator, flip):
        for n, img_id in enumerate(ids):
            if img_id not in coco.imgs:
                raise TransposeLiveError(f"image id {img_id} is not in the annotations")
            frame = read_image(images_dir, coco.imgs[img_id]["file_name"])
            if boxes == "gt":
                bxs, bsc = gt_boxes(coco, img_id)
            else:
                det = detector.detect(frame)
                bxs = np.asarray(det.boxes, dtype=np.float32).reshape(-1, 4)
                bsc = np.asarray(det.scores, dtype=np.float32).reshape(-1)
            if len(bxs):
                poses = estimator.estimate(frame, bxs, bsc)
                img_results = [pose_to_result(img_id, p.keypoints, p.scores, box, score)
                               for p, box, score in zip(poses, bxs, bsc)]
                results.extend(img_results[k] for k in oks_nms(img_results, OKS_NMS_THRE))
            bar.update(n + 1)
    bar.update(len(ids), force=True)
    return results


# ---------------------------------------------------------------- scoring

def coco_eval(ann_file: Any, results: Sequence[dict], img_ids: Sequence[int] | None = None) -> dict:
    """pycocotools keypoint AP/AR as fractions: {"AP","AP50","AP75","APm","APl","AR"}.

    An empty result list scores 0; a statistic with no ground truth to score (e.g. no medium
    persons) is NaN (COCOeval's -1).
    """
    from pycocotools.cocoeval import COCOeval

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

"""How many persons the detector loses on COCO images, and what that costs in keypoint AP.

    python tools/measure/measure_detector.py [--annotations JSON] [--images DIR] [--detector ssd]
                                     [--min-score 0.3] [--input-size 300x300|N] [--nms-iou 0.5]
                                     [--engine auto|openvino|torch|opencv] [--tiles N]
                                     [--no-ap] [--no-flip] [--json OUT|-]

Defaults: ../shared/data/coco_mini beside the checkout (set TRANSPOSE_LIVE_DATA or pass the paths), the SSD as the live
commands build it, the shipped model with the flip test. Reported:
- recall: ground-truth persons with labelled keypoints (non-crowd, what COCOeval scores) matched one-to-one
  by a detector box with IoU >= 0.5 (greedy, best score first), also per COCO size (small < 32², medium,
  large > 96² of the annotation's area); mean_best_iou of each person's best box;
- boxes: all detector boxes kept; unmatched_boxes: those overlapping no labelled person (any, crowd or not,
  with or without keypoints) by IoU >= 0.5 (false persons or unlabelled ones);
- box_AP, box_AP50, box_AR100: pycocotools person box scores of the boxes kept (iouType "bbox", every person
  annotation, crowds ignored as COCOeval does); box AP is the protocol's at a low --min-score (0.05);
- ms_per_image: the detector alone;
- AP, AP50, AP75, APm, APl, AR: pycocotools keypoint scores with these boxes (evaluate.predict_coco, the
  same path as `transpose-live eval --person-boxes detected`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from report import emit_report

from transpose_live.geometry import box_iou
from transpose_live.train import evaluate

DATA = Path(os.environ.get("TRANSPOSE_LIVE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SIZES = {"small": (0, 32 ** 2), "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, float("inf"))}


def build_detector(args):
    from transpose_live.detect import create_detector

    if args.detector != "ssd" or args.input_size is None and args.nms_iou is None and args.engine == "auto":
        return create_detector(args.detector, min_score=args.min_score, tiles=args.tiles)
    from transpose_live.detect.ssd import SSDDetector

    options = {"engine": args.engine}
    if args.min_score is not None:
        options["min_score"] = args.min_score
    if args.nms_iou is not None:
        options["nms_iou"] = args.nms_iou
    if args.input_size is not None:
        size = args.input_size.lower()
        options["input_size"] = int(size) if "x" not in size else tuple(int(v) for v in size.split("x"))
    detector = SSDDetector(**options)
    if args.tiles:
        from transpose_live.detect.tiles import TiledDetector

        return TiledDetector(detector, args.tiles)
    return detector


class TimedDetector:
    """The detector, its boxes kept per image and its time summed (predict_coco calls .detect once per image)."""

    def __init__(self, detector):
        self.detector, self.seconds, self.calls, self.found = detector, 0.0, 0, {}
        self.image = None

    pad = 0.0

    def detect(self, frame):
        t0 = time.perf_counter()
        det = self.detector.detect(frame)
        self.seconds += time.perf_counter() - t0
        if self.pad and len(det):
            det = padded(det, self.pad, frame.shape[1], frame.shape[0])
        self.calls += 1
        self.found[self.image] = det
        return det


def padded(det, pad: float, width: int, height: int):
    from transpose_live.detect import Detections
    from transpose_live.geometry import clip_boxes

    b = np.asarray(det.boxes, np.float64)
    grow = b[:, 2:] * pad
    corners = np.concatenate([b[:, :2] - grow, b[:, :2] + b[:, 2:] + grow], 1)
    return Detections(clip_boxes(corners, width, height), det.scores)


def recall_report(coco, img_ids, found: dict) -> dict:
    hit = total = boxes = unmatched = 0
    best_ious: list[float] = []
    by_size = {k: [0, 0] for k in SIZES}
    for img_id in img_ids:
        det = found.get(img_id)
        det_boxes = np.zeros((0, 4)) if det is None else np.asarray(det.boxes, np.float64)
        det_scores = np.zeros(0) if det is None else np.asarray(det.scores, np.float64)
        persons = evaluate.labelled_persons(coco, [img_id])
        gt = np.array([a["bbox"] for a in persons], np.float64).reshape(-1, 4)
        matched = evaluate.match_boxes(gt, det_boxes, det_scores)
        total += len(gt)
        hit += int((matched >= 0).sum())
        if len(gt) and len(det_boxes):
            best_ious.extend(box_iou(gt, det_boxes).max(1).tolist())
        else:
            best_ious.extend([0.0] * len(gt))
        for a, m in zip(persons, matched):
            for name, (lo, hi) in SIZES.items():
                if lo <= a["area"] < hi:
                    by_size[name][0] += int(m >= 0)
                    by_size[name][1] += 1
        anyone = coco.loadAnns(coco.getAnnIds(imgIds=[img_id], catIds=[1]))
        all_gt = np.array([a["bbox"] for a in anyone], np.float64).reshape(-1, 4)
        boxes += len(det_boxes)
        if len(det_boxes):
            near = box_iou(det_boxes, all_gt).max(1) if len(all_gt) else np.zeros(len(det_boxes))
            unmatched += int((near < 0.5).sum())
    report = dict(persons=total, found=hit, recall=round(hit / total, 4) if total else 0.0,
                  mean_best_iou=round(float(np.mean(best_ious)), 4) if best_ious else 0.0,
                  boxes=boxes, unmatched_boxes=unmatched)
    for name, (h, n) in by_size.items():
        report[f"recall_{name}"] = f"{h}/{n}"
    return report


def box_ap(coco, img_ids, found: dict) -> dict:
    """pycocotools person box AP of the detector's boxes (all person annotations, category 1)."""
    import contextlib
    import io

    from pycocotools.cocoeval import COCOeval

    results = [dict(image_id=int(i), category_id=1, bbox=[float(v) for v in box], score=float(score))
               for i in img_ids if found.get(i) is not None
               for box, score in zip(found[i].boxes, found[i].scores)]
    if not results:
        return dict(box_AP=0.0, box_AP50=0.0, box_AR100=0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes(results), iouType="bbox")
        ev.params.imgIds, ev.params.catIds = sorted(int(i) for i in img_ids), [1]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(box_AP=round(float(ev.stats[0]), 4), box_AP50=round(float(ev.stats[1]), 4),
                box_AR100=round(float(ev.stats[8]), 4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--annotations", default=str(DATA / "coco_mini" / "person_keypoints.json"))
    ap.add_argument("--images", default=str(DATA / "coco_mini" / "images"))
    ap.add_argument("--detector", default="ssd")
    ap.add_argument("--min-score", type=float)
    ap.add_argument("--input-size", help="SSD input: WxH squashed (300x300) or N, a short side keeping the aspect")
    ap.add_argument("--nms-iou", type=float)
    ap.add_argument("--tiles", type=int, default=0,
                    help="also detect on N square windows along a wide image's long side (--detect-tiles)")
    ap.add_argument("--engine", default="auto", choices=["auto", "openvino", "torch", "opencv"],
                    help="the SSD's engine (the same network; see transpose_live/detect/ssd.py)")
    ap.add_argument("--pad", type=float, default=0.0, help="grow every box by this fraction of its size per side "
                    "(clipped to the image) before the pose model sees it")
    ap.add_argument("--min-person-score", type=float, default=0.0, help="as eval's --min-person-score")
    ap.add_argument("--no-ap", action="store_true", help="recall only (no pose model)")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--max-images", type=int)
    ap.add_argument("--json", help="write the report here (- for stdout)")
    args = ap.parse_args()

    coco = evaluate.load_coco(args.annotations)
    img_ids = evaluate.select_image_ids(coco, args.max_images)
    timed = TimedDetector(build_detector(args))
    timed.pad = args.pad
    base = getattr(timed.detector, "detector", timed.detector)      # the tiled detector's own detector
    report = dict(detector=args.detector, min_score=getattr(base, "min_score", None),
                  input_size=str(getattr(base, "input_size", None)),
                  nms_iou=getattr(base, "nms_iou", None), pad=args.pad, images=len(img_ids),
                  tiles=args.tiles)
    if args.no_ap:
        for img_id in img_ids:
            timed.image = img_id
            timed.detect(evaluate.read_image(args.images, coco.imgs[img_id]["file_name"]))
    else:
        from transpose_live.pose.estimator import PoseEstimator

        class PerImage:   # predict_coco reads the images in id order; tell the detector which one it sees
            def __init__(self):
                self.order = iter(img_ids)

            def detect(self, frame):
                timed.image = next(self.order)
                return timed.detect(frame)

        estimator = PoseEstimator(device="cpu")
        results = evaluate.predict_coco(estimator, coco, args.images, detector=PerImage(), flip=not args.no_flip,
                                        progress=False, img_ids=img_ids, min_person_score=args.min_person_score)
        stats = evaluate.coco_eval(coco, results, img_ids=img_ids)
        report.update({k: round(v, 4) for k, v in stats.items()}, poses=len(results), flip=not args.no_flip)
    report.update(recall_report(coco, img_ids, timed.found))
    report.update(box_ap(coco, img_ids, timed.found))
    report["ms_per_image"] = round(1000 * timed.seconds / max(1, timed.calls), 1)
    emit_report(report, args.json, key_width=16)


if __name__ == "__main__":
    sys.exit(main())

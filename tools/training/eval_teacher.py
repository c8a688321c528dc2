"""The teacher's COCO AP under the same protocol as `transpose-live eval` (GT boxes, rescoring, OKS-NMS),
so the student's numbers can be put next to it.

    python tools/training/eval_teacher.py TEACHER.onnx ANNOTATIONS.json IMAGES_DIR [--flip] [--scales 1 1.25]

--flip / --scales run the teacher with the test-time augmentation tools/training/pseudo_label.py labels with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pseudo_label import Teacher  # noqa: E402

from transpose_live.train.evaluate import coco_eval, predict_coco  # noqa: E402
from transpose_live.types import Pose  # noqa: E402


class TeacherEstimator:
    """Adapts the teacher to the PoseEstimator.estimate interface that predict_coco calls."""

    def __init__(self, teacher: Teacher):
        self.teacher = teacher
        self.flip = False    # the teacher has no flip test; predict_coco toggles this attribute

    def estimate(self, frame_bgr, boxes=None, box_scores=None, attention=False):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.ones(len(boxes), np.float32) if box_scores is None else np.asarray(box_scores, np.float32)
        poses = []
        for box, s in zip(boxes, scores):
            out = self.teacher(frame_bgr, box)                      # (17, 3) x, y, score
            poses.append(Pose(out[:, :2].astype(np.float32), out[:, 2].astype(np.float32),
                              box=tuple(float(v) for v in box), box_score=float(s)))
        return poses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("teacher", type=Path)
    ap.add_argument("annotations")
    ap.add_argument("images_dir")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--flip", action="store_true", help="average with the mirrored crop (left/right swapped)")
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0],
                    help="crop side multipliers of max(w, h) to average over (default: 1.0)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    teacher = Teacher(args.teacher, args.threads, flip=args.flip, scales=tuple(args.scales))
    print(f"teacher {teacher.name}, test-time augmentation: {teacher.tta}", file=sys.stderr)
    est = TeacherEstimator(teacher)
    results = predict_coco(est, args.annotations, args.images_dir, detector="gt", flip=False, progress=True)
    stats = coco_eval(args.annotations, results)
    print("  ".join(f"{k} {v:.3f}" for k, v in stats.items()))
    if args.json:
        args.json.write_text(json.dumps(dict(stats, tta=teacher.tta), indent=2))


if __name__ == "__main__":
    main()

"""Poses as JSON: the per-frame JSON Lines record and the COCO keypoint result, each built in one place
(the writers, `image --json` and the evaluation all use these)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from transpose_live.types import FrameResult, Pose

PERSON_CATEGORY = 1


def json_number(value, digits: int) -> float | None:
    """A JSON number, or null for NaN/inf (JSON has no NaN)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def pose_record(pose: Pose) -> dict:
    """One person: {"id", "box": [x, y, w, h], "score", "keypoints": [[x, y, score] x 17]}, NaN as null;
    pixels to 0.01, scores to 1e-4."""
    keypoints = [[json_number(x, 2), json_number(y, 2), json_number(s, 4)]
                 for (x, y), s in zip(np.asarray(pose.keypoints, dtype=np.float64),
                                      np.asarray(pose.scores, dtype=np.float64))]
    box = [json_number(v, 2) for v in pose.box] if pose.box is not None else None
    return {"id": pose.track_id, "box": box, "score": json_number(pose.score, 4), "keypoints": keypoints}


def frame_record(result: FrameResult) -> dict:
    """One line of `--json` output: {"frame", "timestamp", "persons": [pose_record...]}."""
    return {"frame": int(result.index), "timestamp": json_number(result.timestamp, 6),
            "persons": [pose_record(p) for p in result.poses]}


def coco_result(image_id: int, keypoints: np.ndarray, scores: np.ndarray, score: float,
                area: float | None = None) -> dict:
    """One COCO keypoint result (what pycocotools' loadRes reads): keypoints flat [x, y, s] x 17 with
    missing (non-finite) joints as (0, 0, 0); `area` is kept for OKS-NMS when given."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    flat: list[float] = []
    for (x, y), s in zip(kp.tolist(), sc.tolist()):
        ok = math.isfinite(x) and math.isfinite(y) and math.isfinite(s)
        flat += [round(x, 2), round(y, 2), round(s, 4)] if ok else [0.0, 0.0, 0.0]
    record = {"image_id": int(image_id), "category_id": PERSON_CATEGORY, "keypoints": flat,
              "score": round(float(score), 5) if math.isfinite(score) else 0.0}
    if area is not None:
        record["area"] = float(area)
    return record


def pose_coco_result(pose: Pose, image_id: int) -> dict:
    """A Pose as a COCO result, scored like the pipeline scores persons (Pose.score)."""
    return coco_result(image_id, pose.keypoints, pose.scores, pose.score)


def coco_results(poses: Sequence[Pose], image_id: int) -> list[dict]:
    return [pose_coco_result(p, image_id) for p in poses]


__all__ = ["json_number", "pose_record", "frame_record", "coco_result", "pose_coco_result", "coco_results",
           "PERSON_CATEGORY"]

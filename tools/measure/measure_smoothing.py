"""Jitter and lag of the Kalman smoothing on a real video: one pass of detect → estimate → track, then the
raw and the smoothed keypoint series of every track compared.

    python tools/measure/measure_smoothing.py VIDEO [--frames 200] [--strength 0.5] [--json OUT]

jitter = mean |second difference| of each joint (px / frame²), over the frames where the joint is confident
(score >= 0.2) in three consecutive frames; lag = the shift that best aligns smoothed with raw (frames).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from transpose_live.detect import create_detector
from transpose_live.live.smoothing import PoseSmoother, jitter, lag_frames
from transpose_live.live.tracking import Tracker
from transpose_live.media.sources import open_source
from transpose_live.pose.estimator import PoseEstimator


def _series(frames: dict[int, np.ndarray], n: int) -> np.ndarray:
    out = np.full((n, 17, 2), np.nan)
    for i, kp in frames.items():
        out[i] = kp
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--strength", type=float, default=0.5)
    ap.add_argument("--min-track", type=int, default=30, help="ignore tracks shorter than this (frames)")
    ap.add_argument("--json")
    args = ap.parse_args()

    est, det, tracker = PoseEstimator(device="cpu"), create_detector("ssd"), Tracker()
    smoother = PoseSmoother(strength=args.strength)
    raw: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    smooth: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    n = 0
    with open_source(args.video) as src:
        for frame in src:
            if n >= args.frames:
                break
            d = det.detect(frame.image)
            poses = tracker.update(est.estimate(frame.image, d.boxes, d.scores) if len(d) else [])
            for tid in tracker.lost_ids:
                smoother.reset(tid)
            for p, s in zip(poses, smoother.smooth(poses, frame.timestamp)):
                if p.track_id is None:
                    continue
                ok = (p.scores >= 0.2)[:, None]
                raw[p.track_id][n] = np.where(ok, p.keypoints, np.nan)
                smooth[p.track_id][n] = np.where(ok, s.keypoints, np.nan)
            n += 1
    rows = []
    for tid in raw:
        if len(raw[tid]) < args.min_track:
            continue
        r, s = _series(raw[tid], n), _series(smooth[tid], n)
        first, last = min(raw[tid]), max(raw[tid]) + 1
        r, s = r[first:last], s[first:last]
        lag = lag_frames(np.nan_to_num(r - np.nanmean(r, axis=0)), np.nan_to_num(s - np.nanmean(s, axis=0)))
        rows.append({"track": tid, "frames": len(raw[tid]), "jitter_raw": jitter(r), "jitter_smoothed": jitter(s),
                     "lag_frames": lag})
    jr = float(np.mean([x["jitter_raw"] for x in rows]))
    js = float(np.mean([x["jitter_smoothed"] for x in rows]))
    lag = float(np.mean([x["lag_frames"] for x in rows]))
    summary = {"video": args.video, "frames": n, "tracks": len(rows), "strength": args.strength,
               "jitter_raw": jr, "jitter_smoothed": js, "jitter_reduction": 1 - js / jr, "mean_lag_frames": lag}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "tracks": rows}, f, indent=2)


if __name__ == "__main__":
    main()

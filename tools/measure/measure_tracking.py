"""How well persons keep one id on a real video: one pass of the live path (PersonFollower -> TrackSmoother,
as the pipeline runs them, with the run options' defaults), then counts over the poses it outputs.

    python tools/measure/measure_tracking.py VIDEO [--max-frames N] [--detect-every N] [--json OUT|-]
                                     [--save POSES.pkl] [--reference POSES.pkl] [--cache CACHE.pkl]
                                     [--no-merge] [--no-reid]

Reported:
- distinct_ids: track ids seen over the run;
- walkers: how many persons are visible at once, estimated from the poses per frame: `walkers_max` is the
  most in any frame, `walkers_p90` the 90th percentile over frames with anyone; ids_per_walker =
  distinct_ids / walkers_max (with no ground truth this is an upper bound on the real people count's
  share: a walker who leaves and a new one who enters rightly get new ids);
- mid_frame_births: ids whose first pose lies away from the frame border (> 5 % of the frame in from
  every side): people walk in over the border or from behind something, so most of these are an id
  lost and made anew for someone already there;
- duplicate_rate: share of frames with >= 2 persons holding a pair of poses with OKS > 0.5 (joints
  confident in both, score >= 0.2; scale: the mean area of the two pose boxes);
- track_length_p10/p50/p90/max: frames per id;
- model_ms / track_ms: time per frame of PersonFollower (detector + pose model) and of TrackSmoother.

`--save` keeps the output poses; `--reference` compares this run's poses against saved ones frame by
frame (e.g. --detect-every 3 against a --detect-every 1 run): the share of reference persons found again
(best OKS >= 0.5, one-to-one) and their mean OKS. `--cache` memoises the detector's boxes and the pose
model's output per frame in a file, so a rerun that sees the same boxes (tracking changes only) needs no
model; timings of cached frames are then meaningless (the report says how many frames were cached).
`--no-merge --no-reid` with --detect-every 1 runs the tracking as it was before duplicate poses were merged
and tracks re-identified (the "before" of docs/MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from report import emit_report
from scipy.optimize import linear_sum_assignment

from transpose_live.geometry import pose_box, pose_pair_oks
from transpose_live.live import following
from transpose_live.live.following import PersonFollower, TrackSmoother
from transpose_live.live.spec import RunSpec
from transpose_live.media.sources import open_source

DUPLICATE_OKS = 0.5
FOUND_OKS = 0.5
BORDER = 0.05


def pair_oks(a, b) -> float:
    """OKS of two output poses: `geometry.pose_pair_oks` (joints confident in both, score >= 0.2; scale:
    the mean area of their boxes; 0 with fewer than 3 such joints), the measure the follower merges by."""
    return pose_pair_oks(a, b)


# ---------------------------------------------------------------- cache of the model's work

class Memo:
    """Detector and pose-model outputs per frame, kept in a file between runs (key: frame index, boxes)."""

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self.data: dict = {}
        if self.path and self.path.is_file():
            self.data = pickle.loads(self.path.read_bytes())
        self.hits = self.misses = 0
        self.changed = False

    def get(self, key, compute):
        if self.path is None:
            return compute()
        if key in self.data:
            self.hits += 1
            return self.data[key]
        self.misses += 1
        self.changed = True
        self.data[key] = value = compute()
        return value

    def save(self) -> None:
        if self.path and self.changed:
            self.path.write_bytes(pickle.dumps(self.data, protocol=pickle.HIGHEST_PROTOCOL))


class MemoDetector:
    def __init__(self, detector, memo: Memo, tag: str):
        self.detector, self.memo, self.tag, self.frame = detector, memo, tag, -1

    def detect(self, image):
        return self.memo.get(("det", self.tag, self.frame), lambda: self.detector().detect(image))


class MemoEstimator:
    def __init__(self, estimator, memo: Memo, tag: str):
        self.estimator, self.memo, self.tag, self.frame = estimator, memo, tag, -1

    def estimate(self, image, boxes, box_scores=None, attention=False):
        b = np.round(np.asarray(boxes, np.float64).reshape(-1, 4), 2)
        s = None if box_scores is None else np.round(np.asarray(box_scores, np.float64), 4)
        key = ("pose", self.tag, self.frame, b.tobytes(), None if s is None else s.tobytes())
        return self.memo.get(key, lambda: self.estimator().estimate(image, boxes, box_scores, attention))


def _lazy(make):
    made = []

    def get():
        if not made:
            made.append(make())
        return made[0]
    return get


# ---------------------------------------------------------------- the run

def run(video: str, spec: RunSpec, max_frames: int | None, cache: str | None, merge: bool = True,
        reid: bool = True, min_hits: int = 1) -> dict:
    from transpose_live.detect import create_detector
    from transpose_live.live.run import load_estimator

    memo = Memo(cache)
    detector = MemoDetector(_lazy(lambda: create_detector(spec.detector)), memo, f"{spec.detector}")
    # what decides the model's output is in the key: a cache never answers for another backend or model
    model_tag = "|".join(str(getattr(spec, k, None)) for k in ("model", "weights", "flip", "backend", "precision",
                                                                "image_size"))
    estimator = MemoEstimator(_lazy(lambda: load_estimator(spec)), memo, model_tag)
    follower = PersonFollower.from_spec(detector, estimator, spec)
    tracks = TrackSmoother(spec.smooth, spec.smooth_strength)
    tracks.tracker.reid = reid
    tracks.tracker.min_hits = min_hits
    # merge=False: no duplicate/mixture checks (with --detect-every 1 this is the code before they existed)
    saved = following.one_pose_per_person
    if not merge:
        following.one_pose_per_person = lambda poses: poses
    frames: list[list] = []
    size = (0, 0)
    model_s = track_s = 0.0
    with open_source(video) as src:
        for frame in src:
            if max_frames is not None and frame.index >= max_frames:
                break
            detector.frame = estimator.frame = frame.index
            size = frame.image.shape[1], frame.image.shape[0]
            t0 = time.perf_counter()
            poses = follower(frame.image)
            t1 = time.perf_counter()
            poses = tracks(poses, frame.timestamp)
            track_s += time.perf_counter() - t1
            model_s += t1 - t0
            frames.append(poses)
    following.one_pose_per_person = saved
    memo.save()
    n = max(1, len(frames))
    return dict(frames=frames, size=size, model_ms=1000 * model_s / n, track_ms=1000 * track_s / n,
                detector_calls=follower.detector_calls, cached_calls=memo.hits, computed_calls=memo.misses)


def measure(frames: list[list], size: tuple[int, int]) -> dict:
    """The counts of the module docstring over per-frame pose lists (poses carry track_id)."""
    counts = np.array([len(f) for f in frames])
    seen = counts[counts > 0]
    lengths: Counter = Counter()
    first: dict[int, object] = {}
    crowded = duplicated = 0
    for poses in frames:
        for p in poses:
            if p.track_id is not None:
                lengths[p.track_id] += 1
                first.setdefault(p.track_id, p)
        if len(poses) >= 2:
            crowded += 1
            if any(pair_oks(a, b) > DUPLICATE_OKS for i, a in enumerate(poses) for b in poses[i + 1:]):
                duplicated += 1
    w, h = size
    mid = 0
    for p in first.values():
        box = pose_box(p)
        if box is not None and box[0] > BORDER * w and box[1] > BORDER * h \
                and box[0] + box[2] < (1 - BORDER) * w and box[1] + box[3] < (1 - BORDER) * h:
            mid += 1
    walkers_max = int(seen.max()) if seen.size else 0
    lens = np.array(sorted(lengths.values())) if lengths else np.zeros(1)
    return dict(
        n_frames=len(frames), persons_per_frame=round(float(counts.mean()), 3) if len(counts) else 0.0,
        walkers_max=walkers_max, walkers_p90=float(np.percentile(seen, 90)) if seen.size else 0.0,
        distinct_ids=len(lengths), ids_per_walker=round(len(lengths) / max(1, walkers_max), 2),
        mid_frame_births=mid, frames_with_2plus=crowded, duplicate_frames=duplicated,
        duplicate_rate=round(duplicated / crowded, 4) if crowded else 0.0,
        track_length_p10=float(np.percentile(lens, 10)), track_length_p50=float(np.percentile(lens, 50)),
        track_length_p90=float(np.percentile(lens, 90)), track_length_max=int(lens.max()),
    )


def compare(frames: list[list], reference: list[list]) -> dict:
    """Reference persons found again in the same frame (one-to-one by OKS) and their mean OKS."""
    found = total = extra = 0
    oks_sum = 0.0
    for poses, ref in zip(frames, reference):
        total += len(ref)
        if not ref or not poses:
            extra += len(poses)
            continue
        sim = np.array([[pair_oks(r, p) for p in poses] for r in ref])    # (R, P)
        rows, cols = linear_sum_assignment(-sim)
        good = sim[rows, cols] >= FOUND_OKS
        found += int(good.sum())
        oks_sum += float(sim[rows, cols].sum())
        extra += len(poses) - int(good.sum())
    n = min(len(frames), len(reference))
    return dict(reference_frames=n, reference_persons=total, found=found,
                recall=round(found / total, 4) if total else 0.0,
                mean_oks=round(oks_sum / total, 4) if total else 0.0, unmatched_outputs=extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--detect-every", type=int)
    ap.add_argument("--min-person-score", type=float)
    ap.add_argument("--detector")
    ap.add_argument("--detect-async", action="store_true", help="the detector beside the pose step (no --cache)")
    ap.add_argument("--no-smooth", action="store_true")
    ap.add_argument("--no-merge", action="store_true", help="keep duplicate poses and mixtures (the old behaviour)")
    ap.add_argument("--no-reid", action="store_true", help="no re-identification over gaps (the old tracker)")
    ap.add_argument("--min-hits", type=int, default=1, help="Tracker.min_hits: matches before a person gets an id")
    ap.add_argument("--json", help="write the report here (- for stdout)")
    ap.add_argument("--save", help="keep the output poses in this pickle")
    ap.add_argument("--reference", help="poses saved by --save to compare against")
    ap.add_argument("--cache", help="memoise detector and model outputs in this pickle")
    args = ap.parse_args()

    options = {k: v for k, v in (("detect_every", args.detect_every), ("min_person_score", args.min_person_score),
                                 ("detector", args.detector), ("max_frames", args.max_frames)) if v is not None}
    if args.no_smooth:
        options["smooth"] = False
    if args.detect_async:
        if args.cache:   # the cache keys detections by the frame being posed; a detector thread lags behind it
            ap.error("--detect-async cannot be combined with --cache")
        options["detect_async"] = True
    spec = RunSpec.from_options(**options)
    out = run(args.video, spec, args.max_frames, args.cache, merge=not args.no_merge, reid=not args.no_reid,
              min_hits=args.min_hits)
    report = dict(video=Path(args.video).name, detect_every=spec.detect_every, detect_async=spec.detect_async,
                  merge=not args.no_merge,
                  reid=not args.no_reid, min_hits=args.min_hits,
                  min_person_score=spec.min_person_score, detector=spec.detector,
                  **measure(out["frames"], out["size"]),
                  model_ms=round(out["model_ms"], 1), track_ms=round(out["track_ms"], 2),
                  detector_calls=out["detector_calls"], cached_calls=out["cached_calls"],
                  computed_calls=out["computed_calls"])
    if args.save:
        Path(args.save).write_bytes(pickle.dumps(out["frames"], protocol=pickle.HIGHEST_PROTOCOL))
    if args.reference:
        report["vs_reference"] = compare(out["frames"], pickle.loads(Path(args.reference).read_bytes()))
    emit_report(report, args.json, key_width=20)


if __name__ == "__main__":
    sys.exit(main())

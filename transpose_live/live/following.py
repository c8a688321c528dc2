"""Following persons from frame to frame: which boxes the model sees (`PersonFollower`), and the ids and
smoothing of the poses it finds (`TrackSmoother`). The pipeline, the photo command and the benchmarks all
find poses through these, so the same settings give the same persons everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from transpose_live.geometry import box_containment, box_iou, pose_arrays, pose_oks_matrix
from transpose_live.skeleton import OKS_SIGMAS
from transpose_live.types import Pose

if TYPE_CHECKING:
    from transpose_live.detect.beside import DetectorBeside

FOLLOW_JOINT_SCORE = 0.2   # joints at or above this shape a followed person's next box
DUPLICATE_IOU = 0.6        # two boxes overlapping this much hold one person
DUPLICATE_OKS = 0.5        # two poses this similar are one person (two persons side by side score ~0)
OWNED_OKS = 0.5            # a joint this close (its OKS term) to one of another person's joints belongs to them
OWNED_JOINTS = 3           # ... and a pose with this many joints owned by each of two others,
MIXTURE_SHARE = 0.75       # ... together this share of its confident joints, is a mixture
BOXED_SHARE = 0.5          # a followed box this much inside a detector box is that detection's person
GROUP_ASPECT = 2.0         # a box this many times wider than tall, scoring below GROUP_SCORE, around another
GROUP_SCORE = 0.25         # ... person's centre, boxes a group or a stretch of street (vtest: 0.08-0.23), not a
                           # person lying there (COCO persons lying, in their own boxes: 0.30-0.78)


def follow_box(pose: Pose, width: int, height: int, pad: float) -> np.ndarray | None:
    """The box (x, y, w, h) to look for this person in the next frame: the extent of its confident joints,
    grown by `pad` of its size on every side (joints sit inside the body: the head top and feet lie beyond
    them) and clipped to the frame. None with fewer than 3 confident joints."""
    kp = np.asarray(pose.keypoints, np.float64).reshape(-1, 2)
    sc = np.nan_to_num(np.asarray(pose.scores, np.float64).reshape(-1), nan=0.0)
    ok = np.isfinite(kp).all(1) & (sc >= FOLLOW_JOINT_SCORE)
    if ok.sum() < 3:
        return None
    lo, hi = kp[ok].min(0), kp[ok].max(0)
    size = hi - lo
    size = np.maximum(size, 0.25 * size.max())      # a side view or a lying person: not a sliver
    lo, hi = lo - pad * size, hi + pad * size
    lo = np.clip(lo, 0, (width, height))
    hi = np.clip(hi, 0, (width, height))
    w, h = hi - lo
    if w < 2 or h < 2:
        return None
    return np.array([lo[0], lo[1], w, h])


def mean_score(pose: Pose) -> float:
    s = np.asarray(pose.scores, np.float64)
    s = s[np.isfinite(s)]
    return float(s.mean()) if s.size else 0.0


def confident(poses: list[Pose], min_person_score: float) -> list[Pose]:
    """The poses worth showing: person score (box score x mean joint score) at or above the threshold."""
    return [p for p in poses if p.score >= min_person_score]


class PersonFollower:
    """Which boxes the model sees on each frame, and the poses it finds there.

    The detector runs every `detect_every` frames; in between each person is looked for in the box of
    their previous pose (as real-time pose systems do: the pose is a better box than a stale detection).
    A person whose pose turns unconfident (mean score < min_score) is lost; a lost person, or nobody
    left to follow, runs the detector at once on the same frame. Poses scoring below `min_person_score`
    are never returned: nobody found means no poses.

    detect_async: the detector runs on its own thread beside the pose step (detect_beside.py): a due frame
    starts a detection and is followed meanwhile; when it finishes, its boxes decide who is looked for on
    the next frame, as in series, except that a boxed person who is followed keeps the box of their last
    pose (the detection is older); a lost person starts a detection instead of stopping the frame. Only a
    frame with nobody to follow waits for the detector.
    """

    def __init__(self, detector, estimator, detect_every: int = 1, min_score: float = 0.3, pad: float = 0.1,
                 attention: bool = False, min_person_score: float = 0.0, detect_async: bool = False):
        from transpose_live.detect.beside import DetectorBeside  # deferred: detect's modules load cv2

        self.detector = detector
        self.estimator = estimator
        self.detect_every = int(detect_every)
        self.min_score = float(min_score)
        self.pad = float(pad)
        self.attention = bool(attention)
        self.min_person_score = float(min_person_score)
        self._beside = DetectorBeside(detector) if detect_async else None
        self._calls = 0
        self.reset()

    @classmethod
    def from_spec(cls, detector, estimator, spec) -> "PersonFollower":
        return cls(detector, estimator, spec.detect_every, spec.follow_min_score, spec.follow_pad,
                   spec.attention, spec.min_person_score, spec.detect_async)

    @property
    def detector_calls(self) -> int:
        return self._calls + (self._beside.calls if self._beside is not None else 0)

    def reset(self) -> None:
        self._followed: list[Pose] = []
        self._since_detection = 0
        if self._beside is not None:
            self._beside.forget()

    def __call__(self, image: np.ndarray) -> list[Pose]:
        if self._beside is not None:
            return self._call_beside(image, self._beside)
        h, w = image.shape[:2]
        due = self._since_detection + 1 >= self.detect_every
        poses = None
        if not due and self._followed:
            poses = self._follow(image, w, h)       # None when someone was lost
        if poses is None:
            poses = self._detect(image)
            self._since_detection = 0
        else:
            self._since_detection += 1
        poses = one_pose_per_person(poses)
        self._followed = [p for p in poses if mean_score(p) >= self.min_score]
        return confident(poses, self.min_person_score)

    def _call_beside(self, image: np.ndarray, beside: DetectorBeside) -> list[Pose]:
        h, w = image.shape[:2]
        follow = [(box, p.box_score) for p in self._followed
                  if (box := follow_box(p, w, h, self.pad)) is not None]
        found = beside.take()
        if found is None and not follow:          # nobody to look for: wait for the detector
            found = beside.detect_now(image)
        if found is not None:
            self._since_detection = 0
            boxes = np.asarray(found.boxes, np.float64).reshape(-1, 4)
            scores: list[float] = list(np.asarray(found.scores, np.float64).reshape(-1))
            # as in series, the detection decides who is there; but it is a frame or more old, so a person
            # it boxed who is followed keeps the box of their last pose (where they are now)
            followed = np.zeros(len(boxes), bool)
            for d, k in _followed_in_detections(np.array([b for b, _ in follow]).reshape(-1, 4), boxes):
                boxes[d], followed[d] = follow[k][0], True
        else:
            self._since_detection += 1
            boxes = np.array([b for b, _ in follow]).reshape(-1, 4)
            scores = [s for _, s in follow]
            followed = np.ones(len(boxes), bool)
        if self._since_detection + 1 >= self.detect_every:
            beside.submit(image)            # runs while this frame's poses are estimated
        poses = (self.estimator.estimate(image, boxes, box_scores=scores, attention=self.attention)
                 if len(boxes) else [])
        # a followed person turned unconfident is lost: detect this frame beside the next ones (an
        # unconfident pose in a fresh detector box is only not followed, as in series)
        if len(poses) != len(boxes):              # (a box the estimator refused: the pairing is unknown)
            followed = np.full(len(poses), bool(followed.any()))
        if any(f and mean_score(p) < self.min_score for p, f in zip(poses, followed)):
            if not beside.submit(image):
                self._since_detection = self.detect_every    # busy: the next frame asks again
        poses = one_pose_per_person(poses)
        self._followed = [p for p in poses if mean_score(p) >= self.min_score]
        return confident(poses, self.min_person_score)

    def _detect(self, image: np.ndarray) -> list[Pose]:
        self._calls += 1
        found = self.detector.detect(image)
        return self.estimator.estimate(image, found.boxes, box_scores=found.scores, attention=self.attention)

    def _follow(self, image: np.ndarray, w: int, h: int) -> list[Pose] | None:
        boxes, scores = [], []
        for pose in self._followed:
            box = follow_box(pose, w, h, self.pad)
            if box is None:
                return None
            boxes.append(box)
            scores.append(pose.box_score)
        poses = self.estimator.estimate(image, np.stack(boxes), box_scores=scores, attention=self.attention)
        if any(mean_score(p) < self.min_score for p in poses):
            return None
        return poses


def _followed_in_detections(follow: np.ndarray, detected: np.ndarray) -> list[tuple[int, int]]:
    """(detection, followed) pairs, one to one: a followed box (the joints' extent) at least `BOXED_SHARE`
    inside a detector box is that detection's person. Assigned jointly (a small person inside a big
    person's box must not take the big one's), ties going to the better box overlap."""
    if not len(follow) or not len(detected):
        return []
    from scipy.optimize import linear_sum_assignment  # deferred: scipy loads only when someone is followed

    inside = box_containment(follow, detected)                               # (followed, detected)
    fit = np.where(inside >= BOXED_SHARE, inside + 0.5 * box_iou(follow, detected), 0.0)
    rows, cols = linear_sum_assignment(-fit)
    return [(int(d), int(k)) for k, d in zip(rows, cols) if fit[k, d] > 0]


def one_pose_per_person(poses: list[Pose]) -> list[Pose]:
    """The poses with duplicates, mixtures and group boxes left out (order kept)."""
    return drop_group_boxes(drop_mixtures(drop_duplicates(poses)))


def drop_duplicates(poses: list[Pose], iou: float = DUPLICATE_IOU, min_oks: float = DUPLICATE_OKS) -> list[Pose]:
    """One pose per person: of two poses on one person, keep the more confident. Two detector boxes (or
    two followed boxes that slid together) on one person give two near-equal poses even when the boxes
    differ (a tight and a loose box: IoU ~0.4), so poses count as one person when their boxes overlap by
    `iou` or their keypoints agree (OKS > `min_oks`)."""
    if len(poses) < 2:
        return poses
    boxes = np.array([p.box if p.box is not None else (0, 0, 0, 0) for p in poses], np.float64)
    same = (box_iou(boxes, boxes) >= iou) | (pose_oks_matrix(poses) > min_oks)      # (N, N)
    kept: list[int] = []
    for i in sorted(range(len(poses)), key=lambda k: -mean_score(poses[k])):
        if not same[i, kept].any():
            kept.append(i)
    return [poses[i] for i in sorted(kept)]


def drop_mixtures(poses: list[Pose]) -> list[Pose]:
    """Leave out a pose stretched over two persons (a detector box around two walkers gives one skeleton
    with the legs of one and the arms of the other): `OWNED_JOINTS` or more of its joints lie on joints of
    one other pose and as many on a second one, and between them those two own `MIXTURE_SHARE` of its
    confident joints. A real person in a close row shares only the joints at their sides with each
    neighbour; their head and the middle of their body are their own."""
    if len(poses) < 3:
        return poses
    owned, ok = joints_on_others(poses)                                              # (N, K, N), (N, K)
    counts = owned.sum(1)                                                            # (N, N)
    kept = []
    for i, pose in enumerate(poses):
        owners = counts[i] >= OWNED_JOINTS
        share = owned[i][:, owners].any(1).sum() / max(1, int(ok[i].sum()))
        if int(owners.sum()) < 2 or share < MIXTURE_SHARE:
            kept.append(pose)
    return kept


def drop_group_boxes(poses: list[Pose]) -> list[Pose]:
    """Leave out a weak pose in a box lying across others: the detector's odd wide box over a row of walkers
    and the road between them (vtest.avi: 41 such poses, skeletons strewn along the kerb, each box around
    1-8 walkers) gets a "person" the model can only guess at. Wider than `GROUP_ASPECT` x its height, its
    person score below `GROUP_SCORE` and another person's box centre inside: all three, so that a person
    lying on the ground, scored with any confidence or alone in their box, stays."""
    if len(poses) < 2:
        return poses
    boxes = np.array([p.box if p.box is not None else (0, 0, 0, 0) for p in poses], np.float64)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    lo, hi = boxes[:, None, :2], boxes[:, None, :2] + boxes[:, None, 2:]              # (N, 1, 2) outer
    inside: np.ndarray = np.all((centres[None] >= lo) & (centres[None] <= hi), axis=-1)   # (N outer, N inner)
    np.fill_diagonal(inside, False)
    inside[:, [p.box is None for p in poses]] = False                              # no box, no centre
    wide = boxes[:, 2] > GROUP_ASPECT * boxes[:, 3]
    weak = np.array([p.score < GROUP_SCORE for p in poses])
    group = wide & weak & inside.any(1)
    return [p for p, g in zip(poses, group) if not g]


def joints_on_others(poses: list[Pose]) -> tuple[np.ndarray, np.ndarray]:
    """owned (N, K, N): pose i's confident joint k lies on one of pose j's confident joints (any joint: a
    skeleton over two persons may have its left side on one's right), i.e. within the distance at which
    the joint's OKS term, on j's scale (box area), is above `OWNED_OKS`; never for j = i. And ok (N, K):
    the confident joints."""
    kp, ok, area = pose_arrays(poses)
    d2 = ((kp[:, :, None, None] - kp[None, None]) ** 2).sum(-1)                     # (N, K, N, K)
    d2 = np.where(ok[None, None], d2, np.inf).min(-1)                                # (N, K, N) nearest of j's
    var = (2 * OKS_SIGMAS) ** 2
    term = np.exp(-d2 / (2 * np.maximum(area, 1e-9)[None, None] * var[None, :, None]))
    owned = (term > OWNED_OKS) & ok[:, :, None]
    owned[np.arange(len(poses)), :, np.arange(len(poses))] = False
    return owned, ok


class TrackSmoother:
    """Track ids, then Kalman smoothing per track: one step per frame. `smooth` may be switched between
    frames (the window's S key); filters from before a switch are dropped, they would be stale."""

    def __init__(self, smooth: bool = True, strength: float = 0.5):
        from transpose_live.live.smoothing import PoseSmoother  # deferred: filterpy and scipy
        from transpose_live.live.tracking import Tracker  # deferred: scipy

        self.tracker = Tracker()
        self.smoother = PoseSmoother(strength)
        self.smooth = bool(smooth)
        self._smoothing = self.smooth

    def __call__(self, poses: list[Pose], timestamp: float) -> list[Pose]:
        poses = self.tracker.update(poses)
        for track_id in self.tracker.lost_ids:
            self.smoother.reset(track_id)
        if self.smooth != self._smoothing:
            self._smoothing = self.smooth
            self.smoother.reset()
        return self.smoother.smooth(poses, timestamp) if self._smoothing else poses


__all__ = ["PersonFollower", "TrackSmoother", "follow_box", "mean_score", "confident", "one_pose_per_person",
           "drop_duplicates", "drop_mixtures", "drop_group_boxes", "FOLLOW_JOINT_SCORE"]

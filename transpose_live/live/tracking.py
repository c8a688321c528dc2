"""Stable person ids across frames: Hungarian matching on box IoU and keypoint OKS, with a short memory.

Each track remembers its last box, keypoints and a smoothed per-frame velocity of the box centre, so it is
matched where it is expected to be (people crossing paths keep their ids) or where it was last seen (people
who stop while hidden). Persons not matched that way are then matched again to the tracks that missed
frames (re-identification over short gaps): by how far their box centre lies from where the track is
expected, in units of the track's height, among boxes of a like height. A track unmatched for more than
`max_missed` frames is dropped and its id reported once in `lost_ids` (the smoother resets on it); ids
are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from transpose_live.errors import TransposeLiveError
from transpose_live.geometry import box_iou, oks, pose_box
from transpose_live.skeleton import OKS_SIGMAS
from transpose_live.types import Pose

OKS_MIN_SCORE = 0.2   # joints below this (or NaN) take no part in OKS
OKS_MIN_JOINTS = 3    # pairs with fewer joints confident in both are compared by box IoU alone
REID_RADIUS = 0.6     # a missed track takes back a person whose centre lies within this many of its heights
REID_RADIUS_GROWTH = 0.1   # ... plus this many per frame missed (where it went is less sure)
REID_HEIGHT_RATIO = 1.5    # ... and whose height is within this factor of the track's


@dataclass
class _Track:
    track_id: int | None            # None until confirmed (min_hits matches)
    box: np.ndarray                # (4,) x, y, w, h of the last match
    keypoints: np.ndarray | None   # (17, 2) of the last match
    scores: np.ndarray | None      # (17,)
    velocity: np.ndarray           # (2,) box-centre pixels per frame
    missed: int = 0
    hits: int = 1

    def predicted_shift(self) -> np.ndarray:
        return self.velocity * (self.missed + 1)


def pose_oks(kp_a: np.ndarray, scores_a: np.ndarray, kp_b: np.ndarray, scores_b: np.ndarray,
             area: float) -> float | None:
    """OKS of two poses (17, 2) over the joints confident in both, scaled by the detection's box `area`;
    None when fewer than `OKS_MIN_JOINTS` are (too few joints say nothing about who is who)."""
    both = _confident(kp_a, scores_a) & _confident(kp_b, scores_b)        # (17,)
    if both.sum() < OKS_MIN_JOINTS or area <= 0:
        return None
    return float(oks(kp_a, kp_b[None], np.array([area]), both[None])[0])


def _confident(kp: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return (np.nan_to_num(scores, nan=0.0) >= OKS_MIN_SCORE) & np.all(np.isfinite(kp), axis=1)


class Tracker:
    """Assigns `track_id`s. A pair is admissible when its IoU ≥ `iou_threshold` or (with `use_oks`) its OKS ≥
    `oks_threshold`; the assignment maximises the mean of the two (IoU alone without keypoints)."""

    def __init__(
        self,
        iou_threshold: float = 0.2,   # small, fast walkers at 10 fps overlap little frame to frame
        max_missed: int = 30,         # vtest.avi: 0.3/15 gave 54 ids in 200 frames, 0.2/30 gives 43
        use_oks: bool = True,
        oks_threshold: float = 0.5,
        velocity_smoothing: float = 0.5,
        reid: bool = True,
        min_hits: int = 1,
    ) -> None:
        for name, value in (("iou_threshold", iou_threshold), ("oks_threshold", oks_threshold),
                            ("velocity_smoothing", velocity_smoothing)):
            if not 0.0 <= value <= 1.0:
                raise TransposeLiveError(f"{name} must be between 0 and 1, got {value}")
        if min_hits < 1:
            raise TransposeLiveError(f"min_hits must be 1 or more, got {min_hits}")
        if max_missed < 0:
            raise TransposeLiveError(f"max_missed must be 0 or more, got {max_missed}")
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.use_oks = bool(use_oks)
        self.oks_threshold = float(oks_threshold)
        self.velocity_smoothing = float(velocity_smoothing)
        self.reid = bool(reid)
        # > 1: a person's pose carries no id until seen this often (flickers never get one)
        self.min_hits = int(min_hits)
        self.reset()

    def reset(self) -> None:
        self._tracks: list[_Track] = []
        self._next_id = 1
        self.lost_ids: list[int] = []   # ids dropped by the last update()

    @property
    def active_ids(self) -> list[int]:
        return [t.track_id for t in self._tracks if t.track_id is not None]

    def update(self, poses: list[Pose]) -> list[Pose]:
        """The same poses (new objects, same order) with `track_id` set; None for a pose with no box or keypoints."""
        boxes = {i: b for i, b in enumerate(pose_box(p) for p in poses) if b is not None}   # pose index -> box
        det_idx = list(boxes)
        ids: list[int | None] = [None] * len(poses)

        sim, admissible = self._similarity([poses[i] for i in det_idx], [boxes[i] for i in det_idx])
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        if sim.size:
            rows, cols = linear_sum_assignment(-np.where(admissible, sim, -1.0))
            for r, c in zip(rows, cols):
                if admissible[r, c]:
                    i = det_idx[c]
                    ids[i] = self._match(self._tracks[r], poses[i], boxes[i])
                    matched_tracks.add(r)
                    matched_dets.add(i)
        if self.reid:
            for r, i in self._reidentify(matched_tracks, [i for i in det_idx if i not in matched_dets], boxes):
                ids[i] = self._match(self._tracks[r], poses[i], boxes[i])
                matched_tracks.add(r)
                matched_dets.add(i)

        for k, track in enumerate(self._tracks):
            if k not in matched_tracks:
                track.missed += 1
        self.lost_ids = [t.track_id for t in self._tracks if t.missed > self.max_missed and t.track_id is not None]
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]

        for i in det_idx:
            if i not in matched_dets:
                ids[i] = self._new_track(poses[i], boxes[i])
        return [replace(p, track_id=tid) for p, tid in zip(poses, ids)]

    def _similarity(self, poses: list[Pose], boxes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(tracks, detections) similarity and admissibility, against the predicted and last positions.
        Each track is compared with all detections at once (the same arithmetic as `pose_oks` per pair;
        one pair at a time was most of the tracking stage's time with ~6 persons and ~20 tracks)."""
        n, m = len(self._tracks), len(poses)
        sim, ok = np.zeros((n, m)), np.zeros((n, m), bool)
        if n == 0 or m == 0:
            return sim, ok
        det_boxes = np.stack(boxes)
        det_area = det_boxes[:, 2] * det_boxes[:, 3]                                  # (m,)
        if self.use_oks:   # a pose without 17 keypoints (a box only) takes part by IoU alone
            K = len(OKS_SIGMAS)
            det_kp, det_conf = np.full((m, K, 2), np.nan), np.zeros((m, K), bool)
            for j, pose in enumerate(poses):
                kp, sc = _keypoints_of(pose)
                if kp is not None and sc is not None:
                    det_kp[j], det_conf[j] = kp, _confident(kp, sc)
        for k, t in enumerate(self._tracks):
            track_kp = t.keypoints if self.use_oks else None   # None: this track compares by IoU alone
            if track_kp is not None:
                assert t.scores is not None   # set together with the keypoints (_keypoints_of)
                both = _confident(track_kp, t.scores)[None] & det_conf               # (m, K)
                counted = (both.sum(1) >= OKS_MIN_JOINTS) & (det_area > 0)            # (m,)
            for shift in (t.predicted_shift(), np.zeros(2)):
                moved = t.box + np.r_[shift, 0.0, 0.0]
                iou = box_iou(moved[None], det_boxes)[0]                               # (m,)
                s, good = iou.copy(), iou >= self.iou_threshold
                if track_kp is not None and counted.any():
                    o = oks(track_kp + shift, det_kp[counted], det_area[counted], both[counted])
                    s[counted] = (iou[counted] + o) / 2
                    good[counted] |= o >= self.oks_threshold
                better = good & (s > sim[k])
                sim[k, better], ok[k, better] = s[better], True
        return sim, ok

    def _reidentify(self, matched: set[int], free: list[int], boxes: dict[int, np.ndarray]) -> list[tuple[int, int]]:
        """(track, detection) pairs for the persons left over and the tracks left unmatched (missed now, or
        for a while) whose expected centre lies near: one to one, least distance in all."""
        waiting = [k for k in range(len(self._tracks)) if k not in matched]
        if not waiting or not free:
            return []
        cost = np.full((len(waiting), len(free)), np.inf)
        for a, k in enumerate(waiting):
            t = self._tracks[k]
            expected = t.box[:2] + t.box[2:] / 2 + t.predicted_shift()               # (2,)
            radius = REID_RADIUS + REID_RADIUS_GROWTH * t.missed
            for b, i in enumerate(free):
                box = boxes[i]
                ratio = box[3] / max(t.box[3], 1e-6)
                if not 1 / REID_HEIGHT_RATIO <= ratio <= REID_HEIGHT_RATIO:
                    continue
                d = np.linalg.norm(box[:2] + box[2:] / 2 - expected) / max(t.box[3], 1e-6)
                if d <= radius:
                    cost[a, b] = d
        if not np.isfinite(cost).any():
            return []
        rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e6))
        return [(waiting[a], free[b]) for a, b in zip(rows, cols) if np.isfinite(cost[a, b])]

    def _match(self, track: _Track, pose: Pose, box: np.ndarray) -> int | None:
        step = (box[:2] + box[2:] / 2 - track.box[:2] - track.box[2:] / 2) / (track.missed + 1)
        # the first step sets the velocity; later ones are averaged in
        a = self.velocity_smoothing if track.hits > 1 else 0.0
        track.velocity = a * track.velocity + (1 - a) * step
        track.box, track.missed, track.hits = box, 0, track.hits + 1
        track.keypoints, track.scores = _keypoints_of(pose)
        return self._confirm(track)

    def _confirm(self, track: _Track) -> int | None:
        """The track's id, given on its `min_hits`-th match (ids count confirmed persons only)."""
        if track.track_id is None and track.hits >= self.min_hits:
            track.track_id = self._next_id
            self._next_id += 1
        return track.track_id

    def _new_track(self, pose: Pose, box: np.ndarray) -> int | None:
        kp, sc = _keypoints_of(pose)
        track = _Track(None, box, kp, sc, np.zeros(2))
        self._tracks.append(track)
        return self._confirm(track)


def _keypoints_of(pose: Pose) -> tuple[np.ndarray | None, np.ndarray | None]:
    kp = np.asarray(pose.keypoints, np.float64)
    sc = np.asarray(pose.scores, np.float64)
    if kp.ndim != 2 or kp.shape[1] != 2 or sc.shape != (kp.shape[0],) or kp.shape[0] != len(OKS_SIGMAS):
        return None, None
    return kp, sc

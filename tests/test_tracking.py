"""Tracker: ids stay with people who cross paths, hide for a while, or stand where others stood."""

from __future__ import annotations

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.live.tracking import Tracker, pose_oks
from transpose_live.skeleton import OKS_SIGMAS
from transpose_live.types import Pose

from helpers import TEMPLATE, person


def nose(p: Pose) -> tuple[float, float]:
    return float(p.keypoints[0, 0]), float(p.keypoints[0, 1])


def run(tracker: Tracker, frames: list[list[Pose]], seed: int = 0) -> list[dict[tuple[float, float], int]]:
    """Feed the frames (each shuffled) and return, per frame, a map from each pose's nose to its id."""
    rng = np.random.default_rng(seed)
    out = []
    for poses in frames:
        order = rng.permutation(len(poses))
        tracked = tracker.update([poses[i] for i in order])
        out.append({nose(p): p.track_id for p in tracked})
    return out


@pytest.mark.parametrize("use_oks", [True, False])
def test_people_crossing_paths_keep_their_ids(use_oks):
    # A walks right, B walks left on almost the same line, 15 px a frame (boxes are 40 wide): between
    # frames 10 and 11 they pass each other, where the last positions alone would swap them
    frames = [[person(50 + 15 * t, 200), person(355 - 15 * t, 203)] for t in range(21)]
    ids = run(Tracker(use_oks=use_oks), frames)
    a0, b0 = ids[0][nose(frames[0][0])], ids[0][nose(frames[0][1])]
    assert a0 != b0
    for t, frame in enumerate(frames):
        assert ids[t][nose(frame[0])] == a0, t
        assert ids[t][nose(frame[1])] == b0, t


def test_a_person_hidden_for_a_few_frames_comes_back_with_the_same_id():
    tracker = Tracker(max_missed=15)
    ids_a, ids_b = [], []
    for t in range(30):
        a = person(50 + 8 * t, 100)
        b = person(400, 300 + 2 * t)
        hidden = 10 <= t < 16          # B is not detected for 6 frames
        out = tracker.update([a] if hidden else [a, b])
        assert tracker.lost_ids == []
        ids_a.append(out[0].track_id)
        if not hidden:
            ids_b.append(out[1].track_id)
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]


def test_a_person_gone_too_long_is_reported_lost_once_and_gets_a_new_id():
    tracker = Tracker(max_missed=3)
    first = tracker.update([person(100, 100), person(300, 100)])
    gone_id = first[1].track_id
    reported = []
    for _ in range(6):
        tracker.update([person(100, 100)])
        reported.append(list(tracker.lost_ids))
    assert reported == [[], [], [], [gone_id], [], []]       # dropped after the 4th missed frame
    assert gone_id not in tracker.active_ids
    back = tracker.update([person(100, 100), person(300, 100)])
    assert back[0].track_id == first[0].track_id
    assert back[1].track_id not in (first[0].track_id, gone_id)   # ids are never reused


def test_new_people_get_new_ids_and_inputs_are_not_modified():
    tracker = Tracker()
    poses = [person(0, 0), person(200, 0)]
    out = tracker.update(poses)
    assert [p.track_id for p in poses] == [None, None]
    assert sorted(p.track_id for p in out) == [1, 2]
    out = tracker.update([person(1, 0), person(201, 0), person(500, 300)])
    assert [p.track_id for p in out] == [1, 2, 3]
    assert out[2].box == (500, 300, 40, 100)


def test_oks_tells_apart_people_whose_boxes_swap():
    # two people on one spot (one behind the other), one with raised arms; in frame 2 the boxes shift
    # by a pixel so that box IoU alone prefers swapping them, while the keypoints say who is who
    a1, b1 = person(100, 100, arms_up=True), person(101, 100)
    a2, b2 = person(101, 100, arms_up=True), person(100, 100)
    for use_oks, expect_same in ((True, True), (False, False)):
        tracker = Tracker(use_oks=use_oks)
        first = tracker.update([a1, b1])
        second = tracker.update([a2, b2])
        assert (second[0].track_id == first[0].track_id) is expect_same


def test_keypoints_stand_in_for_a_missing_box():
    tracker = Tracker()
    ids = [tracker.update([person(100 + 5 * t, 50, with_box=False)])[0].track_id for t in range(5)]
    assert ids == [1] * 5
    nothing = Pose(np.full((17, 2), np.nan, np.float32), np.zeros(17, np.float32))
    assert tracker.update([nothing])[0].track_id is None


def test_pose_oks_counts_joints_confident_in_both():
    kp = TEMPLATE * [40, 100]
    s = np.full(17, 0.9)
    assert pose_oks(kp, s, kp, s, 4000.0) == pytest.approx(1.0)
    assert pose_oks(kp, s, kp + 20, s, 4000.0) < 0.5
    assert pose_oks(kp, np.zeros(17), kp, s, 4000.0) is None        # no confident joints in common
    few = np.where(np.arange(17) < 2, 0.9, 0.1)
    assert pose_oks(kp, few, kp, s, 4000.0) is None                 # 2 joints are too few
    assert pose_oks(kp, s, kp, s, 0.0) is None                      # no scale
    # joints unsure or missing in either pose do not count, however far off they are
    moved, scores_b = kp + 3.0, s.copy()
    moved[:5] += 500.0
    scores_b[:3] = 0.1
    moved[3:5] = np.nan
    d2 = 18.0
    expected = np.mean(np.exp(-d2 / (2 * 4000.0 * (2 * OKS_SIGMAS[5:]) ** 2)))
    assert pose_oks(kp, s, moved, scores_b, 4000.0) == pytest.approx(expected, rel=1e-12)


def _pose_oks_before(kp_a, scores_a, kp_b, scores_b, area):
    """A copy of the tracker's OKS before geometry.oks existed."""
    both = (np.nan_to_num(scores_a, nan=0.0) >= 0.2) & (np.nan_to_num(scores_b, nan=0.0) >= 0.2)
    both &= np.all(np.isfinite(kp_a), axis=1) & np.all(np.isfinite(kp_b), axis=1)
    if both.sum() < 3 or area <= 0:
        return None
    d2 = np.sum((kp_a[both] - kp_b[both]) ** 2, axis=1)
    var = (2 * OKS_SIGMAS[both]) ** 2
    return float(np.mean(np.exp(-d2 / (2 * area * var))))


def test_pose_oks_is_unchanged_on_random_poses():
    rng = np.random.default_rng(5)
    compared = 0
    for i in range(200):
        kp_a = rng.uniform(0, 300, (17, 2))
        kp_b = kp_a + rng.normal(0, rng.uniform(1, 30), (17, 2))
        kp_b[rng.uniform(size=17) < 0.1] = np.nan
        sa, sb = rng.uniform(0, 1, 17), rng.uniform(0, 1, 17)
        sb[rng.uniform(size=17) < 0.05] = np.nan
        if i % 7 == 0:
            sa[2:] = 0.1                                # too few joints
        area = 0.0 if i % 10 == 0 else rng.uniform(100, 20000)
        old, new = _pose_oks_before(kp_a, sa, kp_b, sb, area), pose_oks(kp_a, sa, kp_b, sb, area)
        assert (old is None) == (new is None)
        if old is not None:
            assert new == pytest.approx(old, rel=0, abs=1e-12)
            compared += 1
    assert 100 < compared < 200                 # most pairs compare, some have no scale or too few joints


@pytest.mark.parametrize("kwargs", [{"iou_threshold": 1.5}, {"max_missed": -1}, {"oks_threshold": -0.1}])
def test_bad_options_raise(kwargs):
    with pytest.raises(TransposeLiveError):
        Tracker(**kwargs)


def test_a_person_back_after_a_gap_away_from_their_last_box_keeps_the_id():
    # a walker hidden for 5 frames (behind a pillar) comes back 60 px on (boxes 40 wide, 100 tall: no
    # overlap with the last box, and their speed was measured only roughly): re-identified by where the
    # track was expected and by height; a stranger of another size in the same place is not taken
    for reid, expect_same in ((True, True), (False, False)):
        tracker = Tracker(reid=reid, use_oks=False)
        first = [tracker.update([person(100 + 5 * t, 100)])[0].track_id for t in range(3)]
        for _ in range(5):
            tracker.update([])
        back = tracker.update([person(175, 102)])[0].track_id
        assert (back == first[0]) is expect_same
    tracker = Tracker()
    kept = tracker.update([person(100, 100)])[0].track_id
    tracker.update([])
    child = tracker.update([person(150, 150, w=20, h=50)])[0].track_id   # near, but half the height
    assert child != kept


def test_reidentification_pairs_each_track_with_the_nearest_person():
    tracker = Tracker(use_oks=False)
    a, b = (p.track_id for p in tracker.update([person(100, 100), person(300, 100)]))
    tracker.update([])
    out = tracker.update([person(340, 100), person(140, 100)])      # both moved 40 px right while hidden
    assert [p.track_id for p in out] == [b, a]


def test_min_hits_gives_ids_to_persons_seen_twice_only():
    tracker = Tracker(min_hits=2)
    first = tracker.update([person(100, 100), person(300, 100)])
    assert [p.track_id for p in first] == [None, None] and tracker.active_ids == []
    second = tracker.update([person(102, 100)])                      # the second one was a one-frame flicker
    assert [p.track_id for p in second] == [1]
    for _ in range(35):
        tracker.update([person(102, 100)])
    assert tracker.lost_ids == [] and tracker.active_ids == [1]      # the flicker never had an id to lose
    later = tracker.update([person(102, 100), person(400, 300)])
    assert [p.track_id for p in later] == [1, None]
    assert [p.track_id for p in tracker.update([person(102, 100), person(401, 300)])] == [1, 2]
    with pytest.raises(TransposeLiveError):
        Tracker(min_hits=0)


def _similarity_pair_by_pair(tracker: Tracker, poses: list, boxes: list):
    """The tracker's similarity as it was computed before (one track-detection pair at a time)."""
    from transpose_live.geometry import box_iou

    n, m = len(tracker._tracks), len(poses)
    sim, ok = np.zeros((n, m)), np.zeros((n, m), bool)
    det_boxes = np.stack(boxes)
    for k, t in enumerate(tracker._tracks):
        for shift in (t.predicted_shift(), np.zeros(2)):
            iou = box_iou((t.box + np.r_[shift, 0.0, 0.0])[None], det_boxes)[0]
            for j, pose in enumerate(poses):
                s, good = iou[j], iou[j] >= tracker.iou_threshold
                if tracker.use_oks and t.keypoints is not None:
                    o = pose_oks(t.keypoints + shift, t.scores, np.asarray(pose.keypoints, np.float64),
                                 np.asarray(pose.scores, np.float64), float(det_boxes[j, 2] * det_boxes[j, 3]))
                    if o is not None:
                        s, good = (iou[j] + o) / 2, good or o >= tracker.oks_threshold
                if good and s > sim[k, j]:
                    sim[k, j], ok[k, j] = s, True
    return sim, ok


def test_similarity_of_all_detections_at_once_equals_pair_by_pair():
    """The batched similarity is the same numbers, bit for bit, as the pair-by-pair one it replaced:
    random walkers with unconfident and NaN joints, tracks missing frames, over 40 frames."""
    from transpose_live.geometry import pose_box

    rng = np.random.default_rng(7)
    tracker = Tracker()
    centres = rng.uniform(50, 500, (8, 2))
    for _frame in range(40):
        centres += rng.normal(0, 6, centres.shape)
        present = rng.random(len(centres)) > 0.25
        poses = []
        for c in centres[present]:
            kp = c + rng.normal(0, 25, (17, 2))
            scores = rng.uniform(0, 1, 17)
            kp[rng.random(17) < 0.1] = np.nan
            poses.append(Pose(keypoints=kp.astype(np.float32), scores=scores.astype(np.float32)))
        boxes = [pose_box(p) for p in poses]
        kept = [i for i, b in enumerate(boxes) if b is not None]
        if tracker._tracks and kept:
            got = tracker._similarity([poses[i] for i in kept], [boxes[i] for i in kept])
            want = _similarity_pair_by_pair(tracker, [poses[i] for i in kept], [boxes[i] for i in kept])
            assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])
        tracker.update(poses)
    assert len(tracker._tracks) >= 8


@pytest.mark.parametrize("use_oks", [True, False])
def test_a_pose_with_a_box_and_no_keypoints_is_tracked_by_its_box(use_oks):
    tracker = Tracker(use_oks=use_oks)
    walker = Pose(keypoints=(np.c_[np.linspace(100, 140, 17), np.linspace(50, 200, 17)]).astype(np.float32),
                  scores=np.full(17, 0.9, np.float32))
    boxed = Pose(keypoints=np.zeros((0, 2), np.float32), scores=np.zeros(0, np.float32), box=(300, 40, 50, 160))
    first = tracker.update([walker, boxed])
    second = tracker.update([boxed, walker])
    assert [p.track_id for p in second] == [first[1].track_id, first[0].track_id]

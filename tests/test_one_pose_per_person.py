"""One pose per person: duplicates on one person merged by their keypoints, a skeleton stretched over two
persons left out, and the follower applying both to every frame."""

from __future__ import annotations

import numpy as np

from transpose_live.detect import Detections
from transpose_live.geometry import pose_pair_oks
from transpose_live.live.following import (
    PersonFollower,
    drop_duplicates,
    drop_group_boxes,
    drop_mixtures,
    one_pose_per_person,
)
from transpose_live.types import Pose

from helpers import TEMPLATE, person


def with_box(p: Pose, box, score: float = 0.9) -> Pose:
    return Pose(p.keypoints.copy(), np.full(17, score, np.float32), box=tuple(box))


def test_pair_oks_is_one_for_one_person_and_zero_for_two_side_by_side():
    a = person(100, 100)
    assert pose_pair_oks(a, person(100, 100)) == 1.0
    assert pose_pair_oks(a, person(101, 101)) > 0.9
    assert pose_pair_oks(a, person(160, 100)) < 0.01                 # a neighbour, 20 px apart
    unsure = Pose(a.keypoints, np.full(17, 0.1, np.float32), box=a.box)
    assert pose_pair_oks(a, unsure) == 0.0                           # no joints confident in both


def test_a_tight_and_a_loose_box_on_one_person_give_one_pose():
    # the same skeleton found in a tight box and in a box twice as wide: box IoU 0.5 < 0.6, same keypoints
    p = person(100, 100)
    tight = with_box(p, (100, 100, 40, 100), score=0.8)
    loose = with_box(p, (80, 100, 80, 100), score=0.7)
    other = with_box(person(200, 100), (200, 100, 40, 100))
    kept = drop_duplicates([loose, other, tight])
    assert [q.box for q in kept] == [other.box, tight.box]          # the more confident stays, order kept
    # persons side by side are not merged, however their boxes overlap a little
    assert len(drop_duplicates([tight, with_box(person(150, 100), (150, 100, 40, 100))])) == 2


def stretched(left: Pose, right: Pose) -> Pose:
    """A skeleton with the left person's joints for its first half and the right one's for the rest."""
    kp = np.concatenate([left.keypoints[:9], right.keypoints[9:]])
    x1, y1 = kp.min(0)
    x2, y2 = kp.max(0)
    return Pose(kp.astype(np.float32), np.full(17, 0.6, np.float32), box=(x1, y1, x2 - x1, y2 - y1))


def test_a_skeleton_stretched_over_two_walkers_is_left_out():
    a, b, c = person(100, 100), person(170, 105), person(400, 100)
    mixed = stretched(a, b)
    kept = drop_mixtures([a, mixed, b, c])
    assert kept == [a, b, c]
    # the walkers themselves stay, also when close: each one's joints lie on the mixture only
    assert drop_mixtures([a, b, c]) == [a, b, c]
    # one pose sharing joints with a single other person is a duplicate's business, not a mixture
    assert len(drop_mixtures([a, stretched(a, c), b])) == 3


# a standing person ~160 px tall seen from the front, arms hanging (COCO joint order), centred at x
_FRONT = np.array([(0, -70), (4, -73), (-4, -73), (8, -71), (-8, -71), (18, -48), (-18, -48), (22, -22), (-22, -22),
                   (23, 2), (-23, 2), (11, 2), (-11, 2), (11, 38), (-11, 38), (11, 75), (-11, 75)], np.float32)


def standing(x: float) -> Pose:
    return Pose(_FRONT + (x, 200), np.full(17, 0.8, np.float32), box=(x - 30, 118, 60, 162), box_score=0.9)


def test_people_close_in_a_row_all_stay():
    """A queue or a group photo: each inner person's side joints lie on both neighbours' side joints (3-6 on
    each here), but their head and the middle of their body are their own, so they are no mixture."""
    for spacing in (40, 48, 56, 65):
        row = [standing(100 + spacing * k) for k in range(5)]
        assert one_pose_per_person(row) == row, spacing
    # a skeleton stretched between two of them is still caught
    a, b, c = standing(100), standing(150), standing(300)
    assert drop_mixtures([a, stretched(a, b), b, c]) == [a, b, c]


def lying(box, box_score: float, joint_score: float) -> Pose:
    """A skeleton strewn along the middle of a wide box (as the model guesses in a box with nobody in it)."""
    x, y, w, h = box
    kp = np.stack([np.linspace(x + 0.1 * w, x + 0.9 * w, 17), np.full(17, y + h / 2)], 1).astype(np.float32)
    return Pose(kp, np.full(17, joint_score, np.float32), box=tuple(box), box_score=box_score)


def test_a_weak_wide_box_around_walkers_is_left_out_a_person_lying_is_not():
    row = [standing(100 + 120 * k) for k in range(4)]                  # boxes 118..280 high, centres at y 199
    group = lying((60, 150, 500, 120), box_score=0.35, joint_score=0.35)     # vtest's kind: person score 0.12
    assert drop_group_boxes([row[0], group, *row[1:]]) == row
    assert one_pose_per_person([*row, group]) == row
    # a person lying on the ground stays: alone in their wide box, however weak ...
    fallen = lying((600, 250, 200, 60), box_score=0.35, joint_score=0.35)
    assert drop_group_boxes([*row, fallen]) == [*row, fallen]
    # ... or with someone kneeling beside them inside it, when the model is sure of them (0.9 x 0.5 = 0.45)
    helper = standing(160)
    sure = lying((60, 150, 300, 120), box_score=0.9, joint_score=0.5)
    assert drop_group_boxes([helper, sure]) == [helper, sure]
    # a pose without a box has no centre to be around (not one at the frame's corner)
    corner = lying((0, 0, 300, 100), box_score=0.3, joint_score=0.3)
    boxless = Pose(standing(50).keypoints, np.full(17, 0.8, np.float32), box=None)
    assert drop_group_boxes([corner, boxless]) == [corner, boxless]
    # a tall box (aspect below 2) is never taken for a group, however weak and full
    assert len(drop_group_boxes([*row, lying((60, 100, 220, 200), 0.2, 0.2)])) == 5


def test_the_follower_leaves_out_duplicates_on_detected_frames():
    class TwoBoxes:
        def detect(self, image):
            return Detections(np.array([[100, 100, 40, 100], [85, 100, 70, 100], [300, 100, 40, 100]]),
                              np.array([0.9, 0.5, 0.8]))

    class SameSkeletonInBoxes:
        def estimate(self, image, boxes, box_scores=None, attention=False):
            out = []
            for box, s in zip(boxes, box_scores):
                x = 100 if box[0] < 200 else 300
                kp = (TEMPLATE * [40, 100] + [x, 100]).astype(np.float32)
                out.append(Pose(kp, np.full(17, 0.9 if box[2] == 40 else 0.7, np.float32),
                                box=tuple(float(v) for v in box), box_score=float(s)))
            return out

    follower = PersonFollower(TwoBoxes(), SameSkeletonInBoxes(), detect_every=1)
    poses = follower(np.zeros((400, 600, 3), np.uint8))
    assert [p.box[:2] for p in poses] == [(100.0, 100.0), (300.0, 100.0)]
    assert one_pose_per_person(poses) == poses

"""Box and keypoint geometry: IoU, box helpers, and the one OKS formula behind the tracker and the COCO protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transpose_live.geometry import box_area_for_nms, box_iou, clip_boxes, oks, pose_box
from transpose_live.skeleton import OKS_SIGMAS
from transpose_live.train.oks import compute_oks
from transpose_live.types import Pose

# ---------------------------------------------------------------- boxes

def test_box_iou_values_and_shapes():
    iou = box_iou([[0, 0, 10, 10], [0, 0, 6, 6]], [[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]])
    assert iou.shape == (2, 3) and iou.dtype == np.float64
    np.testing.assert_allclose(iou, [[1 / 3, 0.0, 1.0], [6 / 130, 0.0, 0.36]])
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)
    np.testing.assert_allclose(box_iou([1, 2, 3, 4], [1, 2, 3, 4]), [[1.0]])   # a single box is (1, 4)


def test_box_iou_is_symmetric_and_a_box_with_a_negative_side_has_no_area():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(0, 50, (6, 2)), rng.uniform(1, 30, (6, 2))], 1)
    b = np.concatenate([rng.uniform(0, 50, (4, 2)), rng.uniform(1, 30, (4, 2))], 1)
    np.testing.assert_allclose(box_iou(a, b), box_iou(b, a).T)
    assert np.all((box_iou(a, b) >= 0) & (box_iou(a, b) <= 1))
    # a negative width must not shrink the union: IoU with it stays 0, not negative
    assert box_iou([[0, 0, -5, 10]], [[0, 0, 10, 10]])[0, 0] == 0.0


def test_clip_boxes_turns_corners_into_xywh_inside_the_frame():
    out = clip_boxes([[-5, 10, 50, 30], [90, 70, 120, 200]], width=100, height=80)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    np.testing.assert_allclose(out, [[0, 10, 50, 20], [90, 70, 10, 10]])


def test_pose_box_prefers_the_box_then_the_keypoint_extent():
    kp = np.array([[10, 20], [30, 60], [np.nan, np.nan]] + [[20, 40]] * 14, np.float32)
    scores = np.ones(17, np.float32)
    np.testing.assert_allclose(pose_box(Pose(kp, scores, box=(1, 2, 3, 4))), [1, 2, 3, 4])
    np.testing.assert_allclose(pose_box(Pose(kp, scores)), [10, 20, 20, 40])
    np.testing.assert_allclose(pose_box(Pose(kp, scores, box=(1, 2, 0, 4))), [10, 20, 20, 40])   # empty box
    assert pose_box(Pose(np.full((17, 2), np.nan, np.float32), scores)) is None
    assert pose_box(Pose(np.full((17, 2), 5.0, np.float32), scores)) is None      # a point has no extent


def test_box_area_for_nms_grows_the_box_to_the_crop_aspect():
    assert box_area_for_nms([0, 0, 30, 80]) == pytest.approx(60 * 80 * 1.5625)    # tall: width grows to 60
    assert box_area_for_nms([0, 0, 90, 80]) == pytest.approx(90 * 120 * 1.5625)   # wide: height grows to 120


# ---------------------------------------------------------------- OKS

def test_oks_formula_mask_and_empty_mask():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 100, (17, 2))
    b = a.copy()
    b[3] += [3.0, 4.0]                  # joint 3 is 5 px off
    b[9] = np.nan                       # joint 9 is missing: masked out below
    mask = np.ones((3, 17), bool)
    mask[:, 9] = False
    mask[1, 3] = False
    mask[2] = False
    got = oks(a, np.stack([b, b, b]), np.array([400.0, 400.0, 400.0]), mask)
    expected = (15 + math.exp(-25 / (2 * 400.0 * (2 * OKS_SIGMAS[3]) ** 2))) / 16
    np.testing.assert_allclose(got, [expected, 1.0, 0.0], rtol=1e-15)


def _compute_oks_before(kpts_a, kpts_b_list, area, areas_b=None, sigmas=None, in_vis_thre=None):
    """A verbatim copy of `oks.compute_oks` before geometry.oks existed (the official oks_iou)."""
    sig = OKS_SIGMAS if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    var = (sig * 2) ** 2
    a = np.asarray(kpts_a, dtype=np.float64).reshape(-1, 3)
    bs = np.asarray(kpts_b_list, dtype=np.float64)
    if bs.size == 0:
        return np.zeros(0, dtype=np.float64)
    bs = bs.reshape(-1, a.shape[0], 3)
    areas = np.full(len(bs), float(area)) if areas_b is None else np.asarray(areas_b, np.float64).reshape(-1)
    d2 = (bs[:, :, 0] - a[None, :, 0]) ** 2 + (bs[:, :, 1] - a[None, :, 1]) ** 2
    scale = (float(area) + areas) / 2 + np.spacing(1)
    e = d2 / var[None, :] / scale[:, None] / 2
    out = np.zeros(len(bs), dtype=np.float64)
    for n in range(len(bs)):
        en = e[n] if in_vis_thre is None else e[n][bs[n, :, 2] > in_vis_thre]
        out[n] = np.exp(-en).sum() / en.shape[0] if en.shape[0] else 0.0
    return out


@pytest.mark.parametrize("in_vis_thre", [None, 0.2, 0.6])
@pytest.mark.parametrize("seed", range(5))
def test_compute_oks_is_unchanged_on_random_poses(seed, in_vis_thre):
    rng = np.random.default_rng(seed)
    n = 40
    a = np.concatenate([rng.uniform(0, 300, (17, 2)), rng.uniform(0, 1, (17, 1))], 1)
    bs = np.concatenate([a[None, :, :2] + rng.normal(0, rng.uniform(1, 40), (n, 17, 2)),
                         rng.uniform(0, 1, (n, 17, 1))], 2)                            # (n, 17, 3)
    area, areas = rng.uniform(500, 20000), rng.uniform(500, 20000, n)
    sigmas = rng.uniform(0.02, 0.1, 17)
    for args in ((a, bs, area), (a, bs, area, areas), (a.reshape(-1), bs, area, areas, sigmas)):
        new = compute_oks(*args, in_vis_thre=in_vis_thre)
        old = _compute_oks_before(*args, in_vis_thre=in_vis_thre)
        assert new.shape == (n,) and 0 < new.max() <= 1
        np.testing.assert_allclose(new, old, rtol=0, atol=1e-12)
    assert compute_oks(a, np.zeros((0, 17, 3)), area).shape == (0,)


def test_compute_oks_ignores_missing_joints_outside_the_mask():
    rng = np.random.default_rng(7)
    a = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], 1)
    b = a.copy()
    b[4, :2] = np.nan
    b[4, 2] = 0.0                       # missing and not visible: the mask leaves it out
    assert compute_oks(a, b[None], 2000.0, in_vis_thre=0.2)[0] == pytest.approx(1.0)
    assert np.isnan(compute_oks(a, b[None], 2000.0)[0])   # without a mask it counts, as in oks_iou

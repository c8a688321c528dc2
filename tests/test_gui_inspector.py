"""The inspector's one forward pass against the estimator and attention.py, on the tiny real model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.pose.attention import affected_areas, dependency_areas, layer_areas
from transpose_live.pose.inspector import inspect_person, joint_index


@pytest.fixture(scope="module")
def estimator(tiny_weights):
    from transpose_live.pose.estimator import PoseEstimator

    # torch: the module the inspector runs (an ONNX Runtime / OpenVINO backend differs in the last float bits)
    return PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu", backend="torch")


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    image[30:100, 60:100] = (30, 200, 90)
    return image


BOX = (50.0, 20.0, 60.0, 90.0)


def test_inspection_matches_the_estimators_pose_and_last_layer(estimator, frame):
    seen = inspect_person(estimator, frame, BOX)
    pose = estimator.estimate(frame, [BOX], attention=True)[0]
    h, w = seen.token_grid
    assert seen.layers >= 2 and seen.maps.shape[1:] == (h * w, h * w)
    np.testing.assert_allclose(seen.keypoints, pose.keypoints, atol=1e-3)
    np.testing.assert_allclose(seen.scores, pose.scores, atol=1e-5)
    # the last layer's rows are exactly what the pipeline's overlay draws
    np.testing.assert_allclose(seen.all_joints(), pose.attention, atol=1e-6)
    assert seen.area("left_wrist").shape == tuple(seen.token_grid)


def test_layers_rows_and_columns_agree_with_attention_py(estimator, frame):
    seen = inspect_person(estimator, frame, BOX)
    kp = seen.keypoints_hm[None]                                       # (1, J, 2)
    for layer in range(1, seen.layers + 1):
        m = seen.maps[layer - 1][None]                                  # (1, N, N)
        rows = dependency_areas(m, kp, seen.token_grid, seen.heatmap_size)[0]
        cols = affected_areas(m, kp, seen.token_grid, seen.heatmap_size)[0]
        np.testing.assert_array_equal(seen.all_joints(layer), rows)
        np.testing.assert_array_equal(seen.all_joints(layer, affected=True), cols)
    strip = seen.strip("left_wrist")
    assert strip.shape == (seen.layers, *seen.token_grid)
    assert not np.allclose(strip[0], strip[-1])                         # the layers really differ
    # rows of a softmax sum to 1; columns need not
    assert seen.area(9, layer=1).sum() == pytest.approx(1.0, abs=1e-4)
    assert not np.allclose(seen.area(9, affected=True), seen.area(9))


def test_layer_areas_takes_a_list_of_maps(estimator, frame):
    seen = inspect_person(estimator, frame, BOX)
    as_list = [torch.from_numpy(m[None]) for m in seen.maps]           # what the model returns: (1, N, N) each
    got = layer_areas(as_list, seen.keypoints_hm, seen.token_grid, seen.heatmap_size)
    np.testing.assert_array_equal(got, seen.areas())


def test_bad_layer_and_joint_say_so(estimator, frame):
    seen = inspect_person(estimator, frame, BOX)
    with pytest.raises(TransposeLiveError, match=f"layer must be 1..{seen.layers}"):
        seen.area(0, layer=seen.layers + 1)
    with pytest.raises(TransposeLiveError, match="unknown joint 'wrist'"):
        joint_index("wrist")
    assert joint_index("left_wrist") == 9


def test_draw_area_and_the_strip_draw_where_the_crop_is(estimator, frame):
    from transpose_live.live.render import area_strip, colormap_code, draw_area

    seen = inspect_person(estimator, frame, BOX)
    drawn = draw_area(frame, seen.area("left_wrist"), BOX, seen.input_size, 0.8, "inferno")
    changed = np.abs(drawn.astype(int) - frame).sum(-1) > 0                 # (H, W)
    ys, xs = np.nonzero(changed)
    assert changed.any() and frame is not drawn
    # only inside the crop of the box (the box widened to the input's aspect, padded 1.25x)
    assert xs.min() >= 20 and xs.max() <= 140 and ys.min() >= 0
    assert np.array_equal(draw_area(frame, np.zeros(seen.token_grid), BOX, seen.input_size), frame)   # flat: nothing
    strip = area_strip(frame, seen.strip("left_wrist"), BOX, seen.input_size, height=90)
    assert strip.shape[0] == 90 and strip.shape[1] % seen.layers == 0 and strip.dtype == np.uint8
    tiles = np.split(strip, seen.layers, axis=1)
    assert not np.array_equal(tiles[0], tiles[-1])
    with pytest.raises(TransposeLiveError, match="unknown colormap 'rainbow'"):
        colormap_code("rainbow")


def test_inspection_agrees_with_the_default_cpu_backend(tiny_weights, frame):
    """The pipeline's estimator may run an ONNX Runtime / OpenVINO export; the inspector runs its torch
    module: the same keypoints and last-layer areas up to float noise."""
    from transpose_live.pose.estimator import PoseEstimator

    auto = PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu")
    seen = inspect_person(auto, frame, BOX)
    pose = auto.estimate(frame, [BOX], attention=True)[0]
    np.testing.assert_allclose(seen.keypoints, pose.keypoints, atol=0.05)
    np.testing.assert_allclose(seen.all_joints(), pose.attention, atol=1e-3)


def test_all_joints_each_in_its_own_colour(estimator, frame):
    from transpose_live.live.render import JOINT_COLORS, draw_joint_areas

    seen = inspect_person(estimator, frame, BOX)
    assert len(set(JOINT_COLORS)) == 17
    flat = np.full_like(frame, 128)
    one = draw_joint_areas(flat, seen.all_joints(), [9], BOX, seen.input_size, alpha=1.0)
    two = draw_joint_areas(flat, seen.all_joints(), [9, 15], BOX, seen.input_size, alpha=1.0)
    # where the left wrist's area peaks the pixel takes the wrist's colour (grey blended towards it)
    region = one[np.abs(one.astype(int) - 128).sum(-1) > 60]
    hue = region.astype(int) - 128
    wrist = np.array(JOINT_COLORS[9]) - 128
    assert (hue @ wrist > 0).mean() > 0.9                      # leaning to the wrist's colour
    assert not np.array_equal(one, two)                        # a second joint adds its own colour
    assert np.array_equal(draw_joint_areas(flat, seen.all_joints(), [], BOX), flat)

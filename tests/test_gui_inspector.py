"""The inspector's one forward pass against the estimator and attention.py, on the tiny real model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transpose_live.attention import affected_areas, dependency_areas, layer_areas
from transpose_live.errors import TransposeLiveError
from transpose_live.inspector import inspect_person, joint_index


@pytest.fixture(scope="module")
def estimator(tiny_weights):
    from transpose_live.estimator import PoseEstimator

    return PoseEstimator("tp_m_a4", weights=str(tiny_weights), device="cpu")


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

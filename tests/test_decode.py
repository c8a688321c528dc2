"""Heatmap decoding (argmax + DARK + inverse affine) and the flip test, against the official outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.pose.decode import (
    dark_refine,
    flip_back,
    gaussian_blur,
    get_final_preds,
    get_max_preds,
    transform_preds,
)
from transpose_live.pose.preprocess import box_to_center_scale, get_affine_transform
from transpose_live.skeleton import FLIP_PAIRS

from helpers import shared_path


@pytest.fixture(scope="module")
def ref():
    return torch.load(shared_path("reference", "decode_ref.pt"), weights_only=True)


def gaussian_maps(b: int, j: int, h: int, w: int, x: float, y: float, sigma: float = 2.0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2)).astype(np.float32)
    return np.tile(g, (b, j, 1, 1))


def test_matches_official_get_final_preds(ref):
    hm = ref["heatmaps"].numpy()
    before = hm.copy()
    centers, scales = ref["center"].numpy(), ref["scale"].numpy()

    coords, maxvals = get_max_preds(hm)
    np.testing.assert_array_equal(coords, ref["coords_argmax"].numpy())
    np.testing.assert_array_equal(maxvals, ref["maxvals"].numpy())

    coords_hm, _ = get_final_preds(hm, centers, scales, transform_back=False)
    np.testing.assert_allclose(coords_hm, ref["coords_heatmap"].numpy(), atol=1e-4, rtol=0)

    preds, maxvals = get_final_preds(hm, centers, scales)
    assert preds.shape == (2, 17, 2) and preds.dtype == np.float32 and maxvals.shape == (2, 17, 1)
    np.testing.assert_allclose(preds, ref["preds"].numpy(), atol=1e-3, rtol=0)
    np.testing.assert_array_equal(maxvals, ref["maxvals"].numpy())
    np.testing.assert_array_equal(hm, before)            # the official function blurs in place; ours must not

    # torch input decodes the same and stays untouched
    t = ref["heatmaps"].clone()
    preds_t, _ = get_final_preds(t, centers, scales)
    np.testing.assert_array_equal(preds_t, preds)
    assert torch.equal(t, ref["heatmaps"])


def test_dark_recovers_a_subpixel_gaussian():
    hm = gaussian_maps(2, 3, 64, 48, x=20.3, y=30.7)
    coords, _ = get_max_preds(hm)
    np.testing.assert_array_equal(coords[0, 0], [20, 31])
    refined = dark_refine(hm, coords)
    np.testing.assert_allclose(refined, np.tile([20.3, 30.7], (2, 3, 1)), atol=0.01)


def test_border_and_nonpositive_maps_are_not_refined():
    hm = gaussian_maps(1, 3, 32, 24, x=1.2, y=10.4)        # argmax at x=1: no Taylor step
    hm[0, 1] = -1.0                                        # max <= 0: coords (0, 0)
    hm[0, 2] = 0.0
    coords, maxvals = get_final_preds(hm, np.zeros((1, 2)), np.ones((1, 2)), transform_back=False)
    np.testing.assert_array_equal(coords[0, 0], [1, 10])
    np.testing.assert_array_equal(coords[0, 1:], 0)
    np.testing.assert_array_equal(maxvals[0, :, 0], [hm[0, 0].max(), -1.0, 0.0])


def test_blur_keeps_each_maps_raw_maximum():
    rng = np.random.default_rng(0)
    hm = rng.random((2, 3, 16, 12), dtype=np.float32)
    raw_max = hm.max(axis=(2, 3))
    out = gaussian_blur(hm.copy(), 11)
    np.testing.assert_allclose(out.max(axis=(2, 3)), raw_max, rtol=1e-6)
    assert out.std() < hm.std()                           # it did smooth


def test_transform_preds_inverts_the_crop_affine():
    center, scale = box_to_center_scale((100.0, 50.0, 80.0, 200.0))
    fwd = get_affine_transform(center, scale, 0, (48, 64))   # image -> heatmap
    img_pts = np.array([[130.0, 70.0], [150.0, 200.0], [101.0, 240.0]])
    hm_pts = (fwd @ np.c_[img_pts, np.ones(3)].T).T
    back = transform_preds(hm_pts[None], center[None], scale[None], (48, 64))
    np.testing.assert_allclose(back[0], img_pts, atol=1e-3)


def test_flip_back_mirrors_and_swaps_pairs():
    rng = np.random.default_rng(1)
    hm = rng.random((2, 17, 8, 6), dtype=np.float32)
    out = flip_back(hm)
    assert out.shape == hm.shape
    np.testing.assert_array_equal(out[:, 0], hm[:, 0, :, ::-1])           # nose: mirrored only
    for a, b in FLIP_PAIRS:
        np.testing.assert_array_equal(out[:, a], hm[:, b, :, ::-1])
        np.testing.assert_array_equal(out[:, b], hm[:, a, :, ::-1])
    np.testing.assert_array_equal(flip_back(out), hm)                     # an involution
    t = flip_back(torch.from_numpy(hm))
    assert isinstance(t, torch.Tensor)
    np.testing.assert_array_equal(t.numpy(), out)
    with pytest.raises(TransposeLiveError, match="flip_back"):
        flip_back(hm[:, :5])


def test_flip_test_of_a_mirrored_peak_lands_on_the_same_point():
    # a joint at x in the original is at W-1-x in the mirrored crop: flip_back maps it straight back
    w = 48
    orig = gaussian_maps(1, 17, 64, w, x=17.4, y=22.2)
    mirrored = gaussian_maps(1, 17, 64, w, x=w - 1 - 17.4, y=22.2)
    avg = (orig + flip_back(mirrored)) * 0.5
    coords, _ = get_final_preds(avg, np.zeros((1, 2)), np.ones((1, 2)), transform_back=False)
    np.testing.assert_allclose(coords[0], np.tile([17.4, 22.2], (17, 1)), atol=0.01)


def test_bad_shapes_raise():
    with pytest.raises(TransposeLiveError, match="heatmaps"):
        get_final_preds(np.zeros((17, 8, 6), np.float32), np.zeros((1, 2)), np.ones((1, 2)))
    with pytest.raises(TransposeLiveError, match="centers"):
        get_final_preds(np.ones((2, 17, 8, 6), np.float32), np.zeros((1, 2)), np.ones((1, 2)))

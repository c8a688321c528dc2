"""Box -> center/scale -> affine crop -> input tensor, against the official pipeline's stored outputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from transpose_live.errors import TransposeLiveError
from transpose_live.pose.preprocess import (
    as_bgr,
    box_to_center_scale,
    crop_batch,
    get_affine_transform,
    to_input_tensor,
)

from helpers import shared_path

OPENCV_MAJOR = int(cv2.__version__.split(".")[0])


@pytest.fixture(scope="module")
def ref():
    return torch.load(shared_path("reference", "crop_ref.pt"), weights_only=True)


def test_center_scale_and_affine_match_official(ref):
    center, scale = box_to_center_scale(ref["box"].numpy(), aspect_ratio=0.75)
    assert center.dtype == np.float32 and scale.dtype == np.float32
    np.testing.assert_array_equal(center, ref["center"].numpy())
    np.testing.assert_array_equal(scale, ref["scale"].numpy())
    affine = get_affine_transform(center, scale, 0, (192, 256))
    np.testing.assert_array_equal(affine, ref["affine"].numpy())


def test_crop_and_input_tensor_match_official(ref):
    suffix = "" if OPENCV_MAJOR >= 5 else "_opencv4"
    center, scale = box_to_center_scale(ref["box"].numpy())
    image = ref["image"].numpy()                       # treated as a BGR frame
    crops = crop_batch(image, center[None], scale[None], (192, 256))
    assert crops.shape == (1, 256, 192, 3) and crops.dtype == np.uint8
    # the stored crop keeps the image's channel order; ours is RGB
    np.testing.assert_array_equal(crops[0][..., ::-1], ref["crop" + suffix].numpy())
    x = to_input_tensor(crops)
    assert x.shape == (1, 3, 256, 192) and x.dtype == torch.float32
    torch.testing.assert_close(x[0], ref["input_tensor" + suffix], atol=1e-6, rtol=0)


def test_box_widened_to_aspect_ratio():
    # tall box: width grows to 0.75 * height; wide box: height grows to width / 0.75
    c, s = box_to_center_scale((10, 20, 30, 200))
    np.testing.assert_allclose(c, [10 + 14.5, 20 + 99.5])
    np.testing.assert_allclose(s, [150 / 200 * 1.25, 200 / 200 * 1.25], rtol=1e-6)
    _, s = box_to_center_scale((0, 0, 300, 100))
    np.testing.assert_allclose(s, [300 / 200 * 1.25, 400 / 200 * 1.25], rtol=1e-6)
    _, s = box_to_center_scale((0, 0, 100, 100), aspect_ratio=1.0, padding=1.0)
    np.testing.assert_allclose(s, [0.5, 0.5])


def test_affine_maps_box_center_to_crop_center_and_inverts():
    center, scale = box_to_center_scale((40.0, 30.0, 60.0, 120.0))
    fwd = get_affine_transform(center, scale, 0, (96, 128))
    inv = get_affine_transform(center, scale, 0, (96, 128), inv=True)
    np.testing.assert_allclose(fwd @ [*center, 1.0], [47.5, 63.5], atol=1e-4)
    pts = np.array([[0.0, 0.0, 1.0], [95.0, 127.0, 1.0], [10.0, 50.0, 1.0]])
    back = (fwd @ np.c_[(inv @ pts.T).T, np.ones(3)].T).T
    np.testing.assert_allclose(back, pts[:, :2], atol=1e-3)


def test_crop_is_rgb_and_centred_on_the_box():
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[...] = (255, 0, 0)                            # pure blue in BGR
    frame[59:62, 79:82] = (0, 0, 255)                   # a red square around (80, 60)
    center, scale = box_to_center_scale((50.0, 20.0, 61.0, 81.0))   # center (80, 60)
    crops = crop_batch(frame, center[None], scale[None], (48, 64))
    assert crops.shape == (1, 64, 48, 3)
    corner = crops[0, 2, 2]
    assert tuple(corner) == (0, 0, 255)                 # blue lands in the B channel of RGB
    red = crops[0, :, :, 0].astype(float)
    ys, xs = np.nonzero(red > 100)
    assert abs(xs.mean() - 23.5) < 0.6 and abs(ys.mean() - 31.5) < 0.6


def test_gray_and_bgra_frames_crop_like_bgr():
    rng = np.random.RandomState(0)
    gray = rng.randint(0, 256, (50, 70), dtype=np.uint8)
    bgr = np.repeat(gray[..., None], 3, axis=2)
    bgra = np.concatenate([bgr, np.full((50, 70, 1), 7, np.uint8)], axis=2)
    c, s = box_to_center_scale((5, 5, 40, 30))
    want = crop_batch(bgr, c[None], s[None], (24, 32))
    for frame in (gray, gray[..., None], bgra):
        np.testing.assert_array_equal(crop_batch(frame, c[None], s[None], (24, 32)), want)
    assert as_bgr(bgra).shape == (50, 70, 3)


def test_batch_of_boxes_and_bad_inputs():
    frame = np.zeros((40, 40, 3), np.uint8)
    centers = np.array([[10, 10], [20, 25], [30, 30]], np.float32)
    scales = np.full((3, 2), 0.1, np.float32)
    assert crop_batch(frame, centers, scales, (12, 16)).shape == (3, 16, 12, 3)
    with pytest.raises(TransposeLiveError, match="uint8"):
        crop_batch(frame.astype(np.float32), centers, scales)
    with pytest.raises(TransposeLiveError, match="shape"):
        crop_batch(np.zeros((4, 4, 2), np.uint8), centers, scales)
    with pytest.raises(TransposeLiveError, match="empty frame"):
        crop_batch(np.zeros((0, 5, 3), np.uint8), centers, scales)
    with pytest.raises(TransposeLiveError, match="scales"):
        crop_batch(frame, centers, scales[:2])
    with pytest.raises(TransposeLiveError, match="4 numbers"):
        box_to_center_scale((1, 2, 3))
    with pytest.raises(TransposeLiveError, match="non-finite"):
        box_to_center_scale((1, 2, np.nan, 4))
    with pytest.raises(TransposeLiveError, match="uint8 RGB"):
        to_input_tensor(np.zeros((1, 8, 8, 3), np.float32))


def test_input_tensor_normalisation():
    crops = np.zeros((2, 4, 3, 3), np.uint8)
    crops[1] = 255
    x = to_input_tensor(crops)
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[0, :, 0, 0], -mean / std)
    torch.testing.assert_close(x[1, :, 2, 1], (1 - mean) / std)

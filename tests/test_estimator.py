"""PoseEstimator end to end with a tiny fake model whose answer is known, plus attention areas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transpose_live.errors import TransposeLiveError
from transpose_live.model import create_model
from transpose_live.model.config import get_config
from transpose_live.pose.attention import affected_areas, dependency_areas, keypoint_tokens
from transpose_live.pose.estimator import PoseEstimator, resolve_device
from transpose_live.skeleton import LEFT_JOINTS, RIGHT_JOINTS

from helpers import shared_path

IMAGE_SIZE = (128, 96)   # (h, w): small crops keep the tests fast


class BlobModel(nn.Module):
    """Fake TransPose: every joint's heatmap is a Gaussian at the input's brightness centroid.

    The centroid (crop pixels) is mapped to heatmap pixels the way the official affines relate
    the two (both anchored at the box centre, zoom set by the width), so a decoded keypoint lands
    back on the bright spot in the frame. `ramp` tilts left joints to the right and right joints to
    the left, which only a flip test that swaps the pairs undoes. Attention: identity (each token
    attends to itself), so a dependency area is a one-hot at the keypoint's token.
    """

    def __init__(self, ramp: float = 0.0, sigma: float = 2.0):
        super().__init__()
        self.config = get_config("tp_r_a3").with_image_size(*IMAGE_SIZE)
        self.anchor = nn.Parameter(torch.zeros(1))   # gives .to() / .parameters() something to hold
        self.ramp, self.sigma = ramp, sigma
        self.calls: list[dict] = []
        self.last_uv = None

    def forward(self, x, **kwargs):
        self.calls.append(dict(kwargs, batch=x.shape[0]))
        b, _, h, w = x.shape                                           # (B, 3, H, W)
        hh, hw = self.config.heatmap_size
        s = x.sum(1)
        s = s - s.flatten(1).amin(1)[:, None, None]                    # background -> 0
        ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
        total = s.flatten(1).sum(1)
        cx = (s * xs).flatten(1).sum(1) / total
        cy = (s * ys).flatten(1).sum(1) / total
        k = (hw - 1) / (w - 1)
        u = cx * k                                                     # heatmap x
        v = (cy - (h - 1) / 2) * k + (hh - 1) / 2                      # heatmap y
        self.last_uv = torch.stack([u, v], -1)
        gy, gx = torch.meshgrid(torch.arange(hh, dtype=x.dtype), torch.arange(hw, dtype=x.dtype), indexing="ij")
        g = torch.exp(-((gx - u[:, None, None]) ** 2 + (gy - v[:, None, None]) ** 2) / (2 * self.sigma ** 2))
        tilt = torch.ones(17, 1, hw, dtype=x.dtype)
        for j in LEFT_JOINTS:
            tilt[j] = torch.exp(self.ramp * torch.arange(hw, dtype=x.dtype))
        for j in RIGHT_JOINTS:
            tilt[j] = torch.exp(self.ramp * torch.arange(hw, dtype=x.dtype)).flip(-1)
        hm = g[:, None] * tilt[None]                                   # (B, 17, hh, hw)
        if kwargs.get("return_attention"):
            n = self.config.token_grid[0] * self.config.token_grid[1]
            eye = torch.eye(n, dtype=x.dtype).expand(b, n, n)
            return hm, [torch.full_like(eye, 1.0 / n), eye]
        return hm


def blob_frame(points, size=(240, 320), sigma=3.0) -> np.ndarray:
    """(H, W, 3) uint8 BGR: black with a grey Gaussian spot at each (x, y)."""
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    img = np.zeros(size, np.float64)
    for x, y in points:
        img += 250 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return np.repeat(np.clip(np.round(img), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_keypoints_land_on_the_spot_in_image_coordinates():
    model = BlobModel()
    est = PoseEstimator(model, device="cpu", batch_size=1)
    assert est.device == torch.device("cpu") and est.dtype == torch.float32
    assert est.config.image_size == IMAGE_SIZE and not model.training
    spots = [(150.3, 97.6), (60.8, 170.2), (250.0, 60.5)]
    frame = blob_frame(spots)
    boxes = [(110, 40, 90, 130), (20, 120, 70, 100), (215, 20, 60, 90)]
    poses = est.estimate(frame, boxes, box_scores=[0.9, 0.8, 0.7])
    assert len(poses) == 3
    assert [c["batch"] for c in model.calls] == [1, 1, 1]              # chunked by batch_size
    assert all("return_attention" not in c for c in model.calls)       # the fast path by default
    for pose, spot, box, score in zip(poses, spots, boxes, [0.9, 0.8, 0.7]):
        assert pose.keypoints.shape == (17, 2) and pose.keypoints.dtype == np.float32
        assert pose.scores.shape == (17,) and pose.scores.dtype == np.float32
        np.testing.assert_allclose(pose.keypoints, np.tile(spot, (17, 1)), atol=0.5)
        assert np.all(pose.scores == pose.scores[0])                   # raw maxima of identical maps
        assert 0.93 < pose.scores[0] <= 1.0                            # a unit Gaussian sampled off-peak
        assert pose.box == tuple(float(v) for v in box) and pose.box_score == pytest.approx(score)
        assert pose.attention is None


def test_no_boxes_means_the_whole_frame_but_empty_boxes_mean_nobody():
    est = PoseEstimator(BlobModel(), device="cpu")
    frame = blob_frame([(140.0, 100.0)])
    (pose,) = est.estimate(frame, None)
    assert pose.box == (0.0, 0.0, 320.0, 240.0) and pose.box_score == 1.0
    np.testing.assert_allclose(pose.keypoints, np.tile([140.0, 100.0], (17, 1)), atol=0.5)
    # a detector that found nobody: no made-up person
    assert est.estimate(frame, np.zeros((0, 4))) == []
    assert est.estimate(frame, []) == []


def test_joint_scores_are_clipped_to_0_1():
    """Heatmap peaks can pass 1 (DARK's Taylor step, fp16): a score is a confidence, kept in [0, 1]."""

    class Hot(BlobModel):
        def forward(self, x, **kwargs):
            out = super().forward(x, **kwargs)
            return (out[0] * 3.0, out[1]) if kwargs.get("return_attention") else out * 3.0

    est = PoseEstimator(Hot(), device="cpu")
    (pose,) = est.estimate(blob_frame([(140.0, 100.0)]), None)
    assert pose.scores.max() == pytest.approx(1.0) and pose.scores.min() >= 0.0


def test_grayscale_frame_gives_the_same_pose():
    est = PoseEstimator(BlobModel(), device="cpu")
    frame = blob_frame([(150.3, 97.6)])
    box = [(110, 40, 90, 130)]
    a = est.estimate(frame, box)[0].keypoints
    b = est.estimate(frame[..., 0], box)[0].keypoints
    np.testing.assert_array_equal(a, b)


def test_flip_test_keeps_left_and_right_joints_apart():
    # the tilted model is mirror-consistent (left joints sit right of the spot in any input), like a
    # trained one: a correct flip test (mirror + swap pairs) reproduces the single pass; one that
    # forgot the swap would average the two tilts and pull both sides back onto the spot
    frame = blob_frame([(150.3, 97.6)])
    box = [(110, 40, 90, 130)]
    plain = PoseEstimator(BlobModel(ramp=0.0), device="cpu").estimate(frame, box)[0].keypoints
    tilted = PoseEstimator(BlobModel(ramp=0.15), device="cpu").estimate(frame, box)[0].keypoints
    left, right = sorted(LEFT_JOINTS), sorted(RIGHT_JOINTS)
    assert (tilted[left, 0] - plain[left, 0]).min() > 1.0
    assert (tilted[right, 0] - plain[right, 0]).max() < -1.0
    model = BlobModel(ramp=0.15)
    flipped = PoseEstimator(model, device="cpu", flip=True).estimate(frame, box)[0]
    assert [c["batch"] for c in model.calls] == [2]                    # original + mirrored, one batch
    np.testing.assert_allclose(flipped.keypoints, tilted, atol=0.02)


def test_flip_test_of_an_untilted_model_changes_nothing():
    frame = blob_frame([(150.3, 97.6)])
    box = [(110, 40, 90, 130)]
    a = PoseEstimator(BlobModel(), device="cpu").estimate(frame, box)[0]
    b = PoseEstimator(BlobModel(), device="cpu", flip=True).estimate(frame, box)[0]
    np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-3)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-5)


def test_attention_gives_dependency_areas_of_the_last_layer():
    model = BlobModel()
    est = PoseEstimator(model, device="cpu")
    frame = blob_frame([(150.3, 97.6)])
    (pose,) = est.estimate(frame, [(110, 40, 90, 130)], attention=True)
    assert model.calls[-1].get("return_attention") is True
    th, tw = est.config.token_grid
    assert pose.attention.shape == (17, th, tw) and pose.attention.dtype == np.float32
    # identity attention in the last layer (the first layer is uniform): one-hot at the keypoint's token
    u, v = model.last_uv[0].tolist()
    hh, hw = est.config.heatmap_size
    ty, tx = int((v + 0.5) * th / hh), int((u + 0.5) * tw / hw)
    for area in pose.attention:
        assert area.sum() == pytest.approx(1.0)
        assert np.unravel_index(area.argmax(), area.shape) == (ty, tx)


def test_estimate_crops_shapes():
    est = PoseEstimator(BlobModel(), device="cpu", flip=True)
    x = torch.randn(2, 3, *IMAGE_SIZE)
    hm = est.estimate_crops(x)
    assert isinstance(hm, np.ndarray) and hm.shape == (2, 17, 32, 24) and hm.dtype == np.float32
    hm2, attn = est.estimate_crops(x, attention=True)
    np.testing.assert_allclose(hm2, hm)
    assert attn.shape == (2, 192, 192)
    with pytest.raises(TransposeLiveError, match="inputs"):
        est.estimate_crops(torch.zeros(1, 3, 64, 48))


def test_bad_arguments_raise():
    est = PoseEstimator(BlobModel(), device="cpu")
    frame = np.zeros((50, 60, 3), np.uint8)
    with pytest.raises(TransposeLiveError, match="boxes"):
        est.estimate(frame, np.zeros((2, 3)))
    with pytest.raises(TransposeLiveError, match="width or height"):
        est.estimate(frame, [(1, 1, 0, 5)])
    with pytest.raises(TransposeLiveError, match="box scores"):
        est.estimate(frame, [(1, 1, 5, 5)], box_scores=[0.1, 0.2])
    with pytest.raises(TransposeLiveError, match="uint8"):
        est.estimate(frame.astype(np.float32))
    with pytest.raises(TransposeLiveError, match="batch_size"):
        PoseEstimator(BlobModel(), device="cpu", batch_size=0)
    with pytest.raises(TransposeLiveError, match="image_size"):
        PoseEstimator(BlobModel(), device="cpu", image_size=(256, 192))
    with pytest.raises(TransposeLiveError, match="device"):
        resolve_device("warp-drive")
    if not torch.cuda.is_available():
        with pytest.raises(TransposeLiveError, match="CUDA"):
            resolve_device("cuda")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


# ------------------------------------------------------------------------------- attention areas


def test_keypoint_tokens_match_pixel_centres():
    # R models: 64x48 heatmap over a 32x24 token grid, heatmap pixels 2t, 2t+1 -> token t
    kp = np.array([[[0.0, 0.0], [1.0, 1.4], [2.0, 3.0], [47.9, 63.9], [-3.0, 70.0], [np.nan, 1.0]]])
    token, valid = keypoint_tokens(kp, (32, 24), (64, 48))
    assert token.tolist() == [[0, 0, 1 * 24 + 1, 31 * 24 + 23, 31 * 24 + 0, 0]]
    assert valid.tolist() == [[True] * 5 + [False]]
    same, _ = keypoint_tokens(kp[:, :4], (64, 48), (64, 48))           # H models: identity
    assert same.tolist() == [[0, 1 * 48 + 1, 3 * 48 + 2, 63 * 48 + 47]]


def test_dependency_is_the_row_and_affected_the_column():
    rng = np.random.default_rng(0)
    attn = rng.random((2, 12, 12)).astype(np.float32)                 # (B, N, N), 3x4 tokens
    kp = np.array([[[1.0, 2.0], [7.0, 5.0]], [[0.0, 0.0], [np.nan, 0.0]]])   # heatmap 6x8, 2x per token
    dep = dependency_areas(attn, kp, (3, 4), (6, 8))
    aff = affected_areas(torch.from_numpy(attn), kp, (3, 4), (6, 8))
    assert dep.shape == aff.shape == (2, 2, 3, 4)
    np.testing.assert_array_equal(dep[0, 0].ravel(), attn[0, 1 * 4 + 0])
    np.testing.assert_array_equal(dep[0, 1].ravel(), attn[0, 2 * 4 + 3])
    np.testing.assert_array_equal(aff[0, 1].ravel(), attn[0, :, 2 * 4 + 3])
    np.testing.assert_array_equal(aff[1, 0].ravel(), attn[1, :, 0])
    assert not dep[1, 1].any() and not aff[1, 1].any()                # a missing keypoint has no area
    with pytest.raises(TransposeLiveError, match="token grid"):
        dependency_areas(attn, kp, (4, 4), (6, 8))


# ------------------------------------------------------------------------------- the real model


@pytest.fixture
def one_thread():
    # intra-op threads spin badly when the test machine's cores are shared
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_real_model_random_weights(one_thread):
    torch.manual_seed(0)
    model = create_model("tp_r_a3", image_size=IMAGE_SIZE)
    est = PoseEstimator(model, device="cpu", flip=True, batch_size=2)
    assert est.config.token_grid == (16, 12)
    rng = np.random.RandomState(0)
    frame = rng.randint(0, 256, (200, 240, 3)).astype(np.uint8)
    boxes = [(10, 20, 60, 120), (100, 30, 80, 150)]
    poses = est.estimate(frame, boxes, attention=True)
    assert len(poses) == 2
    for pose in poses:
        assert pose.keypoints.shape == (17, 2) and np.isfinite(pose.keypoints).all()
        assert pose.scores.shape == (17,)
        assert pose.attention.shape == (17, 16, 12)
        # a row of softmax weights: non-negative and summing to one over the keys
        assert (pose.attention >= 0).all()
        np.testing.assert_allclose(pose.attention.sum(axis=(1, 2)), 1.0, atol=1e-4)
    # asking for the maps (non-fused attention) leaves the heatmaps as they are; keypoints are not
    # compared because DARK on flat random heatmaps amplifies float noise without bound
    plain = est.estimate(frame, boxes)
    for a, b in zip(poses, plain):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    est.flip = False
    x = torch.randn(1, 3, *IMAGE_SIZE)
    hm = est.estimate_crops(x)
    hm_attn, attn = est.estimate_crops(x, attention=True)
    assert hm.shape == (1, 17, 32, 24) and attn.shape == (1, 192, 192)
    np.testing.assert_allclose(hm_attn, hm, atol=1e-5)


def test_reference_checkpoint_heatmaps(one_thread):
    ref = torch.load(shared_path("reference", "tp_r_a3_seed0.pt"), weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ref["state_dict"].items()}
    est = PoseEstimator(create_model("tp_r_a3", weights=state), device="cpu")
    hm, attn = est.estimate_crops(ref["input"], attention=True)
    np.testing.assert_allclose(hm, ref["heatmaps"].numpy(), atol=1e-5, rtol=0)
    rows = attn[:, ref["attention_query_index"].numpy()]                 # (B, Q, N) stored rows
    np.testing.assert_allclose(rows, ref["attentions"][-1].numpy(), atol=1e-7, rtol=1e-4)

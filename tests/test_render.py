"""Drawing: skeleton pixels, side colours, score blending, ids, attention overlays and the HUD."""

from __future__ import annotations

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.live.render import (
    annotate,
    draw_attention,
    draw_frame,
    draw_hud,
    line_thickness,
    project_to_image,
    score_alpha,
)
from transpose_live.pose.preprocess import box_to_center_scale, get_affine_transform
from transpose_live.skeleton import COLOR_CENTER, COLOR_LEFT, COLOR_RIGHT
from transpose_live.types import FrameResult, Pose

LOW = 0.05   # below the default min_score of 0.2


def make_pose(points: dict[int, tuple[float, float]], scores: dict[int, float] | None = None, **kw) -> Pose:
    """A pose with the given joints placed (score 1 unless told); every other joint NaN.

    The default box makes a large person: limbs 4 px wide, so their middle is the exact colour (not AA).
    """
    kw.setdefault("box", (0.0, 0.0, 450.0, 450.0))
    kp = np.full((17, 2), np.nan, np.float32)
    sc = np.zeros(17, np.float32)
    for j, xy in points.items():
        kp[j] = xy
        sc[j] = 1.0
    for j, s in (scores or {}).items():
        sc[j] = s
    return Pose(kp, sc, **kw)


def black(h=200, w=200):
    return np.zeros((h, w, 3), np.uint8)


def test_limb_between_confident_joints_is_drawn_and_low_score_joint_is_not():
    frame = black()
    # left shoulder -> left elbow confident; left wrist below min_score; left hip NaN (joint 11 never placed)
    pose = make_pose({5: (40, 50), 7: (160, 50), 9: (160, 160)}, {9: LOW})
    out = draw_frame(frame, FrameResult(0, 0.0, [pose]))
    assert out is not frame and not frame.any()                      # the input is left alone
    assert tuple(out[50, 100]) == COLOR_LEFT                          # mid-limb, score 1: the side colour
    assert tuple(out[50, 70]) == COLOR_LEFT and tuple(out[50, 130]) == COLOR_LEFT
    assert not out[105, 160].any()                                    # elbow -> weak wrist: no limb
    assert not out[150:171, 150:171].any()                            # the weak wrist itself: nothing
    assert not out[120:, :100].any()                                  # nothing towards the NaN hip


def test_limbs_and_joints_are_coloured_by_body_side():
    pose = make_pose({5: (40, 60), 6: (160, 60), 7: (40, 170), 8: (160, 170)})
    out = annotate(black(), [pose])
    assert tuple(out[115, 40]) == COLOR_LEFT      # left upper arm
    assert tuple(out[115, 160]) == COLOR_RIGHT    # right upper arm
    assert tuple(out[60, 100]) == COLOR_CENTER    # shoulder line joins the sides
    assert tuple(out[170, 40]) == COLOR_LEFT and tuple(out[170, 160]) == COLOR_RIGHT   # joint dots


def test_score_sets_the_blend_strength():
    strong = make_pose({5: (20, 50), 7: (180, 50)})
    weak = make_pose({5: (20, 50), 7: (180, 50)}, {5: 0.5, 7: 0.5})
    bright = annotate(black(), [strong])[50, 100].astype(float)
    faint = annotate(black(), [weak])[50, 100].astype(float)
    np.testing.assert_allclose(faint, np.array(COLOR_LEFT) * score_alpha(0.5), atol=2)
    assert faint.sum() < bright.sum()
    # over a grey frame a half-confident limb lies between the frame and the colour
    grey = np.full((200, 200, 3), 100, np.uint8)
    mixed = annotate(grey, [weak])[50, 100].astype(float)
    a = score_alpha(0.5)
    np.testing.assert_allclose(mixed, np.array(COLOR_LEFT) * a + 100 * (1 - a), atol=2)


def test_min_score_and_nan_skip_joints():
    pose = make_pose({5: (40, 50), 7: (160, 50)}, {7: 0.3})
    assert annotate(black(), [pose], min_score=0.2)[50, 100].any()
    lost = annotate(black(), [pose], min_score=0.5)
    assert not lost[50, 60:140].any() and lost[50, 40].any()          # the limb goes, the shoulder dot stays
    pose.scores[:] = np.nan
    assert not annotate(black(), [pose]).any()


def _stroke_width(pose_size: int) -> int:
    """Lit pixels across a vertical left leg drawn for a person of the given box size."""
    frame = black(400, 400)
    pose = make_pose({13: (200, 50), 15: (200, 350)}, box=(100, 0, pose_size, pose_size))
    return int(annotate(frame, [pose])[200].any(-1).sum())


def test_line_thickness_follows_person_size():
    assert line_thickness(60) < line_thickness(400) < line_thickness(1000)
    assert _stroke_width(60) < _stroke_width(400) < _stroke_width(1200)


def test_track_id_label_and_box():
    pose = make_pose({0: (100, 80), 5: (80, 120), 6: (120, 120)}, box=(60, 60, 80, 120), track_id=7)
    plain = annotate(black(), [pose], draw_ids=False)
    labelled = annotate(black(), [pose], draw_ids=True)
    assert not plain[40:74, 80:120].any()                 # nothing above the nose without ids
    assert labelled[40:74, 80:120].any()                  # the id tag sits above the head
    boxed = annotate(black(), [pose], draw_ids=False, draw_boxes=True)
    assert boxed[150, 60].any() and boxed[179, 100].any() and not plain[150, 60].any()


def test_grayscale_frames_and_off_frame_poses():
    gray = np.full((120, 100), 50, np.uint8)
    far = make_pose({5: (5000, 5000), 7: (6000, 5000)}, box=(4900, 4900, 200, 200))
    out = annotate(gray, [far])
    assert out.shape == (120, 100, 3) and (out == 50).all()


# --------------------------------------------------------------------------------------- attention

IN_SIZE = (64, 48)     # model input (h, w): an 8 x 6 token grid at stride 8
BOX = (100, 50, 120, 240)


def _cell_in_image(ty: int, tx: int) -> tuple[float, float, float, float]:
    """Image rectangle (x0, y0, x1, y1) covered by token (ty, tx) of BOX's crop, via the official inverse affine."""
    center, scale = box_to_center_scale(BOX, aspect_ratio=IN_SIZE[1] / IN_SIZE[0])
    inv = get_affine_transform(center, scale, 0, (IN_SIZE[1], IN_SIZE[0]), inv=True)
    corners = np.array([[tx * 8 - 0.5, ty * 8 - 0.5, 1], [tx * 8 + 7.5, ty * 8 + 7.5, 1]]).T
    (x0, x1), (y0, y1) = inv @ corners
    return x0, y0, x1, y1


def _hot_pixel(image: np.ndarray) -> tuple[int, int]:
    """(x, y) of the reddest pixel: the top of the JET colour map."""
    redness = image[..., 2].astype(int) - image[..., 0].astype(int)
    y, x = np.unravel_index(np.argmax(redness), redness.shape)
    return int(x), int(y)


def _attention_pose(hot: dict[int, tuple[int, int]], scores: dict[int, float] | None = None) -> Pose:
    att = np.zeros((17, 8, 6), np.float32)
    for j, (ty, tx) in hot.items():
        att[j, ty, tx] = 1.0
    pose = make_pose({j: (120 + 5 * j, 100) for j in range(17)}, scores, box=BOX)
    pose.attention = att
    return pose


def test_one_hot_attention_lands_on_its_token_after_the_inverse_affine():
    frame = np.full((360, 400, 3), 128, np.uint8)
    pose = _attention_pose({0: (2, 4)})
    out = draw_attention(frame, pose, joint=0, input_size=IN_SIZE)
    x, y = _hot_pixel(out)
    x0, y0, x1, y1 = _cell_in_image(2, 4)
    assert x0 <= x <= x1 and y0 <= y <= y1, ((x, y), (x0, y0, x1, y1))
    # far from the token the map is cold: blue-ish, not red
    cx0, cy0, cx1, cy1 = _cell_in_image(7, 0)
    cold = out[int((cy0 + cy1) / 2), int((cx0 + cx1) / 2)].astype(int)
    assert cold[0] > cold[2]
    # outside the crop's footprint nothing changes
    assert (out[:15] == 128).all() and (out[:, 290:] == 128).all()
    assert (frame == 128).all()


def test_project_to_image_peaks_at_the_token_centre():
    grid = np.zeros((8, 6), np.float32)
    grid[5, 1] = 1.0
    region, x0, y0 = project_to_image(grid, BOX, (400, 360), input_size=IN_SIZE)
    y, x = np.unravel_index(np.argmax(region), region.shape)
    cx0, cy0, cx1, cy1 = _cell_in_image(5, 1)
    assert abs(x + x0 - (cx0 + cx1) / 2) <= 1 and abs(y + y0 - (cy0 + cy1) / 2) <= 1


def test_combined_map_shows_confident_joints_only():
    frame = np.full((360, 400, 3), 128, np.uint8)
    # joint 5's token is hot and confident; joint 6's token is hot but its score is low
    pose = _attention_pose({5: (1, 1), 6: (6, 4)}, {6: LOW})
    out = draw_attention(frame, pose, input_size=IN_SIZE)
    x, y = _hot_pixel(out)
    x0, y0, x1, y1 = _cell_in_image(1, 1)
    assert x0 <= x <= x1 and y0 <= y <= y1
    lx0, ly0, lx1, ly1 = _cell_in_image(6, 4)
    weak = out[int((ly0 + ly1) / 2), int((lx0 + lx1) / 2)].astype(int)
    assert weak[0] > weak[2]                        # the weak joint's token stays cold
    # asking for the weak joint by name shows nothing; an unknown name is an error
    assert (draw_attention(frame, pose, joint="right_shoulder", input_size=IN_SIZE) == 128).all()
    with pytest.raises(TransposeLiveError, match="unknown joint"):
        draw_attention(frame, pose, joint="tail")


def test_attention_from_the_estimator_draws_over_the_person():
    import torch

    from transpose_live.model import create_model
    from transpose_live.pose.estimator import PoseEstimator

    torch.manual_seed(0)
    estimator = PoseEstimator(create_model("tp_m_a4", image_size=IN_SIZE), device="cpu")
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    poses = estimator.estimate(frame, [[100, 40, 80, 160]], attention=True)
    assert poses[0].attention.shape == (17, 8, 6)
    plain = draw_frame(frame, FrameResult(0, 0.0, poses), min_score=0.0)
    overlay = draw_frame(frame, FrameResult(0, 0.0, poses), attention=True, min_score=0.0,
                         input_size=estimator.config.image_size)
    changed = (overlay != plain).any(-1)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 1000
    # the crop of box (100, 40, 80, 160) padded by 1.25: x about 65..215, y about 20..220
    assert xs.min() >= 60 and xs.max() <= 220 and ys.min() >= 15 and ys.max() <= 225


# --------------------------------------------------------------------------------------------- HUD

def test_hud_draws_a_panel_in_the_corner():
    frame = np.full((480, 640, 3), 200, np.uint8)
    out = draw_hud(frame, fps=29.97, latency_ms=41.5, persons=2, extra={"model": "tp_m_a4"})
    assert (out[10:60, 10:80] != 200).any()             # the panel darkens the corner
    assert out[10:60, 10:80].mean() < 150
    assert (out[200:] == 200).all() and (out[:, 400:] == 200).all()
    assert (draw_hud(frame) == 200).all()               # nothing to show: nothing drawn
    more = draw_hud(frame, fps=30, persons=1, extra={"a": 1, "b": 2, "c": 3})
    rows = np.nonzero((more != 200).any((1, 2)))[0]
    fewer = np.nonzero((draw_hud(frame, fps=30) != 200).any((1, 2)))[0]
    assert rows.max() > fewer.max()                     # more lines, taller panel


def test_draw_frame_hud_dict_counts_persons():
    frame = np.full((300, 300, 3), 200, np.uint8)
    result = FrameResult(0, 0.0, [make_pose({5: (150, 150), 7: (150, 250)})])
    out = draw_frame(frame, result, hud={"fps": 12.0, "detector": "ssd"})
    ref = draw_hud(frame, fps=12.0, persons=1, extra={"detector": "ssd"})
    np.testing.assert_array_equal(out[:100, :150], ref[:100, :150])

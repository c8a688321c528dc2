"""Drawing: skeletons coloured by body side, track ids, boxes, the paper's dependency areas, a HUD.

Every public function returns a new BGR image and leaves its input alone. Drawing runs once per
frame in the video pipeline, so it is all OpenCV calls on small regions around each person: a
skeleton is drawn opaquely on a copy of the person's region, then blended back through a mask
whose value is each limb's confidence (score as alpha).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import cv2
import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.image import as_bgr
from transpose_live.pose.preprocess import PIXEL_STD, box_to_center_scale, get_affine_transform
from transpose_live.skeleton import KEYPOINT_NAMES, LIMBS, NUM_JOINTS, limb_color, side_color
from transpose_live.types import FrameResult, Pose

FONT = cv2.FONT_HERSHEY_SIMPLEX
_SHIFT = 4                       # sub-pixel drawing: coordinates in 1/16 px
_ONE = 1 << _SHIFT
_MAX_COORD = 1e5                 # keypoints far off-frame are clamped so int coordinates cannot overflow
# a few distinct BGR colours for track ids (boxes and labels); no id: grey
ID_COLORS = (
    (75, 25, 230), (75, 180, 60), (25, 225, 255), (200, 130, 0), (48, 130, 245), (180, 30, 145),
    (240, 240, 70), (230, 50, 240), (60, 245, 210), (128, 128, 0), (40, 110, 170), (0, 0, 128),
)
NO_ID_COLOR = (160, 160, 160)
_UNIT_LUT = (np.arange(256, dtype=np.float32) / 255).reshape(1, 256)   # uint8 mask -> 0..1 weight
_UNIT_LUT_INV = (1.0 - _UNIT_LUT).astype(np.float32)
TINT_FLOOR = 0.12                # attention overlay strength where the map is lowest (x alpha)
DEFAULT_STRIDE = 8               # token stride assumed when the model's input size is not given


# ------------------------------------------------------------------------------------------- helpers

def id_color(track_id: int | None) -> tuple[int, int, int]:
    return NO_ID_COLOR if track_id is None else ID_COLORS[int(track_id) % len(ID_COLORS)]


def score_alpha(score: float) -> float:
    """Blend strength of a joint or limb: 0.35 at score 0 up to 1 at score >= 1 (so weak ones stay visible)."""
    return 0.35 + 0.65 * min(max(float(score), 0.0), 1.0)


def _valid_joints(pose: Pose, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(17, 2) float64 clamped keypoints, (17,) scores, (17,) mask of finite joints scoring >= min_score."""
    kp = np.asarray(pose.keypoints, dtype=np.float64).reshape(-1, 2)
    sc = np.asarray(pose.scores, dtype=np.float64).reshape(-1)
    if len(kp) != len(sc):
        raise TransposeLiveError(f"pose has {len(kp)} keypoints but {len(sc)} scores")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(kp).all(1) & np.isfinite(sc) & (sc >= min_score)
    return np.clip(np.nan_to_num(kp), -_MAX_COORD, _MAX_COORD), sc, ok


def person_size(pose: Pose, ok: np.ndarray | None = None) -> float:
    """The person's size in pixels: the box's longer side, else the extent of its valid keypoints."""
    if pose.box is not None:
        return float(max(pose.box[2], pose.box[3]))
    kp = np.asarray(pose.keypoints, dtype=np.float64).reshape(-1, 2)
    kp = kp[np.isfinite(kp).all(1) if ok is None else ok]
    return float(np.ptp(kp, axis=0).max()) if len(kp) >= 2 else 0.0


def line_thickness(size: float) -> int:
    """Limb thickness for a person `size` px tall: 1 px for small people up to 10 px for frame-filling ones."""
    return int(min(max(1 + size // 150, 1), 10))


def _pt(xy: Sequence[float], x0: int = 0, y0: int = 0) -> tuple[int, int]:
    return round((xy[0] - x0) * _ONE), round((xy[1] - y0) * _ONE)


# ------------------------------------------------------------------------------------------ skeleton

def _draw_skeleton(out: np.ndarray, pose: Pose, min_score: float) -> None:
    """Limbs and joints of one pose, in place, blended by score."""
    kp, sc, ok = _valid_joints(pose, min_score)
    if not ok.any():
        return
    t = line_thickness(person_size(pose, ok))
    r = t + 1 + t // 2              # joints a bit wider than limbs, but not blobs on small people
    H, W = out.shape[:2]
    pad = r + 3
    pts = kp[ok]
    x0, y0 = max(int(math.floor(pts[:, 0].min())) - pad, 0), max(int(math.floor(pts[:, 1].min())) - pad, 0)
    x1, y1 = min(int(math.ceil(pts[:, 0].max())) + pad + 1, W), min(int(math.ceil(pts[:, 1].max())) + pad + 1, H)
    if x0 >= x1 or y0 >= y1:
        return                                   # wholly off-frame
    roi = out[y0:y1, x0:x1]
    layer = roi.copy()                           # opaque drawing, anti-aliased against the real pixels
    mask = np.zeros(roi.shape[:2], np.uint8)     # blend strength; drawn a bit wider to cover the AA fringe
    for a, b in LIMBS:
        if ok[a] and ok[b]:
            pa, pb = _pt(kp[a], x0, y0), _pt(kp[b], x0, y0)
            cv2.line(layer, pa, pb, limb_color(a, b), t, cv2.LINE_AA, _SHIFT)
            cv2.line(mask, pa, pb, round(255 * score_alpha(min(sc[a], sc[b]))), t + 2, cv2.LINE_8, _SHIFT)
    for j in np.flatnonzero(ok):
        p = _pt(kp[j], x0, y0)
        cv2.circle(layer, p, r * _ONE, side_color(int(j)), -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(mask, p, (r + 1) * _ONE, round(255 * score_alpha(sc[j])), -1, cv2.LINE_8, _SHIFT)
    roi[:] = cv2.blendLinear(layer, roi, cv2.LUT(mask, _UNIT_LUT), cv2.LUT(mask, _UNIT_LUT_INV))


def _label_anchor(pose: Pose, kp: np.ndarray, ok: np.ndarray) -> tuple[float, float] | None:
    """Where a track id goes: above the head (highest valid head joint), else the box top, else the top joint."""
    head = [j for j in range(5) if ok[j]]
    if head:
        top = min(head, key=lambda j: kp[j, 1])
        return float(kp[top, 0]), float(kp[top, 1])
    if pose.box is not None:
        x, y, w, _ = pose.box
        return x + w / 2, y
    if ok.any():
        top = np.flatnonzero(ok)[np.argmin(kp[ok, 1])]
        return float(kp[top, 0]), float(kp[top, 1])
    return None


def _draw_label(out: np.ndarray, text: str, anchor: tuple[float, float], color, size: float) -> None:
    """A small filled tag with `text`, centred above `anchor`, kept inside the frame."""
    H, W = out.shape[:2]
    scale = min(max(size / 600, 0.4), 1.0)
    thick = 1 if scale < 0.7 else 2
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    gap = 4 + int(size // 40)
    x = int(min(max(anchor[0] - tw / 2 - 3, 0), max(W - tw - 6, 0)))
    y = int(min(max(anchor[1] - gap - th - base - 4, 0), max(H - th - base - 4, 0)))
    cv2.rectangle(out, (x, y), (x + tw + 6, y + th + base + 4), color, -1)
    luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luma > 150 else (255, 255, 255)   # readable on light and dark tags
    cv2.putText(out, text, (x + 3, y + th + 2), FONT, scale, ink, thick, cv2.LINE_AA)


def _draw_box_and_id(out: np.ndarray, pose: Pose, draw_boxes: bool, draw_ids: bool, min_score: float) -> None:
    kp, _, ok = _valid_joints(pose, min_score)
    size = person_size(pose, ok)
    color = id_color(pose.track_id)
    if draw_boxes and pose.box is not None:
        x, y, w, h = pose.box
        cv2.rectangle(out, _pt((x, y)), _pt((x + w, y + h)), color, max(1, line_thickness(size) // 2),
                      cv2.LINE_AA, _SHIFT)
    if draw_ids and pose.track_id is not None:
        anchor = _label_anchor(pose, kp, ok)
        if anchor is not None:
            _draw_label(out, f"#{pose.track_id}", anchor, color, size)


# ----------------------------------------------------------------------------------------- attention

def _joint_index(joint: int | str) -> int:
    if isinstance(joint, str):
        if joint not in KEYPOINT_NAMES:
            raise TransposeLiveError(f"unknown joint {joint!r}; choose one of: {', '.join(KEYPOINT_NAMES)}")
        return KEYPOINT_NAMES.index(joint)
    j = int(joint)
    if not 0 <= j < NUM_JOINTS:
        raise TransposeLiveError(f"joint index must be 0..{NUM_JOINTS - 1}, got {joint}")
    return j


def attention_map(pose: Pose, joint: int | str | None = None, min_score: float = 0.2
                  ) -> tuple[np.ndarray, list[int]] | None:
    """The (h, w) float32 map to show, scaled to 0..1, and the joints it shows; None when nothing to show.

    joint=None: the max over the confident joints' maps, each first scaled to its own peak so a diffuse
    joint is not drowned by a sharp one; else that one joint's map (None unless it scores >= min_score).
    """
    if pose.attention is None:
        return None
    maps = np.asarray(pose.attention, dtype=np.float32)
    if maps.ndim != 3 or maps.shape[0] != NUM_JOINTS:
        raise TransposeLiveError(f"pose.attention must be ({NUM_JOINTS}, h, w), got {tuple(maps.shape)}")
    _, _, ok = _valid_joints(pose, min_score)
    if joint is not None:
        j = _joint_index(joint)
        joints = [j] if ok[j] else []         # an unseen joint has no meaningful dependency area
    else:
        joints = [int(j) for j in np.flatnonzero(ok)]
    if not joints:
        return None
    sel = np.nan_to_num(maps[joints], nan=0.0, posinf=0.0, neginf=0.0)           # (k, h, w)
    peak = sel.reshape(len(joints), -1).max(1)
    m = (sel / np.where(peak > 0, peak, 1.0)[:, None, None]).max(0)            # each joint at its own peak
    lo, hi = float(m.min()), float(m.max())
    if hi <= lo:
        return None                                                                 # flat: no area to show
    return (m - lo) / (hi - lo), joints


def project_to_image(grid_map: np.ndarray, box: Sequence[float], frame_size_wh: tuple[int, int],
                     input_size: tuple[int, int] | None = None) -> tuple[np.ndarray, int, int] | None:
    """Map a token-grid map of a person's crop back into the frame: (region, x0, y0) or None.

    The region covers the crop's footprint clipped to the frame; it is uint8 for a uint8 map, else float32.

    The crop is the estimator's: box -> center/scale (the grid's aspect) -> affine to `input_size` (h, w).
    Token (ty, tx) is the crop cell centred at ((tx + .5) * W/w - .5, (ty + .5) * H/h - .5); one
    warpAffine of the small map through (grid -> crop -> frame) interpolates it bilinearly.
    """
    h, w = grid_map.shape
    in_h, in_w = input_size if input_size is not None else (h * DEFAULT_STRIDE, w * DEFAULT_STRIDE)
    center, scale = box_to_center_scale(box, aspect_ratio=in_w / in_h)
    crop_to_img = get_affine_transform(center, scale, 0, (in_w, in_h), inv=True)    # (2, 3)
    sx, sy = in_w / w, in_h / h
    grid_to_crop = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    m = crop_to_img @ grid_to_crop                                                  # (2, 3) grid -> frame
    # the crop's footprint in the frame (no rotation: an axis-aligned rectangle)
    corners = crop_to_img @ np.array([[-0.5, in_w - 0.5], [-0.5, in_h - 0.5], [1, 1]])
    W, H = frame_size_wh
    x0, y0 = max(int(math.floor(corners[0].min())), 0), max(int(math.floor(corners[1].min())), 0)
    x1, y1 = min(int(math.ceil(corners[0].max())), W), min(int(math.ceil(corners[1].max())), H)
    if x0 >= x1 or y0 >= y1:
        return None
    m[:, 2] -= (x0, y0)
    src = grid_map if grid_map.dtype == np.uint8 else grid_map.astype(np.float32)
    region = cv2.warpAffine(src, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return region, x0, y0


def _alpha_luts(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Blend weights by heat level 0..255: the whole crop gets a faint tint (it shows what the model
    saw; faint so overlapping crops of a crowd do not stack into boxes), the dependency area a strong
    one. Lookup tables keep the per-pixel work in OpenCV."""
    heat = np.arange(256, dtype=np.float32) / 255
    w = (alpha * (TINT_FLOOR + (1 - TINT_FLOOR) * heat)).astype(np.float32).reshape(1, 256)
    return w, (1.0 - w).astype(np.float32)


def _draw_attention(out: np.ndarray, pose: Pose, joint, min_score: float, input_size, alpha: float,
                    colormap: int) -> list[int]:
    """The overlay of one pose, in place; returns the joints whose areas it shows."""
    shown = attention_map(pose, joint, min_score)
    if shown is None or pose.box is None:
        return []
    grid_map, joints = shown
    # warp the map as uint8: interpolation, colour map and blend weights all stay 8-bit and fast
    grid8 = np.rint(grid_map * 255).astype(np.uint8)
    projected = project_to_image(grid8, pose.box, (out.shape[1], out.shape[0]), input_size)
    if projected is None:
        return []
    heat, x0, y0 = projected
    roi = out[y0:y0 + heat.shape[0], x0:x0 + heat.shape[1]]
    w_map, w_img = _alpha_luts(alpha)
    roi[:] = cv2.blendLinear(cv2.applyColorMap(heat, colormap), roi, cv2.LUT(heat, w_map), cv2.LUT(heat, w_img))
    return joints


def _mark_joints(out: np.ndarray, pose: Pose, joints: Iterable[int]) -> None:
    """White dots with a dark rim on the joints whose dependency areas are shown."""
    kp = np.asarray(pose.keypoints, dtype=np.float64).reshape(-1, 2)
    r = max(3, line_thickness(person_size(pose)) + 2)
    for j in joints:
        if np.isfinite(kp[j]).all() and (np.abs(kp[j]) < _MAX_COORD).all():
            p = _pt(kp[j])
            cv2.circle(out, p, r * _ONE, (255, 255, 255), -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(out, p, r * _ONE, (0, 0, 0), max(1, r // 3), cv2.LINE_AA, _SHIFT)


def draw_attention(image: np.ndarray, pose: Pose, joint: int | str | None = None, min_score: float = 0.2,
                   input_size: tuple[int, int] | None = None, alpha: float = 0.65,
                   colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """The paper's dependency areas (Fig. 1 / 6) of one pose, colour-mapped over its crop, joints marked.

    joint: a joint index or name (e.g. "left_wrist"); None shows the max over the joints scoring
    >= min_score. input_size: the model's (h, w) input (estimator.config.image_size); None assumes
    stride 8 tokens. A pose without attention or box comes back undrawn.
    """
    out = as_bgr(image).copy()
    _mark_joints(out, pose, _draw_attention(out, pose, joint, min_score, input_size, alpha, colormap))
    return out


# ---------------------------------------------------------------------------------------------- HUD

def _draw_hud(out: np.ndarray, fps=None, latency_ms=None, persons=None, extra: dict | None = None) -> None:
    lines = []
    if fps is not None:
        lines.append(f"{float(fps):.1f} fps")
    if latency_ms is not None:
        lines.append(f"{float(latency_ms):.0f} ms latency")
    if persons is not None:
        lines.append(f"{int(persons)} person{'' if int(persons) == 1 else 's'}")
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value:.3g}" if isinstance(value, float) else f"{key}: {value}")
    if not lines:
        return
    H, W = out.shape[:2]
    scale = min(max(H / 1000, 0.4), 1.0)
    thick = 1 if scale < 0.7 else 2
    sizes = [cv2.getTextSize(s, FONT, scale, thick) for s in lines]
    line_h = max(th + base for (_, th), base in sizes) + 4
    m = 6
    x1, y1 = min(W, 2 * m + max(tw for (tw, _), _ in sizes) + 2 * m), min(H, 2 * m + line_h * len(lines) + m)
    roi = out[m:y1, m:x1]
    if roi.size:
        roi[:] = cv2.addWeighted(roi, 0.45, np.zeros_like(roi), 0.55, 0)   # translucent dark panel
    for i, (text, ((_, th), _)) in enumerate(zip(lines, sizes)):
        cv2.putText(out, text, (2 * m, m + m + th + i * line_h), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)


def draw_hud(image: np.ndarray, fps: float | None = None, latency_ms: float | None = None,
             persons: int | None = None, extra: dict | None = None) -> np.ndarray:
    """A translucent text box in the top-left corner: fps, latency, persons and `extra` key: value lines."""
    out = as_bgr(image).copy()
    _draw_hud(out, fps, latency_ms, persons, extra)
    return out


# -------------------------------------------------------------------------------------------- frames

def _draw_poses(out: np.ndarray, poses: Iterable[Pose], draw_boxes: bool, draw_ids: bool, attention: bool,
                min_score: float, joint, input_size) -> None:
    poses = list(poses)
    shown: list[list[int]] = [[] for _ in poses]
    if attention:   # under the skeletons, so the joints stay readable
        shown = [_draw_attention(out, pose, joint, min_score, input_size, 0.65, cv2.COLORMAP_JET) for pose in poses]
    for pose in poses:
        _draw_skeleton(out, pose, min_score)
    if joint is not None:   # one joint's area: mark that joint on top (all joints are marked by the skeleton)
        for pose, joints in zip(poses, shown):
            _mark_joints(out, pose, joints)
    for pose in poses:
        _draw_box_and_id(out, pose, draw_boxes, draw_ids, min_score)


def annotate(frame: np.ndarray, poses: Iterable[Pose], draw_boxes: bool = False, draw_ids: bool = True,
             attention: bool = False, min_score: float = 0.2, joint: int | str | None = None,
             input_size: tuple[int, int] | None = None, hud: dict | None = None) -> np.ndarray:
    """A copy of `frame` (BGR or grayscale) with every pose drawn; see draw_frame for the options."""
    out = as_bgr(frame).copy()
    poses = list(poses)
    _draw_poses(out, poses, draw_boxes, draw_ids, attention, min_score, joint, input_size)
    if hud is not None:
        _draw_hud(out, **_hud_args(hud, len(poses)))
    return out


def _hud_args(hud: dict, n_poses: int) -> dict:
    """fps / latency_ms / persons go to their slots (persons defaults to the poses drawn); other keys to extra."""
    known = {k: hud[k] for k in ("fps", "latency_ms", "persons") if k in hud}
    known.setdefault("persons", n_poses)
    extra = dict(hud.get("extra") or {})
    extra.update({k: v for k, v in hud.items() if k not in ("fps", "latency_ms", "persons", "extra")})
    return known | {"extra": extra}


def draw_frame(frame_bgr: np.ndarray, result: FrameResult, draw_boxes: bool = False, draw_ids: bool = True,
               attention: bool = False, hud: dict | None = None, min_score: float = 0.2,
               joint: int | str | None = None, input_size: tuple[int, int] | None = None) -> np.ndarray:
    """A new BGR image: `frame_bgr` with the frame's poses drawn.

    Limbs and joints are coloured by body side and blended by keypoint score; joints below
    `min_score` or NaN are skipped; line width follows the person's size. draw_ids tags tracked
    persons above the head; draw_boxes outlines the person boxes; attention=True lays the
    dependency areas (see draw_attention) under the skeletons; hud: draw_hud's arguments as a dict
    (other keys become extra lines).
    """
    return annotate(frame_bgr, result.poses, draw_boxes=draw_boxes, draw_ids=draw_ids, attention=attention,
                    min_score=min_score, joint=joint, input_size=input_size, hud=hud)


# ------------------------------------------------------------------------------ the window's inspector

COLORMAPS = {"jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "inferno": cv2.COLORMAP_INFERNO,
             "viridis": cv2.COLORMAP_VIRIDIS, "magma": cv2.COLORMAP_MAGMA, "hot": cv2.COLORMAP_HOT}


def colormap_code(name: str | int) -> int:
    """A colormap name (see COLORMAPS) or OpenCV code -> the OpenCV code."""
    if isinstance(name, int):
        return name
    if name not in COLORMAPS:
        raise TransposeLiveError(f"unknown colormap {name!r}; choose one of: {', '.join(COLORMAPS)}")
    return COLORMAPS[name]


def draw_area(image: np.ndarray, grid_map: np.ndarray, box: Sequence[float],
              input_size: tuple[int, int] | None = None, alpha: float = 0.65,
              colormap: str | int = "jet") -> np.ndarray:
    """A copy of `image` with one (h, w) token-grid map (any scale: shown min..max) colour-mapped over the
    crop of `box`, with the same blend as the attention overlay. A flat map leaves the image as it is."""
    out = as_bgr(image).copy()
    m = np.nan_to_num(np.asarray(grid_map, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min()), float(m.max())
    if hi <= lo:
        return out
    grid8 = np.rint((m - lo) / (hi - lo) * 255).astype(np.uint8)
    projected = project_to_image(grid8, box, (out.shape[1], out.shape[0]), input_size)
    if projected is None:
        return out
    heat, x0, y0 = projected
    roi = out[y0:y0 + heat.shape[0], x0:x0 + heat.shape[1]]
    w_map, w_img = _alpha_luts(float(alpha))
    roi[:] = cv2.blendLinear(cv2.applyColorMap(heat, colormap_code(colormap)), roi, cv2.LUT(heat, w_map),
                             cv2.LUT(heat, w_img))
    return out


def _joint_colors(n: int = NUM_JOINTS) -> tuple[tuple[int, int, int], ...]:
    """n BGR colours spread around the hue circle: one per joint."""
    hsv = np.array([[[int(180 * j / n), 220, 255] for j in range(n)]], np.uint8)
    return tuple((int(b), int(g), int(r)) for b, g, r in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0])


JOINT_COLORS = _joint_colors()     # BGR, by joint index: the inspector's "all joints" areas and its legend


def draw_joint_areas(image: np.ndarray, maps: np.ndarray, joints: Sequence[int], box: Sequence[float],
                     input_size: tuple[int, int] | None = None, alpha: float = 0.65) -> np.ndarray:
    """A copy of `image` with several joints' (J, h, w) token-grid areas over the crop of `box`, each joint in
    its own colour (JOINT_COLORS): at every token the colour of the joint whose area (scaled to its own
    peak) is strongest there, blended as strongly as that value."""
    out = as_bgr(image).copy()
    joints = [int(j) for j in joints]
    if not joints:
        return out
    raw = np.nan_to_num(np.asarray(maps, dtype=np.float32)[joints], nan=0.0, posinf=0.0, neginf=0.0)   # (k, h, w)
    peak = raw.reshape(len(joints), -1).max(1)
    sel = raw / np.where(peak > 0, peak, 1.0)[:, None, None]
    strongest, value = sel.argmax(0), sel.max(0)                                   # (h, w), (h, w)
    if float(value.max()) <= 0:
        return out
    colours = np.array([JOINT_COLORS[j] for j in joints], np.uint8)[strongest]     # (h, w, 3)
    frame_wh = (out.shape[1], out.shape[0])
    value8 = np.rint(value / value.max() * 255).astype(np.uint8)
    projected = project_to_image(value8, box, frame_wh, input_size)
    if projected is None:
        return out
    heat, x0, y0 = projected

    def channel(c: int) -> np.ndarray:   # one colour channel through the same projection as `heat`
        region = project_to_image(np.ascontiguousarray(colours[..., c]), box, frame_wh, input_size)
        assert region is not None        # the same box and frame as `value8`'s, which projected
        return region[0]

    colour = np.stack([channel(c) for c in range(3)], axis=-1)                     # (rh, rw, 3)
    roi = out[y0:y0 + heat.shape[0], x0:x0 + heat.shape[1]]
    # no floor tint here: where every joint's area is low the winning colour means nothing
    w_map = (float(alpha) * np.arange(256, dtype=np.float32) / 255).reshape(1, 256)
    roi[:] = cv2.blendLinear(colour, roi, cv2.LUT(heat, w_map), cv2.LUT(heat, (1.0 - w_map).astype(np.float32)))
    return out


def mark_joints(image: np.ndarray, pose: Pose, joints: Iterable[int]) -> np.ndarray:
    """A copy of `image` with white dots on these joints of `pose` (the joints whose areas are shown)."""
    out = as_bgr(image).copy()
    _mark_joints(out, pose, joints)
    return out


def area_strip(image: np.ndarray, maps: np.ndarray, box: Sequence[float], input_size: tuple[int, int] | None,
               height: int = 120, alpha: float = 0.65, colormap: str | int = "jet",
               labels: Sequence[str] | None = None, joints: Sequence[int] | None = None) -> np.ndarray:
    """The paper's Fig. 6 strip: (L, h, w) maps (one per layer) each drawn over the person's crop region,
    or (L, J, h, w) maps drawn as draw_joint_areas (these `joints`, each in its own colour),
    side by side, `height` pixels tall, labelled "1".."L" (or `labels`). (height, L * width, 3) uint8."""
    frame = as_bgr(image)
    H, W = frame.shape[:2]
    in_h, in_w = input_size if input_size is not None else (4, 3)
    center, scale = box_to_center_scale(box, aspect_ratio=in_w / in_h)       # the model's crop, as it saw it
    half = scale * PIXEL_STD / 2
    x0, y0 = max(0, int(math.floor(center[0] - half[0]))), max(0, int(math.floor(center[1] - half[1])))
    x1 = min(W, int(math.ceil(center[0] + half[0])))
    y1 = min(H, int(math.ceil(center[1] + half[1])))
    if x1 <= x0 or y1 <= y0:
        raise TransposeLiveError(f"box {tuple(box)} is outside the {W}x{H} frame")
    width = max(8, int(round(height * (x1 - x0) / (y1 - y0))))
    tiles = []
    for i, grid_map in enumerate(maps):
        if np.ndim(grid_map) == 3:        # several joints at this layer: each in its own colour
            drawn = draw_joint_areas(frame, grid_map, joints or range(len(grid_map)), box, input_size, alpha)
        else:
            drawn = draw_area(frame, grid_map, box, input_size, alpha, colormap)
        drawn = drawn[y0:y1, x0:x1]
        tile = cv2.resize(drawn, (width, height), interpolation=cv2.INTER_AREA)
        text = labels[i] if labels is not None else str(i + 1)
        cv2.putText(tile, text, (4, 16), FONT, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, text, (4, 16), FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


__all__ = ["draw_frame", "annotate", "draw_attention", "draw_hud", "attention_map", "project_to_image",
           "score_alpha", "line_thickness", "id_color", "draw_area", "mark_joints", "area_strip",
           "colormap_code", "COLORMAPS", "draw_joint_areas", "JOINT_COLORS"]

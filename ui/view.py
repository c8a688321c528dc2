"""What the attention overlay shows (View) and the drawing of it in the worker's thread (no Qt here).

Two paths: the overlay on with the default view (all joints, last layer, dependency areas) is the
pipeline's own overlay over every person (fast: the maps come with the poses). Anything more (a joint,
another layer, affected areas, the Fig. 6 strip, opacity or colormap) inspects ONE person, the selected
one: a forward pass of its crop with every layer's attention (transpose_live.pose.inspector), drawn here over
the raw frame, skeletons on top. With the overlay off no map is computed at all.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from transpose_live.skeleton import KEYPOINT_NAMES
from transpose_live.types import FrameResult, Pose

if TYPE_CHECKING:          # annotation-only: View stays light to import (the CLI), the inspector loads torch
    from transpose_live.live.pipeline import PoseModel
    from transpose_live.live.spec import RunSpec
    from transpose_live.pose.inspector import Inspection

DEFAULT_OPACITY = 0.65
STRIP_HEIGHT = 150


@dataclass(frozen=True)
class View:
    """overlay: attention shown (A). person: the selected person's track id (or index when untracked;
    None: the largest). joint: index (None: all joints). layer: 1-based (None: the last). affected: the
    column of the map instead of the row. strip: compute the per-layer strip (the inspector panel is open)."""

    overlay: bool = False
    person: int | None = None
    joint: int | None = None
    layer: int | None = None
    affected: bool = False
    opacity: float = DEFAULT_OPACITY
    colormap: str = "jet"
    strip: bool = False

    def replace(self, **changes) -> "View":
        return dataclasses.replace(self, **changes)

    @property
    def inspects(self) -> bool:
        """Whether one person is inspected (all layers' maps) instead of the pipeline's own overlay."""
        return self.overlay and (self.strip or self.joint is not None or self.layer is not None or self.affected
                                 or self.opacity != DEFAULT_OPACITY or self.colormap != "jet")

    @property
    def pipeline_attention(self) -> bool:
        """Whether the pipeline itself computes and draws the (last-layer, all persons) overlay."""
        return self.overlay and not self.inspects


def selected_pose(poses: Sequence[Pose], person: int | None) -> tuple[int, Pose] | None:
    """(index, pose) of the selected person: by track id, else by index; None selected: the largest box."""
    if not poses:
        return None
    if person is not None:
        for i, pose in enumerate(poses):
            if pose.track_id == person:
                return i, pose
        if all(p.track_id is None for p in poses) and 0 <= person < len(poses):
            return person, poses[person]
    areas = [(p.box[2] * p.box[3]) if p.box is not None else 0.0 for p in poses]
    i = int(np.argmax(areas))
    return i, poses[i]


def person_key(poses: Sequence[Pose], index: int) -> int:
    """How View.person names poses[index]: its track id, or its index when untracked."""
    track = poses[index].track_id
    return index if track is None else int(track)


def _joints(seen: Inspection, min_score: float) -> list[int]:
    """The joints "all joints" shows: those scoring >= min_score (every joint when none does)."""
    return [j for j in range(len(KEYPOINT_NAMES)) if seen.scores[j] >= min_score] or list(range(len(KEYPOINT_NAMES)))


def _draw(raw: np.ndarray, seen: Inspection, view: View, layer: int | None, joints: list[int],
          box: tuple[float, float, float, float]) -> np.ndarray:
    """One layer's areas over the raw frame: the chosen joint in the colormap, or all joints each in its
    own colour."""
    # deferred (here and below): render and the inspector load torch and OpenCV; the CLI imports View first
    from transpose_live.live.render import draw_area, draw_joint_areas

    if view.joint is not None:
        return draw_area(raw, seen.area(view.joint, layer, view.affected), box, seen.input_size, view.opacity,
                         view.colormap)
    return draw_joint_areas(raw, seen.all_joints(layer, view.affected), joints, box, seen.input_size, view.opacity)


def render_inspection(raw: np.ndarray, result: FrameResult, view: View, estimator: PoseModel | None,
                      spec: RunSpec) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """The frame drawn with the selected person's chosen areas under every skeleton, its box outlined,
    the chosen joint marked; the Fig. 6 strip when view.strip; facts for the window (person, layers).
    Returns (image, strip or None, facts). estimator: a transpose_live.pose.estimator.PoseEstimator (its
    network runs again on the person's crop, every layer's attention kept)."""
    import cv2  # deferred with render and the inspector (see _draw)

    from transpose_live.live.render import annotate, area_strip, mark_joints
    from transpose_live.pose.inspector import inspect_person

    min_score = float(getattr(spec, "min_joint_score", 0.2))
    draw = dict(draw_boxes=bool(getattr(spec, "boxes", False)), draw_ids=bool(getattr(spec, "ids", True)),
                min_score=min_score)
    picked = selected_pose(result.poses, view.person)
    if picked is None or picked[1].box is None:
        return annotate(raw, result.poses, **draw), None, {"person": None}
    index, pose = picked
    seen = inspect_person(estimator, raw, pose.box)
    layer = min(view.layer, seen.layers) if view.layer is not None else None
    joints = [view.joint] if view.joint is not None else _joints(seen, min_score)
    out = annotate(_draw(raw, seen, view, layer, joints, pose.box), result.poses, **draw)
    if view.joint is not None:               # all joints are marked by the skeleton already
        out = mark_joints(out, pose, joints)
    x, y, w, h = (int(round(v)) for v in pose.box)
    cv2.rectangle(out, (x, y), (x + w, y + h), (255, 255, 255), 1, cv2.LINE_AA)
    strip = None
    if view.strip:
        layers = range(1, seen.layers + 1)
        if view.joint is not None:
            maps = np.stack([seen.area(view.joint, k, view.affected) for k in layers])          # (L, h, w)
        else:
            maps = np.stack([seen.all_joints(k, view.affected) for k in layers])               # (L, J, h, w)
        strip = area_strip(raw, maps, pose.box, seen.input_size, STRIP_HEIGHT, view.opacity, view.colormap,
                           labels=[f"L{k}" for k in layers], joints=joints)
    return out, strip, {"person": person_key(result.poses, index), "layers": seen.layers,
                        "layer": layer or seen.layers, "joints": joints}

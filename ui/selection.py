"""Which person and joint the user picks on the video: a click (on a joint of the selected person: that joint;
inside a person's box: that person) or Tab (the next person in view). No Qt here: positions are image pixels."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from transpose_live.types import Pose
from transpose_live.ui.view import View, person_key, selected_pose

JOINT_CLICK_PX = 12          # a click this close (image pixels, at least) to a joint of the selected person picks it


def next_person(poses: Sequence[Pose], view: View) -> int | None:
    """Tab: how View.person names the person after the selected one (None: nobody in view)."""
    if not poses:
        return None
    picked = selected_pose(poses, view.person)
    index = 0 if picked is None else (picked[0] + 1) % len(poses)
    return person_key(poses, index)


def clicked(poses: Sequence[Pose], view: View, x: float, y: float) -> View | None:
    """The view after a click at (x, y): a joint of the selected person picks that joint (and shows the maps);
    a click inside a person's box (the smallest box when they overlap) selects them. None: nothing there."""
    picked = selected_pose(poses, view.person)
    if picked is not None:
        kp = np.asarray(picked[1].keypoints, dtype=np.float64)
        size = max(picked[1].box[2:]) if picked[1].box is not None else 100.0
        dist = np.hypot(kp[:, 0] - x, kp[:, 1] - y)
        dist[~np.isfinite(dist)] = np.inf
        j = int(np.argmin(dist))
        if dist[j] <= max(JOINT_CLICK_PX, 0.06 * size):
            return view.replace(joint=j, overlay=True)
    inside = [(p.box[2] * p.box[3], i) for i, p in enumerate(poses)
              if p.box is not None and p.box[0] <= x <= p.box[0] + p.box[2]
              and p.box[1] <= y <= p.box[1] + p.box[3]]
    if inside:
        return view.replace(person=person_key(poses, min(inside)[1]))
    return None

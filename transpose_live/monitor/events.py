"""Pose events: persons appearing and leaving, and falls (`person_down` / `person_up`), from tracked poses.

Each detector is fed one FrameResult at a time (`update(result) -> [event dict]`) and closed with
`finish(timestamp)`; an event is a JSON-ready dict {"event": name, "id": track_id, "timestamp": seconds of
the source, ...}. Time is the frames' own timestamps, never the wall clock (the writers add that), so a
variable frame rate, a slow machine or a replayed file give the same events. Poses without a track id are
ignored: events need the tracker.

Falls. A person is *down* when the torso (mid-shoulders → mid-hips) is more than 60° from the image
vertical AND the hips are less than half a torso length above the ankles in the image. Both numbers come
from body proportions (hip→ankle ≈ 1.7 torso lengths standing, ≈ 0.85 on all fours or on a chair, ≈ 0
lying): 0.5 sits between lying and crawling, and tolerates bent knees and a body lying up to ~30° off the
image horizontal; 60° accepts a diagonal body and rejects slumped sitting (30–45°). Once a person looks
down the test loosens to 45° / 0.75 (hysteresis), so joint jitter near the thresholds does not restart the
clock. `person_down` is sent when the posture has held for `down_seconds` (default 2) of timestamps;
`person_up` when the torso is within 30° of vertical with the hips at least 0.6 torso lengths above the
ankles (standing, kneeling upright or sitting on a chair; not sitting on the floor) for `up_seconds`
(default 1). A joint counts when its score is at least 0.3 and it is finite; each pair (shoulders, hips,
ankles) needs one such joint. When a pair is missing the posture is unknown and the state holds: a
running clock goes on, nothing is started or reset. A person out of the frame holds their state too but
gets no event until seen again, and is forgotten once the id has not been seen for `forget_s` (the
tracker's own gaps are shorter).

How well it works, where it fails (for the README). It is a geometric rule on 2D keypoints, not a
learned fall classifier: it reliably flags a person lying across the camera's view for longer than
`--down-seconds`, and ignores standing, walking, bending over, squatting, sitting on a chair or on the
floor, kneeling and crawling. It misses or errs when (1) a person lies along the camera's line of sight:
the foreshortened torso looks vertical (seen from a camera looking down ~30°, bodies more than ~30–45°
off the image horizontal are missed); (2) the legs or ankles are hidden (behind a bed, a table, the frame
edge): no decision is made, so a fall there is missed, and a person who got up behind furniture gets no
`person_up` until the ankles are seen; (3) a person lies down on purpose (a sofa, the floor, a bed seen
from the side): the rule cannot tell a fall from lying, and the speed of the fall is not used; (4) the
tracker gives a person a new id during the fall (occlusion, a fast change of shape): the clock restarts
and the event comes late or not at all; (5) the pose estimator is weaker on lying people (few in COCO)
and a low-confidence skeleton gives no decision. Use it as a prompt to look, not as an alarm on its own.

Zones where lying down is normal (a bed, a sofa: `ignore_down` polygons in cameras.yaml, frame pixels): a
person whose torso centre (halfway between mid-shoulders and mid-hips) lies inside one is never *down* there;
the posture counts as "other", so no clock starts and a person already down gets no `person_up` from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from transpose_live.geometry import inside_any
from transpose_live.media.records import json_number
from transpose_live.media.sinks.base import Event
from transpose_live.types import FrameResult, Pose

MIN_JOINT_SCORE = 0.3
SHOULDERS, HIPS, ANKLES = (5, 6), (11, 12), (15, 16)

# posture classes
DOWN, UPRIGHT, OTHER = "down", "upright", "other"


def _record(event: str, track_id: int, timestamp: float, frame: int | None = None, **extra: object) -> Event:
    record = {"event": event, "id": int(track_id), "timestamp": json_number(timestamp, 6)}
    if frame is not None:
        record["frame"] = int(frame)
    for key, value in extra.items():
        record[key] = json_number(value, 6) if isinstance(value, float) else value
    return record


def _tracked(result: FrameResult) -> dict[int, Pose]:
    return {int(p.track_id): p for p in result.poses if p.track_id is not None}


# ---------------------------------------------------------------------------------------------------------
# presence


class PresenceEvents:
    """`person_appeared` the first frame a track id is seen; `person_left` once it has not been seen for
    `grace_s` seconds (the tracker keeps ids through short gaps, so a brief occlusion gives nothing);
    `finish(timestamp)` says `person_left` for everyone still present."""

    def __init__(self, grace_s: float = 1.0):
        if not grace_s >= 0:
            raise ValueError(f"grace_s must be >= 0, got {grace_s}")
        self.grace_s = float(grace_s)
        self._last_seen: dict[int, float] = {}      # id → timestamp of its last frame

    @property
    def present(self) -> list[int]:
        return sorted(self._last_seen)

    def update(self, result: FrameResult) -> list[Event]:
        t = float(result.timestamp)
        seen = _tracked(result)
        events = []
        for track_id, last in list(self._last_seen.items()):
            if track_id not in seen and t - last >= self.grace_s:
                del self._last_seen[track_id]
                events.append(_record("person_left", track_id, t, result.index, last_seen=last))
        for track_id in seen:
            if track_id not in self._last_seen:
                events.append(_record("person_appeared", track_id, t, result.index))
            self._last_seen[track_id] = t
        return events

    def finish(self, timestamp: float) -> list[Event]:
        events = [_record("person_left", i, timestamp, last_seen=last) for i, last in self._last_seen.items()]
        self._last_seen.clear()
        return events


# ---------------------------------------------------------------------------------------------------------
# falls


def _pair_point(pose: Pose, pair: tuple[int, int], min_score: float) -> np.ndarray | None:
    """Mean position of the pair's confident, finite joints; None when neither is."""
    kp = np.asarray(pose.keypoints, np.float64)[list(pair)]          # (2, 2)
    sc = np.asarray(pose.scores, np.float64)[list(pair)]             # (2,)
    ok = np.isfinite(kp).all(axis=1) & np.isfinite(sc) & (sc >= min_score)
    return kp[ok].mean(axis=0) if ok.any() else None


def torso_geometry(pose: Pose, min_score: float = MIN_JOINT_SCORE) -> tuple[float, float] | None:
    """(torso angle from the image vertical in degrees, 0..90; hips' height above the ankles in torso
    lengths, image y up), or None when shoulders, hips or ankles are not visible."""
    shoulders = _pair_point(pose, SHOULDERS, min_score)
    hips = _pair_point(pose, HIPS, min_score)
    ankles = _pair_point(pose, ANKLES, min_score)
    if shoulders is None or hips is None or ankles is None:
        return None
    dx, dy = hips - shoulders
    length = math.hypot(dx, dy)
    if length < 1.0:               # under a pixel: no direction to speak of
        return None
    angle = math.degrees(math.atan2(abs(dx), abs(dy)))   # upside down counts as vertical
    return angle, float(ankles[1] - hips[1]) / length


@dataclass
class _FallState:
    last_seen: float
    down_since: float | None = None    # first frame of the current down posture
    up_since: float | None = None      # first frame of the current upright posture (after person_down)
    down: bool = False                 # person_down sent, person_up not yet


class FallEvents:
    """`person_down` when a tracked person has lain down (torso near horizontal, hips near the ankles'
    height) for `down_seconds`; `person_up` after it once they have been upright for `up_seconds`. See the
    module docstring for the thresholds and for how well this works."""

    def __init__(self, down_seconds: float = 2.0, up_seconds: float = 1.0, *,
                 down_angle: float = 60.0, down_drop: float = 0.5,
                 hold_angle: float = 45.0, hold_drop: float = 0.75,
                 up_angle: float = 30.0, up_drop: float = 0.6,
                 min_score: float = MIN_JOINT_SCORE, forget_s: float = 1.0,
                 ignore: Sequence[np.ndarray] = ()):
        if not down_seconds >= 0 or not up_seconds >= 0:
            raise ValueError(f"down_seconds and up_seconds must be >= 0, got {down_seconds}, {up_seconds}")
        if not (up_angle <= hold_angle <= down_angle and down_drop <= hold_drop and up_drop >= 0):
            raise ValueError("fall thresholds must satisfy up_angle <= hold_angle <= down_angle and "
                             "down_drop <= hold_drop")
        self.down_seconds, self.up_seconds = float(down_seconds), float(up_seconds)
        self.down_angle, self.down_drop = down_angle, down_drop
        self.hold_angle, self.hold_drop = hold_angle, hold_drop
        self.up_angle, self.up_drop = up_angle, up_drop
        self.min_score = min_score
        self.forget_s = float(forget_s)
        self.ignore = [np.asarray(zone, np.float64).reshape(-1, 2) for zone in ignore]   # (K, 2) polygons
        self._states: dict[int, _FallState] = {}

    @property
    def down_ids(self) -> list[int]:
        return sorted(i for i, s in self._states.items() if s.down)

    def posture(self, pose: Pose, lying: bool = False) -> str | None:
        """DOWN, UPRIGHT, OTHER, or None (not visible). `lying`: the person looked down already (the
        looser hold thresholds apply)."""
        geometry = torso_geometry(pose, self.min_score)
        if geometry is None:
            return None
        angle, drop = geometry
        max_angle, max_drop = (self.hold_angle, self.hold_drop) if lying else (self.down_angle, self.down_drop)
        if angle > max_angle and drop < max_drop:
            return OTHER if self.in_ignored_zone(pose) else DOWN
        if angle < self.up_angle and drop > self.up_drop:
            return UPRIGHT
        return OTHER

    def in_ignored_zone(self, pose: Pose) -> bool:
        """Whether the torso centre lies in an ignore_down zone (where lying is normal)."""
        if not self.ignore:
            return False
        shoulders = _pair_point(pose, SHOULDERS, self.min_score)
        hips = _pair_point(pose, HIPS, self.min_score)
        if shoulders is None or hips is None:
            return False
        return bool(inside_any((shoulders + hips)[None] / 2, self.ignore)[0])

    def update(self, result: FrameResult) -> list[Event]:
        t = float(result.timestamp)
        events = []
        seen = _tracked(result)
        for track_id, pose in seen.items():
            state = self._states.get(track_id)
            if state is None:
                state = self._states[track_id] = _FallState(last_seen=t)
            state.last_seen = t
            self._observe(state, self.posture(pose, lying=state.down or state.down_since is not None), t)
        for track_id, state in list(self._states.items()):
            if track_id not in seen:       # out of view: the state holds (no event) until forgotten
                if t - state.last_seen > self.forget_s:
                    del self._states[track_id]
                continue
            # the clocks run on held states too (a frame without the needed joints)
            if not state.down and state.down_since is not None and t - state.down_since >= self.down_seconds:
                state.down, state.up_since = True, None
                events.append(_record("person_down", track_id, t, result.index, since=state.down_since))
            elif state.down and state.up_since is not None and t - state.up_since >= self.up_seconds:
                state.down, state.down_since = False, None
                events.append(_record("person_up", track_id, t, result.index, since=state.up_since))
        return events

    @staticmethod
    def _observe(state: _FallState, posture: str | None, t: float) -> None:
        if posture is None:                # not visible: the state holds
            return
        if not state.down:
            if posture == DOWN:
                state.down_since = t if state.down_since is None else state.down_since
            else:
                state.down_since = None
        elif posture == UPRIGHT:
            state.up_since = t if state.up_since is None else state.up_since
        else:
            state.up_since = None

    def finish(self, timestamp: float) -> list[Event]:
        self._states.clear()
        return []


# ---------------------------------------------------------------------------------------------------------
# both


class PoseEvents:
    """Presence and falls in one detector (what `rtsp` / `monitor` run): `update(result) -> [event]`,
    `finish(timestamp) -> [event]`. falls=False leaves the fall detector out; ignore_down: polygons (frame
    pixels) where lying down is normal (see the module docstring)."""

    def __init__(self, grace_s: float = 1.0, down_seconds: float = 2.0, up_seconds: float = 1.0,
                 falls: bool = True, ignore_down: Sequence[np.ndarray] = ()):
        self.presence = PresenceEvents(grace_s)
        self.falls = (FallEvents(down_seconds, up_seconds, forget_s=grace_s, ignore=ignore_down) if falls
                      else None)

    def update(self, result: FrameResult) -> list[Event]:
        events = self.presence.update(result)
        if self.falls is not None:
            events += self.falls.update(result)
        return events

    def finish(self, timestamp: float) -> list[Event]:
        events = self.presence.finish(timestamp)
        if self.falls is not None:
            events += self.falls.finish(timestamp)
        return events


__all__ = ["PresenceEvents", "FallEvents", "PoseEvents", "torso_geometry", "MIN_JOINT_SCORE"]

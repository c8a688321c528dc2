"""Pose events on synthetic keypoint tracks: persons appearing / leaving, falls (person_down / person_up)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transpose_live.monitor.events import FallEvents, PoseEvents, PresenceEvents, torso_geometry
from transpose_live.types import FrameResult, Pose

T = 60.0          # torso length in pixels
GROUND = 400.0    # image y of the floor
DT = 0.04         # 25 fps


# ---------------------------------------------------------------------------------------------------------
# synthetic bodies: (17, 2) keypoints from the centre line (head, shoulders, hips, knees, ankles)

def body(head, shoulder, hip, knee, ankle, half_width=0.15 * T) -> np.ndarray:
    """Left / right joints side by side around the centre line; arms hang between shoulders and hips."""
    head, shoulder, hip, knee, ankle = (np.asarray(p, np.float32) for p in (head, shoulder, hip, knee, ankle))
    side = np.float32([half_width, 0.0])
    elbow, wrist = (shoulder + hip) / 2, hip
    kp = np.empty((17, 2), np.float32)
    kp[0:5] = head
    for left, right, centre in ((5, 6, shoulder), (7, 8, elbow), (9, 10, wrist), (11, 12, hip),
                                (13, 14, knee), (15, 16, ankle)):
        kp[left], kp[right] = centre - side, centre + side
    return kp


def standing(x=200.0):
    g = GROUND
    return body((x, g - 3.2 * T), (x, g - 2.7 * T), (x, g - 1.7 * T), (x, g - 0.85 * T), (x, g))


def lying(x=200.0):
    g = GROUND
    return body((x - 0.5 * T, g - 0.2 * T), (x, g - 0.15 * T), (x + T, g - 0.15 * T),
                (x + 1.85 * T, g - 0.1 * T), (x + 2.7 * T, g - 0.05 * T))


def bending_over(x=200.0):       # torso tilted ~70°, hips high on straight legs
    g = GROUND
    hip = (x, g - 1.7 * T)
    return body((x + 1.3 * T, g - 1.2 * T), (x + 0.95 * T, g - 1.4 * T), hip, (x, g - 0.85 * T), (x, g))


def sitting_on_floor(x=200.0):    # hips at the ankles' height, torso upright
    g = GROUND
    return body((x + 0.25 * T, g - 1.6 * T), (x + 0.2 * T, g - 1.1 * T), (x, g - 0.1 * T),
                (x + 0.85 * T, g - 0.3 * T), (x + 1.7 * T, g))


def sitting_on_chair(x=200.0):
    g = GROUND
    return body((x, g - 2.4 * T), (x, g - 1.9 * T), (x, g - 0.9 * T), (x + 0.85 * T, g - 0.9 * T),
                (x + 0.85 * T, g))


def on_all_fours(x=200.0):        # torso horizontal, hips a thigh above the floor
    g = GROUND
    return body((x + 1.4 * T, g - 0.9 * T), (x + T, g - 0.8 * T), (x, g - 0.85 * T), (x, g),
                (x - 0.85 * T, g))


def pose(kp, track_id, scores=None, seed=0) -> Pose:
    rng = np.random.default_rng(seed)
    kp = np.asarray(kp, np.float32) + rng.normal(0, 0.8, (17, 2)).astype(np.float32)   # keypoint jitter
    sc = np.full(17, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Pose(kp, sc, track_id=track_id)


def track(segments, dt=DT, times=None):
    """Per frame the keypoints (or None: not in the frame). segments: (seconds, start, end) with start None
    for absent and end None for a still pose; `start → end` moves linearly."""
    frames = []
    for seconds, start, end in segments:
        n = int(round(seconds / dt))
        for i in range(n):
            if start is None:
                frames.append(None)
            elif end is None:
                frames.append(start)
            else:
                a = (i + 1) / n
                frames.append((1 - a) * start + a * end)
    return frames


def run(detector, *people, dt=DT, times=None, scores=None, finish=False):
    """Feed people's tracks (keypoint lists from `track`, id = position + 1) frame by frame; every event."""
    n = max(len(p) for p in people)
    times = np.arange(n) * dt if times is None else np.asarray(times)
    events = []
    for i in range(n):
        poses = [pose(p[i], track_id=k + 1, scores=scores, seed=i * 7 + k)
                 for k, p in enumerate(people) if i < len(p) and p[i] is not None]
        events += detector.update(FrameResult(index=i, timestamp=float(times[i]), poses=poses))
    if finish:
        events += detector.finish(float(times[n - 1]))
    for e in events:
        json.dumps(e, allow_nan=False)                 # JSON-ready
    return events


def names(events, name=None):
    return [e["event"] for e in events if name is None or e["event"] == name]


# ---------------------------------------------------------------------------------------------------------
# presence


def test_a_standing_person_appears_once_and_leaves_at_the_end():
    events = run(PresenceEvents(grace_s=1.0), track([(3.0, standing(), None)]), finish=True)
    assert names(events) == ["person_appeared", "person_left"]
    assert events[0] == {"event": "person_appeared", "id": 1, "timestamp": 0.0, "frame": 0}
    assert events[1]["id"] == 1 and events[1]["timestamp"] == pytest.approx(3.0 - DT)


def test_walking_off_is_left_after_the_grace_not_before():
    people = track([(2.0, standing(), None), (3.0, None, None)])
    detector = PresenceEvents(grace_s=1.0)
    events = run(detector, people)
    assert names(events) == ["person_appeared", "person_left"]
    last_seen = 2.0 - DT
    left = events[1]
    assert left["last_seen"] == pytest.approx(last_seen)
    assert last_seen + 1.0 <= left["timestamp"] < last_seen + 1.0 + DT
    assert detector.present == []


def test_a_short_occlusion_does_not_flap():
    people = track([(2.0, standing(), None), (0.8, None, None), (2.0, standing(), None)])
    events = run(PresenceEvents(grace_s=1.0), people, finish=True)
    assert names(events) == ["person_appeared", "person_left"]   # the left is finish()'s


def test_poses_without_a_track_id_are_ignored():
    detector = PoseEvents()
    result = FrameResult(0, 0.0, [Pose(lying(), np.full(17, 0.9, np.float32))])
    assert detector.update(result) == [] and detector.finish(0.0) == []


# ---------------------------------------------------------------------------------------------------------
# falls


def fall_track(lie_s=3.0, up=True):
    """Standing 1 s, falling in 0.3 s, lying `lie_s`, (getting up in 0.5 s, standing 2 s)."""
    segments = [(1.0, standing(), None), (0.3, standing(), lying()), (lie_s, lying(), None)]
    if up:
        segments += [(0.5, lying(), standing()), (2.0, standing(), None)]
    return track(segments)


def fall_time(people, dt=DT):
    """When the track first meets the stated rule (torso > 60° from vertical, hips < 0.5 torso lengths
    above the ankles), computed here on the noise-free keypoints."""
    for i, kp in enumerate(people):
        shoulders, hips, ankles = kp[[5, 6]].mean(0), kp[[11, 12]].mean(0), kp[[15, 16]].mean(0)
        dx, dy = hips - shoulders
        angle = np.degrees(np.arctan2(abs(dx), abs(dy)))
        if angle > 60 and (ankles[1] - hips[1]) / np.hypot(dx, dy) < 0.5:
            return i * dt
    raise AssertionError("never down")


def test_a_fall_gives_one_person_down_after_down_seconds_then_one_person_up():
    people = fall_track()
    events = run(FallEvents(down_seconds=2.0), people)
    assert names(events) == ["person_down", "person_up"]
    down, up = events
    fell = fall_time(people)
    assert 1.0 < fell <= 1.3                             # during the 0.3 s fall
    assert abs(down["timestamp"] - (fell + 2.0)) <= DT + 1e-9
    assert down["id"] == 1 and down["since"] == pytest.approx(fell)
    standing_from = 1.3 + 3.0 + 0.5
    assert standing_from + 1.0 - 0.5 <= up["timestamp"] <= standing_from + 1.0 + DT
    assert up["since"] > down["timestamp"]


def test_the_posture_thresholds_on_the_synthetic_bodies():
    geometry = {name: torso_geometry(pose(fn(), 1)) for name, fn in
                (("standing", standing), ("lying", lying), ("bending", bending_over),
                 ("floor", sitting_on_floor), ("chair", sitting_on_chair), ("fours", on_all_fours))}
    angle, drop = geometry["standing"]
    assert angle < 5 and drop == pytest.approx(1.7, abs=0.05)
    angle, drop = geometry["lying"]
    assert angle > 85 and abs(drop) < 0.2
    fall = FallEvents()
    assert fall.posture(pose(lying(), 1)) == "down"
    assert fall.posture(pose(standing(), 1)) == fall.posture(pose(sitting_on_chair(), 1)) == "upright"
    for other in (bending_over, sitting_on_floor, on_all_fours):
        assert fall.posture(pose(other(), 1)) == "other", other.__name__


def test_lying_less_than_down_seconds_is_nothing():
    events = run(FallEvents(down_seconds=2.0), fall_track(lie_s=1.5))
    assert events == []


@pytest.mark.parametrize("posture", [bending_over, sitting_on_floor, sitting_on_chair, on_all_fours])
def test_bending_sitting_kneeling_are_not_falls(posture):
    people = track([(1.0, standing(), None), (0.5, standing(), posture()), (5.0, posture(), None),
                    (0.5, posture(), standing())])
    assert run(FallEvents(down_seconds=2.0), people) == []


def test_missing_ankles_give_no_event():
    scores = np.full(17, 0.9, np.float32)
    scores[[15, 16]] = 0.2                               # below the confidence that counts
    for posture in (lying, bending_over):
        people = track([(4.0, posture(), None)])
        assert run(FallEvents(down_seconds=1.0), people, scores=scores) == []
    nan_ankles = bending_over()
    nan_ankles[[15, 16]] = np.nan
    assert run(FallEvents(down_seconds=1.0), track([(4.0, nan_ankles, None)])) == []


def test_joints_hidden_while_lying_hold_the_state():
    hidden = lying()
    hidden[[11, 12, 15, 16]] = np.nan                    # hips and ankles out of view for a second
    people = track([(1.0, standing(), None), (1.0, lying(), None), (1.0, hidden, None), (2.0, lying(), None)])
    events = run(FallEvents(down_seconds=2.0), people)
    assert names(events) == ["person_down"]
    assert abs(events[0]["timestamp"] - 3.0) <= DT + 1e-9


def test_state_is_forgotten_when_the_id_disappears():
    people = track([(1.5, lying(), None), (2.0, None, None), (3.0, lying(), None)])
    events = run(FallEvents(down_seconds=2.0, forget_s=1.0), people)
    assert names(events) == ["person_down"]
    assert abs(events[0]["timestamp"] - (3.5 + 2.0)) <= DT + 1e-9     # the clock restarted on return


def test_two_people_keep_separate_states():
    a = fall_track(up=False)                                       # falls at 1.3 s
    b = track([(3.0, standing(400.0), None), (0.2, standing(400.0), lying(400.0)), (3.0, lying(400.0), None)])
    events = run(FallEvents(down_seconds=2.0), a, b)
    downs = [(e["id"], e["timestamp"]) for e in events if e["event"] == "person_down"]
    assert [i for i, _ in downs] == [1, 2]
    assert abs(downs[0][1] - (fall_time(a) + 2.0)) <= DT + 1e-9
    assert abs(downs[1][1] - (fall_time(b) + 2.0)) <= DT + 1e-9 and fall_time(b) > 3.0
    assert names(events, "person_up") == []


def test_variable_frame_rate():
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.02, 0.2, 200))
    times -= times[0]
    lie_from = int(np.searchsorted(times, 1.0))
    up_from = int(np.searchsorted(times, 5.0))
    people = [standing()] * lie_from + [lying()] * (up_from - lie_from) + [standing()] * (200 - up_from)
    events = run(FallEvents(down_seconds=2.0, up_seconds=1.0), people, times=times)
    assert names(events) == ["person_down", "person_up"]
    expect_down = times[times >= times[lie_from] + 2.0][0]
    expect_up = times[times >= times[up_from] + 1.0][0]
    assert events[0]["timestamp"] == pytest.approx(expect_down, abs=1e-6)
    assert events[1]["timestamp"] == pytest.approx(expect_up, abs=1e-6)


def test_pose_events_put_presence_and_falls_together():
    people = fall_track() + [None] * 50
    events = run(PoseEvents(grace_s=1.0, down_seconds=2.0), people, finish=True)
    assert names(events) == ["person_appeared", "person_down", "person_up", "person_left"]
    assert {e["id"] for e in events} == {1}
    assert all(isinstance(e["timestamp"], float) for e in events)


def test_lying_inside_an_ignore_down_zone_is_no_fall_and_outside_it_is():
    bed = np.array([[150, 350], [350, 350], [350, 420], [150, 420]], float)    # around the lying torso's centre
    assert names(run(PoseEvents(down_seconds=2.0, ignore_down=[bed]), fall_track(), finish=True), "person_down") == []
    elsewhere = bed + [400.0, 0.0]
    assert names(run(PoseEvents(down_seconds=2.0, ignore_down=[elsewhere]), fall_track(), finish=True)) == \
        ["person_appeared", "person_down", "person_up", "person_left"]

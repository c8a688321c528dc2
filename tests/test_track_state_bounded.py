"""Per-track state stays bounded on a long run where persons keep coming and going (issue 27: a monitor's
slow memory creep with people in view). Many synthetic persons walk through the frame one group after
another, each group with new track ids, through the tracker, the smoother and the events, as in a camera's
pipeline; after every group has left, the per-track tables are back to what they held after the first."""

from __future__ import annotations

import numpy as np

from transpose_live.live.following import TrackSmoother
from transpose_live.monitor.events import PoseEvents
from transpose_live.types import FrameResult, Pose

FPS = 10.0


def _person(x: float, y: float) -> Pose:
    """An upright person 40 x 120 px with its top-left corner at (x, y): all 17 joints confident."""
    kp = np.column_stack([np.full(17, x + 20.0) + np.linspace(-10, 10, 17), np.linspace(y + 5, y + 115, 17)])
    return Pose(kp.astype(np.float32), np.full(17, 0.9, np.float32), box=(x, y, 40.0, 120.0))


def _sizes(tracks: TrackSmoother, events: PoseEvents) -> tuple[int, ...]:
    assert events.falls is not None
    return (len(tracks.tracker.active_ids), len(tracks.smoother._tracks), len(events.presence.present),
            len(events.falls._states))


def _walk_groups(groups: int, tracks: TrackSmoother, events: PoseEvents, start: int) -> int:
    """`groups` groups of 3 persons, each crossing for 20 frames then gone for 50; the next frame index."""
    index = start
    for _ in range(groups):
        for step in range(20):
            poses = [_person(100.0 + 200 * k + 2 * step, 100.0) for k in range(3)]
            result = FrameResult(index=index, timestamp=index / FPS, poses=tracks(poses, index / FPS),
                                 size=(800, 400))
            events.update(result)
            index += 1
        for _ in range(50):           # nobody: the tracks end, the events say person_left
            events.update(FrameResult(index=index, timestamp=index / FPS, poses=tracks([], index / FPS),
                                      size=(800, 400)))
            index += 1
    return index


def test_per_track_state_returns_to_its_size_after_many_persons():
    tracks, events = TrackSmoother(), PoseEvents()
    index = _walk_groups(1, tracks, events, 0)
    after_one = _sizes(tracks, events)
    first_ids = tracks.tracker._next_id
    _walk_groups(60, tracks, events, index)
    assert tracks.tracker._next_id - first_ids == 3 * 60      # new persons every time, never reused ids
    assert _sizes(tracks, events) == after_one == (0, 0, 0, 0)

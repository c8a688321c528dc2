"""tools/measure/measure_tracking.py: the counts it reports (ids, duplicates, track lengths, border births) and the
comparison against reference poses, on poses made in the test; and one real run on a synthetic clip."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import person

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "measure"))
import measure_tracking  # noqa: E402


def tagged(p, track_id):
    p.track_id = track_id
    return p


def test_counts_over_frames():
    size = (640, 480)
    frames = [
        [tagged(person(0, 100), 1), tagged(person(300, 100), 2)],
        [tagged(person(2, 100), 1), tagged(person(300, 100), 2), tagged(person(301, 101), 3)],   # 3 doubles 2
        [tagged(person(4, 100), 1)],
        [],
    ]
    m = measure_tracking.measure(frames, size)
    assert m["distinct_ids"] == 3 and m["walkers_max"] == 3 and m["ids_per_walker"] == 1.0
    assert m["frames_with_2plus"] == 2 and m["duplicate_frames"] == 1 and m["duplicate_rate"] == 0.5
    assert m["track_length_max"] == 3 and m["track_length_p50"] == 2.0
    assert m["mid_frame_births"] == 2            # ids 2 and 3 start inside the frame, id 1 at its left edge
    assert m["persons_per_frame"] == pytest.approx(6 / 4)


def test_compare_finds_reference_persons_one_to_one():
    ref = [[person(0, 100), person(300, 100)], [person(0, 100)]]
    run = [[person(1, 100)], [person(0, 100), person(400, 100)]]
    c = measure_tracking.compare(run, ref)
    assert c["reference_persons"] == 3 and c["found"] == 2 and c["recall"] == round(2 / 3, 4)
    assert c["unmatched_outputs"] == 1                # the person at 400 is in no reference
    assert 0.6 < c["mean_oks"] < 2 / 3                # two near-perfect matches, one missed (0)


def test_a_real_run_with_the_cache(tmp_path, tiny_options):
    from transpose_live.live.spec import RunSpec

    from helpers import synthetic_clip

    clip = synthetic_clip(tmp_path / "clip.mp4", frames=6)
    spec = RunSpec.from_options(**tiny_options, min_person_score=0.0)
    cache = tmp_path / "cache.pkl"
    first = measure_tracking.run(str(clip), spec, 5, str(cache))
    again = measure_tracking.run(str(clip), spec, 5, str(cache))
    assert first["computed_calls"] > 0 and again["computed_calls"] == 0 and again["cached_calls"] > 0
    assert len(first["frames"]) == 5
    assert [[p.track_id for p in f] for f in first["frames"]] == [[p.track_id for p in f] for f in again["frames"]]
    assert all(np.array_equal(a.keypoints, b.keypoints)
               for fa, fb in zip(first["frames"], again["frames"]) for a, b in zip(fa, fb))

"""Events kept by the web view: SQLite and snapshots that survive a restart, retention by age and by size, a
full or read-only event folder (a real tmpfs) that only warns, and clips cut from finished segments."""

from __future__ import annotations

import logging
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import av
import numpy as np
import pytest
from web_support import feed_frames, get, get_json, make_view, wait_for

from transpose_live.media.sinks.video import VideoWriter
from transpose_live.monitor.web.clips import ClipCutter, ClipUnavailable
from transpose_live.monitor.web.store import EventStore


def test_a_restart_shows_the_past_events_again(tmp_path):
    view = make_view(tmp_path)
    sink = view.sink("door")
    feed_frames(sink, 3)
    sink.write_event({"event": "person_down", "id": 7, "timestamp": 3.0, "since": 1.0})
    wait_for(lambda: get_json(view, "/api/events"), 5)
    before = get_json(view, "/api/events")
    snapshot = get(view, before[0]["snapshot"])[2]
    view.stop()

    again = make_view(tmp_path)
    try:
        after = get_json(again, "/api/events")
        assert after == before and after[0]["type"] == "person_down" and after[0]["track_id"] == 7
        assert get(again, after[0]["snapshot"])[2] == snapshot
        again.sink("door").write_event({"event": "person_up", "id": 7, "timestamp": 9.0})
        newest = wait_for(lambda: [e for e in get_json(again, "/api/events") if e["type"] == "person_up"], 5)
        assert newest[0]["id"] > after[0]["id"]
    finally:
        again.stop()


def test_retention_by_age_and_by_size(tmp_path):
    store = EventStore(tmp_path / "ev", keep_days=1, keep_mb=0.25)
    now = time.time()
    old = store.add("door", {"event": "person_appeared", "id": 1}, now - 2 * 86400, b"x" * 1000)
    fresh = [store.add("door", {"event": "person_left", "id": i}, now - 10 + i, b"y" * 60_000) for i in range(6)]
    assert old is not None and all(fresh)
    assert store.snapshot_file(old).is_file()
    removed = store.prune(now)
    kept = [e["id"] for e in store.query()]
    # the two-day-old one by age; then the oldest fresh ones until snapshots + database fit in 0.25 MB
    assert old not in kept and not store.snapshot_file(old).exists()
    assert kept == sorted(kept, reverse=True) and kept[0] == fresh[-1]
    assert removed == 1 + len(fresh) - len(kept) and 2 <= len(kept) <= 4
    assert all(not store.snapshot_file(i).exists() for i in fresh if i not in kept)
    assert sum(store.snapshot_file(i).stat().st_size for i in kept) <= 0.25 * 2**20
    again = store.add("door", {"event": "person_left", "id": 9}, now, b"z")
    assert again > max(fresh)                           # ids are never reused
    store.close()


def _tmpfs(folder: Path, options: str):
    """A tmpfs mounted at `folder` (root only: the test is skipped elsewhere), unmounted at the end."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    yield from _tmpfs(tmp_path / "disk", "size=1m")


@pytest.fixture
def read_only_disk(tmp_path):
    yield from _tmpfs(tmp_path / "ro", "ro,size=1m")


def _kept(view) -> int:
    return sum(view.state.store.counts().values())


def test_a_full_event_dir_warns_and_monitoring_goes_on(tmp_path, small_disk, caplog):
    caplog.set_level(logging.INFO, logger="transpose_live.monitor.web")
    view = make_view(tmp_path, event_dir=small_disk / "events")
    try:
        sink = view.sink("door")
        feed_frames(sink, 2)
        sink.write_event({"event": "person_appeared", "id": 1, "timestamp": 0.0})
        wait_for(lambda: _kept(view) == 1, 5)
        filler = small_disk / "filler"
        with open(filler, "wb") as f:                 # the disk fills up (someone else's files)
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        handled = view.recorder.handled
        for i in range(20):                           # frames and events go on, nothing raises
            feed_frames(sink, 1, start=3 + i)
            sink.write_event({"event": "person_left", "id": 1, "timestamp": float(i)})
        wait_for(lambda: view.recorder.handled == handled + 20, 10)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "monitoring goes on" in warnings[0].getMessage()
        assert get_json(view, "/api/cameras/door")["frames"] == 22
        filler.unlink()                               # room again: events are kept again
        sink.write_event({"event": "person_down", "id": 1, "timestamp": 30.0})
        wait_for(lambda: [e for e in get_json(view, "/api/events") if e["type"] == "person_down"], 5)
        assert any("writing again" in r.getMessage() for r in caplog.records)

    finally:
        view.stop()


def test_a_read_only_event_dir_warns_and_keeps_this_runs_events_in_memory(tmp_path, read_only_disk, caplog):
    caplog.set_level(logging.WARNING)
    view = make_view(tmp_path, event_dir=read_only_disk / "events")
    try:
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "Read-only file system" in warnings[0] and "monitoring goes on" in warnings[0]
        sink = view.sink("door")
        feed_frames(sink, 2)
        for i in range(3):
            sink.write_event({"event": "person_appeared", "id": i, "timestamp": float(i)})
        wait_for(lambda: len(get_json(view, "/api/events")) == 3, 5)
        feed_frames(sink, 2, start=2)
        assert get_json(view, "/api/cameras/door")["frames"] == 4
        assert not list(read_only_disk.iterdir())
    finally:
        view.stop()


def test_an_event_dir_that_cannot_be_made_keeps_this_runs_events_in_memory(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the event folder should be")
    view = make_view(tmp_path, event_dir=blocker / "events")
    try:
        assert "kept in memory only" in caplog.text
        sink = view.sink("door")
        feed_frames(sink, 2)
        sink.write_event({"event": "person_appeared", "id": 3, "timestamp": 0.5})
        events = wait_for(lambda: get_json(view, "/api/events"), 5)
        assert events[0]["track_id"] == 3 and events[0]["snapshot"] is None
        assert get(view, f"/api/events/{events[0]['id']}/snapshot.jpg")[0] == 404
        assert get_json(view, "/api/stats")["events_persistent"] is False
    finally:
        view.stop()


# --------------------------------------------------------------------------------------------------- clips

W, H, FPS = 416, 32, 10


def _frame(i: int) -> np.ndarray:
    """Frame i: a white bar at x = 2 i on black, readable back after H.264."""
    image = np.zeros((H, W, 3), np.uint8)
    image[:, 2 * i:2 * i + 8] = 255
    return image


def _segment(folder: Path, start: datetime, first: int, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"door-{start:%Y%m%d-%H%M%S}.mp4"
    writer = VideoWriter(path, W, H, fps=FPS)
    for i in range(first, first + n):
        writer.write(_frame(i), (i - first) / FPS)
    writer.close()
    return path


def _decoded(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [int(np.argmax(f.to_ndarray(format="bgr24").mean(axis=(0, 2)) > 128)) // 2
                for f in container.decode(video=0)]


def test_a_clip_is_cut_around_the_event_from_finished_segments(tmp_path):
    rec = tmp_path / "rec"
    t0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
    _segment(rec / "door", t0, 0, 100)                                   # 12:00:00-12:00:10, frames 0..99
    _segment(rec / "door", t0.replace(second=10), 100, 100)              # 12:00:10-12:00:20, frames 100..199
    cutter = ClipCutter(rec, before=2.0, after=3.0)
    assert [s.path.name for s in cutter.segments("door")] == ["door-20250301-120000.mp4", "door-20250301-120010.mp4"]
    out = tmp_path / "clip.mp4"
    cutter.cut("door", t0.timestamp() + 9.0, out)                        # spans the two segments
    frames = _decoded(out)
    assert frames[0] == 70 and frames[-1] == 120 and len(frames) == 51
    assert frames == sorted(frames)
    with pytest.raises(ClipUnavailable, match="no footage was recorded") as missing:
        cutter.cut("door", t0.timestamp() + 3600, tmp_path / "none.mp4")
    assert missing.value.status == 404 and not (tmp_path / "none.mp4").exists()
    with pytest.raises(ClipUnavailable):
        cutter.cut("yard", t0.timestamp() + 5, tmp_path / "yard.mp4")    # a camera that never recorded


def test_footage_still_being_recorded_says_so(tmp_path):
    rec = tmp_path / "rec"
    start = datetime.now(timezone.utc).replace(microsecond=0)
    (rec / "door").mkdir(parents=True)
    part = rec / "door" / f".door-{start:%Y%m%d-%H%M%S}.0123abcd.part.mp4"    # VideoWriter's temporary name
    part.write_bytes(b"\0" * 100)
    cutter = ClipCutter(rec, before=5.0, after=5.0)
    with pytest.raises(ClipUnavailable, match="still being recorded") as early:
        cutter.cut("door", start.timestamp() + 1, tmp_path / "clip.mp4")
    assert early.value.status == 409


def test_the_clip_endpoint_cuts_once_and_names_why_there_is_none(tmp_path):
    rec = tmp_path / "rec"
    an_hour_ago = datetime.fromtimestamp(int(time.time()) - 3600, timezone.utc)
    _segment(rec / "door", an_hour_ago, 0, 100)
    view = make_view(tmp_path, record_dir=rec)
    try:
        door = view.sink("door", records=True)
        feed_frames(door, 2)
        start = min(s.start for s in view.state.clips.segments("door"))
        view.state.store.add("door", {"event": "person_down", "id": 1, "timestamp": 5.0}, start + 5.0,
                             recorded=True)
        door.write_event({"event": "person_up", "id": 1, "timestamp": 6.0})
        events = wait_for(lambda: get_json(view, "/api/events?type=person_up") and get_json(view, "/api/events"), 5)
        down = next(e for e in events if e["type"] == "person_down")
        status, headers, body = get(view, down["clip"])
        assert status == 200 and headers["content-type"] == "video/mp4" and body[4:8] == b"ftyp"
        assert view.state.store.clip_file(down["id"]).stat().st_size == len(body)        # kept: cut once
        assert get(view, down["clip"])[2] == body
        up = next(e for e in events if e["type"] == "person_up")
        status, _, body = get(view, up["clip"])                        # now: nothing recorded (no writer)
        assert status == 404 and b"no footage" in body
        yard = view.sink("yard", records=False)
        yard.write_event({"event": "stream_lost", "reason": "x", "frames": 0})
        lost = wait_for(lambda: get_json(view, "/api/events?camera=yard"), 5)[0]
        assert lost["clip"] is None and get(view, f"/api/events/{lost['id']}/clip.mp4")[0] == 404
    finally:
        view.stop()

"""The threaded pipeline: files keep every frame in order (audio too), live sources keep the newest frame,
stages overlap, errors and stop()/Ctrl-C end every thread and leave playable outputs, and the detector runs
every N frames yet at once when someone is lost. Fakes stand in for the model where timing or counting
matters; a tiny real model runs the end-to-end cases. Frame i carries its index in pixel (0, 0)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import av
import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.live.following import PersonFollower, follow_box
from transpose_live.live.pipeline import Pipeline
from transpose_live.live.spec import RunSpec
from transpose_live.media.sinks import JsonlWriter, VideoWriter
from transpose_live.media.sources import FileSource
from transpose_live.types import Pose

from helpers import BOX, CountingDetector, FakeEstimator, H, ListSource, W, make_video, stick_pose, tag, tagged

# ----------------------------------------------------------------------------------------------- fakes


def tiny_estimator():
    import torch

    from transpose_live.model import create_model
    from transpose_live.pose.estimator import PoseEstimator

    torch.manual_seed(0)
    return PoseEstimator(create_model("tp_m_a4", image_size=(64, 48)), device="cpu")


def whole_frame():
    from transpose_live.detect.whole_frame import WholeFrameDetector

    return WholeFrameDetector()


def decoded_frames(path) -> list[float]:
    """Timestamps of every frame a player would show."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * s.time_base) for f in c.decode(s)]


@pytest.fixture
def threads_before():
    """No thread started by the test is left running (threads of earlier tests may end meanwhile)."""
    before = set(threading.enumerate())
    yield len(before)
    left = [t.name for t in threading.enumerate() if t not in before]
    assert not left, left


# ---------------------------------------------------------------------------------------------- files

def test_video_in_same_frames_out_with_audio_and_one_json_line_each(tmp_path, threads_before):
    src_path = make_video(tmp_path / "in.mp4", n=24, fps=12, audio="aac")
    out, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    shown = []
    with FileSource(src_path) as source:
        sinks = [VideoWriter(out, *source.size, fps=source.fps, time_base=source.time_base, audio_from=source),
                 JsonlWriter(lines)]
        config = RunSpec(device="cpu", attention=True, hud=True, boxes=True, min_person_score=0.0)
        stats = Pipeline(source, config, sinks, estimator=tiny_estimator(), detector=whole_frame(),
                         on_frame=lambda image, result: shown.append((image.shape, result.index))).run()
    assert (stats.frames_read, stats.frames_processed, stats.frames_dropped) == (24, 24, 0)
    assert stats.fps > 0 and set(stats.stage_ms) == {"capture", "model", "track", "render"}
    assert shown == [((H, W, 3), i) for i in range(24)]
    assert decoded_frames(out) == pytest.approx(decoded_frames(src_path), abs=1e-3)
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.video[0].width == W and c.streams.video[0].height == H
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(24))
    assert all(len(r["persons"]) == 1 and r["persons"][0]["id"] == 1 for r in records)


def test_file_mode_drops_nothing_keeps_order_and_stages_overlap(threads_before):
    n, delay = 24, 0.02
    results = []

    def slow_write(result):        # the last stage as slow as the model stage
        time.sleep(delay)
        results.append(result.index)

    source = ListSource(n)
    pipeline = Pipeline(source, RunSpec(queue_size=2), estimator=FakeEstimator(delay=delay),
                        detector=CountingDetector(), on_result=slow_write)
    t0 = time.perf_counter()
    stats = pipeline.run()
    wall = time.perf_counter() - t0
    assert results == list(range(n)) and stats.frames_dropped == 0
    assert stats.stage_ms["model"] >= 1000 * delay
    # one after the other would take 2 * n * delay; overlapped about n * delay
    assert wall < 1.5 * n * delay, wall


def test_live_source_keeps_the_newest_frame_and_counts_drops(threads_before):
    n = 120
    source = ListSource(n, live=True, period=0.002)       # ~500 fps offered
    estimator = FakeEstimator(delay=0.02, source=source)  # ~50 fps taken
    done = []
    stats = Pipeline(source, RunSpec(), estimator=estimator, detector=CountingDetector(),
                     on_result=lambda r: done.append(r.index)).run()
    assert stats.frames_read == n and stats.frames_dropped > n // 2
    assert stats.frames_processed + stats.frames_dropped == n
    assert done == sorted(done) and done[-1] == n - 1                # in order; the last frame is not lost
    # each frame the model took was at most a couple of frames old (not a backlog)
    assert max(newest - frame for frame, newest in estimator.calls) <= 3
    assert stats.max_latency_ms < 250


# --------------------------------------------------------------------------------------------- errors

class BrokenSink:
    def __init__(self):
        self.closed = self.aborted = False

    needs_image = False

    def write_frame(self, image, result):
        if result.index == 4:
            raise OSError("disk full")

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


@pytest.mark.parametrize("stage", ["capture", "model", "track", "render"])
def test_an_error_in_any_stage_is_one_error_and_every_thread_ends(tmp_path, monkeypatch, threads_before, stage):
    source = ListSource(40, fail_at=6 if stage == "capture" else None)
    estimator = FakeEstimator(fail_at=6 if stage == "model" else None)
    if stage == "track":
        from transpose_live.live import tracking

        def broken(self, poses):
            raise ValueError("tracker bug")
        monkeypatch.setattr(tracking.Tracker, "update", broken)
    video = VideoWriter(tmp_path / "out.mp4", W, H, fps=25.0)
    sink = BrokenSink() if stage == "render" else None
    sinks = [video] + ([sink] if sink else [])
    with pytest.raises(TransposeLiveError) as err:
        Pipeline(source, RunSpec(), sinks, estimator=estimator, detector=CountingDetector()).run()
    assert not [t for t in threading.enumerate() if t.name.startswith("pipeline-")]
    cause = err.value.__cause__
    expected = {"capture": RuntimeError, "model": RuntimeError, "track": ValueError, "render": OSError}[stage]
    assert isinstance(cause, expected)
    assert str(cause) in str(err.value) and "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())          # the unfinished video was dropped, temp file included
    if sink:
        assert sink.aborted and not sink.closed


def test_transpose_live_errors_keep_their_message(threads_before):
    class Picky(FakeEstimator):
        def estimate(self, *a, **k):
            raise TransposeLiveError("boxes must be (K, 4)")

    with pytest.raises(TransposeLiveError, match=r"^boxes must be \(K, 4\)$"):
        Pipeline(ListSource(5), RunSpec(), estimator=Picky(), detector=CountingDetector()).run()


def test_stop_mid_run_leaves_a_playable_video(tmp_path, threads_before):
    src_path = make_video(tmp_path / "in.mp4", n=60, fps=10)
    out = tmp_path / "out.mp4"
    with FileSource(src_path) as source:
        video = VideoWriter(out, *source.size, fps=source.fps, time_base=source.time_base)
        holder = {}

        def on_result(result):
            if result.index == 9:
                holder["p"].stop()

        pipeline = Pipeline(source, RunSpec(), [video], estimator=FakeEstimator(delay=0.005),
                            detector=CountingDetector(), on_result=on_result)
        holder["p"] = pipeline
        stats = pipeline.run()
    assert stats.stopped and 10 <= stats.frames_processed < 60
    assert len(decoded_frames(out)) == video.frames_written == stats.frames_processed


def test_ctrl_c_stops_closes_the_video_and_reraises(tmp_path, threads_before):
    out = tmp_path / "out.mp4"
    video = VideoWriter(out, W, H, fps=25.0)

    def on_result(result):
        if result.index == 5:
            os.kill(os.getpid(), signal.SIGINT)      # Ctrl-C: KeyboardInterrupt in the thread running run()

    class SlowLater(FakeEstimator):       # from frame 6 on the model is busy when Ctrl-C comes
        def estimate(self, image, boxes, **kwargs):
            time.sleep(0.3 if tag(image) >= 6 else 0.0)
            return super().estimate(image, boxes, **kwargs)

    pipeline = Pipeline(ListSource(400), RunSpec(), [video], estimator=SlowLater(),
                        detector=CountingDetector(), on_result=on_result)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run()
    # every stage has really ended when run() re-raises (the model was mid-frame when Ctrl-C came)
    assert not [t for t in threading.enumerate() if t.name.startswith("pipeline-")]
    assert pipeline.stats.stopped and pipeline.stats.frames_processed < 400
    assert len(decoded_frames(out)) == pipeline.stats.frames_processed >= 6


def test_bad_settings_and_sinks_are_refused():
    with pytest.raises(TransposeLiveError, match="detect_every"):
        RunSpec(detect_every=0).validate()
    with pytest.raises(TransposeLiveError, match="smooth_strength"):
        RunSpec(smooth_strength=2.0).validate()
    with pytest.raises(TransposeLiveError, match="not a sink"):
        Pipeline(ListSource(1), RunSpec(), [object()], estimator=FakeEstimator(), detector=CountingDetector())


# ---------------------------------------------------------------------------------------- detection

def test_detector_runs_every_n_frames_and_at_once_when_someone_is_lost():
    detector = CountingDetector()
    # frame 12: the followed box loses the person (the detector's own box still finds them)
    estimator = FakeEstimator(lost=lambda i, box: i == 12 and tuple(box) != BOX)
    stats = Pipeline(ListSource(30), RunSpec(detect_every=5), estimator=estimator,
                     detector=detector).run()
    assert detector.frames == [0, 5, 10, 12, 17, 22, 27]
    assert stats.detector_calls == len(detector.frames)
    assert stats.frames_processed == 30


def test_detect_every_5_calls_the_detector_a_fifth_as_often():
    every, once = CountingDetector(), CountingDetector()
    Pipeline(ListSource(50), RunSpec(detect_every=1), estimator=FakeEstimator(), detector=every).run()
    Pipeline(ListSource(50), RunSpec(detect_every=5), estimator=FakeEstimator(), detector=once).run()
    assert len(every.frames) == 50 and len(once.frames) == 10


def test_nobody_to_follow_runs_the_detector_on_every_frame():
    detector = CountingDetector(empty=range(4))        # nobody in frames 0..3
    follower = PersonFollower(detector, FakeEstimator(), detect_every=10)
    found = [follower(tagged(i)) for i in range(8)]
    assert detector.frames == [0, 1, 2, 3, 4]
    assert [len(p) for p in found] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_followed_boxes_come_from_the_previous_pose():
    estimator = FakeEstimator()
    boxes = []
    real = estimator.estimate
    estimator.estimate = lambda image, b, **k: boxes.append(np.asarray(b)) or real(image, b, **k)
    follower = PersonFollower(CountingDetector(), estimator, detect_every=3, pad=0.1)
    for i in range(3):
        follower(tagged(i))
    assert np.allclose(boxes[0], [BOX])
    pose = stick_pose(BOX, 0.9)
    assert np.allclose(boxes[1], [follow_box(pose, W, H, 0.1)])


def test_follow_box_pads_the_keypoint_extent_and_clips_to_the_frame():
    pose = Pose(keypoints=np.array([[20, 30], [60, 30], [40, 110]] + [[np.nan, np.nan]] * 14, np.float32),
                scores=np.array([0.9, 0.9, 0.9] + [0.0] * 14, np.float32))
    assert np.allclose(follow_box(pose, 200, 200, pad=0.25), [10, 10, 60, 120])
    assert np.allclose(follow_box(pose, 70, 200, pad=0.25), [10, 10, 60, 120])     # x reaches 70 = the edge
    assert np.allclose(follow_box(pose, 65, 115, pad=0.25), [10, 10, 55, 105])
    pose.scores[2] = 0.1                                   # two confident joints are not a person
    assert follow_box(pose, 200, 200, pad=0.25) is None


def test_set_smooth_and_attention_apply_while_running():
    estimator = FakeEstimator()
    attention_seen = []
    real = estimator.estimate
    estimator.estimate = lambda image, b, box_scores=None, attention=False: (
        attention_seen.append(attention) or real(image, b, box_scores, attention))
    holder = {}

    def on_result(result):
        if result.index == 3:
            holder["p"].set_attention(True)

    pipeline = Pipeline(ListSource(20), RunSpec(queue_size=1), estimator=estimator,
                        detector=CountingDetector(), on_result=on_result)
    holder["p"] = pipeline
    pipeline.run()
    assert attention_seen[0] is False and attention_seen[-1] is True


def test_events_and_stats_lines_reach_the_sinks_that_take_events(threads_before):
    """Detectors' events per output frame, their finish() at the end, and periodic stats records."""

    class Recorder:
        needs_image = False

        def __init__(self):
            self.frames, self.events = 0, []

        def write_frame(self, image, result):
            self.frames += 1

        def write_event(self, record):
            self.events.append(record)

        def close(self):
            pass

    class EveryFifth:
        def update(self, result):
            return [{"event": "tick", "frame": result.index}] if result.index % 5 == 0 else []

        def finish(self, timestamp):
            return [{"event": "end", "timestamp": timestamp}]

    class Slow(FakeEstimator):
        def estimate(self, image, boxes, **kwargs):
            time.sleep(0.01)
            return super().estimate(image, boxes, **kwargs)

    sink = Recorder()
    Pipeline(ListSource(20), RunSpec(), [sink], estimator=Slow(), detector=CountingDetector(),
             events=[EveryFifth()], stats_every=0.05).run()
    names = [e["event"] for e in sink.events]
    assert [e["frame"] for e in sink.events if e["event"] == "tick"] == [0, 5, 10, 15]
    assert names[-1] == "end" and sink.frames == 20
    stats = [e for e in sink.events if e["event"] == "stats"]
    assert stats and all({"fps", "latency_p50_ms", "latency_p95_ms", "dropped", "frames"} <= set(e) for e in stats)
    assert stats[-1]["frames"] > stats[0]["frames"]

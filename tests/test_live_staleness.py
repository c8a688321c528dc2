"""Issue 27: no stale frame after a reconnect. A live run keeps the newest frame in every queue, and frames an
outage made old are dropped (counted as dropped) instead of delivered: one still in the slow model when the
stream comes back, and one left waiting for the model while the stream stalled (live/freshness.py).

The stream is scripted (helpers.ScriptedStream: frames 20 ms apart, a loss and a return, a stall) and the
model is slowed (FakeEstimator's delay), so which frame is where at the reconnect is known. Before the fix
both tests failed: the frame in the model was delivered after the stream_back (0.4 s older than the
stream's return), and the frame that waited out the stall was delivered 2.8 s after its capture."""

from __future__ import annotations

import time

from transpose_live.live.pipeline import Pipeline
from transpose_live.live.spec import RunSpec

from helpers import CountingDetector, FakeEstimator, ScriptedStream


def run(stream: ScriptedStream, delay: float, max_wait_s: float):
    delivered: list[tuple[int, float]] = []       # (frame, when its result came out)
    pipeline = Pipeline(stream, RunSpec(detect_every=1, smooth=False), estimator=FakeEstimator(delay=delay),
                        detector=CountingDetector(), max_wait_s=max_wait_s,
                        on_result=lambda r: delivered.append((r.index, time.monotonic())))
    return pipeline.run(), delivered


def test_a_frame_still_in_the_model_when_the_stream_comes_back_is_dropped():
    # frame 0 enters the 1 s model at once; the stream is lost at 0.2 s and back at 0.5 s, before it is done
    stream = ScriptedStream([("frames", 10, 0.02), ("lost", 0.3), ("frames", 60, 0.02)])
    stats, delivered = run(stream, delay=1.0, max_wait_s=5.0)
    assert stream.back_at is not None
    after = [(i, at) for i, at in delivered if at > stream.back_at]
    assert after, "nothing was delivered after the reconnect"
    old = [i for i, _ in after if stream.captured[i] < stream.back_at]
    assert old == [], f"frames from before the reconnect delivered after it: {old}"
    assert 0 not in [i for i, _ in delivered]
    # every frame read is either delivered or counted as dropped
    assert stats.frames_read == stats.frames_processed + stats.frames_dropped == 70
    assert stats.frames_processed == len(delivered) and stats.frames_dropped >= 1


def test_a_frame_that_waited_out_a_stall_is_not_delivered_and_no_frame_is_older_than_the_bound():
    # frame 0 takes the 1.5 s model; frame 9 (0.2 s) waits for it while the stream says nothing for 3 s
    delay, max_wait = 1.5, 0.5
    stream = ScriptedStream([("frames", 10, 0.02), ("stall", 3.0), ("frames", 20, 0.02)])
    stats, delivered = run(stream, delay=delay, max_wait_s=max_wait)
    ages = {i: at - stream.captured[i] for i, at in delivered}
    bound = delay + max_wait + 0.3          # its own time in the model, plus the longest wait allowed for it
    assert max(ages.values()) <= bound, ages
    assert 9 not in ages                    # captured just before the stall, taken by the model 1.3 s later
    assert [i for i in ages if i >= 10], "nothing was delivered after the stall"
    assert stats.frames_read == stats.frames_processed + stats.frames_dropped == 30
    assert stats.frames_dropped >= 9        # 1..8 replaced in the queue, 9 too old


def test_frames_of_a_file_are_never_dropped_for_age():
    stream = ScriptedStream([("frames", 5, 0.0), ("stall", 0.3), ("frames", 5, 0.0)])
    stream.is_live = False
    stats, delivered = run(stream, delay=0.1, max_wait_s=0.05)
    assert [i for i, _ in delivered] == list(range(10)) and stats.frames_dropped == 0

"""--detect-async: the detector on its own thread beside the pose step (transpose_live/detect_beside.py and
PersonFollower(detect_async=True)). Fakes from test_pipeline; a slow detector and an Event make the
timing deterministic."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from transpose_live.detect.base import Detections
from transpose_live.detect.beside import DetectorBeside
from transpose_live.geometry import box_containment
from transpose_live.live.following import PersonFollower
from transpose_live.live.pipeline import Pipeline
from transpose_live.live.spec import RunSpec

from helpers import BOX, CountingDetector, FakeEstimator, ListSource, tag, tagged

SECOND = (120.0, 20.0, 50.0, 90.0)     # a second person the gated detector also finds


class GatedDetector(CountingDetector):
    """Finds BOX (and SECOND once `second` is set); each call blocks until `gate` is set, on whatever
    thread it runs; records the threads it ran on."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.second = False
        self.threads: list[str] = []

    def detect(self, image):
        self.threads.append(threading.current_thread().name)
        assert self.gate.wait(5), "the test never opened the gate"
        found = super().detect(image)
        if self.second:
            return Detections(np.array([BOX, SECOND], np.float32), np.array([0.9, 0.8], np.float32))
        return found


def boxes_seen(estimator):
    seen = []
    real = estimator.estimate
    estimator.estimate = lambda image, b, **k: seen.append((tag(image), np.asarray(b).copy())) or real(image, b, **k)
    return seen


def test_frames_are_not_held_back_by_a_running_detection():
    detector, estimator = GatedDetector(), FakeEstimator()
    seen = boxes_seen(estimator)
    follower = PersonFollower(detector, estimator, detect_every=2, detect_async=True)
    detector.gate.set()
    follower(tagged(0))                       # nobody to follow yet: frame 0 waits for its detection
    assert detector.frames == [0] and len(seen) == 1
    detector.gate.clear()
    t0 = time.perf_counter()
    for i in range(1, 6):                     # frame 1 is due and starts a detection that cannot finish
        assert len(follower(tagged(i))) == 1  # the person is followed meanwhile
    assert time.perf_counter() - t0 < 2.0     # no frame waited for the blocked detector (it waits 5 s)
    assert detector.frames == [0]             # frame 1's detection is still blocked at the gate
    assert detector.threads == ["MainThread", "detector"]
    assert follower.detector_calls == 2       # one in flight: no second one was started
    detector.second = True                    # it finds a second person, who walked in meanwhile
    detector.gate.set()
    follower._beside._thread.join(5)
    poses = follower(tagged(6))
    # the detection (of frame 1) joins frame 6: the newcomer gets its detector box; the followed person
    # keeps the box of their last pose (the detection is five frames old) and is not looked for twice
    assert detector.frames == [0, 1] and len(poses) == 2
    crops = seen[-1][1]
    assert len(crops) == 2
    assert np.allclose(crops[1], SECOND)
    assert box_containment(crops[:1], np.array([BOX])).item() > 0.9 and not np.allclose(crops[0], BOX)


def test_the_detection_decides_who_is_there_as_in_series():
    class OnlySecond(CountingDetector):       # from frame 1 on it boxes only someone else
        def detect(self, image):
            found = super().detect(image)
            if tag(image) >= 1:
                return Detections(np.array([SECOND], np.float32), np.array([0.8], np.float32))
            return found

    estimator = FakeEstimator()
    seen = boxes_seen(estimator)
    follower = PersonFollower(OnlySecond(), estimator, detect_every=1, detect_async=True)
    follower(tagged(0))                       # detects BOX (waited for); frame 0 is due: submits frame 0
    follower._beside._thread.join(5)
    follower(tagged(1))                       # frame 0's detection (BOX) lands: the followed box is kept
    assert len(seen[-1][1]) == 1 and box_containment(seen[-1][1], np.array([BOX])).item() > 0.9
    follower._beside._thread.join(5)
    poses = follower(tagged(2))               # frame 1's detection: only SECOND is there now
    assert len(poses) == 1 and len(seen[-1][1]) == 1 and np.allclose(seen[-1][1][0], SECOND)


def test_async_pipeline_finds_the_same_person_on_every_frame_and_counts_calls():
    detector = CountingDetector()
    spec = RunSpec(detect_every=3, detect_async=True)
    results = []
    stats = Pipeline(ListSource(40), spec, estimator=FakeEstimator(), detector=detector,
                     on_result=results.append).run()
    assert stats.frames_processed == 40
    assert [len(r.poses) for r in results] == [1] * 40
    assert stats.detector_calls == len(detector.frames) >= 40 // 3 - 1
    assert all(b - a >= 1 for a, b in zip(detector.frames, detector.frames[1:]))


def test_a_lost_person_starts_a_detection_without_waiting_for_it():
    detector = CountingDetector()
    estimator = FakeEstimator(lost=lambda i, box: i == 4)      # frame 4: the followed box loses the person
    follower = PersonFollower(detector, estimator, detect_every=100, detect_async=True)
    for i in range(4):
        follower(tagged(i))
    assert follower.detector_calls == 1       # frame 0 only (every 100th frame)
    follower(tagged(4))                       # lost: frame 4's detection starts beside, nobody waits
    assert follower.detector_calls == 2 and follower._followed == []
    poses = follower(tagged(5))               # nobody to follow: waits for the detection in flight
    assert follower.detector_calls == 2 and len(poses) == 1 and len(follower._followed) == 1
    assert detector.frames == [0, 4]


def test_detector_errors_reach_the_caller_and_reset_drops_old_results():
    class Failing:
        def detect(self, image):
            raise RuntimeError("detector blew up")

    beside = DetectorBeside(Failing())
    assert beside.submit(tagged(0))
    with pytest.raises(RuntimeError, match="blew up"):
        beside.wait()
    beside = DetectorBeside(CountingDetector())
    beside.submit(tagged(0))
    beside.forget()                           # a seek: the detection of frame 0 must not land on later frames
    assert beside.wait() is None
    image = tagged(3)
    beside.submit(image)
    image[:] = 0                              # the caller draws on its frame: the detector has its own copy
    assert len(beside.wait().boxes) == 1


def test_the_option_reaches_the_spec_and_the_help():
    import os
    import subprocess
    import sys

    assert RunSpec.from_options(detect_async=True).detect_async is True and RunSpec().detect_async is False
    out = subprocess.run([sys.executable, "-m", "transpose_live", "video", "--help"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "COLUMNS": "200"}).stdout
    assert "--detect-async" in out and "--detect-in-series" in out


def test_a_detection_in_flight_at_exit_does_not_abort_the_process():
    """The real SSD (native code) still running when the interpreter ends: the process exits 0 (a daemon
    thread there aborted it: 'terminate called without an active exception', exit 134)."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from transpose_live.detect import create_detector\n"
        "from transpose_live.detect.beside import DetectorBeside\n"
        "beside = DetectorBeside(create_detector('ssd'))\n"
        "frame = np.random.default_rng(0).integers(0, 255, (576, 768, 3), dtype=np.uint8)\n"
        "beside.detect_now(frame)\n"
        "assert beside.submit(frame)\n"
        "print('submitted', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "submitted" in done.stdout


def test_box_containment_is_the_share_of_the_inner_box_inside():
    inner = np.array([[10, 10, 10, 20], [100, 100, 4, 4]], np.float64)
    outer = np.array([[0, 0, 40, 40], [15, 10, 100, 100]], np.float64)
    got = box_containment(inner, outer)
    assert got.shape == (2, 2)
    assert np.allclose(got, [[1.0, 0.5], [0.0, 1.0]])
    assert box_containment(np.array([[0, 0, 0, 0]], np.float64), outer).tolist() == [[0.0, 0.0]]


def test_an_unconfident_pose_in_a_fresh_detection_starts_no_new_detection():
    """A false box (a pose that comes out unconfident) is only not followed, as in series; the detector
    keeps to every Nth frame instead of running on nearly every one."""
    class WithFalseBox(CountingDetector):
        def detect(self, image):
            super().detect(image)
            return Detections(np.array([BOX, SECOND], np.float32), np.array([0.9, 0.4], np.float32))

    estimator = FakeEstimator(lost=lambda i, box: tuple(np.round(box).astype(int)) == tuple(map(int, SECOND)))
    async_detector, series_detector = WithFalseBox(), WithFalseBox()
    follower = PersonFollower(async_detector, estimator, detect_every=4, detect_async=True)
    series = PersonFollower(series_detector, FakeEstimator(lost=estimator.lost), detect_every=4)
    for i in range(40):
        follower(tagged(i))
        series(tagged(i))
        if follower._beside.busy():
            follower._beside._thread.join(5)
    assert len(series_detector.frames) == 10
    assert len(async_detector.frames) <= 12          # every 4th frame (+ a first wait), not 40


def test_a_small_followed_person_inside_a_big_ones_box_does_not_take_it():
    """Detector boxes are matched to followed persons one to one: the big person keeps their own box."""
    big, small = (20.0, 10.0, 120.0, 105.0), (60.0, 40.0, 20.0, 40.0)

    class Both(CountingDetector):
        def detect(self, image):
            super().detect(image)
            return Detections(np.array([small, big], np.float32), np.array([0.8, 0.9], np.float32))

    follower = PersonFollower(Both(), FakeEstimator(), detect_every=2, detect_async=True)
    assert len(follower(tagged(0))) == 2
    for i in range(1, 8):
        if follower._beside.busy():
            follower._beside._thread.join(5)
        assert len(follower(tagged(i))) == 2, f"frame {i}"


def test_detections_of_two_followers_on_one_detector_never_overlap():
    """The window reuses its detector for the pipeline it builds after a seek while the old one's detection
    may still run: calls on one detector are serialised."""
    class Exclusive(CountingDetector):
        def __init__(self):
            super().__init__()
            self.inside, self.overlaps = 0, 0

        def detect(self, image):
            self.inside += 1
            self.overlaps += self.inside > 1
            time.sleep(0.05)
            self.inside -= 1
            return super().detect(image)

    detector = Exclusive()
    old, new = DetectorBeside(detector), DetectorBeside(detector)
    assert old.submit(tagged(0))
    new.detect_now(tagged(1))                  # the new pipeline's first frame, while the old one detects
    old.wait()
    assert detector.overlaps == 0 and sorted(detector.frames) == [0, 1]


def test_one_picture_runs_the_detector_once_even_with_detect_async():
    from transpose_live.live.run import PoseRunner

    detector = CountingDetector()
    runner = PoseRunner(RunSpec(detect_async=True, detect_every=1), FakeEstimator(), detector)
    assert len(runner.find_poses(tagged(0))) == 1
    time.sleep(0.2)
    assert detector.frames == [0]

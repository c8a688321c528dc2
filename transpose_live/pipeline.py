"""The threaded pipeline: capture → detect + estimate → track + smooth → render + write, one thread each.

Stages talk through bounded `queue.Queue`s; a sentinel travels down the line when the source ends and one
`threading.Event` stops every stage at once (stop(), Ctrl-C, or an error in any stage). Stages overlap, so
throughput approaches 1 / (the slowest stage); torch, OpenCV and FFmpeg release the GIL in their work.

Files (`source.is_live` False) lose nothing: every frame goes through, in order (a full queue blocks the
stage before it). Live sources keep only the newest frame: the capture stage replaces a frame the model has
not taken yet (counted as dropped) and the later queues hold one frame each, so latency stays bounded.

The pipeline owns its sinks: at the end it closes them (also after stop() or Ctrl-C, so a video stays
playable) and aborts them after an error.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import TransposeLiveError
from .tracking import box_iou
from .types import FrameResult, Pose

log = logging.getLogger(__name__)

STAGES = ("capture", "model", "track", "render")
POLL_S = 0.05              # how often a waiting stage looks at the stop event
CAPTURE_JOIN_S = 2.0       # a camera or stream read can block; the capture thread is not waited on longer
FOLLOW_JOINT_SCORE = 0.2   # joints at or above this shape a followed person's next box
_END = object()            # sentinel: the source has ended


# ------------------------------------------------------------------------------------------ settings

@dataclass
class PipelineConfig:
    """What the pipeline runs. model None = the shipped default; detector "ssd" | "none" | "onnx:FILE"."""

    model: str | None = None
    weights: str | None = None
    device: str = "auto"
    image_size: tuple[int, int] | None = None     # (h, w) model input; None: the weights' own
    detector: str = "ssd"
    detect_every: int = 1          # run the detector every N frames (1 = every frame); poses carry boxes between
    smooth: bool = True
    smooth_strength: float = 0.5
    attention: bool = False        # compute and draw the dependency areas (slower)
    flip: bool = False             # flip test (twice the crops)
    draw_boxes: bool = False
    draw_ids: bool = True
    hud: bool = False              # fps / latency / persons in the corner of the rendered frames
    max_frames: int | None = None  # stop after this many frames from the source
    queue_size: int = 4            # frames waiting between two stages (files; live sources use 1)
    follow_min_score: float = 0.3  # a followed person whose mean keypoint score drops below this is lost
    follow_pad: float = 0.1        # a followed box is the keypoint extent grown by this much of it per side

    def validate(self) -> "PipelineConfig":
        if not isinstance(self.detect_every, int) or self.detect_every < 1:
            raise TransposeLiveError(f"detect_every must be a whole number >= 1, got {self.detect_every!r}")
        if not 0.0 <= self.smooth_strength <= 1.0:
            raise TransposeLiveError(f"smoothing strength must be between 0 and 1, got {self.smooth_strength}")
        if self.max_frames is not None and self.max_frames < 1:
            raise TransposeLiveError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.queue_size < 1:
            raise TransposeLiveError(f"queue_size must be >= 1, got {self.queue_size}")
        if not 0.0 <= self.follow_min_score <= 1.0:
            raise TransposeLiveError(f"follow_min_score must be between 0 and 1, got {self.follow_min_score}")
        if not 0.0 <= self.follow_pad <= 2.0:
            raise TransposeLiveError(f"follow_pad must be between 0 and 2, got {self.follow_pad}")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 16):
            raise TransposeLiveError(f"image_size must be (height, width) >= 16 pixels, got {self.image_size}")
        return self


@dataclass
class PipelineStats:
    """How a run went (kept up to date while it runs). stage_ms: mean busy milliseconds per frame of each
    stage (waits on queues excluded)."""

    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    detector_calls: int = 0
    stage_ms: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    wall_s: float = 0.0
    latency_ms: float = 0.0        # mean time from a frame's capture to its output
    max_latency_ms: float = 0.0
    stopped: bool = False          # ended by stop() or Ctrl-C before the source ran out

    @property
    def fps(self) -> float:
        return self.frames_processed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def slowest_stage(self) -> str:
        return max(self.stage_ms, key=self.stage_ms.get)

    def as_dict(self) -> dict:
        return asdict(self) | {"fps": self.fps}


# ------------------------------------------------------------------------------- boxes between detections

def follow_box(pose: Pose, width: int, height: int, pad: float) -> np.ndarray | None:
    """The box (x, y, w, h) to look for this person in the next frame: the extent of its confident joints,
    grown by `pad` of its size on every side (joints sit inside the body: the head top and feet lie beyond
    them) and clipped to the frame. None with fewer than 3 confident joints."""
    kp = np.asarray(pose.keypoints, np.float64).reshape(-1, 2)
    sc = np.nan_to_num(np.asarray(pose.scores, np.float64).reshape(-1), nan=0.0)
    ok = np.isfinite(kp).all(1) & (sc >= FOLLOW_JOINT_SCORE)
    if ok.sum() < 3:
        return None
    lo, hi = kp[ok].min(0), kp[ok].max(0)
    size = hi - lo
    size = np.maximum(size, 0.25 * size.max())      # a side view or a lying person: not a sliver
    lo, hi = lo - pad * size, hi + pad * size
    lo = np.clip(lo, 0, (width, height))
    hi = np.clip(hi, 0, (width, height))
    w, h = hi - lo
    if w < 2 or h < 2:
        return None
    return np.array([lo[0], lo[1], w, h])


def mean_score(pose: Pose) -> float:
    s = np.asarray(pose.scores, np.float64)
    s = s[np.isfinite(s)]
    return float(s.mean()) if s.size else 0.0


class PersonFollower:
    """Which boxes the model sees on each frame, and the poses it finds there.

    The detector runs every `detect_every` frames; in between each person is looked for in the box of
    their previous pose (as real-time pose systems do: the pose is a better box than a stale detection).
    A person whose pose turns unconfident (mean score < min_score) is lost; a lost person, or nobody
    left to follow, runs the detector at once on the same frame.
    """

    def __init__(self, detector, estimator, detect_every: int = 1, min_score: float = 0.3, pad: float = 0.1,
                 attention: bool = False):
        self.detector = detector
        self.estimator = estimator
        self.detect_every = int(detect_every)
        self.min_score = float(min_score)
        self.pad = float(pad)
        self.attention = bool(attention)
        self.detector_calls = 0
        self.reset()

    def reset(self) -> None:
        self._followed: list[Pose] = []
        self._since_detection = 0

    def __call__(self, image: np.ndarray) -> list[Pose]:
        h, w = image.shape[:2]
        due = self._since_detection + 1 >= self.detect_every
        poses = None
        if not due and self._followed:
            poses = self._follow(image, w, h)       # None when someone was lost
        if poses is None:
            poses = self._detect(image)
            self._since_detection = 0
        else:
            self._since_detection += 1
        self._followed = [p for p in poses if mean_score(p) >= self.min_score]
        return poses

    def _detect(self, image: np.ndarray) -> list[Pose]:
        self.detector_calls += 1
        found = self.detector.detect(image)
        if len(found) == 0:
            return []       # the estimator would take an empty box list as "the whole frame"
        return self.estimator.estimate(image, found.boxes, box_scores=found.scores, attention=self.attention)

    def _follow(self, image: np.ndarray, w: int, h: int) -> list[Pose] | None:
        boxes, scores = [], []
        for pose in self._followed:
            box = follow_box(pose, w, h, self.pad)
            if box is None:
                return None
            boxes.append(box)
            scores.append(pose.box_score)
        poses = self.estimator.estimate(image, np.stack(boxes), box_scores=scores, attention=self.attention)
        if any(mean_score(p) < self.min_score for p in poses):
            return None
        return _drop_duplicates(poses)


def _drop_duplicates(poses: list[Pose], iou: float = 0.6) -> list[Pose]:
    """Two followed boxes that slid onto one person: keep the more confident pose."""
    if len(poses) < 2:
        return poses
    boxes = np.array([p.box for p in poses], np.float64)
    overlap = box_iou(boxes, boxes)
    kept: list[int] = []
    for i in sorted(range(len(poses)), key=lambda k: -mean_score(poses[k])):
        if all(overlap[i, k] < iou for k in kept):
            kept.append(i)
    return [poses[i] for i in sorted(kept)]


# ------------------------------------------------------------------------------------------------ sinks

def _sink_writer(sink) -> tuple[bool, Callable[[np.ndarray | None, FrameResult], None]]:
    """(needs the rendered image, write(image, result)). VideoWriter takes images with their timestamps;
    JSON writers take results; any object with write_frame(image, result) gets both."""
    from .sinks import VideoWriter

    if hasattr(sink, "write_frame"):
        return True, sink.write_frame
    if isinstance(sink, VideoWriter):
        return True, lambda image, result: sink.write(image, result.timestamp)
    if hasattr(sink, "write") and hasattr(sink, "close"):
        return False, lambda image, result: sink.write(result)
    raise TransposeLiveError(f"not a sink: {type(sink).__name__} (needs write/close or write_frame/close)")


def abort_sink(sink) -> None:
    """Drop an output after an error (when the sink can), else close it."""
    try:
        (getattr(sink, "abort", None) or sink.close)()
    except Exception as exc:   # already failing: the first error is the one to report
        log.debug("closing %s after an error failed: %s", type(sink).__name__, exc)


# --------------------------------------------------------------------------------------------- pipeline

@dataclass
class _Item:
    frame: Any                      # sources.Frame
    captured: float                 # time.monotonic() when it left the source
    poses: list[Pose] | None = None
    result: FrameResult | None = None


class _Clock:
    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, seconds: float) -> None:
        self.total += seconds
        self.count += 1

    @property
    def mean_ms(self) -> float:
        return 1000.0 * self.total / self.count if self.count else 0.0


class Pipeline:
    """Run `config` over `source` into `sinks` (VideoWriter, JsonlWriter, CocoResultsWriter, ...).

    on_frame(image_bgr, result) is called from the last stage's thread with each rendered frame (keep it
    cheap; it must not touch widgets: a GUI hands the image to its own thread). on_result(result) likewise,
    without rendering. estimator / detector: ready objects (tests, or a GUI reusing them); by default they
    are built from the config here, so bad settings fail before run().
    """

    def __init__(self, source, config: PipelineConfig | None = None, sinks: Sequence = (),
                 on_frame: Callable[[np.ndarray, FrameResult], None] | None = None,
                 estimator=None, detector=None,
                 on_result: Callable[[FrameResult], None] | None = None):
        self.source = source
        self.config = replace(config or PipelineConfig()).validate()   # a copy: set_attention/set_smooth change it
        self.sinks = list(sinks)
        self._writers = [_sink_writer(s) for s in self.sinks]
        self.on_frame = on_frame
        self.on_result = on_result
        self.estimator = estimator if estimator is not None else build_estimator(self.config)
        self.detector = detector if detector is not None else build_detector(self.config.detector)
        self.live = bool(getattr(source, "is_live", False))
        self.stats = PipelineStats()
        self._stop = threading.Event()
        self._errors: list[tuple[str, BaseException]] = []
        self._lock = threading.Lock()
        self._ran = False

    # ---------------------------------------------------------------------------------- control

    def set_attention(self, on: bool) -> None:
        """Compute and draw the dependency areas from the next frame on (any thread)."""
        self.config.attention = bool(on)
        if hasattr(self, "_follower"):
            self._follower.attention = bool(on)

    def set_smooth(self, on: bool) -> None:
        """Turn the Kalman smoothing on or off from the next frame on (any thread)."""
        self.config.smooth = bool(on)

    def stop(self) -> None:
        """Ask every stage to end now (any thread); run() then closes the sinks and returns."""
        if not self._stop.is_set():      # not after the run has ended by itself
            self.stats.stopped = True
        self._stop.set()

    def run(self) -> PipelineStats:
        """Process the source to its end (or stop()); blocks. Errors in any stage come back as one
        TransposeLiveError (the original as __cause__). Ctrl-C stops, closes the sinks and re-raises."""
        if self._ran:
            raise TransposeLiveError("a Pipeline runs once; make a new one")
        self._ran = True
        size = self.config.queue_size if not self.live else 1
        q_frames, q_poses, q_results = (queue.Queue(maxsize=size) for _ in range(3))
        self._clocks = {s: _Clock() for s in STAGES}
        self._done = {s: threading.Event() for s in STAGES}
        self._latency = _Clock()
        self._follower = PersonFollower(self.detector, self.estimator, self.config.detect_every,
                                        self.config.follow_min_score, self.config.follow_pad,
                                        self.config.attention)
        threads = [
            threading.Thread(target=self._guard, args=("capture", self._capture, q_frames), daemon=True,
                             name="pipeline-capture"),
            threading.Thread(target=self._guard, args=("model", self._model, q_frames, q_poses), daemon=True,
                             name="pipeline-model"),
            threading.Thread(target=self._guard, args=("track", self._track, q_poses, q_results), daemon=True,
                             name="pipeline-track"),
            threading.Thread(target=self._guard, args=("render", self._render, q_results), daemon=True,
                             name="pipeline-render"),
        ]
        t0 = self._t0 = time.perf_counter()
        for t in threads:
            t.start()
        try:
            self._wait_stages()
        except KeyboardInterrupt:
            self.stop()
            self._finish(threads, t0, keep=True)
            raise
        self._finish(threads, t0, keep=not self._errors)
        if self._errors:
            stage, exc = self._errors[0]
            if isinstance(exc, TransposeLiveError):
                raise TransposeLiveError(str(exc)) from exc
            raise TransposeLiveError(f"{_STAGE_WORDS[stage]} failed: {type(exc).__name__}: {exc}") from exc
        return self.stats

    def _wait_stages(self) -> None:
        """Until the model, track and render stages have ended (capture may still block in a read).

        Waits on the stages' own events, never in Thread.join: a Ctrl-C that interrupts join() can mark a
        still running thread as ended (CPython 3.11), and a model thread still running at exit aborts the
        process."""
        for stage in STAGES[1:]:
            while not self._done[stage].wait(POLL_S):
                pass

    def _finish(self, threads: list[threading.Thread], t0: float, keep: bool) -> None:
        """Wait for the stages, fill the stats, close (keep) or abort the sinks."""
        self._stop.set()
        self._wait_stages()
        for t in threads[1:]:
            t.join()                   # they have ended: this only reaps them
        if self._done["capture"].wait(CAPTURE_JOIN_S):
            threads[0].join()
        else:
            log.debug("the capture thread is still blocked in the source; left to end on its own")
        self._fill_stats(time.perf_counter() - t0)
        if not keep:
            for sink in self.sinks:
                abort_sink(sink)
            return
        failure = None
        for sink in self.sinks:      # every sink gets closed even if one fails
            try:
                sink.close()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            if isinstance(failure, TransposeLiveError):
                raise failure
            raise TransposeLiveError(f"closing the outputs failed: {failure}") from failure

    def _fill_stats(self, wall: float) -> None:
        s = self.stats
        s.wall_s = wall
        s.stage_ms = {name: clock.mean_ms for name, clock in self._clocks.items()}
        s.detector_calls = self._follower.detector_calls
        s.latency_ms = self._latency.mean_ms

    def _guard(self, stage: str, body: Callable, *queues: queue.Queue) -> None:
        """A stage's thread: any exception stops the whole pipeline and is kept for run()."""
        try:
            body(*queues)
        except BaseException as exc:   # noqa: BLE001 - reported by run() in the caller's thread
            with self._lock:
                self._errors.append((stage, exc))
            self._stop.set()
        finally:
            self._done[stage].set()

    # ---------------------------------------------------------------------------------- queues

    def _put(self, q: queue.Queue, item) -> bool:
        """Blocking put that gives up when the pipeline stops."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _put_newest(self, q: queue.Queue, item) -> None:
        """Live sources: replace a frame still waiting (it is stale now) instead of waiting for room."""
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.stats.frames_dropped += 1
                except queue.Empty:
                    pass

    def _get(self, q: queue.Queue):
        while not self._stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return _END

    # ---------------------------------------------------------------------------------- stages

    def _capture(self, q_out: queue.Queue) -> None:
        clock, limit = self._clocks["capture"], self.config.max_frames
        frames = iter(self.source)
        while not self._stop.is_set() and (limit is None or self.stats.frames_read < limit):
            t = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            clock.add(time.perf_counter() - t)
            self.stats.frames_read += 1
            item = _Item(frame, time.monotonic())
            if self.live:
                self._put_newest(q_out, item)
            elif not self._put(q_out, item):
                return
        self._put(q_out, _END)      # waits for room: the last live frame is not replaced by the end

    def _model(self, q_in: queue.Queue, q_out: queue.Queue) -> None:
        clock = self._clocks["model"]
        while (item := self._get(q_in)) is not _END:
            t = time.perf_counter()
            item.poses = self._follower(item.frame.image)
            clock.add(time.perf_counter() - t)
            if not self._put(q_out, item):
                return
        self._put(q_out, _END)

    def _track(self, q_in: queue.Queue, q_out: queue.Queue) -> None:
        from .smoothing import PoseSmoother
        from .tracking import Tracker

        clock = self._clocks["track"]
        tracker = Tracker()
        smoother = PoseSmoother(self.config.smooth_strength)
        smoothing = self.config.smooth
        while (item := self._get(q_in)) is not _END:
            t = time.perf_counter()
            frame = item.frame
            poses = tracker.update(item.poses)
            for track_id in tracker.lost_ids:
                smoother.reset(track_id)
            if self.config.smooth != smoothing:      # switched by set_smooth: filters from before are stale
                smoothing = self.config.smooth
                smoother.reset()
            if smoothing:
                poses = smoother.smooth(poses, frame.timestamp)
            h, w = frame.image.shape[:2]
            item.result = FrameResult(index=frame.index, timestamp=frame.timestamp, poses=poses, size=(w, h))
            clock.add(time.perf_counter() - t)
            if not self._put(q_out, item):
                return
        self._put(q_out, _END)

    def _render(self, q_in: queue.Queue) -> None:
        from .render import draw_frame

        clock, cfg = self._clocks["render"], self.config
        need_image = self.on_frame is not None or any(wants for wants, _ in self._writers)
        config = getattr(self.estimator, "config", None)
        input_size = tuple(config.image_size) if config is not None else None
        rate = _Rate()
        while (item := self._get(q_in)) is not _END:
            t = time.perf_counter()
            result = item.result
            image = None
            if need_image:
                hud = None
                if cfg.hud:
                    hud = {"fps": rate.fps, "latency_ms": 1000 * (time.monotonic() - item.captured)}
                image = draw_frame(item.frame.image, result, draw_boxes=cfg.draw_boxes, draw_ids=cfg.draw_ids,
                                   attention=cfg.attention, hud=hud, input_size=input_size)
            for _, write in self._writers:
                write(image, result)
            if self.on_frame is not None:
                self.on_frame(image, result)
            if self.on_result is not None:
                self.on_result(result)
            clock.add(time.perf_counter() - t)
            latency = time.monotonic() - item.captured
            self._latency.add(latency)
            self.stats.max_latency_ms = max(self.stats.max_latency_ms, 1000 * latency)
            self.stats.frames_processed += 1
            rate.tick()
            self._fill_stats(time.perf_counter() - self._t0)     # readable while running (GUI counters)


_STAGE_WORDS = {"capture": "reading the source", "model": "pose estimation", "track": "tracking",
                "render": "rendering/writing"}


class _Rate:
    """Frames per second over the last second or so (for the HUD)."""

    def __init__(self) -> None:
        self._times: list[float] = []

    def tick(self) -> None:
        now = time.monotonic()
        self._times.append(now)
        while len(self._times) > 2 and now - self._times[0] > 1.0:
            self._times.pop(0)

    @property
    def fps(self) -> float | None:
        if len(self._times) < 2:
            return None
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)


# ---------------------------------------------------------------------------------------------- builders

def build_estimator(config: PipelineConfig):
    """The PoseEstimator a config names (the shipped default when config.model is None)."""
    from .estimator import PoseEstimator

    return PoseEstimator(model=config.model or "default", weights=config.weights, device=config.device,
                         image_size=config.image_size, flip=config.flip)


def build_detector(spec: str):
    from .detect import create_detector

    return create_detector(spec)


def run_pipeline(source, config: PipelineConfig | None = None, sinks: Iterable = (), **kwargs) -> PipelineStats:
    """Pipeline(source, config, sinks, **kwargs).run() in one call."""
    return Pipeline(source, config, list(sinks), **kwargs).run()


__all__ = ["Pipeline", "PipelineConfig", "PipelineStats", "PersonFollower", "follow_box", "abort_sink",
           "build_estimator", "build_detector", "run_pipeline"]

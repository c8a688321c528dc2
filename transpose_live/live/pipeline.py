"""The threaded pipeline: capture → detect + estimate → track + smooth → render + write, one thread each.

Stages talk through bounded `queue.Queue`s; a sentinel travels down the line when the source ends and one
`threading.Event` stops every stage at once (stop(), Ctrl-C, or an error in any stage). Stages overlap, so
throughput approaches 1 / (the slowest stage); torch, OpenCV and FFmpeg release the GIL in their work.

Files (`source.is_live` False) lose nothing: every frame goes through, in order (a full queue blocks the
stage before it). Live sources keep only the newest frame: every queue holds one frame, and a stage replaces
one the next stage has not taken yet (counted as dropped), so latency stays bounded; frames older than an
outage of the stream are dropped too (freshness.py).

The pipeline finishes its sinks at the end (also after stop() or Ctrl-C, so a video stays playable) and
aborts them after an error; with own_sinks=False their owner does that (a window that rebuilds pipelines
over one recording). A reader that goes away from a streamed output (OutputClosed) ends the run like stop().
Which persons the model sees and how they are followed lives in following.py; this file only runs stages.
"""

from __future__ import annotations

import collections
import logging
import math
import queue
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from transpose_live.errors import OutputClosed, TransposeLiveError
from transpose_live.live.following import PersonFollower, TrackSmoother
from transpose_live.live.freshness import MAX_WAIT_S, Freshness
from transpose_live.live.spec import RunSpec
from transpose_live.live.stage_clocks import FrameRate, StageClock
from transpose_live.media.sinks.base import Controllable, Event, EventListener, Sink
from transpose_live.media.sinks.dispatch import OutputDispatcher, finish_sinks
from transpose_live.types import FrameResult, Pose

if TYPE_CHECKING:
    from transpose_live.detect.base import Detector
    from transpose_live.media.sources import Frame
    from transpose_live.model.config import ModelConfig
    from transpose_live.pose.estimator import BoxesLike, ScoresLike

log = logging.getLogger(__name__)

STAGES = ("capture", "model", "track", "render")
POLL_S = 0.05              # how often a waiting stage looks at the stop event
CAPTURE_JOIN_S = 2.0       # a camera or stream read can block; the capture thread is not waited on longer
LATENCY_WINDOW = 300       # latency percentiles over the last this many frames (a live run's "now")
_END = object()            # sentinel: the source has ended
_STAGE_WORDS = {"capture": "reading the source", "model": "pose estimation", "track": "tracking",
                "render": "rendering/writing"}


# ---------------------------------------------------------------------------------- what the stages use


class FrameSource(Protocol):
    """What the capture stage reads: Frames in order (media.sources.Source and its kinds). is_live: a camera
    or a stream (the newest frame is kept, older ones dropped); close() also ends a read that waits."""

    is_live: bool

    def __iter__(self) -> Iterator[Frame]: ...

    def __next__(self) -> Frame: ...

    def close(self) -> None: ...


@runtime_checkable
class StreamEvents(Protocol):
    """A source with a connection of its own (media.sources.RtspSource): it reports stream_lost / stream_back /
    stream_failed by calling its `on_event` hook from its reading thread, and counts its reconnects."""

    on_event: EventListener | None
    reconnects: int


class PoseModel(Protocol):
    """The pose estimator (pose.estimator.PoseEstimator, pose.batching.SharedEstimator)."""

    def estimate(self, frame_bgr: np.ndarray, boxes: BoxesLike = None, box_scores: ScoresLike = None,
                 attention: bool = False) -> list[Pose]: ...


@runtime_checkable
class ConfiguredModel(Protocol):
    """A pose model that tells its input size (the attention overlay is drawn on its token grid)."""

    @property
    def config(self) -> ModelConfig: ...


class EventDetector(Protocol):
    """Events from tracked poses (monitor.events.PoseEvents): fed every output frame, closed at the end."""

    def update(self, result: FrameResult) -> list[Event]: ...

    def finish(self, timestamp: float) -> list[Event]: ...


def linear_percentiles(values, qs: tuple[float, ...]) -> tuple[float, ...]:
    """numpy.percentile's default (linear) for a few hundred values, in plain Python: ~12x cheaper than
    numpy's call overhead, and a cluster's camera worker answers the status 4 times a second."""
    ordered = sorted(values)
    last = len(ordered) - 1
    out = []
    for q in qs:
        pos = last * q / 100.0
        lo = math.floor(pos)
        hi = min(lo + 1, last)
        out.append(float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)))
    return tuple(out)


@dataclass
class PipelineStats:
    """How a run went. stage_ms: mean busy milliseconds per frame of each stage (waits on queues excluded).
    Changed by several stage threads while others read it: use Pipeline.stats_snapshot() for a copy."""

    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    detector_calls: int = 0
    stage_ms: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    wall_s: float = 0.0
    latency_ms: float = 0.0        # mean time from a frame's capture to its output
    max_latency_ms: float = 0.0
    latency_p50_ms: float = 0.0    # over the last LATENCY_WINDOW frames
    latency_p95_ms: float = 0.0
    stopped: bool = False          # ended before the source ran out (stop(), Ctrl-C, a reader gone)
    stop_reason: str | None = None

    @property
    def fps(self) -> float:
        return self.frames_processed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def slowest_stage(self) -> str:
        return max(self.stage_ms, key=lambda stage: self.stage_ms[stage])

    def as_dict(self) -> dict:
        return asdict(self) | {"fps": self.fps}


@dataclass
class _Item:
    frame: Frame
    captured: float                 # time.monotonic() when it left the source
    poses: list[Pose] | None = None
    result: FrameResult | None = None


class Pipeline:
    """Run `spec` over `source` into `sinks` (media.sinks.Sink: the video, JSON Lines, COCO results, segments,
    MQTT...), which it meets through one media.sinks.OutputDispatcher.

    estimator / detector: loaded objects (`transpose_live.live.run.load_runner(spec)` makes them once; a window
    reuses them across runs). on_frame(image_bgr, result) is called from the last stage's thread with each
    rendered frame (keep it cheap; it must not touch widgets). on_result(result) likewise, without rendering.

    Events: `events` are detectors (EventDetector: persons appearing, falls) run on every output frame; a
    source with a connection of its own (StreamEvents) reports stream_lost / stream_back into the run's
    emit(), which the pipeline hands it once here. Every event goes to the sinks that take events
    (media.sinks.EventSink) and then to on_event(record). stats_every: a {"event": "stats"} record that often
    (seconds of running) with fps, latency p50/p95, drops and reconnects, for long live runs' logs.
    """

    def __init__(self, source: FrameSource, spec: RunSpec | None = None, sinks: Sequence[Sink] = (), *,
                 estimator: PoseModel, detector: Detector,
                 on_frame: Callable[[np.ndarray, FrameResult], None] | None = None,
                 on_result: Callable[[FrameResult], None] | None = None, own_sinks: bool = True,
                 events: Sequence[EventDetector] = (), on_event: EventListener | None = None,
                 stats_every: float | None = None, max_wait_s: float = MAX_WAIT_S):
        self.source = source
        self.spec = replace(spec or RunSpec())     # a copy: set_attention / set_smooth change it
        self.outputs = OutputDispatcher(sinks, [on_event] if on_event is not None else [])
        self.sinks = self.outputs.sinks
        self.own_sinks = own_sinks
        self.on_frame = on_frame
        self.on_result = on_result
        self.estimator = estimator
        self.detector = detector
        self.events = list(events)
        self.stats_every = stats_every
        if isinstance(source, StreamEvents):
            source.on_event = self.emit        # the stream's own events join the run's (its reading thread)
        self.live = bool(source.is_live)
        self.fresh = Freshness(max_wait_s)     # live runs: which frames an outage made too old to deliver
        self.stats = PipelineStats()
        self._stats_lock = threading.Lock()
        self._stop = threading.Event()
        self._errors: list[tuple[str, BaseException]] = []
        self._ran = False
        self._follower = PersonFollower.from_spec(detector, estimator, self.spec)
        self._tracks = TrackSmoother(self.spec.smooth, self.spec.smooth_strength)
        self._clocks = {s: StageClock() for s in STAGES}
        self._latency = StageClock()
        self._recent_latency: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._done = {s: threading.Event() for s in STAGES}
        self._source_ended = threading.Event()
        self._t0 = time.perf_counter()
        for sink in self.sinks:
            if isinstance(sink, Controllable):
                sink.bind(self)                 # an output that steers the run (the web view's attention toggle)

    # ---------------------------------------------------------------------------------- control

    def set_attention(self, on: bool) -> None:
        """Compute and draw the dependency areas from the next frame on (any thread)."""
        self.spec.attention = bool(on)
        self._follower.attention = bool(on)

    def set_smooth(self, on: bool) -> None:
        """Turn the Kalman smoothing on or off from the next frame on (any thread)."""
        self.spec.smooth = bool(on)
        self._tracks.smooth = bool(on)

    def stop(self, reason: str = "stopped") -> None:
        """Ask every stage to end now (any thread); run() then closes the sinks and returns."""
        with self._stats_lock:
            if not self._stop.is_set():      # not after the run has ended by itself
                self.stats.stopped = True
                self.stats.stop_reason = reason
        self._stop.set()

    def emit(self, record: Event) -> None:
        """Hand one event to the sinks that take events and to on_event (any thread)."""
        if record.get("event") == "stream_back":
            self.fresh.stream_back()
        self.outputs.publish(record)

    def end_source(self) -> None:
        """End the run as if the source had ended (any thread; --duration): what was read is finished.
        Closing the source also ends a read that waits (a stream reconnecting)."""
        self._source_ended.set()
        self.source.close()

    @property
    def stopping(self) -> bool:
        """True once the run has been asked to end (or has ended)."""
        return self._stop.is_set()

    def stats_snapshot(self) -> PipelineStats:
        """A consistent copy of the counters, safe to read from any thread while the run goes on."""
        with self._stats_lock:
            self._fill_stats(time.perf_counter() - self._t0)
            return replace(self.stats, stage_ms=dict(self.stats.stage_ms))

    def run(self) -> PipelineStats:
        """Process the source to its end (or stop()); blocks. Errors in any stage come back as one
        TransposeLiveError (the original as __cause__). Ctrl-C stops, closes the sinks and re-raises."""
        if self._ran:
            raise TransposeLiveError("a Pipeline runs once; make a new one")
        self._ran = True
        size = self.spec.queue_size if not self.live else 1
        q_frames: queue.Queue = queue.Queue(maxsize=size)
        q_poses: queue.Queue = queue.Queue(maxsize=size)
        q_results: queue.Queue = queue.Queue(maxsize=size)
        stages = [("capture", self._capture, (q_frames,)), ("model", self._model, (q_frames, q_poses)),
                  ("track", self._track, (q_poses, q_results)), ("render", self._render, (q_results,))]
        threads = [threading.Thread(target=self._guard, args=(name, body, *queues), daemon=True,
                                    name=f"pipeline-{name}") for name, body, queues in stages]
        self._t0 = time.perf_counter()
        for t in threads:
            t.start()
        try:
            self._wait_stages()
        except KeyboardInterrupt:
            self.stop("interrupted")
            self._finish(threads, keep=True)
            raise
        self._finish(threads, keep=not self._errors)
        if self._errors:
            stage, exc = self._errors[0]
            if isinstance(exc, TransposeLiveError):
                raise exc
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

    def _finish(self, threads: list[threading.Thread], keep: bool) -> None:
        """Wait for the stages, fill the stats, close (keep) or abort the sinks."""
        self._stop.set()
        self._wait_stages()
        for t in threads[1:]:
            t.join()                   # they have ended: this only reaps them
        if self._done["capture"].wait(CAPTURE_JOIN_S):
            threads[0].join()
        else:
            # a read that blocks (a camera, a dead stream): the source's own close() hands the release to
            # that thread, so nothing is freed under the read (see sources.Source.close)
            log.debug("the capture thread is still blocked in the source; it releases it when the read returns")
        with self._stats_lock:
            self._fill_stats(time.perf_counter() - self._t0)
        if self.own_sinks:
            self.outputs.finish(keep)

    def _fill_stats(self, wall: float) -> None:
        s = self.stats
        s.wall_s = wall
        s.stage_ms = {name: clock.mean_ms for name, clock in self._clocks.items()}
        s.detector_calls = self._follower.detector_calls
        s.latency_ms = self._latency.mean_ms
        if self._recent_latency:
            s.latency_p50_ms, s.latency_p95_ms = linear_percentiles(self._recent_latency, (50, 95))

    def _guard(self, stage: str, body: Callable[..., None], *queues: queue.Queue) -> None:
        """A stage's thread: any exception stops the whole pipeline and is kept for run(); a reader that
        went away from a streamed output only stops it."""
        try:
            body(*queues)
        except OutputClosed as exc:
            log.info("%s; stopping", exc)
            self.stop("output closed")
        except BaseException as exc:   # noqa: BLE001 - reported by run() in the caller's thread
            with self._stats_lock:
                # after stop(), whoever stopped the run may close what a stage waits on (a model shared by
                # several runs releases its waiting callers): that ends the stage, it is no failure
                asked = self.stats.stopped and isinstance(exc, Exception)
                if not asked:
                    self._errors.append((stage, exc))
            if asked:
                log.debug("%s stage ended by the stop: %s", stage, exc)
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
                    self._drop()
                except queue.Empty:
                    pass

    def _hand_on(self, q: queue.Queue, item) -> bool:
        """To the next stage: live runs replace what it has not taken yet, files wait for room."""
        if self.live:
            self._put_newest(q, item)
            return not self._stop.is_set()
        return self._put(q, item)

    def _drop(self) -> None:
        with self._stats_lock:
            self.stats.frames_dropped += 1

    def _get(self, q: queue.Queue):
        while not self._stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return _END

    # ---------------------------------------------------------------------------------- stages

    def _capture(self, q_out: queue.Queue) -> None:
        clock, limit = self._clocks["capture"], self.spec.max_frames
        frames = iter(self.source)
        read = 0
        while not self._stop.is_set() and (limit is None or read < limit):
            t = time.perf_counter()
            frame = None if self._source_ended.is_set() else next(frames, None)
            if frame is None or self._source_ended.is_set():
                break
            clock.add(time.perf_counter() - t)
            read += 1
            with self._stats_lock:
                self.stats.frames_read = read
            item = _Item(frame, time.monotonic())
            if self.live:
                self._put_newest(q_out, item)
            elif not self._put(q_out, item):
                return
        self._put(q_out, _END)      # waits for room: the last live frame is not replaced by the end

    def _model(self, q_in: queue.Queue, q_out: queue.Queue) -> None:
        clock = self._clocks["model"]
        while (item := self._get(q_in)) is not _END:
            if self.live and self.fresh.waited_too_long(item.captured):
                self._drop()          # nothing newer came for seconds: the stream stalled after it
                continue
            t = time.perf_counter()
            item.poses = self._follower(item.frame.image)
            clock.add(time.perf_counter() - t)
            if not self._hand_on(q_out, item):
                return
        self._put(q_out, _END)

    def _track(self, q_in: queue.Queue, q_out: queue.Queue) -> None:
        clock = self._clocks["track"]
        while (item := self._get(q_in)) is not _END:
            t = time.perf_counter()
            frame = item.frame
            poses = self._tracks(item.poses, frame.timestamp)
            h, w = frame.image.shape[:2]
            item.result = FrameResult(index=frame.index, timestamp=frame.timestamp, poses=poses, size=(w, h))
            clock.add(time.perf_counter() - t)
            if not self._hand_on(q_out, item):
                return
        self._put(q_out, _END)

    def _render(self, q_in: queue.Queue) -> None:
        from transpose_live.live.render import draw_frame  # deferred: torch and OpenCV (pose.preprocess)

        clock, spec, outputs = self._clocks["render"], self.spec, self.outputs
        need_image = self.on_frame is not None or outputs.needs_image
        model = self.estimator
        input_size = None
        if isinstance(model, ConfiguredModel):
            height, width = model.config.image_size
            input_size = (int(height), int(width))
        rate = FrameRate()
        last_time = 0.0
        every = self.stats_every
        next_stats = time.monotonic() + every if every else None
        while (item := self._get(q_in)) is not _END:
            if self.live and self.fresh.before_reconnect(item.captured):
                self._drop()          # from the lost connection: older than the outage
                continue
            t = time.perf_counter()
            result = item.result
            image = None
            if need_image:
                hud = None
                if spec.hud:
                    hud = {"fps": rate.fps, "latency_ms": 1000 * (time.monotonic() - item.captured)}
                image = draw_frame(item.frame.image, result, draw_boxes=spec.boxes, draw_ids=spec.ids,
                                   attention=spec.attention, hud=hud, input_size=input_size,
                                   min_score=spec.min_joint_score, joint=spec.joint)
            outputs.write_frame(image, result)
            if self.on_frame is not None and image is not None:
                self.on_frame(image, result)
            if self.on_result is not None:
                self.on_result(result)
            for detector in self.events:
                for record in detector.update(result):
                    self.emit(record)
            last_time = result.timestamp
            clock.add(time.perf_counter() - t)
            latency = time.monotonic() - item.captured
            rate.tick()
            with self._stats_lock:
                self._latency.add(latency)
                self._recent_latency.append(1000 * latency)
                self.stats.max_latency_ms = max(self.stats.max_latency_ms, 1000 * latency)
                self.stats.frames_processed += 1
            if every and next_stats is not None and time.monotonic() >= next_stats:
                next_stats += every
                self.emit(self._stats_event(rate.fps, result.timestamp))
        for detector in self.events:            # the run's end closes what is open (persons still present)
            for record in detector.finish(last_time):
                self.emit(record)

    def _stats_event(self, fps: float | None, timestamp: float) -> Event:
        stats = self.stats_snapshot()
        return {"event": "stats", "timestamp": timestamp, "fps": round(fps or 0.0, 2),
                "frames": stats.frames_processed, "dropped": stats.frames_dropped,
                "latency_p50_ms": round(stats.latency_p50_ms, 1), "latency_p95_ms": round(stats.latency_p95_ms, 1),
                "reconnects": self.source.reconnects if isinstance(self.source, StreamEvents) else 0}


__all__ = ["Pipeline", "PipelineStats", "finish_sinks", "STAGES", "FrameSource", "StreamEvents", "PoseModel",
           "ConfiguredModel", "EventDetector"]

"""PipelineWorker: runs the pose pipeline in its own QThread and talks to the window through signals only.

The window creates the worker in the GUI thread, moves it to a QThread (`launch`) and connects to its signals;
`start` then runs in that thread until the source ends or `stop()` is called. The worker drives a
`PosePipeline` (ui/protocol.py; by default the real transpose_live.live.pipeline.Pipeline, the model loaded by
load_runner in this thread, never in the GUI's). Frames come from the pipeline's last thread (`on_frame`):
they are turned into QImages there (a deep copy) and emitted; Qt queues them to the GUI thread. At most
MAX_IN_FLIGHT frames wait in the GUI's queue: when the window falls behind, newer frames replace older ones.

Playback of files happens in `on_frame` too: it paces frames by their timestamps (speed x, or as fast as
possible), and while paused it holds the frame back (the pipeline's bounded queues then hold the stages:
a file loses nothing), letting one through per step. A seek or a step back rebuilds the pipeline on the
file reopened at that time (the model and detector are reused); frames of a replaced pipeline are dropped
by their generation number. Live sources show the newest frame; pause, seek and speed do not apply.

Every control (stop, pause, play, step, seek, set_speed, set_view, set_smooth) is a plain thread-safe method
called directly from the GUI thread (a queued call could not reach a thread busy running the pipeline);
none of them waits for the pipeline.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import logging
import threading
import time
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QImage

from transpose_live.errors import TransposeLiveError
from transpose_live.media.redact import source_label as label_of
from transpose_live.ui.protocol import PipelineFactory, PosePipeline
from transpose_live.ui.view import View

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 2          # frames emitted but not yet delivered to the GUI thread
STATS_INTERVAL = 0.5       # seconds between stats signals
STUCK_AFTER = 2.0          # seconds without a delivery: the GUI's receipts are lost, emit anyway
# raw frames remembered for the inspector beyond what the pipeline holds in flight (3 queues of
# spec.queue_size, one frame in each of 4 stages) and a few on their way to the screen; 1080p: ~6 MB each
RAW_FRAMES_SPARE = 8
WINDOW_STREAM_RETRIES = 3  # a stream in the window: a few reconnections (~4 s), then the error is shown


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """(H, W, 3) uint8 BGR (or (H, W) grey) -> a QImage that owns its pixels."""
    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8:
        raise TransposeLiveError(f"frames must be uint8, got {array.dtype}")
    if array.ndim == 2:
        h, w = array.shape
        fmt, stride = QImage.Format.Format_Grayscale8, w
    elif array.ndim == 3 and array.shape[2] == 3:
        h, w = array.shape[:2]
        fmt, stride = QImage.Format.Format_BGR888, 3 * w
    else:
        raise TransposeLiveError(f"frames must be (H, W, 3) BGR or (H, W) grey, got shape {array.shape}")
    # QImage only borrows the buffer: copy() makes it independent of the numpy array
    return QImage(array.data, w, h, stride, fmt).copy()


def default_config():
    from transpose_live.live.spec import RunSpec

    return RunSpec()


def with_settings(config: Any, **changes) -> Any:
    """A copy of `config` with some fields changed (a frozen dataclass or any plain object)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.replace(config, **changes)
    clone = copy.copy(config)
    for key, value in changes.items():
        setattr(clone, key, value)
    return clone


def real_pipeline(source, config, *, sinks=(), on_frame=None, on_event=None, estimator=None,
                  detector=None) -> PosePipeline:
    """The real Pipeline; the model and detector are loaded once (here, in the worker's thread) and reused
    by every rebuild. The worker owns the sinks: a rebuilt pipeline goes on writing the same files."""
    from transpose_live.live.pipeline import Pipeline
    from transpose_live.live.run import load_runner

    if estimator is None or detector is None:
        runner = load_runner(config)
        estimator, detector = estimator or runner.estimator, detector or runner.detector
    return Pipeline(source, config, sinks, estimator=estimator, detector=detector, on_frame=on_frame,
                    on_event=on_event, own_sinks=False)


def open_for_window(spec, **kwargs):
    from transpose_live.media.sources import STREAM_SCHEMES, open_source

    if isinstance(spec, str) and spec.lower().startswith(STREAM_SCHEMES):
        kwargs.setdefault("max_retries", WINDOW_STREAM_RETRIES)
    return open_source(spec, **kwargs)


def source_spec(source: Any) -> Any:
    """What reopens an opened Source: its file, URL or camera index (None when it cannot be told)."""
    for attr in ("path", "url", "index"):
        value = getattr(source, attr, None)
        if value is not None:
            return value
    return None


def source_label(spec: Any) -> str:
    """How the window names a source: "camera 0", a file name, a URL without its password."""
    return "source" if spec is None else label_of(spec)


class RememberingSource:
    """A source seen through a window onto its last raw frames (by frame index): the pipeline draws on its
    frames, the inspector needs them clean. Everything else (is_live, fps, on_event, close...) is the
    source's own."""

    def __init__(self, source: Any, keep: int = 3 * 4 + RAW_FRAMES_SPARE):
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_frames", collections.OrderedDict())
        object.__setattr__(self, "_keep", keep)
        object.__setattr__(self, "_lock", threading.Lock())

    def __iter__(self):
        return self

    def __next__(self):
        frame = next(self._source)
        with self._lock:
            self._frames[frame.index] = frame.image
            while len(self._frames) > self._keep:
                self._frames.popitem(last=False)
        return frame

    def raw(self, index: int) -> np.ndarray | None:
        with self._lock:
            return self._frames.get(index)

    def __getattr__(self, name):
        return getattr(self._source, name)

    def __setattr__(self, name, value):      # Pipeline sets source.on_event
        setattr(self._source, name, value)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._source.close()


class _Receipt(QObject):
    """Lives in the GUI thread: its slot runs when a frame signal is delivered there (same queue as the
    window's slot), so the worker knows how many frames still wait."""

    def __init__(self, on_delivered: Callable[[], None]):
        super().__init__()
        self._on_delivered = on_delivered

    @pyqtSlot(QImage, object)
    def delivered(self, _image, _result) -> None:
        self._on_delivered()


class PipelineWorker(QObject):
    """Run the pipeline over one source in a QThread.

    source: a file path, camera index, stream URL or an opened `transpose_live.media.sources.Source`.
    config: a `transpose_live.live.spec.RunSpec` (None: the defaults).
    source_options: extra arguments for `open_source` (width, height, fps, timeout, transport).
    sinks: writers (VideoWriter, JsonlWriter, ...) fed by every pipeline this worker builds, closed when it ends.
    start: seconds into a file to begin at. speed: playback rate of files (None: as fast as possible).
    paused: begin paused (the first frame is still shown). view: what the attention overlay shows.
    pose_log / recorder: ui.keep.PoseLog / Recorder fed with every shown frame.
    pipeline_factory / source_factory: default to the real Pipeline (real_pipeline) and open_source.
    """

    frame_ready = pyqtSignal(QImage, object)   # rendered frame, FrameResult
    stats = pyqtSignal(dict)                   # fps, persons, frames, dropped, latency (+ the pipeline's counters)
    info = pyqtSignal(dict)                    # once per pipeline built: source, model, device, size, live, duration
    error = pyqtSignal(str)                    # one line for the user
    state = pyqtSignal(str)                    # the stream's state: "reconnecting…", "" when it flows again
    inspected = pyqtSignal(object, object)     # Fig. 6 strip (QImage or None), facts dict
    finished = pyqtSignal()

    def __init__(self, source: Any, config: Any = None, *, source_options: dict | None = None,
                 pipeline_factory: PipelineFactory | None = None,
                 source_factory: Callable[..., Any] | None = None, estimator: Any = None, detector: Any = None,
                 sinks: Any = (), start: float | None = None, speed: float | None = 1.0, paused: bool = False,
                 view: View | None = None, pose_log: Any = None, recorder: Any = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self._config = default_config() if config is None else config
        if isinstance(source, (str, int)) or source is None or hasattr(source, "__fspath__"):
            self._spec, self._given = source, None
        else:                                   # an opened Source: used first, reopened from its spec
            self._spec, self._given = source_spec(source), source
        if self._spec is None and self._given is None:
            raise TransposeLiveError("no source given: open a video file, a camera or a stream URL")
        self._source_options = dict(source_options or {})
        self._pipeline_factory = pipeline_factory or real_pipeline
        self._source_factory = source_factory or open_for_window
        self._estimator = estimator
        self._detector = detector
        self._sinks = list(sinks)
        self.pose_log = pose_log
        self._recorder = recorder
        self._dropped_before = 0        # frames dropped by pipelines that have ended (rebuilds)

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)   # a paused frame waits on it
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._smooth = bool(getattr(self._config, "smooth", True))
        self._view = view or View(overlay=bool(getattr(self._config, "attention", False)))
        self._pipeline: Any = None
        self._source: RememberingSource | None = None
        self._running = False
        self._live = False
        self._fps_source: float | None = None

        # playback (guarded by _lock)
        self._speed = speed
        self._paused = bool(paused)
        self._steps = 1 if paused else 0       # frames let through while paused
        self._generation = 0                   # bumped by a seek: frames of older pipelines are dropped
        self._seek_to: float | None = float(start) if start else None
        self._anchor: tuple[float, float] | None = None   # (monotonic clock, frame timestamp) of pacing

        self._in_flight = 0
        self._last_emit = 0.0
        self._frames = 0
        self._ui_dropped = 0
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self._last_stats = 0.0
        self._last_result: Any = None
        self._last_timestamp: float | None = None
        self._fps: float | None = None
        self._latency_ms: float | None = None
        self.ended = False                     # the source ran out (not stopped, not failed)

        self._receipt = _Receipt(self._delivered)   # no parent: it stays in this (the GUI) thread
        self.frame_ready.connect(self._receipt.delivered)

    # ---------------------------------------------------------------------------------- called by the GUI

    @property
    def attention(self) -> bool:
        return self._view.overlay

    @property
    def smooth(self) -> bool:
        return self._smooth

    @property
    def view(self) -> View:
        return self._view

    @property
    def running(self) -> bool:
        return self._running

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def speed(self) -> float | None:
        return self._speed

    @property
    def live(self) -> bool:
        return self._live

    @property
    def position(self) -> float | None:
        """Timestamp (s) of the last frame shown."""
        return self._last_timestamp

    @property
    def frame_step(self) -> float:
        return 1.0 / (self._fps_source or 25.0)

    def set_attention(self, on: bool) -> None:
        """Show (or hide) the attention overlay from the next frame on. Thread-safe."""
        self.set_view(self._view.replace(overlay=bool(on)))

    def set_view(self, view: View) -> None:
        """What the overlay shows (joint, layer, person, ...), from the next frame on. Thread-safe."""
        with self._lock:
            self._view = view
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.set_attention(view.pipeline_attention)

    def set_smooth(self, on: bool) -> None:
        """Turn temporal smoothing on or off. Thread-safe."""
        with self._lock:
            self._smooth = bool(on)
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.set_smooth(bool(on))

    def stop(self) -> None:
        """Ask the pipeline to stop; `finished` follows. Thread-safe, returns at once."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()

    def pause(self) -> None:
        with self._wake:
            if not self._live:
                self._paused, self._steps = True, 0

    def play(self) -> None:
        with self._wake:
            self._paused, self._anchor = False, None
            self._wake.notify_all()

    def set_speed(self, speed: float | None) -> None:
        """Playback rate of a file: 0.25 .. 4, None: as fast as the pipeline goes."""
        with self._wake:
            self._speed, self._anchor = speed, None

    def step(self, frames: int = 1) -> None:
        """Pause, then one frame forward (frames > 0) or back (< 0: that frame is run through the model again)."""
        if self._live:
            return
        if frames < 0:
            here = self._last_timestamp or 0.0
            self.seek(max(0.0, here + frames * self.frame_step), paused=True)
            return
        with self._wake:
            if self._paused:
                self._steps += frames
            else:
                self._paused, self._steps = True, 0
            self._wake.notify_all()

    def seek(self, seconds: float, paused: bool | None = None) -> None:
        """Go on from `seconds` into the file (its frame there is shown even while paused). Returns at once:
        the pipeline is rebuilt in the worker's thread."""
        if self._live:
            return
        with self._wake:
            self._seek_to = max(0.0, float(seconds))
            self._generation += 1
            if paused is not None:
                self._paused = paused
            self._steps = 1 if self._paused else 0
            self._anchor = None
            self._restart.set()
            self._wake.notify_all()
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop("seek")

    def start_recording(self, recorder: Any) -> None:
        with self._lock:
            self._recorder = recorder

    def stop_recording(self) -> Any:
        with self._lock:
            recorder, self._recorder = self._recorder, None
        return recorder

    # ------------------------------------------------------------------------------ the worker's thread

    @pyqtSlot()
    def start(self) -> None:
        """Run until the source ends or stop() is called; errors become the `error` signal."""
        self._running = True
        try:
            self._run()
        except TransposeLiveError as exc:
            self.error.emit(str(exc))
        except Exception as exc:        # a bug must not kill the window: show it as one line
            log.exception("pipeline failed")
            self.error.emit(f"{type(exc).__name__}: {exc}")
        finally:
            self._close_sinks()
            self._running = False
            self._emit_stats(force=True)
            self.finished.emit()

    def _run(self) -> None:
        source = None
        try:
            while not self._stop.is_set():
                with self._lock:
                    start, self._seek_to = self._seek_to, None
                    generation = self._generation
                    self._restart.clear()
                if source is None or (start is not None and not self._live):
                    if source is not None:        # a seek: the file reopens at that time
                        source.close()
                        source = None
                    source = self._open(start)
                self._run_once(source, generation)
                if self._stop.is_set():
                    return
                if not self._restart.is_set():
                    self.ended = True
                    self._check_complete(source)
                    return
        finally:
            if source is not None:
                source.close()

    def _run_once(self, source: RememberingSource, generation: int) -> None:
        """Build one pipeline over `source` with the current settings and run it to its end."""
        with self._lock:
            view, smooth = self._view, self._smooth
        # the window draws one joint itself (inspector); the pipeline's overlay is all joints or nothing
        config = with_settings(self._config, attention=view.pipeline_attention, smooth=smooth, joint=None)
        pipeline = self._pipeline_factory(source, config, sinks=list(self._sinks),
                                          on_frame=functools.partial(self._on_frame, generation),
                                          on_event=self._on_event, estimator=self._estimator,
                                          detector=self._detector)
        self._estimator, self._detector = pipeline.estimator, pipeline.detector   # reused by a rebuild
        with self._lock:
            self._pipeline = pipeline
            changed = (self._view.pipeline_attention, self._smooth) != (view.pipeline_attention, smooth)
            superseded = generation != self._generation      # a seek came while the model loaded
        try:
            if self._stop.is_set() or superseded:
                return
            if changed:                      # toggled while the model was loading
                pipeline.set_attention(self._view.pipeline_attention)
                pipeline.set_smooth(self._smooth)
            self.info.emit(self._info(pipeline, source, config))
            pipeline.run()
        finally:
            with self._lock:
                self._pipeline = None
                self._dropped_before += _dropped(pipeline)

    def _open(self, start: float | None) -> RememberingSource:
        if self._given is not None:
            source, self._given = self._given, None
            if start:
                source.close()
                source = None
        else:
            source = None
        if source is None:
            options = dict(self._source_options)
            if start:
                options["start"] = start
            source = self._source_factory(self._spec, **options)
        self._live = bool(getattr(source, "is_live", False))
        self._fps_source = getattr(source, "fps", None)
        if self._live:
            self.play()
        in_flight = 3 * int(getattr(self._config, "queue_size", 4) or 4) + 4
        self._source = RememberingSource(source, keep=in_flight + RAW_FRAMES_SPARE)
        return self._source

    def _check_complete(self, source: Any) -> None:
        """A file that ended well before its stated length is truncated or damaged: say so in the window
        (it played what it could)."""
        if self._live or self._stop.is_set() or getattr(self._config, "max_frames", None) is not None:
            return
        duration = getattr(source, "duration", None)
        start = getattr(source, "start", None) or 0.0
        last = self._last_timestamp
        if duration and last is not None and getattr(source, "end", None) is None \
                and last + 2.5 * self.frame_step < start + duration:
            self.error.emit(f"{source_label(self._spec)} ends early (truncated or damaged?): played up to "
                            f"{last:.2f} s of {start + duration:.2f} s")

    def _close_sinks(self) -> None:
        """The outputs stay open across rebuilds; they are finished once, here (kept even after an error:
        a recording up to a camera failure is still worth having)."""
        failure = None
        for sink in self._sinks:
            try:
                sink.close()
            except Exception as exc:
                failure = failure or exc
        self._sinks = []
        if failure is not None:
            self.error.emit(str(failure) if isinstance(failure, TransposeLiveError)
                            else f"closing the outputs failed: {failure}")

    def _info(self, pipeline: Any, source: Any, config: Any) -> dict:
        estimator = pipeline.estimator
        model_cfg = getattr(estimator, "config", None)
        model = getattr(model_cfg, "name", None) or getattr(config, "model", None) or "default"
        device = getattr(estimator, "device", None) or getattr(config, "device", None) or "auto"
        size = getattr(source, "size", None)
        duration = getattr(source, "duration", None)
        start = getattr(source, "start", None) or 0.0
        return {"source": source_label(self._spec if self._spec is not None else source_spec(source)),
                "model": str(model), "device": str(device), "size": tuple(size) if size else None,
                "live": self._live, "duration": (duration + start) if duration else None,
                "fps": self._fps_source}

    # ----------------------------------------------------------------------------- the pipeline's thread

    def _on_event(self, record: dict) -> None:
        """A stream's own events (lost / back) become the window's state line."""
        kind = record.get("event")
        if kind == "stream_lost":
            self.state.emit(f"stream lost ({record.get('reason', '')}): reconnecting…")
        elif kind == "stream_back":
            self.state.emit("")

    def _hold(self, generation: int) -> bool:
        """Wait while paused (until a step, play, seek or stop); False when the frame must be dropped."""
        with self._wake:
            while (self._paused and self._steps <= 0 and generation == self._generation
                   and not self._stop.is_set()):
                self._wake.wait(0.25)
            if generation != self._generation or self._stop.is_set():
                return False
            if self._paused:
                self._steps -= 1
                return True
            return True

    def _on_frame(self, generation: int, image: np.ndarray, result: Any) -> None:
        """Called by the pipeline for every output frame (from its own thread)."""
        if not self._hold(generation):
            return
        timestamp = getattr(result, "timestamp", None)
        if not self._live and not self._paused and timestamp is not None:
            if not self._pace(float(timestamp), generation):
                return
        with self._lock:
            view, recorder = self._view, self._recorder
        if view.inspects and self._source is not None:
            image = self._inspect(image, result, view)
        now = time.monotonic()
        self._frames += 1
        self._times.append(now)
        self._last_result = result
        if timestamp is not None:
            self._last_timestamp = float(timestamp)
        if self.pose_log is not None:
            self.pose_log.add(result)
        if recorder is not None:
            recorder.write(image)
        if not self._live:
            # a file loses nothing: wait for the window to take the frames in flight (bounded wait)
            with self._wake:
                self._wake.wait_for(lambda: self._in_flight < MAX_IN_FLIGHT or self._stop.is_set()
                                    or generation != self._generation, timeout=STUCK_AFTER)
            now = time.monotonic()
        with self._lock:
            stuck = self._in_flight >= MAX_IN_FLIGHT and now - self._last_emit > STUCK_AFTER
            if self._in_flight >= MAX_IN_FLIGHT and not stuck and not self._paused:
                self._ui_dropped += 1
                emit = False
            else:
                self._in_flight = 1 if stuck else self._in_flight + 1
                self._last_emit = now
                emit = True
        if emit:
            self.frame_ready.emit(bgr_to_qimage(image), result)
        self._emit_stats()

    def _inspect(self, image: np.ndarray, result: Any, view: View) -> np.ndarray:
        """The inspector's drawing over the raw frame (the pipeline's drawing is replaced)."""
        from transpose_live.ui.view import render_inspection

        raw = self._source.raw(result.index)
        if raw is None:
            return image
        try:
            drawn, strip, facts = render_inspection(raw, result, view, self._estimator, self._config)
        except TransposeLiveError as exc:
            self.inspected.emit(None, {"error": str(exc)})
            return image
        self.inspected.emit(bgr_to_qimage(strip) if strip is not None else None, facts)
        return drawn

    def _pace(self, timestamp: float, generation: int) -> bool:
        """Wait until the frame is due by the file's clock at the chosen speed; False when a seek, pause
        or stop came meanwhile (the wait is cut short)."""
        with self._wake:
            speed = self._speed
            if speed is None:
                return True
            now = time.monotonic()
            if self._anchor is None or timestamp < self._anchor[1]:
                self._anchor = (now, timestamp)
                return True
            delay = self._anchor[0] + (timestamp - self._anchor[1]) / speed - now
            if delay < -0.5:                 # the pipeline fell behind: go on from here, do not rush
                self._anchor = (now, timestamp)
            while delay > 0 and generation == self._generation and not self._stop.is_set():
                self._wake.wait(min(delay, 0.25))
                if self._paused or self._anchor is None:
                    break
                delay = self._anchor[0] + (timestamp - self._anchor[1]) / speed - time.monotonic()
            return generation == self._generation and not self._stop.is_set()

    def _delivered(self) -> None:
        with self._wake:
            self._in_flight = max(0, self._in_flight - 1)
            self._wake.notify_all()

    def _emit_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_stats < STATS_INTERVAL:
            return
        self._last_stats = now
        times = list(self._times)
        if len(times) >= 2 and times[-1] > times[0]:
            self._fps = (len(times) - 1) / (times[-1] - times[0])
        with self._lock:
            pipeline = self._pipeline
            dropped_before = self._dropped_before
        own = _snapshot(pipeline)
        if own.get("latency_p50_ms"):
            self._latency_ms = own["latency_p50_ms"]      # kept: the last pipeline's, after it has ended
        result = self._last_result
        stats = {**own,
                 "fps": self._fps,
                 "persons": len(getattr(result, "poses", ()) or ()) if result is not None else 0,
                 "frames": self._frames,
                 "dropped": dropped_before + int(own.get("frames_dropped", 0)) + self._ui_dropped,
                 "dropped_display": self._ui_dropped,
                 "latency_ms": self._latency_ms,
                 "attention": self._view.overlay,
                 "smooth": self._smooth,
                 "paused": self._paused}
        self.stats.emit(stats)


def _snapshot(pipeline: PosePipeline | None) -> dict:
    """The running pipeline's counters (empty without one)."""
    return pipeline.stats_snapshot().as_dict() if pipeline is not None else {}


def _dropped(pipeline: PosePipeline) -> int:
    return int(_snapshot(pipeline).get("frames_dropped", 0))


def launch(worker: PipelineWorker) -> QThread:
    """Move `worker` to a new QThread, run `start` there; the thread quits when the worker finishes."""
    thread = QThread()
    thread.setObjectName("transpose-live pipeline")
    worker.moveToThread(thread)
    thread.started.connect(worker.start)
    # direct: quit() is thread-safe, and the thread must end even while the GUI thread is busy
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.start()
    return thread


def shutdown(worker: PipelineWorker | None, thread: QThread | None, timeout_ms: int = 15000) -> bool:
    """Stop the worker and join its thread (closing the window only: switching and stopping never join).
    True when joined."""
    if worker is not None:
        worker.stop()
    if thread is None:
        return True
    if thread.isRunning():
        thread.quit()          # takes effect once start() has returned
        if not thread.wait(timeout_ms):
            log.warning("pipeline thread did not stop within %.1f s", timeout_ms / 1000)
            return False
    return True

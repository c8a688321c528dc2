"""PipelineWorker: runs the pose pipeline in its own QThread and talks to the window through signals only.

The window creates the worker in the GUI thread, moves it to a QThread (ui/threads.py `launch`) and connects to
its signals; `start` then runs in that thread until the source ends or `stop()` is called. The worker drives a
`PosePipeline` (ui/protocol.py; by default the real transpose_live.live.pipeline.Pipeline, the model loaded by
load_runner in this thread, never in the GUI's). Frames come from the pipeline's last thread (`on_frame`):
they are turned into QImages there (a deep copy) and emitted; Qt queues them to the GUI thread.

When each frame goes to the screen is ui/playback.py's: files are paced by their timestamps and held while
paused; at most MAX_IN_FLIGHT frames wait in the GUI's queue. A seek or a step back rebuilds the pipeline on the
file reopened at that time (the model and detector are reused); frames of a replaced pipeline are dropped by
their generation number. Live sources show the newest frame; pause, seek and speed do not apply.

Every control (stop, pause, play, step, seek, set_speed, set_view, set_smooth) is a plain thread-safe method
called directly from the GUI thread (a queued call could not reach a thread busy running the pipeline);
none of them waits for the pipeline.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Callable, Sequence, TypedDict

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QImage

from transpose_live.detect.base import Detector
from transpose_live.errors import TransposeLiveError
from transpose_live.live.pipeline import PoseModel
from transpose_live.live.spec import RunSpec
from transpose_live.media.sinks import Event, Sink
from transpose_live.media.sources import Source
from transpose_live.types import FrameResult
from transpose_live.ui.images import bgr_to_qimage
from transpose_live.ui.keep import PoseLog, Recorder
from transpose_live.ui.pipeline_factory import real_pipeline
from transpose_live.ui.playback import Playback
from transpose_live.ui.protocol import PipelineFactory, PosePipeline
from transpose_live.ui.settings import default_config, with_settings
from transpose_live.ui.sources import (
    RAW_FRAMES_SPARE,
    RememberingSource,
    SourceLike,
    open_for_window,
    source_label,
    source_spec,
)
from transpose_live.ui.stats import DisplayStats
from transpose_live.ui.view import View, render_inspection

log = logging.getLogger(__name__)


class SourceInfo(TypedDict):
    """What the `info` signal says once per pipeline built."""

    source: str                          # the source's label (no password)
    model: str
    device: str
    size: tuple[int, int] | None         # (width, height)
    live: bool
    duration: float | None               # seconds: where a file ends
    fps: float | None                    # the source's frame rate


class _Receipt(QObject):
    """Lives in the GUI thread: its slot runs when a frame signal is delivered there (same queue as the
    window's slot), so the worker knows how many frames still wait."""

    def __init__(self, on_delivered: Callable[[], None]):
        super().__init__()
        self._on_delivered = on_delivered

    @pyqtSlot(QImage, FrameResult)
    def delivered(self, _image: QImage, _result: FrameResult) -> None:
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

    frame_ready = pyqtSignal(QImage, FrameResult)   # rendered frame, its poses
    stats = pyqtSignal(dict)                   # fps, persons, frames, dropped, latency (+ the pipeline's counters)
    info = pyqtSignal(dict)                    # SourceInfo, once per pipeline built
    error = pyqtSignal(str)                    # one line for the user
    state = pyqtSignal(str)                    # the stream's state: "reconnecting…", "" when it flows again
    inspected = pyqtSignal(object, object)     # Fig. 6 strip (QImage, or None), facts dict (person, layers, joints)
    finished = pyqtSignal()

    def __init__(self, source: SourceLike | None, config: RunSpec | None = None, *,
                 source_options: dict[str, Any] | None = None, pipeline_factory: PipelineFactory | None = None,
                 source_factory: Callable[..., Source] | None = None, estimator: PoseModel | None = None,
                 detector: Detector | None = None, sinks: Sequence[Sink] = (), start: float | None = None,
                 speed: float | None = 1.0, paused: bool = False, view: View | None = None,
                 pose_log: PoseLog | None = None, recorder: Recorder | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._config = default_config() if config is None else config
        if isinstance(source, (str, int)) or source is None or hasattr(source, "__fspath__"):
            self._spec, self._given = source, None
        else:                                   # an opened Source: used first, reopened from its spec
            self._spec, self._given = source_spec(source), source
        if self._spec is None and self._given is None:
            raise TransposeLiveError("no source given: open a video file, a camera or a stream URL")
        self._source_options = dict(source_options or {})
        self._pipeline_factory: PipelineFactory = pipeline_factory or real_pipeline
        self._source_factory: Callable[..., Source] = source_factory or open_for_window
        self._estimator = estimator
        self._detector = detector
        self._sinks = list(sinks)
        self.pose_log = pose_log

        self._lock = threading.Lock()          # what the GUI thread changes while the pipeline runs
        self._stop = threading.Event()
        self._recorder = recorder
        self._smooth = bool(getattr(self._config, "smooth", True))
        self._view = view or View(overlay=bool(getattr(self._config, "attention", False)))
        self._pipeline: PosePipeline | None = None
        self._pipeline_generation = 0          # the playback generation it was built for
        self._source: RememberingSource | None = None
        self._running = False
        self._fps_source: float | None = None
        self._position: float | None = None    # timestamp of the last frame shown
        self.ended = False                     # the source ran out (not stopped, not failed)

        self._playback = Playback(self._stop, speed=speed, paused=paused, start=start)
        self._stats = DisplayStats()
        self._receipt = _Receipt(self._playback.delivered)   # no parent: it stays in this (the GUI) thread
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
        return self._playback.paused

    @property
    def speed(self) -> float | None:
        return self._playback.speed

    @property
    def live(self) -> bool:
        return self._playback.live

    @property
    def position(self) -> float | None:
        """Timestamp (s) of the last frame shown."""
        return self._position

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
        self._playback.wake()
        with self._lock:
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()

    def pause(self) -> None:
        self._playback.pause()

    def play(self) -> None:
        self._playback.play()

    def set_speed(self, speed: float | None) -> None:
        """Playback rate of a file: 0.25 .. 4, None: as fast as the pipeline goes."""
        self._playback.set_speed(speed)

    def step(self, frames: int = 1) -> None:
        """Pause, then one frame forward (frames > 0) or back (< 0: that frame is run through the model again)."""
        if self.live:
            return
        if frames < 0:
            here = self._position or 0.0
            self.seek(max(0.0, here + frames * self.frame_step), paused=True)
            return
        self._playback.step_forward(frames)

    def seek(self, seconds: float, paused: bool | None = None) -> None:
        """Go on from `seconds` into the file (its frame there is shown even while paused). Returns at once:
        the pipeline is rebuilt in the worker's thread."""
        if self.live:
            return
        generation = self._playback.seek(seconds, paused)
        with self._lock:      # a pipeline built for this seek already (the worker was quick) goes on
            pipeline = self._pipeline if self._pipeline_generation < generation else None
        if pipeline is not None:
            pipeline.stop("seek")

    def start_recording(self, recorder: Recorder) -> None:
        with self._lock:
            self._recorder = recorder

    def stop_recording(self) -> Recorder | None:
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
            self._release()
            self._running = False
            self._emit_stats(force=True)
            self.finished.emit()

    def _release(self) -> None:
        """Let go of the model, the detector and the remembered frames here, in the worker's thread: freeing a
        model takes tens of ms (an OpenVINO one: 30-70 ms, measured), which the GUI thread must not spend when it
        drops this worker."""
        self._estimator = self._detector = None
        self._source = None

    def _run(self) -> None:
        source = None
        try:
            while not self._stop.is_set():
                start, generation = self._playback.take_start()
                if source is None or (start is not None and not self.live):
                    if source is not None:        # a seek: the file reopens at that time
                        source.close()
                        source = None
                    source = self._open(start)
                self._run_once(source, generation)
                if self._stop.is_set():
                    return
                if not self._playback.restart:
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
            self._pipeline, self._pipeline_generation = pipeline, generation
            changed = (self._view.pipeline_attention, self._smooth) != (view.pipeline_attention, smooth)
        self._stats.follow(pipeline)
        try:
            if self._stop.is_set() or not self._playback.current(generation):    # a seek came while it loaded
                return
            if changed:                      # toggled while the model was loading
                pipeline.set_attention(self._view.pipeline_attention)
                pipeline.set_smooth(self._smooth)
            self.info.emit(self._info(pipeline, source))
            pipeline.run()
        finally:
            with self._lock:
                self._pipeline = None
            self._stats.pipeline_ended()

    def _open(self, start: float | None) -> RememberingSource:
        source: Source | None = None
        if self._given is not None:
            source, self._given = self._given, None
            if start:
                source.close()
                source = None
        if source is None:
            options = dict(self._source_options)
            if start:
                options["start"] = start
            source = self._source_factory(self._spec, **options)
        self._playback.live = bool(getattr(source, "is_live", False))
        self._fps_source = getattr(source, "fps", None)
        if self.live:
            self.play()
        in_flight = 3 * int(getattr(self._config, "queue_size", 4) or 4) + 4
        self._source = RememberingSource(source, keep=in_flight + RAW_FRAMES_SPARE)
        return self._source

    def _check_complete(self, source: RememberingSource) -> None:
        """A file that ended well before its stated length is truncated or damaged: say so in the window
        (it played what it could)."""
        if self.live or self._stop.is_set() or getattr(self._config, "max_frames", None) is not None:
            return
        duration = getattr(source, "duration", None)
        start = getattr(source, "start", None) or 0.0
        last = self._position
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

    def _info(self, pipeline: PosePipeline, source: RememberingSource) -> SourceInfo:
        config = self._config
        estimator = pipeline.estimator
        model_cfg = getattr(estimator, "config", None)
        model = getattr(model_cfg, "name", None) or getattr(config, "model", None) or "default"
        device = getattr(estimator, "device", None) or getattr(config, "device", None) or "auto"
        size = getattr(source, "size", None)
        duration = getattr(source, "duration", None)
        start = getattr(source, "start", None) or 0.0
        return {"source": source_label(self._spec if self._spec is not None else source_spec(source)),
                "model": str(model), "device": str(device), "size": tuple(size) if size else None,
                "live": self.live, "duration": (duration + start) if duration else None,
                "fps": self._fps_source}

    # ----------------------------------------------------------------------------- the pipeline's thread

    def _on_event(self, record: Event) -> None:
        """A stream's own events (lost / back) become the window's state line."""
        kind = record.get("event")
        if kind == "stream_lost":
            self.state.emit(f"stream lost ({record.get('reason', '')}): reconnecting…")
        elif kind == "stream_back":
            self.state.emit("")

    def _on_frame(self, generation: int, image: np.ndarray, result: FrameResult) -> None:
        """Called by the pipeline for every output frame (from its own thread)."""
        playback = self._playback
        if not playback.hold(generation):
            return
        timestamp = getattr(result, "timestamp", None)
        if not self.live and not playback.paused and timestamp is not None:
            if not playback.pace(float(timestamp), generation):
                return
        with self._lock:
            view, recorder = self._view, self._recorder
        if view.inspects and self._source is not None:
            image = self._inspect(self._source, image, result, view)
        now = time.monotonic()
        self._stats.shown(result, now)
        if timestamp is not None:
            self._position = float(timestamp)
        if self.pose_log is not None:
            self.pose_log.add(result)
        if recorder is not None:
            recorder.write(image)
        if not self.live:
            playback.wait_for_room(generation)
            now = time.monotonic()
        if playback.admit(now):
            self.frame_ready.emit(bgr_to_qimage(image), result)
        else:
            self._stats.dropped_on_the_way += 1
        self._emit_stats()

    def _inspect(self, source: RememberingSource, image: np.ndarray, result: FrameResult,
                 view: View) -> np.ndarray:
        """The inspector's drawing over the raw frame (the pipeline's drawing is replaced)."""
        raw = source.raw(result.index)
        if raw is None:
            return image
        try:
            drawn, strip, facts = render_inspection(raw, result, view, self._estimator, self._config)
        except TransposeLiveError as exc:
            self.inspected.emit(None, {"error": str(exc)})
            return image
        self.inspected.emit(bgr_to_qimage(strip) if strip is not None else None, facts)
        return drawn

    def _emit_stats(self, force: bool = False) -> None:
        stats = self._stats.report(force=force, attention=self._view.overlay, smooth=self._smooth,
                                   paused=self._playback.paused)
        if stats is not None:
            self.stats.emit(stats)

"""PipelineWorker: runs the pose pipeline in its own QThread and talks to the window through signals only.

The window creates the worker in the GUI thread, moves it to a QThread (`launch`) and connects to its signals;
`start` then runs in that thread until the source ends or `stop()` is called. Frames come from the pipeline's
last thread (the `on_frame` callback): they are turned into QImages there (a deep copy, so the image outlives
the numpy buffer) and emitted; Qt queues them to the GUI thread. At most MAX_IN_FLIGHT frames wait in the
GUI's queue: when the window falls behind, newer frames replace older ones instead of piling up. Files play
at their own speed (`realtime`): the frame callback waits until a frame is due, which holds the pipeline back
(file sources drop nothing); live sources are shown as fast as they come.

`stop`, `set_attention` and `set_smooth` are plain thread-safe methods meant to be called directly from the
GUI thread (a queued call could not reach a thread that is busy running the pipeline). Attention and
smoothing change live when the pipeline has `set_attention` / `set_smooth`; otherwise the pipeline is
rebuilt (a video file resumes after the last shown frame; the model and detector are reused).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import logging
import threading
import time
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QImage

from transpose_live.errors import TransposeLiveError

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 2          # frames emitted but not yet delivered to the GUI thread
STATS_INTERVAL = 0.5       # seconds between stats signals
STUCK_AFTER = 2.0          # seconds without a delivery: the GUI's receipts are lost, emit anyway
LIVE_SETTINGS = ("attention", "smooth")


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
    from transpose_live.spec import RunSpec

    return RunSpec()


def with_settings(config: Any, **changes) -> Any:
    """A copy of `config` with some fields changed (a frozen dataclass or any plain object)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.replace(config, **changes)
    clone = copy.copy(config)
    for key, value in changes.items():
        setattr(clone, key, value)
    return clone


def _default_pipeline_factory(source, config, *, sinks=(), on_frame=None, estimator=None, detector=None):
    """The real Pipeline; the model and detector are loaded once (here, in the worker's thread) and reused
    by every rebuild. The worker owns the sinks: a rebuilt pipeline goes on writing the same files."""
    from transpose_live.pipeline import Pipeline
    from transpose_live.run import load_runner

    if estimator is None or detector is None:
        runner = load_runner(config)
        estimator, detector = estimator or runner.estimator, detector or runner.detector
    return Pipeline(source, config, sinks, estimator=estimator, detector=detector, on_frame=on_frame,
                    own_sinks=False)


WINDOW_STREAM_RETRIES = 3     # a stream in the window: a few reconnections (~4 s), then the error is shown


def _default_source_factory(spec, **kwargs):
    from transpose_live.sources import STREAM_SCHEMES, open_source

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
    from transpose_live.run import source_label as label

    return "source" if spec is None else label(spec)


def _pipeline_stats(pipeline: Any) -> dict:
    """Whatever counters the pipeline exposes as `stats`: PipelineStats (as_dict), a dataclass, a dict, or a
    method giving one. Read from another thread while the pipeline runs, so any failure just gives {}."""
    try:
        snapshot = getattr(pipeline, "stats_snapshot", None)
        stats = snapshot() if callable(snapshot) else getattr(pipeline, "stats", None)
        if callable(stats):
            stats = stats()
        if callable(getattr(stats, "as_dict", None)):
            stats = stats.as_dict()
        elif dataclasses.is_dataclass(stats) and not isinstance(stats, type):
            stats = dataclasses.asdict(stats)
        return dict(stats) if isinstance(stats, dict) else {}
    except Exception:     # counters are a nicety: never let them end a run
        return {}


def _dropped(stats: dict) -> int:
    """Frames the pipeline dropped (live sources keep the newest frame)."""
    for key in ("frames_dropped", "dropped"):
        value = stats.get(key)
        if isinstance(value, (int, float)):
            return int(value)
    return 0


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
    """Run `Pipeline(source, config, on_frame=...)` in a QThread.

    source: a file path, camera index, stream URL or an opened `transpose_live.sources.Source`.
    config: a `transpose_live.spec.RunSpec` (None: the defaults).
    source_options: extra arguments for `open_source` (width, height, fps, timeout, transport).
    sinks: writers (VideoWriter, JsonlWriter, ...) fed by every pipeline this worker builds, closed when it ends.
    realtime: play files at their frame timestamps (False: as fast as the pipeline goes).
    pipeline_factory(source, config, sinks=, on_frame=, estimator=, detector=) and source_factory(spec, **options)
    default to the real Pipeline and open_source; tests pass fakes.
    """

    frame_ready = pyqtSignal(QImage, object)   # rendered frame, FrameResult
    stats = pyqtSignal(dict)                   # fps, persons, frames, dropped (+ the pipeline's own counters)
    info = pyqtSignal(dict)                    # once per pipeline built: source, model, device, size
    error = pyqtSignal(str)                    # one line for the user
    finished = pyqtSignal()

    def __init__(self, source: Any, config: Any = None, *, source_options: dict | None = None,
                 pipeline_factory: Callable[..., Any] | None = None,
                 source_factory: Callable[..., Any] | None = None, estimator: Any = None, detector: Any = None,
                 sinks: Any = (), realtime: bool = True, parent: QObject | None = None):
        super().__init__(parent)
        self._config = default_config() if config is None else config
        if isinstance(source, (str, int)) or source is None or hasattr(source, "__fspath__"):
            self._spec, self._given = source, None
        else:                                   # an opened Source: used first, reopened from its spec
            self._spec, self._given = source_spec(source), source
        if self._spec is None and self._given is None:
            raise TransposeLiveError("no source given: open a video file, a camera or a stream URL")
        self._source_options = dict(source_options or {})
        self._pipeline_factory = pipeline_factory or _default_pipeline_factory
        self._source_factory = source_factory or _default_source_factory
        self._estimator = estimator
        self._detector = detector
        self._sinks = list(sinks)
        self._realtime = bool(realtime)
        self._paced = False                # the running source is a file played in real time
        self._anchor: tuple[float, float] | None = None   # (monotonic clock, frame timestamp) of pacing
        self._dropped_before = 0        # frames dropped by pipelines that have ended (rebuilds)

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._settings = {name: bool(getattr(self._config, name, False)) for name in LIVE_SETTINGS}
        self._pipeline: Any = None
        self._running = False

        self._in_flight = 0
        self._last_emit = 0.0
        self._frames = 0
        self._ui_dropped = 0
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self._last_stats = 0.0
        self._last_result: Any = None
        self._last_timestamp: float | None = None
        self._fps: float | None = None

        self._receipt = _Receipt(self._delivered)   # no parent: it stays in this (the GUI) thread
        self.frame_ready.connect(self._receipt.delivered)

    # ---------------------------------------------------------------------------------- called by the GUI

    @property
    def attention(self) -> bool:
        return self._settings["attention"]

    @property
    def smooth(self) -> bool:
        return self._settings["smooth"]

    @property
    def running(self) -> bool:
        return self._running

    def set_attention(self, on: bool) -> None:
        """Show (or hide) the attention maps from the next frame on. Thread-safe."""
        self._change("attention", bool(on))

    def set_smooth(self, on: bool) -> None:
        """Turn temporal smoothing on or off. Thread-safe."""
        self._change("smooth", bool(on))

    def stop(self) -> None:
        """Ask the pipeline to stop; `finished` follows. Thread-safe, returns at once."""
        self._stop.set()
        with self._lock:
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()

    def _change(self, name: str, on: bool) -> None:
        with self._lock:
            if self._settings[name] == on:
                return
            self._settings[name] = on
            pipeline = self._pipeline
        if pipeline is not None:
            self._apply(pipeline, {name: on})

    def _apply(self, pipeline: Any, changes: dict) -> None:
        """Hand changed settings to a running pipeline: live through its setters, else by a rebuild."""
        rebuild = False
        for name, on in changes.items():
            setter = getattr(pipeline, f"set_{name}", None)
            if callable(setter):
                setter(on)
            else:
                rebuild = True
        if rebuild:
            self._restart.set()
            pipeline.stop()

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
        source, resume = None, None
        try:
            while not self._stop.is_set():
                if source is None:
                    try:
                        source = self._open(resume)
                    except TransposeLiveError:
                        if resume is not None:   # a rebuild at the very end of a file: nothing left to show
                            return
                        raise
                self._run_once(source)
                if not self._restart.is_set() or self._stop.is_set():
                    return
                if not getattr(source, "is_live", False):
                    # a file reopens after the last shown frame (frames queued in the old pipeline are not
                    # lost); a live source goes on as it is (its timestamps continue, no reconnect)
                    resume = self._resume_point(source)
                    source.close()
                    source = None
        finally:
            if source is not None:
                source.close()

    def _run_once(self, source: Any) -> None:
        """Build one pipeline over `source` with the current settings and run it to its end."""
        with self._lock:
            settings = dict(self._settings)
        config = with_settings(self._config, **settings)
        pipeline = self._pipeline_factory(source, config, sinks=list(self._sinks),
                                          on_frame=self._on_frame, estimator=self._estimator,
                                          detector=self._detector)
        self._estimator = getattr(pipeline, "estimator", None) or self._estimator   # reused by a rebuild
        self._detector = getattr(pipeline, "detector", None) or self._detector
        self._restart.clear()
        self._paced = self._realtime and not getattr(source, "is_live", False)
        self._anchor = None
        with self._lock:
            self._pipeline = pipeline
            changed = {k: v for k, v in self._settings.items() if v != settings[k]}
        try:
            if self._stop.is_set():
                return
            if changed:                      # toggled while the model was loading
                self._apply(pipeline, changed)
            self.info.emit(self._info(pipeline, source, config))
            pipeline.run()
        finally:
            with self._lock:
                self._pipeline = None
                self._dropped_before += _dropped(_pipeline_stats(pipeline))

    def _open(self, resume: float | None):
        if self._given is not None:
            source, self._given = self._given, None
        else:
            options = dict(self._source_options)
            if resume is not None:
                options["start"] = resume
            source = self._source_factory(self._spec, **options)
        return source

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

    def _resume_point(self, source: Any) -> float | None:
        """Where a rebuilt pipeline goes on: after the last shown frame of a file, live sources just go on."""
        if getattr(source, "is_live", False) or self._last_timestamp is None:
            return None
        step = 1.0 / (getattr(source, "fps", None) or 30.0)
        return max(0.0, self._last_timestamp + step)

    def _info(self, pipeline: Any, source: Any, config: Any) -> dict:
        estimator = getattr(pipeline, "estimator", None)
        model_cfg = getattr(estimator, "config", None)
        model = getattr(model_cfg, "name", None) or getattr(config, "model", None) or "default"
        device = getattr(estimator, "device", None) or getattr(config, "device", None) or "auto"
        size = getattr(source, "size", None)
        return {"source": source_label(self._spec if self._spec is not None else source_spec(source)),
                "model": str(model), "device": str(device), "size": tuple(size) if size else None,
                "live": bool(getattr(source, "is_live", False))}

    # ----------------------------------------------------------------------------- the pipeline's thread

    def _on_frame(self, image: np.ndarray, result: Any) -> None:
        """Called by the pipeline for every output frame (from its own thread)."""
        timestamp = getattr(result, "timestamp", None)
        if self._paced and timestamp is not None:
            self._pace(float(timestamp))
        now = time.monotonic()
        self._frames += 1
        self._times.append(now)
        self._last_result = result
        if timestamp is not None:
            self._last_timestamp = timestamp
        if self._stop.is_set():
            return
        with self._lock:
            stuck = self._in_flight >= MAX_IN_FLIGHT and now - self._last_emit > STUCK_AFTER
            if self._in_flight >= MAX_IN_FLIGHT and not stuck:
                self._ui_dropped += 1
                emit = False
            else:
                self._in_flight = 1 if stuck else self._in_flight + 1
                self._last_emit = now
                emit = True
        if emit:
            self.frame_ready.emit(bgr_to_qimage(image), result)
        self._emit_stats()

    def _pace(self, timestamp: float) -> None:
        """Wait until the frame is due by the file's own clock (stop() cuts the wait short)."""
        now = time.monotonic()
        if self._anchor is None or timestamp < self._anchor[1]:
            self._anchor = (now, timestamp)
            return
        delay = self._anchor[0] + (timestamp - self._anchor[1]) - now
        if delay > 0:
            self._stop.wait(min(delay, 1.0))
        elif delay < -0.5:                 # the pipeline fell behind: go on from here, do not rush
            self._anchor = (now, timestamp)

    def _delivered(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

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
        own = _pipeline_stats(pipeline) if pipeline is not None else {}
        result = self._last_result
        stats = {**own,
                 "fps": self._fps,
                 "persons": len(getattr(result, "poses", ()) or ()) if result is not None else 0,
                 "frames": self._frames,
                 "dropped": dropped_before + _dropped(own) + self._ui_dropped,
                 "dropped_display": self._ui_dropped,
                 "attention": self._settings["attention"],
                 "smooth": self._settings["smooth"]}
        self.stats.emit(stats)


def launch(worker: PipelineWorker) -> QThread:
    """Move `worker` to a new QThread, run `start` there; the thread quits when the worker finishes."""
    thread = QThread()
    thread.setObjectName("transpose-live pipeline")
    worker.moveToThread(thread)
    thread.started.connect(worker.start)
    # direct: quit() is thread-safe, and the thread must end even while the GUI thread is busy joining it
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.start()
    return thread


def shutdown(worker: PipelineWorker | None, thread: QThread | None, timeout_ms: int = 15000) -> bool:
    """Stop the worker and join its thread (the GUI keeps no running thread behind). True when joined."""
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

"""MainWindow: the video with skeletons, playback, the attention inspector, source and model controls.

All pose work happens in a PipelineWorker (ui/worker.py) on its own QThread; the window only reacts to the
worker's signals and calls its thread-safe methods. Nothing here waits for a worker: stopping or switching a
source retires the old worker (ui/runs.py: it is told to stop; its thread is forgotten once it has
finished), and a new model or device is loaded by the new worker in its thread. Only closing the window joins
the threads.

This module is the wiring: the panels and bars say what the user asked through signals (SourceBar,
ModelPicker, ViewBar, PlaybackBar, InspectorPanel, VideoWidget), and the window turns that into workers and
views. Every shortcut is an application-wide action (ui/actions.py), so it works whatever widget has the focus.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from PyQt6.QtCore import QPointF, Qt, pyqtSlot
from PyQt6.QtGui import QCloseEvent, QImage
from PyQt6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from transpose_live.errors import TransposeLiveError
from transpose_live.live.spec import RunSpec
from transpose_live.media.sinks import Sink
from transpose_live.media.sources import Source
from transpose_live.pose.inspector import joint_index
from transpose_live.types import FrameResult, Pose
from transpose_live.ui.actions import app_action, set_checked_quietly
from transpose_live.ui.inspector_panel import InspectorPanel
from transpose_live.ui.keeping import Keeping
from transpose_live.ui.model_picker import ModelPicker
from transpose_live.ui.playback_bar import PlaybackBar
from transpose_live.ui.preload import preload
from transpose_live.ui.protocol import PipelineFactory
from transpose_live.ui.runs import Runs
from transpose_live.ui.selection import clicked, next_person
from transpose_live.ui.settings import default_config, with_settings
from transpose_live.ui.source_bar import SourceBar
from transpose_live.ui.sources import SourceLike, source_key, source_label, source_spec
from transpose_live.ui.status_line import StatusLine
from transpose_live.ui.video_widget import VideoWidget
from transpose_live.ui.view import View
from transpose_live.ui.view_bar import ViewBar
from transpose_live.ui.worker import PipelineWorker, SourceInfo

TITLE = "transpose-live"


class MainWindow(QMainWindow):
    """The desktop app's window.

    config: a RunSpec (None: defaults). sinks (VideoWriter, JsonlWriter) go to the first run, which finishes
    them. pipeline_factory / source_factory / source_options go to each PipelineWorker.
    `start_source(spec)` plays a file, camera index, URL or an opened Source; `stop()` stops (a file then
    resumes where it was on the next Start); closing the window stops the worker and joins its thread.
    """

    def __init__(self, config: RunSpec | None = None, *, pipeline_factory: PipelineFactory | None = None,
                 source_factory: Callable[..., Source] | None = None, source_options: dict[str, Any] | None = None,
                 sinks: Sequence[Sink] = (), view: View | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._config = default_config() if config is None else config
        self._pipeline_factory = pipeline_factory
        self._source_factory = source_factory
        self._source_options = dict(source_options or {})
        self._sinks = list(sinks)       # outputs (recording, JSON) of the first run only
        self._source: SourceLike | None = None
        self._runs = Runs()                                    # the worker playing, those told to stop
        self._error_box: QMessageBox | None = None
        self._result: FrameResult | None = None                # the frame on view
        self._live = False
        self._paused = False
        self._speed: float | None = 1.0
        self._fps = 25.0                                        # the source's frame rate (steps when stopped)
        joint = getattr(self._config, "joint", None)
        self._view = view or View(overlay=bool(getattr(self._config, "attention", False) or joint),
                                  joint=None if joint is None else joint_index(joint))
        self.last_error: str | None = None
        self.frames_shown = 0

        preload(self._config)
        self.setWindowTitle(TITLE)
        self._build_video()
        self._build_inspector()
        self._build_bars()
        self._build_keys()
        self.keeping = Keeping(self, self.view_bar.record_action, worker=lambda: self._runs.worker,
                               say=lambda text, ms: self.statusBar().showMessage(text, ms), fail=self.show_error)
        self.status_line = StatusLine(self.statusBar(), self, getattr(self._config, "model", None),
                                      getattr(self._config, "device", None))
        self.models.show_downloads_in(self.statusBar())     # a model's download: progress, Cancel
        # the status labels read most (tests, scripts), also by their old names
        self.model_label, self.state_label = self.status_line.model_label, self.status_line.state_label
        self.persons_label = self.status_line.persons_label
        self._update_running(False)
        self.resize(1100, 720)
        self.video.setFocus()

    # ----------------------------------------------------------------------------------------- layout

    def _build_video(self) -> None:
        self.video = VideoWidget(self)
        self.video.clicked.connect(self._clicked)
        self.playback = PlaybackBar(self)
        self.playback.play_pause.connect(self.play_pause)
        self.playback.step.connect(self.step)
        self.playback.seek.connect(self.seek)
        self.playback.speed_changed.connect(self.set_speed)
        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.video, 1)
        column.addWidget(self.playback)
        self.setCentralWidget(central)

    def _build_inspector(self) -> None:
        self.inspector = InspectorPanel(self)
        self.inspector.set_view(self._view)
        self.inspector.view_changed.connect(self._panel_changed)
        self.inspector_dock = QDockWidget("Attention inspector", self)
        self.inspector_dock.setObjectName("inspector-dock")
        self.inspector_dock.setWidget(self.inspector)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.inspector_dock)
        self.inspector_dock.hide()

    def _build_bars(self) -> None:
        sources = SourceBar(self)
        sources.chosen.connect(self.start_source)
        sources.start_stop.connect(self._start_or_stop)
        sources.problem.connect(self.show_error)
        self.models = ModelPicker(str(getattr(self._config, "model", "default")),
                                  str(getattr(self._config, "device", "auto")), self)
        self.models.model_chosen.connect(lambda model, weights: self.set_model(model=model, weights=weights))
        self.models.device_chosen.connect(lambda device: self.set_model(device=device))
        sources.addWidget(self.models)
        self.addToolBar(sources)
        self.source_bar = sources
        self.camera_spin, self.model_box = sources.camera_spin, self.models.model_box

        view = ViewBar(self, self.inspector_dock, attention=self._view.overlay,
                       smooth=bool(getattr(self._config, "smooth", True)))
        view.attention_action.toggled.connect(self.set_attention)
        view.smooth_action.toggled.connect(self.set_smooth)
        view.screenshot_action.triggered.connect(lambda: self.save_screenshot())
        view.export_action.triggered.connect(lambda: self.export_poses())
        self.addToolBarBreak()              # a second row: the two bars do not fit side by side
        self.addToolBar(view)
        self.view_bar = view
        self.attention_action, self.inspector_action = view.attention_action, view.inspector_action
        self.smooth_action = view.smooth_action
        # the per-layer strip is computed only while the inspector is open
        self.inspector_dock.visibilityChanged.connect(lambda on: self.set_view(self._view.replace(strip=on)))

    def _build_keys(self) -> None:
        self.play_action = app_action(self, "Play / pause", self.play_pause, Qt.Key.Key_Space)
        self.back_action = app_action(self, "Frame back", lambda: self.step(-1), Qt.Key.Key_Left)
        self.forward_action = app_action(self, "Frame forward", lambda: self.step(1), Qt.Key.Key_Right)
        self.next_person_action = app_action(self, "Next person", self.next_person, Qt.Key.Key_Tab)

    # ----------------------------------------------------------------------------------------- control

    @property
    def worker(self) -> PipelineWorker | None:
        return self._runs.worker

    @property
    def source(self) -> SourceLike | None:
        return self._source

    @property
    def running(self) -> bool:
        return self._runs.worker is not None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def view(self) -> View:
        return self._view

    @property
    def config(self) -> RunSpec:
        return self._config

    @property
    def retired(self) -> int:
        """Workers told to stop whose threads have not finished yet."""
        return self._runs.retired

    def set_source(self, source: SourceLike) -> None:
        """Choose what Start plays, without starting."""
        self._source = source
        self.setWindowTitle(f"{TITLE} — {source_label(source)}")
        self.source_bar.show_source(source)

    def start_source(self, source: SourceLike | None = None, *, start: float | None = None,
                     paused: bool | None = None) -> bool:
        """Play `source` (None: the current one; a file goes on where Stop left it, or at `start` seconds),
        replacing what plays now. Returns at once (the model loads in the worker); False (error shown) when
        the worker cannot be made."""
        if source is not None:
            if source_spec(source) != source_key(self._source) and source != self._source:
                self.keeping.pose_log.clear()        # a new session
            self.set_source(source)
        if self._source is None:
            self.show_error("choose a source first: a video file, a camera or a stream URL")
            return False
        self._retire_current()
        if start is None:
            start = self._runs.resume_at(source_key(self._source))
        if paused is not None:
            self._paused = paused
        self.video.clear(placeholder=f"starting {source_label(self._source)}…")
        try:
            worker = PipelineWorker(self._source, self._config, source_options=self._source_options,
                                    pipeline_factory=self._pipeline_factory, source_factory=self._source_factory,
                                    sinks=self._sinks, start=start, speed=self._speed, paused=self._paused,
                                    view=self._view, pose_log=self.keeping.pose_log,
                                    recorder=self.keeping.recorder)
        except TransposeLiveError as exc:
            self.show_error(str(exc))
            return False
        self._sinks = []
        # an opened Source is used once; later starts reopen it from its path / URL / index
        spec = source_spec(self._source)
        if not isinstance(self._source, (str, int)) and spec is not None:
            self._source = spec
        worker.frame_ready.connect(self._on_frame)
        worker.stats.connect(self._on_stats)
        worker.info.connect(self._on_info)
        worker.error.connect(self._on_error)
        worker.state.connect(self._on_state)
        worker.inspected.connect(self._on_inspected)
        worker.finished.connect(self._on_finished)
        self.frames_shown = 0
        self.last_error = None
        self._runs.begin(worker)
        self.statusBar().showMessage(f"starting {source_label(self._source)} (loading the model)…")
        self._update_running(True)
        return True

    def stop(self) -> None:
        """Stop playing; returns at once. A file's next Start goes on from here."""
        worker = self.worker
        if worker is None:
            return
        if not worker.live and worker.position is not None and not worker.ended:
            self._runs.stopped_at(source_key(self._source), worker.position + worker.frame_step)
        self._retire_current()
        self.statusBar().showMessage("stopped")

    def _retire_current(self) -> None:
        """Tell the running worker to stop and forget it; its thread is dropped when it has finished."""
        self._runs.retire_current()
        self._update_running(False)

    def shutdown(self) -> None:
        """Stop everything and join every pipeline thread (bounded wait): closing the window only."""
        self.models.downloads.shutdown()          # a model download is cancelled (bounded wait)
        self._retire_current()
        self.keeping.finish_recording(wait=True)
        self._runs.join_all()

    def _start_or_stop(self) -> None:
        if self.running:
            self.stop()
        else:
            self.start_source()

    def _update_running(self, running: bool) -> None:
        self.source_bar.set_running(running)
        self.playback.set_paused(self._paused or not running)

    # ---------------------------------------------------------------------------------------- playback

    def play_pause(self) -> None:
        """Space: pause or go on (a stopped source starts, where it was)."""
        worker = self._runs.worker
        if worker is None:
            self.start_source()
            return
        if self._live:
            return
        self._paused = not self._paused
        worker.pause() if self._paused else worker.play()
        self.playback.set_paused(self._paused)
        self.statusBar().showMessage("paused" if self._paused else "playing", 2000)

    def step(self, frames: int) -> None:
        """← / →: one frame back (run again) or forward; pauses."""
        if self._live:
            return
        self._paused = True
        self.playback.set_paused(True)
        if self.worker is not None:
            self.worker.step(frames)
        elif self._source is not None and self._result is not None:     # stopped or finished: from the frame on view
            self.start_source(start=max(0.0, self._result.timestamp + frames / self._fps), paused=True)

    def seek(self, seconds: float) -> None:
        """Go to `seconds` into the file (a finished file starts again there)."""
        if self._live or self._source is None:
            return
        if self.worker is None:
            self.start_source(start=seconds)
        else:
            self.worker.seek(seconds)
        self.playback.set_position(seconds)

    def set_speed(self, speed: float | None) -> None:
        self._speed = speed
        self.playback.set_speed(speed)
        if self.worker is not None:
            self.worker.set_speed(speed)

    def set_model(self, model: str | None = None, weights: str | None = None, device: str | None = None) -> None:
        """Another model or device: the playing source goes on where it is with it, loaded in the new
        worker's thread (the window stays responsive)."""
        changes: dict[str, Any] = {}
        if model is not None:
            changes.update(model=model, weights=weights)
        if device is not None:
            changes["device"] = device
        self._config = with_settings(self._config, **changes)
        self.models.configured = str(self._config.model)
        self.status_line.show_model(self._config.model, self._config.device, loading=True)
        if self.worker is not None:
            position = None if self.worker.live else self.worker.position
            self.start_source(start=position, paused=self._paused)

    # ---------------------------------------------------------------------------------------- overlay

    @pyqtSlot(bool)
    def set_attention(self, on: bool) -> None:
        if self.attention_action.isChecked() != on:
            self.attention_action.setChecked(on)      # re-enters through toggled
            return
        self.set_view(self._view.replace(overlay=on))
        self.statusBar().showMessage("attention maps on" if on else "attention maps off", 3000)

    @pyqtSlot(bool)
    def set_smooth(self, on: bool) -> None:
        if self.smooth_action.isChecked() != on:
            self.smooth_action.setChecked(on)
            return
        if self.worker is not None:
            self.worker.set_smooth(on)
        self.statusBar().showMessage("smoothing on" if on else "smoothing off", 3000)

    def set_view(self, view: View) -> None:
        """What the overlay shows; a paused frame is drawn again with it."""
        changed = view != self._view
        self._view = view
        self.inspector.set_view(view)
        if self.attention_action.isChecked() != view.overlay:
            set_checked_quietly(self.attention_action, view.overlay)
        worker = self.worker
        if worker is not None:
            worker.set_view(view)
            if changed and self._paused and self._result is not None and not self._live:
                worker.seek(self._result.timestamp, paused=True)    # redraw the frame on view

    def _panel_changed(self, view: View) -> None:
        # choosing in the inspector turns the maps on (they are what it shows)
        self.set_view(view.replace(overlay=True, strip=self._view.strip, person=self._view.person))

    def select_person(self, key: int | None) -> None:
        self.set_view(self._view.replace(person=key))

    def next_person(self) -> None:
        """Tab: the next person in view."""
        key = next_person(self._poses(), self._view)
        if key is not None:
            self.select_person(key)

    def _clicked(self, point: QPointF) -> None:
        """A click on a joint of the selected person picks that joint; on a person, selects them."""
        view = clicked(self._poses(), self._view, point.x(), point.y())
        if view is not None:
            self.set_view(view)

    def _poses(self) -> list[Pose]:
        return list(getattr(self._result, "poses", None) or [])

    # ------------------------------------------------------------------------------------ keeping things

    def save_screenshot(self, path: str | Path | None = None) -> Path | None:
        """A picture of the whole window (Ctrl+S asks where)."""
        return self.keeping.save_screenshot(path)

    def start_recording(self, path: str | Path, fps: float | None = None) -> None:
        """Record the annotated view (what the worker shows, overlay included) from the next frame on."""
        self.keeping.start_recording(path, fps)

    def stop_recording(self) -> threading.Thread | None:
        """Stop recording; the file is finished in a background thread (returned)."""
        return self.keeping.stop_recording()

    def export_poses(self, path: str | Path | None = None) -> int:
        """This session's poses as JSON Lines (the `video --json` format). Returns the lines written."""
        return self.keeping.export_poses(path)

    # ------------------------------------------------------------------------------------ worker signals

    def _from_current(self) -> bool:
        """Whether the signal comes from the worker now playing (not from one being replaced)."""
        return self._runs.is_current(self.sender())

    @pyqtSlot(QImage, FrameResult)
    def _on_frame(self, image: QImage, result: FrameResult) -> None:
        if not self._from_current():
            return
        self.video.set_image(image)
        self._result = result
        self.frames_shown += 1
        self.playback.set_position(getattr(result, "timestamp", None))
        if self.frames_shown == 1:
            self.statusBar().clearMessage()

    @pyqtSlot(dict)
    def _on_stats(self, stats: dict[str, Any]) -> None:
        if self._from_current():
            self.status_line.show_stats(stats)

    @pyqtSlot(dict)
    def _on_info(self, info: SourceInfo) -> None:
        if not self._from_current():
            return
        self.status_line.show_model(info.get("model"), info.get("device"))
        self.models.running = info.get("model")
        self._live = bool(info.get("live"))
        self._fps = self.keeping.fps = float(info.get("fps") or 25.0)
        self.playback.set_live(self._live)
        self.playback.set_duration(info.get("duration"))
        size = info.get("size")
        text = info.get("source", "")
        if size:
            text += f" ({size[0]}x{size[1]})"
        self.setWindowTitle(f"{TITLE} — {text}")
        self.statusBar().showMessage(f"playing {text}", 3000)

    @pyqtSlot(str)
    def _on_state(self, text: str) -> None:
        if self._from_current():
            self.status_line.show_state(text)

    @pyqtSlot(object, object)
    def _on_inspected(self, strip: QImage | None, facts: dict[str, Any]) -> None:
        if self._from_current():
            self.inspector.show_facts(strip, facts)

    @pyqtSlot(str)
    def _on_error(self, message: str) -> None:
        if not self._runs.is_ours(self.sender()):
            return
        if self.video.image is None:
            self.video.clear(placeholder=f"could not play: {message}")
        self.show_error(message)

    @pyqtSlot()
    def _on_finished(self) -> None:
        worker = self._runs.finished(self.sender())
        if worker is None:
            return                         # a retired worker: its thread's finished signal forgets it
        if worker.ended:
            self._runs.resume_at(source_key(self._source))     # Start plays it again from the beginning
        self._update_running(False)
        self.status_line.show_state("")
        if self.last_error is None:
            self.statusBar().showMessage("finished")

    def show_error(self, message: str) -> None:
        """One line in the status bar and a (non-modal) message box; the window stays usable."""
        self.last_error = message
        self.statusBar().showMessage(f"error: {message}")
        if self._error_box is None:
            box = QMessageBox(QMessageBox.Icon.Warning, TITLE, message, QMessageBox.StandardButton.Ok, self)
            box.setWindowModality(Qt.WindowModality.NonModal)
            self._error_box = box
        else:
            self._error_box.setText(message)
        self._error_box.show()

    # ------------------------------------------------------------------------------------------ closing

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        if self._error_box is not None:
            self._error_box.close()
        super().closeEvent(event)

"""MainWindow: the video with skeletons, playback, the attention inspector, source and model controls.

All pose work happens in a PipelineWorker on its own QThread; the window only reacts to the worker's
signals and calls its thread-safe methods. Nothing here waits for a worker: stopping or switching a source
retires the old worker (it is told to stop; its thread is forgotten once it has finished), and a new model
or device is loaded by the new worker in its thread. Only closing the window joins the threads.

Every shortcut is an application-wide action, so it works whatever widget has the focus (text boxes
still take the keys they type).
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtCore import QPointF, Qt, pyqtSlot
from PyQt6.QtGui import QAction, QCloseEvent, QImage, QKeySequence
from PyQt6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from transpose_live.errors import TransposeLiveError
from transpose_live.ui.inspector_panel import InspectorPanel
from transpose_live.ui.keep import PoseLog, Recorder
from transpose_live.ui.playback_bar import PlaybackBar
from transpose_live.ui.video_widget import VideoWidget
from transpose_live.ui.view import View, person_key, selected_pose
from transpose_live.ui.worker import (
    PipelineWorker,
    default_config,
    launch,
    shutdown,
    source_label,
    source_spec,
    with_settings,
)

VIDEO_FILTER = "Videos (*.mp4 *.mkv *.mov *.avi *.webm *.m4v *.mpg *.mpeg *.ts);;All files (*)"
WEIGHTS_FILTER = "Checkpoints (*.pth *.pt *.ckpt);;All files (*)"
TITLE = "transpose-live"
DEVICES = ("auto", "cpu", "cuda")
WEIGHTS_FILE = "weights file…"
JOINT_CLICK_PX = 12          # a click this close (image pixels, at least) to a joint of the selected person picks it


class MainWindow(QMainWindow):
    """The desktop app's window.

    config: a RunSpec (None: defaults). sinks (VideoWriter, JsonlWriter) go to the first run, which finishes
    them. pipeline_factory / source_factory / source_options go to each PipelineWorker.
    `start_source(spec)` plays a file, camera index, URL or an opened Source; `stop()` stops (a file then
    resumes where it was on the next Start); closing the window stops the worker and joins its thread.
    """

    def __init__(self, config: Any = None, *, pipeline_factory: Callable[..., Any] | None = None,
                 source_factory: Callable[..., Any] | None = None, source_options: dict | None = None,
                 sinks: Any = (), view: View | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._config = default_config() if config is None else config
        self._pipeline_factory = pipeline_factory
        self._source_factory = source_factory
        self._source_options = dict(source_options or {})
        self._sinks = list(sinks)       # outputs (recording, JSON) of the first run only
        self._source: Any = None
        self._worker: PipelineWorker | None = None
        self._thread = None
        self._retired: list[tuple[PipelineWorker, Any]] = []   # told to stop, not finished yet
        self._resume: dict[Any, float] = {}                    # file -> where Start goes on after Stop
        self._error_box: QMessageBox | None = None
        self._result: Any = None                               # the FrameResult on view
        self._live = False
        self._paused = False
        self._speed: float | None = 1.0
        self._fps = 25.0                                        # the source's frame rate (steps when stopped)
        joint = getattr(self._config, "joint", None)
        self._view = view or View(overlay=bool(getattr(self._config, "attention", False) or joint),
                                  joint=None if joint is None else _joint_index(joint))
        self.pose_log = PoseLog()
        self.recorder: Recorder | None = None
        self.last_error: str | None = None
        self.last_saved: Path | None = None
        self.frames_shown = 0

        _preload(self._config)
        self.setWindowTitle(TITLE)
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
        self.inspector = InspectorPanel(self)
        self.inspector.set_view(self._view)
        self.inspector.view_changed.connect(self._panel_changed)
        self.inspector_dock = QDockWidget("Attention inspector", self)
        self.inspector_dock.setObjectName("inspector-dock")
        self.inspector_dock.setWidget(self.inspector)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.inspector_dock)
        self.inspector_dock.hide()
        self._build_toolbars()
        # the per-layer strip is computed only while the inspector is open
        self.inspector_dock.visibilityChanged.connect(lambda on: self.set_view(self._view.replace(strip=on)))
        self._build_keys()
        self._build_status_bar()
        self._update_running(False)
        self.resize(1100, 720)
        self.video.setFocus()

    # ----------------------------------------------------------------------------------------- layout

    def _action(self, text: str, slot, key=None, tip: str | None = None, checkable: bool = False,
                checked: bool = False) -> QAction:
        """An action whose shortcut works whatever widget has the focus."""
        action = QAction(text, self)
        if key is not None:
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        if tip:
            action.setToolTip(tip)
        if checkable:
            action.setCheckable(True)
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(slot)
        self.addAction(action)           # reachable by its key even when on no toolbar
        return action

    def _build_toolbars(self) -> None:
        bar = QToolBar("Source", self)
        bar.setObjectName("source-toolbar")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.open_action = self._action("Open file…", self._choose_file, QKeySequence.StandardKey.Open,
                                        "Play a video file (Ctrl+O)")
        bar.addAction(self.open_action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Camera ", self))
        self.camera_spin = QSpinBox(self)
        self.camera_spin.setRange(0, 99)
        self.camera_spin.setToolTip("Camera index (0 is the first camera)")
        self.camera_spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)    # never holds the keys from the start
        bar.addWidget(self.camera_spin)
        self.camera_action = self._action("Open camera", lambda: self.start_source(self.camera_spin.value()))
        bar.addAction(self.camera_action)
        bar.addSeparator()
        self.url_edit = QLineEdit(self)
        self.url_edit.setPlaceholderText("rtsp://camera/stream")
        self.url_edit.setClearButtonEnabled(True)
        self.url_edit.setMinimumWidth(200)
        self.url_edit.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.url_edit.returnPressed.connect(self._connect_url)
        bar.addWidget(self.url_edit)
        self.url_action = self._action("Connect", self._connect_url, tip="Play the stream URL (RTSP, HTTP, …)")
        bar.addAction(self.url_action)
        bar.addSeparator()
        self.start_action = self._action("Start", self._start_or_stop, tip="Start the chosen source")
        bar.addAction(self.start_action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Model ", self))
        self.model_box = QComboBox(self)
        self.model_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.model_box.setToolTip("Pose model: installed / downloadable weights, or a checkpoint file")
        self._fill_models()
        self.model_box.activated.connect(self._model_chosen)
        bar.addWidget(self.model_box)
        self.device_box = QComboBox(self)
        self.device_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.device_box.addItems(DEVICES)
        device = str(getattr(self._config, "device", "auto"))
        if device not in DEVICES:
            self.device_box.addItem(device)
        self.device_box.setCurrentText(device)
        self.device_box.activated.connect(lambda _: self.set_model(device=self.device_box.currentText()))
        bar.addWidget(self.device_box)

        view_bar = QToolBar("View", self)
        view_bar.setObjectName("view-toolbar")
        view_bar.setMovable(False)
        self.addToolBarBreak()              # a second row: the two bars do not fit side by side
        self.addToolBar(view_bar)
        self.attention_action = self._action(
            "Attention maps", self.set_attention, Qt.Key.Key_A,
            "Show where the model looks for each joint: its dependency areas (A)", True, self._view.overlay)
        view_bar.addAction(self.attention_action)
        self.inspector_action = self.inspector_dock.toggleViewAction()
        self.inspector_action.setText("Inspector")
        self.inspector_action.setShortcut(QKeySequence(Qt.Key.Key_I))
        self.inspector_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.inspector_action.setToolTip("Pick the person, joint and layer; every layer side by side (I)")
        self.addAction(self.inspector_action)
        view_bar.addAction(self.inspector_action)
        self.smooth_action = self._action("Smoothing", self.set_smooth, Qt.Key.Key_S,
                                          "Kalman smoothing of the joints over time (S)", True,
                                          bool(getattr(self._config, "smooth", True)))
        view_bar.addAction(self.smooth_action)
        view_bar.addSeparator()
        self.screenshot_action = self._action("Screenshot", lambda: self.save_screenshot(),
                                              QKeySequence.StandardKey.Save, "Save a picture of the window (Ctrl+S)")
        view_bar.addAction(self.screenshot_action)
        self.record_action = self._action("Record", self._record_toggled, QKeySequence("Ctrl+R"),
                                          "Record the annotated view to a video (Ctrl+R starts / stops)", True)
        view_bar.addAction(self.record_action)
        self.export_action = self._action("Export poses…", lambda: self.export_poses(), QKeySequence("Ctrl+E"),
                                          "Save this session's poses as JSON Lines, as `video --json` (Ctrl+E)")
        view_bar.addAction(self.export_action)

    def _build_keys(self) -> None:
        self.play_action = self._action("Play / pause", self.play_pause, Qt.Key.Key_Space)
        self.back_action = self._action("Frame back", lambda: self.step(-1), Qt.Key.Key_Left)
        self.forward_action = self._action("Frame forward", lambda: self.step(1), Qt.Key.Key_Right)
        self.next_person_action = self._action("Next person", self.next_person, Qt.Key.Key_Tab)

    def _fill_models(self) -> None:
        from transpose_live.model import hub

        current = str(getattr(self._config, "model", "default"))
        names = list(hub.entries())
        if current not in names:
            names.insert(0, current)
        self.model_box.addItems(names)
        self.model_box.addItem(WEIGHTS_FILE)
        self.model_box.setCurrentText(current)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.model_label = QLabel(self._model_text(getattr(self._config, "model", None),
                                                   getattr(self._config, "device", None)), self)
        self.fps_label = QLabel("fps –", self)
        self.latency_label = QLabel("latency –", self)
        self.persons_label = QLabel("persons –", self)
        self.dropped_label = QLabel("dropped –", self)
        self.state_label = QLabel("", self)
        for label in (self.state_label, self.model_label, self.fps_label, self.latency_label, self.persons_label,
                      self.dropped_label):
            label.setContentsMargins(6, 0, 6, 0)
            status.addPermanentWidget(label)
        status.showMessage("Open a video file, a camera or a stream URL")

    @staticmethod
    def _model_text(model: Any, device: Any) -> str:
        return f"model {model or 'default'} · {device or 'auto'}"

    # ----------------------------------------------------------------------------------------- control

    @property
    def worker(self) -> PipelineWorker | None:
        return self._worker

    @property
    def source(self) -> Any:
        return self._source

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def view(self) -> View:
        return self._view

    @property
    def config(self) -> Any:
        return self._config

    @property
    def retired(self) -> int:
        """Workers told to stop whose threads have not finished yet."""
        return len(self._retired)

    def set_source(self, source: Any) -> None:
        """Choose what Start plays, without starting."""
        self._source = source
        self.setWindowTitle(f"{TITLE} — {source_label(source)}")
        if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
            self.camera_spin.setValue(int(source))
        elif isinstance(source, str) and "://" in source:
            self.url_edit.setText(source)

    def start_source(self, source: Any = None, *, start: float | None = None, paused: bool | None = None) -> bool:
        """Play `source` (None: the current one; a file goes on where Stop left it, or at `start` seconds),
        replacing what plays now. Returns at once (the model loads in the worker); False (error shown) when
        the worker cannot be made."""
        if source is not None:
            if source_spec(source) != self._key(self._source) and source != self._source:
                self.pose_log.clear()        # a new session
            self.set_source(source)
        if self._source is None:
            self.show_error("choose a source first: a video file, a camera or a stream URL")
            return False
        self._retire_current()
        key = self._key(self._source)
        if start is None:
            start = self._resume.pop(key, None)
        if paused is not None:
            self._paused = paused
        self.video.clear(placeholder=f"starting {source_label(self._source)}…")
        try:
            worker = PipelineWorker(self._source, self._config, source_options=self._source_options,
                                    pipeline_factory=self._pipeline_factory, source_factory=self._source_factory,
                                    sinks=self._sinks, start=start, speed=self._speed, paused=self._paused,
                                    view=self._view, pose_log=self.pose_log, recorder=self.recorder)
        except TransposeLiveError as exc:
            self.show_error(str(exc))
            return False
        self._sinks = []
        # an opened Source is used once; later starts reopen it from its path / URL / index
        if not isinstance(self._source, (str, int)) and source_spec(self._source) is not None:
            self._source = source_spec(self._source)
        worker.frame_ready.connect(self._on_frame)
        worker.stats.connect(self._on_stats)
        worker.info.connect(self._on_info)
        worker.error.connect(self._on_error)
        worker.state.connect(self._on_state)
        worker.inspected.connect(self._on_inspected)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.frames_shown = 0
        self.last_error = None
        self._thread = launch(worker)
        self.statusBar().showMessage(f"starting {source_label(self._source)} (loading the model)…")
        self._update_running(True)
        return True

    @staticmethod
    def _key(source: Any) -> Any:
        spec = source if isinstance(source, (str, int)) or source is None else source_spec(source)
        return str(spec) if spec is not None else None

    def stop(self) -> None:
        """Stop playing; returns at once. A file's next Start goes on from here."""
        worker = self._worker
        if worker is None:
            return
        if not worker.live and worker.position is not None and not worker.ended:
            self._resume[self._key(self._source)] = worker.position + worker.frame_step
        self._retire_current()
        self.statusBar().showMessage("stopped")

    def _retire_current(self) -> None:
        """Tell the running worker to stop and forget it; its thread is dropped when it has finished."""
        worker, thread = self._worker, self._thread
        self._worker, self._thread = None, None
        if worker is not None:
            self._retire(worker, thread)
            worker.stop()
        self._update_running(False)

    def _retire(self, worker: PipelineWorker, thread: Any) -> None:
        """Keep the worker and its QThread alive until the thread has finished (a QThread deleted while
        running aborts the process), then forget them; never waits here."""
        self._retired.append((worker, thread))
        thread.finished.connect(lambda w=worker: self._forget(w))
        if thread.isFinished():
            self._forget(worker)

    def _forget(self, worker: PipelineWorker) -> None:
        for item in [item for item in self._retired if item[0] is worker]:
            item[1].wait(100)              # finished: returns at once (the thread's last instructions)
            self._retired.remove(item)

    def shutdown(self) -> None:
        """Stop everything and join every pipeline thread (bounded wait): closing the window only."""
        self._retire_current()
        self._finish_recording(wait=True)
        for worker, thread in list(self._retired):
            shutdown(worker, thread)
        self._retired.clear()

    # ---------------------------------------------------------------------------------------- playback

    def play_pause(self) -> None:
        """Space: pause or go on (a stopped source starts, where it was)."""
        if self._worker is None:
            self.start_source()
            return
        if self._live:
            return
        self._paused = not self._paused
        self._worker.pause() if self._paused else self._worker.play()
        self.playback.set_paused(self._paused)
        self.statusBar().showMessage("paused" if self._paused else "playing", 2000)

    def step(self, frames: int) -> None:
        """← / →: one frame back (run again) or forward; pauses."""
        if self._live:
            return
        self._paused = True
        self.playback.set_paused(True)
        if self._worker is not None:
            self._worker.step(frames)
        elif self._source is not None and self._result is not None:     # stopped or finished: from the frame on view
            self.start_source(start=max(0.0, self._result.timestamp + frames / self._fps), paused=True)

    def seek(self, seconds: float) -> None:
        """Go to `seconds` into the file (a finished file starts again there)."""
        if self._live or self._source is None:
            return
        if self._worker is None:
            self.start_source(start=seconds)
        else:
            self._worker.seek(seconds)
        self.playback.set_position(seconds)

    def set_speed(self, speed: float | None) -> None:
        self._speed = speed
        self.playback.set_speed(speed)
        if self._worker is not None:
            self._worker.set_speed(speed)

    def set_model(self, model: str | None = None, weights: str | None = None, device: str | None = None) -> None:
        """Another model or device: the playing source goes on where it is with it, loaded in the new
        worker's thread (the window stays responsive)."""
        changes = {}
        if model is not None:
            changes.update(model=model, weights=weights)
        if device is not None:
            changes["device"] = device
        self._config = with_settings(self._config, **changes)
        self.model_label.setText(self._model_text(self._config.model, self._config.device) + " (loading…)")
        if self._worker is not None:
            position = None if self._worker.live else self._worker.position
            self.start_source(start=position, paused=self._paused)

    def _model_chosen(self, index: int) -> None:
        name = self.model_box.itemText(index)
        if name != WEIGHTS_FILE:
            self.set_model(model=name)
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open a checkpoint", "", WEIGHTS_FILTER)
        if not path:
            self.model_box.setCurrentText(str(self._config.model))
            return
        preset = self.model_label.property("preset") or str(self._config.model)
        self.set_model(model=preset, weights=path)

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
        if self._worker is not None:
            self._worker.set_smooth(on)
        self.statusBar().showMessage("smoothing on" if on else "smoothing off", 3000)

    def set_view(self, view: View) -> None:
        """What the overlay shows; a paused frame is drawn again with it."""
        changed = view != self._view
        self._view = view
        self.inspector.set_view(view)
        if self.attention_action.isChecked() != view.overlay:
            self.attention_action.blockSignals(True)
            self.attention_action.setChecked(view.overlay)
            self.attention_action.blockSignals(False)
        if self._worker is not None:
            self._worker.set_view(view)
            if changed and self._paused and self._result is not None and not self._live:
                self._worker.seek(self._result.timestamp, paused=True)    # redraw the frame on view

    def _panel_changed(self, view: View) -> None:
        # choosing in the inspector turns the maps on (they are what it shows)
        self.set_view(view.replace(overlay=True, strip=self._view.strip, person=self._view.person))

    def select_person(self, key: int | None) -> None:
        self.set_view(self._view.replace(person=key))

    def next_person(self) -> None:
        """Tab: the next person in view."""
        poses = getattr(self._result, "poses", None) or []
        if not poses:
            return
        picked = selected_pose(poses, self._view.person)
        index = 0 if picked is None else (picked[0] + 1) % len(poses)
        self.select_person(person_key(poses, index))

    def _clicked(self, point: QPointF) -> None:
        """A click on a joint of the selected person picks that joint; on a person, selects them."""
        import numpy as np

        poses = getattr(self._result, "poses", None) or []
        x, y = point.x(), point.y()
        picked = selected_pose(poses, self._view.person)
        if picked is not None:
            kp = np.asarray(picked[1].keypoints, dtype=np.float64)
            size = max(picked[1].box[2:]) if picked[1].box is not None else 100.0
            dist = np.hypot(kp[:, 0] - x, kp[:, 1] - y)
            dist[~np.isfinite(dist)] = np.inf
            j = int(np.argmin(dist))
            if dist[j] <= max(JOINT_CLICK_PX, 0.06 * size):
                self.set_view(self._view.replace(joint=j, overlay=True))
                return
        inside = [(p.box[2] * p.box[3], i) for i, p in enumerate(poses)
                  if p.box is not None and p.box[0] <= x <= p.box[0] + p.box[2]
                  and p.box[1] <= y <= p.box[1] + p.box[3]]
        if inside:
            self.select_person(person_key(poses, min(inside)[1]))

    # ------------------------------------------------------------------------------------ keeping things

    def save_screenshot(self, path: str | Path | None = None) -> Path | None:
        """A picture of the whole window (Ctrl+S asks where)."""
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save a screenshot", "transpose-live.png",
                                                    "Pictures (*.png *.jpg)")
            if not chosen:
                return None
            path = chosen
        path = Path(path)
        if not self.grab().save(str(path)):
            self.show_error(f"could not save the screenshot to {path}")
            return None
        self.last_saved = path
        self.statusBar().showMessage(f"saved {path}", 4000)
        return path

    def start_recording(self, path: str | Path, fps: float | None = None) -> None:
        """Record the annotated view (what the worker shows, overlay included) from the next frame on."""
        self._finish_recording()
        self.recorder = Recorder(path, fps or 25.0)
        if self._worker is not None:
            self._worker.start_recording(self.recorder)
        self.record_action.blockSignals(True)
        self.record_action.setChecked(True)
        self.record_action.blockSignals(False)
        self.statusBar().showMessage(f"recording to {path}")

    def stop_recording(self) -> threading.Thread | None:
        """Stop recording; the file is finished in a background thread (returned)."""
        thread = self._finish_recording()
        self.record_action.blockSignals(True)
        self.record_action.setChecked(False)
        self.record_action.blockSignals(False)
        return thread

    def _finish_recording(self, wait: bool = False) -> threading.Thread | None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        if self._worker is not None:
            self._worker.stop_recording()

        def finish():
            if recorder.close():
                self.statusBar().showMessage(f"recorded {recorder.frames} frames to {recorder.path}", 4000) \
                    if wait else None

        thread = threading.Thread(target=finish, name="transpose-live recording", daemon=True)
        thread.start()
        if wait:
            thread.join(10)
        return thread

    def _record_toggled(self, on: bool) -> None:
        if not on:
            self.stop_recording()
            return
        path, _ = QFileDialog.getSaveFileName(self, "Record the view to", "transpose-live.mp4", VIDEO_FILTER)
        if not path:
            self.stop_recording()
            return
        self.start_recording(path, fps=self._fps)

    def export_poses(self, path: str | Path | None = None) -> int:
        """This session's poses as JSON Lines (the `video --json` format). Returns the lines written."""
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export the poses", "poses.jsonl", "JSON Lines (*.jsonl)")
            if not chosen:
                return 0
            path = chosen
        try:
            lines = self.pose_log.export(path)
        except TransposeLiveError as exc:
            self.show_error(str(exc))
            return 0
        self.statusBar().showMessage(f"wrote {lines} frames of poses to {path}", 4000)
        return lines

    # ----------------------------------------------------------------------------------- small helpers

    def _update_running(self, running: bool) -> None:
        self.start_action.setText("Stop" if running else "Start")
        self.start_action.setToolTip("Stop (a file goes on from here at the next Start)" if running
                                     else "Start the chosen source (Space)")
        self.playback.set_paused(self._paused or not running)

    def _start_or_stop(self) -> None:
        if self.running:
            self.stop()
        else:
            self.start_source()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", "", VIDEO_FILTER)
        if path:
            self.start_source(path)

    def _connect_url(self) -> None:
        url = self.url_edit.text().strip()
        if not url:
            self.show_error("type a stream URL first, e.g. rtsp://camera/stream")
            return
        self.start_source(url)

    # ------------------------------------------------------------------------------------ worker signals

    def _from_current(self) -> bool:
        """Whether the signal comes from the worker now playing (not from one being replaced)."""
        return self._worker is not None and self.sender() is self._worker

    @pyqtSlot(QImage, object)
    def _on_frame(self, image: QImage, result: Any) -> None:
        if not self._from_current():
            return
        self.video.set_image(image)
        self._result = result
        self.frames_shown += 1
        self.playback.set_position(getattr(result, "timestamp", None))
        if self.frames_shown == 1:
            self.statusBar().clearMessage()

    @pyqtSlot(dict)
    def _on_stats(self, stats: dict) -> None:
        if not self._from_current():
            return
        fps, latency = stats.get("fps"), stats.get("latency_ms")
        self.fps_label.setText(f"fps {fps:.1f}" if fps else "fps –")
        self.latency_label.setText(f"latency {latency:.0f} ms" if latency else "latency –")
        self.persons_label.setText(f"persons {int(stats.get('persons') or 0)}")
        self.dropped_label.setText(f"dropped {int(stats.get('dropped') or 0)}")

    @pyqtSlot(dict)
    def _on_info(self, info: dict) -> None:
        if not self._from_current():
            return
        self.model_label.setText(self._model_text(info.get("model"), info.get("device")))
        self.model_label.setProperty("preset", info.get("model"))
        self._live = bool(info.get("live"))
        self._fps = float(info.get("fps") or 25.0)
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
            self.state_label.setText(text)

    @pyqtSlot(object, object)
    def _on_inspected(self, strip: Any, facts: Any) -> None:
        if self._from_current():
            self.inspector.show_facts(strip, facts)

    @pyqtSlot(str)
    def _on_error(self, message: str) -> None:
        if self.sender() is not self._worker and not any(self.sender() is w for w, _ in self._retired):
            return
        if self.video.image is None:
            self.video.clear(placeholder=f"could not play: {message}")
        self.show_error(message)

    @pyqtSlot()
    def _on_finished(self) -> None:
        if self.sender() is not self._worker:
            return                         # a retired worker: its thread's finished signal forgets it
        worker, thread = self._worker, self._thread
        self._worker, self._thread = None, None
        self._retire(worker, thread)
        if worker.ended:
            self._resume.pop(self._key(self._source), None)     # Start plays it again from the beginning
        self._update_running(False)
        self.state_label.setText("")
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


def _preload(config: Any = None) -> None:
    """Import what every worker needs here, before the window shows: an import of a compiled library in a
    worker's thread holds the interpreter for hundreds of ms at a time (measured: PyAV ~200 ms, OpenVINO
    ~300 ms), which would freeze the window at the first Start. The model's backend runtime too (the one
    `backend` resolves to on the chosen device)."""
    _preload_backend(getattr(config, "backend", "auto"), getattr(config, "device", "auto"))
    import av  # noqa: F401  (FFmpeg's libraries: a dlopen holds the interpreter throughout)

    import transpose_live.detect.ssd  # noqa: F401
    import transpose_live.detect.whole_frame  # noqa: F401
    import transpose_live.live.pipeline  # noqa: F401
    import transpose_live.live.run  # noqa: F401
    import transpose_live.live.smoothing  # noqa: F401  (filterpy, scipy)
    import transpose_live.live.tracking  # noqa: F401
    import transpose_live.media.sinks  # noqa: F401
    import transpose_live.media.sources  # noqa: F401
    import transpose_live.model.loading  # noqa: F401
    import transpose_live.pose.inspector  # noqa: F401

    # A full garbage collection walks every object the process holds (torch, Qt, OpenVINO) with the
    # interpreter held: 130-200 ms, and when a worker's allocations set one off the window froze that long
    # (measured at a model reload). What exists by now lives as long as the window: collected once here,
    # before the window shows, then frozen, the collector leaves it out of every later pass.
    gc.collect()
    gc.freeze()


def _preload_backend(backend: Any, device: Any) -> None:
    import importlib

    from transpose_live.model.backends import resolve_backend
    from transpose_live.model.device import resolve_device

    try:
        name = resolve_backend(str(backend or "auto"), resolve_device(device or "auto"))
    except TransposeLiveError:
        return                   # a bad choice is reported by the worker, in the window
    if name in ("onnxruntime", "openvino"):
        importlib.import_module(name)


def _joint_index(joint: Any) -> int:
    from transpose_live.pose.inspector import joint_index

    return joint_index(joint)

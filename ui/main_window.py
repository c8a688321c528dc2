"""MainWindow: the live video with skeletons, source controls, the attention-map toggle and a status bar.

All pose work happens in a PipelineWorker on its own QThread; the window only reacts to the worker's
signals and calls its thread-safe methods (stop, set_attention, set_smooth).
"""

from __future__ import annotations

from typing import Any, Callable

from PyQt6.QtCore import Qt, pyqtSlot
from PyQt6.QtGui import QAction, QCloseEvent, QImage, QKeySequence
from PyQt6.QtWidgets import (QFileDialog, QLabel, QLineEdit, QMainWindow, QMessageBox, QSpinBox, QToolBar,
                             QWidget)

from transpose_live.errors import TransposeLiveError

from .video_widget import VideoWidget
from .worker import PipelineWorker, default_config, launch, shutdown, source_label, source_spec


VIDEO_FILTER = "Videos (*.mp4 *.mkv *.mov *.avi *.webm *.m4v *.mpg *.mpeg *.ts);;All files (*)"
TITLE = "transpose-live"


class MainWindow(QMainWindow):
    """The desktop app's window.

    config: a RunSpec (None: defaults). pipeline_factory / source_factory / source_options are passed
    to each PipelineWorker (tests give fakes); sinks (VideoWriter, JsonlWriter) go to the first run, which
    finishes them. `start_source(spec)` plays a file, camera index, URL or an
    opened Source; `stop()` stops; closing the window stops the worker and joins its thread.
    """

    def __init__(self, config: Any = None, *, pipeline_factory: Callable[..., Any] | None = None,
                 source_factory: Callable[..., Any] | None = None, source_options: dict | None = None,
                 sinks: Any = (), parent: QWidget | None = None):
        super().__init__(parent)
        self._config = default_config() if config is None else config
        self._pipeline_factory = pipeline_factory
        self._source_factory = source_factory
        self._source_options = dict(source_options or {})
        self._sinks = list(sinks)       # outputs (recording, JSON) of the first run only
        self._source: Any = None
        self._worker: PipelineWorker | None = None
        self._thread = None
        self._retired: list[tuple[PipelineWorker, Any]] = []   # stopping asynchronously
        self._error_box: QMessageBox | None = None
        self.last_error: str | None = None
        self.frames_shown = 0

        self.setWindowTitle(TITLE)
        self.video = VideoWidget(self)
        self.setCentralWidget(self.video)
        self._build_toolbar()
        self._build_status_bar()
        self._update_running(False)
        self.resize(1100, 720)

    # ----------------------------------------------------------------------------------------- layout

    def _build_toolbar(self) -> None:
        bar = QToolBar("Source", self)
        bar.setObjectName("source-toolbar")
        bar.setMovable(False)
        self.addToolBar(bar)

        self.open_action = QAction("Open file…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.setToolTip("Play a video file (Ctrl+O)")
        self.open_action.triggered.connect(self._choose_file)
        bar.addAction(self.open_action)
        bar.addSeparator()

        bar.addWidget(QLabel(" Camera ", self))
        self.camera_spin = QSpinBox(self)
        self.camera_spin.setRange(0, 99)
        self.camera_spin.setToolTip("Camera index (0 is the first camera)")
        bar.addWidget(self.camera_spin)
        self.camera_action = QAction("Open camera", self)
        self.camera_action.triggered.connect(lambda: self.start_source(self.camera_spin.value()))
        bar.addAction(self.camera_action)
        bar.addSeparator()

        self.url_edit = QLineEdit(self)
        self.url_edit.setPlaceholderText("rtsp://camera/stream")
        self.url_edit.setClearButtonEnabled(True)
        self.url_edit.setMinimumWidth(220)
        self.url_edit.returnPressed.connect(self._connect_url)
        bar.addWidget(self.url_edit)
        self.url_action = QAction("Connect", self)
        self.url_action.setToolTip("Play the stream URL (RTSP, HTTP, …)")
        self.url_action.triggered.connect(self._connect_url)
        bar.addAction(self.url_action)
        bar.addSeparator()

        self.start_action = QAction("Start", self)
        self.start_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.start_action.triggered.connect(self._start_or_stop)
        bar.addAction(self.start_action)
        bar.addSeparator()

        self.attention_action = self._toggle(
            bar, "Attention maps", bool(getattr(self._config, "attention", False)), Qt.Key.Key_A,
            "Show where the model looks for each joint: its dependency areas (A)", self.set_attention)
        self.smooth_action = self._toggle(
            bar, "Smoothing", bool(getattr(self._config, "smooth", True)), Qt.Key.Key_S,
            "Kalman smoothing of the joints over time (S)", self.set_smooth)

    def _toggle(self, bar: QToolBar, text: str, checked: bool, key: Qt.Key, tip: str, slot) -> QAction:
        """A checkable toolbar action with a one-key shortcut."""
        action = QAction(text, self)
        action.setCheckable(True)
        action.setChecked(checked)
        action.setShortcut(QKeySequence(key))
        action.setToolTip(tip)
        action.toggled.connect(slot)
        bar.addAction(action)
        return action

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.model_label = QLabel(self._model_text(getattr(self._config, "model", None),
                                                   getattr(self._config, "device", None)), self)
        self.fps_label = QLabel("fps –", self)
        self.persons_label = QLabel("persons –", self)
        self.dropped_label = QLabel("dropped –", self)
        for label in (self.model_label, self.fps_label, self.persons_label, self.dropped_label):
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

    def set_source(self, source: Any) -> None:
        """Choose what Start plays, without starting."""
        self._source = source
        label = source_label(source)
        self.setWindowTitle(f"{TITLE} — {label}")
        if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
            self.camera_spin.setValue(int(source))
        elif isinstance(source, str) and "://" in source:
            self.url_edit.setText(source)

    def start_source(self, source: Any = None) -> bool:
        """Play `source` (None: the current one), replacing what plays now. False (error shown) on failure."""
        if source is not None:
            self.set_source(source)
        if self._source is None:
            self.show_error("choose a source first: a video file, a camera or a stream URL")
            return False
        self._join_current()
        self.video.clear(placeholder=f"starting {source_label(self._source)}…")
        try:
            worker = PipelineWorker(self._source, self._run_config(), source_options=self._source_options,
                                    pipeline_factory=self._pipeline_factory, source_factory=self._source_factory,
                                    sinks=self._sinks)
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
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.frames_shown = 0
        self.last_error = None
        self._thread = launch(worker)
        self.statusBar().showMessage(f"starting {source_label(self._source)} (loading the model)…")
        self._update_running(True)
        return True

    def stop(self) -> None:
        """Stop playing; returns at once (the thread is joined when it has finished, or on close)."""
        worker, thread = self._worker, self._thread
        if worker is None:
            return
        self._worker, self._thread = None, None
        self._retired.append((worker, thread))
        worker.stop()
        self.statusBar().showMessage("stopped")
        self._update_running(False)

    def shutdown(self) -> None:
        """Stop everything and join every pipeline thread (bounded wait)."""
        self._join_current()
        for worker, thread in self._retired:
            shutdown(worker, thread)
        self._retired.clear()

    def _join_current(self) -> None:
        worker, thread = self._worker, self._thread
        self._worker, self._thread = None, None
        if worker is not None:
            shutdown(worker, thread)
        self._update_running(False)

    def _run_config(self) -> Any:
        from .worker import with_settings

        return with_settings(self._config, attention=self.attention_action.isChecked(),
                             smooth=self.smooth_action.isChecked())

    @pyqtSlot(bool)
    def set_attention(self, on: bool) -> None:
        if self.attention_action.isChecked() != on:
            self.attention_action.setChecked(on)      # re-enters through toggled
            return
        if self._worker is not None:
            self._worker.set_attention(on)
        self.statusBar().showMessage("attention maps on" if on else "attention maps off", 3000)

    @pyqtSlot(bool)
    def set_smooth(self, on: bool) -> None:
        if self.smooth_action.isChecked() != on:
            self.smooth_action.setChecked(on)
            return
        if self._worker is not None:
            self._worker.set_smooth(on)
        self.statusBar().showMessage("smoothing on" if on else "smoothing off", 3000)

    def _update_running(self, running: bool) -> None:
        self.start_action.setText("Stop" if running else "Start")
        self.start_action.setToolTip("Stop (Space)" if running else "Start the chosen source (Space)")

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
        self.frames_shown += 1
        if self.frames_shown == 1:
            self.statusBar().clearMessage()

    @pyqtSlot(dict)
    def _on_stats(self, stats: dict) -> None:
        if not self._from_current():
            return
        fps = stats.get("fps")
        self.fps_label.setText(f"fps {fps:.1f}" if fps else "fps –")
        self.persons_label.setText(f"persons {int(stats.get('persons') or 0)}")
        self.dropped_label.setText(f"dropped {int(stats.get('dropped') or 0)}")

    @pyqtSlot(dict)
    def _on_info(self, info: dict) -> None:
        if not self._from_current():
            return
        self.model_label.setText(self._model_text(info.get("model"), info.get("device")))
        size = info.get("size")
        text = info.get("source", "")
        if size:
            text += f" ({size[0]}x{size[1]})"
        self.setWindowTitle(f"{TITLE} — {text}")
        self.statusBar().showMessage(f"playing {text}", 3000)

    @pyqtSlot(str)
    def _on_error(self, message: str) -> None:
        if self.sender() is not self._worker and not any(self.sender() is w for w, _ in self._retired):
            return
        if self.video.image is None:
            self.video.clear(placeholder=f"could not play: {message}")
        self.show_error(message)

    @pyqtSlot()
    def _on_finished(self) -> None:
        sender = self.sender()
        if sender is self._worker:
            thread = self._thread
            self._worker, self._thread = None, None
            shutdown(None, thread)
            self._update_running(False)
            if self.last_error is None:
                self.statusBar().showMessage("finished")
        else:
            for item in list(self._retired):
                if item[0] is sender:
                    shutdown(None, item[1])
                    self._retired.remove(item)

    def show_error(self, message: str) -> None:
        """One line in the status bar and a (non-modal) message box."""
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

"""SourceBar: the first toolbar row, what to play (a video file, a camera index, a stream URL) and Start / Stop.

It only says what the user chose (signals); the window starts the worker. The model picker sits at its end
(the window adds it)."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QKeySequence
from PyQt6.QtWidgets import QFileDialog, QLabel, QLineEdit, QSpinBox, QToolBar, QWidget

from transpose_live.ui.actions import app_action
from transpose_live.ui.sources import SourceLike

VIDEO_FILTER = "Videos (*.mp4 *.mkv *.mov *.avi *.webm *.m4v *.mpg *.mpeg *.ts);;All files (*)"


class SourceBar(QToolBar):
    chosen = pyqtSignal(object)        # a video file's path or a stream URL (str), a camera index (int): play it
    start_stop = pyqtSignal()          # Start (the chosen source) or Stop
    problem = pyqtSignal(str)          # one line for the user

    def __init__(self, window: QWidget):
        super().__init__("Source", window)
        self.setObjectName("source-toolbar")
        self.setMovable(False)
        self.open_action = app_action(window, "Open file…", self._choose_file, QKeySequence.StandardKey.Open,
                                      "Play a video file (Ctrl+O)")
        self.addAction(self.open_action)
        self.addSeparator()
        self.addWidget(QLabel(" Camera ", self))
        self.camera_spin = QSpinBox(self)
        self.camera_spin.setRange(0, 99)
        self.camera_spin.setToolTip("Camera index (0 is the first camera)")
        self.camera_spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)    # never holds the keys from the start
        self.addWidget(self.camera_spin)
        self.camera_action = app_action(window, "Open camera", lambda: self.chosen.emit(self.camera_spin.value()))
        self.addAction(self.camera_action)
        self.addSeparator()
        self.url_edit = QLineEdit(self)
        self.url_edit.setPlaceholderText("rtsp://camera/stream")
        self.url_edit.setClearButtonEnabled(True)
        self.url_edit.setMinimumWidth(200)
        self.url_edit.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.url_edit.returnPressed.connect(self._connect_url)
        self.addWidget(self.url_edit)
        self.url_action = app_action(window, "Connect", self._connect_url, tip="Play the stream URL (RTSP, HTTP, …)")
        self.addAction(self.url_action)
        self.addSeparator()
        self.start_action = app_action(window, "Start", self.start_stop, tip="Start the chosen source")
        self.addAction(self.start_action)
        self.addSeparator()

    def show_source(self, source: SourceLike) -> None:
        """The camera box or the URL box shows the source chosen (by the user, or given to the window)."""
        if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
            self.camera_spin.setValue(int(source))
        elif isinstance(source, str) and "://" in source:
            self.url_edit.setText(source)

    def set_running(self, running: bool) -> None:
        self.start_action.setText("Stop" if running else "Start")
        self.start_action.setToolTip("Stop (a file goes on from here at the next Start)" if running
                                     else "Start the chosen source (Space)")

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window(), "Open a video", "", VIDEO_FILTER)
        if path:
            self.chosen.emit(path)

    def _connect_url(self) -> None:
        url = self.url_edit.text().strip()
        if not url:
            self.problem.emit("type a stream URL first, e.g. rtsp://camera/stream")
            return
        self.chosen.emit(url)

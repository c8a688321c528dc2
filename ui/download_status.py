"""DownloadStatus: a model download in the status bar: the message (name, MB received / total, percent), a
progress bar and a Cancel button on the right, and Escape to cancel while it runs. GUI thread only."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QHBoxLayout, QProgressBar, QStatusBar, QToolButton, QWidget

from transpose_live.ui.actions import app_action

MB = 1024 * 1024
OUTCOME_MS = 8000               # how long "downloaded" / "cancelled" / an error stay in the status bar


def megabytes(size: int) -> str:
    return f"{size / MB:.1f}"


def progress_text(name: str, received: int, total: int) -> str:
    """'downloading tp_r_a3: 4.0 / 19.9 MB (20 %)'; total < 0: the server did not say."""
    if total <= 0:
        return f"downloading {name}: {megabytes(received)} MB"
    percent = min(100, received * 100 // total)
    return f"downloading {name}: {megabytes(received)} / {megabytes(total)} MB ({percent} %)"


class DownloadStatus(QWidget):
    """Added to `bar` (left of its permanent labels), hidden unless a download runs; `cancel` is asked for
    by the button or Escape."""

    cancel = pyqtSignal()

    def __init__(self, bar: QStatusBar):
        super().__init__(bar)
        self.bar = bar
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(160)
        self.progress.setMaximumHeight(16)
        layout.addWidget(self.progress)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel the download (Esc); the video goes on with the model it has")
        self.cancel_button.clicked.connect(self.cancel)
        layout.addWidget(self.cancel_button)
        bar.insertPermanentWidget(0, self)
        # on the window: an application-wide Escape that only works while a download runs
        self.escape_action = app_action(bar.window(), "Cancel the download", self.cancel, Qt.Key.Key_Escape)
        self.escape_action.setEnabled(False)
        self.hide()

    def show_progress(self, name: str, received: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 100)
            self.progress.setValue(min(100, received * 100 // total))
        else:
            self.progress.setRange(0, 0)           # busy indicator: no length known
        self.escape_action.setEnabled(True)
        self.show()
        self.bar.showMessage(progress_text(name, received, total))

    def finish(self, message: str, ms: int = OUTCOME_MS) -> None:
        """The download is over: hide the bar, say how it ended (for `ms`; 0: until the next message)."""
        self.escape_action.setEnabled(False)
        self.hide()
        self.bar.showMessage(message, ms)

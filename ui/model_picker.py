"""ModelPicker: which pose model (installed / downloadable weights, or a checkpoint file) on which device.

It only says what the user chose (signals); the window reloads the model in a new worker. A released model
that is not cached yet is downloaded first, off the GUI thread (ui/model_download.py), with its progress and
a Cancel button in the status bar (ui/download_status.py); the video goes on with the old model meanwhile and
`model_chosen` comes once the file is in the cache. Each item keeps its model name as item data
(NAME_ROLE): the text beside it ("tp_r_a4 — AP 0.726 · 23 MB · download") is for people only."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QStatusBar, QWidget

from transpose_live.errors import TransposeLiveError
from transpose_live.model import hub
from transpose_live.ui.download_status import MB, DownloadStatus
from transpose_live.ui.model_download import ModelDownload

DEVICES = ("auto", "cpu", "cuda")
WEIGHTS_FILE = "weights file…"
WEIGHTS_FILTER = "Checkpoints (*.pth *.pt *.ckpt);;All files (*)"
NAME_ROLE = Qt.ItemDataRole.UserRole      # an item's model name (WEIGHTS_FILE for the file item)


def entry_text(row: hub.EntryRow) -> str:
    """What the box shows for a registry entry: name, the paper's COCO AP, size, whether it is here."""
    details = []
    if row.paper_ap is not None:
        details.append(f"AP {row.paper_ap.detector:.3f}")
    if row.size_bytes:
        details.append(f"{row.size_bytes / MB:.0f} MB")
    details.append("installed" if row.url is None else "downloaded" if row.cached else "download")
    return f"{row.name} — {' · '.join(details)}"


def needs_download(name: str) -> bool:
    """A released entry whose file is not in the cache yet."""
    try:
        entry = hub.entries().get(name)
        return entry is not None and entry.url is not None and not hub.is_cached(name)
    except TransposeLiveError:
        return False              # the worker's load says what is wrong, as for any model


class ModelPicker(QWidget):
    """The Model box (the registry's entries, the configured model first when it is not among them, then
    "weights file…") and the device box. model: the run's model name; device: its device."""

    model_chosen = pyqtSignal(str, object)   # model name, a checkpoint's path (str) or None: its own weights
    device_chosen = pyqtSignal(str)

    def __init__(self, model: str, device: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.configured = model      # the run's model: the box goes back to it when no file is chosen
        self.running: str | None = None   # the preset the worker loaded: a checkpoint file is one of it
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(" Model ", self))
        self.model_box = QComboBox(self)
        self.model_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_box.setToolTip("Pose model: installed / downloadable weights (the authors' COCO val AP and "
                                  "the file's size), or a checkpoint file")
        self.fill(model)
        self.model_box.activated.connect(self._model_chosen)
        layout.addWidget(self.model_box)
        self.device_box = QComboBox(self)
        self.device_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.device_box.addItems(DEVICES)
        if device not in DEVICES:
            self.device_box.addItem(device)
        self.device_box.setCurrentText(device)
        self.device_box.activated.connect(lambda _: self.device_chosen.emit(self.device_box.currentText()))
        layout.addWidget(self.device_box)
        self.downloads = ModelDownload(self)
        self.downloads.progressed.connect(self._progress)
        self.downloads.succeeded.connect(self._downloaded)
        self.downloads.failed.connect(self._failed)
        self.downloads.cancelled.connect(self._cancelled)
        self.status: DownloadStatus | None = None

    def fill(self, current: str) -> None:
        """(Re)list the registry's entries, as they are in the cache now, and select `current`."""
        try:
            rows = hub.list_entries()
        except TransposeLiveError:
            rows = []                # a broken cache index: the configured model and a file still work
        self.model_box.clear()
        for row in rows:
            self.model_box.addItem(entry_text(row), row.name)
            self.model_box.setItemData(self.model_box.count() - 1, row.description, Qt.ItemDataRole.ToolTipRole)
        self.model_box.addItem(WEIGHTS_FILE, WEIGHTS_FILE)
        self.select(current)

    def select(self, name: str) -> None:
        """Show `name` in the box (added at the top when it is not listed: a model outside the registry)."""
        index = self.model_box.findData(name, NAME_ROLE)
        if index < 0:
            self.model_box.insertItem(0, name, name)
            index = 0
        self.model_box.setCurrentIndex(index)

    def name_at(self, index: int) -> str:
        return str(self.model_box.itemData(index, NAME_ROLE))

    def show_downloads_in(self, bar: QStatusBar) -> None:
        """Downloads show their progress, Cancel button and outcome in `bar` (the window's status bar)."""
        self.status = DownloadStatus(bar)
        self.status.cancel.connect(self.downloads.cancel)

    def _model_chosen(self, index: int) -> None:
        name = self.name_at(index)
        if name == self.downloads.name:
            return                                 # on its way already
        # the newest pick wins: a download running for another one is cancelled
        if self.downloads.cancel():
            self.model_box.setCurrentIndex(index)  # the cancel put the box back on the running model
        if name != WEIGHTS_FILE:
            if needs_download(name):
                self.downloads.start(name)
                self._progress(name, 0, -1)
            else:
                self.model_chosen.emit(name, None)
            return
        path, _ = QFileDialog.getOpenFileName(self.window(), "Open a checkpoint", "", WEIGHTS_FILTER)
        if not path:
            self.select(self.configured)
            return
        self.model_chosen.emit(self.running or self.configured, path)

    # ------------------------------------------------------------------------------------ downloads

    def _progress(self, name: str, received: int, total: int) -> None:
        if self.status is not None:
            self.status.show_progress(name, received, total)

    def _downloaded(self, name: str) -> None:
        self.fill(name)                            # its item now says "downloaded"
        if self.status is not None:
            self.status.finish(f"downloaded {name}; loading it")
        self.model_chosen.emit(name, None)         # the window reloads it as any cached pick

    def _failed(self, name: str, message: str) -> None:
        self.select(self.configured)
        if self.status is not None:
            self.status.finish(f"download of {name} failed: {message}", 0)

    def _cancelled(self, name: str) -> None:
        self.select(self.configured)
        if self.status is not None:
            self.status.finish(f"download cancelled: {name} (the model playing is kept)")

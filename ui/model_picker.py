"""ModelPicker: which pose model (installed / downloadable weights, or a checkpoint file) on which device.

It only says what the user chose (signals); the window reloads the model in a new worker."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QWidget

from transpose_live.model import hub

DEVICES = ("auto", "cpu", "cuda")
WEIGHTS_FILE = "weights file…"
WEIGHTS_FILTER = "Checkpoints (*.pth *.pt *.ckpt);;All files (*)"


class ModelPicker(QWidget):
    """The Model box (the registry's names, the configured one first when it is not among them, then
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
        self.model_box.setToolTip("Pose model: installed / downloadable weights, or a checkpoint file")
        names = list(hub.entries())
        if model not in names:
            names.insert(0, model)
        self.model_box.addItems(names)
        self.model_box.addItem(WEIGHTS_FILE)
        self.model_box.setCurrentText(model)
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

    def _model_chosen(self, index: int) -> None:
        name = self.model_box.itemText(index)
        if name != WEIGHTS_FILE:
            self.model_chosen.emit(name, None)
            return
        path, _ = QFileDialog.getOpenFileName(self.window(), "Open a checkpoint", "", WEIGHTS_FILTER)
        if not path:
            self.model_box.setCurrentText(self.configured)
            return
        self.model_chosen.emit(self.running or self.configured, path)

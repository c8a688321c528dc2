"""InspectorPanel: which person, joint and layer the attention overlay shows, how, and the Fig. 6 strip.

It only holds the choice (a ui.view.View) and says when it changes; the worker computes the maps. The
strip (the chosen joint's area at every layer, one forward pass) is shown under the controls."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor, QIcon, QImage, QPixmap
from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from transpose_live.live.render import COLORMAPS, JOINT_COLORS
from transpose_live.skeleton import KEYPOINT_NAMES
from transpose_live.ui.view import DEFAULT_OPACITY, View

ALL_JOINTS = "all joints"
MAX_STRIP_WIDTH = 640      # pixels: the widest the panel grows for the strip
MAX_LAYERS = 12            # the spin box's range until the model says how many layers it has


class InspectorPanel(QWidget):
    view_changed = pyqtSignal(object)      # View

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._view = View()
        self._layers: int | None = None
        layout = QVBoxLayout(self)
        self.person_label = QLabel("person: the largest (click one, or Tab)", self)
        self.person_label.setWordWrap(True)
        layout.addWidget(self.person_label)

        self.joint_list = QListWidget(self)
        self.joint_list.addItem(ALL_JOINTS)
        for j, name in enumerate(KEYPOINT_NAMES):          # each joint's colour in "all joints" as its icon
            swatch = QPixmap(12, 12)
            b, g, r = JOINT_COLORS[j]
            swatch.fill(QColor(r, g, b))
            self.joint_list.addItem(QListWidgetItem(QIcon(swatch), name.replace("_", " ")))
        self.joint_list.setCurrentRow(0)
        self.joint_list.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.joint_list.currentRowChanged.connect(self._joint_row)
        layout.addWidget(self.joint_list, 1)

        form = QFormLayout()
        self.layer_spin = QSpinBox(self)
        self.layer_spin.setRange(1, MAX_LAYERS)
        self.layer_spin.setValue(MAX_LAYERS)
        self.layer_spin.setSpecialValueText("")
        self.layer_spin.setToolTip("Encoder layer whose attention is shown (the last by default)")
        self.layer_spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.layer_spin.valueChanged.connect(self._layer_value)
        form.addRow("Layer", self.layer_spin)
        self.mode_box = QComboBox(self)
        self.mode_box.addItem("dependency area (what the joint looks at)", False)
        self.mode_box.addItem("affected area (what looks at the joint)", True)
        self.mode_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.mode_box.currentIndexChanged.connect(
            lambda i: self._set(affected=bool(self.mode_box.itemData(i))))
        form.addRow("Show", self.mode_box)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(round(DEFAULT_OPACITY * 100)))
        self.opacity_slider.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.opacity_slider.valueChanged.connect(lambda v: self._set(opacity=v / 100))
        form.addRow("Opacity", self.opacity_slider)
        self.colormap_box = QComboBox(self)
        self.colormap_box.addItems(list(COLORMAPS))
        self.colormap_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.colormap_box.currentTextChanged.connect(lambda name: self._set(colormap=name))
        self.colormap_box.setToolTip("Colours of one joint's area (all joints: each joint in its own colour)")
        form.addRow("Colours", self.colormap_box)
        layout.addLayout(form)

        layout.addWidget(QLabel("Every layer (paper Fig. 6):", self))
        self.strip_label = QLabel("turn the attention maps on (A)", self)
        self.strip_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.strip_label.setMinimumHeight(154)
        scroll = self._scroll = QScrollArea(self)
        scroll.setWidget(self.strip_label)
        scroll.setWidgetResizable(True)
        scroll.setMinimumHeight(172)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout.addWidget(scroll)

    # ------------------------------------------------------------------------------------------- state

    @property
    def view(self) -> View:
        return self._view

    def set_view(self, view: View) -> None:
        """Show `view` in the controls (no view_changed for it)."""
        self._view = view
        widgets = (self.joint_list, self.layer_spin, self.mode_box, self.opacity_slider, self.colormap_box)
        for w in widgets:
            w.blockSignals(True)
        try:
            self.joint_list.setCurrentRow(0 if view.joint is None else view.joint + 1)
            self.layer_spin.setValue(view.layer if view.layer is not None else self.layer_spin.maximum())
            self.mode_box.setCurrentIndex(1 if view.affected else 0)
            self.opacity_slider.setValue(int(round(view.opacity * 100)))
            self.colormap_box.setCurrentText(view.colormap)
        finally:
            for w in widgets:
                w.blockSignals(False)

    def set_layers(self, layers: int) -> None:
        """The model's layer count: the spin box's range (the last layer stays 'last')."""
        if layers == self._layers:
            return
        self._layers = layers
        self.layer_spin.blockSignals(True)
        self.layer_spin.setRange(1, layers)
        self.layer_spin.setValue(min(self._view.layer, layers) if self._view.layer is not None else layers)
        self.layer_spin.blockSignals(False)

    def show_facts(self, strip: QImage | None, facts: dict) -> None:
        if "error" in facts:
            self.strip_label.setText(facts["error"])
            return
        if facts.get("layers"):
            self.set_layers(int(facts["layers"]))
        person = facts.get("person")
        self.person_label.setText("no person in view" if person is None else
                                  f"person {person} (click another, or Tab) · layer {facts.get('layer')}")
        if strip is not None and not strip.isNull():
            self.strip_label.setPixmap(QPixmap.fromImage(strip))
            # the panel widens to show every layer at once (up to a limit; beyond it the strip scrolls)
            self._scroll.setMinimumWidth(min(strip.width() + 24, MAX_STRIP_WIDTH))

    def _set(self, **changes) -> None:
        self._view = self._view.replace(**changes)
        self.view_changed.emit(self._view)

    def _joint_row(self, row: int) -> None:
        self._set(joint=None if row <= 0 else row - 1)

    def _layer_value(self, value: int) -> None:
        last = self._layers if self._layers is not None else self.layer_spin.maximum()
        self._set(layer=None if value >= last else value)

"""PlaybackBar: play/pause, frame steps, a seek slider with the time, and the speed, under the video.

It only shows state and says what the user asked (signals); the window hands that to the worker. Live
sources hide the seek slider, steps and speed (only the newest frame is there to show)."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

SPEEDS = ((0.25, "0.25×"), (0.5, "0.5×"), (1.0, "1×"), (2.0, "2×"), (4.0, "4×"), (None, "as fast as possible"))


def clock(seconds: float | None) -> str:
    """0:07.3 / 1:02:03.0 style."""
    if seconds is None:
        return "–:––"
    seconds = max(0.0, float(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}" if h else f"{int(m)}:{s:04.1f}"


class PlaybackBar(QWidget):
    play_pause = pyqtSignal()
    step = pyqtSignal(int)                 # +1 forward, -1 back
    seek = pyqtSignal(float)               # seconds
    speed_changed = pyqtSignal(object)     # float, or None: as fast as possible

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._duration: float | None = None
        self._dragging = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)

        def button(text: str, tip: str) -> QToolButton:
            b = QToolButton(self)
            b.setText(text)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)      # keys stay with the window's shortcuts
            layout.addWidget(b)
            return b

        self.back_button = button("◀|", "One frame back, run through the model again (←)")
        self.play_button = button("▶", "Play / pause (Space)")
        self.forward_button = button("|▶", "One frame forward (→)")
        self.back_button.clicked.connect(lambda: self.step.emit(-1))
        self.play_button.clicked.connect(self.play_pause.emit)
        self.forward_button.clicked.connect(lambda: self.step.emit(1))

        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Seek")
        self.slider.sliderPressed.connect(self._pressed)
        self.slider.sliderReleased.connect(self._released)
        self.slider.actionTriggered.connect(self._action)
        layout.addWidget(self.slider, 1)
        self.time_label = QLabel(clock(None), self)
        layout.addWidget(self.time_label)

        self.speed_box = QComboBox(self)
        self.speed_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.speed_box.setToolTip("Playback speed of a file")
        for value, text in SPEEDS:
            self.speed_box.addItem(text, value)
        self.speed_box.setCurrentIndex(2)
        self.speed_box.currentIndexChanged.connect(lambda i: self.speed_changed.emit(self.speed_box.itemData(i)))
        layout.addWidget(self.speed_box)
        self.set_live(False)

    # ------------------------------------------------------------------------------------------- state

    @property
    def speed(self) -> float | None:
        return self.speed_box.currentData()

    def set_speed(self, speed: float | None) -> None:
        for i in range(self.speed_box.count()):
            if self.speed_box.itemData(i) == speed:
                self.speed_box.setCurrentIndex(i)

    def set_live(self, live: bool) -> None:
        """Live sources: no seeking, stepping or speed."""
        for widget in (self.back_button, self.forward_button, self.slider, self.speed_box):
            widget.setVisible(not live)
        self.time_label.setVisible(not live)

    def set_paused(self, paused: bool) -> None:
        self.play_button.setText("▶" if paused else "❚❚")

    def set_duration(self, duration: float | None) -> None:
        self._duration = duration
        self.slider.setRange(0, int(round(1000 * duration)) if duration else 0)

    def set_position(self, seconds: float | None) -> None:
        if seconds is None:
            return
        if not self._dragging:
            self.slider.setValue(int(round(1000 * seconds)))
        self.time_label.setText(f"{clock(seconds)} / {clock(self._duration)}")

    # ------------------------------------------------------------------------------------------ slider

    def _pressed(self) -> None:
        self._dragging = True

    def _released(self) -> None:
        self._dragging = False
        self.seek.emit(self.slider.value() / 1000)

    def _action(self, action: int) -> None:
        """Page clicks and wheel steps on the slider seek at once (a drag seeks when released)."""
        if action != QSlider.SliderAction.SliderMove.value and not self._dragging:
            self.seek.emit(self.slider.sliderPosition() / 1000)

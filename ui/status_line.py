"""StatusLine: the status bar's permanent labels, stream state, model · device, fps, latency, persons and
dropped frames, filled from the worker's `info` and `stats` signals."""

from __future__ import annotations

from typing import Any

from PyQt6.QtWidgets import QLabel, QStatusBar, QWidget

FIRST_MESSAGE = "Open a video file, a camera or a stream URL"


def model_text(model: object, device: object) -> str:
    return f"model {model or 'default'} · {device or 'auto'}"


class StatusLine:
    """The labels, made children of `parent` and added to `bar` (the window's status bar)."""

    def __init__(self, bar: QStatusBar, parent: QWidget, model: object, device: object):
        self.model_label = QLabel(model_text(model, device), parent)
        self.fps_label = QLabel("fps –", parent)
        self.latency_label = QLabel("latency –", parent)
        self.persons_label = QLabel("persons –", parent)
        self.dropped_label = QLabel("dropped –", parent)
        self.state_label = QLabel("", parent)
        for label in (self.state_label, self.model_label, self.fps_label, self.latency_label, self.persons_label,
                      self.dropped_label):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)
        bar.showMessage(FIRST_MESSAGE)

    def show_model(self, model: object, device: object, loading: bool = False) -> None:
        self.model_label.setText(model_text(model, device) + (" (loading…)" if loading else ""))

    def show_stats(self, stats: dict[str, Any]) -> None:
        fps, latency = stats.get("fps"), stats.get("latency_ms")
        self.fps_label.setText(f"fps {fps:.1f}" if fps else "fps –")
        self.latency_label.setText(f"latency {latency:.0f} ms" if latency else "latency –")
        self.persons_label.setText(f"persons {int(stats.get('persons') or 0)}")
        self.dropped_label.setText(f"dropped {int(stats.get('dropped') or 0)}")

    def show_state(self, text: str) -> None:
        """The stream's state ("reconnecting…"); "" clears it."""
        self.state_label.setText(text)

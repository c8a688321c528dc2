"""ViewBar: the second toolbar row, what the video shows (attention maps, the inspector, smoothing) and the
keeping of it (screenshot, recording, pose export).

The bar owns the actions; the window connects them to what they do."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QKeySequence
from PyQt6.QtWidgets import QDockWidget, QToolBar, QWidget

from transpose_live.ui.actions import app_action


class ViewBar(QToolBar):
    """attention / smooth: how the checkable actions start. inspector_dock: its toggle is the Inspector action."""

    def __init__(self, window: QWidget, inspector_dock: QDockWidget, *, attention: bool, smooth: bool):
        super().__init__("View", window)
        self.setObjectName("view-toolbar")
        self.setMovable(False)
        self.attention_action = app_action(
            window, "Attention maps", key=Qt.Key.Key_A,
            tip="Show where the model looks for each joint: its dependency areas (A)", checkable=True,
            checked=attention)
        self.addAction(self.attention_action)
        self.inspector_action = inspector_dock.toggleViewAction()
        self.inspector_action.setText("Inspector")
        self.inspector_action.setShortcut(QKeySequence(Qt.Key.Key_I))
        self.inspector_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.inspector_action.setToolTip("Pick the person, joint and layer; every layer side by side (I)")
        window.addAction(self.inspector_action)
        self.addAction(self.inspector_action)
        self.smooth_action = app_action(window, "Smoothing", key=Qt.Key.Key_S,
                                        tip="Kalman smoothing of the joints over time (S)", checkable=True,
                                        checked=smooth)
        self.addAction(self.smooth_action)
        self.addSeparator()
        self.screenshot_action = app_action(window, "Screenshot", key=QKeySequence.StandardKey.Save,
                                            tip="Save a picture of the window (Ctrl+S)")
        self.addAction(self.screenshot_action)
        self.record_action = app_action(window, "Record", key=QKeySequence("Ctrl+R"),
                                        tip="Record the annotated view to a video (Ctrl+R starts / stops)",
                                        checkable=True)
        self.addAction(self.record_action)
        self.export_action = app_action(window, "Export poses…", key=QKeySequence("Ctrl+E"),
                                        tip="Save this session's poses as JSON Lines, as `video --json` (Ctrl+E)")
        self.addAction(self.export_action)

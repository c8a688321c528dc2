"""The window's actions: every shortcut works whatever widget has the focus (text boxes still take the keys
they type), because each action is application-wide and added to the window itself."""

from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import Qt, pyqtBoundSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QWidget

Key = QKeySequence | QKeySequence.StandardKey | Qt.Key | str


def app_action(window: QWidget, text: str, slot: Callable[..., object] | pyqtBoundSignal | None = None,
               key: Key | None = None, tip: str | None = None, checkable: bool = False,
               checked: bool = False) -> QAction:
    """An action of `window` whose shortcut works whatever widget has the focus. slot: called on `toggled`
    (checkable) or `triggered` (a signal: re-emitted); None: the caller connects it."""
    action = QAction(text, window)
    if key is not None:
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    if tip:
        action.setToolTip(tip)
    if checkable:
        action.setCheckable(True)
        action.setChecked(checked)
    if slot is not None:
        (action.toggled if checkable else action.triggered).connect(slot)
    window.addAction(action)           # reachable by its key even when on no toolbar
    return action


def set_checked_quietly(action: QAction, on: bool) -> None:
    """Show `on` without running the action's slot (the change came from elsewhere)."""
    action.blockSignals(True)
    action.setChecked(on)
    action.blockSignals(False)

"""run_app: the desktop window's entry point (used by `transpose-live gui` and `transpose-live webcam`)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from transpose_live.errors import TransposeLiveError

NO_DISPLAY = "no display for the preview window: set DISPLAY, or use --no-show / --out"
# Qt platform plugins that draw without a window system
_HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def _x_display_reachable(display: str) -> bool:
    """False only when DISPLAY names a local X server whose socket is missing (Qt would abort on it)."""
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if host not in ("", "unix") or not number.isdigit():
        return True                      # a remote or unusual display: let Qt try it
    return Path(f"/tmp/.X11-unix/X{number}").exists()


def _qt_running() -> bool:
    from PyQt6.QtGui import QGuiApplication

    return QGuiApplication.instance() is not None


def check_display() -> None:
    """Raise TransposeLiveError when Qt would find no display for a window.

    Qt aborts the process (no exception) when its xcb plugin cannot connect, so this is checked before a
    QApplication exists: with QT_QPA_PLATFORM unset or naming a window system, DISPLAY or
    WAYLAND_DISPLAY must be set (and a local X display's socket must exist).
    """
    if _qt_running():                    # Qt is up already: it has a platform it can draw on
        return
    if sys.platform in ("win32", "darwin"):
        return
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip().lower()
    if platform in _HEADLESS_PLATFORMS:
        return
    x_display = os.environ.get("DISPLAY", "").strip()
    wayland = os.environ.get("WAYLAND_DISPLAY", "").strip()
    if platform == "xcb" or (not platform and not wayland):
        if not x_display or not _x_display_reachable(x_display):
            raise TransposeLiveError(NO_DISPLAY)
        return
    if platform.startswith("wayland") and not wayland:
        raise TransposeLiveError(NO_DISPLAY)
    if not platform and not (x_display or wayland):
        raise TransposeLiveError(NO_DISPLAY)


def application():
    """The running QApplication, or a new one (after check_display)."""
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        check_display()
        app = QApplication(sys.argv[:1] or ["transpose-live"])
        app.setApplicationName("transpose-live")
        app.setApplicationDisplayName("transpose-live")
    return app


def run_app(source=None, config=None, *, sinks=(), autostart: bool = True) -> int:
    """Show the window (optionally playing `source`: a file, camera index, URL or opened Source) and run Qt's
    event loop until it is closed. sinks: outputs the first run writes (and finishes). Returns the exit code.
    Raises TransposeLiveError without a display."""
    from .main_window import MainWindow

    app = application()
    window = MainWindow(config=config, sinks=sinks)
    window.show()
    if source is not None and autostart:
        window.start_source(source)
    elif source is not None:
        window.set_source(source)
    with _ctrl_c_closes(window):
        rc = app.exec()
    window.shutdown()
    return int(rc)


@contextlib.contextmanager
def _ctrl_c_closes(window):
    """Ctrl-C in the terminal closes the window (which stops the pipeline and finishes the outputs). Qt's
    event loop holds the interpreter, so a timer lets Python look at signals a few times a second."""
    from PyQt6.QtCore import QTimer

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer()
    timer.timeout.connect(lambda: None)
    timer.start(200)
    try:
        yield
    finally:
        timer.stop()
        signal.signal(signal.SIGINT, previous)

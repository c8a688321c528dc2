"""run_app: the desktop window's entry point (used by `transpose-live gui` and `transpose-live webcam`).

The CLI imports this module to check for a display before anything else, so Qt (and the window, which loads
torch) is imported inside the functions that need it: Qt aborts the process when it finds no display, and a
command that shows no window never pays for it."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from transpose_live.errors import TransposeLiveError
from transpose_live.ui.settings import default_config, with_settings

if TYPE_CHECKING:          # annotation-only: Qt and the window are imported when a window is wanted
    from PyQt6.QtWidgets import QApplication

    from transpose_live.live.spec import RunSpec
    from transpose_live.media.sinks import Sink
    from transpose_live.ui.main_window import MainWindow
    from transpose_live.ui.sources import SourceLike
    from transpose_live.ui.view import View

NO_DISPLAY = "no display for the preview window: set DISPLAY"
NO_SHOW_ADVICE = "use --no-show / --out"
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
    from PyQt6.QtGui import QGuiApplication  # deferred: Qt (see the module's docstring)

    return QGuiApplication.instance() is not None


def check_display(advice: str = NO_SHOW_ADVICE) -> None:
    """Raise TransposeLiveError when Qt would find no display for a window.

    Qt aborts the process (no exception) when its xcb plugin cannot connect, so this is checked before a
    QApplication exists: with QT_QPA_PLATFORM unset or naming a window system, DISPLAY or
    WAYLAND_DISPLAY must be set (and a local X display's socket must exist). `advice` ends the message:
    what the command can do instead.
    """
    message = f"{NO_DISPLAY}, or {advice}"
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
            raise TransposeLiveError(message)
        return
    if platform.startswith("wayland") and not wayland:
        raise TransposeLiveError(message)
    if not platform and not (x_display or wayland):
        raise TransposeLiveError(message)


def has_display() -> bool:
    """Whether a window could be shown here (check_display would pass)."""
    try:
        check_display()
    except TransposeLiveError:
        return False
    return True


# Debian/Ubuntu package names whose shared library names do not follow the usual rule (see _package_of)
_PACKAGE_OF = {"libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
               "libgobject-2.0.so.0": "libglib2.0-0"}


def _package_of(library: str) -> str:
    """A shared library's Debian/Ubuntu package by the packaging rule: libxcb-icccm.so.4 -> libxcb-icccm4,
    libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (a dash when the name ends in a digit)."""
    if library in _PACKAGE_OF:
        return _PACKAGE_OF[library]
    name, _, version = library.partition(".so")
    version = version.lstrip(".").split(".")[0]
    if not version:
        return name.lower()
    return f"{name}{'-' if name[-1:].isdigit() else ''}{version}".lower()


def _qt_platform_plugin(name: str) -> Path | None:
    """The file of one of PyQt6's platform plugins (found without loading Qt)."""
    spec = importlib.util.find_spec("PyQt6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "Qt6" / "plugins" / "platforms" / f"libq{name}.so"
        if path.is_file():
            return path
    return None


def missing_platform_libraries(plugin: str = "xcb") -> list[str]:
    """Shared libraries Qt's platform plugin needs and the system lacks (by `ldd`; [] when it cannot tell).
    Without them Qt aborts the process (SIGABRT) instead of raising anything."""
    path = _qt_platform_plugin(plugin)
    ldd = shutil.which("ldd")
    if path is None or ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = []
    for line in out.splitlines():
        if "=> not found" in line:
            lib = line.split("=>")[0].strip()
            if lib not in missing:
                missing.append(lib)
    return missing


def check_platform() -> None:
    """Raise TransposeLiveError (one line: the missing libraries and the apt-get line) when Qt's X11
    platform plugin cannot load; checked before Qt is loaded, since Qt would abort the process."""
    if _qt_running() or not sys.platform.startswith("linux"):
        return
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip().lower()
    if platform in _HEADLESS_PLATFORMS or platform.startswith("wayland"):
        return
    if not os.environ.get("DISPLAY", "").strip():
        return                  # no X display named: check_display says so (or Qt uses Wayland)
    missing = missing_platform_libraries("xcb")
    if missing:
        packages = sorted({_package_of(lib) for lib in missing})
        raise TransposeLiveError(
            f"the window cannot start: Qt's xcb platform plugin misses {', '.join(missing)}; install them with "
            f"`sudo apt-get install {' '.join(packages)}` (or run headless with QT_QPA_PLATFORM=offscreen)")


def application() -> QApplication:
    """The running QApplication, or a new one (after check_display and check_platform)."""
    from PyQt6.QtWidgets import QApplication  # deferred: Qt

    app = QApplication.instance()
    if app is None:
        check_display()
        check_platform()
        _quiet_qt_notes()
        app = QApplication(sys.argv[:1] or ["transpose-live"])
        app.setApplicationName("transpose-live")
        app.setApplicationDisplayName("transpose-live")
    return app


_QT_NOISE = ("propagateSizeHints",)      # the offscreen plugin's note on every dock: not a problem


def _quiet_qt_notes() -> None:
    """Qt's own messages go to stderr as before, except known harmless notes."""
    from PyQt6.QtCore import qInstallMessageHandler  # deferred: Qt

    def handler(mode, context, message):
        if not any(text in message for text in _QT_NOISE):
            sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)


def run_app(source: SourceLike | None = None, config: RunSpec | None = None, *, sinks: Sequence[Sink] = (),
            autostart: bool = True, view: View | None = None) -> int:
    """Show the window (optionally playing `source`: a file, camera index, URL or opened Source) and run Qt's
    event loop until it is closed. sinks: outputs the first run writes (and finishes). Returns the exit code.
    Raises TransposeLiveError without a display."""
    from transpose_live.ui.main_window import MainWindow  # deferred: Qt and torch

    app = application()
    window = MainWindow(config=config, sinks=sinks, view=view)
    window.show()
    if view is not None and view.strip:
        window.inspector_dock.show()
    if source is not None and autostart:
        window.start_source(source)
    elif source is not None:
        window.set_source(source)
    with _ctrl_c_closes(window):
        rc = app.exec()
    window.shutdown()
    return int(rc)


def run_check(source: SourceLike, config: RunSpec | None = None, *, frames: int, screenshot: str | Path,
              view: View | None = None, inspector: bool = False, timeout: float = 600.0) -> int:
    """Headless check (tests, bug reports): play `frames` frames of `source` as fast as the model goes, save a
    screenshot of the whole window, quit. 0 when the frames were shown and the picture saved; raises
    TransposeLiveError when the source fails or nothing could be shown."""
    from PyQt6.QtCore import QTimer  # deferred (here and below): Qt, and the window loads torch

    from transpose_live.ui.main_window import MainWindow

    if frames < 1:
        raise TransposeLiveError(f"--frames must be at least 1, got {frames}")
    app = application()
    config = _with_max_frames(config, frames)
    window = MainWindow(config=config, view=view)
    window.show()
    if inspector:
        window.resize(1440, 800)              # room for the video beside the inspector's strip
        window.inspector_dock.show()
    window.set_speed(None)
    outcome: dict = {}

    def done() -> bool:
        return window.frames_shown >= frames or (not window.running and window.frames_shown > 0) \
            or window.last_error is not None

    def poll() -> None:
        if done() and "rc" not in outcome:
            outcome["rc"] = 0
            QTimer.singleShot(50, app.quit)          # let the last frame and strip be painted

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    QTimer.singleShot(int(timeout * 1000), app.quit)
    window.start_source(source)
    with _ctrl_c_closes(window):
        app.exec()
    timer.stop()
    try:
        if window.last_error is not None:
            raise TransposeLiveError(window.last_error)
        if window.frames_shown == 0:
            raise TransposeLiveError(f"no frame shown within {timeout:g} s")
        if window.save_screenshot(screenshot) is None:
            raise TransposeLiveError(f"could not save the screenshot to {screenshot}")
    finally:
        window.close()
    return 0


def _with_max_frames(config: RunSpec | None, frames: int) -> RunSpec:
    return with_settings(default_config() if config is None else config, max_frames=frames)


@contextlib.contextmanager
def _ctrl_c_closes(window: MainWindow) -> Iterator[None]:
    """Ctrl-C in the terminal closes the window (which stops the pipeline and finishes the outputs). Qt's
    event loop holds the interpreter, so a timer lets Python look at signals a few times a second."""
    from PyQt6.QtCore import QTimer  # deferred: Qt

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

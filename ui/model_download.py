"""ModelDownload: fetches one registry entry into the weights cache on a background thread, for the window's
model picker, and reports through signals delivered in the GUI thread.

One download at a time: starting another cancels the one before. A cancel is final at once for the window
(it says "cancelled" and ignores anything the old thread still reports); the thread itself stops at its next
chunk and hub.download leaves nothing in the cache (temp file, checked, then renamed). The thread is a daemon
and closing the window waits for it only briefly: a server that stopped answering cannot hold the window up.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot

from transpose_live.errors import TransposeLiveError
from transpose_live.model import hub
from transpose_live.model.download import DownloadCancelled

PROGRESS_EVERY_S = 0.1          # at most ten progress reports a second reach the GUI thread
CLOSE_WAIT_S = 2.0              # how long closing the window waits for the thread to leave

Fetch = Callable[..., object]   # hub.download's signature: (name, progress=, on_bytes=, cancel=)


class ModelDownload(QObject):
    """Downloads registry entries by name, one at a time, off the GUI thread."""

    progressed = pyqtSignal(str, int, int)    # name, bytes received, total bytes (-1: the server did not say)
    succeeded = pyqtSignal(str)               # name: cached and verified now
    failed = pyqtSignal(str, str)             # name, the one-line error
    cancelled = pyqtSignal(str)               # name
    # from the download thread; queued to the GUI thread, where stale jobs are dropped
    _report = pyqtSignal(int, str, str, object)

    def __init__(self, parent: QObject | None = None, fetch: Fetch = hub.download):
        super().__init__(parent)
        self._fetch = fetch
        self._job = 0                                  # the current job's number; older reports are dropped
        self._name: str | None = None
        self._cancel: threading.Event | None = None
        self._threads: list[threading.Thread] = []     # started and maybe not ended (a cancelled one runs on)
        self._report.connect(self._deliver)

    @property
    def name(self) -> str | None:
        """The entry downloading now (None: none)."""
        return self._name

    @property
    def busy(self) -> bool:
        """Whether a download thread is still running (a cancelled one until it has seen the cancel)."""
        self._threads = [t for t in self._threads if t.is_alive()]
        return bool(self._threads)

    def start(self, name: str) -> None:
        """Download `name` in a new thread (cancelling the download before, if any)."""
        self.cancel()
        self._job += 1
        self._name, self._cancel = name, threading.Event()
        thread = threading.Thread(target=self._run, args=(self._job, name, self._cancel),
                                  name=f"transpose-live download {name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def cancel(self) -> bool:
        """Cancel the running download (`cancelled` is emitted now); False when there was none."""
        name, cancel = self._name, self._cancel
        if name is None or cancel is None:
            return False
        cancel.set()
        self._job += 1                                 # whatever its thread still says is stale
        self._name, self._cancel = None, None
        self.cancelled.emit(name)
        return True

    def shutdown(self, timeout_s: float = CLOSE_WAIT_S) -> bool:
        """Cancel and give the threads up to `timeout_s` to leave (closing the window). True when they did."""
        self.cancel()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self.busy

    # ------------------------------------------------------------------------------- download thread

    def _run(self, job: int, name: str, cancel: threading.Event) -> None:
        last = 0.0

        def on_bytes(received: int, total: int | None) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S or received == total:
                last = now
                self._emit(job, "progress", name, (received, -1 if total is None else total))

        try:
            self._fetch(name, progress=False, on_bytes=on_bytes, cancel=cancel)
        except DownloadCancelled:
            self._emit(job, "cancelled", name, None)
        except TransposeLiveError as exc:
            self._emit(job, "failed", name, " ".join(str(exc).split()))
        except Exception as exc:  # noqa: BLE001 - the thread's last word must reach the window, whatever it is
            self._emit(job, "failed", name, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        else:
            self._emit(job, "done", name, None)

    def _emit(self, job: int, kind: str, name: str, payload: object) -> None:
        try:
            self._report.emit(job, kind, name, payload)
        except RuntimeError:        # the window (and this object's C++ side) is gone: nobody to tell
            pass

    # ----------------------------------------------------------------------------------- GUI thread

    @pyqtSlot(int, str, str, object)
    def _deliver(self, job: int, kind: str, name: str, payload: object) -> None:
        if job != self._job:
            return                                     # a cancelled or replaced download
        if kind == "progress":
            received, total = payload  # type: ignore[misc]
            self.progressed.emit(name, received, total)
            return
        self._name, self._cancel = None, None
        if kind == "done":
            self.succeeded.emit(name)
        elif kind == "failed":
            self.failed.emit(name, str(payload))
        else:
            self.cancelled.emit(name)

"""The worker's QThread: started (launch), and stopped and joined (shutdown), which only closing the window
does: switching or stopping a source never waits (ui/runs.py)."""

from __future__ import annotations

import logging

from PyQt6.QtCore import Qt, QThread

from transpose_live.ui.worker import PipelineWorker

log = logging.getLogger(__name__)


def launch(worker: PipelineWorker) -> QThread:
    """Move `worker` to a new QThread, run `start` there; the thread quits when the worker finishes."""
    thread = QThread()
    thread.setObjectName("transpose-live pipeline")
    worker.moveToThread(thread)
    thread.started.connect(worker.start)
    # direct: quit() is thread-safe, and the thread must end even while the GUI thread is busy
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.start()
    return thread


def shutdown(worker: PipelineWorker | None, thread: QThread | None, timeout_ms: int = 15000) -> bool:
    """Stop the worker and join its thread (closing the window only: switching and stopping never join).
    True when joined."""
    if worker is not None:
        worker.stop()
    if thread is None:
        return True
    if thread.isRunning():
        thread.quit()          # takes effect once start() has returned
        if not thread.wait(timeout_ms):
            log.warning("pipeline thread did not stop within %.1f s", timeout_ms / 1000)
            return False
    return True


"""Runs: the window's workers, the one playing now (with its QThread), those told to stop whose threads have
not finished yet, and where each file stopped (its next Start goes on there).

Switching or stopping a source never waits for a worker: it is told to stop and kept, with its QThread, until
the thread has finished (a QThread deleted while running aborts the process), then forgotten. Only `join_all`
(closing the window) waits. GUI thread only."""

from __future__ import annotations

from PyQt6.QtCore import QThread

from transpose_live.ui.threads import launch, shutdown
from transpose_live.ui.worker import PipelineWorker


class Runs:
    def __init__(self) -> None:
        self.worker: PipelineWorker | None = None
        self.thread: QThread | None = None
        self._retired: list[tuple[PipelineWorker, QThread]] = []
        self._resume: dict[str | None, float] = {}        # a file's key -> where Start goes on after Stop

    @property
    def retired(self) -> int:
        """Workers told to stop whose threads have not finished yet."""
        return len(self._retired)

    def is_current(self, sender: object) -> bool:
        """Whether a signal comes from the worker now playing (not from one being replaced)."""
        return self.worker is not None and sender is self.worker

    def is_ours(self, sender: object) -> bool:
        """The worker now playing or a retired one (its last error is still worth showing)."""
        return sender is self.worker or any(sender is w for w, _ in self._retired)

    def begin(self, worker: PipelineWorker) -> None:
        """Run `worker` in a new QThread; it is the current one (retire the one before first)."""
        self.worker, self.thread = worker, launch(worker)

    def retire_current(self) -> PipelineWorker | None:
        """Tell the current worker to stop and forget it; its thread is dropped when it has finished."""
        worker = self._retire_current()
        if worker is not None:
            worker.stop()
        return worker

    def finished(self, sender: object) -> PipelineWorker | None:
        """The current worker's `finished` (None from a retired one: its thread's finished signal forgets it)."""
        return self._retire_current() if self.is_current(sender) else None

    def stopped_at(self, key: str | None, seconds: float) -> None:
        self._resume[key] = seconds

    def resume_at(self, key: str | None) -> float | None:
        """Where the file's next Start goes on (taken: once)."""
        return self._resume.pop(key, None)

    def join_all(self) -> None:
        """Stop every worker and join its thread (bounded wait): closing the window only."""
        self.retire_current()
        for worker, thread in list(self._retired):
            shutdown(worker, thread)
        self._retired.clear()

    def _retire_current(self) -> PipelineWorker | None:
        worker, thread = self.worker, self.thread
        self.worker, self.thread = None, None
        if worker is not None and thread is not None:
            self._retired.append((worker, thread))
            thread.finished.connect(lambda w=worker: self._forget(w))
            if thread.isFinished():
                self._forget(worker)
        return worker

    def _forget(self, worker: PipelineWorker) -> None:
        for item in [item for item in self._retired if item[0] is worker]:
            item[1].wait(100)              # finished: returns at once (the thread's last instructions)
            self._retired.remove(item)

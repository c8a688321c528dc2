"""Keeping what the user found, as the window's actions: a screenshot of the window (Ctrl+S), a recording of
the annotated view (Ctrl+R), the session's poses as JSON Lines (Ctrl+E). Each asks where with a dialog unless
given a path; the files themselves are ui/keep.py's (PoseLog, Recorder)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QFileDialog, QWidget

from transpose_live.errors import TransposeLiveError
from transpose_live.ui.actions import set_checked_quietly
from transpose_live.ui.keep import PoseLog, Recorder
from transpose_live.ui.source_bar import VIDEO_FILTER
from transpose_live.ui.worker import PipelineWorker


class Keeping:
    """window: what a screenshot shows and the dialogs' parent. record_action: the Record toggle, kept in step.
    worker: the worker playing now (None: stopped). say(text, ms) / fail(text): the window's status line and
    error message."""

    def __init__(self, window: QWidget, record_action: QAction, *, worker: Callable[[], PipelineWorker | None],
                 say: Callable[[str, int], None], fail: Callable[[str], None]):
        self._window = window
        self._record_action = record_action
        self._worker = worker
        self._say = say
        self._fail = fail
        self.pose_log = PoseLog()                 # every shown frame's poses, this session
        self.recorder: Recorder | None = None
        self.last_saved: Path | None = None
        record_action.toggled.connect(self._record_toggled)
        self.fps = 25.0                           # the recording's frame rate: the source's

    def save_screenshot(self, path: str | Path | None = None) -> Path | None:
        """A picture of the whole window (None: ask where)."""
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self._window, "Save a screenshot", "transpose-live.png",
                                                    "Pictures (*.png *.jpg)")
            if not chosen:
                return None
            path = chosen
        path = Path(path)
        if not self._window.grab().save(str(path)):
            self._fail(f"could not save the screenshot to {path}")
            return None
        self.last_saved = path
        self._say(f"saved {path}", 4000)
        return path

    def start_recording(self, path: str | Path, fps: float | None = None) -> None:
        """Record the annotated view (what the worker shows, overlay included) from the next frame on."""
        self.finish_recording()
        self.recorder = Recorder(path, fps or 25.0)
        worker = self._worker()
        if worker is not None:
            worker.start_recording(self.recorder)
        set_checked_quietly(self._record_action, True)
        self._say(f"recording to {path}", 0)

    def stop_recording(self) -> threading.Thread | None:
        """Stop recording; the file is finished in a background thread (returned)."""
        thread = self.finish_recording()
        set_checked_quietly(self._record_action, False)
        return thread

    def finish_recording(self, wait: bool = False) -> threading.Thread | None:
        """Finish the file in a background thread (a video's end takes a while); `wait`: join it (at close)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        worker = self._worker()
        if worker is not None:
            worker.stop_recording()

        def finish() -> None:
            if recorder.close() and wait:
                self._say(f"recorded {recorder.frames} frames to {recorder.path}", 4000)

        thread = threading.Thread(target=finish, name="transpose-live recording", daemon=True)
        thread.start()
        if wait:
            thread.join(10)
        return thread

    def _record_toggled(self, on: bool) -> None:
        if not on:
            self.stop_recording()
            return
        path, _ = QFileDialog.getSaveFileName(self._window, "Record the view to", "transpose-live.mp4", VIDEO_FILTER)
        if not path:
            self.stop_recording()
            return
        self.start_recording(path, fps=self.fps)

    def export_poses(self, path: str | Path | None = None) -> int:
        """This session's poses as JSON Lines (the `video --json` format). Returns the lines written."""
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self._window, "Export the poses", "poses.jsonl",
                                                    "JSON Lines (*.jsonl)")
            if not chosen:
                return 0
            path = chosen
        try:
            lines = self.pose_log.export(path)
        except TransposeLiveError as exc:
            self._fail(str(exc))
            return 0
        self._say(f"wrote {lines} frames of poses to {path}", 4000)
        return lines

"""The web view's event worker: takes each event from the cameras' sinks (a bounded queue, so a slow disk
never holds up a pipeline), encodes its snapshot, keeps it in the EventStore and pushes it to the open pages;
prunes the store now and then (retention)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from transpose_live.monitor.web.push import Broadcaster
from transpose_live.monitor.web.store import EventStore, iso_time

log = logging.getLogger(__name__)

QUEUE = 1000             # events waiting for the disk
PRUNE_EVERY_S = 60.0
SNAPSHOT_QUALITY = 85


@dataclass
class Pending:
    camera: str
    record: dict
    image: np.ndarray | None      # the annotated frame at the event (None: no frame yet)
    epoch: float                  # wall clock when the sink got the event
    recorded: bool


class EventRecorder:
    """submit() from any thread; close() handles what is queued, then stops."""

    def __init__(self, store: EventStore, push: Broadcaster, prune_every_s: float = PRUNE_EVERY_S):
        self.store, self.push = store, push
        self.prune_every_s = prune_every_s
        self.handled = 0
        self._queue: queue.Queue[Pending | None] = queue.Queue(maxsize=QUEUE)
        self._full_warned = False
        self._thread = threading.Thread(target=self._run, name="web-events", daemon=True)
        self._thread.start()

    def submit(self, item: Pending) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            if not self._full_warned:
                self._full_warned = True
                log.warning("web view: events arrive faster than they can be kept; pushing them unkept")
            self.push.publish({"type": "event", "event": _unkept(item)})

    def _run(self) -> None:
        next_prune = time.monotonic()
        while True:
            if time.monotonic() >= next_prune:
                self.store.prune()
                next_prune = time.monotonic() + self.prune_every_s
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is None:
                return
            try:
                self._handle(item)
            except Exception:       # a bug here must not end the worker (the next event may be fine)
                log.exception("web view: an event could not be handled")

    def _handle(self, item: Pending) -> None:
        snapshot = None
        if item.image is not None:
            ok, data = cv2.imencode(".jpg", item.image, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY])
            snapshot = data.tobytes() if ok else None
        event_id = self.store.add(item.camera, item.record, item.epoch, snapshot, item.recorded)
        event = self.store.get(event_id) if event_id is not None else None
        self.push.publish({"type": "event", "event": event or _unkept(item)})
        self.handled += 1

    def close(self, timeout: float = 5.0) -> None:
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)


def _unkept(item: Pending) -> dict:
    """An event that could not be kept, as the pages show events (no id, snapshot or clip)."""
    track = item.record.get("id")
    return {"id": None, "camera": item.camera, "type": item.record.get("event"), "time": iso_time(item.epoch),
            "epoch": item.epoch, "timestamp": item.record.get("timestamp"),
            "track_id": track if isinstance(track, int) else None, "record": item.record, "snapshot": None,
            "clip": None}


__all__ = ["EventRecorder", "Pending"]

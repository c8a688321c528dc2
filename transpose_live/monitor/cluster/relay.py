"""Inside a camera worker: what its pipeline hands on. `CameraRelay` is the pipeline's sink: it moves track
ids into this start's range, runs the pose events on them, puts per-frame summaries and events in the
`Outbox` the driver empties, records segments and keeps the newest frame for a JPEG on demand.
`FrameKeeper` wraps the source so the relay can draw on the frame a result belongs to.

Track ids. The tracker numbers persons 1, 2, ... in every run; after a restart a camera's persons would
take the numbers of persons seen before. The k-th restart of a camera shifts its ids by k x `ID_RANGE`
(first start 1.., first restart 1000001.., ...), so an id in the logs, events and MQTT always means one person.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import replace
from typing import Callable, Iterator

import numpy as np

from transpose_live.live.spec import RunSpec
from transpose_live.media.sinks import Abortable, EventSink, Sink, abort_sink, wall_clock
from transpose_live.types import FrameResult

ID_RANGE = 1_000_000
MAX_FRAMES = 300        # summaries waiting for the driver, at most (older ones are dropped and counted)
MAX_EVENTS = 10_000


def shift_ids(result: FrameResult, offset: int, keep_attention: bool = False) -> FrameResult:
    """The result with its poses' track ids moved by `offset`; attention maps dropped unless kept (they are
    drawn here, never sent)."""
    poses = [replace(p, track_id=None if p.track_id is None else int(p.track_id) + offset,
                     attention=p.attention if keep_attention else None) for p in result.poses]
    return replace(result, poses=poses, image=None)


class Outbox:
    """Summaries and events waiting for the driver, in the order they happened (any thread). Bounded: when
    the driver falls behind the oldest summary goes first (counted); events are kept up to `max_events`."""

    def __init__(self, max_frames: int = MAX_FRAMES, max_events: int = MAX_EVENTS):
        self._lock = threading.Lock()
        self._seq = 0
        self._frames: collections.deque[tuple[int, FrameResult]] = collections.deque(maxlen=max_frames)
        self._events: collections.deque[tuple[int, dict]] = collections.deque(maxlen=max_events)
        self.frames_lost = 0        # summaries dropped because the driver did not come for them
        self.events_lost = 0

    def frame(self, result: FrameResult) -> None:
        with self._lock:
            if len(self._frames) == self._frames.maxlen:
                self.frames_lost += 1
            self._seq += 1
            self._frames.append((self._seq, result))

    def event(self, record: dict) -> None:
        record = {**record, "time": record.get("time") or wall_clock()}
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self.events_lost += 1
            self._seq += 1
            self._events.append((self._seq, record))

    def take(self) -> list[FrameResult | dict]:
        """Everything waiting, oldest first: FrameResults (summaries) and dicts (events)."""
        with self._lock:
            items: list[tuple[int, FrameResult | dict]] = [*self._frames, *self._events]
            self._frames.clear()
            self._events.clear()
        return [item for _, item in sorted(items, key=lambda pair: pair[0])]


class FrameKeeper:
    """The source, iterated as it is, keeping its last `keep` frames by index; every other attribute (is_live,
    on_event, close, reconnects, state, fps) is the source's own."""

    def __init__(self, source, keep: int):
        self.source = source
        self.keep = int(keep)
        self._frames: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._it: Iterator | None = None

    def __iter__(self):
        self._it = iter(self.source)
        return self

    def __next__(self):
        if self._it is None:
            self._it = iter(self.source)
        frame = next(self._it)
        with self._lock:
            self._frames[frame.index] = frame.image
            while len(self._frames) > self.keep:
                self._frames.popitem(last=False)
        return frame

    def image(self, index: int) -> np.ndarray | None:
        with self._lock:
            return self._frames.get(index)

    def __getattr__(self, name: str):
        if name in ("source", "_it", "_frames", "_lock", "keep"):
            raise AttributeError(name)
        return getattr(self.source, name)

    def __setattr__(self, name: str, value) -> None:
        if name == "on_event":              # the pipeline hands the source its event callback
            setattr(self.source, name, value)
        else:
            object.__setattr__(self, name, value)


class CameraRelay(Sink, EventSink, Abortable):
    """The pipeline's one sink in a worker (needs no image: it draws itself, only when recording or asked).

    events: a PoseEvents (presence, falls) fed the shifted results. recorder: a SegmentedVideoWriter or None.
    restarted: a worker restarted by Ray says `stream_back` with its first frame (after `worker_restarted`).
    """

    needs_image = False

    def __init__(self, outbox: Outbox, keeper: FrameKeeper, spec: RunSpec, offset: int, events,
                 recorder=None, restarted: bool = False, started: float = 0.0,
                 input_size: tuple[int, int] | None = None, on_first: Callable[[], None] | None = None):
        self.outbox = outbox
        self.keeper = keeper
        self.spec = spec
        self.offset = int(offset)
        self.events = events
        self.recorder = recorder
        self.restarted = restarted
        self.started = started
        self.input_size = input_size
        self.on_first = on_first                  # told with the first frame (the worker's start-up timeline)
        self.attention = bool(spec.attention)     # draw the dependency areas (the web view's toggle)
        self.persons = 0
        self.drawn = 0                            # frames kept as the newest (the driver asks for new ones)
        self._first = True
        self._last_time = 0.0
        self._newest: tuple[np.ndarray, FrameResult] | None = None
        self._lock = threading.Lock()

    def draw(self, image: np.ndarray, result: FrameResult) -> np.ndarray:
        from transpose_live.live.render import draw_frame

        spec = self.spec
        return draw_frame(image, result, draw_boxes=spec.boxes, draw_ids=spec.ids, attention=self.attention,
                          min_score=spec.min_joint_score, joint=spec.joint, input_size=self.input_size)

    def write_frame(self, image, result: FrameResult) -> None:
        import time

        shifted = shift_ids(result, self.offset)
        drawable = shift_ids(result, self.offset, keep_attention=True) if self.attention else shifted
        if self._first:
            self._first = False
            if self.on_first is not None:
                self.on_first()
            if self.restarted:
                self.outbox.event({"event": "stream_back", "after": "worker_restarted",
                                   "down_s": round(time.monotonic() - self.started, 3), "reconnects": 0})
        self.persons = len(shifted.poses)
        self._last_time = shifted.timestamp
        self.outbox.frame(shifted)
        for record in self.events.update(shifted):
            self.outbox.event(record)
        raw = self.keeper.image(result.index)
        if raw is not None:
            with self._lock:
                self._newest = (raw, drawable)
                self.drawn += 1
            if self.recorder is not None:
                self.recorder.write_frame(self.draw(raw, drawable), shifted)

    def write_event(self, record: dict) -> None:
        self.outbox.event(record)

    def newest_jpeg(self, quality: int = 80) -> bytes | None:
        """The newest frame drawn with its poses, as JPEG bytes (None before the first frame)."""
        import cv2  # deferred: OpenCV loads on first use

        with self._lock:
            newest = self._newest
        if newest is None:
            return None
        ok, data = cv2.imencode(".jpg", self.draw(*newest), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        return data.tobytes() if ok else None

    def close(self) -> None:
        for record in self.events.finish(self._last_time):     # persons still present leave
            self.outbox.event(record)
        if self.recorder is not None:
            self.recorder.close()

    def abort(self) -> None:
        if self.recorder is not None:
            abort_sink(self.recorder)


__all__ = ["CameraRelay", "FrameKeeper", "Outbox", "shift_ids", "ID_RANGE"]

"""Everything the web server's routes read, in one object (the routes get it; they never reach for globals)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from transpose_live.monitor.web.clips import ClipCutter
from transpose_live.monitor.web.config import WebConfig
from transpose_live.monitor.web.feeds import CameraFeed
from transpose_live.monitor.web.hub import JpegStream
from transpose_live.monitor.web.push import Broadcaster
from transpose_live.monitor.web.store import EventStore


@dataclass
class WebState:
    config: WebConfig
    store: EventStore
    push: Broadcaster
    clips: ClipCutter | None = None
    # the shared model's counters (pose.batching.BatchStats or alike: forwards, crops, mean_batch, ...)
    model_stats: Callable[[], Any] | None = None
    feeds: dict[str, CameraFeed] = field(default_factory=dict)
    streams: dict[str, JpegStream] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def camera(self, name: str) -> tuple[CameraFeed, JpegStream] | None:
        """The camera called `name` (looked up, never used as a path), or None."""
        with self.lock:
            feed = self.feeds.get(name)
            return (feed, self.streams[name]) if feed is not None else None

    def cameras(self) -> list[CameraFeed]:
        """The cameras in name order (the grid's order, whichever connected first)."""
        with self.lock:
            return [self.feeds[name] for name in sorted(self.feeds)]

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for feed in self.cameras() for s in feed.secrets)


__all__ = ["WebState"]

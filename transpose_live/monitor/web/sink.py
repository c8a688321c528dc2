"""The web view's end of a camera's output: a pipeline sink like the JSON Lines and MQTT writers (one event
stream, several transports). It takes every rendered frame and every event of its camera and hands them to
the view: frames to the camera's feed (tiles, MJPEG), events to the feed (state) and to the event worker
(store, snapshot, push). Nothing here waits on a disk or a network: the pipeline never slows for a viewer."""

from __future__ import annotations

import time

import numpy as np

from transpose_live.media.sinks.base import Abortable, Event, EventSink, Sink
from transpose_live.monitor.web.feeds import CameraFeed, Controls
from transpose_live.monitor.web.recorder import EventRecorder, Pending
from transpose_live.types import FrameResult


class WebSink(Sink, EventSink, Abortable):
    """One camera's output to the web view (media.sinks' Sink, EventSink, Abortable); `bind(controls)` lets the
    page turn the pipeline's attention maps on and off (live.pipeline.Pipeline is such a controls object)."""

    needs_image = True

    def __init__(self, feed: CameraFeed, recorder: EventRecorder):
        self.feed = feed
        self.recorder = recorder

    def bind(self, controls: Controls) -> None:
        self.feed.controls = controls

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        self.feed.take_frame(image, result)

    def write_event(self, record: Event) -> None:
        """Every named event is kept and pushed (monitor.events', a stream's, a cluster's worker_restarted...),
        except the pipeline's periodic "stats", which only update the camera's figures."""
        kind = record.get("event")
        if not isinstance(kind, str) or not kind:
            return
        record = _scrubbed(self.feed, record)
        self.feed.take_event(record)
        if kind == "stats":
            return
        image, _ = self.feed.newest()
        self.recorder.submit(Pending(self.feed.name, record, image, time.time(), self.feed.records))

    def close(self) -> None:
        self.feed.end(failed=False)

    def abort(self) -> None:
        self.feed.end(failed=True)


def _scrubbed(feed: CameraFeed, record: dict) -> dict:
    """The record with the camera's password masked in its texts (a stream's reason may quote the URL)."""
    if not feed.secrets:
        return record
    return {key: feed.scrub(value) if isinstance(value, str) else value for key, value in record.items()}


__all__ = ["WebSink"]

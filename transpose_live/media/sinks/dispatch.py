"""One door between a run and its outputs, in the manner of Frigate's comms dispatcher: the pipeline hands
every frame and every event to `OutputDispatcher`, which passes them to the outputs behind it. Each output
keeps its own policy (a file writes everything, MQTT drops pose summaries while the broker is away and queues
events, Home Assistant keeps the last state of each entity); the dispatcher only routes, in order, and closes
or drops them all at the end.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from transpose_live.errors import OutputClosed, TransposeLiveError
from transpose_live.media.sinks.base import Event, EventListener, EventSink, Sink, abort_sink
from transpose_live.types import FrameResult


class OutputDispatcher:
    """Frames to every sink; events to every EventSink, then to the listeners (a window, a test); close()
    or abort() all of them once. Sinks are checked here, at the boundary: anything that is not a `Sink`
    is one clear error. `needs_image` is True when any sink wants the rendered frame."""

    def __init__(self, sinks: Iterable[object] = (), listeners: Iterable[EventListener] = ()):
        checked: list[Sink] = []
        for sink in sinks:
            if not isinstance(sink, Sink):
                raise TransposeLiveError(f"not a sink: {type(sink).__name__} (needs write_frame, close and "
                                         "needs_image; see transpose_live.media.sinks.Sink)")
            checked.append(sink)
        self.sinks: list[Sink] = checked
        self.event_sinks: list[EventSink] = [s for s in checked if isinstance(s, EventSink)]
        self.listeners: list[EventListener] = list(listeners)

    @property
    def needs_image(self) -> bool:
        return any(sink.needs_image for sink in self.sinks)

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        for sink in self.sinks:
            sink.write_frame(image, result)

    def publish(self, record: Event) -> None:
        """One event to the outputs that take events, then to the listeners (any thread)."""
        for sink in self.event_sinks:
            sink.write_event(record)
        for listener in self.listeners:
            listener(record)

    def finish(self, keep: bool) -> None:
        """Close every output (keep) or drop them all (after an error); see finish_sinks."""
        finish_sinks(self.sinks, keep)


def finish_sinks(sinks: Sequence[Sink], keep: bool) -> None:
    """Close every sink (keep) or abort them all (after an error). Every sink is closed even if one fails;
    the first failure is raised after."""
    if not keep:
        for sink in sinks:
            abort_sink(sink)
        return
    failure = None
    for sink in sinks:
        try:
            sink.close()
        except OutputClosed:
            pass                    # its reader went away: what it got is what it wanted
        except Exception as exc:
            failure = failure or exc
    if failure is not None:
        if isinstance(failure, TransposeLiveError):
            raise failure
        raise TransposeLiveError(f"closing the outputs failed: {failure}") from failure


__all__ = ["OutputDispatcher", "finish_sinks"]

"""The output contract: what a run hands its outputs, declared once.

Every output of a run is a `Sink`: it gets each processed frame (`write_frame`, from the pipeline's last stage,
in order) and is finished with `close()`, or dropped with `abort()` after a failure when it is `Abortable`.
`needs_image` says whether it wants the rendered frame (False: it gets None and nothing is drawn for it).
Outputs that also carry the run's events (persons appearing and leaving, falls, a stream lost and back,
periodic stats) are `EventSink`s. The library's outputs subclass these protocols explicitly (the video, JSON
Lines, COCO results, segments, MQTT, Home Assistant); a caller's own output only needs the same methods.
The pipeline meets its outputs through one `dispatch.OutputDispatcher`, never one by one.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from transpose_live.types import FrameResult

log = logging.getLogger(__name__)

# one event: JSON-ready, {"event": name, "timestamp": seconds of the source, ...} (monitor.events lists them)
Event = dict[str, Any]
EventListener = Callable[[Event], None]


@runtime_checkable
class Sink(Protocol):
    """One output of a run's frames."""

    needs_image: bool

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        """One processed frame: its rendered picture (None unless needs_image) and its poses."""
        ...

    def close(self) -> None:
        """Finish: what was written is kept (a file moves into place). Called once the run has ended."""
        ...


@runtime_checkable
class Abortable(Protocol):
    """An output that can drop what it wrote (a file not yet in place) after a failure elsewhere."""

    def abort(self) -> None: ...


@runtime_checkable
class EventSink(Protocol):
    """An output that also carries the run's events. write_event may be called from the pipeline's last
    stage and from a stream's reading thread (stream_lost / stream_back): implementations lock what they share."""

    def write_event(self, record: Event) -> None: ...


class RunControls(Protocol):
    """What an output may ask of the run that feeds it (live.pipeline.Pipeline has it)."""

    def set_attention(self, on: bool) -> None: ...


@runtime_checkable
class Controllable(Protocol):
    """An output that steers its run: the pipeline hands it its controls once, when it is built (the web view
    turns the attention maps on while someone watches them)."""

    def bind(self, controls: RunControls) -> None: ...


def abort_sink(sink: Sink) -> None:
    """Drop an output after an error (when it can: Abortable), else close it; never raises (the first
    error is the one to report)."""
    try:
        if isinstance(sink, Abortable):
            sink.abort()
        else:
            sink.close()
    except Exception as exc:
        log.debug("closing %s after an error failed: %s", type(sink).__name__, exc)


__all__ = ["Sink", "EventSink", "Abortable", "Controllable", "RunControls", "Event", "EventListener", "abort_sink"]

"""A run's outputs behind one contract (base.py: `Sink`, `EventSink`) and one door (dispatch.py:
`OutputDispatcher`), opened in one place (outputs.py: `open_outputs`, `check_outputs`).

    base.py       the protocols every output implements, abort_sink
    dispatch.py   OutputDispatcher: frames and events to the outputs, close or drop them all; finish_sinks
    outputs.py    open_outputs / check_outputs: what a run asks for, opened all or nothing
    target.py     OutputTarget: temporary file renamed into place, or a stream written directly
    video.py      VideoWriter (H.264, timestamps and audio kept), FirstFrameVideoWriter
    jsonl.py      JsonlWriter: poses and events as JSON Lines
    coco.py       CocoResultsWriter: COCO keypoint results
    segments.py   SegmentedVideoWriter: a stream recorded in complete files of N minutes

Imports only the vocabulary (errors, types) and media.records."""

from transpose_live.media.sinks.base import Abortable, Event, EventListener, EventSink, Sink, abort_sink
from transpose_live.media.sinks.coco import CocoResultsWriter
from transpose_live.media.sinks.dispatch import OutputDispatcher, finish_sinks
from transpose_live.media.sinks.jsonl import JsonlWriter, wall_clock
from transpose_live.media.sinks.outputs import Recording, SinkOpener, check_outputs, open_outputs
from transpose_live.media.sinks.segments import SegmentedVideoWriter, cleanup_partial, safe_camera_name
from transpose_live.media.sinks.target import STDOUT, OutputTarget, check_output, is_stream_path, write_json
from transpose_live.media.sinks.video import (
    VIDEO_SUFFIXES,
    AudioCopier,
    FirstFrameVideoWriter,
    VideoSourceFacts,
    VideoWriter,
    pick_video_encoder,
)

__all__ = ["Sink", "EventSink", "Abortable", "Event", "EventListener", "abort_sink", "OutputDispatcher",
           "finish_sinks", "open_outputs", "check_outputs", "Recording", "SinkOpener", "OutputTarget", "STDOUT",
           "check_output", "is_stream_path", "write_json", "VideoWriter", "FirstFrameVideoWriter", "AudioCopier",
           "VideoSourceFacts", "pick_video_encoder", "VIDEO_SUFFIXES", "JsonlWriter", "wall_clock",
           "CocoResultsWriter", "SegmentedVideoWriter", "cleanup_partial", "safe_camera_name"]

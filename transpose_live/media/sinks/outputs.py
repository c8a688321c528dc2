"""The one place that opens a run's outputs: `open_outputs` (the run API, `rtsp`, `webcam`, the window and every
camera of `monitor` call it) and `check_outputs`, which tells everything about the named paths before any work.

Outputs of the layers above media (MQTT, Home Assistant, the web view) are opened here too, from the
`SinkOpener`s their owners hand in, after the media outputs and under the same rule: when one fails to open,
those already opened are dropped and nothing is left half made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sinks.base import Sink, abort_sink
from transpose_live.media.sinks.coco import CocoResultsWriter
from transpose_live.media.sinks.jsonl import JsonlWriter
from transpose_live.media.sinks.segments import SegmentedVideoWriter
from transpose_live.media.sinks.target import STDOUT, check_output, is_stream_path
from transpose_live.media.sinks.video import VIDEO_SUFFIXES, FirstFrameVideoWriter, VideoSourceFacts, VideoWriter

PathLike = str | os.PathLike
# an output of a layer above media, opened with the others: it gets the opened source
SinkOpener = Callable[[VideoSourceFacts], Sink]


@dataclass(frozen=True)
class Recording:
    """Segments of the annotated stream: `<folder>/<camera>/<camera>-<UTC time>.mp4`, `segment_minutes` each."""

    folder: Path
    camera: str
    segment_minutes: float = 10.0


def open_outputs(source: VideoSourceFacts, out: PathLike | None = None, json_out: PathLike | None = None,
                 coco_json: PathLike | None = None, live: bool = False, *, record: Recording | None = None,
                 more: Iterable[SinkOpener] = ()) -> list[Sink]:
    """The outputs a run asks for, in this order: the video (`out`: the source's size, timestamps, time base
    and audio; opened at the first frame when the size is not known yet), JSON Lines (`json_out`; `live`:
    written in place, line by line), COCO results, segments (`record`), then `more`. On any failure the
    ones opened are dropped and the error is raised."""
    sinks: list[Sink] = []
    try:
        if out is not None:
            width, height = source.size
            if width and height:
                sinks.append(VideoWriter(out, width, height, fps=source.fps, time_base=source.time_base,
                                         audio_from=source))
            else:                  # a stream still connecting: its size comes with the first frame
                sinks.append(FirstFrameVideoWriter(out, source))
        if json_out is not None:
            sinks.append(JsonlWriter(json_out, live=live))
        if coco_json is not None:
            sinks.append(CocoResultsWriter(coco_json))
        if record is not None:
            sinks.append(SegmentedVideoWriter(record.folder, record.camera, record.segment_minutes,
                                              fps=source.fps))
        for opener in more:
            sinks.append(opener(source))
    except BaseException:
        for sink in sinks:
            abort_sink(sink)
        raise
    return sinks


def check_outputs(out: PathLike | None = None, json_out: PathLike | None = None, coco_json: PathLike | None = None,
                  inputs: Sequence[PathLike | None] = ()) -> None:
    """Everything about the output paths that can be told before any work: a video container, different
    files, never an input, writable folders."""
    if out is not None:
        if os.fspath(out) == STDOUT:
            raise TransposeLiveError("--out - is not possible: a video must be a file; stream the poses with "
                                     "--json - instead")
        if Path(out).suffix.lower() not in VIDEO_SUFFIXES:
            raise TransposeLiveError(f"--out must be a video file ({', '.join(VIDEO_SUFFIXES)}), got "
                                     f"{Path(out).name!r}")
    named = [p for p in (out, json_out, coco_json) if p is not None]
    resolved = [os.fspath(p) if os.fspath(p) == STDOUT else str(Path(p).expanduser().resolve()) for p in named]
    if len(set(resolved)) < len(resolved):
        raise TransposeLiveError("--out, --json and --coco-json must name different outputs")
    sources = {str(Path(p).expanduser().resolve()) for p in inputs if p is not None}
    for path, target in zip(named, resolved):
        if target in sources:
            raise TransposeLiveError(f"refusing to overwrite the input {path}")
    for named_path, what in ((out, "video"), (json_out, "results"), (coco_json, "COCO results")):
        if named_path is not None and not is_stream_path(named_path):
            check_output(named_path, what)


__all__ = ["open_outputs", "check_outputs", "Recording", "SinkOpener"]

"""The public way to run transpose-live from Python, and the one path every front end takes.

    import transpose_live as tl

    summary = tl.process_video("in.mp4", out="out.mp4", json="poses.jsonl", detect_every=2)
    poses = tl.annotate_image("photo.jpg", out="photo_pose.jpg")
    with tl.open_run(0) as run:                  # a camera, a file, a stream URL, an image folder
        for frame in run:                        # FrameResult: .poses, .timestamp, .image (drawn)
            ...

Options are the CLI's, by the same names (see `RunSpec`); they are validated before anything is opened
or loaded. A `PoseRunner` holds what is loaded once (model and detector); pass `runner=` to reuse it.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from transpose_live.detect import create_detector
from transpose_live.errors import TransposeLiveError
from transpose_live.live.following import PersonFollower, confident
from transpose_live.live.pipeline import EventDetector, FrameSource, Pipeline, PipelineStats
from transpose_live.live.spec import RunSpec
from transpose_live.media import sources
from transpose_live.media.photos import check_photo_output, read_photo, write_photo
from transpose_live.media.redact import source_label
from transpose_live.media.sinks.base import EventListener, Sink, abort_sink
from transpose_live.media.sinks.outputs import SinkOpener, check_outputs, open_outputs
from transpose_live.media.sinks.target import is_stream_path
from transpose_live.model.device import resolve_device_name
from transpose_live.progress import Progress, WarningsToProgress
from transpose_live.types import FrameResult, Pose

if TYPE_CHECKING:
    from transpose_live.detect.base import Detector
    from transpose_live.pose.estimator import PoseEstimator

# options that decide what is loaded: a runner serves only specs that agree on them
_LOADED = ("model", "weights", "device", "backend", "precision", "image_size", "detector", "detect_tiles")


# ------------------------------------------------------------------------------------------ loading

def load_estimator(spec: RunSpec) -> PoseEstimator:
    """The PoseEstimator a spec names (the shipped default for model "default")."""
    from transpose_live.pose.estimator import PoseEstimator  # deferred: torch

    return PoseEstimator(model=spec.model, weights=spec.weights, device=spec.device,
                         image_size=spec.image_size, flip=spec.flip, backend=spec.backend,
                         precision=spec.precision)


@dataclass
class PoseRunner:
    """A validated spec with its model and detector loaded: finds poses in pictures and builds pipelines."""

    spec: RunSpec
    estimator: PoseEstimator
    detector: Detector

    def with_options(self, **options) -> "PoseRunner":
        """The same loaded parts under changed run options (drawing, thresholds, smoothing, frames...)."""
        if not options:
            return self
        spec = RunSpec.from_options(self.spec, **options)
        changed = [name for name in _LOADED if getattr(spec, name) != getattr(self.spec, name)]
        if changed:
            raise TransposeLiveError(f"{', '.join(changed)} differ from what this runner loaded; "
                                     "load_runner() with them instead")
        return replace(self, spec=spec)

    def find_poses(self, image: np.ndarray, boxes: Sequence | None = None) -> list[Pose]:
        """The persons in one picture: in `boxes` (K, 4) x, y, w, h when given, else where the detector
        finds them (nobody found: no poses). Persons below min_person_score are left out."""
        self.estimator.flip = self.spec.flip
        if boxes is None:
            # one picture: nothing to run beside (a detection started for a next frame would be wasted)
            return PersonFollower.from_spec(self.detector, self.estimator, self.spec.replace(detect_async=False))(image)
        given = np.asarray(boxes, np.float64).reshape(-1, 4)
        poses = self.estimator.estimate(image, given, attention=self.spec.attention)
        return confident(poses, self.spec.min_person_score)

    def draw(self, image: np.ndarray, poses: Sequence[Pose], ids: bool | None = None) -> np.ndarray:
        """A copy of `image` with the poses drawn as the spec says (boxes, ids, attention, joint)."""
        from transpose_live.live.render import annotate  # deferred: torch and OpenCV (pose.preprocess)

        spec = self.spec
        height, width = self.estimator.config.image_size
        return annotate(image, poses, draw_boxes=spec.boxes, draw_ids=spec.ids if ids is None else ids,
                        attention=spec.attention, min_score=spec.min_joint_score, joint=spec.joint,
                        input_size=(int(height), int(width)))

    def pipeline(self, source: FrameSource, sinks: Sequence[Sink] = (), **callbacks: Any) -> Pipeline:
        """A Pipeline over `source` with these parts (callbacks: on_frame, on_result, own_sinks)."""
        self.estimator.flip = self.spec.flip
        return Pipeline(source, self.spec, sinks, estimator=self.estimator, detector=self.detector, **callbacks)


def load_runner(spec: RunSpec | None = None, **options) -> PoseRunner:
    """Validate the options and load the model and the detector once."""
    spec = RunSpec.from_options(spec, **options)
    # a bad detector fails before the (slower) model loads; on a GPU the SSD runs there too
    detector = create_detector(spec.detector, device=resolve_device_name(spec.device), tiles=spec.detect_tiles)
    return PoseRunner(spec, load_estimator(spec), detector)


def _runner_for(runner: PoseRunner | None, options: dict) -> PoseRunner:
    return runner.with_options(**options) if runner is not None else load_runner(**options)


# ------------------------------------------------------------------------------------------ sources

def _open(source: Any, spec: RunSpec) -> tuple[Any, bool]:
    """(opened source, whether we opened it). Opened Sources are used as they are."""
    if isinstance(source, (str, int)) or hasattr(source, "__fspath__"):
        return sources.open_source(source, start=spec.start, end=spec.end), True
    if not hasattr(source, "__next__"):
        raise TransposeLiveError(f"not a source: {source!r} (give a path, a camera index or a URL)")
    return source, False


# ------------------------------------------------------------------------------------------ videos

@dataclass
class RunSummary:
    """How a run went: frames, speed, persons (distinct track ids), what was written, why it ended."""

    source: str
    frames: int
    dropped: int
    wall_s: float
    persons: int
    outputs: list[str] = field(default_factory=list)
    stopped: str | None = None      # None: the source ran out; "interrupted", "output closed", "stopped"
    stats: PipelineStats | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def line(self) -> str:
        head = f"{self.source}: {self.frames} frames"
        if self.stopped:
            head += f" ({self.stopped})"
        written = f"wrote {', '.join(self.outputs)}" if self.outputs else "nothing written"
        return (f"{head} in {self.wall_s:.1f} s ({self.fps:.1f} fps), {self.dropped} dropped, "
                f"{self.persons} person{'' if self.persons == 1 else 's'}; {written}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during process_video: the outputs were finished; `summary` tells how far it got."""

    def __init__(self, summary: RunSummary):
        super().__init__(summary.line())
        self.summary = summary


def process_video(source, out: str | os.PathLike | None = None, json: str | os.PathLike | None = None,
                  coco_json: str | os.PathLike | None = None, *, progress: bool = False,
                  runner: PoseRunner | None = None, events: Sequence[EventDetector] = (), sinks: Sequence[Sink] = (),
                  more_outputs: Iterable[SinkOpener] = (), on_event: EventListener | None = None,
                  stats_every: float | None = None, **options: Any) -> RunSummary:
    """Poses on every frame of `source` (a video file, image folder, camera index, stream URL or an opened
    Source) into an annotated video (`out`, audio and timestamps kept), JSON Lines (`json`, "-" for
    stdout) and/or COCO results (`coco_json`). Files lose no frame; live sources keep the newest.
    progress: a progress bar on stderr. events: detectors (transpose_live.monitor.events) whose events, with a
    stream's own (stream_lost / stream_back), go into the JSON Lines, extra `sinks` and on_event;
    more_outputs: outputs opened with the others (open_outputs' `more`: MQTT, Home Assistant), finished with them.
    `duration` (an option) ends the run after that many seconds; stats_every adds {"event": "stats"} lines
    (fps, latency percentiles) that often. Ctrl-C finishes the outputs and raises Interrupted."""
    spec = RunSpec.from_options(runner.spec if runner is not None else None, **options)
    named_input = source if isinstance(source, (str, os.PathLike)) else None
    check_outputs(out, json, coco_json, inputs=[named_input])     # before anything is opened or loaded
    runner = runner.with_options(**options) if runner is not None else load_runner(spec)
    src, opened = _open(source, spec)
    try:
        outputs = open_outputs(src, out, json, coco_json, live=bool(src.is_live), more=more_outputs)
        total = getattr(src, "frame_count", None)
        if spec.max_frames is not None:
            total = min(total, spec.max_frames) if total else spec.max_frames
        ids: set[int] = set()
        bar = Progress(source_label(src), total, "frames", enabled=progress)

        def on_result(result: FrameResult) -> None:
            ids.update(p.track_id for p in result.poses if p.track_id is not None)
            bar.update()

        try:
            pipeline = runner.pipeline(src, [*outputs, *sinks], on_result=on_result, events=events,
                                       on_event=on_event, stats_every=stats_every)
        except BaseException:
            for sink in outputs:           # nothing ran: no half-made file is left behind
                abort_sink(sink)
            raise
        timer = threading.Timer(spec.duration, pipeline.end_source) if spec.duration else None
        try:
            with bar, WarningsToProgress(bar):
                if timer is not None:
                    timer.daemon = True
                    timer.start()
                stats = pipeline.run()
        except KeyboardInterrupt:
            raise Interrupted(_summary(src, pipeline.stats, ids, (out, json, coco_json))) from None
        finally:
            if timer is not None:
                timer.cancel()
        return _summary(src, stats, ids, (out, json, coco_json))
    finally:
        if opened:
            src.close()


def has_content(path) -> bool:
    """An output that got something: a stream (stdout, a FIFO, a device) was written as the run went; a
    file must hold bytes (a live JSON file exists from the start, empty until a frame)."""
    if is_stream_path(path):
        return True
    try:
        return Path(path).stat().st_size > 0
    except OSError:
        return False


def _summary(source, stats: PipelineStats, ids: set, outputs) -> RunSummary:
    written = ["stdout" if os.fspath(p) == "-" else os.fspath(p) for p in outputs
               if p is not None and has_content(p)]
    return RunSummary(source_label(source), stats.frames_processed, stats.frames_dropped, stats.wall_s, len(ids),
                      written, stats.stop_reason if stats.stopped else None, stats)


# ------------------------------------------------------------------------------------------ photos

def annotate_image(image_or_path, *, out: str | os.PathLike | None = None, boxes: Sequence | None = None,
                   runner: PoseRunner | None = None, **options) -> list[Pose]:
    """The poses of the persons in one picture (a path or a BGR array); `out` also writes it annotated.
    boxes: person boxes (K, 4) x, y, w, h to use instead of the detector. Nobody found: []."""
    if out is not None:
        check_photo_output(out)
    image = image_or_path if isinstance(image_or_path, np.ndarray) else read_photo(image_or_path)
    runner = _runner_for(runner, options)
    poses = runner.find_poses(image, boxes)
    if out is not None:
        write_photo(out, runner.draw(image, poses, ids=False))
    return poses


# ------------------------------------------------------------------------------------------ live

class LiveRun:
    """Iterate the FrameResults of a running pipeline as they come (with `.image` when render=True).
    The pipeline runs in its own threads; leaving the `with` block (or close()) stops it. Files lose no
    frame (the pipeline waits for the reader); live sources keep the newest frame."""

    def __init__(self, pipeline: Pipeline, source, opened: bool, render: bool):
        self.pipeline = pipeline
        self._source, self._opened = source, opened
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._done = threading.Event()
        self._error: BaseException | None = None
        if render:
            pipeline.on_frame = self._hand_over
        else:
            pipeline.on_result = lambda result: self._hand_over(None, result)
        self._thread = threading.Thread(target=self._run, name="transpose-live-run", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.pipeline.run()
        except BaseException as exc:    # noqa: BLE001 - handed to the reader's thread
            self._error = exc
        finally:
            self._done.set()

    def _hand_over(self, image, result: FrameResult) -> None:
        result = replace(result, image=image)
        while not self._done.is_set() and not self.pipeline.stopping:
            try:
                self._queue.put(result, timeout=0.05)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[FrameResult]:
        return self

    def __next__(self) -> FrameResult:
        while True:
            try:
                return self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._done.is_set() and self._queue.empty():
                    self._thread.join()
                    if self._error is not None:
                        error, self._error = self._error, None
                        raise error from None   # the producer thread's own error, as it was raised there
                    raise StopIteration from None

    @property
    def stats(self) -> PipelineStats:
        return self.pipeline.stats_snapshot()

    def close(self) -> None:
        """Stop the pipeline, finish its outputs, close a source opened here."""
        self.pipeline.stop()
        self._thread.join()
        if self._opened:
            self._source.close()

    def __enter__(self) -> "LiveRun":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_run(source, *, render: bool = True, runner: PoseRunner | None = None, sinks: Sequence = (),
             **options) -> LiveRun:
    """Start a run over `source` and iterate its results as they come (see LiveRun)."""
    runner = _runner_for(runner, options)
    src, opened = _open(source, runner.spec)
    try:
        return LiveRun(runner.pipeline(src, sinks), src, opened, render)
    except BaseException:
        if opened:
            src.close()
        raise


__all__ = ["PoseRunner", "RunSummary", "LiveRun", "Interrupted", "load_runner", "load_estimator",
           "process_video", "annotate_image", "open_run", "source_label"]

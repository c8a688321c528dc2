"""`transpose-live video IN --out OUT.mp4`: poses on every frame of a video file, through the threaded pipeline.

The output video keeps the input's size, frame count, timestamps and audio; --json writes one line of poses
per frame, --coco-json COCO keypoint results. Everything the user names is checked before the model loads,
and outputs appear under their final names only when finished.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import typer

from transpose_live.errors import TransposeLiveError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi")


def build_estimator(config):
    """The PoseEstimator the pipeline runs (a seam the tests replace with a tiny model)."""
    from transpose_live.pipeline import build_estimator as build

    return build(config)


def build_detector(spec: str):
    """The person detector (a seam for the tests)."""
    from transpose_live.pipeline import build_detector as build

    return build(spec)


# ------------------------------------------------------------------------------------------- progress

class Progress:
    """One self-overwriting line on stderr: frames done/total, fps, ETA. Fed from the pipeline's last stage.
    Off a terminal it prints a plain line now and then instead, so logs stay readable."""

    def __init__(self, total: int | None, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.25 if self.tty else 10.0
        self.start = time.monotonic()
        self.last = self.start
        self.done = 0
        self.shown = False
        self._lock = threading.Lock()

    def update(self, result=None) -> None:
        with self._lock:
            self.done += 1
            now = time.monotonic()
            if now - self.last >= self.interval:
                self.last = now
                self._draw(now)

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-6)
        fps = self.done / elapsed
        if self.total:
            left = max(self.total - self.done, 0)
            eta = _clock(left / fps) if fps > 0 else "?"
            return f"{self.done}/{self.total} frames ({100 * self.done / self.total:3.0f}%)  {fps:.1f} fps  ETA {eta}"
        return f"{self.done} frames  {fps:.1f} fps"

    def _draw(self, now: float) -> None:
        text = self.line(now)
        self.stream.write(f"\r{text}  " if self.tty else f"{text}\n")
        self.stream.flush()
        self.shown = self.tty

    def clear(self) -> None:
        """End the progress line so that another message starts on a line of its own."""
        with self._lock:
            if self.shown:
                self.stream.write("\n")
                self.stream.flush()
                self.shown = False

    def close(self) -> None:
        with self._lock:
            if self.tty and self.done:
                self._draw(time.monotonic())
        self.clear()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _WarningsBelowProgress(logging.Handler):
    """The library's warnings (e.g. a truncated file) as `warning: ...` lines that do not break the bar."""

    def __init__(self, progress: Progress):
        super().__init__(logging.WARNING)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.clear()
        self.progress.stream.write(f"warning: {record.getMessage()}\n")
        self.progress.stream.flush()


# -------------------------------------------------------------------------------------------- checks

def check_options(device: str, out: Path | None, json_out: Path | None, coco_out: Path | None,
                  max_frames: int | None) -> None:
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise TransposeLiveError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if out is None and json_out is None and coco_out is None:
        raise TransposeLiveError("say where the results go: --out OUT.mp4 and/or --json OUT.jsonl "
                                 "(or --coco-json OUT.json)")
    if out is not None and out.suffix.lower() not in VIDEO_SUFFIXES:
        raise TransposeLiveError(f"--out must be a video file ({', '.join(VIDEO_SUFFIXES)}), got {out.name!r}")
    if max_frames is not None and max_frames < 1:
        raise TransposeLiveError(f"--max-frames must be >= 1, got {max_frames}")
    named = [p.expanduser().resolve() for p in (out, json_out, coco_out) if p is not None]
    if len(set(named)) < len(named):
        raise TransposeLiveError("--out, --json and --coco-json must name different files")


def check_not_input(video: Path, outputs: list[Path | None]) -> None:
    source = video.expanduser().resolve()
    for path in outputs:
        if path is not None and path.expanduser().resolve() == source:
            raise TransposeLiveError(f"refusing to overwrite the input video {video}")


def check_writable(outputs: list[Path | None]) -> None:
    """Create and remove a temporary file beside each output: permissions, missing folders, read-only mounts."""
    from transpose_live.sinks import AtomicPath

    for path in outputs:
        if path is not None:
            AtomicPath(path, "output").discard()


def open_sinks(source, out: Path | None, json_out: Path | None, coco_out: Path | None) -> list:
    """The writers, each on a hidden temporary file until it finishes; the video keeps the input's timestamps
    (its time base) and audio."""
    from transpose_live.sinks import CocoResultsWriter, JsonlWriter, VideoWriter

    sinks: list = []
    try:
        if out is not None:
            width, height = source.size
            sinks.append(VideoWriter(out, width, height, fps=source.fps, time_base=source.time_base,
                                     audio_from=source))
        if json_out is not None:
            sinks.append(JsonlWriter(json_out))
        if coco_out is not None:
            sinks.append(CocoResultsWriter(coco_out))
    except BaseException:
        abort_sinks(sinks)
        raise
    return sinks


def abort_sinks(sinks) -> None:
    from transpose_live.pipeline import abort_sink

    for sink in sinks:
        abort_sink(sink)


# ------------------------------------------------------------------------------------------- command

def video_command(
    video: Path = typer.Argument(..., metavar="IN", help="The input video file."),
    out: Path = typer.Option(None, "--out", "-o", help="Annotated video (.mp4, .mkv, .mov, .avi)."),
    json_out: Path = typer.Option(None, "--json", help="Poses as JSON lines, one per frame."),
    coco_out: Path = typer.Option(None, "--coco-json", help="Poses as COCO keypoint results (image_id = frame)."),
    model: str = typer.Option(None, "--model", help="Model preset or weights name (default: the shipped one)."),
    weights: str = typer.Option(None, "--weights", help="Checkpoint file for --model's preset."),
    detector: str = typer.Option("ssd", "--detector", help="ssd, none (whole frame) or onnx:FILE."),
    detect_every: int = typer.Option(1, "--detect-every", help="Run the detector every N frames; in between "
                                     "follow each person from their previous pose."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Kalman smoothing of the joints."),
    smooth_strength: float = typer.Option(0.5, "--smooth-strength", help="0 (none) .. 1 (heaviest)."),
    attention: bool = typer.Option(False, "--attention", help="Overlay the dependency areas (slower)."),
    boxes: bool = typer.Option(False, "--boxes", help="Outline the person boxes."),
    flip: bool = typer.Option(False, "--flip/--no-flip", help="Flip test (more accurate, half the speed)."),
    hud: bool = typer.Option(False, "--hud", help="Show fps and persons in the corner of the video."),
    start: float = typer.Option(None, "--start", help="Start at this second of the input."),
    end: float = typer.Option(None, "--end", help="Stop at this second of the input."),
    max_frames: int = typer.Option(None, "--max-frames", help="Process at most this many frames."),
) -> None:
    """Estimate the poses in every frame of a video: an annotated copy (with its audio) and/or JSON."""
    from transpose_live.pipeline import Pipeline, PipelineConfig
    from transpose_live.sources import FileSource

    check_options(device, out, json_out, coco_out, max_frames)
    config = PipelineConfig(model=None if model in (None, "default") else model, weights=weights, device=device,
                            detector=detector, detect_every=detect_every, smooth=smooth,
                            smooth_strength=smooth_strength, attention=attention, flip=flip, draw_boxes=boxes,
                            hud=hud, max_frames=max_frames).validate()
    if weights is not None and not Path(weights).expanduser().is_file():
        raise TransposeLiveError(f"weights file not found: {weights}")
    check_not_input(video, [out, json_out, coco_out])

    with FileSource(video, start=start, end=end) as source:
        total = source.frame_count
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        check_writable([out, json_out, coco_out])      # a bad path fails before the model loads
        found = build_detector(config.detector)
        estimator = build_estimator(config)
        sinks = open_sinks(source, out, json_out, coco_out)
        progress = Progress(total)
        try:
            pipeline = Pipeline(source, config, sinks, estimator=estimator, detector=found,
                                on_result=progress.update)
        except BaseException:
            abort_sinks(sinks)
            raise
        handler = _WarningsBelowProgress(progress)
        library_log = logging.getLogger("transpose_live")
        library_log.addHandler(handler)
        try:
            pipeline.run()             # on Ctrl-C it stops, closes the outputs (playable) and re-raises
        except KeyboardInterrupt:
            progress.clear()
            typer.echo(summary(video, pipeline.stats, [out, json_out, coco_out], interrupted=True))
            raise
        finally:
            library_log.removeHandler(handler)
            progress.close()
    typer.echo(summary(video, pipeline.stats, [out, json_out, coco_out]))


def summary(video: Path, stats, outputs: list[Path | None], interrupted: bool = False) -> str:
    written = [str(p) for p in outputs if p is not None and p.exists()]
    head = "interrupted after" if interrupted else f"{video.name}:"
    return (f"{head} {stats.frames_processed} frames in {stats.wall_s:.1f} s ({stats.fps:.1f} fps), "
            f"{stats.frames_dropped} dropped; " + (f"wrote {', '.join(written)}" if written else "nothing written"))


def register(app: typer.Typer) -> None:
    app.command("video")(video_command)

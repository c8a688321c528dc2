"""`transpose-live webcam`: live poses from a camera or an RTSP camera, in the preview window or headless.

    transpose-live webcam                          # camera 0 in the window (A toggles the attention maps)
    transpose-live webcam --camera 1 --out rec.mp4 # window + recording
    transpose-live webcam --rtsp rtsp://cam/stream --no-show --json poses.jsonl   # monitoring, until Ctrl-C
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from transpose_live.errors import TransposeLiveError

from .cmd_video import abort_sinks

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DETECTOR_NAMES = ("ssd", "none")
DETECTOR_FILE_KINDS = ("onnx", "yolov8", "yolox")


# ---------------------------------------------------------------------------------- shared with `gui`

def check_model_options(device: str, detector: str, weights: str | None) -> None:
    """Cheap checks before anything is opened or loaded: device, detector spec, weights file."""
    if not DEVICE_PATTERN.match(device or ""):
        raise TransposeLiveError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    name, sep, arg = (detector or "").strip().partition(":")
    if not ((name.lower() in DETECTOR_NAMES and not sep) or (name.lower() in DETECTOR_FILE_KINDS and sep)):
        raise TransposeLiveError(f"unknown detector {detector!r}; choose ssd, none or onnx:FILE")
    if sep and not Path(arg).expanduser().is_file():
        raise TransposeLiveError(f"detector file not found: {arg}")
    if weights is not None and not Path(weights).expanduser().is_file():
        raise TransposeLiveError(f"weights file not found: {weights}")


def pipeline_config(model: str | None, weights: str | None, device: str, detector: str, detect_every: int,
                    smooth: bool, attention: bool, flip: bool, draw_boxes: bool):
    from transpose_live.pipeline import PipelineConfig

    return PipelineConfig(model=None if model in (None, "default") else model, weights=weights, device=device,
                          detector=detector, detect_every=detect_every, smooth=smooth, attention=attention,
                          flip=flip, draw_boxes=draw_boxes).validate()


def open_quietly(spec, **options):
    """open_source with OpenCV's own logging silenced: a missing camera is our one line, not three."""
    import cv2

    from transpose_live.sources import open_source

    try:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:        # an OpenCV build without the logging API
        return open_source(spec, **options)
    try:
        return open_source(spec, **options)
    finally:
        cv2.utils.logging.setLogLevel(level)


def build_pipeline(source, config, sinks):
    """The headless pipeline (a seam the tests replace to use a tiny model)."""
    from transpose_live.pipeline import Pipeline

    return Pipeline(source, config, sinks=sinks)


# ------------------------------------------------------------------------------------------- outputs

def check_outputs(out: Path | None, json_out: Path | None) -> None:
    """Fail before the camera opens: a video container we can write, writable folders, two different files."""
    from transpose_live.sinks import AtomicPath

    if out is not None and out.suffix.lower() not in (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".webm"):
        raise TransposeLiveError(f"--out must be a video file (.mp4, .mkv, .mov, .avi), got {out.name!r}")
    if out is not None and json_out is not None and out.expanduser().resolve() == json_out.expanduser().resolve():
        raise TransposeLiveError("--out and --json name the same file")
    for path, what in ((out, "video"), (json_out, "results")):
        if path is not None:
            AtomicPath(path, what).discard()


def open_sinks(source, out: Path | None, json_out: Path | None) -> list:
    from transpose_live.sinks import JsonlWriter, VideoWriter

    sinks = []
    try:
        if out is not None:
            width, height = source.size
            sinks.append(VideoWriter(out, width, height, fps=source.fps or 30.0, time_base=source.time_base))
        if json_out is not None:
            sinks.append(JsonlWriter(json_out))
    except BaseException:
        abort_sinks(sinks)
        raise
    return sinks




def close_sinks(sinks) -> None:
    for sink in sinks:
        sink.close()


# ------------------------------------------------------------------------------------------- running

def run_headless(source, config, sinks, out: Path | None, json_out: Path | None) -> None:
    """Run until the source ends or Ctrl-C (a normal end for a camera: the outputs are finished)."""
    try:
        pipeline = build_pipeline(source, config, sinks)
    except BaseException:
        abort_sinks(sinks)
        raise
    typer.echo("running; press Ctrl-C to stop", err=True)
    interrupted = False
    try:
        pipeline.run()         # on Ctrl-C it stops, closes the outputs and re-raises
    except KeyboardInterrupt:
        interrupted = True
    stats = pipeline.stats
    typer.echo(f"{'stopped' if interrupted else 'source ended'}: {stats.frames_processed} frames, "
               f"{stats.fps:.1f} fps, {stats.frames_dropped} dropped")
    for path in (out, json_out):
        if path is not None and path.exists():
            typer.echo(f"wrote {path}")


def run_window(source, config, sinks) -> int:
    from transpose_live.ui.app import run_app

    return run_app(source, config, sinks=sinks)


def webcam_command(
    camera: int = typer.Option(None, "--camera", "-c", help="Camera index (default 0)."),
    rtsp: str = typer.Option(None, "--rtsp", help="A network camera instead: rtsp://, http(s):// ... URL."),
    rtsp_transport: str = typer.Option("tcp", "--rtsp-transport", help="RTSP over tcp or udp."),
    width: int = typer.Option(None, "--width", help="Ask the camera for this frame width."),
    height: int = typer.Option(None, "--height", help="Ask the camera for this frame height."),
    fps: float = typer.Option(None, "--fps", help="Ask the camera for this frame rate."),
    out: Path = typer.Option(None, "--out", "-o", help="Also record the annotated video (mp4/mkv)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the poses, one JSON line per frame."),
    no_show: bool = typer.Option(False, "--no-show", help="No window: run headless until Ctrl-C "
                                 "(needs --out or --json)."),
    model: str = typer.Option(None, "--model", help="Model preset or weights name (default: the shipped one)."),
    weights: str = typer.Option(None, "--weights", help="Checkpoint file for --model's preset."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    detector: str = typer.Option("ssd", "--detector", help="ssd, none (whole frame) or onnx:FILE."),
    detect_every: int = typer.Option(1, "--detect-every", help="Run the detector every N frames; follow the "
                                     "poses in between."),
    attention: bool = typer.Option(False, "--attention", help="Start with the attention maps shown "
                                   "(the window's A key toggles them)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Kalman smoothing of the joints."),
    flip: bool = typer.Option(False, "--flip/--no-flip", help="Flip test (more accurate, half the speed)."),
    draw_boxes: bool = typer.Option(False, "--draw-boxes", help="Outline the person boxes."),
) -> None:
    """Live poses from a camera (or an RTSP camera with --rtsp): a preview window, or headless with --no-show."""
    if camera is not None and rtsp is not None:
        raise TransposeLiveError("use either --camera or --rtsp, not both")
    if camera is not None and camera < 0:
        raise TransposeLiveError(f"--camera must be 0 or more, got {camera}")
    if rtsp is not None and "://" not in rtsp:
        raise TransposeLiveError(f"--rtsp needs a URL such as rtsp://host/stream, got {rtsp!r}")
    for name, value in (("--width", width), ("--height", height), ("--fps", fps)):
        if value is not None and value <= 0:
            raise TransposeLiveError(f"{name} must be > 0, got {value}")
    if no_show and out is None and json_out is None:
        raise TransposeLiveError("--no-show needs --out OUT.mp4 or --json OUT.jsonl (else nothing would be seen)")
    check_model_options(device, detector, weights)
    config = pipeline_config(model, weights, device, detector, detect_every, smooth, attention, flip, draw_boxes)
    if not no_show:
        from transpose_live.ui.app import check_display

        check_display()
    check_outputs(out, json_out)

    if rtsp is not None:
        source = open_quietly(rtsp, transport=rtsp_transport)
    else:
        source = open_quietly(0 if camera is None else camera, width=width, height=height, fps=fps)
    try:
        sinks = open_sinks(source, out, json_out)
        if no_show:
            run_headless(source, config, sinks, out, json_out)
            return
        try:
            rc = run_window(source, config, sinks)
        finally:
            close_sinks(sinks)      # the run finished them already unless it never started (closing twice is fine)
        for path in (out, json_out):
            if path is not None and path.exists():
                typer.echo(f"wrote {path}")
    finally:
        source.close()
    if rc:
        raise typer.Exit(rc)


def register(app: typer.Typer) -> None:
    app.command("webcam")(webcam_command)

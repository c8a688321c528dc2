"""`transpose-live gui [SOURCE]`: the desktop window, optionally playing a file, folder, camera or stream."""

from __future__ import annotations

import typer

from . import cmd_webcam


def is_stream(spec: str) -> bool:
    from transpose_live.sources import STREAM_SCHEMES

    return spec.lower().startswith(STREAM_SCHEMES)


def run_window(source, config) -> int:
    from transpose_live.ui.app import run_app

    return run_app(source, config)


def gui_command(
    source: str = typer.Argument(None, metavar="[SOURCE]", help="Start on this: a video file, an image folder, "
                                 "a camera index (0, 1, ...) or a stream URL (rtsp://...)."),
    model: str = typer.Option(None, "--model", help="Model preset or weights name (default: the shipped one)."),
    weights: str = typer.Option(None, "--weights", help="Checkpoint file for --model's preset."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    detector: str = typer.Option("ssd", "--detector", help="ssd, none (whole frame) or onnx:FILE."),
    detect_every: int = typer.Option(1, "--detect-every", help="Run the detector every N frames."),
    attention: bool = typer.Option(False, "--attention", help="Start with the attention maps shown (key A)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Kalman smoothing of the joints (key S)."),
    flip: bool = typer.Option(False, "--flip/--no-flip", help="Flip test (more accurate, half the speed)."),
    draw_boxes: bool = typer.Option(False, "--draw-boxes", help="Outline the person boxes."),
) -> None:
    """Open the desktop window: skeletons live on the video, the model's attention maps on a toggle (A)."""
    from transpose_live.ui.app import check_display

    cmd_webcam.check_model_options(device, detector, weights)
    config = cmd_webcam.pipeline_config(model, weights, device, detector, detect_every, smooth, attention, flip,
                                        draw_boxes)
    check_display()
    opened = None
    if source is not None and not is_stream(source):
        # files, folders and cameras are checked here (one line, exit 2); a stream may take seconds to
        # connect, so the window opens at once and shows any connection error itself
        opened = cmd_webcam.open_quietly(source)
    try:
        rc = run_window(opened if opened is not None else source, config)
    finally:
        if opened is not None:
            opened.close()
    if rc:
        raise typer.Exit(rc)


def register(app: typer.Typer) -> None:
    app.command("gui")(gui_command)

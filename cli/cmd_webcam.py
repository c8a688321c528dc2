"""`transpose-live webcam`: live poses from a camera or an RTSP camera, in the window or headless.

    transpose-live webcam                          # camera 0 in the window (A toggles the attention maps)
    transpose-live webcam --camera 1 --out rec.mp4 # window + recording
    transpose-live webcam --rtsp rtsp://cam/stream --no-show --json -    # JSON Lines on stdout until Ctrl-C
"""

from __future__ import annotations

from pathlib import Path

import typer

from transpose_live.cli.live import run_live
from transpose_live.cli.options import with_spec
from transpose_live.errors import TransposeLiveError


def _check_camera_options(camera, rtsp, width, height, fps, show, out, json_out) -> None:
    if camera is not None and rtsp is not None:
        raise TransposeLiveError("use either --camera or --rtsp, not both")
    if camera is not None and camera < 0:
        raise TransposeLiveError(f"--camera must be 0 or more, got {camera}")
    if rtsp is not None and "://" not in rtsp:
        raise TransposeLiveError(f"--rtsp needs a URL such as rtsp://host/stream, got {rtsp!r}")
    for name, value in (("--width", width), ("--height", height), ("--fps", fps)):
        if value is not None and value <= 0:
            raise TransposeLiveError(f"{name} must be > 0, got {value}")
    if not show and out is None and json_out is None:
        raise TransposeLiveError("--no-show needs --out OUT.mp4 or --json OUT.jsonl (- for stdout), "
                                 "else nothing would be seen")


@with_spec("model", "detect", "smooth", "draw", "max_frames")
def webcam_command(
    camera: int = typer.Option(None, "--camera", "-c", help="Camera index (default 0)."),
    rtsp: str = typer.Option(None, "--rtsp", help="A network camera instead: rtsp://, http(s):// ... URL."),
    rtsp_transport: str = typer.Option("tcp", "--rtsp-transport", help="RTSP over tcp or udp."),
    width: int = typer.Option(None, "--width", help="Ask the camera for this frame width."),
    height: int = typer.Option(None, "--height", help="Ask the camera for this frame height."),
    fps: float = typer.Option(None, "--fps", help="Ask the camera for this frame rate."),
    out: Path = typer.Option(None, "--out", "-o", help="Also record the annotated video (mp4/mkv)."),
    json_out: str = typer.Option(None, "--json", help="Also write the poses, one JSON line per frame, "
                                 "flushed as they come (tail -f works); - for stdout."),
    show: bool = typer.Option(True, "--show/--no-show", help="The preview window; --no-show runs headless "
                              "until Ctrl-C (needs --out or --json)."),
    *, spec,
) -> None:
    """Live poses from a camera (or an RTSP camera with --rtsp): a preview window, or headless with --no-show."""
    # deferred: numpy and the media stack (--help and option errors stay fast)
    from transpose_live.media.sinks import check_outputs
    from transpose_live.media.sources import open_source

    _check_camera_options(camera, rtsp, width, height, fps, show, out, json_out)
    if show:
        from transpose_live.ui.app import check_display  # deferred: Qt

        check_display()
    check_outputs(out, json_out)
    if rtsp is not None:
        source = open_source(rtsp, transport=rtsp_transport)
    else:
        source = open_source(0 if camera is None else camera, width=width, height=height, fps=fps)
    run_live(source, spec, out, json_out, show)


def register(app: typer.Typer) -> None:
    app.command("webcam")(webcam_command)

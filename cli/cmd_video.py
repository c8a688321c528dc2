"""`transpose-live video IN`: poses on every frame of a video file (transpose_live.process_video)."""

from __future__ import annotations

from pathlib import Path

import typer

from transpose_live.cli.options import say, with_spec
from transpose_live.errors import TransposeLiveError


@with_spec("model", "detect", "smooth", "draw", "frames")
def video_command(
    video: Path = typer.Argument(..., metavar="IN", help="The input video file (or a folder of images)."),
    out: Path = typer.Option(None, "--out", "-o", help="Annotated video (.mp4, .mkv, .mov, .avi); its "
                             "timestamps and audio are the input's."),
    json_out: str = typer.Option(None, "--json", help="Poses as JSON Lines, one line per frame; - for "
                                 "stdout (streamed as frames are processed)."),
    coco_out: str = typer.Option(None, "--coco-json", help="Poses as COCO keypoint results "
                                 "(image_id = frame index); - for stdout."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="A progress bar on stderr."),
    *, spec,
) -> None:
    """Estimate the poses in every frame of a video: an annotated copy (with its audio) and/or JSON.

    Nothing is lost (every frame is processed), outputs appear under their names only when finished
    (streams such as --json - are written as they go), messages go to stderr."""
    from transpose_live.live.run import Interrupted, process_video  # deferred: numpy, PyAV (--help stays fast)

    if out is None and json_out is None and coco_out is None:
        raise TransposeLiveError("say where the results go: --out OUT.mp4 and/or --json OUT.jsonl "
                                 "(- for stdout) or --coco-json OUT.json")
    if not video.exists():
        raise TransposeLiveError(f"video file not found: {video}")
    try:
        summary = process_video(video, out, json_out, coco_out, progress=progress, **vars(spec))
    except Interrupted as stop:
        say(stop.summary.line())
        raise typer.Exit(130) from None
    say(summary.line())


def register(app: typer.Typer) -> None:
    app.command("video")(video_command)

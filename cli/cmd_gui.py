"""`transpose-live gui [SOURCE]`: the desktop window, optionally playing a file, folder, camera or stream."""

from __future__ import annotations

import typer

from .options import with_spec


@with_spec("model", "detect", "smooth", "draw")
def gui_command(
    source: str = typer.Argument(None, metavar="[SOURCE]", help="Start on this: a video file, an image folder, "
                                 "a camera index (0, 1, ...) or a stream URL (rtsp://...)."),
    *, spec,
) -> None:
    """Open the desktop window: skeletons live on the video, the model's attention maps on a toggle (A)."""
    from transpose_live.sources import STREAM_SCHEMES, open_source
    from transpose_live.ui.app import check_display, run_app

    check_display()
    opened = None
    if source is not None and not source.lower().startswith(STREAM_SCHEMES):
        # files, folders and cameras are checked here (one line, exit 2); a stream may take seconds to
        # connect, so the window opens at once and shows any connection error itself
        opened = open_source(source)
    try:
        rc = run_app(opened if opened is not None else source, spec)
    finally:
        if opened is not None:
            opened.close()
    if rc:
        raise typer.Exit(rc)


def register(app: typer.Typer) -> None:
    app.command("gui")(gui_command)

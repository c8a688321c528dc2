"""`transpose-live gui [SOURCE]`: the desktop window, optionally playing a file, folder, camera or stream;
with --frames N --screenshot FILE a headless check: N frames played, a picture of the window saved, exit 0."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from transpose_live.cli.options import say, with_spec


@with_spec("model", "detect", "smooth", "draw")
def gui_command(
    source: str = typer.Argument(None, metavar="[SOURCE]", help="Start on this: a video file, an image folder, "
                                 "a camera index (0, 1, ...) or a stream URL (rtsp://...)."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Headless check: play this many frames "
                                         "(as fast as the model goes), then save --screenshot and quit."),
    screenshot: Optional[Path] = typer.Option(None, "--screenshot", help="With --frames: where the picture of "
                                              "the whole window goes (PNG or JPG)."),
    layer: Optional[int] = typer.Option(None, "--layer", min=1, help="Show this encoder layer's attention "
                                        "(1 = first; default the last); opens the inspector."),
    *, spec,
) -> None:
    """Open the desktop window: skeletons live on the video, playback (Space, arrows), the model's attention
    maps (A) and the inspector (I: person, joint, layer, every layer side by side). With --frames and
    --screenshot it runs headless too (QT_QPA_PLATFORM=offscreen) for tests and bug reports."""
    if (frames is None) != (screenshot is None):
        raise typer.BadParameter("--frames and --screenshot go together (the headless check)")
    if frames is not None and source is None:
        raise typer.BadParameter("the headless check needs a SOURCE to play")
    # deferred: Qt, PyAV and torch load only when the window opens (--help stays cheap)
    from transpose_live.media.sources import STREAM_SCHEMES, open_source
    from transpose_live.ui.app import check_display, check_platform, has_display

    if frames is not None and not os.environ.get("QT_QPA_PLATFORM") and not has_display():
        # the headless check needs no screen: without one (and no platform asked for) it draws offscreen
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    check_platform()          # before Qt is loaded: a missing system library is one line, not a SIGABRT
    check_display(advice="run under Xvfb (xvfb-run transpose-live gui ...); for a picture of the window "
                         "without a screen: --frames N --screenshot FILE")
    # deferred: as above
    from transpose_live.ui.app import run_app, run_check
    from transpose_live.ui.view import View

    view = None
    if layer is not None or spec.joint is not None or spec.attention:
        from transpose_live.pose.inspector import joint_index  # deferred: torch

        view = View(overlay=True, joint=None if spec.joint is None else joint_index(spec.joint), layer=layer,
                    strip=layer is not None or spec.joint is not None)
    opened = None
    if source is not None and not source.lower().startswith(STREAM_SCHEMES):
        # files, folders and cameras are checked here (one line, exit 2); a stream may take seconds to
        # connect, so the window opens at once and shows any connection error itself
        opened = open_source(source)
    try:
        if frames is not None:
            run_check(opened if opened is not None else source, spec, frames=frames, screenshot=screenshot,
                      view=view, inspector=bool(view is not None and view.strip))
            say(f"wrote {screenshot}")
            return
        rc = run_app(opened if opened is not None else source, spec, view=view)
    finally:
        if opened is not None:
            opened.close()
    if rc:
        raise typer.Exit(rc)


def register(app: typer.Typer) -> None:
    app.command("gui")(gui_command)

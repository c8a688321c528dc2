"""Running a live source (a camera, an RTSP stream) headless or in the window: shared by `webcam` and `rtsp`.

Headless runs go until the source ends, --duration / --max-frames, Ctrl-C or SIGTERM (a service manager
stopping the process): all are normal ends (exit 0) with the outputs finished.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

import typer

from transpose_live.cli.options import say


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM ends the run like Ctrl-C (outputs finished), in the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


STATS_EVERY_S = 10.0     # live JSON logs get a {"event": "stats"} line (fps, latency p50/p95) this often


def run_live(source, spec, out: Path | None, json_out: str | None, show: bool, events=(), more_outputs=()) -> None:
    """Run `spec` over an opened live `source` into the outputs (and `more_outputs`, open_outputs' openers:
    MQTT, Home Assistant), in the window or headless."""
    # deferred: numpy, PyAV and the run API (--help stays fast)
    from transpose_live.live.run import Interrupted, has_content, process_video
    from transpose_live.media.sinks import open_outputs

    with source:
        if not show:
            say("running; press Ctrl-C to stop")
            try:
                with sigterm_as_interrupt():
                    summary = process_video(source, out, json_out, progress=True, events=events,
                                            more_outputs=more_outputs, stats_every=STATS_EVERY_S, **vars(spec))
            except Interrupted as stop:      # Ctrl-C is how a camera run ends: not a failure
                summary = stop.summary
            say(summary.line())
            return
        from transpose_live.ui.app import run_app  # deferred: Qt

        outputs = open_outputs(source, out, json_out, live=True, more=more_outputs)
        rc = run_app(source, spec, sinks=outputs)    # the window finishes them when it closes
    for path in (out, json_out):
        if path is not None and path != "-" and has_content(path):
            say(f"wrote {path}")
    if rc:
        raise typer.Exit(rc)

"""`transpose-live monitor URL... | --config cameras.yaml`: many IP cameras, one model, a live status table.

    transpose-live monitor rtsp://cam1/stream rtsp://cam2/stream --log-dir logs
    transpose-live monitor --config cameras.yaml --record-dir rec --segment-minutes 10 --mqtt localhost
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from transpose_live.cli.live import sigterm_as_interrupt
from transpose_live.cli.options import say, with_spec, with_stream_options

PLAIN_STATUS_S = 30.0      # off a terminal: the status as plain lines this often


def _watch(monitor, duration: float | None) -> None:
    """Show the status until the duration is over, every camera has ended, or Ctrl-C / SIGTERM."""
    import sys

    from transpose_live.monitor.runner import status_line, status_table

    deadline = time.monotonic() + duration if duration else None
    live = None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.live import Live

        live = Live(status_table(monitor.status()), console=Console(stderr=True), refresh_per_second=1)
        live.start()
    last_plain = time.monotonic()
    try:
        while monitor.running() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.5)
            if live is not None:
                live.update(status_table(monitor.status()))
            elif time.monotonic() - last_plain >= PLAIN_STATUS_S:
                last_plain = time.monotonic()
                for row in monitor.status():
                    say(status_line(row))
    finally:
        if live is not None:
            live.stop()


@with_stream_options
@with_spec("model", "detect", "smooth", "duration")
def monitor_command(
    urls: list[str] = typer.Argument(None, metavar="[URL]...", help="Camera streams (rtsp://...); or --config."),
    config: Path = typer.Option(None, "--config", help="A YAML file of cameras (name, url with ${ENV} "
                                "credentials, detect_every, record, mask polygons)."),
    log_dir: Path = typer.Option(Path("monitor-logs"), "--log-dir", help="One JSON Lines log per camera: "
                                 "frames and events."),
    record_dir: Path = typer.Option(None, "--record-dir", help="Record the annotated streams in segments here "
                                    "(URL cameras: all; config cameras: those with record: true)."),
    segment_minutes: float = typer.Option(10.0, "--segment-minutes", min=0.01, help="Length of a recorded "
                                          "segment; each finished segment is a complete file."),
    *, spec, stream,
) -> None:
    """Watch many IP cameras with one shared model: a live status table, a JSON log per camera, optional
    recording in segments and MQTT events. Runs until Ctrl-C / SIGTERM or --duration."""
    from transpose_live.errors import TransposeLiveError
    from transpose_live.monitor.cameras import from_urls, load_config
    from transpose_live.monitor.runner import Monitor, Outputs, status_line

    if bool(urls) == (config is not None):
        raise TransposeLiveError("give either camera URLs or --config cameras.yaml")
    cameras = load_config(config) if config is not None else from_urls(urls)
    if config is None and record_dir is not None:
        for camera in cameras:
            camera.record = True
    if record_dir is None and any(c.record for c in cameras):
        record_dir = Path("recordings")
    more = []
    if stream.mqtt is not None:
        from transpose_live.monitor.mqtt import publisher_opener

        broker = stream.mqtt
        publisher_opener(broker, "camera")            # a bad broker spec fails here, before the model loads
        more.append(lambda camera: [publisher_opener(broker, camera.name)])
    outputs = Outputs(log_dir, record_dir, segment_minutes, stream.down_seconds, more=more)
    monitor = Monitor(cameras, spec, outputs, stream.source_options())
    monitor.start()
    say(f"monitoring {len(cameras)} camera{'s' if len(cameras) != 1 else ''}; logs in {log_dir}; "
        "press Ctrl-C to stop")
    try:
        with sigterm_as_interrupt():
            _watch(monitor, spec.duration)
    except KeyboardInterrupt:
        pass
    stopped = monitor.stop()
    rows = monitor.status()
    for row in rows:
        say(status_line(row))
    if not stopped:
        say("warning: a camera thread did not stop in time (a read still blocked); exiting anyway")
    if all(row["error"] for row in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor_command)

"""`transpose-live rtsp URL`: one IP camera, watched until stopped; the stream is reconnected by itself.

    transpose-live rtsp rtsp://user:pass@cam/stream --json cam.jsonl            # until Ctrl-C / SIGTERM
    transpose-live rtsp rtsp://cam/stream --json - --duration 60 | jq -c .event   # a minute, to stdout

The JSON Lines hold one line per processed frame (timestamp in seconds since the run started) and event
lines: stream_lost / stream_back, person_appeared / person_left, person_down / person_up, each with a
wall-clock "time". The URL's password is never printed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from transpose_live.cli.live import run_live
from transpose_live.cli.mqtt_options import MqttOptions, with_mqtt_options
from transpose_live.cli.options import StreamOptions, say, with_spec, with_stream_options
from transpose_live.cli.web_options import WebOptions, with_web_options
from transpose_live.errors import TransposeLiveError
from transpose_live.live.spec import RunSpec


@with_mqtt_options
@with_web_options
@with_stream_options
@with_spec("model", "detect", "smooth", "draw", "max_frames", "duration")
def rtsp_command(
    url: str = typer.Argument(..., metavar="URL", help="The camera's stream, e.g. rtsp://user:pass@host:8554/path "
                              "(also rtsps, http(s), rtmp, srt)."),
    out: Path = typer.Option(None, "--out", "-o", help="Also record the annotated stream (mp4/mkv)."),
    json_out: str = typer.Option(None, "--json", help="Poses and events as JSON Lines, flushed line by line "
                                 "(tail -f works); - for stdout."),
    show: bool = typer.Option(False, "--show/--no-show", help="The preview window (default: headless)."),
    camera: str = typer.Option("camera", "--camera-name", help="The camera's name in MQTT topics and its Home "
                               "Assistant device."),
    *, spec: RunSpec, stream: StreamOptions, mqtt_options: MqttOptions, web_options: WebOptions,
) -> None:
    """Watch one IP camera: poses and events until stopped, reconnecting by itself when the stream drops."""
    # deferred: numpy and the media stack (--help and option errors stay fast), OpenCV (the events)
    from transpose_live.media import sources
    from transpose_live.media.sinks import check_outputs
    from transpose_live.monitor.events import PoseEvents

    sources.check_stream_url(url)               # no host or a scheme no source reads: refused, never retried
    plan = mqtt_options.plan(stream.mqtt)       # a bad broker, CA file or prefix fails here; a dead broker never
    if not show and out is None and json_out is None and plan is None and web_options.web is None:
        raise TransposeLiveError("say where the results go: --json FILE (- for stdout), --out FILE.mp4, --mqtt "
                                 "HOST, --web PORT or --show")
    view = web_options.build()                  # --web checked (a password off 127.0.0.1) before anything opens
    if show:
        from transpose_live.ui.app import check_display  # deferred: Qt

        check_display()
    check_outputs(out, json_out)
    events = [PoseEvents(down_seconds=stream.down_seconds)]
    with contextlib.ExitStack() as running:
        more = []
        if view is not None:
            from transpose_live.monitor.cameras import CameraConfig

            running.enter_context(view)            # serving now (a port in use fails here); stopped at the end
            more += view.for_camera(CameraConfig(camera, url))
            say(f"web view at {view.url}")
        if plan is not None:
            from transpose_live.monitor.publishing import MqttOutputs  # deferred: paho, only for MQTT runs

            # says "offline" when the run is over
            more += running.enter_context(MqttOutputs(plan, [camera], model=spec.model)).for_camera(camera)
        source = sources.open_source(url, **stream.source_options())
        run_live(source, spec, out, json_out, show, events=events, more_outputs=more)


def register(app: typer.Typer) -> None:
    app.command("rtsp")(rtsp_command)

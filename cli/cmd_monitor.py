"""`transpose-live monitor URL... | --config cameras.yaml`: many IP cameras, one model, a live status table.

    transpose-live monitor rtsp://cam1/stream rtsp://cam2/stream --log-dir logs
    transpose-live monitor --config cameras.yaml --record-dir rec --segment-minutes 10 --mqtt localhost
    transpose-live monitor --config cameras.yaml --mqtt broker.lan --mqtt-user monitor --mqtt-tls  # + Home Assistant
    transpose-live monitor --config cameras.yaml --record-dir rec --web 8080      # a web view: http://127.0.0.1:8080/
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import typer

from transpose_live.cli.cluster_options import check_cluster_options, cluster_monitor, cluster_option, replicas_option
from transpose_live.cli.live import sigterm_as_interrupt
from transpose_live.cli.mqtt_options import MqttOptions, with_mqtt_options
from transpose_live.cli.options import StreamOptions, say, with_spec, with_stream_options
from transpose_live.cli.web_options import WebOptions, with_web_options
from transpose_live.errors import TransposeLiveError
from transpose_live.live.spec import RunSpec

PLAIN_STATUS_S = 30.0      # off a terminal: the status as plain lines this often


def _watch(monitor, duration: float | None) -> None:
    """Show the status until the duration is over, every camera has ended, or Ctrl-C / SIGTERM."""
    from transpose_live.monitor.runner import status_line, status_table  # deferred: the pipeline (OpenCV)

    deadline = time.monotonic() + duration if duration else None
    live = None
    if sys.stderr.isatty():
        from rich.console import Console  # deferred: rich, only on a terminal
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


@with_mqtt_options
@with_web_options
@with_stream_options
@with_spec("model", "detect", "smooth", "duration")
def monitor_command(
    urls: list[str] = typer.Argument(None, metavar="[URL]...", help="Camera streams (rtsp://...); or --config."),
    config: Path = typer.Option(None, "--config", help="A YAML file of cameras (name, url with ${ENV} "
                                "credentials, detect_every, record, mask and ignore_down polygons) and MQTT "
                                "settings (mqtt: host, user, password, tls, ha_discovery, ha_prefix)."),
    log_dir: Path = typer.Option(Path("monitor-logs"), "--log-dir", help="One JSON Lines log per camera: "
                                 "frames and events."),
    record_dir: Path = typer.Option(None, "--record-dir", help="Record the annotated streams in segments here "
                                    "(URL cameras: all; config cameras: those with record: true)."),
    segment_minutes: float = typer.Option(10.0, "--segment-minutes", min=0.01, help="Length of a recorded "
                                          "segment; each finished segment is a complete file."),
    cluster: str = cluster_option(),
    replicas: str = replicas_option(),
    *, spec: RunSpec, stream: StreamOptions, mqtt_options: MqttOptions, web_options: WebOptions,
) -> None:
    """Watch many IP cameras with one shared model: a live status table, a JSON log per camera, optional
    recording in segments, MQTT events and Home Assistant entities. Runs until Ctrl-C / SIGTERM or --duration."""
    # deferred: numpy (--help and option errors stay fast), the pipeline (OpenCV)
    from transpose_live.monitor.cameras import MonitorConfig, from_urls, load_monitor_config
    from transpose_live.monitor.runner import Monitor, Outputs

    if bool(urls) == (config is not None):
        raise TransposeLiveError("give either camera URLs or --config cameras.yaml")
    address, replica_count = check_cluster_options(cluster, replicas, config)
    settings = load_monitor_config(config) if config is not None else MonitorConfig(from_urls(urls))
    cameras = settings.cameras
    # a bad broker, CA file or prefix fails here, before the model loads; a dead broker never does
    plan = mqtt_options.plan(stream.mqtt, settings.mqtt)
    if config is None and record_dir is not None:
        for camera in cameras:
            camera.record = True
    if record_dir is None and any(c.record for c in cameras):
        record_dir = Path("recordings")
    published = None
    if plan is not None:
        from transpose_live.monitor.publishing import MqttOutputs  # deferred: paho, only for MQTT runs

        # the monitor owns its camera list: discovery configs of cameras no longer in it are cleared
        published = MqttOutputs(plan, [c.name for c in cameras], model=spec.model, prune=True)
    view = web_options.build(record_dir=record_dir)    # --web checked (a password off 127.0.0.1) before the model
    more = [published.for_camera] if published else []
    on_failure = [published.camera_failed] if published else []
    if view is not None:
        more.append(view.for_camera)
        on_failure.append(view.camera_failed)
    outputs = Outputs(log_dir, record_dir, segment_minutes, stream.down_seconds, more=more, on_failure=on_failure)
    try:
        if view is not None:
            view.start()                          # a port in use fails here, before the model loads
            say(f"web view at {view.url}")
        if address is None:
            monitor = Monitor(cameras, spec, outputs, stream.source_options())
        else:
            monitor = cluster_monitor(cameras, spec, outputs, stream.source_options(), address, replica_count)
        if view is not None:
            view.model_stats = (lambda: monitor.estimator.stats) if address is None else monitor.model_stats
        clean = _run(monitor, spec, len(cameras), log_dir)
    finally:
        if view is not None:
            view.stop()
        if published is not None:
            published.close()             # "offline" for Home Assistant once every camera has stopped
    if not clean and address is None:
        _leave_now()


def _leave_now() -> None:
    """Exit 0 without the interpreter's shutdown: a camera thread is still inside a model call (C++ with the
    GIL released), and shutting down under it aborts the process ("terminate called without an active
    exception", SIGABRT). Its outputs are written line by line; a recording's open segment is left partial
    and cleaned up at the next start."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run(monitor, spec: RunSpec, count: int, log_dir: Path) -> bool:
    """Run until stopped; False when a camera thread did not end in time (see _leave_now)."""
    from transpose_live.monitor.runner import status_line  # deferred: the pipeline (OpenCV)

    monitor.start()
    say(f"monitoring {count} camera{'s' if count != 1 else ''}; logs in {log_dir}; press Ctrl-C to stop")
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
        say("warning: a camera thread did not stop in time (a model call or a read still running); "
            "exiting without waiting for it")
    if all(row["error"] for row in rows):
        raise typer.Exit(1)
    return stopped


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor_command)

"""`transpose-live soak`: N loopback test cameras through `monitor` for a while, with outages on a schedule;
the monitor's RSS, threads and open files over time, and whether they stay flat.

    transpose-live soak                                             # 2 cameras, 2 minutes, an outage every 25 s
    transpose-live soak --cameras 4 --minutes 30 --outage-every 60 --down 10 --warmup 300 \\
        --video samples/pedestrians.mp4 --json soak.json -- --detector ssd     # after --: options for `monitor`

Needs GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good/-ugly).
Exit 1 when something grew beyond its limit, an outage went unreported or a stale frame came after a reconnect.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transpose_live.cli.live import sigterm_as_interrupt
from transpose_live.cli.options import say


def soak_command(
    monitor_args: list[str] = typer.Argument(None, metavar="[-- MONITOR OPTION]...",
                                             help="Options for `monitor` itself, after --."),
    cameras: int = typer.Option(2, "--cameras", min=1, help="Loopback test cameras, one server each."),
    minutes: float = typer.Option(2.0, "--minutes", min=0.1, help="How long to measure after warm-up."),
    outage_every: float = typer.Option(25.0, "--outage-every", min=1.0, help="Seconds between outages (the "
                                       "cameras in turn)."),
    down: float = typer.Option(5.0, "--down", min=0.5, help="Seconds a camera stays down (a frozen one at least "
                               "--timeout + 2)."),
    outages: str = typer.Option("kill,freeze", "--outages", help="Outage kinds in turn: kill (the server dies "
                                "and restarts), freeze (SIGSTOP, then SIGCONT)."),
    sample_every: float = typer.Option(5.0, "--sample-every", min=0.5, help="Seconds between samples."),
    timeout: float = typer.Option(3.0, "--timeout", min=0.5, help="The monitor's --timeout."),
    video: Path = typer.Option(None, "--video", help="Serve this video in a loop (real people for the model); "
                               "default: the test pattern."),
    fps: int = typer.Option(10, "--fps", min=1, help="The test pattern's frame rate."),
    warmup: float = typer.Option(0.0, "--warmup", min=0.0, help="Measure growth from the checkpoint at or after "
                                 "this many seconds (default: the one before the second outage)."),
    json_out: Path = typer.Option(None, "--json", help="Write every sample and the verdict as JSON."),
    log_dir: Path = typer.Option(None, "--log-dir", help="Keep the monitor's logs here (default: a temporary "
                                 "folder)."),
    max_thread_growth: int = typer.Option(2, "--max-thread-growth", min=0, help="OS threads allowed to grow "
                                          "after warm-up."),
    max_fd_growth: int = typer.Option(2, "--max-fd-growth", min=0, help="Open files allowed to grow after warm-up."),
    max_rss_growth: float = typer.Option(30.0, "--max-rss-growth", min=0.0, help="MB of RSS allowed to grow after "
                                         "warm-up."),
    max_stale: float = typer.Option(2.0, "--max-stale", min=0.0, help="Seconds older than live a frame after a "
                                    "reconnect may be."),
) -> None:
    """Soak the monitor: loopback cameras killed and frozen on a schedule; fails when threads, files or memory
    grow after warm-up, or an outage goes unreported."""
    from rich.console import Console  # deferred: rich loads on first use

    from transpose_live.bench.soak import run_soak
    from transpose_live.bench.soak_plan import SoakLimits, SoakPlan
    from transpose_live.bench.soak_report import sample_line, tables, verdict

    plan = SoakPlan(cameras=cameras, duration_s=minutes * 60, outage_every_s=outage_every, down_s=down,
                    kinds=tuple(k.strip() for k in outages.split(",") if k.strip()), sample_every_s=sample_every,
                    timeout_s=timeout, video=video, fps=fps, monitor_args=tuple(monitor_args or ()), log_dir=log_dir,
                    warmup_s=warmup, limits=SoakLimits(max_thread_growth, max_fd_growth, max_rss_growth, max_stale))
    plan.check()
    say(f"soak: {cameras} camera(s), {minutes:g} min after warm-up, {len(plan.outages())} outage(s) "
        f"({', '.join(plan.kinds)}) every {outage_every:g} s")
    with sigterm_as_interrupt():
        result = run_soak(plan, on_sample=lambda s: say(sample_line(s)))
    console = Console(stderr=True)
    for table in tables(result):
        console.print(table)
    for line in verdict(result):
        say(line)
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_dict(), indent=1) + "\n")
        say(f"wrote {json_out}")
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("soak")(soak_command)

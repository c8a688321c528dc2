"""`transpose-live`: the Typer app. Each command lives in its own cmd_*.py module with a register(app)."""

from __future__ import annotations

import importlib
import sys

import typer

from transpose_live import __version__
from transpose_live.errors import TransposeLiveError

app = typer.Typer(
    name="transpose-live",
    help="Real-time human pose estimation with TransPose: images, videos, webcams and RTSP cameras, "
    "with the model's own attention maps on request.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One module per command family; each defines register(app).
COMMAND_MODULES = (
    "cmd_image", "cmd_video", "cmd_webcam", "cmd_rtsp", "cmd_monitor", "cmd_weights", "cmd_eval", "cmd_train",
    "cmd_bench", "cmd_export", "cmd_gui", "cmd_soak",
)

def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"transpose-live {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """(--debug is read by main() before the app runs: errors raised while parsing need it too.)"""


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__package__}.{_name}").register(app)


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except TransposeLiveError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:
        # click's usage errors (typer bundles its own click, so match them by shape, not by class)
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        if debug:
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(1)

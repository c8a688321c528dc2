"""`transpose-live`: the Typer app. Each command lives in its own cmd_*.py module with a register(app)."""

from __future__ import annotations

import importlib
import sys

import typer

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
    "cmd_image", "cmd_video", "cmd_webcam", "cmd_weights", "cmd_eval", "cmd_train", "cmd_bench", "cmd_gui",
)

_state = {"debug": False}


@app.callback()
def _main_options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"{__package__}.{_name}":
            raise
        continue
    _module.register(app)


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print one line on stderr and return an Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


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

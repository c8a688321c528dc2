"""The web view's options, shared by `monitor` and `rtsp`: `@with_web_options` adds --web [HOST:]PORT,
--web-user, --web-password (or the environment variable TRANSPOSE_LIVE_WEB_PASSWORD), --event-dir,
--keep-days and --keep-mb to a command, which gets one `web_options: WebOptions` (not `web`: Typer would take
that annotation for --web's); `web_options.build(...)` validates them (before any model loads) and makes the
WebView, or None without --web."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from transpose_live.cli.options import option_group
from transpose_live.monitor.web.config import DEFAULT_KEEP_DAYS, DEFAULT_KEEP_MB, DEFAULT_USER, PASSWORD_ENV


@dataclass(frozen=True)
class WebOptions:
    web: Optional[str] = None
    web_user: str = DEFAULT_USER
    web_password: Optional[str] = None
    event_dir: Path = Path("events")
    keep_days: float = DEFAULT_KEEP_DAYS
    keep_mb: float = DEFAULT_KEEP_MB

    def config(self, record_dir: Path | None = None):
        """The validated WebConfig (TransposeLiveError for a bad address, no password off loopback, ...)."""
        from transpose_live.monitor.web.config import WebConfig, parse_address

        host, port = parse_address(self.web or "")
        return WebConfig(host=host, port=port, user=self.web_user, password=self.web_password,
                         event_dir=self.event_dir, keep_days=self.keep_days, keep_mb=self.keep_mb,
                         record_dir=record_dir).validate()

    def build(self, record_dir: Path | None = None, model_stats: Callable[[], Any] | None = None):
        """The WebView (not started yet), or None without --web."""
        if self.web is None:
            return None
        from transpose_live.monitor.web.view import WebView

        return WebView(self.config(record_dir), model_stats=model_stats)


_FLAGS = {
    "web": ("--web", dict(metavar="[HOST:]PORT", help="Serve a web view of the cameras (live grid, events with "
                          "snapshots and clips, /api, /metrics) on this port; host 127.0.0.1 unless given. Any "
                          "other host needs --web-password.")),
    "web_user": ("--web-user", dict(help="User name of the web view's HTTP Basic authentication.")),
    "web_password": ("--web-password", dict(envvar=PASSWORD_ENV, show_envvar=True, show_default=False,
                                            help="Password of the web view: every page, API call, stream and "
                                                 "the websocket need it. Required off 127.0.0.1.")),
    "event_dir": ("--event-dir", dict(help="Where the web view keeps events (SQLite) and their snapshots and "
                                      "clips; a restart shows them again.")),
    "keep_days": ("--keep-days", dict(min=0.001, help="Delete events older than this many days.")),
    "keep_mb": ("--keep-mb", dict(min=1.0, help="Delete the oldest events while the event folder holds more "
                                  "than this many MB.")),
}


def with_web_options(fn: Callable) -> Callable:
    """Add the web options to a command; it gets `web_options: WebOptions` (its other parameters unchanged)."""
    return option_group(WebOptions, _FLAGS, "web_options")(fn)


__all__ = ["WebOptions", "with_web_options"]

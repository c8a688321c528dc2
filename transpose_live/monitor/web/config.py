"""What the web view is told: where it listens, who may look, where events are kept and for how long.

Validated here once (the CLI and the library give the same errors): a server on anything but a loopback
address refuses to start without a password, since the page shows the inside of people's homes.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path

from transpose_live.errors import TransposeLiveError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_USER = "admin"
PASSWORD_ENV = "TRANSPOSE_LIVE_WEB_PASSWORD"
DEFAULT_KEEP_DAYS = 10.0        # Frigate keeps events 10 days by default
DEFAULT_KEEP_MB = 1024.0
CLIP_BEFORE_S = 5.0             # a clip starts this long before its event ...
CLIP_AFTER_S = 5.0              # ... and ends this long after


def parse_address(text: str) -> tuple[str, int]:
    """"PORT", "HOST:PORT" or "[IPv6]:PORT" -> (host, port); the host defaults to 127.0.0.1. Port 0 picks a
    free one (tests)."""
    text = str(text).strip()
    host, port_text = DEFAULT_HOST, text
    if text.startswith("["):
        inner, close, tail = text[1:].partition("]")
        if not close or not tail.startswith(":"):
            raise TransposeLiveError(f"--web {text!r}: expected [IPv6]:PORT")
        host, port_text = inner, tail[1:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        if ":" in host:
            raise TransposeLiveError(f"--web {text!r}: write an IPv6 address in brackets, [::1]:8080")
    if not host:
        raise TransposeLiveError(f"--web {text!r}: empty host (give PORT or HOST:PORT)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise TransposeLiveError(f"--web {text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (only this machine can connect)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False        # a host name: it may resolve to anything


@dataclass
class WebConfig:
    """The web view's settings. password None: no authentication (allowed on loopback only).
    record_dir: where `monitor --record-dir` writes segments (clips are cut from them); None: no clips."""

    host: str = DEFAULT_HOST
    port: int = 8080
    user: str = DEFAULT_USER
    password: str | None = None
    event_dir: Path = Path("events")
    keep_days: float = DEFAULT_KEEP_DAYS
    keep_mb: float = DEFAULT_KEEP_MB
    record_dir: Path | None = None
    clip_before_s: float = CLIP_BEFORE_S
    clip_after_s: float = CLIP_AFTER_S

    def validate(self) -> "WebConfig":
        if not 0 <= int(self.port) <= 65535:
            raise TransposeLiveError(f"web port must be 0..65535, got {self.port}")
        if self.password == "":
            self.password = None
        if self.password is None and not is_loopback(self.host):
            raise TransposeLiveError(
                f"the web view on {self.host} would be open to the network without a password: give "
                f"--web-password (or set {PASSWORD_ENV}), or listen on 127.0.0.1")
        if not self.user or ":" in self.user:
            raise TransposeLiveError("--web-user must be a non-empty name without ':' (HTTP Basic auth)")
        for name in ("keep_days", "keep_mb", "clip_before_s", "clip_after_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise TransposeLiveError(f"{name.replace('_', '-')} must be a number >= 0, got {value!r}")
        if self.keep_days == 0 or self.keep_mb == 0:
            raise TransposeLiveError("--keep-days and --keep-mb must be > 0 (events are kept at most that long / "
                                     "that much)")
        self.event_dir = Path(self.event_dir).expanduser()
        self.record_dir = Path(self.record_dir).expanduser() if self.record_dir is not None else None
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


__all__ = ["WebConfig", "parse_address", "is_loopback", "PASSWORD_ENV", "DEFAULT_USER", "DEFAULT_KEEP_DAYS",
           "DEFAULT_KEEP_MB"]

"""Where the MQTT messages go and how to get in: the broker (host, port, user, password) and the connection's
settings (TLS with the system's or a given CA, keep-alive), validated before anything connects. A password is
never part of str(), repr() or an error message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

from transpose_live.errors import TransposeLiveError
from transpose_live.media.redact import redact_url

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
DEFAULT_KEEPALIVE_S = 30
PASSWORD_ENV = "TRANSPOSE_LIVE_MQTT_PASSWORD"
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+")


@dataclass(frozen=True)
class Broker:
    """Where to publish: host, port and optional credentials (never part of str())."""

    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = "" if self.username is None else f"{self.username}:***@" if self.password else f"{self.username}@"
        return f"{user}{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Broker({str(self)!r})"


def parse_broker(spec: str, default_port: int = DEFAULT_PORT) -> Broker:
    """"host[:port]", "user:password@host[:port]" (percent-encoded where needed), "[::1]:1883", optionally
    with mqtt:// (or mqtts://). Anything else is a TransposeLiveError that shows the spec without its password."""
    text = str(spec).strip()
    shown = redact_url(text, bare=True)

    def bad(why: str) -> TransposeLiveError:
        return TransposeLiveError(f"invalid MQTT broker {shown!r}: {why} (expected HOST[:PORT], e.g. "
                                  f"localhost:1883, optionally USER:PASSWORD@HOST[:PORT])")

    for scheme in ("mqtt://", "mqtts://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
            break
    else:
        if "://" in text:
            raise bad("only mqtt:// is supported")
    text = text.rstrip("/")
    username = password = None
    if "@" in text:
        userinfo, _, text = text.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user), (unquote(secret) if colon else None)
        if not username:
            raise bad("empty user name")
    port_text: str | None = None
    if text.startswith("["):                               # [IPv6]:port
        host, close, tail = text[1:].partition("]")
        if not close or not _IPV6.fullmatch(host) or (tail and not tail.startswith(":")):
            raise bad("bad IPv6 address")
        port_text = tail[1:] if tail else None
    else:
        host, colon, port_part = text.partition(":")
        port_text = port_part if colon else None
        if not _HOST.fullmatch(host or ""):
            raise bad("bad host name" if host else "no host")
    port = default_port
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise bad("the port must be a number from 1 to 65535")
        port = int(port_text)
    return Broker(host, port, username, password)


@dataclass(frozen=True)
class MqttSettings:
    """How to reach the broker. tls: TLS on; ca_file: the CA that signed the broker's certificate (None with
    tls: the system's trusted CAs). The server's name is always checked against its certificate."""

    broker: Broker
    tls: bool = False
    ca_file: Path | None = None
    keepalive: int = DEFAULT_KEEPALIVE_S

    def __str__(self) -> str:
        return f"{self.broker}{' (TLS)' if self.tls else ''}"


def mqtt_settings(broker: str, user: str | None = None, password: str | None = None,
                  tls: bool | str | os.PathLike | None = None, keepalive: int = DEFAULT_KEEPALIVE_S) -> MqttSettings:
    """The settings from the command line or cameras.yaml. broker: "host[:port]" (user:password@ allowed);
    user / password override those of the spec; tls: None/False off, True (or "") the system's CAs, a path the
    CA file. Without a port, TLS connects to 8883 and plain MQTT to 1883."""
    on = str(broker).strip().lower().startswith("mqtts://") or (tls is not None and tls is not False)
    parsed = parse_broker(broker, DEFAULT_TLS_PORT if on else DEFAULT_PORT)
    if user is not None:
        if not user.strip():
            raise TransposeLiveError("the MQTT user name is empty")
        parsed = replace(parsed, username=user)
    if password is not None:
        if parsed.username is None:
            raise TransposeLiveError("an MQTT password needs a user name (--mqtt-user or user: in cameras.yaml)")
        parsed = replace(parsed, password=password)
    ca_file = None
    if isinstance(tls, (str, os.PathLike)) and os.fspath(tls):
        ca_file = Path(os.fspath(tls)).expanduser()
        if not ca_file.is_file():
            raise TransposeLiveError(f"MQTT TLS: CA file not found: {ca_file} (give the CA that signed the "
                                     "broker's certificate, or no file for the system's CAs)")
        try:
            ca_file.read_bytes()
        except OSError as exc:
            raise TransposeLiveError(f"MQTT TLS: cannot read the CA file {ca_file}: {exc.strerror}") from None
    if isinstance(keepalive, bool) or not isinstance(keepalive, int) or not 1 <= keepalive <= 65535:
        raise TransposeLiveError(f"MQTT keep-alive must be whole seconds from 1 to 65535, got {keepalive!r}")
    return MqttSettings(parsed, on, ca_file, keepalive)


__all__ = ["Broker", "MqttSettings", "parse_broker", "mqtt_settings", "DEFAULT_PORT", "DEFAULT_TLS_PORT",
           "DEFAULT_KEEPALIVE_S", "PASSWORD_ENV"]

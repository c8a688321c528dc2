"""Passwords out of anything shown: URLs of cameras and brokers in messages, tables, logs and JSON.

The one redactor of the project: sources, the run API, the window and MQTT all show addresses through it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote


def url_secrets(url: str) -> tuple[str, ...]:
    """The password of a URL as written and decoded, for scrubbing free text (too short ones are left:
    replacing every 'a' would garble messages; the URL itself is still redacted)."""
    span = _password_span(url)
    found = [m.group(2) for m in _QUERY_SECRET.finditer(url)]
    if span is not None:
        found.append(url[span[0]:span[1]])
    return tuple(s for s in dict.fromkeys(found + [unquote(f) for f in found]) if len(s) >= 4)


def _password_span(url: str) -> tuple[int, int] | None:
    """Where the password of scheme://user:password@host/... sits, like FFmpeg splits it: the authority
    ends at the first / ? or #, and the user info at its last @. A password that itself holds a / (not
    percent-encoded) cuts the authority short; then everything up to the URL's last @ counts as password."""
    scheme = url.find("://")
    if scheme < 0:
        return None
    begin = scheme + 3
    end = min((i for i in (url.find(c, begin) for c in "/?#") if i >= 0), default=len(url))
    authority = url[begin:end]
    at = authority.rfind("@")
    colon = authority.find(":")
    if colon < 0 or (0 <= at < colon):
        return None
    if at >= 0:
        return begin + colon + 1, begin + at
    last_at = url.rfind("@")
    if last_at < end or authority[colon + 1:].isdigit():      # no user info, or host:port
        return None
    return begin + colon + 1, last_at


_QUERY_SECRET = re.compile(r"([?&;](?:password|passwd|pass|pwd)=)([^&#;\s]*)", re.IGNORECASE)


def redact_url(url: str, bare: bool = False) -> str:
    """rtsp://user:secret@host/path → rtsp://user:***@host/path (also ?password=… in the query), so messages
    never show a password. Works on free text holding a URL too. bare=True: `url` is one address that may
    come without a scheme, user:password@host[:port] (how an MQTT broker is given)."""
    def mask(match: re.Match) -> str:
        found = match.group(0)
        span = _password_span(found)
        return found if span is None else found[:span[0]] + "***" + found[span[1]:]

    if bare and "://" not in url and "@" in url:
        # user:password@host[:port] with no scheme (how an MQTT broker is given): the password is what lies
        # between the first ':' and the last '@'
        userinfo, _, hostport = url.rpartition("@")
        return userinfo.split(":", 1)[0] + ":***@" + hostport if ":" in userinfo else url
    text = re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+", mask, url)
    return _QUERY_SECRET.sub(r"\1***", text)


def source_label(source: object) -> str:
    """How messages name a source: a file's name, "camera 0", a stream's URL without its password; for an
    opened source, the same of its path, URL or camera index, or of its label (an image folder's folder or
    one picture)."""
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        return f"camera {int(source)}"
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        return redact_url(text) if "://" in text else Path(text).name or text
    for attr in ("path", "url", "index", "label"):
        value = getattr(source, attr, None)
        if value is not None:
            return source_label(value)
    return type(source).__name__


__all__ = ["redact_url", "url_secrets", "source_label"]

"""HTTP Basic authentication in front of everything the server answers (pages, static files, the API,
MJPEG, /metrics and the websocket handshake): browsers, curl and Prometheus all speak it. Plain ASGI
middleware, so no route can forget it. Credentials are compared in constant time."""

from __future__ import annotations

import base64
import binascii
import secrets

REALM = "transpose-live"


def credentials_ok(header: bytes | None, user: str, password: str) -> bool:
    """Whether an Authorization header carries exactly `user` and `password` (Basic)."""
    if not header:
        return False
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    name, colon, secret = given.partition(":")
    # both compared, always: the time taken does not tell which one was wrong
    same_user = secrets.compare_digest(name.encode(), user.encode())
    same_password = secrets.compare_digest(secret.encode(), password.encode())
    return bool(colon) and same_user and same_password


class BasicAuth:
    """ASGI middleware: requests without the right credentials get 401 with a Basic challenge; websocket
    handshakes get 401 too where the server can send it (else they are closed, code 1008)."""

    def __init__(self, app, user: str, password: str):
        self.app, self.user, self.password = app, user, password

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization")
        if credentials_ok(header, self.user, self.password):
            await self.app(scope, receive, send)
            return
        headers = [(b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
                   (b"content-type", b"text/plain; charset=utf-8")]
        body = b"401 Unauthorized: this transpose-live web view needs its user name and password\n"
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await receive()                      # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


__all__ = ["BasicAuth", "credentials_ok", "REALM"]

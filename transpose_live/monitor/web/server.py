"""uvicorn in a thread of this process (the cameras keep the main thread): the socket is bound here, before
the thread starts, so a port in use is an error at once and port 0 gets a free port to report."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time

from transpose_live.errors import TransposeLiveError

log = logging.getLogger(__name__)

START_S = 10.0
GRACE_S = 1               # open streams (MJPEG, websockets) get this long to end at stop()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise TransposeLiveError(f"the web view cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


class ServerThread:
    """Serve `app` on `sock` until stop()."""

    def __init__(self, app, sock: socket.socket):
        import uvicorn  # deferred: only a run with --web needs the server

        self.sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=GRACE_S,
                                ws_ping_interval=20.0, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="web-server", daemon=True)
        self.error: BaseException | None = None

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:      # noqa: BLE001 - reported by start()
            self.error = exc

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise TransposeLiveError(f"the web server did not start: {self.error or 'no answer'}")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(1.0)
        self.sock.close()


__all__ = ["ServerThread", "bind"]

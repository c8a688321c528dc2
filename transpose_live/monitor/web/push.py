"""Messages to every open page over its websocket: new events, camera states, fps. Publishers are other
threads (the event recorder, a camera's feed) or the server's own loop; each page has a small queue in the
server's loop, and a page too slow to read loses its oldest messages (the next camera message brings it up
to date again), so nobody can make the publishers wait or the memory grow."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

log = logging.getLogger(__name__)

QUEUE = 200          # messages waiting per page


class Client:
    """One page's queue of JSON texts (lives in the server's loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int = QUEUE):
        self.loop = loop
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def put(self, text: str) -> None:
        """In the loop's thread: queue `text`, dropping the oldest when full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(text)


class Broadcaster:
    """publish(message) from any thread to every joined page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: set[Client] = set()
        self.sent = 0

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def join(self, loop: asyncio.AbstractEventLoop) -> Client:
        client = Client(loop)
        with self._lock:
            self._clients.add(client)
        return client

    def leave(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)

    def publish(self, message: dict) -> None:
        """Serialise once, queue for every page (thread-safe; never blocks)."""
        with self._lock:
            clients = list(self._clients)
        if not clients:
            return
        try:
            text = json.dumps(message, allow_nan=False, default=str)
        except ValueError as exc:      # a NaN somewhere: the page's JSON.parse would fail on it
            log.warning("a web message that is not JSON was dropped: %s", exc)
            return
        for client in clients:
            try:
                client.loop.call_soon_threadsafe(client.put, text)
            except RuntimeError:         # that page's loop has closed (the server stopped)
                self.leave(client)
        self.sent += 1


__all__ = ["Broadcaster", "Client"]

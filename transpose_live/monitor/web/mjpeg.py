"""The MJPEG response (multipart/x-mixed-replace, what <img src> and VLC play): one viewer of a camera's
JpegStream, sending each newer JPEG as it comes and skipping those it was too slow for.

Written as a plain ASGI response so that the viewer always leaves: on the client's disconnect (noticed even
while no frame comes, e.g. a camera that is reconnecting), on a failed send, and when the server stops."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.responses import Response

from transpose_live.monitor.web.hub import JpegStream

BOUNDARY = "frame"
IDLE_S = 1.0             # how often a waiting stream looks at the stop flag


HEADERS = [(b"content-type", f"multipart/x-mixed-replace; boundary={BOUNDARY}".encode()),
           (b"cache-control", b"no-store"), (b"x-accel-buffering", b"no")]    # no length: it never ends


class MjpegResponse(Response):
    def __init__(self, stream: JpegStream, overlay: bool = False):   # noqa: D107 - Response's init sets a length
        self.stream, self.overlay = stream, overlay
        self.status_code = 200
        self.background = None
        self.raw_headers = list(HEADERS)

    async def __call__(self, scope, receive, send) -> None:
        viewer = self.stream.join(asyncio.get_running_loop(), overlay=self.overlay)
        gone = asyncio.create_task(_disconnect(receive))
        gone.add_done_callback(lambda _: viewer.ready.set())     # a viewer waiting for a frame hears it at once
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while not gone.done() and not self.stream.closed:
                if not await viewer.wait(IDLE_S):
                    continue
                jpeg = viewer.take()
                if jpeg is None:
                    continue
                head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode()
                await send({"type": "http.response.body", "body": head + jpeg + b"\r\n", "more_body": True})
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:            # the client went away during a send
            pass
        finally:
            viewer.leave()
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await gone


async def _disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


__all__ = ["MjpegResponse", "BOUNDARY"]

"""JPEG frames of each camera for the web: every rendered frame is encoded at most once, in the camera's
own encoder thread (never in the pipeline's), and the one JPEG goes to every viewer.

MJPEG viewers each wait on an asyncio.Event that the encoder sets (thread-safely) when a newer JPEG is
ready; a viewer still sending the previous one finds the event set once, takes the newest and so skips the
frames it was too slow for. With no viewer nothing is encoded, except on demand (latest.jpg, a tile).

Viewers that asked for the attention overlay are counted per camera: the first one turns the pipeline's
attention maps on, the last one to leave turns them off (they cost model time only while someone looks).
"""

from __future__ import annotations

import asyncio
import logging
import threading

import cv2

from transpose_live.monitor.web.feeds import CameraFeed

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
WAIT_S = 0.5                # how often the encoder thread looks at the stop flag


class Viewer:
    """One MJPEG viewer of a JpegStream: `await wait(timeout)` until a newer JPEG than the last taken,
    `take()` it; `leave()` once (the last overlay viewer's leave turns the overlay off)."""

    def __init__(self, stream: "JpegStream", loop: asyncio.AbstractEventLoop, overlay: bool):
        self.stream, self.loop, self.overlay = stream, loop, overlay
        self.ready = asyncio.Event()
        self.seq = 0
        self.left = False

    def wake(self) -> None:
        """From the encoder thread: a newer JPEG is there."""
        try:
            self.loop.call_soon_threadsafe(self.ready.set)
        except RuntimeError:            # the server's loop is closed: nobody is waiting any more
            pass

    async def wait(self, timeout: float) -> bool:
        if self.stream.jpeg_seq > self.seq:
            return True
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        self.ready.clear()
        return self.stream.jpeg_seq > self.seq

    def take(self) -> bytes | None:
        jpeg, self.seq = self.stream.current()
        return jpeg

    def leave(self) -> None:
        if not self.left:
            self.left = True
            self.stream.remove(self)


class JpegStream:
    """One camera's JPEG encoder and its viewers."""

    def __init__(self, feed: CameraFeed, quality: int = JPEG_QUALITY):
        self.feed = feed
        self.quality = int(quality)
        self._lock = threading.Lock()         # the JPEG, the viewers, the encoder thread
        self._encode_lock = threading.Lock()  # one encode at a time (the thread, or latest.jpg on demand)
        self._jpeg: bytes | None = None
        self.jpeg_seq = 0                     # the feed's frame number that _jpeg holds
        self.encoded = 0                      # JPEGs made (each frame at most once)
        self._viewers: set[Viewer] = set()
        self._overlay = 0
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    # ------------------------------------------------------------------------------------------ viewers

    @property
    def viewers(self) -> int:
        with self._lock:
            return len(self._viewers)

    @property
    def overlay_viewers(self) -> int:
        with self._lock:
            return self._overlay

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def join(self, loop: asyncio.AbstractEventLoop, overlay: bool = False) -> Viewer:
        viewer = Viewer(self, loop, overlay)
        with self._lock:
            self._viewers.add(viewer)
            first_overlay = overlay and self._overlay == 0
            self._overlay += int(overlay)
            if self._thread is None and not self.closed:
                self._thread = threading.Thread(target=self._run, name=f"web-jpeg-{self.feed.name}", daemon=True)
                self._thread.start()
        if first_overlay:
            self._attention(True)
        return viewer

    def remove(self, viewer: Viewer) -> None:
        with self._lock:
            self._viewers.discard(viewer)
            self._overlay -= int(viewer.overlay)
            last_overlay = viewer.overlay and self._overlay == 0
        if last_overlay:
            self._attention(False)

    def _attention(self, on: bool) -> None:
        controls = self.feed.controls
        if controls is None:
            return
        try:
            controls.set_attention(on)
        except Exception as exc:           # a pipeline that ended meanwhile: nothing to turn
            log.debug("attention %s for %s failed: %s", on, self.feed.name, exc)

    # ------------------------------------------------------------------------------------------ JPEGs

    def current(self) -> tuple[bytes | None, int]:
        with self._lock:
            return self._jpeg, self.jpeg_seq

    def latest(self) -> bytes | None:
        """The newest frame as JPEG (encoded now when the encoder has not: nobody watches the stream)."""
        jpeg, seq = self.current()
        if seq != self.feed.seq:
            self._encode()
            jpeg, seq = self.current()
        return jpeg

    def _encode(self) -> bool:
        """Encode the feed's newest frame unless it already is; True when a new JPEG was made."""
        with self._encode_lock:
            image, seq = self.feed.newest()
            if image is None or seq == self.jpeg_seq:
                return False
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                return False
            with self._lock:
                self._jpeg, self.jpeg_seq = data.tobytes(), seq
                self.encoded += 1
                viewers = list(self._viewers)
        for viewer in viewers:
            viewer.wake()
        return True

    def _run(self) -> None:
        feed, seen = self.feed, -1
        while not self.closed:
            with feed.new_frame:
                if feed.seq == seen:          # asleep until the next frame (with nobody watching, nothing to do)
                    feed.new_frame.wait(WAIT_S)
                seen = feed.seq
            if self.viewers:
                self._encode()

    def close(self) -> None:
        """Stop the encoder thread and wake every viewer (their streams end)."""
        self._closed.set()
        with self.feed.new_frame:
            self.feed.new_frame.notify_all()
        with self._lock:
            viewers, thread = list(self._viewers), self._thread
        for viewer in viewers:
            viewer.wake()
        if thread is not None:
            thread.join(2 * WAIT_S)


__all__ = ["JpegStream", "Viewer", "JPEG_QUALITY"]

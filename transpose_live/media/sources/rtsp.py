"""Network streams (RTSP, HTTP/HLS/MJPEG, RTMP...) through PyAV that reconnect by themselves: backoff with
jitter, retry limits, reasons in words without the URL's password, events for each loss and return."""

from __future__ import annotations

import logging
import random
import re
import threading
import time

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.media.redact import redact_url, url_secrets
from transpose_live.media.sources.base import Frame, Source
from transpose_live.media.sources.pyav import PyAVSource, ffmpeg_reason

log = logging.getLogger(__name__)


class _StreamLost(Exception):
    """Raised inside a stream's decoding when the connection is no good any more; the text is the reason."""


class RtspSource(PyAVSource):
    """A network stream (RTSP over TCP by default, also HTTP/HLS/MJPEG) that reconnects by itself.

    One connection attempt is made in the constructor (bounded by `timeout`), so `size` and `fps` are known
    when it succeeds. When it fails, `max_retries=0` raises one TransposeLiveError at once; otherwise the
    source starts in state "connecting" (size (0, 0) until the first frame) and the reading thread keeps
    trying. Whenever the stream ends, stalls for `timeout` seconds or stops decoding, the reading thread
    reconnects, waiting `backoff_start` seconds doubling up to `backoff_cap` (each wait ±`jitter`) between
    attempts, forever unless `max_retries` says how many attempts an outage may take; after that the
    iteration raises TransposeLiveError with the last reason. Authentication (401/403) and unknown-path
    (404) answers are waited on for `backoff_cap` every time. close() from any thread ends a wait at once;
    a read or connection attempt in flight returns within about `timeout` seconds (a silent camera is
    noticed that fast: FFmpeg may wait its socket timeout twice in one read, so it gets half of `timeout`).

    state: "connecting" (never live yet), "live", "reconnecting" (was live) or "failed" (retries spent).
    reconnects: how often the stream came back after a loss; last_error: the last reason, or None.
    on_event(record), called in the reading thread:
        {"event": "stream_lost", "reason": str, "frames": frames delivered so far}
        {"event": "stream_back", "down_s": seconds without frames, "reconnects": self.reconnects}
        {"event": "stream_failed", "reason": str}
    Frame indices and timestamps keep increasing across reconnects (a new connection continues from the last
    timestamp plus one frame interval, then follows its own pts). The URL's password appears in no event,
    log line, exception or repr (`***`); `url` is the URL as given (to reopen it), `safe_url` the one to show."""

    is_live = True
    backoff_start = 0.5     # seconds before the first retry of an outage; doubles per failed attempt
    backoff_cap = 30.0      # the longest wait; also the wait after a 401/403/404
    jitter = 0.2            # every wait is scaled by a random factor in [1 - jitter, 1 + jitter]
    max_bad_packets = 100   # undecodable packets in a row before the stream counts as lost

    def __init__(self, url: str, transport: str = "tcp", timeout: float = 10.0, max_retries: int | None = None,
                 on_event=None):
        self._url = url
        self._secrets = url_secrets(url)
        label = self.safe_url = redact_url(url)      # the URL with its password masked: for messages and tables
        if url.startswith(("rtsp://", "rtsps://")) and transport not in ("tcp", "udp", "http", "https"):
            raise TransposeLiveError(f"RTSP transport must be tcp, udp, http or https, got {transport!r}")
        if not timeout or timeout <= 0:
            raise TransposeLiveError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries is not None and (isinstance(max_retries, bool) or not isinstance(max_retries, int)
                                        or max_retries < 0):
            raise TransposeLiveError(f"max_retries must be a whole number >= 0 or None, got {max_retries!r}")
        self.transport, self.timeout, self.max_retries = transport, float(timeout), max_retries
        self.on_event = on_event
        self._options = _stream_options(url, transport, self.timeout)
        self._wake = threading.Event()       # set by close(): ends a reconnect wait
        Source.__init__(self)
        self._begin(label)
        self._status = "connecting"
        self.reconnects = 0
        self.last_error: str | None = None
        self._slow = False                   # the last failure was an answer worth waiting long on (401, 404)
        self._retries = 0                    # attempts made in the current outage
        self._down_since = time.monotonic()
        self._bad_run = 0
        self._first_pts, self._first_ts = None, 0.0
        self._resized = False
        reason = self._connect()
        if reason is None:
            self._status = "live"
            return
        self.last_error = reason
        if max_retries == 0:
            self.close()
            self._give_up(f"cannot connect to {label}: {reason}")
        log.warning("%s: cannot connect (%s); retrying", label, reason)

    @property
    def url(self) -> str:
        """The stream's URL as given, password included (what reopens it): show `safe_url` instead."""
        return self._url

    @property
    def state(self) -> str:
        return self._status

    def __repr__(self) -> str:
        return f"RtspSource({self._label!r}, state={self._status!r})"

    # -- reading

    def _next_frame(self) -> Frame:
        while True:
            if self._status == "failed":
                raise StopIteration
            if self._container is None:
                self._reconnect()
            try:
                item = self._take()
            except (_StreamLost, self._av.FFmpegError, OSError) as exc:
                reason = self._why(exc)
            else:
                if item is not None:
                    self._bad_run = 0
                    return self._frame(*self._fit(item))
                reason = "end of stream"
            if not self.is_live:            # a file served over HTTP ends where it ends
                if reason != "end of stream":
                    log.warning("%s: reading stopped after %d frames (%s)", self._label, self._index, reason)
                raise StopIteration
            self._lose(reason)

    def _connect(self) -> str | None:
        """One attempt: open, then decode a first frame. None when frames flow, else why not."""
        av = self._av
        self._first_pts = None               # the new connection's pts continue from the last timestamp
        self._bad_run = 0
        started = time.monotonic()
        try:
            container = av.open(self._url, container_options=self._options, timeout=(self.timeout, self.timeout))
        except (av.FFmpegError, OSError) as exc:
            return self._why(exc, time.monotonic() - started)
        try:
            self._attach(container)
        except (TransposeLiveError, _StreamLost, av.FFmpegError, OSError) as exc:
            self._detach()
            return self._why(exc, time.monotonic() - started)
        if container.duration:               # an HTTP file rather than a live stream
            self.is_live = False
        return None

    def _configure(self, stream) -> None:
        stream.thread_type = "SLICE"         # frame threads would hold back one frame per thread
        stream.codec_context.flags |= self._av.codec.context.Flags.low_delay

    def _reconnect(self) -> None:
        """Wait and try until frames flow again. StopIteration once closed; TransposeLiveError (state
        "failed") when the attempts allowed for one outage are spent."""
        while True:
            if self.max_retries is not None and self._retries >= self.max_retries:
                n = self._retries
                tried = f"after {n} retr{'y' if n == 1 else 'ies'}"
                if self._status == "connecting":
                    self._give_up(f"cannot connect to {self._label} {tried}: {self.last_error}")
                self._give_up(f"{self._label}: stream lost and not back {tried}: {self.last_error}")
            if self._closing or self._wake.wait(self._delay()):
                raise StopIteration
            self._retries += 1
            reason = self._connect()
            if reason is None:
                break
            self.last_error = reason
            log.info("%s: reconnect attempt %d failed (%s)", self._label, self._retries, reason)
        if self._status == "reconnecting":
            self.reconnects += 1
            down = time.monotonic() - self._down_since
            log.warning("%s: stream back after %.1f s (%d attempt(s))", self._label, down, self._retries)
            self._status = "live"
            self._event({"event": "stream_back", "down_s": round(down, 3), "reconnects": self.reconnects})
        else:
            log.info("%s: connected", self._label)
            self._status = "live"

    def _delay(self) -> float:
        """Seconds to wait before the next attempt: capped exponential backoff with jitter."""
        base = self.backoff_cap if self._slow else min(self.backoff_cap, self.backoff_start * 2 ** self._retries)
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def _lose(self, reason: str) -> None:
        self._detach()
        self.last_error, self._retries, self._down_since = reason, 0, time.monotonic()
        self._status = "reconnecting"
        log.warning("%s: stream lost after %d frames (%s); reconnecting", self._label, self._index, reason)
        self._event({"event": "stream_lost", "reason": reason, "frames": self._index})

    def _give_up(self, message: str):
        self._status = "failed"
        self._event({"event": "stream_failed", "reason": self.last_error or message})
        raise TransposeLiveError(self._scrub(message))

    def _event(self, record: dict) -> None:
        callback = self.on_event
        if callback is None:
            return
        try:
            callback(record)
        except Exception as exc:          # a listener's bug must not stop the camera
            log.warning("%s: on_event callback failed: %s", self._label, self._scrub(repr(exc)))

    def _interrupt(self) -> None:
        self._wake.set()

    # -- what went wrong, in words without the password

    def _why(self, exc: Exception, elapsed: float = 0.0) -> str:
        """A reason for logs, events and errors; notes whether it deserves the slow retry."""
        av = self._av
        if isinstance(exc, _StreamLost):      # already put in words (and classified) where it was raised
            return self._scrub(str(exc))
        self._slow = False
        if isinstance(exc, TransposeLiveError):   # from _attach, which names the stream: "<url>: what"
            text = self._scrub(str(exc)).replace(self._label, "").lstrip(": ").removeprefix("has ")
        else:
            text = self._scrub(ffmpeg_reason(exc))
        for status, error, words in ((401, av.HTTPUnauthorizedError, "authentication failed (401)"),
                                     (403, av.HTTPForbiddenError, "access forbidden (403)"),
                                     (404, av.HTTPNotFoundError, "no such stream path (404)")):
            if isinstance(exc, error) or re.search(rf"\b{status}\b", text):
                self._slow = True
                return words
        if isinstance(exc, (av.ExitError, TimeoutError)) or elapsed >= 0.45 * self.timeout:   # socket: timeout/2
            return f"no answer for {self.timeout:g} s ({text})"
        return text

    def _scrub(self, text: str) -> str:
        text = redact_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _read_error(self, exc: Exception) -> None:
        raise _StreamLost(self._why(exc))

    def _damaged(self, why: str) -> None:
        super()._damaged(self._scrub(why))
        self._bad_run += 1
        if self._bad_run >= self.max_bad_packets:
            raise _StreamLost(f"{self._bad_run} undecodable packets in a row ({self._scrub(why)})")

    def _timestamp(self, av_frame) -> float:
        # live streams start at arbitrary pts (and the first frames may have none): count from the first
        # frame of each connection (the last timestamp + one frame interval), stepping by the nominal rate
        # until pts appear, then following pts; pts that go back (a camera restarting its clock) re-anchor
        pts = av_frame.pts if av_frame.pts is not None else av_frame.dts
        step = 1.0 / (self.fps or 30.0)
        following = 0.0 if self._last_ts is None else self._last_ts + step
        if pts is None or self.time_base is None:
            return following
        if self._first_pts is None:
            self._first_pts, self._first_ts = pts, following
        ts = self._first_ts + float((pts - self._first_pts) * self.time_base)
        if self._last_ts is not None and ts <= self._last_ts:
            self._first_pts, self._first_ts = pts, following
            ts = following
        return ts

    def _fit(self, item: tuple[float, np.ndarray]) -> tuple[float, np.ndarray]:
        """Frames keep the first connection's size (writers are set up for it) if the camera changes it."""
        ts, image = item
        width, height = self._size
        if (image.shape[1], image.shape[0]) == (width, height) or not width:
            return item
        import cv2  # deferred: OpenCV loads on first use

        if not self._resized:
            self._resized = True
            log.warning("%s: the stream's picture changed to %dx%d; frames are scaled to %dx%d",
                        self._label, image.shape[1], image.shape[0], width, height)
        return ts, cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _stream_options(url: str, transport: str, timeout: float) -> dict[str, str]:
    """Demuxer options for low latency (no input buffering, small probe) and bounded socket waits. (The
    decoder's low_delay flag is set on the stream, in RtspSource._configure: it is no demuxer option.)"""
    options = {"fflags": "nobuffer", "probesize": "65536", "analyzeduration": "500000"}
    if url.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = transport
        # socket I/O timeout in microseconds; FFmpeg may wait it twice in one read, so half of `timeout`
        options["timeout"] = str(max(1, int(timeout * 500_000)))
        if transport == "udp":
            options["buffer_size"] = str(1 << 20)      # a full socket buffer drops RTP packets
    return options

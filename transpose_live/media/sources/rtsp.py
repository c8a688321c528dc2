"""Frame sources behind one iterator interface: video files and network streams (PyAV), cameras (OpenCV),
image folders. Every source yields `Frame`s: BGR uint8 images, upright, with their own timestamps.
Network streams reconnect by themselves (RtspSource); no message ever shows a URL's password."""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.media.redact import redact_url, url_secrets

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset((".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"))
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "srt://")


@dataclass
class Frame:
    """One decoded picture. image (H, W, 3) uint8 BGR; timestamp in seconds from the start of the source."""

    image: np.ndarray
    index: int
    timestamp: float
    path: str | None = None        # the image file, for folder sources


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    duration: float | None         # seconds, when the container says


class Source:
    """Iterator of Frames with the facts a pipeline or writer needs. Use as a context manager.

    The pipeline reads a source in its capture thread while whoever stops the run closes it from another,
    and a camera or network read can block for seconds. So this class owns reading and closing: a lock lets
    one thread read at a time, and close() never frees FFmpeg/OpenCV resources under a running read: it
    marks the source closing and leaves the release to the reading thread, right after its read returns.
    Subclasses implement `_next_frame` and `_release`, and call `Source.__init__` as soon as they hold
    something `_release` must free (before that, a failing constructor frees what it holds itself).
    A source that ends (`_next_frame` raises StopIteration) releases its resources at once."""

    is_live: bool = False
    path: str | None = None        # file path for file sources (a writer copies audio from it)
    time_base: Fraction | None = None   # the stream's own time base, when it has one
    audio: AudioInfo | None = None

    _fps: float | None = None
    _size: tuple[int, int] = (0, 0)    # set by each source once its first frame is known

    def __init__(self) -> None:
        self._read_lock = threading.Lock()     # held for a whole read: reads never overlap
        self._state = threading.Lock()         # guards the two fields below; held only briefly
        self._closing = False                  # set once by close() or the end; no read starts after it
        self._reader: int | None = None        # the thread inside _next_frame, if any
        self._released = threading.Event()

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames as yielded (after rotation)."""
        return self._size

    @property
    def frame_count(self) -> int | None:
        """Estimated number of frames still to come from the start (None for live sources)."""
        return None

    @property
    def duration(self) -> float | None:
        return None

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._closing:      # unlocked fast path: don't queue behind a read that may hang
            raise StopIteration
        with self._read_lock:
            with self._state:
                if self._closing:
                    raise StopIteration
                self._reader = threading.get_ident()
            ended = False
            try:
                frame = self._next_frame()
            except StopIteration:
                ended = True
                raise
            finally:
                closed = self._end_read(ended)
            if closed:
                raise StopIteration     # close() came during the read: its frame is not handed out
            return frame

    def _end_read(self, ended: bool) -> bool:
        """After a read: release here if close() came meanwhile (it left that to this thread) or the
        source has ended. True when the source is closed now."""
        with self._state:
            self._reader = None
            self._closing = self._closing or ended
            closing = self._closing
        if closing:
            # no read can start any more (they check _closing under _state), and this one is over
            self._free()
        return closing

    def close(self) -> None:
        """Stop the source from any thread; returns at once. Frees the resources now when no read is in
        flight, else the reading thread frees them as soon as its read returns (see wait_closed).
        Idempotent; no frame is produced after it returns."""
        state = getattr(self, "_state", None)
        if state is None:           # the constructor failed before holding anything
            return
        with state:
            if self._closing:       # already closed, closing, or ended: the release is someone's job
                return
            self._closing = True
            reading = self._reader is not None
        self._interrupt()
        if not reading:             # also when called from inside _next_frame: that read releases
            self._free()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Whether the resources are released, waiting up to `timeout` seconds for a read to return."""
        return self._released.wait(timeout)

    def _free(self) -> None:
        # reached exactly once: by close() with no read in flight, or by the read during which it came
        try:
            self._release()
        finally:
            self._released.set()

    def _next_frame(self) -> Frame:
        """The next frame; StopIteration at the end. Called with the read lock held."""
        raise NotImplementedError

    def _release(self) -> None:
        """Free the file/camera/network resources; called once, never during a read. Nothing by default."""

    def _interrupt(self) -> None:
        """Called by close() (from the closing thread, once) to wake a read waiting on something of the
        subclass's own, e.g. a reconnect delay. Must only signal: the read still releases. Nothing by default."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------------------
# orientation: FFmpeg's display matrix → numpy flips/transposes


def display_transform(matrix: np.ndarray | None) -> tuple[bool, bool, bool] | None:
    """(transpose, flip_rows, flip_cols) that turn the coded picture upright, from a 3x3 display matrix
    (9 int32, FFmpeg layout). The display position is x' = a·x + c·y, y' = b·x + d·y (a, b, c, d =
    m[0], m[1], m[3], m[4]); this matches `ffmpeg`'s own autorotate for all eight orientations.
    None when the matrix is not a multiple of 90 degrees (then the frame is left as coded)."""
    if matrix is None:
        return False, False, False
    a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
    if abs(b) < 1e-6 * max(abs(a), 1) and abs(c) < 1e-6 * max(abs(d), 1) and a and d:
        return False, d < 0, a < 0
    if abs(a) < 1e-6 * max(abs(b), 1) and abs(d) < 1e-6 * max(abs(c), 1) and b and c:
        return True, b < 0, c < 0
    return None


def apply_transform(image: np.ndarray, transform: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, flip_rows, flip_cols = transform
    if transpose:
        image = image.transpose(1, 0, 2)
    if flip_rows:
        image = image[::-1]
    if flip_cols:
        image = image[:, ::-1]
    return np.ascontiguousarray(image) if (transpose or flip_rows or flip_cols) else image


def _display_matrix(av_frame) -> np.ndarray | None:
    for side in av_frame.side_data:
        if getattr(side.type, "name", "") == "DISPLAYMATRIX":
            return np.frombuffer(bytes(side), dtype=np.int32)
    return None


# ---------------------------------------------------------------------------------------------------------
# PyAV sources: files and network streams


class _PyAVSource(Source):
    """Decoding shared by files and streams: first frame peeked at open (size, rotation, validation)."""

    skip_corrupt = False     # files: a packet the demuxer flags as damaged would decode as garbage

    def _setup(self, container, label: str) -> None:
        Source.__init__(self)
        self._begin(label)
        try:
            self._attach(container)
        except TransposeLiveError:
            self.close()
            raise

    def _begin(self, label: str) -> None:
        """The reading state that outlives one container (a stream reconnects into the same source)."""
        import av

        self._av = av
        self._label = label
        self._container = None
        self._frames = None
        self._pending = None
        self._index = 0
        self._decode_errors = 0
        self._last_ts: float | None = None

    def _attach(self, container) -> None:
        """Read from `container`: its first video stream's facts, a fresh decoder and its first frame
        (peeked, for the size). TransposeLiveError when it has no video or no decodable frame."""
        self._container = container
        self._frames = self._decode()      # a generator: nothing runs (or needs closing) before its first next
        self._transform: tuple[bool, bool, bool] | None = None
        if not container.streams.video:
            raise TransposeLiveError(f"{self._label} has no video stream")
        self._stream = stream = container.streams.video[0]
        self._configure(stream)
        self.time_base = stream.time_base
        self._origin = stream.start_time or 0          # pts of the source's t = 0
        # header facts copied out: PyAV's stream objects must not be read once the container is closed
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else self._fps
        self._header_frames = int(stream.frames or 0)
        if stream.duration and stream.time_base:
            self._total = float(stream.duration * stream.time_base)
        else:
            self._total = container.duration / 1_000_000 if container.duration else None
        self.audio = _audio_info(container)
        self._pending = next(self._frames, None)
        if self._pending is None:
            if getattr(self, "start", 0.0):
                raise TransposeLiveError(f"{self._label}: no video frames at or after start={self.start:g} s")
            raise TransposeLiveError(f"{self._label}: no video frame could be decoded")
        if self._size == (0, 0):
            image = self._pending[1]
            self._size = (image.shape[1], image.shape[0])

    def _configure(self, stream) -> None:
        stream.thread_type = "AUTO"     # frame + slice threads: decoding keeps up with the model

    def _timestamp(self, av_frame) -> float:
        pts = av_frame.pts if av_frame.pts is not None else av_frame.dts
        if pts is None or self.time_base is None:      # no timestamps: count frames
            prev = self._last_ts
            step = 1.0 / (self.fps or 30.0)
            return 0.0 if prev is None else prev + step
        return float((pts - self._origin) * self.time_base)

    def _packets(self):
        return self._container.demux(self._stream)

    def _decode(self):
        """Yield (timestamp, upright BGR image); a damaged packet is skipped, a read error ends the file."""
        av = self._av
        packets = self._packets()
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                self._read_error(exc)
                return
            if packet.is_corrupt and self.skip_corrupt:   # e.g. the cut-off last packet of a truncated file
                self._damaged("packet flagged as corrupt")
                continue
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                self._damaged(str(exc))
                continue
            for av_frame in decoded:
                ts = self._timestamp(av_frame)
                if not self._keep(ts):
                    if self._past_end(ts):
                        return
                    continue
                if self._transform is None:
                    self._transform = display_transform(_display_matrix(av_frame))
                    if self._transform is None:
                        log.warning("%s: rotation of %s degrees is not a multiple of 90; frames left as coded",
                                    self._label, av_frame.rotation)
                        self._transform = (False, False, False)
                image = apply_transform(av_frame.to_ndarray(format="bgr24"), self._transform)
                self._last_ts = ts
                yield ts, image

    def _damaged(self, why: str) -> None:
        self._decode_errors += 1
        if self._decode_errors == 1:     # once per source: a damaged stream would flood the log
            log.warning("%s: damaged video data skipped (%s)", self._label, why)

    def _keep(self, ts: float) -> bool:
        return True

    def _past_end(self, ts: float) -> bool:
        return False

    def _read_error(self, exc: Exception) -> None:
        log.warning("%s: reading stopped after %d frames (%s)", self._label, self._index, exc)

    def _next_frame(self) -> Frame:
        item = self._take()
        if item is None:
            self._finished()
            raise StopIteration      # Source releases the file (and network) right away
        return self._frame(*item)

    def _take(self) -> tuple[float, np.ndarray] | None:
        """The peeked frame, else the decoder's next (timestamp, image); None at the end."""
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        return next(self._frames, None)

    def _frame(self, ts: float, image: np.ndarray) -> Frame:
        frame = Frame(image=image, index=self._index, timestamp=ts)
        self._index += 1
        return frame

    def _finished(self) -> None:
        pass

    def _release(self) -> None:
        self._detach()

    def _detach(self) -> None:
        """Close the decoder and the container (if any); the source's reading state stays."""
        frames, container = self._frames, self._container
        self._frames = self._container = self._pending = None
        try:
            if frames is not None:
                frames.close()
        finally:
            if container is not None:
                container.close()


def _audio_info(container) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    return AudioInfo(codec=ctx.name, sample_rate=int(ctx.sample_rate or 0),
                     channels=int(ctx.channels or 0), duration=duration)


class FileSource(_PyAVSource):
    """A video file in any container/codec FFmpeg reads. Frames come upright (display matrix honoured)
    with their own presentation timestamps (variable frame rate kept). `start`/`end` in seconds."""

    is_live = False
    skip_corrupt = True

    def __init__(self, path: str | os.PathLike, start: float | None = None, end: float | None = None):
        import av

        p = Path(path)
        if not p.exists():
            raise TransposeLiveError(f"video file not found: {p}")
        if p.is_dir():
            raise TransposeLiveError(f"{p} is a folder, not a video file")
        if start is not None and start < 0:
            raise TransposeLiveError(f"start must be >= 0 seconds, got {start}")
        if end is not None and end <= (start or 0.0):
            raise TransposeLiveError(f"end ({end} s) must be after start ({start or 0.0} s)")
        self.path = str(p)
        self.start = float(start) if start else 0.0
        self.end = float(end) if end is not None else None
        try:
            container = av.open(self.path, metadata_errors="ignore")
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise TransposeLiveError(f"cannot read {p} as a video: {_reason(exc)}") from None
        if self.start and container.streams.video:
            self._seek(container, self.start)
        self._setup(container, str(p))

    @staticmethod
    def _seek(container, seconds: float) -> None:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        try:  # to the key frame before `start`; frames before it are then dropped by _keep
            container.seek(origin + int(seconds / stream.time_base), stream=stream, backward=True)
        except Exception as exc:  # unseekable file: decode from the beginning instead
            log.debug("seek failed (%s); decoding from the start", exc)

    def _keep(self, ts: float) -> bool:
        half = 0.5 / (self.fps or 1000.0)              # tolerate rounding of the seek target
        return ts >= self.start - half and (self.end is None or ts < self.end)

    def _past_end(self, ts: float) -> bool:
        return self.end is not None and ts >= self.end

    @property
    def duration(self) -> float | None:
        if self._total is None:
            return None
        end = min(self._total, self.end) if self.end is not None else self._total
        return max(0.0, end - self.start)

    @property
    def frame_count(self) -> int | None:
        if self._header_frames and not self.start and self.end is None:
            return self._header_frames
        if self.duration is not None and self.fps:
            return int(round(self.duration * self.fps))
        return self._header_frames or None

    def _finished(self) -> None:
        """The file said it holds more than could be read: a truncated or damaged tail."""
        if self._total is None or self._last_ts is None or self.end is not None:
            return
        if self._header_frames and not self.start:     # the header's frame count is the better witness
            early = self._index < self._header_frames - 1
        else:
            early = self._last_ts + 2.5 / (self.fps or 25.0) < self._total
        if early:
            log.warning("%s: file ends early (truncated or damaged?): decoded %d frames up to %.2f s of %.2f s",
                        self._label, self._index, self._last_ts, self._total)


class _StreamLost(Exception):
    """Raised inside a stream's decoding when the connection is no good any more; the text is the reason."""


class RtspSource(_PyAVSource):
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
            text = self._scrub(_reason(exc))
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
        import cv2

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


def _reason(exc: Exception) -> str:
    """FFmpeg's own words without the errno and path decorations."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.strip().rstrip(".")


# ---------------------------------------------------------------------------------------------------------
# camera (OpenCV)


class CameraSource(Source):
    """A local camera through OpenCV. Timestamps are wall-clock seconds since open."""

    is_live = True

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None):
        import cv2

        if index < 0:
            raise TransposeLiveError(f"camera index must be >= 0, got {index}")
        self.index = index
        with _opencv_silenced(cv2):        # a missing camera: our one message, not OpenCV's backend chatter
            self._cap = cv2.VideoCapture(index)
            super().__init__()
            if not self._cap.isOpened():
                self.close()
                raise TransposeLiveError(f"cannot open camera {index} (not connected, or in use by another program)")
            if width:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                self._cap.set(cv2.CAP_PROP_FPS, fps)
            ok, image = self._cap.read()
        if not ok or image is None:
            self.close()
            raise TransposeLiveError(f"camera {index} opened but gives no frames")
        self._pending = image
        self._size = (image.shape[1], image.shape[0])
        self._fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or None
        self._t0 = time.monotonic()
        self._index = 0

    def _next_frame(self) -> Frame:
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                log.warning("camera %d stopped giving frames after %d", self.index, self._index)
                raise StopIteration
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        frame = Frame(image=image, index=self._index, timestamp=time.monotonic() - self._t0)
        self._index += 1
        return frame

    def _release(self) -> None:
        self._cap.release()


@contextmanager
def _opencv_silenced(cv2):
    """OpenCV's own log level set to silent for the block, then restored. Builds without the logging API
    (cv2.utils.logging) are left as they are."""
    api = getattr(getattr(cv2, "utils", None), "logging", None)
    if api is None:
        yield
        return
    level = api.getLogLevel()
    api.setLogLevel(api.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        api.setLogLevel(level)


# ---------------------------------------------------------------------------------------------------------
# image folder


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class ImageFolderSource(Source):
    """The image files of a folder (or a list of files), in natural name order (img2 before img10).
    Timestamps are index / fps (fps 1 unless given). Unreadable images are skipped with a warning."""

    is_live = False

    def __init__(self, folder: str | os.PathLike | list, fps: float | None = None):
        if isinstance(folder, (list, tuple)):
            paths = [Path(p) for p in folder]
            label = f"{len(paths)} image(s)"
        else:
            root = Path(folder)
            if not root.is_dir():
                raise TransposeLiveError(f"image folder not found: {root}")
            paths = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
            label = str(root)
        if not paths:
            raise TransposeLiveError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {label}")
        if fps is not None and fps <= 0:
            raise TransposeLiveError(f"fps must be > 0, got {fps}")
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise TransposeLiveError(f"image file not found: {missing[0]}")
        super().__init__()               # nothing to release: each image is read whole in _next_frame
        self.paths = sorted(paths, key=_natural_key)
        self._fps = fps
        self._pos = 0
        self._index = 0
        first = self._read(self.paths[0])
        if first is None:
            raise TransposeLiveError(f"cannot read image {self.paths[0]}")
        self._size = (first.shape[1], first.shape[0])

    @staticmethod
    def _read(path: Path) -> np.ndarray | None:
        import cv2

        data = np.fromfile(str(path), dtype=np.uint8)    # imdecode: works with non-ASCII paths too
        return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None

    @property
    def frame_count(self) -> int | None:
        return len(self.paths)

    @property
    def duration(self) -> float | None:
        return len(self.paths) / (self._fps or 1.0)

    def _next_frame(self) -> Frame:
        while self._pos < len(self.paths):
            path = self.paths[self._pos]
            self._pos += 1
            image = self._read(path)
            if image is None:
                log.warning("skipping unreadable image %s", path)
                continue
            frame = Frame(image=image, index=self._index, timestamp=self._index / (self._fps or 1.0),
                          path=str(path))
            self._index += 1
            return frame
        raise StopIteration


# ---------------------------------------------------------------------------------------------------------


def open_source(spec: str | int | os.PathLike, *, start: float | None = None, end: float | None = None,
                width: int | None = None, height: int | None = None, fps: float | None = None,
                timeout: float = 10.0, transport: str = "tcp", max_retries: int | None = None) -> Source:
    """Open what the user named: an int or digit string is a camera, rtsp://, rtsps://, http(s)://
    (and rtmp/udp/srt) URLs are streams, a folder is an image folder, an image file a one-image folder,
    anything else a video file. width/height/fps apply to cameras (fps also to image folders);
    timeout/transport/max_retries to streams (see RtspSource: None retries forever, 0 fails at once)."""
    if isinstance(spec, bool):
        raise TransposeLiveError(f"not a source: {spec!r}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec), width=width, height=height, fps=fps)
    text = os.fspath(spec)
    if not text.strip():
        raise TransposeLiveError("empty source: give a video file, image folder, camera index or stream URL")
    if text.lower().startswith(STREAM_SCHEMES):
        return RtspSource(text, transport=transport, timeout=timeout, max_retries=max_retries)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, fps=fps)
    if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
        return ImageFolderSource([path], fps=fps)
    return FileSource(path, start=start, end=end)

"""Decoding shared by video files and network streams (PyAV): the first frame peeked at open (size, rotation,
validation), frames turned upright, damaged packets skipped, the container and its decoder closed together."""

from __future__ import annotations

import logging
from typing import Any, Generator

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sources.base import AudioInfo, Frame, Source
from transpose_live.media.sources.orientation import apply_transform, display_matrix, display_transform

log = logging.getLogger(__name__)


class PyAVSource(Source):
    """Decoding shared by files and streams: first frame peeked at open (size, rotation, validation)."""

    skip_corrupt = False     # files: a packet the demuxer flags as damaged would decode as garbage
    start = 0.0              # files: seconds skipped at the beginning

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
        import av  # deferred: PyAV loads on first use

        self._av = av
        self._label = label
        self._container: Any = None
        self._stream: Any = None           # holds the decoder (its codec context and threads) while attached
        self._reformatter: Any = None      # this connection's YUV → BGR converter
        self._frames: Generator[tuple[float, np.ndarray], None, None] | None = None
        self._pending: tuple[float, np.ndarray] | None = None
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
        # One converter for the connection's frames: av_frame.to_ndarray(format=...) would make a swscale
        # context on every frame, starting and joining its slice threads each time (2 clone() per frame
        # here), and leave it to whatever keeps that frame alive
        self._reformatter = self._av.video.reformatter.VideoReformatter()    # (av imports av.video)
        self.time_base = stream.time_base
        self._origin = stream.start_time or 0          # pts of the source's t = 0
        # header facts copied out: PyAV's stream objects must not be read once the container is closed
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else self._fps
        self._header_frames = int(stream.frames or 0)
        self._total: float | None = None
        if stream.duration and stream.time_base:
            self._total = float(stream.duration * stream.time_base)
        else:
            self._total = container.duration / 1_000_000 if container.duration else None
        self.audio = audio_info(container)
        self._pending = next(self._frames, None)
        if self._pending is None:
            if self.start:
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

    def _decode(self) -> Generator[tuple[float, np.ndarray], None, None]:
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
                    self._transform = display_transform(display_matrix(av_frame))
                    if self._transform is None:
                        log.warning("%s: rotation of %s degrees is not a multiple of 90; frames left as coded",
                                    self._label, av_frame.rotation)
                        self._transform = (False, False, False)
                bgr = self._reformatter.reformat(av_frame, format="bgr24")
                image = apply_transform(bgr.to_ndarray(), self._transform)
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
        return next(self._frames, None) if self._frames is not None else None

    def _frame(self, ts: float, image: np.ndarray) -> Frame:
        frame = Frame(image=image, index=self._index, timestamp=ts)
        self._index += 1
        return frame

    def _finished(self) -> None:
        pass

    def _release(self) -> None:
        self._detach()

    def _detach(self) -> None:
        """Close the decoder and the container (if any); the source's reading state stays. Every reference
        to the connection's PyAV objects goes: container.close() frees the demuxer and its socket, but a
        codec context (and its decoder threads) lives for as long as its Python stream object does."""
        frames, container = self._frames, self._container
        self._frames = self._container = self._pending = self._stream = self._reformatter = None
        try:
            if frames is not None:
                frames.close()
        finally:
            if container is not None:
                container.close()


def audio_info(container) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    return AudioInfo(codec=ctx.name, sample_rate=int(ctx.sample_rate or 0),
                     channels=int(ctx.channels or 0), duration=duration)


def ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's own words without the errno and path decorations."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.strip().rstrip(".")

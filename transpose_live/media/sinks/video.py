"""The annotated video: H.264 yuv420p (PyAV) that keeps each frame's own timestamp (a variable frame rate
survives) and the input's audio, cut to the written span. `VideoWriter` writes to a hidden temporary file beside
the target and moves it into place when closed (outputs are never half files); `FirstFrameVideoWriter` opens one
at the first frame, for a stream whose size is not known yet.
"""

from __future__ import annotations

import logging
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from transpose_live.errors import TransposeLiveError
from transpose_live.media.sinks.base import Abortable, Sink
from transpose_live.media.sinks.target import OutputTarget, check_output, is_stream_path
from transpose_live.types import FrameResult

log = logging.getLogger(__name__)

# containers that store one fixed frame rate: pts must count frames there
_CFR_FORMATS = ("avi",)
_H264_ENCODERS = ("libx264", "libopenh264")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".webm")


class VideoSourceFacts(Protocol):
    """What a video output reads off its source (media.sources.Source has all four)."""

    @property
    def size(self) -> tuple[int, int]: ...          # (width, height); (0, 0) while a stream is connecting

    @property
    def fps(self) -> float | None: ...

    time_base: Fraction | None                      # the source's own timestamp unit, when it has one
    path: str | None                                # the file to copy audio from (None: a camera or stream)


def pick_video_encoder(codec: str) -> str:
    """An encoder that exists in PyAV's FFmpeg: for "h264" libx264, else another H.264 encoder,
    else MPEG-4 Part 2 (with a warning)."""
    import av  # deferred: PyAV loads FFmpeg's libraries

    def exists(name: str) -> bool:
        try:
            av.Codec(name, "w")
            return True
        except Exception:
            return False

    if codec.lower() in ("h264", "avc", "x264", "libx264"):
        for name in _H264_ENCODERS:
            if exists(name):
                return name
        log.warning("no H.264 encoder in this FFmpeg build; writing MPEG-4 Part 2 instead")
        return "mpeg4"
    if not exists(codec):
        raise TransposeLiveError(f"video codec {codec!r} has no encoder in this FFmpeg build")
    return codec


class VideoWriter(Sink, Abortable):
    """Write BGR frames as H.264 yuv420p with each frame's own timestamp (variable frame rate kept).

    fps: the nominal rate (timestamps fall back to index / fps); time_base: the timestamp unit, best the
    source's own (`Source.time_base`) so timestamps survive exactly; default 1/90000.
    audio_from: a source file (path or FileSource) whose first audio track is copied packet by packet
    (transcoded to AAC when the output container cannot hold its codec), cut to the written video's
    time span: the first written frame's timestamp is the output's t = 0 for video and audio alike.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float | None = None,
                 time_base: Fraction | None = None, audio_from: Any = None, codec: str = "h264", crf: int = 23,
                 preset: str = "veryfast"):
        import av  # deferred: PyAV loads FFmpeg's libraries

        self._av = av
        if int(width) <= 0 or int(height) <= 0:
            raise TransposeLiveError(f"video size must be positive, got {width}x{height}")
        if fps is not None and not (fps > 0 and math.isfinite(fps)):
            raise TransposeLiveError(f"fps must be > 0, got {fps}")
        audio_path = _audio_path(audio_from)
        encoder = pick_video_encoder(codec)
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.fps = float(fps) if fps else (float(1 / time_base) if time_base and 1 / time_base <= 240 else 30.0)
        if is_stream_path(path):
            raise TransposeLiveError(f"cannot write a video to {os.fspath(path)}: it must be a file (the encoder "
                                     "seeks back to finish it); stream the poses with --json - instead")
        self._out = OutputTarget(path, "video")
        try:
            self._container = av.open(str(self._out.tmp), "w", format=_format_for(self._out.final),
                                      container_options=_container_options(self._out.final))
        except (av.FFmpegError, ValueError):
            self._out.discard()
            raise TransposeLiveError(f"cannot write video {self.path}: unknown container for "
                                     f"{self.path.suffix or 'no extension'!r} (use .mp4, .mkv, .mov or .avi)"
                                     ) from None
        try:
            self._add_video(encoder, time_base, crf, preset)
            if audio_path is not None:
                self._audio = AudioCopier(audio_path, self._container)
        except BaseException:
            self._container.close()
            self._out.discard()
            raise
        self._frames = 0
        self._t0: float | None = None
        self._last_pts: int | None = None
        self._last_rel = 0.0
        self._closed = False

    _audio: AudioCopier | None = None

    def _add_video(self, encoder: str, time_base: Fraction | None, crf: int, preset: str) -> None:
        container = self._container
        if encoder not in container.supported_codecs:
            raise TransposeLiveError(f"{self.path.suffix} files cannot hold {encoder} video; use .mp4 or .mkv")
        rate = Fraction(self.fps).limit_denominator(100_000)
        if container.format.name in _CFR_FORMATS:
            time_base = 1 / Fraction(round(self.fps * 1000), 1000)
        self.time_base = Fraction(time_base) if time_base else Fraction(1, 90_000)
        stream = container.add_stream(encoder, rate=rate)
        if not isinstance(stream, self._av.VideoStream):
            raise TransposeLiveError(f"{encoder} is not a video encoder")
        # yuv420p halves chroma: odd sizes are padded by one pixel (edge copied)
        stream.width = self.width + self.width % 2
        stream.height = self.height + self.height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        if encoder == "libx264":
            stream.codec_context.options = {"crf": str(crf), "preset": preset}
        elif encoder == "mpeg4":
            stream.codec_context.bit_rate = int(stream.width * stream.height * self.fps * 0.25)
        self._video = stream

    def write(self, image: np.ndarray, timestamp: float | None = None) -> None:
        """Add one frame. timestamp in seconds (e.g. Frame.timestamp); None: frame index / fps."""
        import av  # deferred: PyAV loads FFmpeg's libraries

        if self._closed:
            raise RuntimeError("VideoWriter is closed")
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(f"frame must be ({self.height}, {self.width}, 3) uint8 BGR, "
                             f"got {image.shape} {image.dtype}")
        if timestamp is None:
            timestamp = self._frames / self.fps
        if self._t0 is None:
            self._t0 = float(timestamp)
            if self._audio is not None:
                self._audio.start(self._t0)
        rel = float(timestamp) - self._t0
        pts = round(rel / self.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            # equal/backward timestamps: keep pts increasing by at least 1 ms (Matroska's unit)
            pts = self._last_pts + max(1, math.ceil(Fraction(1, 1000) / self.time_base))
        if image.shape[:2] != (self._video.height, self._video.width):
            image = np.pad(image, ((0, self._video.height - self.height), (0, self._video.width - self.width),
                                   (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = pts
        frame.time_base = self.time_base
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self._last_pts = pts
        self._last_rel = float(pts * self.time_base)
        self._frames += 1
        if self._audio is not None:
            self._audio.pump(self._last_rel)

    needs_image = True

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        """The sink interface: the rendered frame at its source timestamp."""
        if image is None:
            raise ValueError("VideoWriter needs the rendered frame, got None")
        self.write(image, result.timestamp)

    @property
    def frames_written(self) -> int:
        return self._frames

    def close(self) -> None:
        """Finish the file (flush the encoder, the audio up to the video's end) and move it into place.
        Safe after an interruption: whatever was written becomes a playable file. No frames: no file."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._frames:
                for packet in self._video.encode(None):
                    self._container.mux(packet)
                if self._audio is not None:
                    self._audio.finish(self._last_rel + 1.0 / self.fps)
            self._container.close()
        except Exception as exc:
            self._out.discard()
            raise TransposeLiveError(f"could not finish video {self.path}: {exc}") from exc
        finally:
            if self._audio is not None:
                self._audio.close()
        if self._frames:
            self._out.commit()
        else:
            self._out.discard()
            log.warning("no frames were written; %s not created", self.path)

    def abort(self) -> None:
        """Stop without keeping the output."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except Exception:
                pass
            if self._audio is not None:
                self._audio.close()
            self._out.discard()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()     # also after an exception or Ctrl-C: keep what was written


def _audio_path(audio_from: Any) -> Path | None:
    if audio_from is None:
        return None
    path = getattr(audio_from, "path", audio_from)   # a FileSource or a path
    if path is None:                                 # a camera or stream: no file to copy from
        return None
    path = Path(path)
    if not path.is_file():
        raise TransposeLiveError(f"audio source not found: {path}")
    return path


def _format_for(path: Path) -> str | None:
    return {".m4v": "mp4"}.get(path.suffix.lower())


def _container_options(path: Path) -> dict:
    # moov atom first: the file plays while downloading and browsers can seek it
    return {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}


class AudioCopier:
    """The first audio track of a file, cut to the written video's span and shifted to its t = 0:
    packets copied as they are when the output can hold the codec, else decoded and encoded as AAC."""

    def __init__(self, path: Path, output: Any):
        import av  # deferred: PyAV loads FFmpeg's libraries

        self._av = av
        try:
            self._in = av.open(str(path), metadata_errors="ignore")
        except av.FFmpegError as exc:
            raise TransposeLiveError(f"cannot read audio from {path}: {exc.strerror or exc}") from None
        self.active = bool(self._in.streams.audio)
        if not self.active:
            log.info("%s has no audio track; the output will be silent", path)
            return
        self._src = src = self._in.streams.audio[0]
        if src.time_base is None:            # no timestamps to cut by: nothing sensible to copy
            log.info("%s: its audio track has no time base; the output will be silent", path)
            self.active = False
            return
        self._time_base: Fraction = src.time_base
        video = self._in.streams.video[0] if self._in.streams.video else None
        # source frame timestamps count from the video's start_time; audio must be measured the same way
        self._origin = (float(video.start_time * video.time_base) if video and video.start_time and video.time_base
                        else 0.0)
        self._output = output
        name = src.codec_context.name
        self.copy = name in output.supported_codecs
        if self.copy:
            self._dst = output.add_stream_from_template(src)
        else:
            log.info("%s audio cannot go into %s as is; transcoding to AAC", name, output.format.name)
            # a named layout AAC takes (decoders may report an unordered "1 channels"); others downmixed
            layout = {1: "mono", 2: "stereo", 6: "5.1"}.get(src.codec_context.channels, "stereo")
            rate = src.codec_context.sample_rate or 48_000
            self._dst = output.add_stream("aac", rate=rate, layout=layout)
            channels = self._dst.codec_context.channels
            # AAC holds at most 6144 bits per channel and 1024 samples: low rates need a low bit rate
            self._dst.codec_context.bit_rate = min(64_000, 5 * rate) * channels
        self._items = None
        self._held = None
        self._t0 = 0.0
        self._failed = False

    def start(self, t0: float) -> None:
        """Output t = 0 is source time t0 (the first written frame)."""
        if not self.active:
            return
        self._t0 = t0
        if t0 > 1.0:
            try:  # skip most of what lies before the cut; the pump drops the rest
                self._in.seek(int((t0 + self._origin - 1.0) / self._time_base), stream=self._src)
            except Exception:
                pass
        self._items = self._packets() if self.copy else self._frames()

    def _packets(self):
        """(start in output seconds, duration, packet) for packets that overlap [t0, ...)."""
        src = self._src
        for packet in self._in.demux(src):
            pts = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or pts is None:
                continue
            start = float(pts * self._time_base) - self._origin - self._t0
            duration = float((packet.duration or 0) * self._time_base)
            if start + duration <= 0 and self._t0 > 0:     # wholly before the cut (priming kept at t0 = 0)
                continue
            yield start, packet

    def _frames(self):
        src = self._src
        rate = src.codec_context.sample_rate or 48_000
        next_pts = None
        for packet in self._in.demux(src):
            try:
                frames = packet.decode()
            except self._av.FFmpegError:
                continue
            for frame in frames:
                start = (float(frame.time) if frame.time is not None else 0.0) - self._origin - self._t0
                if start + frame.samples / frame.sample_rate <= 0:
                    continue
                pts = max(round(start * rate), next_pts if next_pts is not None else 0)   # no gaps back
                frame.pts = pts
                frame.time_base = Fraction(1, rate)
                next_pts = pts + frame.samples
                yield start, frame

    def pump(self, until: float) -> None:
        """Mux every audio item that starts before `until` (output seconds)."""
        if not self.active or self._items is None or self._failed:
            return
        while True:
            if self._held is None:
                try:
                    self._held = next(self._items)
                except StopIteration:
                    self._items = iter(())
                    return
                except self._av.FFmpegError as exc:
                    log.warning("audio copy stopped early: %s", exc)
                    self._failed = True
                    return
            start, item = self._held
            if start >= until:
                return
            self._held = None
            self._mux(item)

    def _mux(self, item) -> None:
        if self.copy:
            shift = round((self._t0 + self._origin) / self._time_base)
            item.pts = item.pts - shift if item.pts is not None else None
            item.dts = item.dts - shift if item.dts is not None else None
            item.stream = self._dst
            self._output.mux(item)
        else:
            for packet in self._dst.encode(item):
                self._output.mux(packet)

    def finish(self, video_end: float) -> None:
        if not self.active:
            return
        self.pump(video_end)
        if not self.copy and self._items is not None:
            for packet in self._dst.encode(None):
                self._output.mux(packet)

    def close(self) -> None:
        self._in.close()


class FirstFrameVideoWriter(Sink, Abortable):
    """A VideoWriter opened at the first frame, for a source whose size is not known yet (a camera that is
    down when the run starts). Nothing written: nothing created."""

    needs_image = True

    def __init__(self, path: str | os.PathLike, source: VideoSourceFacts):
        check_output(path, "video")
        self.path, self._source = path, source
        self._writer: VideoWriter | None = None

    def write_frame(self, image: np.ndarray | None, result: FrameResult) -> None:
        if image is None:
            raise ValueError("FirstFrameVideoWriter needs the rendered frame, got None")
        if self._writer is None:
            height, width = image.shape[:2]
            self._writer = VideoWriter(self.path, width, height, fps=self._source.fps,
                                       time_base=self._source.time_base)
        self._writer.write_frame(image, result)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


__all__ = ["VideoWriter", "VideoSourceFacts", "FirstFrameVideoWriter", "AudioCopier", "pick_video_encoder",
           "VIDEO_SUFFIXES"]

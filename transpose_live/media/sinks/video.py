"""Output writers: an H.264 video that keeps the input's timestamps and audio (PyAV), per-frame JSON lines,
and COCO keypoint results, all behind one sink interface (`write_frame(image, result)`, `close()`,
`abort()`; `needs_image` says whether the rendered frame is wanted).

Where an output goes decides how it is written (`OutputTarget`): a regular file is written to a hidden
temporary file beside it and renamed into place when finished, so a reader never sees half a file and an
unwritable path fails before any work; "-" (stdout), a FIFO or a device (/dev/stdout) is written directly,
never replaced; a live run writes its JSON Lines directly too, a line at a time, so `tail -f` follows it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import stat
import sys
import threading
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from transpose_live.errors import OutputClosed, TransposeLiveError
from transpose_live.media.records import coco_results, frame_record
from transpose_live.types import FrameResult

log = logging.getLogger(__name__)

# containers that store one fixed frame rate: pts must count frames there
_CFR_FORMATS = ("avi",)
_H264_ENCODERS = ("libx264", "libopenh264")
STDOUT = "-"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".webm")


def is_stream_path(path: str | os.PathLike) -> bool:
    """True for "-", and for paths that are not regular files: a FIFO, a character device, anything under
    /dev or /proc (/dev/stdout is a link to the process's own stdout: renaming onto it would replace the
    system's link)."""
    text = os.fspath(path)
    if text == STDOUT:
        return True
    real = os.path.realpath(os.path.expanduser(text))
    if text.startswith(("/dev/", "/proc/")) or real.startswith(("/dev/", "/proc/")):
        return True
    try:
        return not stat.S_ISREG(os.stat(real).st_mode)
    except OSError:         # does not exist yet (or cannot be looked at): a file to create
        return False


class OutputTarget:
    """Where one output goes. Regular files: a temporary file in the target's folder, renamed onto the
    target by commit() (a symlink is followed: the link stays, its file is replaced). Streams and `direct`
    files: written in place; commit() and discard() leave them as they are."""

    def __init__(self, path: str | os.PathLike, what: str, direct: bool = False):
        text = os.fspath(path)
        self.what = what
        self.stdout = text == STDOUT
        self.stream = is_stream_path(text)
        self.direct = direct or self.stream
        self.final = Path(text).expanduser()
        if self.stream:
            self.tmp = self.final
            return
        if self.final.is_symlink():
            self.final = Path(os.path.realpath(self.final))
        parent = self.final.parent
        if self.final.is_dir():
            raise TransposeLiveError(f"cannot write {what} {self.final}: it is a folder")
        if not parent.is_dir():
            raise TransposeLiveError(f"cannot write {what} {self.final}: folder {parent} does not exist")
        if self.direct:
            self.tmp = self.final
            return
        # creating the file is the only reliable test (permissions, read-only mounts, quotas); os.open
        # with 0o666 keeps the user's umask (mkstemp would leave the final file private, 0600)
        for _ in range(100):
            tmp = parent / f".{self.final.stem}.{secrets.token_hex(4)}.part{self.final.suffix}"
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise TransposeLiveError(f"cannot write {what} {self.final}: {exc.strerror}") from None
        self.tmp = tmp

    def open_text(self) -> TextIO:
        """The file to write text to (stdout itself for "-")."""
        if self.stdout:
            return sys.stdout
        try:
            return open(self.tmp, "w", encoding="utf-8")
        except OSError as exc:
            raise TransposeLiveError(f"cannot write {self.what} {self.final}: {exc.strerror}") from None

    def write_bytes(self, data: bytes) -> None:
        """The whole output at once, then commit() (images)."""
        try:
            if self.stdout:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            else:
                with open(self.tmp, "wb") as f:
                    f.write(data)
        except BrokenPipeError:
            raise OutputClosed(f"{self.what} {self.final}: closed by its reader") from None
        except OSError as exc:
            self.discard()
            raise TransposeLiveError(f"cannot write {self.what} {self.final}: {exc.strerror}") from None
        self.commit()

    def commit(self) -> None:
        if not self.direct:
            os.replace(self.tmp, self.final)

    def discard(self) -> None:
        if self.direct:
            return          # a stream, or a live file whose lines are out already: nothing to take back
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


def check_output(path: str | os.PathLike, what: str) -> None:
    """Fail now, before any work, when `path` cannot be written (leaves nothing behind)."""
    OutputTarget(path, what).discard()


# ---------------------------------------------------------------------------------------------------------
# video


def pick_video_encoder(codec: str) -> str:
    """An encoder that exists in PyAV's FFmpeg: for "h264" libx264, else another H.264 encoder,
    else MPEG-4 Part 2 (with a warning)."""
    import av

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


class VideoWriter:
    """Write BGR frames as H.264 yuv420p with each frame's own timestamp (variable frame rate kept).

    fps: the nominal rate (timestamps fall back to index / fps); time_base: the timestamp unit, best the
    source's own (`Source.time_base`) so timestamps survive exactly; default 1/90000.
    audio_from: a source file (path or FileSource) whose first audio track is copied packet by packet
    (transcoded to AAC when the output container cannot hold its codec), cut to the written video's
    time span: the first written frame's timestamp is the output's t = 0 for video and audio alike.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float | None = None,
                 time_base: Fraction | None = None, audio_from=None, codec: str = "h264", crf: int = 23,
                 preset: str = "veryfast"):
        import av

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
                self._audio = _AudioCopier(audio_path, self._container)
        except BaseException:
            self._container.close()
            self._out.discard()
            raise
        self._frames = 0
        self._t0: float | None = None
        self._last_pts: int | None = None
        self._last_rel = 0.0
        self._closed = False

    _audio = None

    def _add_video(self, encoder: str, time_base: Fraction | None, crf: int, preset: str) -> None:
        container = self._container
        if encoder not in container.supported_codecs:
            raise TransposeLiveError(f"{self.path.suffix} files cannot hold {encoder} video; use .mp4 or .mkv")
        rate = Fraction(self.fps).limit_denominator(100_000)
        if container.format.name in _CFR_FORMATS:
            time_base = 1 / Fraction(round(self.fps * 1000), 1000)
        self.time_base = Fraction(time_base) if time_base else Fraction(1, 90_000)
        stream = container.add_stream(encoder, rate=rate)
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
        import av

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

    def write_frame(self, image: np.ndarray, result: FrameResult) -> None:
        """The sink interface: the rendered frame at its source timestamp."""
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


def _audio_path(audio_from) -> Path | None:
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


class _AudioCopier:
    """The first audio track of a file, cut to the written video's span and shifted to its t = 0:
    packets copied as they are when the output can hold the codec, else decoded and encoded as AAC."""

    def __init__(self, path: Path, output):
        import av

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
        video = self._in.streams.video[0] if self._in.streams.video else None
        # source frame timestamps count from the video's start_time; audio must be measured the same way
        self._origin = float(video.start_time * video.time_base) if video and video.start_time else 0.0
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
                self._in.seek(int((t0 + self._origin - 1.0) / self._src.time_base), stream=self._src)
            except Exception:
                pass
        self._items = self._packets() if self.copy else self._frames()

    def _packets(self):
        """(start in output seconds, duration, packet) for packets that overlap [t0, ...)."""
        src = self._src
        for packet in self._in.demux(src):
            if packet.size == 0 or (packet.pts is None and packet.dts is None):
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            start = float(pts * src.time_base) - self._origin - self._t0
            duration = float((packet.duration or 0) * src.time_base)
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
            shift = round((self._t0 + self._origin) / self._src.time_base)
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


# ---------------------------------------------------------------------------------------------------------
# JSON results


class JsonlWriter:
    """One JSON object per frame and line: {"frame", "timestamp", "persons": [{"id", "box", "score",
    "keypoints"}]} (see records.frame_record).

    path "-" is stdout. Streams (stdout, FIFOs, devices) and `live` runs are written directly and flushed
    line by line, so a reading program or `tail -f` sees each frame as it is processed; a reader that goes
    away (`| head -3`) ends the run as OutputClosed. Other files appear under their name when finished.
    """

    needs_image = False

    def __init__(self, path: str | os.PathLike, live: bool = False):
        self.path = Path(path)
        self._out = OutputTarget(path, "results", direct=live)
        self._flush = self._out.direct
        self._file = self._out.open_text()
        self._closed = False
        self._lock = threading.Lock()     # frames come from the last stage, stream events from the reader
        self.lines = 0

    def write(self, result: FrameResult) -> None:
        self._write_line(frame_record(result))

    def write_event(self, record: dict) -> None:
        """An event line ({"event": "stream_lost", ...}) with its wall-clock "time" (ISO 8601, UTC)."""
        self._write_line({**record, "time": record.get("time") or wall_clock()})

    def _write_line(self, record: dict) -> None:
        line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
        with self._lock:
            if self._closed:
                return
            try:
                self._file.write(line)
                if self._flush:
                    self._file.flush()
            except BrokenPipeError:
                self._reader_gone()
            self.lines += 1

    def write_frame(self, image, result: FrameResult) -> None:
        self.write(result)

    def _reader_gone(self):
        self._closed = True
        if self._out.stdout:
            # the interpreter flushes stdout once more at exit: point it at /dev/null so that says nothing
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        else:
            _close_quietly(self._file)
        raise OutputClosed(f"{self.path}: closed by its reader after {self.lines} lines")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._out.stdout:
                    self._file.flush()
                else:
                    self._file.close()
            except BrokenPipeError:
                return
        self._out.commit()

    def abort(self) -> None:
        """After a failure: a file drops its partial copy (streams and live files keep what is out)."""
        if not self._closed:
            self._closed = True
            if not self._out.stdout:
                _close_quietly(self._file)
        self._out.discard()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wall_clock() -> str:
    """Now, as an ISO 8601 UTC time with milliseconds (event lines carry it)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _close_quietly(file) -> None:
    try:
        file.close()
    except OSError:
        pass


class CocoResultsWriter:
    """COCO keypoint detection results (the list pycocotools' loadRes reads), written when closed: per
    person image_id (the frame index unless `image_id_fn` says), category_id 1, keypoints, score."""

    needs_image = False

    def __init__(self, path: str | os.PathLike, image_id_fn: Callable[[FrameResult], int] | None = None):
        self.path = Path(path)
        self._image_id = image_id_fn or (lambda result: int(result.index))
        self._out = OutputTarget(path, "COCO results")
        self.records: list[dict] = []
        self._closed = False

    def write(self, result: FrameResult) -> None:
        self.records += coco_results(result.poses, int(self._image_id(result)))

    def write_frame(self, image, result: FrameResult) -> None:
        self.write(result)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        write_json(self._out, self.records)

    def abort(self) -> None:
        """After a failure: nothing is written under the final name."""
        self._closed = True
        self._out.discard()

    def __enter__(self) -> "CocoResultsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_json(target: OutputTarget, data) -> None:
    """A whole JSON document to a target ("-" included), then into place."""
    target.write_bytes((json.dumps(data, allow_nan=False) + "\n").encode())


def open_outputs(source, out=None, json_out=None, coco_json=None, live: bool = False) -> list:
    """The writers a run asks for. The video keeps the source's size, timestamps (its time base) and audio;
    `live` JSON Lines are written in place, line by line. On any failure the ones opened are dropped."""
    sinks: list = []
    try:
        if out is not None:
            width, height = source.size
            if width and height:
                sinks.append(VideoWriter(out, width, height, fps=source.fps, time_base=source.time_base,
                                         audio_from=source))
            else:                  # a stream still connecting: its size comes with the first frame
                sinks.append(FirstFrameVideoWriter(out, source))
        if json_out is not None:
            sinks.append(JsonlWriter(json_out, live=live))
        if coco_json is not None:
            sinks.append(CocoResultsWriter(coco_json))
    except BaseException:
        for sink in sinks:
            abort_sink(sink)
        raise
    return sinks


class FirstFrameVideoWriter:
    """A VideoWriter opened at the first frame, for a source whose size is not known yet (a camera that is
    down when the run starts). Nothing written: nothing created."""

    needs_image = True

    def __init__(self, path, source):
        check_output(path, "video")
        self.path, self._source, self._writer = path, source, None

    def write_frame(self, image: np.ndarray, result: FrameResult) -> None:
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


def abort_sink(sink) -> None:
    """Drop an output after an error (when the sink can), else close it."""
    try:
        (getattr(sink, "abort", None) or sink.close)()
    except Exception as exc:   # already failing: the first error is the one to report
        log.debug("closing %s after an error failed: %s", type(sink).__name__, exc)


def check_outputs(out=None, json_out=None, coco_json=None, inputs=()) -> None:
    """Everything about the output paths that can be told before any work: a video container, different
    files, never an input, writable folders."""
    if out is not None:
        if os.fspath(out) == STDOUT:
            raise TransposeLiveError("--out - is not possible: a video must be a file; stream the poses with "
                                     "--json - instead")
        if Path(out).suffix.lower() not in VIDEO_SUFFIXES:
            raise TransposeLiveError(f"--out must be a video file ({', '.join(VIDEO_SUFFIXES)}), got "
                                     f"{Path(out).name!r}")
    named = [p for p in (out, json_out, coco_json) if p is not None]
    resolved = [os.fspath(p) if os.fspath(p) == STDOUT else str(Path(p).expanduser().resolve()) for p in named]
    if len(set(resolved)) < len(resolved):
        raise TransposeLiveError("--out, --json and --coco-json must name different outputs")
    sources = {str(Path(p).expanduser().resolve()) for p in inputs if p is not None}
    for path, target in zip(named, resolved):
        if target in sources:
            raise TransposeLiveError(f"refusing to overwrite the input {path}")
    for path, what in ((out, "video"), (json_out, "results"), (coco_json, "COCO results")):
        if path is not None and not is_stream_path(path):
            check_output(path, what)

"""Output writers: an H.264 video that keeps the input's timestamps and audio (PyAV), per-frame JSON lines,
and COCO keypoint results. Each writes to a hidden temporary file beside the target and renames it into
place on close(), so a reader never sees half a file and an unwritable path fails before any work."""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import TransposeLiveError
from .types import FrameResult, Pose

log = logging.getLogger(__name__)

# containers that store one fixed frame rate: pts must count frames there
_CFR_FORMATS = ("avi",)
_H264_ENCODERS = ("libx264", "libopenh264")


class AtomicPath:
    """A temporary file in the target's folder, renamed onto the target by commit()."""

    def __init__(self, path: str | os.PathLike, what: str):
        self.final = Path(path).expanduser()
        parent = self.final.parent
        if self.final.is_dir():
            raise TransposeLiveError(f"cannot write {what} {self.final}: it is a folder")
        if not parent.is_dir():
            raise TransposeLiveError(f"cannot write {what} {self.final}: folder {parent} does not exist")
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

    def commit(self) -> None:
        os.replace(self.tmp, self.final)

    def discard(self) -> None:
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


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
        self._out = AtomicPath(path, "video")
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


def _num(value, digits: int) -> float | None:
    """A JSON number, or null for NaN/inf (JSON has no NaN)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def pose_record(pose: Pose) -> dict:
    """One person as JSON: keypoints [[x, y, score] x 17], NaN as null; pixels to 0.01, scores to 1e-4."""
    keypoints = [[_num(x, 2), _num(y, 2), _num(s, 4)]
                 for (x, y), s in zip(np.asarray(pose.keypoints, dtype=np.float64),
                                      np.asarray(pose.scores, dtype=np.float64))]
    box = [_num(v, 2) for v in pose.box] if pose.box is not None else None
    return {"id": pose.track_id, "box": box, "score": _num(pose.score, 4), "keypoints": keypoints}


class JsonlWriter:
    """One JSON object per frame and line:
    {"frame": i, "timestamp": t, "persons": [{"id", "box": [x, y, w, h], "score", "keypoints"}]}."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._out = AtomicPath(path, "results")
        self._file = open(self._out.tmp, "w", encoding="utf-8")
        self.lines = 0

    def write(self, result: FrameResult) -> None:
        record = {"frame": int(result.index), "timestamp": _num(result.timestamp, 6),
                  "persons": [pose_record(p) for p in result.poses]}
        self._file.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        self.lines += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        self._out.commit()

    def abort(self) -> None:
        """After a failure: drop the partial file, leave nothing under the final name."""
        if not self._file.closed:
            self._file.close()
        self._out.discard()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CocoResultsWriter:
    """COCO keypoint detection results (the list pycocotools' loadRes reads): per person image_id,
    category_id 1, keypoints [x, y, s] * 17 flat (missing joints as 0, 0, 0), score."""

    def __init__(self, path: str | os.PathLike, image_id_fn: Callable[[FrameResult], int] | None = None):
        self.path = Path(path)
        self._image_id = image_id_fn or (lambda result: int(result.index))
        self._out = AtomicPath(path, "COCO results")
        self.records: list[dict] = []
        self._closed = False

    def write(self, result: FrameResult) -> None:
        image_id = int(self._image_id(result))
        for pose in result.poses:
            flat: list[float] = []
            for (x, y), s in zip(np.asarray(pose.keypoints, dtype=np.float64),
                                 np.asarray(pose.scores, dtype=np.float64)):
                ok = math.isfinite(x) and math.isfinite(y) and math.isfinite(s)
                flat += [round(x, 2), round(y, 2), round(s, 4)] if ok else [0.0, 0.0, 0.0]
            score = pose.score
            self.records.append({"image_id": image_id, "category_id": 1, "keypoints": flat,
                                 "score": round(score, 5) if math.isfinite(score) else 0.0})

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with open(self._out.tmp, "w", encoding="utf-8") as f:
            json.dump(self.records, f, allow_nan=False)
        self._out.commit()

    def abort(self) -> None:
        """After a failure: nothing is written under the final name."""
        self._closed = True
        self._out.discard()

    def __enter__(self) -> "CocoResultsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

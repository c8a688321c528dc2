"""CameraWorker: one camera in a Ray actor (its process shows as `ray::CameraWorker`): capture → person
following → tracking and smoothing → events → (recording), the pipeline every command runs, with the pose
model and the detector called as services. Ray restarts it when it or its node dies; a restarted worker
reconnects its stream, says `worker_restarted` then `stream_back`, and numbers its persons in a new range.

The driver empties the worker's outbox with `poll()` (per-frame summaries, events, status) and may ask for
the newest frame as JPEG. Recordings are written here, under the record folder, which on a cluster must be
shared storage: the worker checks it can write there before its camera starts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transpose_live.detect.base import Detector
from transpose_live.detect.masked import MaskedDetector
from transpose_live.errors import TransposeLiveError
from transpose_live.live.pipeline import Pipeline
from transpose_live.live.spec import RunSpec
from transpose_live.media.sources import Source, open_source
from transpose_live.monitor.cameras import CameraConfig
from transpose_live.monitor.cluster.deploy import Services
from transpose_live.monitor.cluster.relay import ID_RANGE, CameraRelay, FrameKeeper, Outbox
from transpose_live.monitor.cluster.remote import RemoteDetector, RemoteEstimator
from transpose_live.monitor.cluster.startup import StartTimeline, lower_this_thread
from transpose_live.monitor.events import PoseEvents
from transpose_live.monitor.runner import camera_state

log = logging.getLogger(__name__)
IMPORTED = time.time()     # this module and what it needs are imported (a start-up step: StartTimeline)

STOP_S = 3.0
STATS_EVERY_S = 10.0   # a {"event": "stats"} line this often, as in-process
REOPEN_S = 5.0         # a stream opened this long before the model was ready is opened again (unread meanwhile)


@dataclass(frozen=True)
class CameraSettings:
    """What every camera worker is told besides its camera: recording, events and stream options."""

    record_dir: str | None = None
    segment_minutes: float = 10.0
    down_seconds: float = 2.0
    source_options: dict = field(default_factory=dict)


def record_dir_problem(folder: str) -> str | None:
    """None when a file can be made and removed in `folder` (made if missing), else the reason."""
    try:
        path = Path(folder).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".transpose-live-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
        return None
    except OSError as exc:
        return exc.strerror or str(exc)


class CameraWorker:
    """One camera; made a Ray actor by the driver (ray.remote(CameraWorker).options(...))."""

    def __init__(self, camera: CameraConfig, spec: RunSpec, services: Services, settings: CameraSettings,
                 ranges: str):
        import ray  # deferred: Ray is an optional extra

        self.started = time.monotonic()
        self.timeline = StartTimeline()
        self.timeline.marks["imported"] = IMPORTED
        self.timeline.mark("constructor")
        self.camera = camera
        self.spec = spec.replace(detect_every=camera.detect_every or spec.detect_every)
        self.settings = settings
        book: Any = ray.get_actor(ranges)   # by name: an actor handle among the arguments would pin them
        start: Any = ray.get(book.start.remote(camera.name))
        self.start_number = int(start)      # 0, or the restarts so far
        self.timeline.mark("id_range")
        self.node = ray.util.get_node_ip_address()
        self.node_id = ray.get_runtime_context().get_node_id()
        self.outbox = Outbox()
        # the handles are made on first use, in the start-up thread (making one imports Ray Serve)
        self.estimator = RemoteEstimator(services.pose, services.image_size, services.max_crops, spec.flip)
        self.remote_detector = self._detector(services)
        self.detector = MaskedDetector(self.remote_detector, camera.mask)
        self.source: Source | None = None
        self.pipeline: Pipeline | None = None
        self.relay: CameraRelay | None = None
        self.error: str | None = None
        self._stopped = threading.Event()
        self._jpeg_of = 0
        self.opened_at = 0.0
        self.recording = bool(settings.record_dir and camera.record)
        self.record_problem = record_dir_problem(settings.record_dir) if self.recording and settings.record_dir \
            else None
        if self.start_number:
            self.outbox.event({"event": "worker_restarted", "restarts": self.start_number, "node": self.node,
                               "first_id": self.start_number * ID_RANGE + 1})
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.name}", daemon=True)
        if self.record_problem is None:
            self.thread.start()
        else:
            self.error = f"cannot write recordings to {settings.record_dir} on {self.node}: {self.record_problem}"

    @staticmethod
    def _detector(services: Services) -> Detector:
        if services.detector_app is not None:
            return RemoteDetector(services.detector)
        from transpose_live.detect.whole_frame import WholeFrameDetector

        return WholeFrameDetector()     # --detector none: the whole frame, found here

    # ------------------------------------------------------------------------------------------- run

    def _run(self) -> None:
        """Start-up, then the pipeline. The stream opens (mostly waiting on the network and a key frame) while
        the heavy imports run at a lower CPU priority (the running cameras on this node keep theirs) and
        the pose service is asked for; docs/scaling.md has the phases measured."""
        try:
            imports = threading.Thread(target=self._preload, name=f"camera-{self.camera.name}-imports",
                                       daemon=True)
            imports.start()
            opened: list = []
            opener = threading.Thread(target=self._open, args=(opened,), name=f"camera-{self.camera.name}-open",
                                      daemon=True)
            opener.start()
            imports.join()
            ready = self._model_ready()
            opener.join()
            if isinstance(opened[0], BaseException):
                raise opened[0]
            source = opened[0]
            if ready and time.monotonic() - self.opened_at > REOPEN_S:
                source.close()          # left unread too long (the model was away): a fresh connection
                source = open_source(self.camera.url, **self.settings.source_options)
            if ready and source is not None:
                self._run_pipeline(source)
            elif source is not None:
                source.close()
        except TransposeLiveError as exc:
            self.error = str(exc)
        except Exception as exc:             # a bug must not pass silently: it is this camera's error
            log.exception("camera %s failed", self.camera.name)
            self.error = f"{type(exc).__name__}: {exc}"

    def _preload(self) -> None:
        """What the first frame would import otherwise (Ray Serve for the handles: ~1 s; the pipeline's
        smoothing, filterpy and scipy: ~1.4 s on 2 busy cores), in this thread at a lower priority."""
        lower_this_thread()
        from ray import serve  # noqa: F401  # deferred: the handles' import, here beside the stream's opening

        from transpose_live.live import smoothing  # noqa: F401  # deferred: filterpy and scipy, likewise
        self.timeline.mark("imports")

    def _open(self, opened: list) -> None:
        try:
            source = open_source(self.camera.url, **self.settings.source_options)
            self.timeline.mark("stream_open")
            self.opened_at = time.monotonic()
            opened.append(source)
        except BaseException as exc:       # handed to the camera's thread, which reports it
            opened.append(exc)

    def _model_ready(self) -> bool:
        """Wait for the pose service (after a node loss it may be restarting too); never in the constructor: a
        constructor that fails is a worker Ray does not restart."""
        while not self._stopped.is_set():
            try:
                self.estimator.warm_up()
                if isinstance(self.remote_detector, RemoteDetector):
                    _ = self.remote_detector.handle      # made now, not when the first frame needs it
                self.timeline.mark("model_ready")
                return True
            except TransposeLiveError as exc:
                log.warning("camera %s: %s; still waiting", self.camera.name, exc)
        return False

    def _run_pipeline(self, source: Source) -> None:
        self.source = source
        if self._stopped.is_set():
            source.close()
            return
        with source:
            live = bool(getattr(source, "is_live", False))
            keeper = FrameKeeper(source, keep=3 * (1 if live else self.spec.queue_size) + 8)
            self.relay = CameraRelay(self.outbox, keeper, self.spec, self.start_number * ID_RANGE,
                                     PoseEvents(down_seconds=self.settings.down_seconds,
                                                ignore_down=self.camera.ignore_down), self._recorder(source),
                                     restarted=self.start_number > 0, started=self.started,
                                     input_size=self.estimator.image_size,
                                     on_first=lambda: self.timeline.mark("first_frame"))
            pipeline = self.pipeline = Pipeline(keeper, self.spec, [self.relay], estimator=self.estimator,
                                                detector=self.detector, stats_every=STATS_EVERY_S)
            if not self._stopped.is_set():
                pipeline.run()

    def _recorder(self, source):
        if not self.recording or self.settings.record_dir is None:
            return None
        from transpose_live.media.sinks import SegmentedVideoWriter, cleanup_partial

        cleanup_partial(self.settings.record_dir)     # segments an earlier (killed) worker left unfinished
        return SegmentedVideoWriter(self.settings.record_dir, self.camera.name, self.settings.segment_minutes,
                                    fps=getattr(source, "fps", None))

    # ------------------------------------------------------------------------------------ the driver's

    @property
    def state(self) -> str:
        return camera_state(self.error, self.source, self.thread.is_alive())

    def ready(self) -> dict:
        """Answered once the worker is up: where it runs, which start it is, a record folder problem."""
        return {"node": self.node, "node_id": self.node_id, "pid": os.getpid(), "start": self.start_number,
                "record_problem":
                self.record_problem, "error": self.error}

    def poll(self, with_jpeg: bool = False) -> dict:
        """The summaries and events since the last poll, and this start's status; with_jpeg: the newest frame
        drawn, as JPEG, when there is one the driver has not had yet (a web view shows it)."""
        jpeg = None
        if with_jpeg and self.relay is not None and self.relay.drawn != self._jpeg_of:
            self._jpeg_of = self.relay.drawn
            jpeg = self.relay.newest_jpeg()
        stats = self.pipeline.stats_snapshot() if self.pipeline is not None else None
        if self.estimator.first_call is not None:
            self.timeline.marks.setdefault("first_call", self.estimator.first_call)
        return {"start": self.start_number, "node": self.node, "node_id": self.node_id, "pid": os.getpid(),
                "state": self.state,
                "frames": stats.frames_processed if stats else 0, "dropped": stats.frames_dropped if stats else 0,
                "latency_p50_ms": stats.latency_p50_ms if stats and stats.frames_processed else None,
                "latency_p95_ms": stats.latency_p95_ms if stats and stats.frames_processed else None,
                "persons": self.relay.persons if self.relay is not None else 0,
                "reconnects": getattr(self.source, "reconnects", 0), "error": self.error,
                "items": self.outbox.take(), "replicas": dict(self.estimator.replicas),
                "retries": self.estimator.call.retries, "summaries_lost": self.outbox.frames_lost,
                "attention": self.relay.attention if self.relay is not None else self.spec.attention, "jpeg": jpeg,
                "timeline": self.timeline.offsets()}

    def newest_jpeg(self) -> bytes | None:
        return self.relay.newest_jpeg() if self.relay is not None else None

    def set_attention(self, on: bool) -> None:
        """Compute and draw the dependency areas from the next frame on (the web view's toggle)."""
        if self.pipeline is not None:
            self.pipeline.set_attention(on)
        if self.relay is not None:
            self.relay.attention = bool(on)

    def stop(self, timeout: float = STOP_S) -> bool:
        """End the camera (its events close: persons still present leave); True when it ended in time."""
        self._stopped.set()
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.source is not None:
            self.source.close()
        if self.thread.is_alive():       # (never started when the record folder was refused)
            self.thread.join(timeout)
        return not self.thread.is_alive()


__all__ = ["CameraWorker", "CameraSettings", "record_dir_problem"]

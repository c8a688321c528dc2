"""`transpose-live monitor`: many IP cameras at once, on the one pipeline the other commands use.

Each camera is a `Pipeline` in its own thread (its stream reconnects by itself; a camera that fails does not
touch the others). They share ONE model (SharedEstimator batches the person crops of all cameras into one
forward pass) and one detector (serialised: OpenCV's network is not thread-safe). Each camera writes a JSON
Lines log (frames and events), optionally segments of its annotated stream and MQTT messages.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from transpose_live.detect.base import Detector
from transpose_live.detect.masked import MaskedDetector
from transpose_live.errors import TransposeLiveError
from transpose_live.live.pipeline import Pipeline, PoseModel
from transpose_live.live.run import PoseRunner, load_runner
from transpose_live.live.spec import RunSpec
from transpose_live.media import sources
from transpose_live.media.sinks.base import Sink
from transpose_live.media.sinks.outputs import Recording, SinkOpener, open_outputs
from transpose_live.media.sinks.segments import cleanup_partial
from transpose_live.monitor.cameras import CameraConfig
from transpose_live.monitor.events import PoseEvents
from transpose_live.monitor.slow_model import slow_down, slow_model_seconds
from transpose_live.monitor.stopping import CameraStopping, StoppableDetector, StoppableEstimator
from transpose_live.types import FrameResult

log = logging.getLogger(__name__)

STOP_S = 15.0       # every camera has stopped within this after stop(): a model call in flight ends first
CALLERS_GRACE_S = 2.0   # how long stop() lets the cameras' pose requests already queued be served before it
                        # closes the shared model (which releases those still waiting)
STATS_EVERY_S = 10.0   # each camera's log gets a {"event": "stats"} line (fps, latency p50/p95) this often

# more outputs for one camera (MQTT, Home Assistant, the web view): opened with its log by open_outputs
CameraOutputs = Callable[[CameraConfig], Sequence[SinkOpener]]
# told when a camera ends with an error (reason without password), e.g. to mark its stream failed
CameraFailed = Callable[[CameraConfig, str], None]


def camera_state(error: str | None, source: object, alive: bool) -> str:
    """A camera's state for the status table, the web view and Home Assistant: failed, connecting, stopped,
    or its stream's own (live / reconnecting) - in process and on a cluster's worker alike."""
    if error:
        return "failed"
    if source is None:
        return "connecting" if alive else "stopped"
    if not alive:
        return "stopped"
    return str(getattr(source, "state", "live"))     # a reconnecting stream says so; files are live


@dataclass
class Outputs:
    """Where the cameras write: logs/<name>.jsonl always; segments when asked; `more` adds outputs per
    camera (monitor.publishing.MqttOutputs.for_camera: MQTT and Home Assistant; the web view); `on_failure`
    hears of a camera that ended with an error."""

    log_dir: Path
    record_dir: Path | None = None
    segment_minutes: float = 10.0
    down_seconds: float = 2.0
    more: Sequence[CameraOutputs] = field(default_factory=tuple)
    on_failure: Sequence[CameraFailed] = field(default_factory=tuple)


class CameraRun:
    """One camera: open (with the stream's own retries), run, report; never raises out of its thread."""

    def __init__(self, camera: CameraConfig, spec: RunSpec, estimator: PoseModel, detector: Detector,
                 outputs: Outputs, source_options: dict[str, Any]):
        self.camera = camera
        self.spec = spec.replace(detect_every=camera.detect_every or spec.detect_every)
        self._stopped = threading.Event()
        # once stopped, this camera starts no model work (stopping.py: why that matters at exit)
        self.estimator = StoppableEstimator(estimator, self._stopped)
        self.detector = MaskedDetector(StoppableDetector(detector, self._stopped), camera.mask)
        self.outputs = outputs
        self.source_options = source_options
        self.source: sources.Source | None = None
        self.pipeline: Pipeline | None = None
        self.error: str | None = None
        self.persons = 0
        self._rate = (time.monotonic(), 0)
        self.fps = 0.0
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.name}", daemon=True)

    # -------------------------------------------------------------------------------------------- run

    def _run(self) -> None:
        try:
            self._open_and_run()
        except CameraStopping:               # told to stop while waiting for the model: no failure
            pass
        except TransposeLiveError as exc:
            self.error = str(exc)
        except Exception as exc:             # a bug must not take the other cameras down
            log.exception("camera %s failed", self.camera.name)
            self.error = f"{type(exc).__name__}: {exc}"
        if self.error and not self._stopped.is_set():
            log.warning("camera %s: %s", self.camera.name, self.error)
        if self.error:
            for told in self.outputs.on_failure:
                try:
                    told(self.camera, self.error)
                except Exception:
                    log.exception("camera %s: reporting its failure failed", self.camera.name)

    def _open_and_run(self) -> None:
        source = sources.open_source(self.camera.url, **self.source_options)
        self.source = source
        if self._stopped.is_set():
            source.close()
            return
        with source:
            sinks = self._sinks(source)
            self.pipeline = Pipeline(source, self.spec, sinks, estimator=self.estimator, detector=self.detector,
                                     on_result=self._on_result, stats_every=STATS_EVERY_S,
                                     events=[PoseEvents(down_seconds=self.outputs.down_seconds,
                                                        ignore_down=self.camera.ignore_down)])
            if not self._stopped.is_set():
                self.pipeline.run()
            else:                            # stopped before it ran: its outputs still end cleanly
                self.pipeline.outputs.finish(keep=True)

    def _sinks(self, source: sources.Source) -> list[Sink]:
        """The camera's outputs: its JSON Lines log (written line by line), its segments, then the rest."""
        out, camera = self.outputs, self.camera
        record = (Recording(out.record_dir, camera.name, out.segment_minutes)
                  if out.record_dir is not None and camera.record else None)
        more = [opener for outputs in out.more for opener in outputs(camera)]
        return open_outputs(source, json_out=out.log_dir / f"{camera.name}.jsonl", live=True, record=record,
                            more=more)

    def _on_result(self, result: FrameResult) -> None:
        self.persons = len(result.poses)

    # ------------------------------------------------------------------------------------ control

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Ask this camera to end (any thread): the pipeline stops, a waiting stream read ends."""
        self._stopped.set()
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.source is not None:
            self.source.close()

    # ------------------------------------------------------------------------------------- status

    @property
    def state(self) -> str:
        return camera_state(self.error, self.source, self.thread.is_alive())

    def status(self) -> dict[str, Any]:
        """One row of the status table (fps over the time since the last call)."""
        stats = self.pipeline.stats_snapshot() if self.pipeline is not None else None
        now = time.monotonic()
        done = stats.frames_processed if stats is not None else 0
        then, before = self._rate
        if now - then >= 0.5:
            self.fps = (done - before) / (now - then)
            self._rate = (now, done)
        return {"camera": self.camera.name, "state": self.state, "fps": self.fps,
                "latency_p50_ms": stats.latency_p50_ms if stats else None,
                "latency_p95_ms": stats.latency_p95_ms if stats else None,
                "persons": self.persons, "frames": done, "dropped": stats.frames_dropped if stats else 0,
                "reconnects": self.source.reconnects if isinstance(self.source, sources.RtspSource) else 0,
                "error": self.error}


class Monitor:
    """All the cameras: start(), status(), stop(); the model and detector are loaded once."""

    def __init__(self, cameras: list[CameraConfig], spec: RunSpec, outputs: Outputs, source_options: dict[str, Any],
                 runner: PoseRunner | None = None):
        from transpose_live.pose.batching import SharedEstimator  # deferred: the model's modules (load_runner)

        if not cameras:
            raise TransposeLiveError("no cameras: give stream URLs or --config cameras.yaml")
        runner = runner or load_runner(spec)
        detector = runner.detector          # one call at a time: each camera's StoppableDetector takes its lock
        if slow_model_seconds():                 # tests only: an overloaded model (slow_model.py)
            detector = slow_down(runner.estimator, detector, slow_model_seconds())
        runner.estimator.warm_up()     # days of uptime: the model's working memory at its mark before cameras start
        self.estimator = SharedEstimator(runner.estimator)
        outputs.log_dir.mkdir(parents=True, exist_ok=True)
        if outputs.record_dir is not None:
            outputs.record_dir.mkdir(parents=True, exist_ok=True)
            cleanup_partial(outputs.record_dir)
        self.cameras = [CameraRun(c, runner.spec, self.estimator, detector, outputs, source_options)
                        for c in cameras]

    def start(self) -> None:
        for camera in self.cameras:
            camera.start()

    def running(self) -> bool:
        return any(c.thread.is_alive() for c in self.cameras)

    def status(self) -> list[dict]:
        return [c.status() for c in self.cameras]

    def stop(self, timeout: float = STOP_S) -> bool:
        """Stop every camera; True when all their threads ended within `timeout`, so no model call is in
        flight any more (the process may exit: see stopping.py for why that must wait).

        In order: every camera is told to stop (its pipeline stops, a blocked stream read is interrupted, it
        starts no new detector pass or pose request); the pose requests already queued get `CALLERS_GRACE_S`
        to be served; then the shared model is closed, which releases the requests still waiting and lets
        the forward pass in flight finish (its callers get their results); then the cameras are waited for."""
        deadline = time.monotonic() + timeout
        for camera in self.cameras:
            camera.stop()
        self._join(min(deadline, time.monotonic() + CALLERS_GRACE_S))
        self.estimator.close(timeout=max(0.0, deadline - time.monotonic()))
        self._join(deadline)
        return not self.running()

    def _join(self, deadline: float) -> None:
        for camera in self.cameras:
            camera.thread.join(max(0.0, deadline - time.monotonic()))


def status_table(rows: list[dict[str, Any]]) -> Any:
    """The live status table (rich)."""
    from rich.table import Table  # deferred: rich, only on a terminal

    table = Table(title="transpose-live monitor", expand=False)
    for column in ("camera", "state", "fps", "latency p50/p95 ms", "persons", "dropped", "reconnects"):
        table.add_column(column, justify="left" if column in ("camera", "state") else "right")
    for r in rows:
        latency = (f"{r['latency_p50_ms']:.0f} / {r['latency_p95_ms']:.0f}"
                   if r["latency_p50_ms"] is not None else "–")
        state = r["state"] if not r["error"] else f"failed: {r['error'][:60]}"
        table.add_row(r["camera"], state, f"{r['fps']:.1f}", latency, str(r["persons"]), str(r["dropped"]),
                      str(r["reconnects"]))
    return table


def status_line(r: dict[str, Any]) -> str:
    """The same as one plain line (logs, CI)."""
    latency = (f"{r['latency_p50_ms']:.0f}/{r['latency_p95_ms']:.0f} ms" if r["latency_p50_ms"] is not None
               else "-")
    return (f"{r['camera']}: {r['state']}, {r['fps']:.1f} fps, latency p50/p95 {latency}, {r['persons']} persons, "
            f"{r['frames']} frames, {r['dropped']} dropped, {r['reconnects']} reconnects"
            + (f" ({r['error']})" if r["error"] else ""))


__all__ = ["Monitor", "Outputs", "CameraRun", "CameraOutputs", "CameraFailed", "status_table", "status_line"]

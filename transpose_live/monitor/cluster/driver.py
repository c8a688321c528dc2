"""ClusterMonitor: `transpose-live monitor --cluster`, with the in-process Monitor's face (start, running,
status, stop), so the status table, the final lines and the exit code are the command's own.

It joins (or starts) Ray, deploys the services, starts one CameraWorker actor per camera, and every
`POLL_S` empties the workers' outboxes: per-frame summaries and events go to the same per-camera outputs as
in-process (logs/<camera>.jsonl, MQTT, any extra sink such as the web view's), the status rows come from the
workers' pipelines. A worker that does not answer is `restarting` until Ray has brought it back; frames and
drops are counted over all of a camera's starts.

Camera workers reserve `camera_cpus` (0.25) of a CPU: one decoding a 320x240 stream at 12.5 fps, cutting
crops, tracking and answering polls used 14 % of a core here (docs/scaling.md), and the reservation is only
what Ray's scheduler counts; it places workers with the SPREAD strategy (across nodes), restarts them
without limit.

Priorities with `--cluster local` (all processes share this machine's cores): the pose model's replica runs
at nice `MODEL_NICE` (10; Ray's default for its workers is 15) and camera workers at `CAMERA_NICE` (19) from
their first instruction. Every camera's frame rate is the model's, and the model is fed by the cameras: at
nice 0 the replica left the cameras too little CPU between its passes and a restarting worker took up to 23 s;
at 15 and 19 it got 17-23 fps of 8 cameras against 21-29 at 10 (docs/scaling.md has the sweep).
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from transpose_live.errors import TransposeLiveError
from transpose_live.live.spec import RunSpec
from transpose_live.monitor.cameras import CameraConfig
from transpose_live.monitor.cluster.address import LOCAL, ClusterAddress
from transpose_live.monitor.cluster.deploy import DETECTOR_CPUS, Services, deploy_services, remove_services
from transpose_live.monitor.cluster.worker import CameraSettings, CameraWorker
from transpose_live.monitor.runner import Outputs

log = logging.getLogger(__name__)

POLL_S = 0.25           # the driver empties the workers' outboxes this often
POLL_WAIT_S = 2.0       # a poll waits this long for a worker's answer
READY_S = 120.0         # every worker must be up within this (a cold node pulls and imports)
CAMERA_CPUS = 0.25
CAMERA_NICE = 19        # --cluster local: camera workers' processes, from their start
MODEL_NICE = 10         # --cluster local: the pose model's replicas (Ray's own default for workers: 15)
STOP_S = 3.0


@dataclass
class RemoteStream:
    """What the driver's outputs know of a stream decoded on a worker (VideoSourceFacts): not its size yet."""

    size: tuple[int, int] = (0, 0)
    fps: float | None = None
    time_base: Fraction | None = None
    path: str | None = None


@dataclass(frozen=True)
class ModelStats:
    """The pose service's counters over all its replicas."""

    replicas: int = 0
    forwards: int = 0
    crops: int = 0

    @property
    def mean_batch(self) -> float:
        """Crops per forward pass (0.0 before the first)."""
        return self.crops / self.forwards if self.forwards else 0.0


class RemoteControls:
    """What a web view may ask of a camera's pipeline (set_attention), sent to its worker."""

    def __init__(self, worker):
        self.worker = worker

    def set_attention(self, on: bool) -> None:
        self.worker.set_attention.remote(bool(on))


@dataclass
class CameraView:
    """The driver's picture of one camera over all its starts."""

    config: CameraConfig
    sinks: list
    worker: Any = None
    start: int = 0
    state: str = "starting"
    node: str | None = None
    node_id: str | None = None
    pid: int | None = None
    row: dict = field(default_factory=dict)
    frames_before: int = 0       # frames and drops of earlier starts
    dropped_before: int = 0
    frames_now: int = 0
    dropped_now: int = 0
    unavailable_since: float | None = None
    failure_told: bool = False
    fps: float = 0.0
    rate: tuple[float, int] = (0.0, 0)

    @property
    def wants_image(self) -> bool:
        """Some output of this camera shows pictures (the web view): the newest frame comes with each poll."""
        return any(getattr(sink, "needs_image", False) for sink in self.sinks)

    @property
    def frames(self) -> int:
        return self.frames_before + self.frames_now

    @property
    def dropped(self) -> int:
        return self.dropped_before + self.dropped_now


def decode_jpeg(data: bytes):
    """BGR image of JPEG bytes (None when they do not decode)."""
    import cv2  # deferred: OpenCV loads on first use
    import numpy as np

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def camera_runtime_env(nice: int) -> dict:
    """Camera worker processes that run at nice NICE from their first instruction (this interpreter under
    `nice`: --cluster local only, where it is the workers' own), Ray's own step (RAY_worker_niceness) set to 0
    for them. Ray lowers its workers to nice 15 itself, but only once a new process has connected: its start
    and `import ray` before that ran at the node's normal priority, 28x the CPU weight of the running cameras
    and model. A camera worker below the replica restarts on the CPU the model leaves (docs/scaling.md)."""
    return {"py_executable": f"nice -n {int(nice)} {shlex.quote(sys.executable)}",
            "env_vars": {"RAY_worker_niceness": "0"}}


def local_cpus(cameras: int, replicas: int | None, pose_cpus: float, camera_cpus: float, detector: bool) -> int:
    """Logical CPUs for a local instance: this machine's, or what the workers and replicas reserve if more
    (reservations are only the scheduler's bookkeeping; they share the same cores as threads would)."""
    wanted = (pose_cpus + (DETECTOR_CPUS if detector else 0.0)) * (replicas or 1) + camera_cpus * cameras
    return max(os.cpu_count() or 1, math.ceil(wanted))


class ClusterMonitor:
    """The cameras on a Ray cluster. address None: use the Ray this process has joined already."""

    def __init__(self, cameras: list[CameraConfig], spec: RunSpec, outputs: Outputs, source_options: dict,
                 address: ClusterAddress | None = None, replicas: int | None = None,
                 camera_cpus: float = CAMERA_CPUS, pose_cpus: float = 1.0,
                 on_event: Callable[[str, dict], None] | None = None, camera_nice: int | None = None,
                 model_nice: int | None = None):
        if not cameras:
            raise TransposeLiveError("no cameras: give stream URLs or --config cameras.yaml")
        self.t0 = time.monotonic()
        self.ready_s: float | None = None      # from construction to every worker up
        self.spec = spec.validate()
        self.outputs = outputs
        self.settings = CameraSettings(str(outputs.record_dir) if outputs.record_dir is not None else None,
                                       outputs.segment_minutes, outputs.down_seconds, dict(source_options))
        outputs.log_dir.mkdir(parents=True, exist_ok=True)
        self.camera_cpus = float(camera_cpus)
        local = address is not None and address.kind == LOCAL
        self.camera_nice = int(camera_nice if camera_nice is not None else CAMERA_NICE if local else 0)
        self.model_nice = model_nice if model_nice is not None else MODEL_NICE if local else None
        self.on_event = on_event
        self.replicas: dict[str, tuple[int, int]] = {}   # replica -> (forward passes, crops) as last reported
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connected = False
        self.ranges = None
        self.services: Services | None = None
        self.views: list[CameraView] = []
        if address is not None:
            from transpose_live.monitor.cluster.connect import connect

            cpus = local_cpus(len(cameras), replicas, pose_cpus, camera_cpus, spec.detector != "none") \
                if address.kind == LOCAL else None
            connect(address, num_cpus=cpus)
            self._connected = True
        try:
            self.services = deploy_services(self.spec, len(cameras), replicas, pose_cpus, model_nice=self.model_nice)
            self.views = [CameraView(c, self._sinks(c)) for c in cameras]
        except BaseException:
            self._release()
            raise

    def _sinks(self, camera: CameraConfig) -> list:
        """The camera's outputs here: its JSON Lines log and the `more` ones (MQTT, the web view), opened as
        in-process; its segments are written by its worker."""
        from transpose_live.media.sinks import open_outputs

        more = [opener for outputs in self.outputs.more for opener in outputs(camera)]
        return open_outputs(RemoteStream(), json_out=self.outputs.log_dir / f"{camera.name}.jsonl", live=True,
                            more=more)

    # ------------------------------------------------------------------------------------------ start

    def start(self) -> None:
        """Start the workers; returns once each is up (a record folder it cannot write is an error)."""
        import ray  # deferred: Ray is an optional extra

        from transpose_live.monitor.cluster.ids import start_ranges

        self.ranges, ranges_name = start_ranges()
        actor = ray.remote(CameraWorker)
        options: dict = {"num_cpus": self.camera_cpus, "max_restarts": -1, "max_task_retries": 0,
                         "scheduling_strategy": "SPREAD"}
        if self.camera_nice:
            options["runtime_env"] = camera_runtime_env(self.camera_nice)
        for view in self.views:
            view.worker = actor.options(**options).remote(view.config, self.spec, self.services, self.settings,
                                                          ranges_name)
            view.rate = (time.monotonic(), 0)       # the first status's fps counts from here, as in-process
        answers = ray.get([view.worker.ready.remote() for view in self.views], timeout=READY_S)
        for view in self.views:
            for sink in view.sinks:
                bind = getattr(sink, "bind", None)
                if bind is not None:
                    bind(RemoteControls(view.worker))
        for view, answer in zip(self.views, answers):
            view.node, view.node_id, view.pid = answer["node"], answer["node_id"], answer["pid"]
        self.ready_s = time.monotonic() - self.t0
        refused = [(v, a) for v, a in zip(self.views, answers) if a["record_problem"]]
        if refused:
            view, answer = refused[0]
            self.stop()
            raise TransposeLiveError(f"--record-dir {self.settings.record_dir} is not writable from the worker of "
                                     f"camera {view.config.name} on {answer['node']}: {answer['record_problem']} "
                                     "(on a cluster it must be shared storage mounted at the same path on every node)")
        self._thread = threading.Thread(target=self._poll_loop, name="cluster-poll", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------- poll

    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.poll()
            except Exception:          # never let the status die: log it, poll again
                log.exception("polling the camera workers failed")

    def poll(self) -> None:
        """Empty every worker's outbox once: summaries and events to the outputs, the status rows."""
        import ray  # deferred: Ray is an optional extra
        from ray.exceptions import ActorUnavailableError, RayActorError

        with self._lock:
            asked = {view.worker.poll.remote(view.wants_image): view for view in self.views
                     if view.worker is not None}
            # all at once: a slow worker (a busy node, one restarting) holds up nobody else's answer
            ready, _ = ray.wait(list(asked), num_returns=len(asked), timeout=POLL_WAIT_S)
            for ref in ready:
                view = asked[ref]
                try:
                    answer = ray.get(ref)
                except (RayActorError, ActorUnavailableError) as exc:
                    self._unavailable(view, exc)
                    continue
                self._take(view, answer)

    def _unavailable(self, view: CameraView, exc: BaseException) -> None:
        if "creation task" in str(exc):        # its constructor failed: Ray does not restart such a worker
            view.state = "failed"
            view.row = {**view.row, "error": f"the camera worker could not start: {str(exc).splitlines()[0]}"}
            return
        if view.unavailable_since is None:
            view.unavailable_since = time.monotonic()
            log.info("camera %s: worker unavailable (%s)", view.config.name, type(exc).__name__)
        view.state = "restarting"

    def _take(self, view: CameraView, answer: dict) -> None:
        if answer["start"] != view.start:           # Ray restarted the worker: a new start
            view.frames_before += view.frames_now
            view.dropped_before += view.dropped_now
            view.frames_now = view.dropped_now = 0
            view.start = answer["start"]
        view.unavailable_since = None
        view.frames_now, view.dropped_now = answer["frames"], answer["dropped"]
        view.state, view.pid = answer["state"], answer["pid"]
        view.node, view.node_id = answer["node"], answer["node_id"]
        image = decode_jpeg(answer["jpeg"]) if answer.get("jpeg") else None
        last = max((i for i, item in enumerate(answer["items"]) if not isinstance(item, dict)), default=-1)
        for i, item in enumerate(answer["items"]):
            if isinstance(item, dict):
                self._event(view, item)
            else:                   # the picture goes with the newest summary, to the outputs that show it
                for sink in view.sinks:
                    sink.write_frame(image if i == last and getattr(sink, "needs_image", False) else None, item)
        for replica, counts in answer["replicas"].items():
            self.replicas[replica] = max(self.replicas.get(replica, (0, 0)), tuple(counts))
        view.row = {k: v for k, v in answer.items() if k not in ("items", "jpeg")}
        if answer["error"] and not view.failure_told:
            view.failure_told = True
            for told in self.outputs.on_failure:      # Home Assistant marks the camera unavailable
                try:
                    told(view.config, answer["error"])
                except Exception:
                    log.exception("camera %s: reporting its failure failed", view.config.name)

    def _event(self, view: CameraView, record: dict) -> None:
        for sink in view.sinks:
            write_event = getattr(sink, "write_event", None)
            if write_event is not None:
                write_event(record)
        if self.on_event is not None:
            self.on_event(view.config.name, record)

    # ----------------------------------------------------------------------------------------- status

    def running(self) -> bool:
        return any(view.state not in ("stopped", "failed") for view in self.views)

    def status(self) -> list[dict]:
        """Rows of the status table (the in-process Monitor's keys, and restarts and node)."""
        rows = []
        now = time.monotonic()
        for view in self.views:
            then, before = view.rate
            if now - then >= 0.5:
                view.fps = (view.frames - before) / (now - then) if then else 0.0
                view.rate = (now, view.frames)
            row = view.row
            rows.append({"camera": view.config.name, "state": view.state, "fps": view.fps,
                         "latency_p50_ms": row.get("latency_p50_ms"), "latency_p95_ms": row.get("latency_p95_ms"),
                         "persons": row.get("persons", 0), "frames": view.frames, "dropped": view.dropped,
                         "reconnects": row.get("reconnects", 0), "error": row.get("error"),
                         "restarts": view.start, "node": view.node})
        return rows

    def model_stats(self) -> ModelStats:
        """Forward passes and crops over all pose replicas, as they last reported (the in-process monitor's
        `estimator.stats` has the same names: the web view and /metrics read either)."""
        return ModelStats(len(self.replicas), sum(f for f, _ in self.replicas.values()),
                          sum(c for _, c in self.replicas.values()))

    def worker(self, camera: str):
        """The actor handle of a camera's worker (tests and tools kill it)."""
        for view in self.views:
            if view.config.name == camera:
                return view.worker
        raise TransposeLiveError(f"no camera named {camera!r}")

    def newest_jpeg(self, camera: str, timeout: float = 5.0) -> bytes | None:
        """The camera's newest frame with its poses drawn, as JPEG (None before its first frame)."""
        import ray  # deferred: Ray is an optional extra

        return ray.get(self.worker(camera).newest_jpeg.remote(), timeout=timeout)

    # ------------------------------------------------------------------------------------------- stop

    def stop(self, timeout: float = STOP_S) -> bool:
        """Stop every camera, take their last events, close the outputs, release the cluster; True when
        every worker ended within `timeout`."""
        import ray  # deferred: Ray is an optional extra

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        workers = [view.worker for view in self.views if view.worker is not None]
        ended = True
        if workers:
            refs = [w.stop.remote(timeout) for w in workers]
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout + POLL_WAIT_S)
            try:
                ended = len(done) == len(refs) and all(ray.get(done))
            except Exception:          # a worker that died while stopping has ended too
                ended = False
            self.poll()                # the last summaries and events (persons still present leave)
        for view in self.views:
            for sink in view.sinks:
                try:
                    sink.close()
                except Exception as exc:
                    log.warning("camera %s: closing an output failed: %s", view.config.name, exc)
            if view.state not in ("failed",):
                view.state = "stopped"
        self._release()
        return ended

    def _release(self) -> None:
        import ray  # deferred: Ray is an optional extra

        for actor in [view.worker for view in self.views] + [self.ranges]:
            if actor is not None:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception as exc:       # already gone with its node or the cluster
                    log.debug("ray.kill: %s", exc)
        if self.services is not None:
            remove_services(self.services)
            self.services = None
        if self._connected:
            from transpose_live.monitor.cluster.connect import disconnect

            disconnect()
            self._connected = False


__all__ = ["ClusterMonitor", "CameraView", "ModelStats", "local_cpus", "camera_runtime_env", "CAMERA_CPUS",
           "CAMERA_NICE", "MODEL_NICE", "POLL_S"]

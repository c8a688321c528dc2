"""Starting the services: Serve without its HTTP proxy, the pose model app and (unless --detector none) the
detector app, each with its replicas' resources; their handles are what camera workers call.

Resources. A pose replica takes `pose_cpus` CPUs (1: torch, OpenVINO and ONNX Runtime use the cores they
get) and one GPU when the cluster has GPUs and --device is not cpu (CUDA fp16 there). A detector replica
takes half a CPU and stays on the CPU. Replicas: --replicas N, or Serve's autoscaling between 1 and
`AUTOSCALE_MAX` replicas, aiming at `TARGET_ONGOING` calls in flight per replica (a camera has at most one).
Nothing queues without bound: a replica takes up to `MAX_ONGOING` calls, and the handles' queue holds at most
`QUEUE_PER_CAMERA` calls per camera (a full queue is a BackPressureError: the camera's call waits and its
newer frames replace the older ones).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from transpose_live.live.spec import RunSpec
from transpose_live.monitor.cluster.services import DETECT_APP, MAX_CROPS, POSE_APP, WAIT_MS, PersonDetector, PoseModel

POSE_DEPLOYMENT, DETECT_DEPLOYMENT = "PoseModel", "PersonDetector"
MAX_ONGOING = 64        # calls one pose replica holds at once (more than one batch's worth of cameras)
QUEUE_PER_CAMERA = 4    # calls waiting in the handles per camera, at most
AUTOSCALE_MAX = 8
TARGET_ONGOING = 8
DETECTOR_CPUS = 0.5
# replicas log warnings only and no line per call (Serve's access log: a formatted record for every frame)
QUIET_LOGS = {"log_level": "WARNING", "enable_access_log": False}
# what decides the pose model (RunSpec's names), sent to each replica
MODEL_OPTIONS = ("model", "weights", "device", "backend", "precision", "image_size", "flip")


@dataclass(frozen=True)
class Services:
    """The running deployments by app name (detector None with --detector none): plain values, so a camera
    worker Ray restarts gets them again with its other arguments, and makes its own handles."""

    pose_app: str
    detector_app: str | None
    image_size: tuple[int, int]
    max_crops: int

    def pose(self) -> Any:
        from ray import serve  # deferred: Ray is an optional extra

        return serve.get_deployment_handle(POSE_DEPLOYMENT, app_name=self.pose_app)

    def detector(self) -> Any | None:
        from ray import serve  # deferred: Ray is an optional extra

        if self.detector_app is None:
            return None
        return serve.get_deployment_handle(DETECT_DEPLOYMENT, app_name=self.detector_app)


def model_options(spec: RunSpec) -> dict:
    return {name: getattr(spec, name) for name in MODEL_OPTIONS}


def _gpus_wanted(spec: RunSpec) -> bool:
    import ray  # deferred: Ray is an optional extra

    return spec.device != "cpu" and ray.cluster_resources().get("GPU", 0) > 0


def _scaling(replicas: int | None) -> dict:
    if replicas is not None:
        return {"num_replicas": replicas}
    return {"num_replicas": "auto", "autoscaling_config": {"min_replicas": 1, "max_replicas": AUTOSCALE_MAX,
                                                           "target_ongoing_requests": TARGET_ONGOING}}


def deploy_services(spec: RunSpec, cameras: int, replicas: int | None = None, pose_cpus: float = 1.0,
                    max_crops: int = MAX_CROPS, wait_ms: float = WAIT_MS, model_nice: int | None = None) -> Services:
    """Start Serve (no HTTP proxy) and the deployments; returns once every replica answers."""
    from ray import serve  # deferred: Ray is an optional extra

    logging.getLogger("ray.serve").setLevel(logging.WARNING)     # its INFO lines would cross the status table
    serve.start(proxy_location="Disabled", logging_config={"log_level": "WARNING"})
    queue = QUEUE_PER_CAMERA * max(1, cameras)
    gpu = _gpus_wanted(spec)
    actor_options: dict = {"num_cpus": pose_cpus, "num_gpus": 1 if gpu else 0}
    if model_nice is not None:      # Ray's own worker niceness (15 by default) for the model's replicas; a
        # process can only lower its priority, so a value below its node's nice gives the node's
        actor_options["runtime_env"] = {"env_vars": {"RAY_worker_niceness": str(int(model_nice))}}
    pose_app = serve.deployment(
        name=POSE_DEPLOYMENT, max_ongoing_requests=MAX_ONGOING, max_queued_requests=queue,
        ray_actor_options=actor_options, logging_config=QUIET_LOGS, **_scaling(replicas),
    )(PoseModel).bind(model_options(spec), max_crops, wait_ms)
    pose = serve.run(pose_app, name=POSE_APP, route_prefix=None)
    info = pose.info.remote().result()
    detect_app = None
    if spec.detector != "none":
        detector = serve.deployment(
            name=DETECT_DEPLOYMENT, max_ongoing_requests=4, max_queued_requests=queue,
            ray_actor_options={"num_cpus": DETECTOR_CPUS}, logging_config=QUIET_LOGS, **_scaling(replicas),
        )(PersonDetector).bind(spec.detector, "cpu", spec.detect_tiles)
        serve.run(detector, name=DETECT_APP, route_prefix=None)
        detect_app = DETECT_APP
    return Services(POSE_APP, detect_app, tuple(info["image_size"]), int(info["max_crops"]))


def remove_services(services: Services) -> None:
    """Delete the apps (their replicas end); Serve itself ends with the Ray session."""
    from ray import serve  # deferred: Ray is an optional extra

    for app in (services.pose_app, services.detector_app):
        if app is None:
            continue
        try:
            serve.delete(app)
        except Exception:      # the cluster is gone already
            pass


__all__ = ["Services", "deploy_services", "remove_services", "model_options", "MODEL_OPTIONS"]

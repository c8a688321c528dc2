"""MQTT for a run, assembled once: the command line over cameras.yaml (`plan_mqtt`, checked before the model
loads), then one link for the process, a publisher per camera and Home Assistant discovery (`MqttOutputs`),
handed to open_outputs as openers (`for_camera`). `rtsp` and `monitor` both build theirs here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from transpose_live.media.sinks.outputs import SinkOpener
from transpose_live.monitor.broker import DEFAULT_KEEPALIVE_S, MqttSettings, mqtt_settings
from transpose_live.monitor.cameras import CameraConfig, MqttConfig
from transpose_live.monitor.homeassistant import DEFAULT_PREFIX, HomeAssistant, check_prefix
from transpose_live.monitor.mqtt import MqttLink, MqttPublisher


@dataclass(frozen=True)
class MqttPlan:
    """Validated: where to publish, and whether (and under which prefix) Home Assistant discovers the cameras."""

    settings: MqttSettings
    discovery: bool = True
    prefix: str = DEFAULT_PREFIX


def plan_mqtt(host: str | None = None, *, user: str | None = None, password: str | None = None,
              tls: bool | None = None, ca_file: str | os.PathLike | None = None, keepalive: int | None = None,
              discovery: bool | None = None, prefix: str | None = None,
              file: MqttConfig | None = None) -> MqttPlan | None:
    """The command line's choices (None: not given) over cameras.yaml's mqtt: keys; None when neither names a
    broker. A CA file implies TLS. Every problem is one TransposeLiveError without the password."""
    file = file or MqttConfig()
    host = host if host is not None else file.host
    if host is None:
        return None
    tls_choice: bool | str | os.PathLike | None
    if ca_file is not None:
        tls_choice = ca_file
    elif tls:
        tls_choice = file.tls if isinstance(file.tls, str) else True     # the file's CA, when it names one
    elif tls is False:
        tls_choice = None
    else:
        tls_choice = file.tls
    settings = mqtt_settings(host, user if user is not None else file.user,
                             password if password is not None else file.password, tls_choice,
                             keepalive if keepalive is not None else file.keepalive or DEFAULT_KEEPALIVE_S)
    on = discovery if discovery is not None else file.ha_discovery if file.ha_discovery is not None else True
    return MqttPlan(settings, on, check_prefix(prefix or file.ha_prefix or DEFAULT_PREFIX))


class MqttOutputs:
    """The process's MQTT: one link (with availability), then per camera an MqttPublisher (poses, events) and,
    with discovery, its Home Assistant entities. prune: clear the discovery configs of cameras not in `cameras`
    (the monitor owns its camera list; a one-camera `rtsp` does not). close() after the runs: says offline."""

    def __init__(self, plan: MqttPlan, cameras: Sequence[str] = (), *, model: str = "default", prune: bool = False):
        self.plan = plan
        self.link = MqttLink(plan.settings, availability=True)
        self.ha = HomeAssistant(self.link, cameras, plan.prefix, model, prune) if plan.discovery else None

    def for_camera(self, camera: CameraConfig | str) -> list[SinkOpener]:
        """The camera's MQTT outputs, for open_outputs' `more` (a monitor.runner.CameraOutputs)."""
        name = camera.name if isinstance(camera, CameraConfig) else str(camera)
        openers: list[SinkOpener] = [lambda source: MqttPublisher(link=self.link, camera=name)]
        ha = self.ha
        if ha is not None:
            openers.append(lambda source: ha.camera(name))
        return openers

    def camera_failed(self, camera: CameraConfig | str, reason: str) -> None:
        """A camera that ended with an error before or outside its outputs: its Stream sensor says failed."""
        if self.ha is not None:
            name = camera.name if isinstance(camera, CameraConfig) else str(camera)
            self.ha.camera(name).set_stream("failed", reason)

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "MqttOutputs":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MqttPlan", "MqttOutputs", "plan_mqtt"]
